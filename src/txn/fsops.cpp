#include "txn/fsops.h"
#include "util/dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <vector>

namespace tcfs::txn {

Result<Fd> open_beneath(int root_fd, const std::string& path, int flags, unsigned mode, bool no_symlinks) {
  struct open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | (no_symlinks ? RESOLVE_NO_SYMLINKS : 0);
  const char* p = path.empty() ? "." : path.c_str();
  long fd;
  do {
    fd = syscall(SYS_openat2, root_fd, p, &how, sizeof(how));
  } while (fd < 0 && errno == EAGAIN);
  if (fd < 0) {
    int e = errno;
    if (e == EXDEV) return Status::error(EXDEV, path + ": leads outside the mount");
    return Status::error(e, path.empty() ? "/" : path);
  }
  return Fd(static_cast<int>(fd));
}

std::pair<std::string, std::string> split_parent(const std::string& path) {
  size_t i = path.rfind('/');
  if (i == std::string::npos) return {"", path};
  return {path.substr(0, i), path.substr(i + 1)};
}

Result<Fd> open_parent(int root_fd, const std::string& path, std::string* name, bool no_symlinks) {
  auto [dir, base] = split_parent(path);
  *name = base;
  return open_beneath(root_fd, dir, O_PATH | O_DIRECTORY, 0, no_symlinks);
}

std::string fd_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

namespace {
constexpr uint64_t kBlock = 4096;  // FICLONERANGE alignment (the store's block size)
uint64_t align_up(uint64_t v) { return (v + kBlock - 1) / kBlock * kBlock; }
}  // namespace

Status add_to_pack(int src, int pack, bool reflink, uint64_t* pack_end, uint64_t* off, uint64_t* size, bool* copied) {
  struct stat st;
  if (fstat(src, &st) != 0) return Status::from_errno("fstat");
  *size = static_cast<uint64_t>(st.st_size);
  *off = align_up(*pack_end);
  if (*size == 0) return {};
  file_clone_range r{};
  r.src_fd = src;
  r.src_offset = 0;
  r.src_length = 0;  // to the source's end
  r.dest_offset = *off;
  if (!(reflink && ioctl(pack, FICLONERANGE, &r) == 0)) {
    *copied = true;
    auto n = copy_range(src, 0, pack, static_cast<int64_t>(*off), st.st_size);
    if (!n) return n.status();
    if (static_cast<uint64_t>(*n) != *size) return Status::error(EAGAIN, "file changed size while being copied");
  }
  *pack_end = *off + *size;
  return {};
}

Status restore_from_pack(int pack, uint64_t off, uint64_t size, int dst) {
  uint64_t aligned = size / kBlock * kBlock;
  file_clone_range r{};
  r.src_fd = pack;
  r.src_offset = off;
  r.src_length = aligned;
  r.dest_offset = 0;
  bool cloned = aligned > 0 && ioctl(dst, FICLONERANGE, &r) == 0;
  uint64_t from = cloned ? aligned : 0;
  if (size > from) {
    auto n = copy_range(pack, static_cast<int64_t>(off + from), dst, static_cast<int64_t>(from),
                        static_cast<int64_t>(size - from));
    if (!n) return n.status();
  }
  if (ftruncate(dst, static_cast<off_t>(size)) != 0) return Status::from_errno("ftruncate");
  return {};
}

Status remove_tree(int dirfd, const std::string& name) {
  if (unlinkat(dirfd, name.c_str(), 0) == 0 || errno == ENOENT) return {};
  if (errno != EISDIR && errno != EPERM) return Status::from_errno("unlink " + name);
  Fd fd(openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return Status::from_errno("open " + name);
  auto names = list_names(fd.get(), ".", "list " + name);
  if (!names) return names.status();
  Status st;
  for (const auto& n : *names) {
    Status s = remove_tree(fd.get(), n);
    if (!s && st) st = s;
  }
  if (unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT && st) st = Status::from_errno("rmdir " + name);
  return st;
}

}  // namespace tcfs::txn
