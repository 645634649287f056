// Program manager: load/verify/attach, clear errors that change nothing,
// privileges, pins and adoption across a restart, exact unload, and every
// non-packet hook kind on the real kernel.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gmock/gmock.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <fstream>

#include "bpf/kernel.h"
#include "bpf/object.h"
#include "pm_fixture.h"

using ::testing::HasSubstr;

namespace kagami::test {
namespace {

uint64_t udp_count(core::ProgramManager& pm, const std::string& name, uint32_t port) {
  auto fd = pm.map_fd(name, "counts");
  if (!fd) return ~0ull;
  uint64_t v = 0;
  if (bpf_map_lookup_elem(fd->get(), &port, &v) != 0) return 0;
  return v;
}

class PmLoad : public PmTest {};

TEST_F(PmLoad, TcEgressCountsTrafficAndReportsStats) {
  auto h = net_.add_host();
  ASSERT_TRUE(h) << h.error().message;
  auto r = pm_->load(request("cnt", "count_v1", {"tc:" + h->host_if + ":egress"}));
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->attachments.size(), 1u);
  EXPECT_EQ(r->attachments[0].mechanism, "tc-prio:100");
  EXPECT_EQ(r->attachments[0].program, "count_tc");
  EXPECT_EQ(r->generation, 1u);
  EXPECT_EQ(r->sha256.size(), 64u);
  ASSERT_TRUE(send_udp(h->peer_ip, 7001, "x", 10));
  EXPECT_EQ(udp_count(*pm_, "cnt", 7001), 10u);
  auto g = pm_->get("cnt");
  ASSERT_TRUE(g);
  uint64_t runs = 0;
  for (const auto& p : g->progs)
    if (p.name == "count_tc") runs = p.run_cnt;
  EXPECT_GE(runs, 10u) << "BPF stats must be on while the manager lives";
  EXPECT_TRUE(std::filesystem::exists(pin_root_ + "/cnt/maps/counts"));
  EXPECT_TRUE(std::filesystem::exists(pin_root_ + "/cnt/progs/count_tc"));
  EXPECT_TRUE(std::filesystem::exists(pin_root_ + "/cnt/meta"));
}

TEST_F(PmLoad, XdpReportsModeAndCountsIngress) {
  auto h = net_.add_host();
  ASSERT_TRUE(h) << h.error().message;
  auto r = pm_->load(request("x", "count_v1", {"xdp:" + h->host_if}));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->attachments[0].mechanism, "xdp-native");  // veth has native XDP
  send_from_ns(*h, 7002, 5);
  EXPECT_EQ(udp_count(*pm_, "x", 7002), 5u);
  ASSERT_TRUE(pm_->unload("x"));
  auto g = pm_->load(request("g", "count_v1", {"xdp:" + h->host_if + ":generic"}));
  ASSERT_TRUE(g) << g.error().message;
  EXPECT_EQ(g->attachments[0].mechanism, "xdp-generic");
  send_from_ns(*h, 7002, 3);
  EXPECT_EQ(udp_count(*pm_, "g", 7002), 3u);
}

// Every refusal names its cause and leaves nothing behind.
TEST_F(PmLoad, BadInputIsRefusedAndChangesNothing) {
  auto h = net_.add_host();
  ASSERT_TRUE(h) << h.error().message;
  const std::string tc = "tc:" + h->host_if + ":egress";
  ASSERT_TRUE(pm_->load(request("keep", "count_v1", {tc + "#50"})));
  auto before = std::filesystem::directory_iterator(pin_root_);
  const size_t n_before = std::distance(before, std::filesystem::directory_iterator{});

  auto expect_refused = [&](core::LoadRequest req, const std::string& what) {
    auto r = pm_->load(req);
    ASSERT_FALSE(r) << "expected refusal: " << what;
    EXPECT_THAT(r.error().message, HasSubstr(what));
    EXPECT_EQ(pm_->list().size(), 1u);
    auto it = std::filesystem::directory_iterator(pin_root_);
    EXPECT_EQ(static_cast<size_t>(std::distance(it, std::filesystem::directory_iterator{})), n_before);
  };

  const std::string tmp = "/tmp/kagami-test-" + std::to_string(getpid());
  std::filesystem::create_directories(tmp);
  ScopeExit rm([&] { std::filesystem::remove_all(tmp); });
  std::ofstream(tmp + "/text.o") << "not an object at all, just text";
  auto req = request("bad", "count_v1", {tc});
  req.source.path = tmp + "/text.o";
  expect_refused(req, "text.o: not an ELF file");
  req.source.path = "/bin/true";
  expect_refused(req, "true: ELF machine is 62 not BPF");
  req.source.path = tmp + "/missing.o";
  expect_refused(req, "missing.o: No such file");
  {  // same object with its license section renamed
    auto bytes = bpf::read_file(bpf_obj("count_v1"));
    ASSERT_TRUE(bytes);
    std::string s(bytes->begin(), bytes->end());
    for (size_t p = s.find(std::string("license\0", 8)); p != std::string::npos;
         p = s.find(std::string("license\0", 8), p + 1))
      s[p + 6] = 'X';
    std::ofstream(tmp + "/nolicense.o", std::ios::binary) << s;
    req.source.path = tmp + "/nolicense.o";
    expect_refused(req, "nolicense.o: no \"license\" section");
  }
  auto rej = request("bad", "rejected", {"xdp:" + h->host_if});
  auto rr = pm_->load(rej);
  ASSERT_FALSE(rr);
  EXPECT_THAT(rr.error().message, HasSubstr("verifier rejected program rejected_xdp"));
  EXPECT_THAT(rr.error().message, HasSubstr("invalid access to packet"));
  EXPECT_EQ(pm_->list().size(), 1u);

  expect_refused(request("bad", "count_v1", {"tc:kgtnosuch0:egress"}), "no such interface kgtnosuch0");
  expect_refused(request("bad", "count_v1", {tc + "@count_xdp"}),
                 "program count_xdp is of type xdp, which cannot attach to a tc hook");
  expect_refused(request("bad", "count_v1", {"tracepoint:sched/sched_switch"}),
                 "has no program of a type that fits a tracepoint hook");
  expect_refused(request("bad", "count_v1", {tc + "@nosuchprog"}), "has no program named nosuchprog");
  expect_refused(request("keep", "count_v1", {tc}), "a program named keep is already loaded");
  expect_refused(request("Bad Name", "count_v1", {tc}), "invalid name");
  expect_refused(request("bad", "count_v1", {tc + "#50"}), "priority 50");
  EXPECT_FALSE(core::AttachPoint::parse("kprobe2:foo"));

  // The one that was running still runs.
  ASSERT_TRUE(send_udp(h->peer_ip, 7003, "x", 4));
  EXPECT_EQ(udp_count(*pm_, "keep", 7003), 4u);
}

