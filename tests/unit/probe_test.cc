// ProbeReport rendering and resolve() on hand-made reports (no kernel, no
// root): the logic modules rely on to pick a hook or refuse to start.
#include <gtest/gtest.h>

#include <set>

#include <nlohmann/json.hpp>

#include "core/probe.h"

namespace {

using kagami::core::Feature;
using kagami::core::FeatureNeed;
using kagami::core::ProbeReport;
using kagami::core::Resolution;
using kagami::core::resolve;

ProbeReport sample() {
  ProbeReport r;
  r.features = {
      {"kernel_version", "kernel", true, "6.18.44 x86_64"},
      {"tracepoint", "prog_type", true, "loaded"},
      {"tc", "prog_type", true, "sched_cls via netlink clsact"},
      {"kprobe", "prog_type", false, "kernel built without kprobes; attach: No such file or directory"},
      {"fentry", "prog_type", false, "load: Operation not permitted"},
      {"lsm", "prog_type", false, "load: Operation not permitted"},
      {"ringbuf", "map", true, "created"},
      {"bpf_send_signal", "helper", true, "callable from tracepoint"},
  };
  return r;
}

TEST(ProbeReport, FindHasAndAliases) {
  auto r = sample();
  EXPECT_TRUE(r.has("tracepoint"));
  EXPECT_FALSE(r.has("kprobe"));
  EXPECT_FALSE(r.has("nonexistent"));
  EXPECT_EQ(r.find("nonexistent"), nullptr);
  ASSERT_NE(r.find("sched_cls"), nullptr);
  EXPECT_EQ(r.find("sched_cls")->name, "tc");
  EXPECT_TRUE(r.has("sched_cls"));
}

TEST(ProbeReport, JsonSchema) {
  auto j = sample().to_json();
  ASSERT_TRUE(j.is_object());
  ASSERT_TRUE(j["features"].is_array());
  ASSERT_EQ(j["features"].size(), 8u);
  const auto& k = j["features"][3];
  EXPECT_EQ(k["name"], "kprobe");
  EXPECT_EQ(k["category"], "prog_type");
  EXPECT_EQ(k["available"], false);
  EXPECT_EQ(k["detail"], "kernel built without kprobes; attach: No such file or directory");
  EXPECT_EQ(j["summary"]["available"], 5);
  EXPECT_EQ(j["summary"]["unavailable"], 3);
  // Exactly these keys per feature: consumers of --json rely on them.
  for (const auto& f : j["features"]) {
    EXPECT_EQ(f.size(), 4u);
    for (const char* key : {"name", "category", "available", "detail"}) EXPECT_TRUE(f.contains(key)) << key;
  }
}

TEST(ProbeReport, TableGroupsByCategoryAndAligns) {
  std::string t = sample().to_table();
  // Category headings in report order, each once.
  size_t kern = t.find("Kernel\n"), prog = t.find("Program types"), map = t.find("Map types\n"),
         help = t.find("Helpers\n");
  ASSERT_NE(kern, std::string::npos) << t;
  ASSERT_NE(prog, std::string::npos) << t;
  ASSERT_NE(map, std::string::npos) << t;
  ASSERT_NE(help, std::string::npos) << t;
  EXPECT_LT(kern, prog);
  EXPECT_LT(prog, map);
  EXPECT_LT(map, help);
  // Names padded to the longest one ("kernel_version", "bpf_send_signal").
  EXPECT_NE(t.find("  kprobe           no   kernel built without kprobes"), std::string::npos) << t;
  EXPECT_NE(t.find("  ringbuf          yes  created\n"), std::string::npos) << t;
  EXPECT_NE(t.find("5 of 8 features available"), std::string::npos) << t;
}

TEST(ProbeReport, TableWarnsWhenUnprivileged) {
  auto r = sample();
  EXPECT_EQ(r.to_table().find("WARNING"), std::string::npos);
  r.features.push_back({"bpf_privileges", "kernel", false, "missing CAP_BPF: run as root"});
  EXPECT_EQ(r.to_table().rfind("WARNING: missing CAP_BPF: run as root\n\n", 0), 0u) << r.to_table();
}

TEST(Resolve, AvailableFallbackAndMissing) {
  auto r = sample();
  std::vector<FeatureNeed> needs = {
      {"tc", true, ""},
      {"kprobe", false, "tracepoint"},
      {"fentry", false, "tracepoint"},
      {"ringbuf", false, "perf_event_array"},
  };
  Resolution res = resolve(needs, r);
  ASSERT_EQ(res.items.size(), 4u);
  EXPECT_EQ(res.items[0].state, Resolution::State::Available);
  EXPECT_EQ(res.items[1].state, Resolution::State::Fallback);
  EXPECT_EQ(res.items[2].state, Resolution::State::Fallback);
  EXPECT_EQ(res.items[3].state, Resolution::State::Available);
  EXPECT_TRUE(res.ok());
  EXPECT_EQ(res.error(), "");
  EXPECT_TRUE(res.check());
  auto fb = res.fallbacks();
  ASSERT_EQ(fb.size(), 2u);
  EXPECT_EQ(fb[0], "kprobe unavailable (kernel built without kprobes; attach: No such file or directory): "
                   "using tracepoint");
  EXPECT_EQ(fb[1], "fentry unavailable (load: Operation not permitted): using tracepoint");
  auto j = res.to_json();
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["needs"][1]["state"], "fallback");
  EXPECT_EQ(j["needs"][1]["using"], "tracepoint");
  EXPECT_EQ(j["needs"][0]["state"], "available");
}

