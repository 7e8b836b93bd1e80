// ptfs — a bare passthrough FUSE filesystem over a source directory, the
// speed reference of tools/bench/bench-posix (see tools/bench/README.md).
//
//   ptfs SOURCE MOUNTPOINT [--threads N] [--no-writeback] [--read-ahead-kb N]
//                          [--foreground] [--debug]
//
// libfuse 3 low-level API. Every kernel inode is an Inode holding an O_PATH
// descriptor of the source object; its node id is the Inode's address (the
// root is FUSE_ROOT_ID). Inodes are shared by (st_dev, st_ino), so hard links
// are one kernel inode, and live as long as the kernel holds a lookup
// reference (nlookup, dropped by FORGET). Past a budget of descriptors (3/4
// of the open-file limit) a new Inode keeps a file handle instead and each
// request reopens it (open_by_handle_at). Everything runs as root: with
// default_permissions the kernel has checked the caller's access already.
// The process umask is 0 because the kernel applies the caller's umask.
#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 314
#endif
#include <fuse_lowlevel.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace {

constexpr double kTimeout = 86400.0;  // entries, attributes and negative entries

struct Inode {
  int fd = -1;                         // O_PATH|O_NOFOLLOW of the source object, or
  std::unique_ptr<char[]> handle;      // past the budget: its struct file_handle
  dev_t dev = 0;
  ino_t ino = 0;
  uint64_t nlookup = 0;  // kernel references; guarded by table_mu
  uint64_t generation = 0;
};

struct Key {
  dev_t dev;
  ino_t ino;
  bool operator==(const Key&) const = default;
};
struct KeyHash {
  size_t operator()(const Key& k) const noexcept {
    return std::hash<uint64_t>()(static_cast<uint64_t>(k.ino) * 0x9E3779B97F4A7C15ull ^ k.dev);
  }
};

struct Options {
  std::string source, mountpoint;
  unsigned threads = 16;
  bool writeback = true;
  unsigned read_ahead_kb = 4096;
  bool foreground = false;
  bool debug = false;
};

Options opt;
Inode root;
std::mutex table_mu;
std::unordered_map<Key, Inode*, KeyHash> table;  // every Inode with nlookup > 0, and the root
std::unordered_set<const Inode*> live;            // the same Inodes: node ids a handle may name
uint64_t next_generation = 1;                    // node ids are addresses, reused: generations are not
std::atomic<size_t> inode_fds{0};                // descriptors the Inodes hold
size_t fd_budget = SIZE_MAX;                     // past it new Inodes keep a handle (main)
int mount_fd = -1;  // the source's root opened for reading: open_by_handle_at refuses O_PATH

Inode& inode_of(fuse_ino_t id) { return id == FUSE_ROOT_ID ? root : *reinterpret_cast<Inode*>(id); }
fuse_ino_t id_of(Inode* in) { return in == &root ? FUSE_ROOT_ID : reinterpret_cast<fuse_ino_t>(in); }

// An O_PATH descriptor is reopened for I/O, and used for the calls that take
// no descriptor (chmod, truncate, xattrs), through its /proc magic link; the
// link leads to the object itself, a symlink included.
struct ProcPath {
  char s[40];
  explicit ProcPath(int fd) { std::snprintf(s, sizeof s, "/proc/self/fd/%d", fd); }
};

int stat_of(int fd, struct stat* st) { return fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW); }

// An Inode's O_PATH descriptor for one request: its own, or one reopened
// from its handle and closed when the request is done. A stale handle (the
// object is gone) gives ESTALE.
class PathFd {
 public:
  explicit PathFd(fuse_ino_t id) {
    const Inode& in = inode_of(id);
    if (in.fd >= 0) {
      fd_ = in.fd;
      return;
    }
    fd_ = open_by_handle_at(mount_fd, reinterpret_cast<file_handle*>(in.handle.get()), O_PATH | O_CLOEXEC);
    if (fd_ < 0) err_ = errno;
    owned_ = fd_ >= 0;
  }
  ~PathFd() {
    if (owned_) close(fd_);
  }
  PathFd(const PathFd&) = delete;
  PathFd& operator=(const PathFd&) = delete;
  explicit operator bool() const { return fd_ >= 0; }
  int get() const { return fd_; }
  int err() const { return err_; }

