// txn/exec.cpp — the operations of a compound, one syscall sequence each.
#include "txn/exec.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "txn/fsops.h"
#include "util/fault.h"
#include "util/dir.h"

namespace tcfs::txn {
namespace {

Status err_at(const std::string& path, const char* what) {
  int e = errno;
  return Status::error(e, std::string(what) + " " + (path.empty() ? "/" : path));
}

Result<Fd> parent(const ExecCtx& c, const std::string& path, std::string* name) {
  return open_parent(c.root_fd, path, name);
}

Status mkdir_op(const ExecCtx& c, const Op& op, const PlannedOp& po) {
  std::vector<std::string> dirs = po.mkdirs;
  if (!op.parents) dirs.push_back(po.path);
  for (const auto& d : dirs) {
    std::string name;
    auto dir = parent(c, d, &name);
    if (!dir) return dir.status();
    // With parents, ancestors get the same mode (as mkdir -p does with -m).
    if (mkdirat(dir->get(), name.c_str(), op.mode & 07777) != 0) return err_at(d, "mkdir");
  }
  return {};
}

Result<Fd> open_target(const ExecCtx& c, const std::string& path, int flags, unsigned mode = 0) {
  if (int f = fault::check("txn.open")) return Status::error(f, "open " + path);
  return open_beneath(c.root_fd, path, flags, mode);
}

Status write_all(int fd, const std::string& data, int64_t off, bool append) {
  size_t done = 0;
  while (done < data.size()) {
    if (int f = fault::check("txn.write")) return Status::error(f, "write");
    ssize_t n = append ? write(fd, data.data() + done, data.size() - done)
                       : pwrite(fd, data.data() + done, data.size() - done, off + static_cast<int64_t>(done));
    if (n < 0) return Status::from_errno("write");
    done += static_cast<size_t>(n);
  }
  return {};
}

Status write_op(const ExecCtx& c, const Op& op, const PlannedOp& po, OpResult& res) {
  int flags = O_WRONLY | (op.append ? O_APPEND : 0) | (op.truncate ? O_TRUNC : 0);
  Result<Fd> fd = Fd();
  if (c.last && c.last->fd >= 0 && c.last->path == po.path && !op.append) {
    fd = Fd(std::exchange(c.last->fd, -1));  // the create just before opened it
    c.last->path.clear();
    if (op.truncate && ftruncate(fd->get(), 0) != 0) return err_at(po.path, "truncate");
  } else {
    fd = open_target(c, po.path, flags);
  }
  if (!fd) return fd.status();
  if (op.fd_index >= 0) {
    int src = (*c.fds)[static_cast<size_t>(op.fd_index)];
    int64_t off = op.offset;
    if (op.append) {
      struct stat st;
      if (fstat(fd->get(), &st) != 0) return err_at(po.path, "stat");
      off = st.st_size;
    }
    if (c.logged) c.logged->cannot();  // logged.h: bytes it does not hold
    auto n = copy_range(src, op.src_offset, fd->get(), off, op.length);
    if (!n) return Status::error(n.err(), "write " + po.path + " from passed descriptor " + std::to_string(op.fd_index) + ": " + n.status().what());
    res.bytes = *n;
    return {};
  }
  if (op.truncate && c.logged) c.logged->resized(fd->get());
  Status st = write_all(fd->get(), op.data, op.offset, op.append);
  if (!st) return Status::error(st.err(), "write " + po.path);
  res.bytes = static_cast<int64_t>(op.data.size());
  if (c.logged) {  // where the bytes landed: with append, just before the file's end
    off_t end = op.append ? lseek(fd->get(), 0, SEEK_CUR) : 0;
    if (end < 0) c.logged->cannot();
    else c.logged->wrote(fd->get(), op.append ? static_cast<uint64_t>(end) - op.data.size() : static_cast<uint64_t>(op.offset), op.data);
  }
  return {};
}

Status truncate_op(const ExecCtx& c, const Op& op, const PlannedOp& po) {
  auto fd = open_target(c, po.path, O_WRONLY);
  if (!fd) return fd.status();
  if (ftruncate(fd->get(), static_cast<off_t>(op.size)) != 0) return err_at(po.path, "truncate");
  if (c.logged) c.logged->resized(fd->get());
  return {};
}

Status create_op(const ExecCtx& c, const Op& op, const PlannedOp& po) {
  int flags = O_WRONLY | (po.created ? O_CREAT | O_EXCL : 0) | (op.truncate ? O_TRUNC : 0);
  auto fd = open_target(c, po.path, flags, op.mode & 07777);
  if (!fd) return fd.status();
  if (op.truncate && !po.created && c.logged) c.logged->resized(fd->get());
  if (c.last) {
    c.last->fd = fd->release();
    c.last->path = po.path;
  }
  return {};
}

Status copy_op(const ExecCtx& c, const Op& op, const PlannedOp& po, OpResult& res) {
  auto src = open_target(c, po.path, O_RDONLY);
  if (!src) return src.status();
  struct stat st;
  if (fstat(src->get(), &st) != 0) return err_at(po.path, "stat");
  bool whole = op.src_offset == 0 && op.offset == 0 && op.length < 0;
  int flags = O_WRONLY | (po.created ? O_CREAT | O_EXCL : 0) | (whole ? O_TRUNC : 0);
  auto dst = open_target(c, po.path2, flags, st.st_mode & 07777);
  if (!dst) return dst.status();
  if (whole && c.reflink && ioctl(dst->get(), FICLONE, src->get()) == 0) {
    res.bytes = st.st_size;  // a logged remap: the store's log carries it (logged.h)
    if (c.logged) c.logged->resized(dst->get());  // (and older records of the file must not replay over it)
    return {};
  }
  if (c.logged) c.logged->cannot();  // logged.h: bytes it does not hold
  auto n = copy_range(src->get(), op.src_offset, dst->get(), op.offset, op.length);
  if (!n) return Status::error(n.err(), "copy " + po.path + " to " + po.path2);
  res.bytes = *n;
  return {};
}

Status setattr_op(const ExecCtx& c, const Op& op, const PlannedOp& po) {
  auto fd = open_target(c, po.path, O_PATH);
  if (!fd) return fd.status();
  if (op.set_uid || op.set_gid) {
    uid_t u = op.set_uid ? op.uid : static_cast<uid_t>(-1);
    gid_t g = op.set_gid ? op.gid : static_cast<gid_t>(-1);
    if (fchownat(fd->get(), "", u, g, AT_EMPTY_PATH) != 0) return err_at(po.path, "chown");
  }
  if (op.set_mode && fchmodat(AT_FDCWD, fd_path(fd->get()).c_str(), op.mode & 07777, 0) != 0)
    return err_at(po.path, "chmod");
  if (op.set_atime || op.set_mtime) {
    auto ts = [](bool set, const Timestamp& t) {
      struct timespec v{};
      v.tv_nsec = !set ? UTIME_OMIT : t.now ? UTIME_NOW : static_cast<long>(t.nsec);
      v.tv_sec = set && !t.now ? t.sec : 0;
      return v;
    };
    struct timespec tv[2] = {ts(op.set_atime, op.atime), ts(op.set_mtime, op.mtime)};
    if (utimensat(fd->get(), "", tv, AT_EMPTY_PATH) != 0) return err_at(po.path, "set times of");
  }
  if (op.set_mtime && c.logged) c.logged->resized(fd->get());  // logged.h: the last piece has the final mtime
  return {};
}

Status xattr_op(const ExecCtx& c, const Op& op, const PlannedOp& po) {
  auto fd = open_target(c, po.path, O_PATH);
  if (!fd) return fd.status();
  std::string p = fd_path(fd->get());
  int rc = op.kind == OpKind::Setxattr
               ? setxattr(p.c_str(), op.name.c_str(), op.value.data(), op.value.size(), op.xattr_flags)
               : removexattr(p.c_str(), op.name.c_str());
  if (rc != 0) return err_at(po.path, op.kind == OpKind::Setxattr ? "setxattr on" : "removexattr on");
  return {};
}

Status symlink_op(const ExecCtx& c, const Op& op, const PlannedOp& po) {
  std::string name;
  auto dir = parent(c, po.path, &name);
  if (!dir) return dir.status();
  if (symlinkat(op.target.c_str(), dir->get(), name.c_str()) != 0) return err_at(po.path, "symlink");
  return {};
}

Status link_op(const ExecCtx& c, const PlannedOp& po) {
  std::string oname, nname;
  auto odir = parent(c, po.path, &oname);
  if (!odir) return odir.status();
  auto ndir = parent(c, po.path2, &nname);
  if (!ndir) return ndir.status();
  if (linkat(odir->get(), oname.c_str(), ndir->get(), nname.c_str(), 0) != 0) return err_at(po.path2, "link");
  return {};
}

// Hard-links a file victim into txn/<id>/ (as root: our bookkeeping) so
// the caller's own unlink/rename can then run with the kernel's checks.
Status keep_victim(const ExecCtx& c, int dirfd, const std::string& name, const PlannedOp& po) {
  if (c.txn_fd < 0) return {};
  AsRoot root(*c.who);
  if (linkat(dirfd, name.c_str(), c.txn_fd, po.image.c_str(), 0) != 0 && errno != EEXIST)
    return err_at(po.victim_path, "keep an undo link to");
  return {};
}

// Could the caller delete everything below dirfd (as rm -r would)? Every
// directory must be readable and searchable, and writable when not empty;
// sticky directories only let the owner (of the entry or the directory) in.
Status check_removable(int dirfd, const std::string& path, uid_t uid, int depth = 0) {
  if (depth > 4096) return Status::error(ELOOP, path + ": too deep");
  std::string p = fd_path(dirfd);
  if (faccessat(AT_FDCWD, p.c_str(), R_OK | X_OK, AT_EACCESS) != 0) return err_at(path, "cannot list");
  struct stat dst;
  if (fstat(dirfd, &dst) != 0) return err_at(path, "stat");
  Status st;
  bool any = false;
  Status listed = for_each_entry(dirfd, ".", [&](const char* n, unsigned char) {
    if (!any && faccessat(AT_FDCWD, p.c_str(), W_OK | X_OK, AT_EACCESS) != 0) {
      st = err_at(path, "cannot remove entries of");
      return false;
    }
    any = true;
    struct stat est;
    if (fstatat(dirfd, n, &est, AT_SYMLINK_NOFOLLOW) != 0) return true;
    if ((dst.st_mode & S_ISVTX) && uid != 0 && est.st_uid != uid && dst.st_uid != uid) {
      st = Status::error(EPERM, path + "/" + n + ": sticky directory, not the owner");
      return false;
    }
    if (!S_ISDIR(est.st_mode)) return true;
    Fd sub(openat(dirfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!sub) {
      st = err_at(path + "/" + n, "cannot open");
      return false;
    }
    st = check_removable(sub.get(), path + "/" + n, uid, depth + 1);
    return st.is_ok();
  });
  if (!listed) {
    errno = listed.err();
    return err_at(path, "open");
  }
  return st;
}

// The top-level checks unlinkat would make on dir/name: write and search
// on the parent, and the sticky rule.
Status check_unlink(int dirfd, const std::string& name, const std::string& path, uid_t uid) {
  if (faccessat(AT_FDCWD, fd_path(dirfd).c_str(), W_OK | X_OK, AT_EACCESS) != 0) return err_at(path, "remove");
  struct stat dst, est;
  if (fstatat(dirfd, "", &dst, AT_EMPTY_PATH) != 0 || fstatat(dirfd, name.c_str(), &est, AT_SYMLINK_NOFOLLOW) != 0)
    return err_at(path, "stat");
  if ((dst.st_mode & S_ISVTX) && uid != 0 && est.st_uid != uid && dst.st_uid != uid)
    return Status::error(EPERM, path + ": sticky directory, not the owner");
  return {};
}

// A directory victim (of remove, or of a rename onto it) is moved into
// txn/<id>/ whole, as root, after checking that the caller could remove it
// and everything in it; with txn off it is simply deleted.
Status move_dir_victim(const ExecCtx& c, int dirfd, const std::string& name, const PlannedOp& po) {
  TCFS_TRY(check_unlink(dirfd, name, po.victim_path, c.who->uid));
  Fd top(openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!top) return err_at(po.victim_path, "open");
  TCFS_TRY(check_removable(top.get(), po.victim_path, c.who->uid));
  AsRoot root(*c.who);
  if (c.txn_fd < 0) return remove_tree(dirfd, name);
  if (renameat2(dirfd, name.c_str(), c.txn_fd, po.image.c_str(), RENAME_NOREPLACE) != 0)
    return err_at(po.victim_path, "move aside");
  return {};
}

Status remove_op(const ExecCtx& c, const PlannedOp& po) {
  std::string name;
  auto dir = parent(c, po.path, &name);
  if (!dir) return dir.status();
  switch (po.victim) {
    case Victim::File:
      TCFS_TRY(keep_victim(c, dir->get(), name, po));
      if (unlinkat(dir->get(), name.c_str(), 0) != 0) return err_at(po.path, "unlink");
      return {};
    case Victim::Tree: return move_dir_victim(c, dir->get(), name, po);
    case Victim::None: break;
  }
  return Status::error(EINVAL, po.path + ": nothing planned to remove");
}

Status rename_op(const ExecCtx& c, const Op& op, const PlannedOp& po) {
  std::string a, b;
  auto da = parent(c, po.path, &a);
  if (!da) return da.status();
  auto db = parent(c, po.path2, &b);
  if (!db) return db.status();
  if (po.victim == Victim::File) TCFS_TRY(keep_victim(c, db->get(), b, po));
  if (po.victim == Victim::Tree) TCFS_TRY(move_dir_victim(c, db->get(), b, po));
  if (po.amend_exchange && c.amend_exchange) {
    struct stat st;
    AsRoot root(*c.who);
    if (fstatat(db->get(), b.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return err_at(po.path2, "stat");
    TCFS_TRY(c.amend_exchange(po.exchange_step, Identity{st.st_dev, st.st_ino}));
  }
  if (int f = fault::check("txn.rename")) return Status::error(f, "rename " + po.path);
  if (renameat2(da->get(), a.c_str(), db->get(), b.c_str(), op.rename_flags) != 0)
    return err_at(po.path, "rename");
  return {};
}

Status dispatch(const ExecCtx& c, const Op& op, const PlannedOp& po, OpResult& res);

}  // namespace

Status exec_op(const ExecCtx& c, const Op& op, const PlannedOp& po, OpResult& res) {
  if (c.last && op.kind != OpKind::Write) c.last->reset();
  Status st = dispatch(c, op, po, res);
  if (c.last && op.kind == OpKind::Write) c.last->reset();  // used, or not for this write
  return st;
}

namespace {

Status dispatch(const ExecCtx& c, const Op& op, const PlannedOp& po, OpResult& res) {
  if (po.noop) return {};
  switch (op.kind) {
    case OpKind::Mkdir: return mkdir_op(c, op, po);
    case OpKind::Create: return create_op(c, op, po);
    case OpKind::Write: return write_op(c, op, po, res);
    case OpKind::Truncate: return truncate_op(c, op, po);
    case OpKind::Copy: return copy_op(c, op, po, res);
    case OpKind::Setattr: return setattr_op(c, op, po);
    case OpKind::Setxattr:
    case OpKind::Removexattr: return xattr_op(c, op, po);
    case OpKind::Symlink: return symlink_op(c, op, po);
    case OpKind::Link: return link_op(c, po);
    case OpKind::Rename: return rename_op(c, op, po);
    case OpKind::Remove: return remove_op(c, po);
  }
  return Status::error(EINVAL, "unknown operation");
}

}  // namespace

int probe_errno(const ExecCtx& c, const Op& op) {
  for (const std::string* p : {&op.path, &op.path2}) {
    if (p->empty()) continue;
    auto [dir, base] = split_parent(*p);
    auto fd = open_beneath(c.root_fd, dir, O_PATH | O_DIRECTORY, 0, false);
    if (!fd) return fd.err();
  }
  return 0;
}

}  // namespace tcfs::txn
