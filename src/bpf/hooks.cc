#include "bpf/hooks.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/perf_event.h>
#include <net/if.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "bpf/kernel.h"
#include "common/fs.h"

namespace kagami::bpf {
namespace {

// libbpf logs the kernel's netlink extack at WARN for every failed tc
// request, including the ones we expect and handle ("Exclusivity flag on"
// when clsact already exists, "Filter ... not found" on a query). While one
// of those calls runs, drop exactly that line and forward everything else.
libbpf_print_fn_t g_prev_print = nullptr;
int quiet_print(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (std::strstr(fmt, "Kernel error message:")) return 0;
  return g_prev_print ? g_prev_print(level, fmt, args) : 0;
}
class QuietNetlink {
 public:
  QuietNetlink() { g_prev_print = libbpf_set_print(quiet_print); }
  ~QuietNetlink() { libbpf_set_print(g_prev_print); }
};

}  // namespace

Result<XdpLink> attach_xdp(int prog_fd, int ifindex, XdpMode mode) {
  auto try_mode = [&](uint32_t flags) -> Result<Fd> {
    LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = flags);
    int fd = bpf_link_create(prog_fd, ifindex, BPF_XDP, &opts);
    if (fd < 0) return errno_error(errno, "{} mode", flags == XDP_FLAGS_DRV_MODE ? "native" : "generic");
    return Fd(fd);
  };
  if (mode != XdpMode::Generic) {
    auto l = try_mode(XDP_FLAGS_DRV_MODE);
    if (l) return XdpLink{std::move(*l), true};
    if (mode == XdpMode::Native || l.error().code == EBUSY || l.error().code == EEXIST) return l.error();
  }
  auto l = try_mode(XDP_FLAGS_SKB_MODE);
  if (!l) return l.error();
  return XdpLink{std::move(*l), false};
}

Result<uint32_t> xdp_query(int ifindex) {
  LIBBPF_OPTS(bpf_xdp_query_opts, opts);
  if (bpf_xdp_query(ifindex, 0, &opts) != 0) return errno_error(errno, "querying xdp on ifindex {}", ifindex);
  if (opts.prog_id) return opts.prog_id;
  if (opts.drv_prog_id) return opts.drv_prog_id;
  if (opts.skb_prog_id) return opts.skb_prog_id;
  return opts.hw_prog_id;
}

Result<Fd> attach_tracepoint(int prog_fd, const std::string& category, const std::string& name) {
  // Our own perf event rather than libbpf's bpf_program__attach_tracepoint:
  // libbpf's link disables the perf event when it is destroyed, which would
  // stop a pinned program once the agent exits.
  auto root = ensure_tracefs();
  if (!root) return root.error();
  const std::string idpath = *root + "/events/" + category + "/" + name + "/id";
  std::ifstream f(idpath);
  long id = -1;
  if (!(f >> id)) return make_error("no such tracepoint {}/{} ({} unreadable)", category, name, idpath);
  perf_event_attr attr{};
  attr.type = PERF_TYPE_TRACEPOINT;
  attr.size = sizeof(attr);
  attr.config = static_cast<uint64_t>(id);
  attr.sample_period = 1;
  attr.wakeup_events = 1;
  Fd pfd(static_cast<int>(syscall(SYS_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC)));
  if (!pfd.valid()) return errno_error(errno, "perf_event_open for tracepoint {}/{}", category, name);
  int lfd = bpf_link_create(prog_fd, pfd.get(), BPF_PERF_EVENT, nullptr);
  if (lfd < 0) return errno_error(errno, "attaching to tracepoint {}/{}", category, name);
  return Fd(lfd);  // the link holds the perf event; our fd on it may close
}

Result<Fd> attach_raw_tp(int prog_fd, const std::string& name) {
  int fd = bpf_raw_tracepoint_open(name.empty() ? nullptr : name.c_str(), prog_fd);
  if (fd < 0) return errno_error(errno, "attaching to raw tracepoint {}", name.empty() ? "(btf)" : name);
  return Fd(fd);
}

