// Config parsing: a full valid file, defaults, and every class of invalid
// input with the exact field path and line the operator needs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "core/module.h"
#include "agent/config.h"

namespace kagami::agent {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kagami-config-test-" + std::to_string(getpid()));
    fs::create_directories(dir_ / "objs");
    std::ofstream(dir_ / "objs" / "a.bpf.o") << "not really ELF";
    std::ofstream(dir_ / "objs" / "b.bpf.o") << "also not ELF";
  }
  void TearDown() override { fs::remove_all(dir_); }

  Result<Config> parse(const std::string& yaml, std::optional<std::vector<std::string>> mods = std::vector<std::string>{"obs"}) {
    ParseOptions o;
    o.base_dir = dir_.string();
    o.known_modules = std::move(mods);
    return parse_config(yaml, o);
  }
  // The error message of a config that must be rejected.
  std::string error_of(const std::string& yaml) {
    auto r = parse(yaml);
    EXPECT_FALSE(r.has_value()) << "config unexpectedly accepted:\n" << yaml;
    return r ? std::string() : r.error().message;
  }

  fs::path dir_;
};

TEST_F(ConfigTest, FullValidConfig) {
  const std::string yaml = R"(agent:
  http: "0.0.0.0:9500"
  socket: /run/kgt/k.sock
  pin_root: /sys/fs/bpf/kagami-x
  node: node-7
  log: {level: debug, json: true}
trust:
  allowed_sha256: [AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA]
  custom_program_types: [xdp, sched_cls]
modules:
  obs:
    enabled: true
    top_n: 50
    ports: [2152, 8805]
    name: "007"
programs:
  - name: counter
    object: objs/a.bpf.o
    attach: ["xdp:eth0", "tc:eth0:ingress#10"]
    migrations:
      - {map: counts, rule: extend}
  - name: second
    object: ./objs/b.bpf.o
    attach: [tracepoint:sched/sched_process_exec]
)";
  auto r = parse(yaml);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  const Config& c = *r;
  EXPECT_EQ(c.agent.http, "0.0.0.0:9500");
  EXPECT_EQ(c.agent.socket, "/run/kgt/k.sock");
  EXPECT_EQ(c.agent.pin_root, "/sys/fs/bpf/kagami-x");
  EXPECT_EQ(c.agent.node, "node-7");
  EXPECT_EQ(c.agent.log.level, "debug");
  EXPECT_TRUE(c.agent.log.json);
  EXPECT_EQ(c.trust.allowed_sha256.count(std::string(64, 'a')), 1u);  // normalized to lower case
  EXPECT_EQ(c.trust.allowed_prog_types, (std::set<std::string>{"xdp", "sched_cls"}));
  ASSERT_EQ(c.modules.count("obs"), 1u);
  const ModuleSpec& m = c.modules.at("obs");
  EXPECT_TRUE(m.enabled);
  EXPECT_EQ(m.section["top_n"], 50);
  EXPECT_EQ(m.section["ports"], nlohmann::json({2152, 8805}));
  EXPECT_EQ(m.section["name"], "007");  // quoted: stays a string
  EXPECT_FALSE(m.section.contains("enabled"));
  ASSERT_EQ(c.programs.size(), 2u);
  EXPECT_EQ(c.programs[0].name, "counter");
  EXPECT_EQ(c.programs[0].object, (dir_ / "objs" / "a.bpf.o").string());
  ASSERT_EQ(c.programs[0].attach.size(), 2u);
  EXPECT_EQ(c.programs[0].attach[0].kind, core::AttachPoint::Kind::Xdp);
  EXPECT_EQ(c.programs[0].attach[1].kind, core::AttachPoint::Kind::Tc);
  EXPECT_EQ(c.programs[0].attach[1].order, 10);
  ASSERT_EQ(c.programs[0].migrations.size(), 1u);
  EXPECT_EQ(c.programs[0].migrations[0].map, "counts");
  EXPECT_EQ(c.programs[0].migrations[0].rule, core::MapMigration::Rule::Extend);
  EXPECT_EQ(c.programs[0].line, 17);
  EXPECT_EQ(c.programs[1].object, (dir_ / "objs" / "b.bpf.o").string());
}

TEST_F(ConfigTest, EmptyFileGivesDefaults) {
  for (const std::string yaml : {"", "# only a comment\n", "---\n"}) {
    auto r = parse(yaml);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_EQ(r->agent.http, "127.0.0.1:9464");
    EXPECT_EQ(r->agent.socket, "/run/kagami/kagami.sock");
    EXPECT_EQ(r->agent.pin_root, "/sys/fs/bpf/kagami");
    EXPECT_TRUE(r->programs.empty());
    EXPECT_TRUE(r->modules.empty());
  }
}

TEST_F(ConfigTest, ModuleDisabledAndEmptySection) {
  auto r = parse("modules:\n  obs: {enabled: false}\n");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_FALSE(r->modules.at("obs").enabled);
  auto r2 = parse("modules:\n  obs:\n");
  ASSERT_TRUE(r2.has_value()) << r2.error().message;
  EXPECT_TRUE(r2->modules.at("obs").enabled);
}

