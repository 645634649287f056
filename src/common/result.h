// Result<T>: the return type of every recoverable failure in Kagami.
//
// C++20 (g++ 12) has no std::expected, so this is a small tagged union with
// the same vocabulary (has_value, value, error). Like bpftrace's util/result.h
// it exists to insulate the code base: when we move to C++23 it becomes an
// alias of std::expected<T, Error>.
//
// Errors carry a message meant for the operator (it must name the cause) and,
// where one exists, the errno that produced it. Context is added on the way up
// with `with_context("loading count.bpf.o")`, so the final message reads
// outermost-first: "loading count.bpf.o: attaching xdp:eth9: no such device".
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace kagami {

struct Error {
  std::string message;
  int code = 0;  // errno value when the cause was a syscall/libbpf error, else 0

  Error with_context(const std::string& ctx) const { return Error{ctx + ": " + message, code}; }
};

// Builds an Error from a format string.
template <typename... Args>
[[nodiscard]] Error make_error(fmt::format_string<Args...> f, Args&&... args) {
  return Error{fmt::format(f, std::forward<Args>(args)...), 0};
}

// Builds an Error from an errno value (positive or negative, as libbpf returns).
template <typename... Args>
[[nodiscard]] Error errno_error(int err, fmt::format_string<Args...> f, Args&&... args) {
  if (err < 0) err = -err;
  return Error{fmt::format(f, std::forward<Args>(args)...) + ": " + std::string(std::strerror(err)),
               err};
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT(implicit)
  Result(Error error) : v_(std::move(error)) {}      // NOLINT(implicit)

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : err_(std::move(error)), ok_(false) {}  // NOLINT(implicit)

  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return err_; }

 private:
  Error err_;
  bool ok_ = true;
};

inline Result<void> ok() { return {}; }

}  // namespace kagami

// Propagate an error, adding no context.
#define KAGAMI_TRY(expr)                        \
  do {                                          \
    auto&& kagami_try_r_ = (expr);              \
    if (!kagami_try_r_) return kagami_try_r_.error(); \
  } while (0)

// Propagate an error with a context prefix.
#define KAGAMI_TRY_CTX(expr, ctx)                                  \
  do {                                                             \
    auto&& kagami_try_r_ = (expr);                                 \
    if (!kagami_try_r_) return kagami_try_r_.error().with_context(ctx); \
  } while (0)
