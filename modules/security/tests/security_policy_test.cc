// The security policy without the kernel: the YAML format and its errors
// (line and column), the compiler's masks, the enforceability check, the
// default policy, the process cache against a fake /proc, and the decoder.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "modules/security/policy.h"
#include "modules/security/proc_cache.h"
#include "modules/security/security.h"

namespace kagami::modules::security {
namespace {

namespace fs = std::filesystem;

std::string err(const std::string& yaml) {
  auto p = parse_policy(yaml, "p.yaml");
  EXPECT_FALSE(p) << "accepted: " << yaml;
  return p ? std::string() : p.error().message;
}

TEST(SecurityPolicy, DefaultPolicyParsesCompilesAndIsDetectOnly) {
  auto p = parse_policy(default_policy_yaml(), "default");
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_GE(p->rules.size(), 14u);
  for (const auto& r : p->rules) EXPECT_EQ(r.actions, uint32_t(SEC_ACT_ALERT)) << r.name << " is not detect-only";
  ASSERT_TRUE(check_enforceable(*p, false));
  auto c = compile_policy(*p);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->gen.kill, 0u);
  EXPECT_EQ(c->gen.deny, 0u);
  EXPECT_NE(c->kinds[SEC_SIDE_TP][SEC_KIND_EXEC], 0u);
  EXPECT_NE(c->kinds[SEC_SIDE_TP][SEC_KIND_OPEN], 0u);
  EXPECT_EQ(c->kinds[SEC_SIDE_TP][SEC_KIND_CONNECT], 0u);  // no default rule: no event crosses
  EXPECT_TRUE(c->exact.count("/etc/shadow"));
  EXPECT_TRUE(c->bins.count("bash"));
  EXPECT_NE(c->bins.at("open5gs-upfd").except, 0u);
}

TEST(SecurityPolicy, ErrorsCarryLineColumnAndField) {
  EXPECT_EQ(err("rules:\n  - name: a\n    event: opn\n"), "p.yaml:3:12: rules[0].event: unknown event kind 'opn'");
  EXPECT_NE(err("rules:\n  - name: a\n    event: connect\n    match: {cidr: 10.0.0.0/33}\n").find("p.yaml:4:"),
            std::string::npos);
  EXPECT_NE(err("rules:\n  - name: a\n    event: open\n    match: {port: 70000}\n").find("rules[0].match.port"),
            std::string::npos);
  EXPECT_NE(err("rules:\n  - name: a\n    event: open\n    colour: red\n").find("p.yaml:4:5: rules[0].colour: unknown key"),
            std::string::npos);
  EXPECT_NE(err("rules: [\n").find("p.yaml:"), std::string::npos);  // YAML syntax error with a position
  EXPECT_NE(err("rules:\n  - name: a\n    event: exec\n  - name: a\n    event: exec\n").find("used twice"),
            std::string::npos);
  EXPECT_NE(err("rules:\n  - name: a\n    event: exec\n    selector: {namespace: {a: b}}\n")
                .find("p.yaml:4:27: rules[0].selector.namespace: must be a string or a list of strings"),
            std::string::npos);
  EXPECT_NE(err("rules:\n  - name: a\n    event: exec\n    match: {port: 80}\n").find("does not apply"),
            std::string::npos);
  EXPECT_NE(err("rules:\n  - name: a\n    event: open\n    actions: [kill, deny]\n").find("exclude each other"),
            std::string::npos);
  EXPECT_NE(err("rules:\n  - name: a\n    event: open\n    match: {path: relative}\n").find("absolute"),
            std::string::npos);
  std::string many = "rules:\n";
  for (int i = 0; i < 65; ++i) many += "  - {name: r" + std::to_string(i) + ", event: exec}\n";
  EXPECT_NE(err(many).find("at most 64"), std::string::npos);
}

TEST(SecurityPolicy, DenyWhereNoHookCanDenyIsRefusedOfferingKill) {
  auto p = parse_policy("rules:\n  - name: no-shadow\n    event: open\n    match: {path: /etc/shadow}\n    actions: [deny]\n",
                        "p.yaml");
  ASSERT_TRUE(p);
  auto r = check_enforceable(*p, false);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("p.yaml:2:5: rules 'no-shadow': deny of open is not possible"), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("actions: [kill]"), std::string::npos);
  // Packet sockets: sock_create never sees them.
  auto pk = parse_policy("rules:\n  - {name: pk, event: socket, match: {arg: {index: 0, equals: 17}}, actions: [deny]}\n",
                         "p.yaml");
  ASSERT_TRUE(pk);
  EXPECT_FALSE(check_enforceable(*pk, false));
  auto c = parse_policy("rules:\n  - {name: c, event: connect, match: {cidr: 10.0.0.0/8}, actions: [deny]}\n", "p.yaml");
  ASSERT_TRUE(c);
  EXPECT_TRUE(check_enforceable(*c, false));
}

