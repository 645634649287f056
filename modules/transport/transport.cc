// TransportModule: config, hook choice, load request, and the glue from the
// program manager's maps to transport_{json,metrics}_from_fds.
#include "modules/transport/transport.h"

#include <linux/magic.h>
#include <linux/types.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstdlib>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/fs.h"
#include "core/config_section.h"
#include "core/probe.h"
#include "identity/identity.h"
#include "modules/transport/abi.h"
#include "transport.skel.h"
#include "transport_tp.skel.h"

namespace kagami::modules {
namespace {

}  // namespace

std::string_view to_string(TransportHooks h) {
  return h == TransportHooks::TpBtf ? "tp_btf" : "tracepoint";
}

Result<TransportConfig> parse_transport_config(const nlohmann::json& section) {
  TransportConfig c;
  core::ConfigSection s("transport", section);
  KAGAMI_TRY(s.allow({"cgroup_root", "top_n_pods", "top_n_drops", "hooks"}));
  KAGAMI_TRY(s.path("cgroup_root", c.cgroup_root));
  KAGAMI_TRY(s.integer("top_n_pods", c.top_n_pods, 1, 10000));
  KAGAMI_TRY(s.integer("top_n_drops", c.top_n_drops, 1, 10000));
  KAGAMI_TRY(s.choice("hooks", c.hooks, {"auto", "tp_btf", "tracepoint"}));
  return c;
}

Result<std::string> cgroup2_root(const std::string& root) {
  if (fs::is_cgroup2(root)) return root;
  std::string unified = root + "/unified";
  if (fs::is_cgroup2(unified)) return unified;
  return make_error("cgroup root {}: not a cgroup v2 mount, nor is {} (cgroup_skb needs cgroup v2)", root,
                    unified);
}

std::vector<uint8_t> transport_object_bytes(TransportHooks h) {
  size_t n = 0;
  const void* p = h == TransportHooks::TpBtf ? transport_bpf__elf_bytes(&n) : transport_tp_bpf__elf_bytes(&n);
  const auto* b = static_cast<const uint8_t*>(p);
  return std::vector<uint8_t>(b, b + n);
}

Result<HookChoice> choose_transport_hooks(const std::string& wanted, const FeatureCheck& has) {
  if (wanted == "tracepoint") return HookChoice{TransportHooks::Tracepoint, "configured: hooks=tracepoint"};
  const bool btf = has("tp_btf");
  if (wanted == "tp_btf") {
    if (!btf) return make_error("transport.hooks: tp_btf requested but this kernel refuses tp_btf programs");
    return HookChoice{TransportHooks::TpBtf, "configured: hooks=tp_btf"};
  }
  if (btf) return HookChoice{TransportHooks::TpBtf, "auto: tp_btf available"};
  return HookChoice{TransportHooks::Tracepoint, "auto: tp_btf unavailable, classic tracepoints"};
}

core::LoadRequest transport_load_request(const HookChoice& choice, const std::string& cg_root) {
  core::LoadRequest req;
  req.name = "transport";
  req.builtin = true;
  req.source.bytes = transport_object_bytes(choice.hooks);
  req.source.label = choice.hooks == TransportHooks::TpBtf ? "builtin:transport.bpf.o" : "builtin:transport_tp.bpf.o";
  const bool btf = choice.hooks == TransportHooks::TpBtf;
  struct Tp {
    const char* category;
    const char* event;
    const char* prog;
  };
  static constexpr Tp kTps[] = {
      {"skb", "kfree_skb", "transport_kfree_skb"},
      {"tcp", "tcp_retransmit_skb", "transport_tcp_retransmit"},
      {"tcp", "tcp_send_reset", "transport_tcp_send_reset"},
      {"tcp", "tcp_receive_reset", "transport_tcp_receive_reset"},
      {"sock", "inet_sock_set_state", "transport_sock_set_state"},
      {"tcp", "tcp_probe", "transport_tcp_probe"},
  };
  auto cg = [&](const char* opt, const char* prog) {
    core::AttachPoint a;
    a.kind = core::AttachPoint::Kind::Cgroup;
    a.target = cg_root;
    a.option = opt;
    a.program = prog;
    return a;
  };
  req.attach.push_back(cg("ingress", "transport_cg_ingress"));
  req.attach.push_back(cg("egress", "transport_cg_egress"));
  for (const auto& t : kTps) {
    core::AttachPoint a;
    a.kind = btf ? core::AttachPoint::Kind::TpBtf : core::AttachPoint::Kind::Tracepoint;
    a.target = btf ? std::string(t.event) : std::string(t.category) + "/" + t.event;
    a.program = t.prog;
    req.attach.push_back(a);
  }
  return req;
}

// ---- TransportModule --------------------------------------------------------

struct TransportModule::Maps {
  Fd pod_traffic, pod_tcp, tcp_state, drops, other_traffic, other_tcp, overflow, hook_runs;
  TransportMapFds view() const {
    return {pod_traffic.get(), pod_tcp.get(), tcp_state.get(), drops.get(),
            other_traffic.get(), other_tcp.get(), overflow.get(), hook_runs.get()};
  }
};

TransportModule::TransportModule(FeatureCheck has) : has_(std::move(has)), retired_(make_transport_retired()) {}

TransportModule::~TransportModule() = default;

std::vector<core::FeatureNeed> TransportModule::needs() const {
  return {
      {"btf", true, ""},  // CO-RE reads of struct sock / sk_buff in every tracepoint hook
      {"cgroup_skb", true, ""},
      {"tracepoint", true, ""},
      {"tp_btf", false, "classic tracepoints (skb/kfree_skb, tcp/*, sock/inet_sock_set_state)"},
  };
}

Result<std::vector<core::LoadRequest>> TransportModule::plan(const nlohmann::json& config, const core::ModuleContext& ctx) {
  auto cfg = parse_transport_config(config);
  if (!cfg) return cfg.error();
  auto root = cgroup2_root(cfg->cgroup_root);
  if (!root) return root.error().with_context("transport");
  // The agent's resolution of needs() decides tp_btf against tracepoints; a
  // test may hand in its own answer (the constructor's FeatureCheck).
  const FeatureCheck has = has_ ? has_ : FeatureCheck([&ctx](std::string_view f) { return ctx.features.available(f); });
  auto choice = choose_transport_hooks(cfg->hooks, has);
  if (!choice) return choice.error();
  ctx_ = ctx;
  cfg->node = ctx.node.empty() ? "unknown" : ctx.node;
  // The agent's shared resolver when it walks the same hierarchy; a module
  // pointed at another cgroup root keeps one of its own.
  if (ctx.identity && ctx.identity->root() == *root) {
    resolver_.reset();
  } else if (!resolver_ || config_.cgroup_root != cfg->cgroup_root) {
    resolver_ = std::make_unique<identity::Resolver>(cfg->cgroup_root);
  }
  config_ = *cfg;
  choice_ = *choice;
  cgroup2_root_ = *root;
  planned_ = true;
  spdlog::info("transport: hooks {} ({}), cgroup_skb on {}", to_string(choice_.hooks), choice_.reason,
               cgroup2_root_);
  return std::vector<core::LoadRequest>{transport_load_request(choice_, cgroup2_root_)};
}

Result<TransportModule::Maps> TransportModule::open_maps(const core::ProgramManager& pm) const {
  Maps m;
  struct Slot {
    const char* name;
    Fd* fd;
  };
  const Slot slots[] = {
      {TRANSPORT_MAP_POD_TRAFFIC, &m.pod_traffic},     {TRANSPORT_MAP_POD_TCP, &m.pod_tcp},
      {TRANSPORT_MAP_TCP_STATE, &m.tcp_state},         {TRANSPORT_MAP_DROPS, &m.drops},
      {TRANSPORT_MAP_OTHER_TRAFFIC, &m.other_traffic}, {TRANSPORT_MAP_OTHER_TCP, &m.other_tcp},
      {TRANSPORT_MAP_OVERFLOW, &m.overflow},           {TRANSPORT_MAP_HOOK_RUNS, &m.hook_runs},
  };
  for (const auto& s : slots) {
    auto fd = pm.map_fd("transport", s.name);
    if (!fd) return fd.error().with_context("transport: reading map " + std::string(s.name));
    *s.fd = std::move(*fd);
  }
  return m;
}

TransportView TransportModule::view() {
  TransportView v;
  v.retired = retired_.get();
  v.resolver = resolver_ ? resolver_.get() : ctx_.identity;
  v.node = config_.node.empty() ? "unknown" : config_.node;
  v.top_n_pods = config_.top_n_pods;
  v.top_n_drops = config_.top_n_drops;
  return v;
}

Result<std::vector<core::MetricFamily>> TransportModule::collect(const core::ProgramManager& pm) {
  auto maps = open_maps(pm);
  if (!maps) return maps.error();
  if (planned_) {
    // Half full: from here on, dead pods' entries make room for new ones.
    auto pruned = prune_dead_cgroups(maps->view(), cgroup2_root_, 0.5, *retired_);
    if (!pruned) spdlog::warn("transport: pruning dead cgroups: {}", pruned.error().message);
  }
  auto fams = transport_metrics_from_fds(maps->view(), view());
  if (!fams) return fams.error();
  if (planned_) {
    core::MetricFamily info{"kagami_transport_hooks_info",
                            "Hook flavour in use for the transport tracepoints (1 = active).", "gauge", {}};
    info.samples.push_back({{{"node", view().node}, {"hooks", std::string(to_string(choice_.hooks))}}, 1, ""});
    fams->push_back(std::move(info));
  }
  return fams;
}

Result<nlohmann::json> TransportModule::snapshot(const core::ProgramManager& pm) {
  auto maps = open_maps(pm);
  if (!maps) return maps.error();
  auto j = transport_json_from_fds(maps->view(), view());
  if (!j) return j.error();
  nlohmann::json hooks;
  hooks["flavour"] = planned_ ? std::string(to_string(choice_.hooks)) : "unknown";
  hooks["reason"] = planned_ ? choice_.reason : "module not planned by this process (adopted)";
  nlohmann::json points = nlohmann::json::array();
  if (planned_)
    for (const auto& a : transport_load_request(choice_, cgroup2_root_).attach) points.push_back(a.to_string());
  hooks["attach"] = points;
  (*j)["hooks"] = hooks;
  (*j)["node"] = view().node;
  return j;
}

}  // namespace kagami::modules

KAGAMI_REGISTER_MODULE(transport, ::kagami::modules::TransportModule)