TEST_F(PmLoad, UnprivilegedCallerGetsAClearError) {
  auto h = net_.add_host();
  ASSERT_TRUE(h) << h.error().message;
  const auto req = request("unpriv", "count_v1", {"tc:" + h->host_if + ":egress"});
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(pipefd[0]);
    if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) _exit(2);
    auto r = pm_->load(req);
    std::string msg = r ? "loaded" : r.error().message;
    (void)!write(pipefd[1], msg.data(), msg.size());
    _exit(r ? 1 : 0);
  }
  close(pipefd[1]);
  std::string msg;
  char buf[512];
  for (ssize_t n; (n = read(pipefd[0], buf, sizeof(buf))) > 0;) msg.append(buf, n);
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << msg;
  EXPECT_THAT(msg, HasSubstr("needs root or CAP_BPF+CAP_NET_ADMIN"));
  EXPECT_TRUE(pm_->list().empty());
}

TEST_F(PmLoad, RestartAdoptsPinnedProgramsWithoutReset) {
  auto h = net_.add_host();
  ASSERT_TRUE(h) << h.error().message;
  auto r = pm_->load(request("persist", "count_v1", {"tc:" + h->host_if + ":egress"}));
  ASSERT_TRUE(r) << r.error().message;
  const uint32_t prog_id = r->progs[0].id;
  ASSERT_TRUE(send_udp(h->peer_ip, 7004, "x", 5));
  pm_.reset();  // the agent stops: programs keep running
  ASSERT_TRUE(send_udp(h->peer_ip, 7004, "x", 3));
  restart();
  auto g = pm_->get("persist");
  ASSERT_TRUE(g) << g.error().message;
  EXPECT_TRUE(g->adopted);
  EXPECT_EQ(g->progs[0].id, prog_id) << "adopted, not reloaded";
  ASSERT_EQ(g->attachments.size(), 1u);
  EXPECT_EQ(g->attachments[0].mechanism, "tc-prio:100");
  ASSERT_TRUE(send_udp(h->peer_ip, 7004, "x", 2));
  EXPECT_EQ(udp_count(*pm_, "persist", 7004), 10u) << "counters continue across restarts";
  // An adopted program can be replaced and unloaded like any other.
  auto rep = pm_->replace("persist", request("persist", "count_v2", {}));
  ASSERT_TRUE(rep) << rep.error().message;
  EXPECT_EQ(rep->generation, 2u);
  EXPECT_EQ(udp_count(*pm_, "persist", 7004), 10u);
  ASSERT_TRUE(pm_->unload("persist"));
  EXPECT_FALSE(std::filesystem::exists(pin_root_ + "/persist"));
}