TEST_F(ConfigTest, BadAttachSpecNamesFieldAndLine) {
  const std::string yaml =
      "programs:\n"                              // 1
      "  - name: ok\n"                           // 2
      "    object: objs/a.bpf.o\n"               // 3
      "    attach: [xdp:eth0]\n"                 // 4
      "  - name: broken\n"                       // 5
      "    object: objs/b.bpf.o\n"               // 6
      "    attach:\n"                            // 7
      "      - xpd:eth0\n";                      // 8
  const std::string e = error_of(yaml);
  EXPECT_THAT(e, HasSubstr("programs[1].attach[0]: "));
  EXPECT_THAT(e, HasSubstr("unknown hook kind 'xpd'"));
  EXPECT_THAT(e, HasSubstr("(line 8)"));
}

TEST_F(ConfigTest, UnknownKeys) {
  EXPECT_THAT(error_of("agnet: {}\n"), HasSubstr("unknown key 'agnet' (known: agent, trust, modules, programs, workloads, policy) (line 1)"));
  EXPECT_THAT(error_of("agent:\n  htpp: 1.2.3.4:1\n"), HasSubstr("agent: unknown key 'htpp'"));
  EXPECT_THAT(error_of("agent:\n  log: {lvl: info}\n"), HasSubstr("agent.log: unknown key 'lvl'"));
  EXPECT_THAT(error_of("programs:\n  - name: a\n    object: objs/a.bpf.o\n    atach: []\n"),
              HasSubstr("programs[0]: unknown key 'atach' (known: name, object, attach, migrations) (line 4)"));
  EXPECT_THAT(error_of("trust:\n  allowed: []\n"), HasSubstr("trust: unknown key 'allowed'"));
}

TEST_F(ConfigTest, DuplicateProgramName) {
  const std::string e = error_of(
      "programs:\n"
      "  - {name: dup, object: objs/a.bpf.o, attach: [xdp:eth0]}\n"
      "  - {name: other, object: objs/a.bpf.o, attach: [xdp:eth1]}\n"
      "  - {name: dup, object: objs/b.bpf.o, attach: [xdp:eth2]}\n");
  EXPECT_THAT(e, HasSubstr("programs[2].name: duplicate program name 'dup' (also programs[0]) (line 4)"));
}

TEST_F(ConfigTest, DuplicateKey) {
  EXPECT_THAT(error_of("agent:\n  http: 127.0.0.1:1\n  http: 127.0.0.1:2\n"),
              HasSubstr("agent.http: duplicate key (line 3)"));
}

TEST_F(ConfigTest, MissingObjectFile) {
  const std::string e = error_of("programs:\n  - name: a\n    object: objs/nope.bpf.o\n    attach: [xdp:eth0]\n");
  EXPECT_THAT(e, HasSubstr("programs[0].object: object '" + (dir_ / "objs/nope.bpf.o").string() +
                           "': no such file (line 3)"));
  const std::string d = error_of("programs:\n  - name: a\n    object: objs\n");
  EXPECT_THAT(d, HasSubstr("is a directory"));
}

TEST_F(ConfigTest, MissingRequiredProgramKeys) {
  EXPECT_THAT(error_of("programs:\n  - object: objs/a.bpf.o\n"),
              HasSubstr("programs[0]: missing required key 'name' (line 2)"));
  EXPECT_THAT(error_of("programs:\n  - name: a\n"), HasSubstr("programs[0]: missing required key 'object'"));
}