 private:
  int fd_ = -1, err_ = 0;
  bool owned_ = false;
};

// VAR: the PathFd of ID for the request REQ, which is answered with the
// error if there is none.
#define PATH_FD(var, id)  \
  PathFd var(id);         \
  if (!var) return (void)fuse_reply_err(req, var.err())

// FD's file handle, when the Inodes hold their budget of descriptors (the
// source's root mount only: handles are reopened against the root).
std::unique_ptr<char[]> handle_if_over_budget(int fd, dev_t dev) {
  if (inode_fds.load(std::memory_order_relaxed) < fd_budget || dev != root.dev) return nullptr;
  std::unique_ptr<char[]> h(new char[sizeof(file_handle) + MAX_HANDLE_SZ]);
  auto* fh = reinterpret_cast<file_handle*>(h.get());
  fh->handle_bytes = MAX_HANDLE_SZ;
  int mount_id;
  if (name_to_handle_at(fd, "", fh, &mount_id, AT_EMPTY_PATH) != 0) return nullptr;  // then the descriptor
  return h;
}

bool is_dot(const char* n) { return n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0')); }

// Looks NAME up in PARENT and takes one kernel reference on the result.
// "." and ".." arrive for exported handles (EXPORT_SUPPORT), "." with the
// node id taken from the handle: one the kernel has forgotten since (its
// Inode is gone) is stale. ".." of the root is the root (the source's
// parent is not served).
int do_lookup(fuse_ino_t parent, const char* name, fuse_entry_param* e) {
  *e = fuse_entry_param{};
  if (is_dot(name) && parent != FUSE_ROOT_ID) {
    std::lock_guard g(table_mu);
    if (!live.contains(reinterpret_cast<const Inode*>(parent))) return ESTALE;
  }
  if (parent == FUSE_ROOT_ID && std::strcmp(name, "..") == 0) name = ".";
  PathFd p(parent);
  if (!p) return p.err();
  int fd = openat(p.get(), name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno;
  if (stat_of(fd, &e->attr) != 0) {
    int err = errno;
    close(fd);
    return err;
  }
  std::unique_ptr<char[]> handle = handle_if_over_budget(fd, e->attr.st_dev);
  Inode* in;
  bool keep_fd = false;
  {
    std::lock_guard g(table_mu);
    auto [it, fresh] = table.try_emplace(Key{e->attr.st_dev, e->attr.st_ino}, nullptr);
    if (fresh) {
      in = new Inode;
      if (handle) in->handle = std::move(handle);
      else in->fd = fd, keep_fd = true;
      in->dev = e->attr.st_dev;
      in->ino = e->attr.st_ino;
      in->generation = next_generation++;
      it->second = in;
      live.insert(in);
    }
    in = it->second;
    in->nlookup++;
  }
  if (keep_fd) inode_fds.fetch_add(1, std::memory_order_relaxed);
  else close(fd);
  e->ino = id_of(in);
  e->generation = in->generation;
  e->attr_timeout = e->entry_timeout = kTimeout;
  return 0;
}

void forget_one(fuse_ino_t id, uint64_t n) {
  if (id == FUSE_ROOT_ID) return;
  Inode* in = reinterpret_cast<Inode*>(id);
  int fd = -1;
  {
    std::lock_guard g(table_mu);
    in->nlookup -= n < in->nlookup ? n : in->nlookup;
    if (in->nlookup > 0) return;
    table.erase(Key{in->dev, in->ino});
    live.erase(in);
    fd = in->fd;
    delete in;
  }
  if (fd >= 0) {
    close(fd);
    inode_fds.fetch_sub(1, std::memory_order_relaxed);
  }
}

void reply_errno(fuse_req_t req, int r) { fuse_reply_err(req, r == 0 ? 0 : errno); }

// ---------------------------------------------------------------- session
void op_init(void*, fuse_conn_info* c) {
  auto want = [c](unsigned cap) {
    if (c->capable & cap) c->want |= cap;
  };
  want(FUSE_CAP_SPLICE_READ);  // WRITE requests spliced from /dev/fuse into the file
  want(FUSE_CAP_SPLICE_WRITE);  // READ replies spliced from the file into /dev/fuse
  want(FUSE_CAP_SPLICE_MOVE);
  if (opt.writeback) want(FUSE_CAP_WRITEBACK_CACHE);
  else c->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  want(FUSE_CAP_READDIRPLUS);  // with libfuse's default READDIRPLUS_AUTO
  want(FUSE_CAP_EXPORT_SUPPORT);
  want(FUSE_CAP_PARALLEL_DIROPS);
  want(FUSE_CAP_ASYNC_READ);
  want(FUSE_CAP_ASYNC_DIO);
  want(FUSE_CAP_ATOMIC_O_TRUNC);
  want(FUSE_CAP_CACHE_SYMLINKS);
  // The kernel applies the umask, keeps locks to itself, and clears set-id
  // bits (the writes here run as root, which would keep them).
  c->want &= ~(FUSE_CAP_DONT_MASK | FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS | FUSE_CAP_HANDLE_KILLPRIV);
  // The kernel-side settings tcfs uses, so that the two differ in their daemons.
  c->max_background = 64;
  c->congestion_threshold = 48;
}

// ---------------------------------------------------------------- inodes
void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  fuse_entry_param e;
  int err = do_lookup(parent, name, &e);
  if (err == ENOENT) {  // cached by the kernel for entry_timeout
    e = fuse_entry_param{};
    e.entry_timeout = kTimeout;
    fuse_reply_entry(req, &e);
  } else if (err) {
    fuse_reply_err(req, err);
  } else if (fuse_reply_entry(req, &e) != 0) {
    forget_one(e.ino, 1);  // interrupted: the kernel did not take the reference
  }
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t n) {
  forget_one(ino, n);
  fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* f) {
  for (size_t i = 0; i < count; ++i) forget_one(f[i].ino, f[i].nlookup);
  fuse_reply_none(req);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  struct stat st;
  int r;
  if (fi) {
    r = fstat(static_cast<int>(fi->fh), &st);
  } else {
    PATH_FD(f, ino);
    r = stat_of(f.get(), &st);
  }
  if (r != 0) return reply_errno(req, r);
  fuse_reply_attr(req, &st, kTimeout);
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* a, int valid, fuse_file_info* fi) {
  PATH_FD(f, ino);
  int r = 0;
  if (valid & FUSE_SET_ATTR_MODE) r = chmod(ProcPath(f.get()).s, a->st_mode);
  if (r == 0 && (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
    uid_t u = (valid & FUSE_SET_ATTR_UID) ? a->st_uid : static_cast<uid_t>(-1);
    gid_t g = (valid & FUSE_SET_ATTR_GID) ? a->st_gid : static_cast<gid_t>(-1);
    r = fchownat(f.get(), "", u, g, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
  }
  if (r == 0 && (valid & FUSE_SET_ATTR_SIZE))
    r = fi ? ftruncate(static_cast<int>(fi->fh), a->st_size) : truncate(ProcPath(f.get()).s, a->st_size);
  if (r == 0 && (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))) {
    timespec ts[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
    if (valid & FUSE_SET_ATTR_ATIME_NOW) ts[0].tv_nsec = UTIME_NOW;
    else if (valid & FUSE_SET_ATTR_ATIME) ts[0] = a->st_atim;
    if (valid & FUSE_SET_ATTR_MTIME_NOW) ts[1].tv_nsec = UTIME_NOW;
    else if (valid & FUSE_SET_ATTR_MTIME) ts[1] = a->st_mtim;
    r = fi ? futimens(static_cast<int>(fi->fh), ts) : utimensat(f.get(), "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
  }
  if (r != 0) return reply_errno(req, r);
  op_getattr(req, ino, nullptr);
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  char buf[PATH_MAX + 1];
  PATH_FD(f, ino);
  ssize_t n = readlinkat(f.get(), "", buf, PATH_MAX);
  if (n < 0) return reply_errno(req, -1);
  buf[n] = '\0';
  fuse_reply_readlink(req, buf);
}

// A new object belongs to its caller (it was made by root here); in a
// set-group-id directory it keeps the group the directory gave it.
void own(fuse_req_t req, int dirfd, const char* name) {
  const fuse_ctx* c = fuse_req_ctx(req);
  if (c->uid == 0 && c->gid == 0) return;
  struct stat d;
  gid_t g = (fstat(dirfd, &d) == 0 && (d.st_mode & S_ISGID)) ? static_cast<gid_t>(-1) : c->gid;
  (void)fchownat(dirfd, name, c->uid, g, AT_SYMLINK_NOFOLLOW);
}

// After mknod/mkdir/symlink/link: the entry of NAME, with a reference.
void reply_new_entry(fuse_req_t req, fuse_ino_t parent, const char* name) {
  fuse_entry_param e;
  if (int err = do_lookup(parent, name, &e)) return (void)fuse_reply_err(req, err);
  if (fuse_reply_entry(req, &e) != 0) forget_one(e.ino, 1);  // interrupted: no reference taken
}

// mknod/mkdir/symlink: MAKE(parent descriptor) makes NAME.
template <class Make>
void make_entry(fuse_req_t req, fuse_ino_t parent, const char* name, Make make) {
  {
    PATH_FD(p, parent);
    if (make(p.get()) != 0) return reply_errno(req, -1);
    own(req, p.get(), name);
  }
  reply_new_entry(req, parent, name);
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  make_entry(req, parent, name, [&](int dfd) { return mknodat(dfd, name, mode, rdev); });
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  make_entry(req, parent, name, [&](int dfd) { return mkdirat(dfd, name, mode); });
}

void op_symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  make_entry(req, parent, name, [&](int dfd) { return symlinkat(link, dfd, name); });
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  {
    PATH_FD(f, ino);
    PATH_FD(p, newparent);
    // AT_EMPTY_PATH on an O_PATH descriptor needs CAP_DAC_READ_SEARCH: root has it.
    if (linkat(f.get(), "", p.get(), newname, AT_EMPTY_PATH) != 0) return reply_errno(req, -1);
  }
  reply_new_entry(req, newparent, newname);
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  PATH_FD(p, parent);
  reply_errno(req, unlinkat(p.get(), name, 0));
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  PATH_FD(p, parent);
  reply_errno(req, unlinkat(p.get(), name, AT_REMOVEDIR));
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent, const char* newname,
               unsigned flags) {
  PATH_FD(p, parent);
  PATH_FD(np, newparent);
  reply_errno(req, renameat2(p.get(), name, np.get(), newname, flags));
}

void op_statfs(fuse_req_t req, fuse_ino_t ino) {
  PATH_FD(f, ino);
  struct statvfs sv;
  if (fstatvfs(f.get(), &sv) != 0) return reply_errno(req, -1);
  fuse_reply_statfs(req, &sv);
}

// ---------------------------------------------------------------- xattrs
// N from getxattr/listxattr into BUF of SIZE (0: the size is asked).
void reply_xattr_data(fuse_req_t req, ssize_t n, const std::vector<char>& buf, size_t size) {
  if (n < 0) reply_errno(req, -1);
  else if (size == 0) fuse_reply_xattr(req, static_cast<size_t>(n));
  else fuse_reply_buf(req, buf.data(), static_cast<size_t>(n));
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  PATH_FD(f, ino);
  std::vector<char> buf(size);
  reply_xattr_data(req, getxattr(ProcPath(f.get()).s, name, size ? buf.data() : nullptr, size), buf, size);
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  PATH_FD(f, ino);
  std::vector<char> buf(size);
  reply_xattr_data(req, listxattr(ProcPath(f.get()).s, size ? buf.data() : nullptr, size), buf, size);
}

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size, int flags) {
  PATH_FD(f, ino);
  reply_errno(req, setxattr(ProcPath(f.get()).s, name, value, size, flags));
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  PATH_FD(f, ino);
  reply_errno(req, removexattr(ProcPath(f.get()).s, name));
}

// ---------------------------------------------------------------- files
// With the writeback cache the kernel reads pages through any handle (to
// fill partly written ones) and places appends itself. O_DIRECT is left to
// the kernel's side: the source's alignment rules would refuse the
// daemon's buffers. O_NOFOLLOW would refuse the /proc magic link.
int backing_flags(int flags) {
  flags &= ~(O_NOFOLLOW | O_DIRECT | O_NOCTTY);
  if (opt.writeback) {
    flags &= ~O_APPEND;
    if ((flags & O_ACCMODE) == O_WRONLY) flags = (flags & ~O_ACCMODE) | O_RDWR;
  }
  return flags | O_CLOEXEC;
}

// Nothing is cached here, and only this mount writes the source: the
// kernel's page cache stays valid across opens. No FLUSH is needed (locks
// stay in the kernel, writes are in the source at once); with the writeback
// cache the kernel still sends one per close until it is refused (ENOSYS,
// flush is not implemented), then never again.
void set_open_flags(fuse_file_info* fi, int fd) {
  fi->fh = static_cast<uint64_t>(fd);
  fi->keep_cache = 1;
  fi->noflush = 1;
}

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  int fd;
  {
    PATH_FD(f, ino);
    fd = open(ProcPath(f.get()).s, backing_flags(fi->flags & ~(O_CREAT | O_EXCL)));
    if (fd < 0) return reply_errno(req, -1);
  }
  set_open_flags(fi, fd);
  if (fuse_reply_open(req, fi) != 0) close(fd);
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  int fd;
  {
    PATH_FD(p, parent);
    fd = openat(p.get(), name, backing_flags(fi->flags) | O_CREAT, mode);
    if (fd < 0) return reply_errno(req, -1);
    own(req, p.get(), name);
  }
  fuse_entry_param e;
  if (int err = do_lookup(parent, name, &e)) {
    close(fd);
    return (void)fuse_reply_err(req, err);
  }
  set_open_flags(fi, fd);
  if (fuse_reply_create(req, &e, fi) != 0) {
    close(fd);
    forget_one(e.ino, 1);
  }
}

void op_read(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
  buf.buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
  buf.buf[0].fd = static_cast<int>(fi->fh);
  buf.buf[0].pos = off;
  fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

void op_write_buf(fuse_req_t req, fuse_ino_t, fuse_bufvec* in, off_t off, fuse_file_info* fi) {
  fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
  out.buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
  out.buf[0].fd = static_cast<int>(fi->fh);
  out.buf[0].pos = off;
  ssize_t n = fuse_buf_copy(&out, in, fuse_buf_copy_flags{});
  if (n < 0) fuse_reply_err(req, static_cast<int>(-n));
  else fuse_reply_write(req, static_cast<size_t>(n));
}

void op_release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  close(static_cast<int>(fi->fh));
  fuse_reply_err(req, 0);
}

void op_fsync(fuse_req_t req, fuse_ino_t, int datasync, fuse_file_info* fi) {
  int fd = static_cast<int>(fi->fh);
  reply_errno(req, datasync ? fdatasync(fd) : fsync(fd));
}

void op_fallocate(fuse_req_t req, fuse_ino_t, int mode, off_t off, off_t len, fuse_file_info* fi) {
  reply_errno(req, fallocate(static_cast<int>(fi->fh), mode, off, len));
}

void op_lseek(fuse_req_t req, fuse_ino_t, off_t off, int whence, fuse_file_info* fi) {
  off_t r = lseek(static_cast<int>(fi->fh), off, whence);
  if (r < 0) return reply_errno(req, -1);
  fuse_reply_lseek(req, r);
}

void op_copy_file_range(fuse_req_t req, fuse_ino_t, off_t off_in, fuse_file_info* fi_in, fuse_ino_t, off_t off_out,
                        fuse_file_info* fi_out, size_t len, int flags) {
  loff_t in = off_in, out = off_out;
  ssize_t n = copy_file_range(static_cast<int>(fi_in->fh), &in, static_cast<int>(fi_out->fh), &out, len,
                              static_cast<unsigned>(flags));
  if (n < 0) return reply_errno(req, -1);
  fuse_reply_write(req, static_cast<size_t>(n));
}

// ---------------------------------------------------------------- directories
struct Dir {
  DIR* dp = nullptr;
  off_t offset = 0;          // where the next readdir(3) continues
  dirent* pending = nullptr;  // read, but did not fit the last reply
};

Dir* dir_of(fuse_file_info* fi) { return reinterpret_cast<Dir*>(fi->fh); }

void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  int fd;
  {
    PATH_FD(f, ino);
    fd = openat(f.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return reply_errno(req, -1);
  }
  DIR* dp = fdopendir(fd);
  if (!dp) {
    int err = errno;
    close(fd);
    return (void)fuse_reply_err(req, err);
  }
  auto* d = new Dir{dp};
  fi->fh = reinterpret_cast<uint64_t>(d);
  fi->cache_readdir = 1;  // the kernel keeps the listing until the directory changes
  fi->keep_cache = 1;
  if (fuse_reply_open(req, fi) != 0) {
    closedir(dp);
    delete d;
  }
}

// The kernel serializes the READDIRs of one handle: no lock on Dir.
void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi, bool plus) {
  Dir* d = dir_of(fi);
  if (off != d->offset) {
    seekdir(d->dp, off);
    d->offset = off;
    d->pending = nullptr;
  }
  std::unique_ptr<char[]> buf(new char[size]);
  size_t used = 0;
  int err = 0;
  for (;;) {
    if (!d->pending) {
      errno = 0;
      d->pending = readdir(d->dp);
      if (!d->pending) {
        err = errno;
        break;
      }
    }
    dirent* de = d->pending;
    size_t n;
    if (plus) {
      fuse_entry_param e{};
      bool dot = is_dot(de->d_name);
      if (dot) {  // no reference taken: the kernel uses only the type and number
        e.attr.st_ino = de->d_ino;
        e.attr.st_mode = DTTOIF(de->d_type);
      } else if (int lerr = do_lookup(ino, de->d_name, &e)) {
        if (lerr == ENOENT) {  // gone since it was read
          d->offset = de->d_off;
          d->pending = nullptr;
          continue;
        }
        err = lerr;
        break;
      }
      n = fuse_add_direntry_plus(req, buf.get() + used, size - used, de->d_name, &e, de->d_off);
      if (n > size - used) {
        if (!dot) forget_one(e.ino, 1);
        break;
      }
    } else {
      struct stat st{};
      st.st_ino = de->d_ino;
      st.st_mode = DTTOIF(de->d_type);
      n = fuse_add_direntry(req, buf.get() + used, size - used, de->d_name, &st, de->d_off);
      if (n > size - used) break;
    }
    used += n;
    d->offset = de->d_off;
    d->pending = nullptr;
  }
  if (err && used == 0) fuse_reply_err(req, err);
  else fuse_reply_buf(req, buf.get(), used);
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  do_readdir(req, ino, size, off, fi, false);
}

