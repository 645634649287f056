// RingBuffer: an RAII owner of a libbpf `ring_buffer` over one or more
// BPF_MAP_TYPE_RINGBUF maps (docs/events.md). Records of every ring come to
// one callback with the index of their ring in the list given to open().
//
// The map fds are duplicated, so the caller's fds may close; the rings stay
// mapped as long as the RingBuffer lives. Closing it loses nothing: records
// not yet consumed stay in the kernel ring and a new RingBuffer over the same
// map reads them (the consumer position lives in the map).
//
// Thread-safety: one thread polls/consumes at a time; the callback runs on
// that thread, during poll() or consume().
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "common/result.h"

namespace kagami::bpf {

class RingBuffer {
 public:
  using Callback = std::function<void(size_t ring, std::span<const uint8_t> record)>;

  // Fails naming the map (by position and kernel name) that is not a ring.
  static Result<RingBuffer> open(const std::vector<int>& ring_fds, Callback cb);

  RingBuffer();
  ~RingBuffer();
  RingBuffer(RingBuffer&&) noexcept;
  RingBuffer& operator=(RingBuffer&&) noexcept;

  bool valid() const;
  size_t rings() const;
  // An epoll fd that becomes readable when any ring has data (owned here).
  int epoll_fd() const;
  // Waits up to timeout_ms (-1: forever) for data, then consumes all
  // available records. Returns the number consumed; EINTR counts as 0.
  Result<int> poll(int timeout_ms);
  // Consumes what is available without waiting.
  Result<int> consume();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kagami::bpf