TEST(SecurityPolicy, CompilerMasksPrefixesAndAddresses) {
  auto p = parse_policy(R"(rules:
  - {name: etc, event: open, match: {path_prefix: /etc/}}
  - {name: ssh, event: open, match: {path_prefix: /etc/ssh/}}
  - {name: net, event: connect, match: {not_cidr: 10.1.0.0/16, port: 443}, actions: [deny]}
  - {name: root, event: setuid, match: {uid_not: 0, arg: {index: 0, equals: 0}}}
)",
                        "p");
  ASSERT_TRUE(p) << p.error().message;
  auto c = compile_policy(*p);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->prefix.at("/etc/"), 0x1u);
  EXPECT_EQ(c->prefix.at("/etc/ssh/"), 0x3u);  // the shorter prefix folded in
  EXPECT_EQ(c->kinds[SEC_SIDE_CG][SEC_KIND_CONNECT], 0x4u);
  EXPECT_EQ(c->kinds[SEC_SIDE_TP][SEC_KIND_CONNECT], 0u);
  const sec_rule& n = c->rules[2];
  EXPECT_EQ(n.need, uint32_t(SEC_NEED_NOT_ADDR | SEC_NEED_PORT));
  EXPECT_EQ(n.family, AF_INET);
  EXPECT_EQ(n.mask[0], 0xff);
  EXPECT_EQ(n.mask[1], 0xff);
  EXPECT_EQ(n.mask[2], 0);
  EXPECT_EQ(n.addr[1], 1);
  EXPECT_EQ(c->rules[3].need, uint32_t(SEC_NEED_NOT_UID | SEC_NEED_ARG));
}

TEST(SecurityPolicy, CgroupSelectorsFollowContainerdNames) {
  auto p = parse_policy(R"(rules:
  - {name: any-container, event: exec, selector: {in_container: true}}
  - {name: one-pod, event: exec, selector: {pod_uid: 0f6a1c2d-1111-2222-3333-444455556666}}
  - {name: not-that-one, event: exec, except: {container: abcdef012345}}
)",
                        "p");
  ASSERT_TRUE(p) << p.error().message;
  auto c = compile_policy(*p);
  ASSERT_TRUE(c);
  const std::string cid = "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789";
  const std::string path = "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0f6a1c2d_1111_2222_3333_444455556666.slice/cri-containerd-" + cid + ".scope";
  SelVal v = cgroup_masks(*c, path);
  EXPECT_EQ(v.match, 0x3u);
  EXPECT_EQ(v.except, 0x4u);
  SelVal host = cgroup_masks(*c, "/system.slice/sshd.service");
  EXPECT_EQ(host.match, 0u);
  EXPECT_EQ(host.except, 0u);
}

