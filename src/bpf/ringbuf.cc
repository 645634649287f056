#include "bpf/ringbuf.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <cerrno>
#include <climits>

#include "bpf/kernel.h"
#include "common/fd.h"

namespace kagami::bpf {

struct RingBuffer::Impl {
  struct Slot {
    Impl* self;
    size_t index;
  };
  Callback cb;
  std::vector<Fd> fds;
  std::vector<std::unique_ptr<Slot>> slots;  // stable addresses for libbpf's ctx
  ring_buffer* rb = nullptr;

  ~Impl() {
    if (rb) ring_buffer__free(rb);
  }

  static int sample(void* ctx, void* data, size_t size) {
    auto* s = static_cast<Slot*>(ctx);
    s->self->cb(s->index, std::span<const uint8_t>(static_cast<const uint8_t*>(data), size));
    return 0;  // never stop a drain: a bad record is the decoder's to count
  }
};

RingBuffer::RingBuffer() = default;
RingBuffer::~RingBuffer() = default;
RingBuffer::RingBuffer(RingBuffer&&) noexcept = default;
RingBuffer& RingBuffer::operator=(RingBuffer&&) noexcept = default;

Result<RingBuffer> RingBuffer::open(const std::vector<int>& ring_fds, Callback cb) {
  if (ring_fds.empty()) return make_error("ring buffer: no maps given");
  auto impl = std::make_unique<Impl>();
  impl->cb = std::move(cb);
  for (size_t i = 0; i < ring_fds.size(); ++i) {
    auto info = map_info(ring_fds[i]);
    if (!info) return info.error().with_context(fmt::format("ring buffer map #{}", i));
    if (info->map_type != BPF_MAP_TYPE_RINGBUF)
      return make_error("ring buffer map #{} ({}): is a {} map, not a ringbuf", i, info->name, info->type);
    auto fd = dup_fd(ring_fds[i]);
    if (!fd) return fd.error();
    impl->slots.push_back(std::make_unique<Impl::Slot>(Impl::Slot{impl.get(), i}));
    int err = 0;
    if (!impl->rb) {
      impl->rb = ring_buffer__new(fd->get(), &Impl::sample, impl->slots.back().get(), nullptr);
      if (!impl->rb) err = -errno;
    } else {
      err = ring_buffer__add(impl->rb, fd->get(), &Impl::sample, impl->slots.back().get());
    }
    if (err) return errno_error(err, "ring buffer map #{} ({}): cannot map it", i, info->name);
    impl->fds.push_back(std::move(*fd));
  }
  RingBuffer r;
  r.impl_ = std::move(impl);
  return r;
}

bool RingBuffer::valid() const { return impl_ && impl_->rb; }
size_t RingBuffer::rings() const { return impl_ ? impl_->fds.size() : 0; }
int RingBuffer::epoll_fd() const { return valid() ? ring_buffer__epoll_fd(impl_->rb) : -1; }

Result<int> RingBuffer::poll(int timeout_ms) {
  if (!valid()) return make_error("ring buffer: not open");
  int n = ring_buffer__poll(impl_->rb, timeout_ms);
  if (n == -EINTR) return 0;
  if (n < 0) return errno_error(n, "ring buffer: poll");
  return n;
}

Result<int> RingBuffer::consume() {
  if (!valid()) return make_error("ring buffer: not open");
  int n = ring_buffer__consume(impl_->rb);
  if (n == -EINTR) return 0;
  if (n < 0) return errno_error(n, "ring buffer: consume");
  return n;
}

}  // namespace kagami::bpf
