// txn/fsops.h — small filesystem helpers shared by the executor and undo.
//
// Contract: paths are relative to a root directory fd and are resolved with
// openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), so nothing escapes the
// root; with `no_symlinks` any symlink on the way is an error (ELOOP):
// canonical paths from the planner never contain one. Every function returns
// an owned fd (Fd closes it) or a Status naming the path.
//
// Thread-safety: stateless; permission checks use the calling thread's
// credentials (util/creds.h).
#pragma once

#include <unistd.h>

#include <string>
#include <utility>

#include "tcfs/status.h"

namespace tcfs::txn {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~Fd() { reset(); }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

Result<Fd> open_beneath(int root_fd, const std::string& path, int flags, unsigned mode = 0, bool no_symlinks = true);
// "a/b/c" -> ("a/b", "c"); "c" -> ("", "c").
std::pair<std::string, std::string> split_parent(const std::string& path);
// The parent directory of path as an O_PATH fd, and the final name.
Result<Fd> open_parent(int root_fd, const std::string& path, std::string* name, bool no_symlinks = true);
// "/proc/self/fd/N".
std::string fd_path(int fd);
// Copies len bytes (-1: to EOF) from in@in_off to out@out_off with
// copy_file_range, falling back to read/write (pipes, other filesystems).
Result<int64_t> copy_range(int in, int64_t in_off, int out, int64_t out_off, int64_t len);
// out becomes a copy of in: FICLONE when reflink is true and it works,
// otherwise copy_range; then out is truncated to in's size.
Status clone_file(int in, int out, bool reflink);
// Removes dirfd/name and everything below it.
Status remove_tree(int dirfd, const std::string& name);

}  // namespace tcfs::txn
