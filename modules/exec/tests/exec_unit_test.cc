// The exec module without the kernel: config parsing, the ring-size patch of
// the embedded object, the load request, and decoding of crafted records.
#include <gtest/gtest.h>

#include <linux/types.h>

#include <cstring>
#include <vector>

#include <nlohmann/json.hpp>

#include "bpf/elf_patch.h"
#include "modules/exec/abi.h"
#include "modules/exec/exec.h"

namespace kagami::modules {
namespace {

using nlohmann::json;

TEST(ExecConfig, DefaultsAndValues) {
  auto d = parse_exec_config(json::object());
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->ring_kb, 256u);
  auto c = parse_exec_config({{"enabled", true}, {"rate", 5}, {"burst", 7}, {"ring_kb", 16}, {"cgroup", "/sys/fs/cgroup/x"}});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->rate, 5u);
  EXPECT_EQ(c->burst, 7u);
  EXPECT_EQ(c->ring_kb, 16u);
  EXPECT_EQ(c->cgroup, "/sys/fs/cgroup/x");
}

TEST(ExecConfig, ErrorsNameTheField) {
  auto e = parse_exec_config({{"rates", 5}});
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("exec.rates: unknown key"), std::string::npos) << e.error().message;
  e = parse_exec_config({{"ring_kb", 12}});
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("exec.ring_kb"), std::string::npos) << e.error().message;
  e = parse_exec_config({{"ring_kb", 1}});  // below one page
  ASSERT_FALSE(e);
  e = parse_exec_config({{"burst", 0}});
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("exec.burst"), std::string::npos);
  e = parse_exec_config({{"rate", -1}});
  ASSERT_FALSE(e);
  e = parse_exec_config({{"rate", "fast"}});
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("exec.rate"), std::string::npos);
  e = parse_exec_config({{"cgroup", "relative/path"}});
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("exec.cgroup"), std::string::npos);
}

TEST(ExecObject, RingSizeIsPatchedIntoTheBtf) {
  auto def = exec_object_bytes(256);
  ASSERT_TRUE(def) << def.error().message;
  auto n = bpf::map_max_entries_in_elf(*def, EXEC_MAP_EVENTS);
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(*n, uint32_t(EXEC_RING_BYTES_DEFAULT));
  auto small = exec_object_bytes(4);
  ASSERT_TRUE(small) << small.error().message;
  n = bpf::map_max_entries_in_elf(*small, EXEC_MAP_EVENTS);
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(*n, 4096u);
  EXPECT_NE(*small, *def);  // a different object: a changed size is a replace
  // Other maps are untouched, unknown maps are named.
  auto drops = bpf::map_max_entries_in_elf(*small, EXEC_MAP_DROPS);
  ASSERT_TRUE(drops);
  EXPECT_EQ(*drops, uint32_t(KG_DROP__MAX));
  auto missing = bpf::map_max_entries_in_elf(*small, "no_such_map");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("no_such_map"), std::string::npos);
  std::vector<uint8_t> junk(100, 0);
  EXPECT_FALSE(bpf::patch_map_max_entries(junk, EXEC_MAP_EVENTS, 4096));
}

TEST(ExecConfig, Hooks) {
  auto c = parse_exec_config({{"hooks", "tp_btf"}});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->hooks, "tp_btf");
  auto e = parse_exec_config({{"hooks", "kprobe"}});
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("exec.hooks"), std::string::npos);
  EXPECT_EQ(*choose_exec_hooks("auto", true), ExecHooks::TpBtf);
  EXPECT_EQ(*choose_exec_hooks("auto", false), ExecHooks::Tracepoint);
  EXPECT_EQ(*choose_exec_hooks("tracepoint", true), ExecHooks::Tracepoint);
  EXPECT_FALSE(choose_exec_hooks("tp_btf", false));  // never a silent fallback
}