Result<Fd> attach_cgroup(int prog_fd, const std::string& cgroup_path, uint32_t attach_type) {
  Fd cg(::open(cgroup_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cg.valid()) return errno_error(errno, "opening cgroup {}", cgroup_path);
  int fd = bpf_link_create(prog_fd, cg.get(), static_cast<bpf_attach_type>(attach_type), nullptr);
  if (fd < 0) return errno_error(errno, "attaching to cgroup {}", cgroup_path);
  return Fd(fd);
}

Result<Fd> attach_sk_msg(int prog_fd, int map_fd) {
  int fd = bpf_link_create(prog_fd, map_fd, BPF_SK_MSG_VERDICT, nullptr);
  if (fd < 0) return errno_error(errno, "attaching sk_msg verdict to sockmap");
  return Fd(fd);
}

Result<Fd> attach_sk_skb(int prog_fd, int map_fd, bool parser) {
  int fd = bpf_link_create(prog_fd, map_fd, parser ? BPF_SK_SKB_STREAM_PARSER : BPF_SK_SKB_STREAM_VERDICT, nullptr);
  if (fd < 0) {
    if (parser) return errno_error(errno, "attaching sk_skb stream parser to sockmap");
    return errno_error(errno, "attaching sk_skb stream verdict to sockmap");
  }
  return Fd(fd);
}

namespace {

// The perf_event fds this process has open (anon_inode:[perf_event]).
std::vector<int> perf_event_fds() {
  std::vector<int> out;
  auto names = list_dir("/proc/self/fd");
  if (!names) return out;
  char target[64];
  for (const auto& n : *names) {
    const std::string link = "/proc/self/fd/" + n;
    const ssize_t len = ::readlink(link.c_str(), target, sizeof(target) - 1);
    if (len <= 0) continue;
    target[len] = 0;
    if (std::strcmp(target, "anon_inode:[perf_event]") == 0) out.push_back(std::atoi(n.c_str()));
  }
  return out;
}

// Refuses what libbpf would report as "Unknown error 4001" (not an ELF).
Result<void> check_uprobe_binary(const std::string& binary) {
  KAGAMI_TRY(fs::check_regular_file(binary, "uprobe binary"));
  Fd fd(::open(binary.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  unsigned char magic[4] = {};
  if (!fd.valid() || ::read(fd.get(), magic, 4) != 4 || std::memcmp(magic, "\x7f" "ELF", 4) != 0)
    return make_error("uprobe binary {} is not an ELF file", binary);
  return ok();
}

}  // namespace

Result<Fd> attach_uprobe(bpf_program* prog, const std::string& binary, const std::string& symbol,
                         bool retprobe) {
  KAGAMI_TRY(check_uprobe_binary(binary));
  LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = retprobe, .func_name = symbol.c_str());
  // libbpf 1.1 opens a perf event, links the program to it and keeps the
  // perf fd inside its bpf_link_perf, with no accessor; a disconnected link
  // closes neither fd. The kernel's perf_event link holds its own reference
  // to the event, so the perf fd libbpf opened (the one new perf_event fd
  // across this call; the manager serialises attaches) is closed here.
  const std::vector<int> before = perf_event_fds();
  bpf_link* l = bpf_program__attach_uprobe_opts(prog, -1, binary.c_str(), 0, &opts);
  if (!l) {
    const int err = errno;
    if (err == ENOENT || err == ESRCH)
      return errno_error(err, "attaching uprobe {}:{} (no symbol {} in {}?)", binary, symbol, symbol, binary);
    return errno_error(err, "attaching uprobe {}:{}", binary, symbol);
  }
  // As for tracepoints, destroying libbpf's perf link would disable the
  // event; disconnect it so only our fd (and the pin) governs its lifetime.
  // The link fd itself is taken over (libbpf does not close it either).
  Fd link(bpf_link__fd(l));
  bpf_link__disconnect(l);
  bpf_link__destroy(l);
  for (int fd : perf_event_fds())
    if (fd != link.get() && std::find(before.begin(), before.end(), fd) == before.end()) ::close(fd);
  return link;
}

Result<TcFilter> tc_attach(int prog_fd, int ifindex, bool egress, uint32_t priority, bool replace,
                           bool* created_qdisc) {
  if (priority == 0 || priority > 0xffff) return make_error("tc priority {} out of range 1..65535", priority);
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
              .attach_point = egress ? BPF_TC_EGRESS : BPF_TC_INGRESS);
  // A replace targets an existing filter, so its qdisc exists (and asking
  // again only makes libbpf log the kernel's EEXIST complaint).
  QuietNetlink quiet;
  int err = replace ? -EEXIST : bpf_tc_hook_create(&hook);
  if (err && err != -EEXIST) return errno_error(err, "creating clsact qdisc on ifindex {}", ifindex);
  if (created_qdisc) *created_qdisc = err == 0;
  LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd, .flags = replace ? static_cast<__u32>(BPF_TC_F_REPLACE) : 0u,
              .handle = 1, .priority = priority);
  err = bpf_tc_attach(&hook, &opts);
  if (err == -EEXIST)
    return Error{fmt::format("tc {} priority {} on ifindex {} is already in use",
                             egress ? "egress" : "ingress", priority, ifindex),
                 EEXIST};
  if (err) return errno_error(err, "attaching tc {} filter", egress ? "egress" : "ingress");
  return TcFilter{ifindex, egress, opts.handle, opts.priority};
}