void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  do_readdir(req, ino, size, off, fi, true);
}

void op_releasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  Dir* d = dir_of(fi);
  closedir(d->dp);
  delete d;
  fuse_reply_err(req, 0);
}

void op_fsyncdir(fuse_req_t req, fuse_ino_t, int datasync, fuse_file_info* fi) {
  int fd = dirfd(dir_of(fi)->dp);
  reply_errno(req, datasync ? fdatasync(fd) : fsync(fd));
}

fuse_lowlevel_ops make_ops() {
  fuse_lowlevel_ops o{};
  o.init = op_init;
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
  o.getxattr = op_getxattr;
  o.listxattr = op_listxattr;
  o.setxattr = op_setxattr;
  o.removexattr = op_removexattr;
  o.open = op_open;
  o.create = op_create;
  o.read = op_read;
  o.write_buf = op_write_buf;
  o.release = op_release;
  o.fsync = op_fsync;
  o.fallocate = op_fallocate;
  o.lseek = op_lseek;
  o.copy_file_range = op_copy_file_range;
  o.opendir = op_opendir;
  o.readdir = op_readdir;
  o.readdirplus = op_readdirplus;
  o.releasedir = op_releasedir;
  o.fsyncdir = op_fsyncdir;
  return o;
}

// ---------------------------------------------------------------- main
void usage(FILE* f) {
  std::fprintf(f,
               "usage: ptfs SOURCE MOUNTPOINT [options]\n"
               "  --threads N         most FUSE worker threads (default 16)\n"
               "  --no-writeback      without the kernel's writeback cache\n"
               "  --read-ahead-kb N   the mount's read-ahead after INIT (default 4096; 0 keeps the kernel's)\n"
               "  -f, --foreground    stay in the foreground (until unmounted)\n"
               "  -d, --debug         libfuse's request log (implies --foreground)\n");
}

