#include "core/session_directory.h"

namespace kagami::core {

namespace {
std::atomic<SessionDirectory*> g_directory{nullptr};
}  // namespace

SessionDirectory* session_directory() { return g_directory.load(std::memory_order_acquire); }

ScopedSessionDirectory::ScopedSessionDirectory(SessionDirectory* d)
    : prev_(g_directory.exchange(d, std::memory_order_acq_rel)) {}

ScopedSessionDirectory::~ScopedSessionDirectory() { g_directory.store(prev_, std::memory_order_release); }

SessionDirectory::Key SessionDirectory::key(uint32_t teid, const std::vector<uint8_t>& address) {
  Key k = {static_cast<char>(teid >> 24), static_cast<char>(teid >> 16), static_cast<char>(teid >> 8),
           static_cast<char>(teid)};
  k.append(address.begin(), address.end());
  return k;
}

bool SessionDirectory::put(const std::string& owner, uint32_t teid, const std::vector<uint8_t>& address,
                           Labels labels) {
  std::lock_guard lk(mu_);
  Key k = key(teid, address);
  auto it = ends_.find(k);
  if (it == ends_.end()) {
    if (ends_.size() >= max_) {
      refused_++;
      return false;
    }
    ends_.emplace(std::move(k), Entry{owner, std::move(labels)});
    return true;
  }
  it->second = Entry{owner, std::move(labels)};
  return true;
}

void SessionDirectory::remove(const std::string& owner, uint32_t teid, const std::vector<uint8_t>& address) {
  std::lock_guard lk(mu_);
  auto it = ends_.find(key(teid, address));
  if (it != ends_.end() && it->second.owner == owner) ends_.erase(it);
}

void SessionDirectory::clear(const std::string& owner) {
  std::lock_guard lk(mu_);
  std::erase_if(ends_, [&](const auto& e) { return e.second.owner == owner; });
}

std::optional<SessionDirectory::Labels> SessionDirectory::lookup_teid(uint32_t teid) const {
  std::lock_guard lk(mu_);
  // Keys order by TEID first: the ends of one TEID are adjacent.
  const Key prefix = key(teid, {});
  auto it = ends_.lower_bound(prefix);
  std::optional<Labels> out;
  for (; it != ends_.end() && it->first.compare(0, 4, prefix) == 0; ++it) {
    if (!out) {
      out = it->second.labels;
    } else if (*out != it->second.labels) {
      ambiguous_++;
      return std::nullopt;
    }
  }
  return out;
}

std::optional<SessionDirectory::Labels> SessionDirectory::lookup(uint32_t teid,
                                                                 const std::vector<uint8_t>& address) const {
  std::lock_guard lk(mu_);
  auto it = ends_.find(key(teid, address));
  if (it == ends_.end()) return std::nullopt;
  return it->second.labels;
}

size_t SessionDirectory::size() const {
  std::lock_guard lk(mu_);
  return ends_.size();
}

uint64_t SessionDirectory::refused() const {
  std::lock_guard lk(mu_);
  return refused_;
}

uint64_t SessionDirectory::ambiguous() const {
  std::lock_guard lk(mu_);
  return ambiguous_;
}

}  // namespace kagami::core
