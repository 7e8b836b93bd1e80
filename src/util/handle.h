// util/handle.h — kernel file handles (name_to_handle_at / open_by_handle_at)
// as byte strings, so an object can be reopened without a path.
//
// Contract: make_handle(dirfd, name) is the handle of (dirfd, name), or of
// dirfd itself with name ""; it does not follow a final symlink; "" when
// the filesystem gives no handles. open_handle() reopens it (needs
// CAP_DAC_READ_SEARCH); ESTALE once the object is gone.
//
// Thread-safety: stateless.
#pragma once

#include <fcntl.h>

#include <string>

namespace tcfs {

inline std::string make_handle(int dirfd, const char* name) {
  alignas(file_handle) char buf[sizeof(file_handle) + MAX_HANDLE_SZ];
  auto* fh = reinterpret_cast<file_handle*>(buf);
  fh->handle_bytes = MAX_HANDLE_SZ;
  int mount_id;
  int flags = name[0] ? 0 : AT_EMPTY_PATH;
  if (name_to_handle_at(dirfd, name, fh, &mount_id, flags) != 0) return {};
  return std::string(buf, sizeof(file_handle) + fh->handle_bytes);
}

// -1 with errno set on failure (EINVAL for a malformed handle).
inline int open_handle(int mount_fd, const std::string& h, int flags) {
  if (h.size() < sizeof(file_handle)) {
    errno = EINVAL;
    return -1;
  }
  auto* fh = reinterpret_cast<file_handle*>(const_cast<char*>(h.data()));
  if (sizeof(file_handle) + fh->handle_bytes != h.size()) {
    errno = EINVAL;
    return -1;
  }
  return open_by_handle_at(mount_fd, fh, flags | O_CLOEXEC);
}

}  // namespace tcfs
