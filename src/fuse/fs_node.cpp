// fuse/fs_node.cpp — name-space and attribute operations: lookup, forget,
// getattr, setattr, mknod, mkdir, symlink, link, unlink, rmdir, rename,
// readlink, statfs, access and the xattr family.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <climits>

#include "fuse/creds.h"
#include "fuse/fs.h"

namespace tcfs::fusefs {

std::string proc_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

namespace {

Status errno_status() { return Status::error(errno); }
int rc_errno(int rc) { return rc == 0 ? 0 : errno; }

EntryReply negative_entry(const Options& o) {
  EntryReply r{};
  r.e.ino = 0;  // the kernel caches "no such name" for entry_timeout
  r.e.entry_timeout = o.negative_timeout;
  return r;
}

Result<AttrReply> stat_inode(Fs& fs, fuse_ino_t ino, fuse_file_info* fi) {
  AttrReply r{};
  r.timeout = fs.options().attr_timeout;
  if (fi) {
    auto* fh = reinterpret_cast<FileHandle*>(fi->fh);
    if (fstat(fh->fd, &r.st) != 0) return errno_status();
    fs.attr_out(*fh->inode, r.st);
    return r;
  }
  return with_fd(fs, ino, [&](int fd) -> Result<AttrReply> {
    if (fstatat(fd, "", &r.st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return errno_status();
    fs.attr_out(fs.table().get(ino), r.st);
    return r;
  });
}

// Runs a creating syscall as the caller, then looks the new name up.
template <typename F>
Result<EntryReply> create_node(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, F&& mk) {
  Fs& fs = fs_of(req);
  Status st = with_fd(fs, parent, [&](int dfd) {
    return Status::code(with_caller_creds(req, mode, [&] { return rc_errno(mk(dfd)); }));
  });
  if (!st) return st;
  return fs.lookup_entry(fs.table().get(parent), name);
}

// A lookup hands the kernel the child's attributes too, so while a compound
// runs (the parent's guard is locked()) the child is locked as well: by
// fuse_try() if it is free, else by waiting for both in the global order
// with nothing held meanwhile. If the name meanwhile moved to another
// object, again (a few times, then the parent's lock alone must do).
constexpr int kLookupTries = 3;

Result<EntryReply> lookup_tries(Fs& fs, Inode& dir, fuse_ino_t parent, const char* name, txn::FuseGuard& g) {
  for (int i = 0; g.locked() && i < kLookupTries; ++i) {
    struct stat st;
    Status s = with_fd(fs, parent, [&](int fd) {
      return fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 ? Status() : errno_status();
    });
    if (!s) return s;  // no such name, under the parent's lock
    txn::LockKey k{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
    txn::FuseGuard child = fs.locks().fuse_try(k, txn::LockMode::Read);
    if (!child.locked()) {
      g.release();  // never wait while holding a lock out of order
      g = fs.locks().fuse_enter({{key_of(dir), txn::LockMode::Read}, {k, txn::LockMode::Read}});
    }
    auto r = fs.lookup_entry(dir, name);
    if (!r || key_of(fs.table().get(r.value().e.ino)) == k) return r;
    fs.table().forget(r.value().e.ino, 1);
  }
  return fs.lookup_entry(dir, name);
}

Result<EntryReply> lookup_locked(Fs& fs, fuse_ino_t parent, const char* name) {
  Inode& dir = fs.table().get(parent);
  txn::FuseGuard g = fs.locks().fuse_enter({{key_of(dir), txn::LockMode::Read}});
  auto r = lookup_tries(fs, dir, parent, name, g);
  // notify.h: recorded while g still keeps compounds out of the directory.
  if (!r && r.err() == ENOENT) dir.negatives.store(true);
  return r;
}

// LOOKUP(id, ".") and LOOKUP(id, ".."): the kernel asks these only to
// reconnect an exported handle (FUSE_CAP_EXPORT_SUPPORT): the object of
// node id `id`, decoded if the daemon forgot it (inode_table.h, export
// security rule), or its parent directory. The object's attributes are
// read again under its Read lock, as a lookup's child.
Result<EntryReply> lookup_dots(Fs& fs, fuse_ino_t id, bool dotdot) {
  struct stat st;
  auto in = dotdot ? fs.table().parent(fs.table().get(id), &st) : fs.table().resolve(id, &st);
  if (!in) return in.err() == ENOENT ? Status::error(ESTALE) : in.status();
  Inode& obj = *in.value();
  fuse_ino_t oid = fs.table().id_of(obj);
  auto s = under(fs.locks().fuse_enter({{key_of(obj), txn::LockMode::Read}}), [&] {
    return with_fd(fs, oid, [&](int fd) {
      return fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0 ? Status() : errno_status();
    });
  });
  if (!s) {
    fs.table().forget(oid, 1);
    return s;
  }
  spdlog::debug("lookup: node {:#x} \"{}\" -> node {:#x}", id, dotdot ? ".." : ".", oid);
  return fs.make_entry(obj, st);
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Fs& fs = fs_of(req);
  if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0')))
    return reply(req, {"lookup", parent, name}, lookup_dots(fs, parent, name[1] == '.'));
  auto r = lookup_locked(fs, parent, name);
  if (!r && r.err() == ENOENT) r = negative_entry(fs.options());
  reply(req, {"lookup", parent, name}, r);
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  fs_of(req).table().forget(ino, nlookup);
  fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  Fs& fs = fs_of(req);
  for (size_t i = 0; i < count; ++i) fs.table().forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Fs& fs = fs_of(req);
  reply(req, {"getattr", ino}, under(lock_read(fs, ino), [&] { return stat_inode(fs, ino, fi); }));
}

Status set_times(int ifd, fuse_file_info* fi, const struct stat* attr, int to_set) {
  struct timespec tv[2];
  tv[0].tv_sec = tv[1].tv_sec = 0;
  tv[0].tv_nsec = tv[1].tv_nsec = UTIME_OMIT;
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) tv[0].tv_nsec = UTIME_NOW;
  else if (to_set & FUSE_SET_ATTR_ATIME) tv[0] = attr->st_atim;
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) tv[1].tv_nsec = UTIME_NOW;
  else if (to_set & FUSE_SET_ATTR_MTIME) tv[1] = attr->st_mtim;
  int rc = fi ? futimens(reinterpret_cast<FileHandle*>(fi->fh)->fd, tv)
              : utimensat(ifd, "", tv, AT_EMPTY_PATH);
  return rc == 0 ? Status() : errno_status();
}

Status apply_setattr(int ifd, const struct stat* attr, int to_set, fuse_file_info* fi) {
  int hfd = fi ? reinterpret_cast<FileHandle*>(fi->fh)->fd : -1;
  if (to_set & FUSE_SET_ATTR_MODE) {
    int rc = hfd >= 0 ? fchmod(hfd, attr->st_mode) : fchmodat(AT_FDCWD, proc_path(ifd).c_str(), attr->st_mode, 0);
    if (rc != 0) return errno_status();
  }
  // chown(f, -1, -1) arrives with nothing to set (or only CTIME, with the
  // writeback cache): the backing filesystem's own chown(-1, -1) updates
  // ctime, as the kernel does for a local file.
  constexpr int kChanges = FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
                           FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW;
  if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID) || !(to_set & kChanges)) {
    uid_t uid = (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : static_cast<uid_t>(-1);
    gid_t gid = (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : static_cast<gid_t>(-1);
    if (fchownat(ifd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return errno_status();
  }
  if (to_set & FUSE_SET_ATTR_SIZE) {
    int rc = hfd >= 0 ? ftruncate(hfd, attr->st_size) : truncate(proc_path(ifd).c_str(), attr->st_size);
    if (rc != 0) return errno_status();
  }
  if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW))
    TCFS_TRY(set_times(ifd, fi, attr, to_set));
  return {};
}

// The writeback cache keeps a file's times in the kernel, which writes
// them back later (at syncfs, or when it drops the inode), also for a file
// that was deleted meanwhile: once the object is gone (no links, not open)
// there is nothing to keep them on, as on a local filesystem. Not an error
// (it would fail the caller's syncfs): the times are taken as given.
Result<AttrReply> times_of_gone(fuse_ino_t ino, mode_t type, const struct stat* attr, int to_set,
                                fuse_file_info* fi) {
  constexpr int kTimes = FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_CTIME | FUSE_SET_ATTR_ATIME_NOW |
                         FUSE_SET_ATTR_MTIME_NOW;
  if (fi || (to_set & ~kTimes)) return Status::error(ESTALE);
  AttrReply r{};
  r.st = *attr;
  r.st.st_ino = ino;
  r.st.st_mode = type;
  r.st.st_nlink = 0;
  r.timeout = 0;
  return r;
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  Fs& fs = fs_of(req);
  auto r = under(lock_read(fs, ino), [&]() -> Result<AttrReply> {
    // The kernel's own times under the writeback cache (mtime, ctime, sent
    // before its fsync): the log's records carry the mtime.
    constexpr int kLogged = FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_CTIME;
    if (to_set & FUSE_SET_ATTR_SIZE) TCFS_TRY(fs.mark_data(ino));
    else TCFS_TRY(fs.mark_attr(ino, !(to_set & ~kLogged)));
    TCFS_TRY(fs.ensure_all(ino));  // a stub's fetch restores times: let it finish first
    TCFS_TRY(with_fd(fs, ino, [&](int ifd) { return apply_setattr(ifd, attr, to_set, fi); }));
    auto st = stat_inode(fs, ino, fi);
    if (st && (to_set & FUSE_SET_ATTR_CTIME) && fs.options().writeback_cache)
      fs.kernel_ctime(st.value().st, attr->st_ctim);  // kernel_ctimes.h 2
    return st;
  });
  if (!r && r.err() == ESTALE && fs.options().writeback_cache)
    r = times_of_gone(ino, fs.table().get(ino).type, attr, to_set, fi);
  reply(req, {"setattr", ino}, std::move(r));
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  Fs& fs = fs_of(req);
  reply(req, {"readlink", ino}, under(lock_read(fs, ino), [&] {
          return with_fd(fs, ino, [&](int fd) -> Result<ReadlinkReply> {
            char buf[PATH_MAX + 1];
            ssize_t n = readlinkat(fd, "", buf, sizeof(buf) - 1);
            if (n < 0) return errno_status();
            return ReadlinkReply{std::string(buf, static_cast<size_t>(n))};
          });
        }));
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  reply(req, {"mknod", parent, name}, under(lock_names(fs_of(req), parent), [&]() -> Result<EntryReply> {
          TCFS_TRY(fs_of(req).mark_name(parent, name));
          return create_node(req, parent, name, mode, [&](int dfd) { return mknodat(dfd, name, mode, rdev); });
        }));
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  reply(req, {"mkdir", parent, name}, under(lock_names(fs_of(req), parent), [&]() -> Result<EntryReply> {
          TCFS_TRY(fs_of(req).mark_name(parent, name));
          return create_node(req, parent, name, mode | S_IFDIR, [&](int dfd) { return mkdirat(dfd, name, mode); });
        }));
}

void op_symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  reply(req, {"symlink", parent, name}, under(lock_names(fs_of(req), parent), [&]() -> Result<EntryReply> {
          TCFS_TRY(fs_of(req).mark_name(parent, name));
          return create_node(req, parent, name, S_IFLNK | 0777,
                             [&](int dfd) { return symlinkat(link, dfd, name); });
        }));
}

Result<EntryReply> do_link(Fs& fs, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  Status st = with_fd(fs, ino, [&](int fd) {
    return with_fd(fs, newparent, [&](int dfd) {
      // AT_EMPTY_PATH links the object itself (needs CAP_DAC_READ_SEARCH,
      // which a root daemon has); otherwise go through its /proc path.
      int rc = linkat(fd, "", dfd, newname, AT_EMPTY_PATH);
      if (rc != 0 && errno == ENOENT && geteuid() != 0)
        rc = linkat(AT_FDCWD, proc_path(fd).c_str(), dfd, newname, AT_SYMLINK_FOLLOW);
      return rc == 0 ? Status() : errno_status();
    });
  });
  if (!st) return st;
  return fs.lookup_entry(fs.table().get(newparent), newname);
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  Fs& fs = fs_of(req);
  reply(req, {"link", newparent, newname},
        under(lock_two(fs, ino, txn::LockMode::Read, newparent, txn::LockMode::NameWrite),
              [&]() -> Result<EntryReply> {
                TCFS_TRY(fs.mark_attr(ino));
                TCFS_TRY(fs.mark_name(newparent, newname));
                return do_link(fs, ino, newparent, newname);
              }));
}

Status remove_name(Fs& fs, fuse_ino_t parent, const char* name, int flags) {
  return under(lock_names(fs, parent), [&] {
    TCFS_TRY(fs.mark_name(parent, name));
    return with_fd(fs, parent, [&](int dfd) { return unlinkat(dfd, name, flags) == 0 ? Status() : errno_status(); });
  });
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  reply(req, {"unlink", parent, name}, remove_name(fs_of(req), parent, name, 0));
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  reply(req, {"rmdir", parent, name}, remove_name(fs_of(req), parent, name, AT_REMOVEDIR));
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent, const char* newname,
               unsigned int flags) {
  Fs& fs = fs_of(req);
  reply(req, {"rename", parent, name},
        under(lock_two(fs, parent, txn::LockMode::NameWrite, newparent, txn::LockMode::NameWrite), [&] {
          TCFS_TRY(fs.mark_name(parent, name));
          TCFS_TRY(fs.mark_name(newparent, newname));
          return with_fd(fs, parent, [&](int from) {
            return with_fd(fs, newparent, [&](int to) {
              return renameat2(from, name, to, newname, flags) == 0 ? Status() : errno_status();
            });
          });
        }));
}

void op_statfs(fuse_req_t req, fuse_ino_t ino) {
  StatfsReply r{};
  int rc = fstatvfs(fs_of(req).store().root_fd(), &r.sv);
  reply(req, {"statfs", ino}, rc == 0 ? Result<StatfsReply>(r) : Result<StatfsReply>(errno_status()));
}

void op_access(fuse_req_t req, fuse_ino_t ino, int mask) {
  Fs& fs = fs_of(req);
  reply(req, {"access", ino}, under(lock_read(fs, ino), [&] {
          return with_fd(fs, ino, [&](int fd) {
            std::string p = proc_path(fd);
            return Status::code(with_caller_creds(
                req, 0, [&] { return rc_errno(faccessat(AT_FDCWD, p.c_str(), mask, AT_EACCESS)); }));
          });
        }));
}

// Changes of xattrs run as the caller: the backing filesystem then applies
// its own rules for the caller, not for the daemon's root — an access ACL
// sets the mode and drops set-group-ID unless the caller is in the file's
// group or has CAP_FSETID (groups are fetched for that: S_ISGID), and only
// the owner may set an ACL. The mode changed with it, so the kernel's
// cached attributes are dropped before the reply.
Status change_xattr(fuse_req_t req, Fs& fs, fuse_ino_t ino, const std::function<int(const char*)>& fn) {
  TCFS_TRY(fs.mark_attr(ino));
  TCFS_TRY(with_fd(fs, ino, [&](int fd) {
    std::string p = proc_path(fd);
    return Status::code(with_caller_creds(req, S_ISGID, [&] { return rc_errno(fn(p.c_str())); }));
  }));
  fs.inval_attrs(ino);
  return {};
}

// xattrs go through /proc/self/fd/N: the *xattr(2) calls take no O_PATH fd.
void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size, int flags) {
  Fs& fs = fs_of(req);
  reply(req, {"setxattr", ino, name}, under(lock_read(fs, ino), [&] {
          return change_xattr(req, fs, ino, [&](const char* p) { return setxattr(p, name, value, size, flags); });
        }));
}

Result<XattrReply> read_xattr(ssize_t (*fn)(const char*, const char*, void*, size_t), const std::string& path,
                              const char* name, size_t size) {
  XattrReply r{};
  if (size == 0) {
    ssize_t n = fn(path.c_str(), name, nullptr, 0);
    if (n < 0) return errno_status();
    r.size_only = true;
    r.size = static_cast<size_t>(n);
    return r;
  }
  r.data.resize(size);
  ssize_t n = fn(path.c_str(), name, r.data.data(), size);
  if (n < 0) return errno_status();
  r.data.resize(static_cast<size_t>(n));
  return r;
}

ssize_t list_fn(const char* path, const char*, void* buf, size_t size) {
  return listxattr(path, static_cast<char*>(buf), size);
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  Fs& fs = fs_of(req);
  reply(req, {"getxattr", ino, name}, under(lock_read(fs, ino), [&] {
          return with_fd(fs, ino, [&](int fd) { return read_xattr(&getxattr, proc_path(fd), name, size); });
        }));
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Fs& fs = fs_of(req);
  reply(req, {"listxattr", ino}, under(lock_read(fs, ino), [&] {
          return with_fd(fs, ino, [&](int fd) { return read_xattr(&list_fn, proc_path(fd), nullptr, size); });
        }));
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  Fs& fs = fs_of(req);
  reply(req, {"removexattr", ino, name}, under(lock_read(fs, ino), [&] {
          return change_xattr(req, fs, ino, [&](const char* p) { return removexattr(p, name); });
        }));
}

}  // namespace

