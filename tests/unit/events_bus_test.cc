// The event bus without the kernel: envelope, history bound, sinks (stdout
// and file JSON lines), slow subscribers (drops counted and told in-band),
// the HTTP stream function, the history query, metrics and config keys.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "agent/config.h"
#include "agent/event_loop.h"
#include "agent/events.h"

namespace kagami::agent {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

class FixedClock : public core::Clock {
 public:
  uint64_t monotonic_ns() const override { return 5'000'000'000ULL; }
  uint64_t wall_ns() const override { return 1'700'000'000'000'000'000ULL; }  // 2023-11-14T22:13:20Z
};

uint64_t dropped(const EventBus& b, const std::string& m, const std::string& cause) {
  return b.stats_json()["dropped"].value(m, json::object()).value(cause, uint64_t{0});
}

TEST(EventBus, EnvelopeSeqAndTimeFromMonoNs) {
  FixedClock clock;
  EventBus bus({}, &clock);
  bus.publish("exec", {{"kind", "exec"}, {"mono_ns", 4'000'000'000ULL}, {"pid", 7}});
  bus.publish("exec", {{"pid", 8}});  // no kind, no mono_ns
  auto h = bus.history();
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0]["module"], "exec");
  EXPECT_EQ(h[0]["seq"], 1);
  EXPECT_EQ(h[0]["kind"], "exec");
  // 1 s before "now" on the monotonic clock is 1 s before now on the wall clock.
  EXPECT_EQ(h[0]["time"], "2023-11-14T22:13:19.000000000Z");
  EXPECT_EQ(h[1]["seq"], 2);
  EXPECT_EQ(h[1]["kind"], "unknown");
  EXPECT_EQ(h[1]["mono_ns"], 5'000'000'000ULL);
  EXPECT_EQ(h[1]["time"], "2023-11-14T22:13:20.000000000Z");
  EXPECT_EQ(bus.last_seq(), 2u);
}

TEST(EventBus, HistoryIsBoundedAndFiltered) {
  EventsSettings s;
  s.history = 5;
  EventBus bus(s);
  for (int i = 0; i < 12; ++i) bus.publish(i % 2 ? "a" : "b", {{"kind", "k"}, {"i", i}});
  auto all = bus.history();
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all.front()["i"], 7);  // the oldest kept
  EXPECT_EQ(all.back()["i"], 11);
  auto a = bus.history("a", 2);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0]["i"], 9);
  EXPECT_EQ(a[1]["i"], 11);
  EXPECT_EQ(bus.history("", 0, 11).size(), 1u);  // after seq 11: only seq 12
  EXPECT_EQ(bus.stats_json()["published"]["a"]["k"], 6);

  EventsSettings none;
  none.history = 0;
  EventBus off(none);
  off.publish("a", {{"kind", "k"}});
  EXPECT_TRUE(off.history().empty());
}

TEST(EventBus, StdoutAndFileSinksWriteJsonLines) {
  const fs::path file = fs::temp_directory_path() / ("kagami-events-" + std::to_string(getpid()) + ".jsonl");
  fs::remove(file);
  EventsSettings s;
  s.to_stdout = true;
  s.file = file.string();
  std::ostringstream out;
  {
    EventBus bus(s, &core::Clock::system(), &out);
    ASSERT_TRUE(bus.open_sinks());
    bus.publish("exec", {{"kind", "exec"}, {"filename", "/bin/true"}});
    bus.publish("exec", {{"kind", "exec"}, {"filename", "bad \xff utf8"}});
  }
  std::vector<json> from_stdout, from_file;
  std::istringstream so(out.str());
  std::string line;
  while (std::getline(so, line)) from_stdout.push_back(json::parse(line));
  std::ifstream fi(file);
  while (std::getline(fi, line)) from_file.push_back(json::parse(line));
  fs::remove(file);
  ASSERT_EQ(from_stdout.size(), 2u);
  ASSERT_EQ(from_file.size(), 2u);
  EXPECT_EQ(from_stdout[0]["filename"], "/bin/true");
  EXPECT_EQ(from_file[1]["seq"], 2);
  EXPECT_EQ(from_stdout, from_file);

  EventsSettings bad;
  bad.file = "/nonexistent-dir/x.jsonl";
  EventBus b2(bad);
  auto r = b2.open_sinks();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("/nonexistent-dir/x.jsonl"), std::string::npos);
}

TEST(EventBus, SlowSubscriberLosesEventsCountedAndToldInBand) {
  EventBus bus;
  auto slow = bus.subscribe("", 2);
  auto other = bus.subscribe("b");  // another module: unaffected
  for (int i = 0; i < 5; ++i) bus.publish("a", {{"kind", "k"}, {"i", i}});
  EXPECT_EQ(dropped(bus, "a", "subscriber_slow"), 3u);
  auto e1 = slow->next(std::chrono::milliseconds(0));
  ASSERT_TRUE(e1);
  EXPECT_EQ((*e1)["kind"], "dropped");  // the notice comes first
  EXPECT_EQ((*e1)["count"], 3);
  EXPECT_EQ((*e1)["cause"], "subscriber_slow");
  EXPECT_EQ((*slow->next(std::chrono::milliseconds(0)))["i"], 0);
  EXPECT_EQ((*slow->next(std::chrono::milliseconds(0)))["i"], 1);
  EXPECT_FALSE(slow->next(std::chrono::milliseconds(0)));
  EXPECT_FALSE(other->next(std::chrono::milliseconds(0)));
  bus.publish("a", {{"kind", "k"}, {"i", 5}});
  EXPECT_EQ((*slow->next(std::chrono::milliseconds(0)))["i"], 5);
  EXPECT_EQ(bus.stats_json()["subscribers"], 2);
  other.reset();
  bus.publish("a", {{"kind", "k"}});
  EXPECT_EQ(bus.stats_json()["subscribers"], 1);
  bus.close_subscribers();
  (void)slow->next(std::chrono::milliseconds(0));
  EXPECT_TRUE(slow->closed());
}