bool parse_uint(const char* s, unsigned* v) {
  char* end;
  errno = 0;
  unsigned long x = std::strtoul(s, &end, 10);
  if (errno || end == s || *end || x > 1u << 20) return false;
  *v = static_cast<unsigned>(x);
  return true;
}

bool parse_args(int argc, char** argv) {
  std::vector<std::string> pos;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    bool has_value = i + 1 < argc;
    if (a == "--threads" && has_value) {
      if (!parse_uint(argv[++i], &opt.threads) || opt.threads == 0) return false;
    } else if (a == "--read-ahead-kb" && has_value) {
      if (!parse_uint(argv[++i], &opt.read_ahead_kb)) return false;
    } else if (a == "--no-writeback") {
      opt.writeback = false;
    } else if (a == "-f" || a == "--foreground") {
      opt.foreground = true;
    } else if (a == "-d" || a == "--debug") {
      opt.debug = opt.foreground = true;
    } else if (a == "-h" || a == "--help") {
      usage(stdout);
      std::exit(0);
    } else if (!a.empty() && a[0] == '-') {
      return false;
    } else {
      pos.push_back(a);
    }
  }
  if (pos.size() != 2) return false;
  opt.source = pos[0];
  opt.mountpoint = pos[1];
  return true;
}

// Every inode the kernel holds pins a descriptor (up to the budget): allow
// as many as the system does.
void raise_fd_limit() {
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (FILE* f = std::fopen("/proc/sys/fs/nr_open", "r")) {
    unsigned long v = 0;
    if (std::fscanf(f, "%lu", &v) == 1 && v > rl.rlim_max) rl.rlim_max = v;
    std::fclose(f);
  }
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

// The kernel cuts the mount's read-ahead to INIT's max_readahead when it
// takes the reply (at most the 128 KiB it offered), so a larger value is
// written after INIT is answered: INIT is served here, before the loop.
void serve_init_and_read_ahead(fuse_session* se) {
  fuse_buf buf{};
  int n;
  do n = fuse_session_receive_buf(se, &buf);
  while (n == -EINTR);
  if (n > 0) fuse_session_process_buf(se, &buf);
  std::free(buf.mem);
  if (n <= 0) return;
  struct statx sx;  // from the inode as it is: no request to the loop not yet running
  if (statx(AT_FDCWD, opt.mountpoint.c_str(), AT_STATX_DONT_SYNC, 0, &sx) != 0) return;
  char path[80];
  std::snprintf(path, sizeof path, "/sys/class/bdi/%u:%u/read_ahead_kb", sx.stx_dev_major, sx.stx_dev_minor);
  FILE* f = std::fopen(path, "w");
  if (!f || std::fprintf(f, "%u\n", opt.read_ahead_kb) < 0 || std::fclose(f) != 0)
    std::fprintf(stderr, "ptfs: cannot set %s: %s\n", path, std::strerror(errno));
}

std::string escape_opt(const std::string& s) {  // for -o: ',' and '\' escaped
  std::string r;
  for (char ch : s) {
    if (ch == ',' || ch == '\\') r += '\\';
    r += ch;
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  if (!parse_args(argc, argv)) {
    usage(stderr);
    return 2;
  }
  umask(0);
  raise_fd_limit();
  char* src = realpath(opt.source.c_str(), nullptr);
  char* mnt = realpath(opt.mountpoint.c_str(), nullptr);
  if (!src || !mnt) {
    std::fprintf(stderr, "ptfs: %s: %s\n", (!src ? opt.source : opt.mountpoint).c_str(), std::strerror(errno));
    return 1;
  }
  opt.source = src;
  opt.mountpoint = mnt;
  std::free(src);
  std::free(mnt);
  root.fd = open(opt.source.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  struct stat st;
  if (root.fd < 0 || stat_of(root.fd, &st) != 0) {
    std::fprintf(stderr, "ptfs: %s: %s\n", opt.source.c_str(), std::strerror(errno));
    return 1;
  }
  root.dev = st.st_dev;
  root.ino = st.st_ino;
  root.nlookup = 1;
  table.emplace(Key{root.dev, root.ino}, &root);
  // A quarter of the limit stays for open files, directories and libfuse;
  // handles are reopened with open_by_handle_at, which needs root.
  mount_fd = open(opt.source.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rlimit rl; mount_fd >= 0 && geteuid() == 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    fd_budget = static_cast<size_t>(rl.rlim_cur - rl.rlim_cur / 4);

  std::string o = "fsname=" + escape_opt(opt.source) + ",subtype=ptfs,default_permissions";
  if (geteuid() == 0) o += ",allow_other";
  std::vector<std::string> av = {"ptfs", "-o", o};
  if (opt.debug) av.push_back("-d");
  std::vector<char*> avp;
  for (auto& s : av) avp.push_back(s.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(avp.size()), avp.data());
  fuse_lowlevel_ops ops = make_ops();
  fuse_session* se = fuse_session_new(&args, &ops, sizeof ops, nullptr);
  fuse_opt_free_args(&args);
  if (!se) return 1;
  int rc = 1;
  if (fuse_set_signal_handlers(se) == 0) {
    if (fuse_session_mount(se, opt.mountpoint.c_str()) == 0) {
      fuse_daemonize(opt.foreground ? 1 : 0);
      if (opt.read_ahead_kb) serve_init_and_read_ahead(se);
      fuse_loop_config* lc = fuse_loop_cfg_create();
      fuse_loop_cfg_set_clone_fd(lc, 1);  // a /dev/fuse descriptor per worker
      fuse_loop_cfg_set_max_threads(lc, opt.threads);
      fuse_loop_cfg_set_idle_threads(lc, opt.threads > 1 ? opt.threads / 2 : 1);
      rc = fuse_session_loop_mt(se, lc) == 0 ? 0 : 1;
      fuse_loop_cfg_destroy(lc);
      fuse_session_unmount(se);
    }
    fuse_remove_signal_handlers(se);
  }
  fuse_session_destroy(se);
  return rc;
}