EntryReply Fs::make_entry(Inode& in, const struct stat& st) const {
  EntryReply r{};
  r.e.ino = table_->id_of(in);
  r.e.generation = in.gen;  // the backing generation (fuse/export.h)
  r.e.attr = st;
  attr_out(in, r.e.attr);
  r.e.attr_timeout = opts_.attr_timeout;
  r.e.entry_timeout = opts_.entry_timeout;
  // A compound that changes a file gives it a new kernel inode, but can
  // only drop the dentry of the name it changed it by (txn.h invariant
  // 13). Another name of a hard-linked file is asked again within a
  // second, so it, too, meets the new inode.
  if (opts_.writeback_cache && S_ISREG(st.st_mode) && st.st_nlink > 1)
    r.e.entry_timeout = std::min(r.e.entry_timeout, Options::kLinkEntryTimeout);
  return r;
}

Result<EntryReply> Fs::lookup_entry(Inode& parent, const char* name) {
  struct stat st;
  auto in = table_->lookup(parent, name, &st);
  if (!in) return in.status();
  return make_entry(*in.value(), st);
}

void fill_node_ops(fuse_lowlevel_ops& o) {
  o.lookup = op_lookup;
  o.forget = op_forget;
  o.forget_multi = op_forget_multi;
  o.getattr = op_getattr;
  o.setattr = op_setattr;
  o.readlink = op_readlink;
  o.mknod = op_mknod;
  o.mkdir = op_mkdir;
  o.symlink = op_symlink;
  o.link = op_link;
  o.unlink = op_unlink;
  o.rmdir = op_rmdir;
  o.rename = op_rename;
  o.statfs = op_statfs;
  o.access = op_access;
  o.setxattr = op_setxattr;
  o.getxattr = op_getxattr;
  o.listxattr = op_listxattr;
  o.removexattr = op_removexattr;
}

}  // namespace tcfs::fusefs
