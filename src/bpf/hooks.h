// Attaching loaded programs to kernel hooks. Every function returns an owned
// link fd (pin it to outlive the process) except TC, which has no link on
// libbpf 1.1 / netlink clsact and is identified by (ifindex, parent, handle,
// priority) instead.
#pragma once

#include <cstdint>
#include <string>

#include "common/fd.h"
#include "common/result.h"

struct bpf_program;

namespace kagami::bpf {

enum class XdpMode { Auto, Native, Generic };

struct XdpLink {
  Fd link;
  bool native = false;  // which mode the kernel accepted
};
// XDP through a bpf_link (updatable in place). Auto tries native (driver)
// mode, then generic (skb) mode.
Result<XdpLink> attach_xdp(int prog_fd, int ifindex, XdpMode mode);
// Which XDP program id (if any) an interface runs, in any mode.
Result<uint32_t> xdp_query(int ifindex);

// Tracepoint via perf_event_open + BPF_LINK_CREATE (mounts tracefs).
Result<Fd> attach_tracepoint(int prog_fd, const std::string& category, const std::string& name);
// raw_tp ("sched_switch") or tp_btf (name == "": target fixed at load).
Result<Fd> attach_raw_tp(int prog_fd, const std::string& name);
// cgroup hook: attach_type is an enum bpf_attach_type.
Result<Fd> attach_cgroup(int prog_fd, const std::string& cgroup_path, uint32_t attach_type);
// sk_msg verdict on a sockmap/sockhash (sockmap links, kernel 6.10+).
Result<Fd> attach_sk_msg(int prog_fd, int map_fd);
// sk_skb stream parser (parser=true) or stream verdict on a sockmap/sockhash.
Result<Fd> attach_sk_skb(int prog_fd, int map_fd, bool parser);
// uprobe/uretprobe on binary:symbol (libbpf resolves the symbol's offset).
Result<Fd> attach_uprobe(bpf_program* prog, const std::string& binary, const std::string& symbol,
                         bool retprobe);

struct TcFilter {
  int ifindex = 0;
  bool egress = false;
  uint32_t handle = 0;
  uint32_t priority = 0;
};
// Creates the clsact qdisc if missing (created=true then) and adds a
// direct-action filter at `priority`. With replace=true the filter at that
// handle/priority is swapped atomically (BPF_TC_F_REPLACE).
Result<TcFilter> tc_attach(int prog_fd, int ifindex, bool egress, uint32_t priority, bool replace,
                           bool* created_qdisc = nullptr);
Result<void> tc_detach(const TcFilter& f);
// Program id at that filter; 0 when no such filter exists.
Result<uint32_t> tc_query(const TcFilter& f);

// Probe: can this kernel load a BPF_PROG_TYPE_EXT (freplace) program against
// `target_prog_fd`? (libxdp's multi-program dispatcher depends on it.)
bool freplace_supported(int target_prog_fd);

}  // namespace kagami::bpf
