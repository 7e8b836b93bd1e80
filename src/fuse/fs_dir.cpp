// fuse/fs_dir.cpp — directories: opendir, readdir, readdirplus, fsyncdir,
// releasedir.
//
// Listings stream: each handle owns one open directory fd and a fixed
// getdents64 buffer, so memory does not grow with directory size. The
// offsets handed to the kernel are the backing filesystem's own d_off
// cookies, which stay valid across calls and after entries are removed
// (what `ls` and `rm -r` rely on); a readdir at any other offset than the
// handle's current one seeks the backing fd there.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <memory>

#include "fuse/fs.h"

namespace tcfs::fusefs {

DirHandle::~DirHandle() {
  if (fd >= 0) close(fd);
}

namespace {

constexpr size_t kDentsBuf = 32 * 1024;

DirHandle* dh_of(fuse_file_info* fi) { return reinterpret_cast<DirHandle*>(fi->fh); }

struct linux_dirent64 {
  ino64_t d_ino;
  off64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Fs& fs = fs_of(req);
  auto d = std::make_unique<DirHandle>();
  Status st = under(lock_read(fs, ino), [&] {
    return with_fd(fs, ino, [&](int fd) {
      d->fd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      return d->fd < 0 ? Status::error(errno) : Status();
    });
  });
  if (!st) return reply(req, {"opendir", ino}, Result<OpenReply>(st));
  // The kernel may cache listings: every change to a directory goes through
  // this daemon, which tells the kernel (directly or by its own bookkeeping).
  fi->cache_readdir = 1;
  fi->keep_cache = 1;
  fi->fh = reinterpret_cast<uint64_t>(d.release());
  reply(req, {"opendir", ino}, Result<OpenReply>(OpenReply{*fi}));
}

bool is_dot(const char* n) { return n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0')); }

// Refills d's buffer when empty. Returns >0 when an entry is ready, 0 at the
// end of the directory, -errno on error.
int next_entry(DirHandle& d, linux_dirent64** out) TCFS_REQUIRES(d.mu) {
  if (d.buf_off >= d.buf_len) {
    // Not zeroed, and not made at opendir: an opendir that reads nothing
    // (the kernel's cached listing, a stat of ".") costs no allocation.
    if (!d.buf) d.buf.reset(new char[kDentsBuf]);
    long n = syscall(SYS_getdents64, d.fd, d.buf.get(), kDentsBuf);
    if (n < 0) return -errno;
    if (n == 0) return 0;
    d.buf_len = static_cast<size_t>(n);
    d.buf_off = 0;
  }
  *out = reinterpret_cast<linux_dirent64*>(d.buf.get() + d.buf_off);
  return 1;
}

// How readdirplus looks its entries up. While a compound runs (the
// directory's guard is locked()), each child is locked too, by fuse_try()
// only: a child a compound holds is listed by name alone (node id 0: the
// kernel makes no dentry and looks it up, waiting, when it needs it), so no
// attributes of a half-changed object reach the kernel and no wait happens
// out of order.
Result<fuse_entry_param> plus_entry(Fs& fs, Inode& dir, DirHandle& d, const char* name, bool careful,
                                    const struct stat& name_only) {
  fuse_entry_param e{};
  e.attr = name_only;
  if (is_dot(name)) return e;
  if (!careful) {
    auto r = fs.lookup_entry(dir, name);
    if (!r) return r.status();
    return r.value().e;
  }
  struct stat st;
  if (fstatat(d.fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return Status::error(errno);
  txn::LockKey k{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
  txn::FuseGuard child = fs.locks().fuse_try(k, txn::LockMode::Read);
  if (!child.locked()) return e;
  auto r = fs.lookup_entry(dir, name);
  if (!r) return r.status();
  if (key_of(fs.table().get(r.value().e.ino)) != k) {  // the name moved meanwhile
    fs.table().forget(r.value().e.ino, 1);
    return e;
  }
  return r.value().e;
}

// Adds one entry to out; returns its encoded size, or 0 if it did not fit
// (nothing is added then, and no lookup reference is left behind).
size_t add_entry(fuse_req_t req, Fs& fs, Inode& dir, DirHandle& d, bool plus, bool careful, linux_dirent64* de,
                 char* out, size_t room, bool* skip) {
  struct stat st {};
  st.st_ino = de->d_ino;
  st.st_mode = static_cast<mode_t>(DTTOIF(de->d_type));
  if (!plus) {
    size_t need = fuse_add_direntry(req, out, room, de->d_name, &st, de->d_off);
    return need > room ? 0 : need;
  }
  auto r = plus_entry(fs, dir, d, de->d_name, careful, st);
  if (!r) {  // vanished since getdents: leave it out
    *skip = true;
    return 0;
  }
  fuse_entry_param e = r.value();
  size_t need = fuse_add_direntry_plus(req, out, room, de->d_name, &e, de->d_off);
  if (need > room) {
    if (e.ino) fs.table().forget(e.ino, 1);
    return 0;
  }
  return need;
}

// Fills out with entries from the handle's position; returns the bytes
// used or the error (only when nothing could be listed).
Result<size_t> fill_listing(fuse_req_t req, Fs& fs, Inode& dir, DirHandle& d, off_t off, bool plus, bool careful,
                            char* out, size_t size) TCFS_REQUIRES(d.mu) {
  if (off != d.pos) {
    if (lseek(d.fd, off, SEEK_SET) < 0) return Status::error(errno);
    d.buf_off = d.buf_len = 0;
    d.pos = off;
  }
  size_t used = 0;
  for (;;) {
    linux_dirent64* de = nullptr;
    int rc = next_entry(d, &de);
    if (rc < 0 && used == 0) return Status::error(-rc);
    if (rc <= 0) break;
    bool skip = false;
    size_t n = add_entry(req, fs, dir, d, plus, careful, de, out + used, size - used, &skip);
    if (n == 0 && !skip) break;
    used += n;
    d.pos = de->d_off;
    d.buf_off += de->d_reclen;
  }
  return used;
}

void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi, bool plus) {
  Fs& fs = fs_of(req);
  DirHandle& d = *dh_of(fi);
  std::unique_ptr<char[]> out(new char[size]);
  Result<size_t> used = Status::error(EIO);
  {
    // The reply goes out only after the directory's lock and d.mu are
    // released: once the kernel has the reply it may release the handle on
    // another worker at once.
    txn::FuseGuard lk = lock_read(fs, ino);
    MutexLock g(d.mu);
    used = fill_listing(req, fs, fs.table().get(ino), d, off, plus, lk.locked(), out.get(), size);
  }
  if (!used) return reply(req, {"readdir", ino}, used.status());
  reply_buf(req, {"readdir", ino}, out.get(), used.value());
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  do_readdir(req, ino, size, off, fi, false);
}
void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  do_readdir(req, ino, size, off, fi, true);
}

void op_releasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  delete dh_of(fi);
  fuse_reply_err(req, 0);
}

void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
  int fd = dh_of(fi)->fd;
  Status st = under(lock_read(fs_of(req), ino), [&] {
    return (datasync ? fdatasync(fd) : fsync(fd)) == 0 ? Status() : Status::error(errno);
  });
  if (!st) return reply(req, {"fsyncdir", ino}, st);
  reply(req, {"fsyncdir", ino}, fs_of(req).before_fsync_ack());
}

}  // namespace

void fill_dir_ops(fuse_lowlevel_ops& o) {
  o.opendir = op_opendir;
  o.readdir = op_readdir;
  o.readdirplus = op_readdirplus;
  o.releasedir = op_releasedir;
  o.fsyncdir = op_fsyncdir;
}

}  // namespace tcfs::fusefs
