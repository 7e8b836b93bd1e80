#include "util/dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace tcfs {

Status for_each_entry(int dirfd, const char* path, const EntryFn& fn, const std::string& what) {
  int fd = ::openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno(what);
  std::unique_ptr<DIR, int (*)(DIR*)> d(::fdopendir(fd), ::closedir);
  if (!d) {
    Status st = Status::from_errno(what);
    ::close(fd);
    return st;
  }
  for (;;) {
    errno = 0;
    dirent* e = ::readdir(d.get());
    if (!e) return errno == 0 ? Status() : Status::from_errno(what);
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    if (!fn(e->d_name, e->d_type)) return {};
  }
}

Result<std::vector<std::string>> list_names(int dirfd, const char* path, const std::string& what) {
  std::vector<std::string> names;
  TCFS_TRY(for_each_entry(dirfd, path, [&](const char* n, unsigned char) {
    names.emplace_back(n);
    return true;
  }, what));
  return names;
}

}  // namespace tcfs
