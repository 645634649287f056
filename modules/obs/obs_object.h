// ObsObject: obs.bpf.o loaded on its own, outside the ProgramManager, for
// pcap replay (src/replay) and the kernel tests. Nothing is attached: the
// programs are driven with BPF_PROG_TEST_RUN (src/bpf/test_run.h) and the
// maps read back with counters().
//
// In replay mode the TC programs take the original frame length from
// skb->cb[0] and the capture timestamp (ns) from skb->tstamp (see
// modules/obs/bpf/obs.bpf.c); live mode uses skb->len and the monotonic clock.
// Replay mode also makes every per-CPU map a plain one: one thread drives
// the object, so there is nothing to spread, and creating the per-CPU maps
// cost more than loading the program. Drive it from one thread at a time.
//
// RAII: the skeleton (programs, maps) is destroyed with the object.
// Not thread-safe; one owner drives it.
#pragma once

#include <memory>

#include <nlohmann/json_fwd.hpp>

#include "common/result.h"
#include "modules/obs/snapshot.h"

struct obs_bpf;

namespace kagami::obs {

class ObsObject {
 public:
  // Which programs to verify. Replay drives only obs_replay (frames in
  // batches, include/modules/obs/abi.h), and each program costs tens of ms of
  // verification, so it asks for that one alone; the fd getters of programs
  // not loaded return a negative value. All loads the three live programs.
  enum class Programs { All, TcIngressOnly, ReplayOnly };
  static Result<std::unique_ptr<ObsObject>> open(bool replay_mode, Programs which = Programs::All);
  ~ObsObject();
  ObsObject(const ObsObject&) = delete;
  ObsObject& operator=(const ObsObject&) = delete;

  int tc_ingress_fd() const;
  int tc_egress_fd() const;
  int xdp_fd() const;
  int replay_fd() const;
  // fd of one of the object's maps by name (OBS_MAP_*), -1 if unknown.
  int map_fd(const char* name) const;

  Result<ObsSnapshot> snapshot() const;
  // The JSON of snapshot(): keys mirror the tshark truth files.
  Result<nlohmann::json> counters() const;

 private:
  explicit ObsObject(obs_bpf* skel) : skel_(skel) {}
  obs_bpf* skel_;
};

}  // namespace kagami::obs
