#include "modules/obs/obs_object.h"

#include <bpf/libbpf.h>

#include <nlohmann/json.hpp>

#include "obs.skel.h"

namespace kagami::obs {

Result<std::unique_ptr<ObsObject>> ObsObject::open(bool replay_mode, Programs which) {
  obs_bpf* skel = obs_bpf__open();
  if (!skel) return errno_error(errno, "open obs.bpf.o");
  skel->rodata->replay_mode = replay_mode ? 1 : 0;
  if (replay_mode) {
    // One thread drives a replayed object, one run at a time, so per-CPU
    // values buy nothing, and preallocating them is most of the map set-up:
    // a 16k-entry per-CPU LRU map takes ~11 ms to create, the plain one ~3.
    // The programs' code is the same for both kinds (a lookup returns this
    // CPU's copy or the only one); the snapshot reads either.
    bpf_map* m;
    bpf_object__for_each_map(m, skel->obj) {
      switch (bpf_map__type(m)) {
        case BPF_MAP_TYPE_PERCPU_ARRAY: bpf_map__set_type(m, BPF_MAP_TYPE_ARRAY); break;
        case BPF_MAP_TYPE_PERCPU_HASH: bpf_map__set_type(m, BPF_MAP_TYPE_HASH); break;
        case BPF_MAP_TYPE_LRU_PERCPU_HASH: bpf_map__set_type(m, BPF_MAP_TYPE_LRU_HASH); break;
        default: break;
      }
    }
  }
  bpf_program__set_autoload(skel->progs.obs_tc_ingress, which != Programs::ReplayOnly);
  bpf_program__set_autoload(skel->progs.obs_tc_egress, which == Programs::All);
  bpf_program__set_autoload(skel->progs.obs_xdp, which == Programs::All);
  bpf_program__set_autoload(skel->progs.obs_replay, which == Programs::ReplayOnly);
  // Owned from here on, so a failed load still destroys the skeleton.
  std::unique_ptr<ObsObject> obj(new ObsObject(skel));
  int err = obs_bpf__load(skel);
  if (err) return errno_error(err, "load obs.bpf.o (verifier or map creation; see the libbpf log)");
  return obj;
}

ObsObject::~ObsObject() { obs_bpf__destroy(skel_); }

int ObsObject::tc_ingress_fd() const { return bpf_program__fd(skel_->progs.obs_tc_ingress); }
int ObsObject::tc_egress_fd() const { return bpf_program__fd(skel_->progs.obs_tc_egress); }
int ObsObject::xdp_fd() const { return bpf_program__fd(skel_->progs.obs_xdp); }
int ObsObject::replay_fd() const { return bpf_program__fd(skel_->progs.obs_replay); }

int ObsObject::map_fd(const char* name) const {
  bpf_map* m = bpf_object__find_map_by_name(skel_->obj, name);
  return m ? bpf_map__fd(m) : -1;
}

Result<ObsSnapshot> ObsObject::snapshot() const {
  return read_snapshot([this](const std::string& name) -> Result<int> {
    int fd = map_fd(name.c_str());
    if (fd < 0) return make_error("obs.bpf.o has no map {}", name);
    return fd;
  });
}

Result<nlohmann::json> ObsObject::counters() const {
  auto s = snapshot();
  if (!s) return s.error();
  return to_json(*s);
}

}  // namespace kagami::obs