// namespace / pod_labels / pod_label_expressions against declared
// workloads: Kubernetes matchLabels and matchExpressions semantics, both
// parts ANDed with the cgroup part where given; errors with line and column.
TEST(SecurityPolicy, NamespaceAndLabelSelectorsResolveAgainstWorkloads) {
  auto p = parse_policy(R"(rules:
  - {name: amf, event: exec, selector: {pod_labels: {app: amf}}}
  - {name: ns, event: exec, selector: {namespace: [core5g, edge]}}
  - name: expr
    event: exec
    selector:
      pod_label_expressions:
        - {key: tier, operator: Exists}
        - {key: app, operator: NotIn, values: [smf]}
  - {name: both, event: exec, selector: {namespace: core5g, in_container: true}}
  - {name: not-amf, event: exec, except: {pod_labels: {app: amf}}}
)",
                        "p");
  ASSERT_TRUE(p) << p.error().message;
  auto c = compile_policy(*p);
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->k8s);
  EXPECT_EQ(c->gen.need_cgroup, 0xfu);
  EXPECT_EQ(c->gen.except_cgroup, 0x10u);
  identity::DeclaredWorkload amf{"amf", "core5g", {{"app", "amf"}, {"tier", "cp"}}, "", "/a"};
  identity::DeclaredWorkload smf{"smf", "core5g", {{"app", "smf"}, {"tier", "cp"}}, "", "/b"};
  identity::DeclaredWorkload upf{"upf", "edge", {{"app", "upf"}}, "x", ""};
  const std::string ctr = "/kubepods.slice/cri-containerd-" + std::string(64, 'a') + ".scope";
  EXPECT_EQ(cgroup_masks(*c, "/a", {&amf}).match, 0x7u);
  EXPECT_EQ(cgroup_masks(*c, "/a", {&amf}).except, 0x10u);
  EXPECT_EQ(cgroup_masks(*c, ctr, {&amf}).match, 0xfu);  // in a container too
  EXPECT_EQ(cgroup_masks(*c, "/b", {&smf}).match, 0x2u);
  EXPECT_EQ(cgroup_masks(*c, "/u", {&upf}).match, 0x2u);
  EXPECT_EQ(cgroup_masks(*c, "/none", {}).match, 0u);

  EXPECT_NE(err("rules:\n  - {name: x, event: exec, selector: {pod_labels: [a]}}\n").find("p.yaml:2:"),
            std::string::npos);
  const std::string e = err(R"(rules:
  - name: x
    event: exec
    selector:
      pod_label_expressions:
        - {key: app, operator: Near, values: [a]}
)");
  EXPECT_NE(e.find("p.yaml:6:"), std::string::npos) << e;
  EXPECT_NE(e.find("rules[0].selector.pod_label_expressions[0].operator"), std::string::npos) << e;
  EXPECT_NE(err("rules:\n  - name: x\n    event: exec\n    selector:\n      pod_label_expressions: [{key: a, operator: In}]\n")
                .find("In and NotIn need values"),
            std::string::npos);
}

// The shared reader of the config's workloads, and their cgroups: a cgroup
// workload is its directory and below (file path or relative to the root);
// a netns workload is the cgroups of the processes in it (a fake /proc).
TEST(SecurityWorkloads, DeclaredWorkloadsParseAndResolve) {
  auto w = identity::parse_declared_workloads(nlohmann::json::parse(R"([
    {"name": "amf", "namespace": "core5g", "labels": {"app": "amf"}, "cgroup": "/cg/kubepods.slice/pod-a"},
    {"name": "upf", "labels": {"app": "upf"}, "netns": "/nonexistent-kagami-netns"},
    {"name": "me", "netns": "/proc/self/ns/net", "ips": ["10.0.0.1"]}
  ])"));
  ASSERT_TRUE(w) << w.error().message;
  ASSERT_EQ(w->size(), 3u);
  EXPECT_EQ((*w)[1].ns, "default");
  auto bad = identity::parse_declared_workloads(nlohmann::json::parse(R"([{"name": "a", "netns": "x", "cgroup": "/y"}])"));
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("workloads[0]: give exactly one of netns and cgroup"), std::string::npos);
  bad = identity::parse_declared_workloads(nlohmann::json::parse(R"([{"name": "a", "netns": "x", "labels": {"k": 1}}])"));
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("workloads[0].labels.k"), std::string::npos);

  // A fake /proc: one process in this process's netns, one elsewhere.
  const fs::path proc = fs::temp_directory_path() / ("kagami-test-wl-" + std::to_string(getpid()));
  fs::create_directories(proc / "100" / "ns");
  fs::create_directories(proc / "200" / "ns");
  fs::create_symlink("/proc/self/ns/net", proc / "100" / "ns" / "net");
  fs::create_symlink("/proc/self/ns/uts", proc / "200" / "ns" / "net");
  std::ofstream(proc / "100" / "cgroup") << "0::/kubepods.slice/pod-u/cri-containerd-1.scope\n";
  std::ofstream(proc / "200" / "cgroup") << "0::/other\n";
  auto cg = identity::workload_cgroups(*w, "/cg", proc.string());
  fs::remove_all(proc);
  ASSERT_EQ(cg.size(), 3u);
  EXPECT_TRUE(cg[0].contains("/kubepods.slice/pod-a"));
  EXPECT_TRUE(cg[0].contains("/kubepods.slice/pod-a/cri-containerd-x.scope"));
  EXPECT_FALSE(cg[0].contains("/kubepods.slice/pod-ab"));
  EXPECT_TRUE(cg[1].exact.empty());  // the namespace does not exist (yet): nothing, no error
  EXPECT_EQ(cg[2].exact, (std::set<std::string>{"/kubepods.slice/pod-u/cri-containerd-1.scope"}));
}

