#include "modules/obs/obs_object.h"

#include <bpf/libbpf.h>

#include <nlohmann/json.hpp>

#include "obs.skel.h"

namespace kagami::obs {

Result<std::unique_ptr<ObsObject>> ObsObject::open(bool replay_mode, Programs which) {
  obs_bpf* skel = obs_bpf__open();
  if (!skel) return errno_error(errno, "open obs.bpf.o");
  skel->rodata->replay_mode = replay_mode ? 1 : 0;
  if (which == Programs::TcIngressOnly) {
    bpf_program__set_autoload(skel->progs.obs_tc_egress, false);
    bpf_program__set_autoload(skel->progs.obs_xdp, false);
  }
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