TEST(ExecObject, TpBtfLoadRequest) {
  auto r = exec_load_request(ExecConfig{}, ExecHooks::TpBtf);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->attach.size(), 1u);
  EXPECT_EQ(r->attach[0].kind, core::AttachPoint::Kind::TpBtf);
  EXPECT_EQ(r->attach[0].target, "sched_process_exec");
  EXPECT_EQ(r->attach[0].program, "exec_btf");
  auto small = exec_object_bytes(8, ExecHooks::TpBtf);
  ASSERT_TRUE(small);
  EXPECT_EQ(*bpf::map_max_entries_in_elf(*small, EXEC_MAP_EVENTS), 8192u);
}

TEST(ExecObject, LoadRequest) {
  ExecConfig c;
  auto r = exec_load_request(c);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->name, "exec");
  EXPECT_TRUE(r->builtin);
  ASSERT_EQ(r->attach.size(), 1u);
  EXPECT_EQ(r->attach[0].kind, core::AttachPoint::Kind::Tracepoint);
  EXPECT_EQ(r->attach[0].target, "sched/sched_process_exec");
  EXPECT_EQ(r->attach[0].program, "exec_tp");
}

exec_event sample() {
  exec_event e{};
  e.hdr.kind = EXEC_KIND_EXEC;
  e.hdr.len = sizeof(e);
  e.hdr.mono_ns = 123;
  e.pid = 10;
  e.tgid = 10;
  e.ppid = 1;
  e.uid = 1000;
  e.gid = 100;
  e.cgroup_id = 42;
  std::strcpy(e.comm, "true");
  std::strcpy(e.filename, "/bin/true");
  return e;
}

std::span<const uint8_t> bytes(const exec_event& e) {
  return {reinterpret_cast<const uint8_t*>(&e), sizeof(e)};
}

TEST(ExecDecode, Fields) {
  exec_event e = sample();
  auto j = decode_exec_record(bytes(e), nullptr);
  ASSERT_TRUE(j) << j.error().message;
  EXPECT_EQ((*j)["kind"], "exec");
  EXPECT_EQ((*j)["pid"], 10);
  EXPECT_EQ((*j)["ppid"], 1);
  EXPECT_EQ((*j)["uid"], 1000);
  EXPECT_EQ((*j)["gid"], 100);
  EXPECT_EQ((*j)["cgroup_id"], 42);
  EXPECT_EQ((*j)["comm"], "true");
  EXPECT_EQ((*j)["filename"], "/bin/true");
  EXPECT_EQ((*j)["filename_truncated"], false);
  EXPECT_EQ((*j)["mono_ns"], 123);
  EXPECT_FALSE(j->contains("workload"));
}

TEST(ExecDecode, TruncatedAndUnterminatedStrings) {
  exec_event e = sample();
  std::memset(e.filename, 'a', sizeof(e.filename));  // no NUL: must stop at the array end
  std::memset(e.comm, 'b', sizeof(e.comm));
  e.hdr.flags = EXEC_F_FILENAME_TRUNCATED;
  auto j = decode_exec_record(bytes(e), nullptr);
  ASSERT_TRUE(j);
  EXPECT_EQ((*j)["filename"].get<std::string>().size(), size_t(EXEC_FILENAME_LEN));
  EXPECT_EQ((*j)["comm"].get<std::string>().size(), size_t(EXEC_COMM_LEN));
  EXPECT_EQ((*j)["filename_truncated"], true);
}

TEST(ExecDecode, RefusesForeignRecords) {
  exec_event e = sample();
  EXPECT_FALSE(decode_exec_record(bytes(e).subspan(0, 100), nullptr));
  e.hdr.kind = 2;
  EXPECT_FALSE(decode_exec_record(bytes(e), nullptr));
  e = sample();
  e.hdr.len = 100;
  EXPECT_FALSE(decode_exec_record(bytes(e), nullptr));
}

}  // namespace
}  // namespace kagami::modules
