#include "bpf/test_run.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <cstring>

namespace kagami::bpf {
namespace {

Result<TestRunOutput> run(int prog_fd, const TestRunInput& in, bool skb) {
  if (in.packet.empty()) return make_error("test run: empty packet");
  TestRunOutput out;
  // The kernel copies data_out up to data_size_out; leave room for programs
  // that grow the packet (encap) by 256 bytes.
  if (in.want_packet_out) out.packet_out.resize(in.packet.size() + 256);

  struct __sk_buff ctx;
  std::memset(&ctx, 0, sizeof(ctx));
  LIBBPF_OPTS(bpf_test_run_opts, opts);
  opts.data_in = in.packet.data();
  opts.data_size_in = static_cast<uint32_t>(in.packet.size());
  opts.repeat = in.repeat;
  if (in.want_packet_out) {
    opts.data_out = out.packet_out.data();
    opts.data_size_out = static_cast<uint32_t>(out.packet_out.size());
  }
  if (skb && in.set_skb_ctx) {
    for (size_t i = 0; i < in.cb.size(); i++) ctx.cb[i] = in.cb[i];
    ctx.tstamp = in.tstamp_ns;
    ctx.ifindex = in.ifindex;
    opts.ctx_in = &ctx;
    opts.ctx_size_in = sizeof(ctx);
  }
  int err = bpf_prog_test_run_opts(prog_fd, &opts);
  if (err) return errno_error(err, "BPF_PROG_TEST_RUN ({} bytes)", in.packet.size());
  out.retval = opts.retval;
  out.duration_ns = opts.duration;
  if (in.want_packet_out) out.packet_out.resize(opts.data_size_out);
  return out;
}

}  // namespace

Result<TestRunOutput> test_run_skb(int prog_fd, const TestRunInput& in) { return run(prog_fd, in, true); }
Result<TestRunOutput> test_run_xdp(int prog_fd, const TestRunInput& in) { return run(prog_fd, in, false); }

}  // namespace kagami::bpf