Result<void> tc_detach(const TcFilter& f) {
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = f.ifindex,
              .attach_point = f.egress ? BPF_TC_EGRESS : BPF_TC_INGRESS);
  LIBBPF_OPTS(bpf_tc_opts, opts, .handle = f.handle, .priority = f.priority);
  QuietNetlink quiet;
  int err = bpf_tc_detach(&hook, &opts);
  if (err == -ENOENT || err == -ENODEV || err == -EINVAL) return ok();  // already gone
  if (err) return errno_error(err, "detaching tc filter prio {}", f.priority);
  return ok();
}

Result<uint32_t> tc_query(const TcFilter& f) {
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = f.ifindex,
              .attach_point = f.egress ? BPF_TC_EGRESS : BPF_TC_INGRESS);
  LIBBPF_OPTS(bpf_tc_opts, opts, .handle = f.handle, .priority = f.priority);
  QuietNetlink quiet;
  int err = bpf_tc_query(&hook, &opts);
  if (err == -ENOENT || err == -ENODEV || err == -EINVAL) return 0u;
  if (err) return errno_error(err, "querying tc filter prio {}", f.priority);
  return opts.prog_id;
}

bool freplace_supported(int target_prog_fd) {
  // r0 = 0; exit: the smallest extension program, aimed at the target's main
  // function (BTF id 0 is refused; libxdp uses the dispatcher's prog BTF).
  const bpf_insn insns[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(target_prog_fd, &info, &len) != 0 || info.btf_id == 0) return false;
  // The func id of the target's main program is what freplace needs; libbpf
  // finds it by name via the target's BTF. A load attempt with the first FUNC
  // is enough to tell EPERM (no trampolines) from success.
  btf* b = btf__load_from_kernel_by_id(info.btf_id);
  if (!b) return false;
  int func_id = -1;
  for (uint32_t i = 1; i < btf__type_cnt(b); i++) {
    if (btf_is_func(btf__type_by_id(b, i))) {
      func_id = static_cast<int>(i);
      break;
    }
  }
  btf__free(b);
  if (func_id < 0) return false;
  LIBBPF_OPTS(bpf_prog_load_opts, opts);
  opts.attach_prog_fd = static_cast<uint32_t>(target_prog_fd);
  opts.attach_btf_id = static_cast<uint32_t>(func_id);
  int fd = bpf_prog_load(BPF_PROG_TYPE_EXT, "kagami_probe", "GPL", insns, 2, &opts);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

}  // namespace kagami::bpf
