// fuse/fs_flags.cpp — inode flags (chattr, lsattr): FS_IOC_GETFLAGS,
// FS_IOC_SETFLAGS, FS_IOC_FSGETXATTR and FS_IOC_FSSETXATTR, applied to the
// backing inode, so the mount supports exactly the flags the store's
// filesystem supports (EOPNOTSUPP for the others, as it answers).
//
// How they arrive: the kernel serves these ioctls on a FUSE file or
// directory through its fileattr operations (fs/fuse/ioctl.c), which open
// the node O_RDONLY (FUSE_OPEN / FUSE_OPENDIR), send one restricted
// FUSE_IOCTL with an unsigned int (flags) or a struct fsxattr, and release
// the node again. Other ioctls are refused with ENOTTY.
//
// Invariants (flags):
//  1. Who may change flags is decided by the backing filesystem for the
//     caller, not the daemon: SET requests run with the caller's fsuid and
//     fsgid (creds.h), and a non-zero fsuid drops the daemon's capabilities
//     (CAP_FOWNER, CAP_LINUX_IMMUTABLE), so only the owner changes flags and
//     only a root caller sets or clears +i and +a — as the kernel itself
//     checks on the FUSE inode before the request is sent.
//  2. Immutable and append-only are enforced for FUSE requests by the
//     backing filesystem, which refuses the daemon's own syscalls on such an
//     inode (EPERM) exactly as it would the caller's. Compounds check before
//     they change anything (txn.h invariant 11).
//  3. A stub (sync/fetch.h) is fetched whole before it becomes immutable or
//     append-only: its content could never be written back into it after.
//
// Locks: Read on the inode (changed in place), as setattr takes it.
#include <linux/fs.h>
#include <sys/ioctl.h>

#include <cstring>

#include "fuse/creds.h"
#include "fuse/fs.h"

namespace tcfs::fusefs {
namespace {

int handle_fd(fuse_file_info* fi, unsigned flags) {
  if (flags & FUSE_IOCTL_DIR) return reinterpret_cast<DirHandle*>(fi->fh)->fd;
  return reinterpret_cast<FileHandle*>(fi->fh)->fd;
}

// The kernel passes an unsigned int for the flags ioctls (whatever their
// _IOC_SIZE says), a struct fsxattr for the others.
size_t arg_size(unsigned cmd) {
  return cmd == FS_IOC_GETFLAGS || cmd == FS_IOC_SETFLAGS ? sizeof(unsigned) : sizeof(fsxattr);
}

// Whether a SET request makes the inode immutable or append-only.
bool protects(unsigned cmd, const void* in) {
  if (cmd == FS_IOC_SETFLAGS) {
    unsigned v;
    memcpy(&v, in, sizeof v);
    return (v & (FS_IMMUTABLE_FL | FS_APPEND_FL)) != 0;
  }
  fsxattr x;
  memcpy(&x, in, sizeof x);
  return (x.fsx_xflags & (FS_XFLAG_IMMUTABLE | FS_XFLAG_APPEND)) != 0;
}

Result<IoctlReply> get_attr(int fd, unsigned cmd, size_t out_size) {
  size_t n = arg_size(cmd);
  if (out_size < n) return Status::error(EINVAL);
  alignas(fsxattr) char buf[sizeof(fsxattr)] = {};
  if (ioctl(fd, cmd, buf) != 0) return Status::error(errno);
  return IoctlReply{std::string(buf, n)};
}

Result<IoctlReply> set_attr(fuse_req_t req, fuse_ino_t ino, int fd, unsigned cmd, const void* in, size_t in_size) {
  Fs& fs = fs_of(req);
  if (in_size < arg_size(cmd)) return Status::error(EINVAL);
  alignas(fsxattr) char buf[sizeof(fsxattr)] = {};
  memcpy(buf, in, arg_size(cmd));
  TCFS_TRY(fs.mark_attr(ino));
  if (protects(cmd, buf)) TCFS_TRY(fs.ensure_all(ino));  // invariant 3
  // Invariant 1: the backing filesystem checks the caller's rights.
  int err = with_caller_creds(req, 0, [&] { return ioctl(fd, cmd, buf) == 0 ? 0 : errno; });
  if (err) return Status::error(err);
  return IoctlReply{};
}

void op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void*, fuse_file_info* fi, unsigned flags,
              const void* in_buf, size_t in_bufsz, size_t out_bufsz) {
  Fs& fs = fs_of(req);
  if (flags & FUSE_IOCTL_COMPAT) return reply(req, {"ioctl", ino}, Status::error(ENOTTY));
  int fd = handle_fd(fi, flags);
  switch (cmd) {
    case FS_IOC_GETFLAGS:
    case FS_IOC_FSGETXATTR:
      return reply(req, {"ioctl get", ino}, under(lock_read(fs, ino), [&] { return get_attr(fd, cmd, out_bufsz); }));
    case FS_IOC_SETFLAGS:
    case FS_IOC_FSSETXATTR:
      return reply(req, {"ioctl set", ino},
                   under(lock_read(fs, ino), [&] { return set_attr(req, ino, fd, cmd, in_buf, in_bufsz); }));
    default:
      return reply(req, {"ioctl", ino}, Status::error(ENOTTY));
  }
}

}  // namespace

void fill_flag_ops(fuse_lowlevel_ops& o) { o.ioctl = op_ioctl; }

}  // namespace tcfs::fusefs