TEST_F(PmLoad, UnloadRemovesExactlyWhatItCreated) {
  auto h = net_.add_host();
  ASSERT_TRUE(h) << h.error().message;
  // An unrelated TC filter on the same hook, and an unrelated pin beside ours.
  const bpf_insn insns[] = {{BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, -1},
                            {BPF_JMP | BPF_EXIT, 0, 0, 0, 0}};
  Fd other(bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "unrelated", "GPL", insns, 2, nullptr));
  ASSERT_TRUE(other.valid());
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = h->host_ifindex, .attach_point = BPF_TC_EGRESS);
  int err = bpf_tc_hook_create(&hook);
  ASSERT_TRUE(err == 0 || err == -EEXIST);
  LIBBPF_OPTS(bpf_tc_opts, topts, .prog_fd = other.get(), .handle = 1, .priority = 7);
  ASSERT_EQ(bpf_tc_attach(&hook, &topts), 0);

  auto r = pm_->load(request("mine", "count_v1", {"tc:" + h->host_if + ":egress"}));
  ASSERT_TRUE(r) << r.error().message;
  const std::string unrelated = pin_root_ + "/mine/unrelated";
  Fd m(bpf_map_create(BPF_MAP_TYPE_ARRAY, "unrelated", 4, 4, 1, nullptr));
  ASSERT_TRUE(m.valid());
  ASSERT_EQ(bpf_obj_pin(m.get(), unrelated.c_str()), 0);

  ASSERT_TRUE(pm_->unload("mine"));
  EXPECT_TRUE(std::filesystem::exists(unrelated)) << "unload must not remove pins it did not create";
  EXPECT_FALSE(std::filesystem::exists(pin_root_ + "/mine/maps"));
  LIBBPF_OPTS(bpf_tc_opts, q, .handle = 1, .priority = 7);
  ASSERT_EQ(bpf_tc_query(&hook, &q), 0) << "the unrelated filter survives";
  LIBBPF_OPTS(bpf_tc_opts, q2, .handle = 1, .priority = 100);
  EXPECT_NE(bpf_tc_query(&hook, &q2), 0) << "our filter is gone";
  std::filesystem::remove(unrelated);
}

extern "C" __attribute__((noinline)) int kagami_uprobe_target(int x) {
  asm volatile("" ::: "memory");  // keep the call and the symbol
  return x + 1;
}

TEST_F(PmLoad, NonPacketHooksAttachCountAndReplace) {
  // A private cgroup for the cgroup hooks.
  const std::string root = bpf::cgroup2_root();
  ASSERT_FALSE(root.empty()) << "no cgroup2 mount";
  const std::string cg = root + "/kagami-test-" + std::to_string(getpid());
  ASSERT_EQ(mkdir(cg.c_str(), 0755), 0) << strerror(errno);
  ScopeExit rmcg([&] { rmdir(cg.c_str()); });
  const std::string self = std::filesystem::read_symlink("/proc/self/exe");
  auto req = request("hooks", "hooks",
                     {"tracepoint:syscalls/sys_enter_getpid", "raw_tp:sys_enter", "tp_btf:sys_enter",
                      "cgroup:" + cg + ":connect4", "cgroup:" + cg + ":sockops", "sk_msg:socks",
                      "uprobe:" + self + ":kagami_uprobe_target"});
  auto r = pm_->load(req);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->attachments.size(), 7u);
  for (const auto& a : r->attachments) EXPECT_THAT(a.mechanism, HasSubstr("bpf_link")) << a.point.to_string();

  auto hits = [&](uint32_t k) { return read_u64("hooks", "hits", k); };
  auto exercise = [&] {
    for (int i = 0; i < 3; i++) syscall(SYS_getpid);
    EXPECT_EQ(kagami_uprobe_target(1), 2);
    pid_t pid = fork();
    if (pid == 0) {  // join the cgroup, then connect a UDP socket (connect4 hook)
      std::ofstream(cg + "/cgroup.procs") << getpid();
      int s = socket(AF_INET, SOCK_DGRAM, 0);
      auto a = addr4("127.0.0.1", 9);
      _exit(connect(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 ? 0 : 1);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  };
  exercise();
  const uint64_t tp = hits(0), raw = hits(1), btf = hits(2), conn = hits(3), up = hits(6);
  EXPECT_GE(tp, 3u);
  EXPECT_GE(raw, 3u);
  EXPECT_GE(btf, 3u);
  EXPECT_GE(conn, 1u);
  EXPECT_GE(up, 1u);

  // Replace: updatable links switch in place, the others attach new then
  // detach old; the hits map (same layout) is carried over.
  auto rep = pm_->replace("hooks", request("hooks", "hooks", {}));
  ASSERT_TRUE(rep) << rep.error().message;
  EXPECT_EQ(rep->generation, 2u);
  exercise();
  EXPECT_GE(hits(0), tp + 3);
  EXPECT_GE(hits(2), btf + 3);
  EXPECT_GE(hits(3), conn + 1);
  EXPECT_GE(hits(6), up + 1);

  restart();
  auto g = pm_->get("hooks");
  ASSERT_TRUE(g);
  EXPECT_TRUE(g->adopted);
  EXPECT_EQ(g->generation, 2u);
  ASSERT_TRUE(pm_->unload("hooks"));
  EXPECT_FALSE(std::filesystem::exists(pin_root_ + "/hooks"));
}

}  // namespace
}  // namespace kagami::test
