#include "replay/driver.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <span>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include <linux/types.h>

#include "bpf/test_run.h"
#include "modules/obs/abi.h"

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

uint32_t xdp_test_run_max_bytes() {
  // net/bpf/test_run.c bpf_prog_test_run_xdp(): max_data_sz = PAGE_SIZE -
  // XDP_PACKET_HEADROOM (256) - SKB_DATA_ALIGN(sizeof(struct
  // skb_shared_info)) (320); anything longer goes to fragments, which a
  // program without xdp.frags cannot read directly.
  long page = ::sysconf(_SC_PAGESIZE);
  if (page <= 0) page = 4096;
  uint32_t max = static_cast<uint32_t>(page) - 256 - 320;
  // Record offsets are masked to KG_REPLAY_MAX_OFF in the program.
  return std::min<uint32_t>(max, KG_REPLAY_MAX_OFF + 1);
}

namespace {

// Runs one batch buffer (header filled in) through every program, in order.
// Verdicts are the first program's (each module's replay program is
// passive; the first is the one a single-module caller drives).
Result<void> run_batch(std::span<const int> fds, const std::vector<uint8_t>& buf, uint32_t count, DriverStats& t) {
  bpf::TestRunInput in;
  in.packet = buf;
  for (size_t i = 0; i < fds.size(); i++) {
    auto r = bpf::test_run_xdp(fds[i], in);
    if (!r) return r.error().with_context(fmt::format("replaying a batch of {} frames", count));
    t.runs++;
    if (i == 0) t.verdicts[r->retval] += count;
    t.kernel_ns += r->duration_ns;
  }
  t.replayed_frames += count;
  return ok();
}

// Fills batch buffers; take() hands over a full one.
class Batcher {
 public:
  Batcher() : max_(xdp_test_run_max_bytes()) { reset(); }

  // Largest frame one record can carry.
  uint32_t max_frame() const { return max_ - sizeof(kg_replay_batch) - sizeof(kg_replay_rec); }
  bool fits(size_t len) const {
    return count_ < KG_REPLAY_MAX_FRAMES && buf_.size() + sizeof(kg_replay_rec) + pad8(len) <= max_;
  }
  bool empty() const { return count_ == 0; }

  void add(const Frame& f, size_t len) {
    kg_replay_rec rec{};
    rec.ts_ns = f.ts_ns;
    rec.wire_len = f.wire_len;
    rec.cap_len = static_cast<__u16>(len);
    append(&rec, sizeof(rec));
    append(f.data.data(), len);
    buf_.resize(buf_.size() + (pad8(len) - len), 0);
    count_++;
  }

  // The batch with its header; the batcher starts a new one.
  std::pair<std::vector<uint8_t>, uint32_t> take() {
    kg_replay_batch hdr{KG_REPLAY_MAGIC, count_};
    std::memcpy(buf_.data(), &hdr, sizeof(hdr));
    std::pair<std::vector<uint8_t>, uint32_t> out{std::move(buf_), count_};
    reset();
    return out;
  }

 private:
  static size_t pad8(size_t n) { return (n + 7) & ~size_t{7}; }
  void append(const void* p, size_t n) {
    auto* b = static_cast<const uint8_t*>(p);
    buf_.insert(buf_.end(), b, b + n);
  }
  void reset() {
    buf_.clear();
    buf_.reserve(max_);
    buf_.resize(sizeof(kg_replay_batch), 0);
    count_ = 0;
  }

  uint32_t max_;
  std::vector<uint8_t> buf_;
  uint32_t count_ = 0;
};

uint64_t since(std::chrono::steady_clock::time_point t0) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
}

void finish(DriverStats& st, PcapReader& reader) {
  // After reading: a pcapng names its interfaces (and link types) as it goes.
  st.link_type = reader.link_type_name();
  st.total_frames = reader.frames_read();
  st.snapped_frames = reader.snapped_frames();
  for (const auto& [k, v] : reader.skipped()) st.skipped[k] += v;
}

}  // namespace

Result<DriverStats> replay_batches(PcapReader& reader, int xdp_prog_fd) {
  const int fds[] = {xdp_prog_fd};
  return replay_batches(reader, std::span<const int>(fds));
}

Result<DriverStats> replay_batches(PcapReader& reader, std::span<const int> xdp_prog_fds,
                                   const AfterBatch& after_batch) {
  if (xdp_prog_fds.empty()) return make_error("replay: no program to drive");
  DriverStats st;
  auto t0 = std::chrono::steady_clock::now();
  // One thread reads, batches and runs. Two were slower on a 2-CPU VM (a
  // reader/runner pipeline: 86 ms instead of 62 for 100k frames; shards by
  // address pair: 71 ms), as every hand-over between threads costs a futex
  // wake-up and a context switch (docs/performance.md).
  Batcher batch;
  Frame f;
  for (;;) {
    auto more = reader.next(f);
    if (!more) return more.error();
    if (!*more) break;
    size_t len = f.data.size();
    if (len > batch.max_frame()) {
      len = batch.max_frame();
      st.cut_frames++;
    }
    if (!batch.fits(len)) {
      auto [buf, count] = batch.take();
      if (auto r = run_batch(xdp_prog_fds, buf, count, st); !r)
        return r.error().with_context("frame " + std::to_string(f.number) + " of " + reader.name());
      if (after_batch)
        if (auto r = after_batch(); !r) return r.error().with_context(reader.name());
    }
    batch.add(f, len);
  }
  if (!batch.empty()) {
    auto [buf, count] = batch.take();
    if (auto r = run_batch(xdp_prog_fds, buf, count, st); !r) return r.error().with_context(reader.name());
    if (after_batch)
      if (auto r = after_batch(); !r) return r.error().with_context(reader.name());
  }
  st.wall_ns = since(t0);
  finish(st, reader);
  return st;
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
    st.runs++;
    st.replayed_frames++;
    st.verdicts[r->retval]++;
    st.kernel_ns += r->duration_ns;
  }
  st.wall_ns = since(t0);
  finish(st, reader);
  return st;
}

}  // namespace kagami::replay
