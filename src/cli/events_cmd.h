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

// Prints the "events" op reply: JSON lines with --json, else event_line().
void print_events(const nlohmann::json& reply, bool json, std::ostream& out);

// Streams GET /api/v1/events?follow=1[&module=M] from host:port and prints
// every event until the agent ends the stream. Keepalive lines are skipped.
Result<void> follow_events(const std::string& http_addr, const std::string& module, bool json, std::ostream& out);

}  // namespace kagami::cli