// Exact paths share the trie with prefixes: an exact entry carries the
// rules of every prefix of it (the longest match is the whole answer); the
// open-flag masks let the kernel drop an open before reading its path; an
// exact path needs room for its NUL in the key (254 bytes at most).
TEST(SecurityPolicy, ExactPathsCarryTheirPrefixesAndFlagMasks) {
  auto p = parse_policy(R"(rules:
  - {name: etc-writes, event: open, match: {path_prefix: /etc/, open: write}}
  - {name: shadow, event: open, match: {path: /etc/shadow}}
  - {name: reads, event: open, match: {open: read}}
  - {name: root, event: open, match: {path_prefix: /}}
)",
                        "p");
  ASSERT_TRUE(p) << p.error().message;
  auto c = compile_policy(*p);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->exact.at("/etc/shadow"), 0xbu);  // itself, /etc/ and /
  EXPECT_EQ(c->prefix.at("/etc/"), 0x9u);
  EXPECT_EQ(c->gen.open_write, 0x1u);
  EXPECT_EQ(c->gen.open_rdonly, 0x4u);
  const std::string p254 = "/" + std::string(253, 'a'), p255 = "/" + std::string(254, 'a');
  EXPECT_TRUE(parse_policy("rules:\n  - {name: x, event: open, match: {path: " + p254 + "}}\n", "p"));
  EXPECT_NE(err("rules:\n  - {name: x, event: open, match: {path: " + p255 + "}}\n").find("longer than the 254 bytes"),
            std::string::npos);
  EXPECT_TRUE(parse_policy("rules:\n  - {name: x, event: open, match: {path_prefix: " + p255 + "}}\n", "p"));
}

// match.args: parsed with line and column, exec only, alert only; matched
// as documented (index, equals, prefix, contains; any argument without
// an index).
TEST(SecurityPolicy, ExecArgumentPatterns) {
  auto p = parse_policy(R"(rules:
  - name: nc
    event: exec
    match:
      args: [{index: 1, equals: "-c"}, {contains: "nc "}]
  - {name: curl, event: exec, match: {args: {prefix: "http://"}}}
)",
                        "p");
  ASSERT_TRUE(p) << p.error().message;
  ASSERT_EQ(p->rules[0].args.size(), 2u);
  auto c = compile_policy(*p);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->args_rules, 0x3u);
  const auto& a = p->rules[0].args;
  auto all = [&](std::vector<std::string> v) {
    return std::all_of(a.begin(), a.end(), [&](const ArgPattern& x) { return x.matches(v); });
  };
  EXPECT_TRUE(all({"sh", "-c", "nc -l 4444"}));
  EXPECT_FALSE(all({"sh", "-e", "-c", "nc -l 4444"}));
  EXPECT_FALSE(all({"sh", "-c", "echo nc"}));
  EXPECT_FALSE(all({"sh"}));
  EXPECT_TRUE(p->rules[1].args[0].matches({"curl", "-s", "http://x/"}));
  EXPECT_FALSE(p->rules[1].args[0].matches({"curl", "https://x/"}));

  std::string e = err("rules:\n  - name: x\n    event: exec\n    match: {args: {index: 1, equals: a}}\n    actions: [kill]\n");
  EXPECT_NE(e.find("p.yaml:5:"), std::string::npos) << e;
  EXPECT_NE(e.find("only alert is possible"), std::string::npos) << e;
  e = err("rules:\n  - {name: x, event: open, match: {args: {contains: a}}}\n");
  EXPECT_NE(e.find("does not apply to event kind open"), std::string::npos) << e;
  e = err("rules:\n  - {name: x, event: exec, match: {args: {index: 1}}}\n");
  EXPECT_NE(e.find("needs equals, prefix or contains"), std::string::npos) << e;
  e = err("rules:\n  - {name: x, event: exec, match: {args: {suffix: a}}}\n");
  EXPECT_NE(e.find("rules[0].match.args.suffix: unknown key"), std::string::npos) << e;
}

TEST(SecurityConfig, ErrorsNameTheField) {
  EXPECT_FALSE(parse_security_config({{"ring_kb", 3}}));
  auto e = parse_security_config({{"colour", 1}});
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("security"), std::string::npos);
  EXPECT_TRUE(parse_security_config(nlohmann::json::object()));
}

