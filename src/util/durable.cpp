// util/durable.cpp — still_up (durable.h).
#include "util/durable.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "util/fault.h"

namespace tcfs {

Status still_up(int dirfd, const char* path, const std::string& what) {
  int err = fault::check("fs.still_up");
  if (!err) {
    int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
      close(fd);
      return {};
    }
    err = errno;
  }
  if (err != EIO) return {};
  return Status::error(EIO, what + ": the store's filesystem has shut down");
}

}  // namespace tcfs
