// AttachPoint::parse/to_string: the operator's hook strings (CLI, YAML).
#include <gtest/gtest.h>

#include "core/attach.h"

using kagami::core::AttachPoint;

namespace {

AttachPoint parse_ok(const std::string& s) {
  auto p = AttachPoint::parse(s);
  EXPECT_TRUE(p) << s << ": " << (p ? "" : p.error().message);
  return p ? *p : AttachPoint{};
}

std::string parse_err(const std::string& s) {
  auto p = AttachPoint::parse(s);
  EXPECT_FALSE(p) << s << " parsed but should not";
  return p ? "" : p.error().message;
}

TEST(AttachPoint, ParsesEveryKind) {
  auto x = parse_ok("xdp:eth0");
  EXPECT_EQ(x.kind, AttachPoint::Kind::Xdp);
  EXPECT_EQ(x.target, "eth0");
  EXPECT_EQ(x.option, "");
  EXPECT_EQ(parse_ok("xdp:eth0:generic").option, "generic");
  EXPECT_EQ(parse_ok("xdp:eth0:auto").option, "");
  auto t = parse_ok("tc:eth1:egress@obs_tc_egress#20");
  EXPECT_EQ(t.kind, AttachPoint::Kind::Tc);
  EXPECT_EQ(t.option, "egress");
  EXPECT_EQ(t.program, "obs_tc_egress");
  EXPECT_EQ(t.order, 20);
  auto t2 = parse_ok("tc:eth1:ingress#5@p");
  EXPECT_EQ(t2.order, 5);
  EXPECT_EQ(t2.program, "p");
  auto tp = parse_ok("tracepoint:sched/sched_process_exec");
  EXPECT_EQ(tp.kind, AttachPoint::Kind::Tracepoint);
  EXPECT_EQ(tp.target, "sched/sched_process_exec");
  EXPECT_EQ(parse_ok("raw_tp:sched_switch").kind, AttachPoint::Kind::RawTp);
  EXPECT_EQ(parse_ok("tp_btf:sched_switch").kind, AttachPoint::Kind::TpBtf);
  auto cg = parse_ok("cgroup:/sys/fs/cgroup/x/y:connect4");
  EXPECT_EQ(cg.kind, AttachPoint::Kind::Cgroup);
  EXPECT_EQ(cg.target, "/sys/fs/cgroup/x/y");
  EXPECT_EQ(cg.option, "connect4");
  EXPECT_EQ(parse_ok("sk_msg:socks").target, "socks");
  auto sk = parse_ok("sk_skb:socks:parser");
  EXPECT_EQ(sk.kind, AttachPoint::Kind::SkSkb);
  EXPECT_EQ(sk.target, "socks");
  EXPECT_EQ(sk.option, "parser");
  EXPECT_EQ(parse_ok("sk_skb:socks:verdict").option, "verdict");
  EXPECT_NE(parse_err("sk_skb:socks").find("parser or"), std::string::npos);
  EXPECT_NE(parse_err("sk_skb:socks:msg").find("parser or"), std::string::npos);
  auto up = parse_ok("uprobe:/usr/bin/bash:readline");
  EXPECT_EQ(up.kind, AttachPoint::Kind::Uprobe);
  EXPECT_EQ(up.target, "/usr/bin/bash");
  EXPECT_EQ(up.option, "readline");
  EXPECT_EQ(parse_ok("uretprobe:/lib/libc.so.6:malloc").kind, AttachPoint::Kind::Uretprobe);
}

TEST(AttachPoint, RoundTrips) {
  for (std::string s : {"xdp:eth0", "xdp:eth0:native", "tc:eth0:ingress@p#7", "tracepoint:a/b",
                        "raw_tp:x", "tp_btf:y", "cgroup:/sys/fs/cgroup:sockops", "sk_msg:m", "sk_skb:m:verdict",
                        "uprobe:/bin/true:main", "uretprobe:/bin/true:main@q"}) {
    EXPECT_EQ(parse_ok(s).to_string(), s);
    EXPECT_EQ(parse_ok(parse_ok(s).to_string()), parse_ok(s));
  }
}

TEST(AttachPoint, RejectsBadInputNamingTheCause) {
  EXPECT_NE(parse_err("bogus:eth0").find("unknown hook kind 'bogus'"), std::string::npos);
  EXPECT_NE(parse_err("eth0").find("expected kind:target"), std::string::npos);
  EXPECT_NE(parse_err("tc:eth0").find("direction"), std::string::npos);
  EXPECT_NE(parse_err("tc:eth0:sideways").find("direction"), std::string::npos);
  EXPECT_NE(parse_err("xdp:eth0:turbo").find("xdp mode 'turbo'"), std::string::npos);
  EXPECT_NE(parse_err("xdp:").find("missing interface"), std::string::npos);
  EXPECT_NE(parse_err("xdp:averyveryverylongifname0").find("too long"), std::string::npos);
  EXPECT_NE(parse_err("tracepoint:sched").find("category/name"), std::string::npos);
  EXPECT_NE(parse_err("cgroup:/sys/fs/cgroup:bind9").find("'bind9'"), std::string::npos);
  EXPECT_NE(parse_err("cgroup:relative:connect4").find("absolute"), std::string::npos);
  EXPECT_NE(parse_err("uprobe:/bin/true").find("binary:symbol"), std::string::npos);
  EXPECT_NE(parse_err("tc:eth0:egress#0").find("1..65535"), std::string::npos);
  EXPECT_NE(parse_err("tc:eth0:egress#x").find("1..65535"), std::string::npos);
  EXPECT_NE(parse_err("tc:eth0:egress@bad-name").find("bad program name"), std::string::npos);
}

}  // namespace