TEST(EventBus, MetricsCarryKernelAndUserspaceDrops) {
  EventBus bus;
  bus.publish("exec", {{"kind", "exec"}});
  bus.count_drop("exec", "decode", 2);
  bus.set_kernel_drops([] { return EventBus::DropCounts{{"exec", {{"ring_full", 4}, {"rate_limit", 9}}}}; });
  std::map<std::string, double> drops;
  double total = 0;
  for (const auto& f : bus.metric_families("n1")) {
    for (const auto& s : f.samples) {
      EXPECT_EQ(s.labels.at("node"), "n1");
      if (f.name == "kagami_events_dropped_total") drops[s.labels.at("cause")] = s.value;
      if (f.name == "kagami_events_total") total += s.value;
    }
  }
  EXPECT_EQ(total, 1);
  EXPECT_EQ(drops["decode"], 2);
  EXPECT_EQ(drops["ring_full"], 4);
  EXPECT_EQ(drops["rate_limit"], 9);
  EXPECT_EQ(bus.stats_json()["dropped"]["exec"]["rate_limit"], 9);
  bus.set_kernel_drops({});
}

TEST(EventStream, WritesHistoryThenNewEventsUntilTheWriterStops) {
  EventBus bus;
  bus.publish("a", {{"kind", "k"}, {"i", 0}});
  bus.publish("b", {{"kind", "k"}, {"i", 1}});
  std::vector<std::string> chunks;
  std::thread t([&] {
    stream_events(bus, {{"module", "a"}, {"history", "10"}}, [&](std::string_view c) {
      chunks.emplace_back(c);
      return chunks.size() < 3;
    });
  });
  // The stream subscribes before it writes the history: wait for it.
  while (bus.stats_json()["subscribers"] == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  bus.publish("b", {{"kind", "k"}, {"i", 2}});  // filtered out
  bus.publish("a", {{"kind", "k"}, {"i", 3}});
  bus.publish("a", {{"kind", "k"}, {"i", 4}});
  t.join();
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(json::parse(chunks[0])["i"], 0);  // history
  EXPECT_EQ(json::parse(chunks[1])["i"], 3);
  EXPECT_EQ(json::parse(chunks[2])["i"], 4);
  EXPECT_EQ(chunks[1].back(), '\n');
}

TEST(EventStream, SseFramingKeepalivesAndClose) {
  EventBus bus;
  std::vector<std::string> chunks;
  std::atomic<bool> done{false};
  std::thread t([&] {
    stream_events(bus, {{"format", "sse"}}, [&](std::string_view c) {
      chunks.emplace_back(c);
      return true;
    }, nullptr, std::chrono::milliseconds(10));
    done = true;
  });
  while (bus.stats_json()["subscribers"] == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  bus.publish("a", {{"kind", "k"}});
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  bus.close_subscribers();  // what the agent does at shutdown
  t.join();
  EXPECT_TRUE(done);
  bool data = false, keepalive = false;
  for (const auto& c : chunks) {
    if (c.rfind("data: {", 0) == 0 && c.ends_with("\n\n")) data = true;
    if (c == ": keepalive\n\n") keepalive = true;
  }
  EXPECT_TRUE(data);
  EXPECT_TRUE(keepalive);
  EXPECT_EQ(stream_content_type({{"format", "sse"}}), "text/event-stream");
  EXPECT_EQ(stream_content_type({}), "application/x-ndjson");
}

TEST(EventStream, HistoryQuery) {
  EventBus bus;
  for (int i = 0; i < 150; ++i) bus.publish("a", {{"kind", "k"}});
  auto r = events_history_json(bus, {});
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)["events"].size(), 100u);  // default limit
  EXPECT_EQ((*r)["last_seq"], 150);
  r = events_history_json(bus, {{"limit", "0"}});
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)["events"].size(), 150u);
  r = events_history_json(bus, {{"after", "145"}});
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)["events"].size(), 5u);
  auto bad = events_history_json(bus, {{"limit", "ten"}});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("limit"), std::string::npos);
  bad = events_history_json(bus, {{"modul", "a"}});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("modul"), std::string::npos);
}

TEST(EventLoop, DropCauseNamesFollowTheAbi) {
  EXPECT_STREQ(drop_cause_name(0), "ring_full");
  EXPECT_STREQ(drop_cause_name(1), "rate_limit");
  EXPECT_STREQ(drop_cause_name(2), "unknown");
}

TEST(EventsConfig, KeysAndErrors) {
  ParseOptions o;
  o.check_objects = false;
  auto c = parse_config("agent:\n  events:\n    history: 50\n    stdout: true\n    file: /tmp/e.jsonl\n"
                        "    subscriber_queue: 8\n",
                        o);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->agent.events.history, 50u);
  EXPECT_TRUE(c->agent.events.to_stdout);
  EXPECT_EQ(c->agent.events.file, "/tmp/e.jsonl");
  EXPECT_EQ(c->agent.events.subscriber_queue, 8u);
  auto d = parse_config("agent:\n  events:\n    histroy: 5\n", o);
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message.find("histroy"), std::string::npos) << d.error().message;
  d = parse_config("agent:\n  events:\n    file: rel.jsonl\n", o);
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message.find("agent.events.file"), std::string::npos) << d.error().message;
  d = parse_config("agent:\n  events:\n    history: -1\n", o);
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message.find("agent.events.history"), std::string::npos) << d.error().message;
  EXPECT_EQ(default_config().agent.events.history, 10000u);
}

}  // namespace
}  // namespace kagami::agent
