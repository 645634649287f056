#include "replay/driver.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "bpf/test_run.h"

namespace kagami::replay {

uint32_t skb_test_run_max_bytes() {
  // net/bpf/test_run.c bpf_test_init(): size <= PAGE_SIZE - headroom -
  // tailroom, with headroom NET_SKB_PAD + NET_IP_ALIGN (64 + 0 on x86/arm64)
  // and tailroom SKB_DATA_ALIGN(sizeof(struct skb_shared_info)) (320 on
  // 64-bit kernels since 5.x).
  long page = ::sysconf(_SC_PAGESIZE);
  if (page <= 0) page = 4096;
  return static_cast<uint32_t>(page) - 64 - 320;
}

Result<DriverStats> replay_frames(PcapReader& reader, int tc_prog_fd) {
  DriverStats st;
  const uint32_t max_bytes = skb_test_run_max_bytes();
  auto t0 = std::chrono::steady_clock::now();

  bpf::TestRunInput in;
  in.set_skb_ctx = true;
  in.cb[1] = kReplayMagic;
  Frame f;
  // One iteration per frame; next() returns false at the end of the file.
  for (;;) {
    auto more = reader.next(f);
    if (!more) return more.error();
    if (!*more) break;
    size_t len = f.data.size();
    if (len > max_bytes) {
      len = max_bytes;
      st.cut_frames++;
    }
    in.packet = f.data.first(len);
    in.cb[0] = f.wire_len;
    in.tstamp_ns = f.ts_ns;
    auto r = bpf::test_run_skb(tc_prog_fd, in);
    if (!r) {
      // The kernel validates only sizes and the context for skb test runs;
      // EINVAL for one frame does not mean the next one fails.
      if (r.error().code == EINVAL && st.replayed_frames > 0) {
        st.skipped["rejected_by_test_run"]++;
        continue;
      }
      return r.error().with_context("replaying frame " + std::to_string(f.number) + " of " + reader.name());
    }
    st.replayed_frames++;
    st.verdicts[r->retval]++;
    st.kernel_ns += r->duration_ns;
  }
  st.wall_ns = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
  // After reading: a pcapng names its interfaces (and link types) as it goes.
  st.link_type = reader.link_type_name();
  st.total_frames = reader.frames_read();
  st.snapped_frames = reader.snapped_frames();
  for (const auto& [k, v] : reader.skipped()) st.skipped[k] += v;
  return st;
}

}  // namespace kagami::replay