// The hook table (src/core/pm_hooks.cc): every attach kind has exactly one
// row, and the row agrees with the spec's kind name.
#include "common/names.h"
#include "core/pm_internal.h"

namespace {

TEST(HookTable, EveryKindHasOneRowNamedAsInTheSpec) {
  using K = AttachPoint::Kind;
  const std::vector<std::pair<K, std::string>> kinds = {
      {K::Xdp, "xdp:eth0"},        {K::Tc, "tc:eth0:ingress"},
      {K::Tracepoint, "tracepoint:sched/sched_switch"},
      {K::RawTp, "raw_tp:sys_enter"}, {K::TpBtf, "tp_btf:sys_enter"},
      {K::Cgroup, "cgroup:/sys/fs/cgroup:connect4"}, {K::SkMsg, "sk_msg:socks"}, {K::SkSkb, "sk_skb:socks:parser"},
      {K::Uprobe, "uprobe:/bin/true:main"}, {K::Uretprobe, "uretprobe:/bin/true:main"}};
  for (const auto& [k, spec] : kinds) {
    const auto& row = kagami::core::pm::hook_row(k);
    EXPECT_EQ(row.kind, k);
    auto p = parse_ok(spec);
    EXPECT_EQ(p.kind, k) << spec;
    EXPECT_EQ(spec.substr(0, spec.find(':')), row.name);
    EXPECT_NE(row.accepts, nullptr);
    EXPECT_NE(row.attach, nullptr);
    EXPECT_NE(row.check_target, nullptr);
  }
}

TEST(ProgramNames, OneRuleEverywhere) {
  using kagami::names::valid_program_name;
  EXPECT_TRUE(valid_program_name("a"));
  EXPECT_TRUE(valid_program_name("obs-gtpu_1"));
  EXPECT_TRUE(valid_program_name(std::string(32, 'x')));
  EXPECT_FALSE(valid_program_name(""));
  EXPECT_FALSE(valid_program_name(std::string(33, 'x')));
  EXPECT_FALSE(valid_program_name("_xdp_chain"));  // reserved for the manager
  EXPECT_FALSE(valid_program_name("Upper"));
  EXPECT_FALSE(valid_program_name("a.b"));
  EXPECT_FALSE(kagami::names::check_program_name("a/b"));
}

TEST(Digest, Sha256Hex) {
  const std::string s = "abc";
  EXPECT_EQ(kagami::names::sha256_hex(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size())),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