// A fake /proc: pid reuse, deep ancestry, huge argv.
class FakeProc {
 public:
  FakeProc() : root_(fs::temp_directory_path() / ("kagami-test-proc-" + std::to_string(::getpid()))) {
    fs::create_directories(root_);
  }
  ~FakeProc() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  void add(uint32_t pid, uint32_t ppid, const std::string& comm, uint64_t start, const std::string& cmdline = "") {
    fs::create_directories(root_ / std::to_string(pid));
    std::ofstream(root_ / std::to_string(pid) / "stat")
        << pid << " (" << comm << ") S " << ppid << " 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 " << start << " 0\n";
    std::ofstream(root_ / std::to_string(pid) / "cmdline", std::ios::binary) << cmdline;
  }
  void remove(uint32_t pid) { fs::remove_all(root_ / std::to_string(pid)); }
  std::string root() const { return root_.string(); }

 private:
  fs::path root_;
};

TEST(SecurityProcCache, PidReuseDeepAncestryHugeArgvAndBound) {
  FakeProc fp;
  fp.add(1, 0, "init", 1);
  // A chain 1 <- 100 <- 101 <- ... <- 1099 (1000 deep).
  for (uint32_t pid = 100; pid < 1100; ++pid) fp.add(pid, pid == 100 ? 1 : pid - 1, "p" + std::to_string(pid), pid);
  std::string huge;
  for (int i = 0; i < 5000; ++i) huge += "arg" + std::to_string(i) + std::string(1, '\0');
  fp.add(2000, 1099, "huge", 5000, huge);
  ProcCache pc(256, fp.root());
  EXPECT_EQ(pc.seed(), 1002u);  // every process read once
  EXPECT_LE(pc.size(), 256u);  // bounded
  auto h = pc.get(2000);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->args.size(), 32u);  // bounded
  auto anc = pc.ancestry(1099, 8);
  ASSERT_EQ(anc.size(), 8u);
  EXPECT_EQ(anc[0].tgid, 1099u);
  EXPECT_EQ(anc[7].tgid, 1092u);
  // A gone process stays known from the cache.
  pc.on_exec(3000, 2000, "sh", "/bin/sh", {"sh", "-c", "x"});
  auto gone = pc.get(3000);
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->exe, "/bin/sh");
  // Pid reuse: 1099 dies, another process gets the pid (another start time).
  pc.get(1099);
  fp.remove(1099);
  fp.add(1099, 1, "stranger", 999999);
  auto re = pc.get(1099);
  ASSERT_TRUE(re);
  EXPECT_EQ(re->comm, "stranger");
  EXPECT_EQ(re->ppid, 1u);
}

TEST(SecurityDecode, RefusesForeignRecordsAndNamesRules) {
  DecodeContext d;
  d.names = std::make_shared<NameTable>();
  auto rn = std::make_shared<RuleNames>();
  rn->names = {"a", "b"};
  rn->severity = {"notice", "critical"};
  rn->actions = {SEC_ACT_ALERT, SEC_ACT_KILL};
  d.names->gens[1] = rn;
  sec_event e{};
  EXPECT_FALSE(decode_security_record({reinterpret_cast<uint8_t*>(&e), sizeof(e) - 1}, d));
  EXPECT_FALSE(decode_security_record({reinterpret_cast<uint8_t*>(&e), sizeof(e)}, d));  // kind 0
  e.hdr.kind = SEC_KIND_OPEN;
  e.hdr.len = sizeof(e);
  e.hdr.flags = SEC_F_KILLED;
  e.gen = 1;
  e.rules = 0x3;
  e.actions = SEC_ACT_ALERT | SEC_ACT_KILL;
  e.tgid = e.pid = 42;
  std::strcpy(e.path, "/etc/shadow");
  e.args[2] = O_RDONLY;
  auto j = decode_security_record({reinterpret_cast<uint8_t*>(&e), sizeof(e)}, d);
  ASSERT_TRUE(j) << j.error().message;
  EXPECT_EQ((*j)["kind"], "open");
  EXPECT_EQ((*j)["rule"], "a");
  EXPECT_EQ((*j)["rules"], nlohmann::json({"a", "b"}));
  EXPECT_EQ((*j)["severity"], "critical");  // the highest of the matched rules
  EXPECT_EQ((*j)["killed"], true);
  EXPECT_EQ((*j)["file"]["path"], "/etc/shadow");
  // A missing path is null, never a guess.
  e.hdr.flags = SEC_F_PATH_MISSING;
  e.path[0] = '\0';
  j = decode_security_record({reinterpret_cast<uint8_t*>(&e), sizeof(e)}, d);
  ASSERT_TRUE(j);
  EXPECT_TRUE((*j)["file"]["path"].is_null());
  EXPECT_EQ((*j)["file"]["missing"], true);
}

}  // namespace
}  // namespace kagami::modules::security
