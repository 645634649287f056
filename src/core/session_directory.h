// SessionDirectory: the one cross-module lookup of the module kit. A module
// that learns which 5G session a GTP-U tunnel end belongs to (n2, from
// NGAP and PFCP) publishes labels for it; a module that counts per TEID
// (obs) reads them at scrape time, so that its per-TEID series carry the
// session (docs/writing-a-module.md, "Sharing facts between modules").
//
// Keys are tunnel ends: (TEID, the IP address the TEID belongs to), as
// NGAP and PFCP announce them. obs keys its series by TEID alone (the
// address is not in its map key), so lookup_teid() answers only when every
// known end with that TEID carries the same labels: TEIDs are allocated per
// node, and a UPF's UL TEID 5 and a gNB's DL TEID 5 can be two different
// sessions. Then it answers nothing (counted), never a guess.
//
// Bounded: at most max_entries ends; a put() past it is refused and
// counted (the writer bounds its own state far below: n2's max_ues).
// Thread-safe: writers run on the event loop, readers on scrape threads.
//
// Where modules find it: session_directory(), the process's one directory
// (core/module.h's ModuleContext stays as it is, so adding this service
// recompiled nothing else). The agent installs its own for its lifetime
// (ScopedSessionDirectory in Agent); `kagami replay` installs a fresh one
// for each pass (replay::run), so a pass never sees another's sessions.
// nullptr when none is installed (unit tests): modules then publish and
// label nothing.
#pragma once

#include <cstdint>
#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace kagami::core {

class SessionDirectory {
 public:
  using Labels = std::map<std::string, std::string>;

  explicit SessionDirectory(size_t max_entries = 1 << 20) : max_(max_entries) {}

  // Publishes (replaces) the labels of the tunnel end (teid, address);
  // `address` is the raw 4 (IPv4) or 16 (IPv6) octets. `owner` is the
  // writing module: a module replaces and withdraws only its own entries.
  // False when the directory is full (counted in refused()).
  bool put(const std::string& owner, uint32_t teid, const std::vector<uint8_t>& address, Labels labels);
  void remove(const std::string& owner, uint32_t teid, const std::vector<uint8_t>& address);
  // Withdraws everything `owner` published (its module was disabled).
  void clear(const std::string& owner);

  // The labels of every end with this TEID when they all agree; nullopt
  // when none is known or they disagree (counted in ambiguous()).
  std::optional<Labels> lookup_teid(uint32_t teid) const;
  std::optional<Labels> lookup(uint32_t teid, const std::vector<uint8_t>& address) const;

  size_t size() const;
  uint64_t refused() const;
  uint64_t ambiguous() const;

 private:
  // The TEID (4 octets, big-endian: the ends of one TEID are adjacent)
  // then the address octets.
  using Key = std::string;
  static Key key(uint32_t teid, const std::vector<uint8_t>& address);
  struct Entry {
    std::string owner;
    Labels labels;
  };
  mutable std::mutex mu_;
  size_t max_;
  std::map<Key, Entry> ends_;
  uint64_t refused_ = 0;
  mutable uint64_t ambiguous_ = 0;
};

// The installed directory, or nullptr.
SessionDirectory* session_directory();

// Installs `d` for this object's lifetime, restoring the previous one after
// (one replay pass at a time per process).
class ScopedSessionDirectory {
 public:
  explicit ScopedSessionDirectory(SessionDirectory* d);
  ~ScopedSessionDirectory();
  ScopedSessionDirectory(const ScopedSessionDirectory&) = delete;
  ScopedSessionDirectory& operator=(const ScopedSessionDirectory&) = delete;

 private:
  SessionDirectory* prev_;
};

}  // namespace kagami::core