TEST_F(ConfigTest, BadValues) {
  EXPECT_THAT(error_of("programs:\n  - {name: Bad_Name, object: objs/a.bpf.o}\n"),
              HasSubstr("programs[0].name: invalid name 'Bad_Name'"));
  EXPECT_THAT(error_of("agent: {http: localhost}\n"), HasSubstr("agent.http: 'localhost' is not host:port (line 1)"));
  EXPECT_THAT(error_of("agent: {http: 'h:70000'}\n"), HasSubstr("port must be a number 0-65535"));
  EXPECT_THAT(error_of("agent: {socket: relative.sock}\n"), HasSubstr("agent.socket: must be an absolute path"));
  EXPECT_THAT(error_of("agent: {pin_root: /tmp/pins}\n"),
              HasSubstr("agent.pin_root: '/tmp/pins' must be a directory under /sys/fs/bpf/"));
  EXPECT_THAT(error_of("agent: {pin_root: /sys/fs/bpf/../../tmp}\n"), HasSubstr("must be a directory under /sys/fs/bpf/"));
  EXPECT_THAT(error_of("agent: {log: {level: loud}}\n"), HasSubstr("agent.log.level: unknown level 'loud'"));
  EXPECT_THAT(error_of("agent: {log: {json: maybe}}\n"), HasSubstr("agent.log.json: must be true or false"));
  EXPECT_THAT(error_of("trust: {allowed_sha256: [abc]}\n"),
              HasSubstr("trust.allowed_sha256[0]: 'abc' is not a sha256 (64 hex digits)"));
  EXPECT_THAT(error_of("trust: {custom_program_types: [xdp, xpd]}\n"),
              HasSubstr("trust.custom_program_types[1]: unknown program type 'xpd'"));
  EXPECT_THAT(error_of("programs:\n  - name: a\n    object: objs/a.bpf.o\n    migrations: [{map: m, rule: keep}]\n"),
              HasSubstr("programs[0].migrations[0].rule: unknown migration rule 'keep' (one of: reset, extend, refuse)"));
  EXPECT_THAT(error_of("programs:\n  - name: a\n    object: objs/a.bpf.o\n    attach: [xdp:eth0, xdp:eth0]\n"),
              HasSubstr("programs[0].attach[1]: duplicate attach point 'xdp:eth0'"));
  EXPECT_THAT(error_of("programs: {name: a}\n"), HasSubstr("programs: must be a list, got a mapping (line 1)"));
  EXPECT_THAT(error_of("modules:\n  obs: {enabled: perhaps}\n"), HasSubstr("modules.obs.enabled: must be true or false"));
  EXPECT_THAT(error_of("modules:\n  obs: [1]\n"), HasSubstr("modules.obs: must be a mapping, got a list"));
}

TEST_F(ConfigTest, UnknownModule) {
  EXPECT_THAT(error_of("modules:\n  ebs: {}\n"), HasSubstr("modules.ebs: unknown module 'ebs' (built-in: obs) (line 2)"));
}

TEST_F(ConfigTest, BadYaml) {
  EXPECT_THAT(error_of("agent: {http: [\n"), HasSubstr("bad YAML: "));
  EXPECT_THAT(error_of("agent:\n  http: x\n bad indent\n"), HasSubstr("(line 3)"));
  EXPECT_THAT(error_of("a: 1\n---\nb: 2\n"), HasSubstr("expected one document, found more"));
  EXPECT_THAT(error_of("- just\n- a list\n"), HasSubstr("must be a mapping, got a list"));
  EXPECT_THAT(error_of(std::string("agent: {}\0", 10)), HasSubstr("NUL byte"));
}

TEST_F(ConfigTest, AliasBombIsRefused) {
  // Each level doubles the tree; 30 levels would expand to 2^30 nodes.
  std::string yaml = "modules:\n  obs:\n    a0: &a0 [x, y]\n";
  for (int i = 1; i < 30; ++i)
    yaml += fmt::format("    a{}: &a{} [*a{}, *a{}]\n", i, i, i - 1, i - 1);
  EXPECT_THAT(error_of(yaml), HasSubstr("section too large"));
}

TEST_F(ConfigTest, LoadConfigResolvesRelativeToFileDir) {
  const fs::path f = dir_ / "kagami.yaml";
  std::ofstream(f) << "programs:\n  - {name: a, object: objs/a.bpf.o, attach: [xdp:eth0]}\n";
  // From another working directory, the object still resolves against the file's dir.
  auto r = load_config(f.string());
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->programs[0].object, (dir_ / "objs/a.bpf.o").string());
  EXPECT_EQ(r->path, f.string());
  auto missing = load_config((dir_ / "absent.yaml").string());
  ASSERT_FALSE(missing.has_value());
  EXPECT_THAT(missing.error().message, HasSubstr("absent.yaml: No such file or directory"));
  // A bad file names itself in front of the field path.
  std::ofstream(f, std::ios::trunc) << "agent: {http: nope}\n";
  auto bad = load_config(f.string());
  ASSERT_FALSE(bad.has_value());
  EXPECT_THAT(bad.error().message, HasSubstr(f.string() + ": agent.http:"));
}

TEST_F(ConfigTest, ExampleConfigParses) {
  // examples/kagami.yaml is what docs/config.md walks through; it must stay valid.
  const std::string path = std::string(KAGAMI_SOURCE_DIR) + "/examples/kagami.yaml";
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  ParseOptions o;
  o.check_objects = false;  // the example points at installed objects
  o.known_modules = kagami::core::builtin_module_names();  // the real registry
  auto r = parse_config(ss.str(), o);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_FALSE(r->programs.empty());
}

TEST(HostPort, Parses) {
  auto a = parse_host_port("127.0.0.1:9464");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->first, "127.0.0.1");
  EXPECT_EQ(a->second, 9464);
  auto b = parse_host_port("[::1]:0");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->first, "::1");
  EXPECT_EQ(b->second, 0);
  EXPECT_FALSE(parse_host_port("::1:80").has_value());
  EXPECT_FALSE(parse_host_port(":80").has_value());
  EXPECT_FALSE(parse_host_port("h:").has_value());
  EXPECT_FALSE(parse_host_port("h:-1").has_value());
}

}  // namespace
}  // namespace kagami::agent
