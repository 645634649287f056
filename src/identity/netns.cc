#include "identity/netns.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/net_namespace.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "common/fd.h"

namespace kagami::identity {
namespace {

// One request, one answer, on a fresh NETLINK_ROUTE socket of this thread's
// namespace. Calls each(type, payload, len) for every attribute of the
// answer (after the fixed header of `hdr_len` bytes).
template <typename F>
Result<void> rtnl_request(std::vector<uint8_t> req, size_t hdr_len, F&& each) {
  Fd sock(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!sock.valid()) return errno_error(errno, "netlink socket");
  auto* nh = reinterpret_cast<nlmsghdr*>(req.data());
  nh->nlmsg_len = static_cast<uint32_t>(req.size());
  nh->nlmsg_seq = 1;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(sock.get(), req.data(), req.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) < 0)
    return errno_error(errno, "netlink send");
  std::vector<uint8_t> buf(1 << 16);
  ssize_t n = ::recv(sock.get(), buf.data(), buf.size(), 0);
  if (n < 0) return errno_error(errno, "netlink recv");
  auto* r = reinterpret_cast<nlmsghdr*>(buf.data());
  if (!NLMSG_OK(r, static_cast<uint32_t>(n))) return make_error("netlink: short answer");
  if (r->nlmsg_type == NLMSG_ERROR) {
    auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(r));
    return errno_error(-e->error, "netlink");
  }
  const size_t fixed = NLMSG_ALIGN(hdr_len);
  if (r->nlmsg_len < NLMSG_LENGTH(fixed)) return make_error("netlink: answer without its header");
  auto* a = reinterpret_cast<rtattr*>(static_cast<uint8_t*>(NLMSG_DATA(r)) + fixed);
  int left = static_cast<int>(r->nlmsg_len - NLMSG_LENGTH(fixed));
  for (; RTA_OK(a, left); a = RTA_NEXT(a, left)) each(a->rta_type, RTA_DATA(a), RTA_PAYLOAD(a));
  return ok();
}

template <typename T>
void put(std::vector<uint8_t>& v, const T& x) {
  const auto* p = reinterpret_cast<const uint8_t*>(&x);
  v.insert(v.end(), p, p + sizeof(T));
  v.resize(NLMSG_ALIGN(v.size()), 0);
}

// IFLA_LINK_NETNSID of an interface: the namespace of its peer, -1 if the
// peer (if any) is in this namespace.
Result<int32_t> link_netnsid(int ifindex) {
  std::vector<uint8_t> req;
  put(req, nlmsghdr{0, RTM_GETLINK, NLM_F_REQUEST, 0, 0});
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = ifindex;
  put(req, ifi);
  int32_t nsid = -1;
  KAGAMI_TRY(rtnl_request(std::move(req), sizeof(ifinfomsg), [&](uint16_t type, const void* p, size_t len) {
    if (type == IFLA_LINK_NETNSID && len >= 4) std::memcpy(&nsid, p, 4);
  }));
  return nsid;
}

// The id this namespace gives the namespace behind nsfd (-1: none).
Result<int32_t> nsid_of(int nsfd) {
  std::vector<uint8_t> req;
  put(req, nlmsghdr{0, RTM_GETNSID, NLM_F_REQUEST, 0, 0});
  put(req, rtgenmsg{AF_UNSPEC});
  rtattr fd_attr{static_cast<unsigned short>(RTA_LENGTH(sizeof(uint32_t))), NETNSA_FD};
  put(req, fd_attr);
  put(req, static_cast<uint32_t>(nsfd));
  int32_t nsid = -1;
  KAGAMI_TRY(rtnl_request(std::move(req), sizeof(rtgenmsg), [&](uint16_t type, const void* p, size_t len) {
    if (type == NETNSA_NSID && len >= 4) std::memcpy(&nsid, p, 4);
  }));
  return nsid;
}

// Inode of a namespace link ("net:[4026531840]"), 0 if unreadable.
uint64_t ns_inode(const std::string& link) {
  struct stat st {};
  return ::stat(link.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_ino) : 0;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

Result<InterfaceOwner> interface_owner(const std::string& ifname) {
  const unsigned ifindex = if_nametoindex(ifname.c_str());
  if (!ifindex) return errno_error(errno, "interface {}", ifname);
  InterfaceOwner out;
  auto nsid = link_netnsid(static_cast<int>(ifindex));
  if (!nsid) return nsid.error().with_context("interface " + ifname);
  out.peer_nsid = *nsid;
  if (*nsid < 0) return out;
  out.peer_elsewhere = true;

  // Every process, grouped by network namespace; then ask the kernel which
  // namespace has the peer's id. One RTM_GETNSID per namespace, not per pid.
  const uint64_t own = ns_inode("/proc/self/ns/net");
  std::map<uint64_t, std::vector<int>> by_ns;
  DIR* d = ::opendir("/proc");
  if (!d) return errno_error(errno, "/proc");
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end) continue;
    uint64_t ino = ns_inode("/proc/" + std::string(e->d_name) + "/ns/net");
    if (ino && ino != own) by_ns[ino].push_back(static_cast<int>(pid));
  }
  ::closedir(d);
  for (const auto& [ino, pids] : by_ns) {
    Fd fd(::open(("/proc/" + std::to_string(pids.front()) + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) continue;  // the process exited meanwhile
    auto id = nsid_of(fd.get());
    if (!id || *id != *nsid) continue;
    // Prefer a process that is a pod's: the pause container and the CNF's
    // containers all say the same pod.
    for (int pid : pids) {
      std::string cg = slurp("/proc/" + std::to_string(pid) + "/cgroup");
      if (cg.empty()) continue;
      Workload w = parse_proc_cgroup(cg);
      if (!out.pid || (w.is_pod() && !out.workload.is_pod())) {
        out.pid = pid;
        out.workload = w;
      }
      if (out.workload.is_pod()) break;
    }
    break;
  }
  return out;
}

}  // namespace kagami::identity
