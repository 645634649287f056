// `kagami events` (docs/cli.md): the agent's event history through the
// control socket, and --follow through the agent's HTTP stream
// (GET /api/v1/events?follow=1, chunked JSON lines).
#pragma once

#include <ostream>
#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace kagami::cli {

// One event as one human line: "TIME  MODULE  KIND  key=value ..." (the
// envelope fields module/kind/time/seq/mono_ns left out of the summary).
std::string event_line(const nlohmann::json& e);

// How events are printed: one human line each (event_line), JSON lines in
// the agent's schema (--json), or JSON lines in Falco's output shape
// (--falco: rule, priority, time, output, output_fields; agent::to_falco,
// the same shape as the agent's `events.format: falco` sinks).
enum class EventFormat { Text, Json, Falco };

// Prints the "events" op reply in `format`. `hostname` fills Falco's
// "hostname" (the agent's node; the CLI runs on it).
void print_events(const nlohmann::json& reply, EventFormat format, std::ostream& out,
                  const std::string& hostname = "");

// Streams GET /api/v1/events?follow=1[&module=M] from host:port and prints
// every event until the agent ends the stream. Keepalive lines are skipped.
// Falco: the agent frames the stream in Falco's shape (&format=falco).
Result<void> follow_events(const std::string& http_addr, const std::string& module, EventFormat format,
                           std::ostream& out);

// This host's name (Falco's "hostname"), "" when unknown.
std::string local_hostname();

}  // namespace kagami::cli