TEST(Resolve, MissingRequiredIsAClearError) {
  auto r = sample();
  Resolution res = resolve({{"tracepoint", true, ""}, {"lsm", true, ""}, {"kprobe", false, "tracepoint"}}, r);
  EXPECT_FALSE(res.ok());
  EXPECT_EQ(res.items[1].state, Resolution::State::Missing);
  EXPECT_EQ(res.error(), "kernel lacks required feature lsm (load: Operation not permitted)");
  auto c = res.check();
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message, res.error());
  EXPECT_EQ(res.to_json()["needs"][1]["state"], "missing");
  EXPECT_EQ(res.to_json()["ok"], false);

  Resolution two = resolve({{"lsm", true, ""}, {"fentry", true, ""}}, r);
  EXPECT_EQ(two.error(),
            "kernel lacks required features lsm (load: Operation not permitted); "
            "fentry (load: Operation not permitted)");
}

TEST(Resolve, UnknownNamesAreCalledOut) {
  auto r = sample();
  Resolution req = resolve({{"kprob", true, ""}}, r);
  EXPECT_FALSE(req.ok());
  EXPECT_NE(req.error().find("kprob (unknown feature name"), std::string::npos) << req.error();
  Resolution opt = resolve({{"kprob", false, "tracepoint"}}, r);
  EXPECT_TRUE(opt.ok());
  ASSERT_EQ(opt.fallbacks().size(), 1u);
  EXPECT_NE(opt.fallbacks()[0].find("unknown feature name"), std::string::npos);
}

TEST(Resolve, FallbackWithoutAlternativeSaysFeatureOff) {
  Resolution res = resolve({{"fentry", false, ""}}, sample());
  ASSERT_EQ(res.fallbacks().size(), 1u);
  EXPECT_NE(res.fallbacks()[0].find("using nothing (feature off)"), std::string::npos);
}

TEST(Resolve, EmptyNeedsAreFine) {
  Resolution res = resolve({}, sample());
  EXPECT_TRUE(res.ok());
  EXPECT_TRUE(res.items.empty());
}

TEST(FeatureNames, StableAndUnique) {
  const auto& names = kagami::core::feature_names();
  std::set<std::string> seen(names.begin(), names.end());
  EXPECT_EQ(seen.size(), names.size());
  for (const char* n : {"xdp", "tc", "tracepoint", "raw_tp", "tp_btf", "kprobe", "kprobe_multi", "uprobe",
                        "fentry", "fexit", "lsm", "cgroup_skb", "cgroup_sock_addr", "sockops", "sk_msg",
                        "ext", "syscall", "xdp_native", "xdp_generic", "tcx", "netkit", "hash", "lru_hash",
                        "percpu_hash", "percpu_array", "ringbuf", "perf_event_array", "prog_array",
                        "sockmap", "sockhash", "lpm_trie", "bloom_filter", "user_ringbuf", "arena",
                        "bpf_send_signal", "bpf_get_current_cgroup_id", "bpf_skb_cgroup_id",
                        "bpf_ktime_get_boot_ns", "bpf_probe_read_user_str", "bpf_loop", "bpf_timer",
                        "bpf_crypto_ctx_create", "bpf_crypto_encrypt", "bpf_dynptr_from_skb", "btf_vmlinux",
                        "bpf_stats", "bpffs", "tracefs", "cgroup_v2", "unprivileged_bpf_disabled",
                        "bpf_jit_enable", "kernel_version"})
    EXPECT_TRUE(seen.count(n)) << n;
}

}  // namespace
