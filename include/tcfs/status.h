// tcfs/status.h — the one error type of tcfs.
//
// Contract: every fallible function in tcfs returns a Status (success or an
// errno plus a short context message naming the operation and path) or a
// Result<T> (a T or a Status). No exception crosses a layer boundary or a
// FUSE callback; the FUSE adapter turns a Status into a reply in exactly one
// place (src/fuse/reply.cpp).
//
// Thread-safety: Status and Result<T> are plain values; distinct objects may
// be used from distinct threads freely, one object needs external locking.
#pragma once

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace tcfs {

class Status {
 public:
  Status() = default;  // success
  static Status ok() { return {}; }
  // err must be a positive errno value.
  static Status error(int err, std::string what = {}) {
    Status s;
    s.err_ = err > 0 ? err : EIO;
    s.what_ = std::move(what);
    return s;
  }
  // 0 -> success, otherwise error(err).
  static Status code(int err) { return err == 0 ? Status() : error(err); }
  // Captures errno right after a failed syscall.
  static Status from_errno(std::string what = {}) { return error(errno, std::move(what)); }

  bool is_ok() const { return err_ == 0; }
  explicit operator bool() const { return is_ok(); }
  int err() const { return err_; }
  const std::string& what() const { return what_; }
  Status status() const { return *this; }  // so TCFS_TRY works on both
  // The same error with context in front: "prefix: what" (strerror is
  // added once, by message()). On success: success.
  Status wrap(const std::string& prefix) const {
    if (err_ == 0) return *this;
    return error(err_, what_.empty() ? prefix : prefix + ": " + what_);
  }
  // "what: strerror(err)" or "success".
  std::string message() const {
    if (err_ == 0) return "success";
    std::string m = what_;
    if (!m.empty()) m += ": ";
    return m + std::strerror(err_);
  }

 private:
  int err_ = 0;
  std::string what_;
};

template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Status st) : v_(std::move(st)) {            // NOLINT: implicit by design
    if (std::get<Status>(v_).is_ok()) v_ = Status::error(EIO, "Result built from success Status");
  }
  bool is_ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return is_ok(); }
  T& value() & { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  const T& value() const& { return std::get<T>(v_); }
  T* operator->() { return &std::get<T>(v_); }
  T& operator*() & { return value(); }
  Status status() const { return is_ok() ? Status{} : std::get<Status>(v_); }
  int err() const { return is_ok() ? 0 : std::get<Status>(v_).err(); }

 private:
  std::variant<T, Status> v_;
};

// Propagate a failed Status/Result from the current function.
#define TCFS_TRY(expr)                                   \
  do {                                                   \
    auto tcfs_try_st_ = (expr);                          \
    if (!tcfs_try_st_.is_ok()) return tcfs_try_st_.status(); \
  } while (0)

}  // namespace tcfs
