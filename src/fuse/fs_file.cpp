// fuse/fs_file.cpp — open files: create, open, read, write, release, fsync,
// fallocate, copy_file_range, lseek.
//
// Data moves without a copy through the daemon where libfuse allows: reads
// are spliced from the backing fd to /dev/fuse; writes arrive in memory
// (requests are read, not spliced: fs_tmpfile.cpp) and are written from it.
// O_DIRECT opens are passed through to the backing file (the kernel keeps
// its page cache coherent around them, see fill_open_reply); their data
// goes through a page-aligned bounce buffer because FUSE request payloads
// are not aligned.
//
// O_TMPFILE: create_unnamed() makes the unnamed file for fs_tmpfile.cpp.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>

#include "fuse/creds.h"
#include "fuse/fs.h"
#include "util/handle.h"

namespace tcfs::fusefs {

FileHandle::~FileHandle() {
  if (fd >= 0) close(fd);
}

namespace {

constexpr size_t kAlign = 4096;

FileHandle* fh_of(fuse_file_info* fi) { return reinterpret_cast<FileHandle*>(fi->fh); }
Status errno_status() { return Status::error(errno); }

// Flags for the backing open. O_APPEND is dropped: the kernel computes the
// append offset itself and splice(2) refuses O_APPEND files. O_NOFOLLOW is
// dropped because the kernel has already resolved the name and a
// /proc/self/fd path is itself a (magic) link. O_CREAT/O_EXCL belong to
// create only.
// With the writeback cache the kernel also reads through write-only
// handles (to fill partial pages), so those are opened read-write; the
// kernel has already checked the caller's access.
int backing_flags(int flags, bool writeback, bool journal) {
  flags = (flags & ~(O_APPEND | O_NOFOLLOW | O_CREAT | O_EXCL | O_NOCTTY)) | O_CLOEXEC;
  if (journal) flags &= ~(O_SYNC | O_DSYNC);  // fs.h Options::journal
  // fs_journal.cpp 2 reads a handle's written ranges back: read-write too.
  if ((writeback || journal) && (flags & O_ACCMODE) == O_WRONLY) flags = (flags & ~O_ACCMODE) | O_RDWR;
  return flags;
}

void fill_open_reply(Fs& fs, fuse_file_info* fi, std::unique_ptr<FileHandle> fh) {
  fs.table().opened(*fh->inode);
  fs.opened(*fh->inode);
  // O_DIRECT takes the kernel's own direct I/O path (not FOPEN_DIRECT_IO):
  // it writes back and invalidates the page cache around each direct
  // request, waiting for reads in flight, so buffered readers and maps of
  // the file see every direct write as on a local filesystem, and an
  // O_DIRECT descriptor can be mapped shared. The daemon is the only writer
  // of the store, so cached pages stay valid across opens.
  fi->direct_io = 0;
  fi->keep_cache = 1;
  fi->noflush = 1;  // nothing to do at close: writes are already in the store
  fi->fh = reinterpret_cast<uint64_t>(fh.release());
}

std::unique_ptr<FileHandle> new_handle(Inode& in, int fd, int flags) {
  auto fh = std::make_unique<FileHandle>();
  fh->inode = &in;
  fh->fd = fd;
  fh->direct = (flags & O_DIRECT) != 0;
  return fh;
}

// txn.h invariant 13: an open of a node that a compound retired (it
// waited for the compound's locks, or its path walk met a dentry the
// compound has not dropped yet). The kernel keeps this node's size: if the
// compound kept the size, the open goes on with the kernel's pages of the
// node dropped (no keep_cache), so its reads see the compound's data. If
// not, ESTALE: the kernel looks the path up again (LOOKUP_REVAL) and opens
// the new node, which has the new size.
Status check_retired(Fs& fs, Inode& in, int fd, bool* keep) {
  uint64_t size = 0;
  if (!fs.table().retired(in, &size)) return {};
  struct stat st;
  if (fstat(fd, &st) != 0) return errno_status();
  if (static_cast<uint64_t>(st.st_size) != size) return Status::error(ESTALE);
  *keep = false;
  return {};
}

Result<OpenReply> do_open(Fs& fs, fuse_ino_t ino, fuse_file_info* fi) {
  int flags = backing_flags(fi->flags, fs.options().writeback_cache, fs.options().journal);
  bool keep = true;
  auto r = with_fd(fs, ino, [&](int ifd) -> Result<int> {
    TCFS_TRY(check_retired(fs, fs.table().get(ino), ifd, &keep));  // before O_TRUNC acts
    int fd = open(proc_path(ifd).c_str(), flags);
    // An append-only file (chattr +a) opens for writing only with O_APPEND
    // (fs_flags.cpp 2): then keep it, its writes land at the end whatever
    // offset they carry, where the kernel put them anyway.
    if (fd < 0 && errno == EPERM && (fi->flags & O_APPEND) && (flags & O_ACCMODE) != O_RDONLY)
      fd = open(proc_path(ifd).c_str(), flags | O_APPEND);
    if (fd < 0) return errno_status();
    return fd;
  });
  if (!r) return r.status();
  fill_open_reply(fs, fi, new_handle(fs.table().get(ino), r.value(), fi->flags));
  fi->keep_cache = keep;
  return OpenReply{*fi};
}

// A writer waits for a stub's whole content (under the guard it is still
// local: sync/evict.h 3); a reader only starts its fetch.
void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Fs& fs = fs_of(req);
  bool writes = (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC);
  auto g = guard_local(fs, ino, 0, writes ? ~uint64_t{0} : 0, [&] { return lock_read(fs, ino); });
  if (!g) return reply(req, {"open", ino}, g.status());
  reply(req, {"open", ino}, under(std::move(g.value()), [&]() -> Result<OpenReply> {
          if (fi->flags & O_TRUNC) TCFS_TRY(fs.mark_data(ino));
          return do_open(fs, ino, fi);
        }));
}

Result<CreateReply> do_create(fuse_req_t req, Fs& fs, fuse_ino_t parent, const char* name, mode_t mode,
                              fuse_file_info* fi) {
  int fd = -1;
  int flags = backing_flags(fi->flags, fs.options().writeback_cache, fs.options().journal) | O_CREAT | (fi->flags & O_EXCL);
  Status st = with_fd(fs, parent, [&](int dfd) {
    struct stat sb;  // an existing stub is opened for writing: its content first
    if (!(fi->flags & O_EXCL) && fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode))
      TCFS_TRY(fs.ensure_backing({sb.st_ino, make_handle(dfd, name)}));
    return Status::code(with_caller_creds(req, mode, [&] {
      fd = openat(dfd, name, flags, mode);
      return fd < 0 ? errno : 0;
    }));
  });
  if (!st) return st;
  auto e = fs.lookup_entry(fs.table().get(parent), name);
  if (!e) {
    close(fd);
    return e.status();
  }
  fill_open_reply(fs, fi, new_handle(fs.table().get(e.value().e.ino), fd, fi->flags));
  return CreateReply{e.value().e, *fi};
}

// The parent's NameWrite lock also covers the object an existing name opens
// (O_CREAT without O_EXCL): a compound changing it holds Path on the parent.
void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  Fs& fs = fs_of(req);
  reply(req, {"create", parent, name},
        under(lock_names(fs, parent), [&]() -> Result<CreateReply> {
          TCFS_TRY(fs.mark_name(parent, name));
          auto r = do_create(req, fs, parent, name, mode, fi);
          // The gate passed just above: the file exists and is open now, so
          // its mark is not refused halfway (the result is ignored).
          if (r && (fi->flags & O_TRUNC)) (void)fs.mark_data(r.value().e.ino);
          return r;
        }));
}

struct AlignedBuf {
  void* p = nullptr;
  explicit AlignedBuf(size_t n) {
    if (posix_memalign(&p, kAlign, n ? n : kAlign) != 0) p = nullptr;
  }
  ~AlignedBuf() { free(p); }
};

// Without a compound running (fast path) the reply is spliced straight from
// the backing file: that splice *is* the read, so the guard (a count that
// makes a starting compound wait, not a lock) is kept until it is sent; the
// compound waiting for it holds no lock yet, so nothing can deadlock. With
// O_DIRECT, or while a compound runs, the data is read into memory under
// the lock and sent after it is released.
void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  FileHandle* fh = fh_of(fi);
  auto gl = guard_local(fs_of(req), ino, static_cast<uint64_t>(off), size, [&] { return lock_read(fs_of(req), ino); });
  if (!gl) return reply(req, {"read", ino}, gl.status());
  txn::FuseGuard g = std::move(gl.value());
  if (!fh->direct && !g.locked()) {
    fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
    buf.buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
    buf.buf[0].fd = fh->fd;
    buf.buf[0].pos = off;
    return reply_data(req, {"read", ino}, &buf);
  }
  AlignedBuf ab(size);
  if (!ab.p) return reply(req, {"read", ino}, Status::error(ENOMEM));
  ssize_t n = pread(fh->fd, ab.p, size, off);
  int err = errno;
  g.release();
  if (n < 0) return reply(req, {"read", ino}, Status::error(err));
  fuse_bufvec buf = FUSE_BUFVEC_INIT(static_cast<size_t>(n));
  buf.buf[0].mem = ab.p;
  reply_data(req, {"read", ino}, &buf);
}

Result<WriteReply> write_direct(FileHandle* fh, fuse_bufvec* in_buf, off_t off) {
  size_t size = fuse_buf_size(in_buf);
  AlignedBuf ab(size);
  if (!ab.p) return Status::error(ENOMEM);
  fuse_bufvec mem = FUSE_BUFVEC_INIT(size);
  mem.buf[0].mem = ab.p;
  ssize_t got = fuse_buf_copy(&mem, in_buf, FUSE_BUF_NO_SPLICE);
  if (got < 0) return Status::error(static_cast<int>(-got));
  ssize_t n = pwrite(fh->fd, ab.p, static_cast<size_t>(got), off);
  if (n < 0) return errno_status();
  return WriteReply{static_cast<size_t>(n)};
}

Result<WriteReply> write_buffered(FileHandle* fh, fuse_bufvec* in_buf, off_t off) {
  fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in_buf));
  out.buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
  out.buf[0].fd = fh->fd;
  out.buf[0].pos = off;
  ssize_t n = fuse_buf_copy(&out, in_buf, static_cast<fuse_buf_copy_flags>(0));
  if (n < 0) return Status::error(static_cast<int>(-n));
  return WriteReply{static_cast<size_t>(n)};
}

// Under the writeback cache the kernel owns a file's times: it sends them
// with SETATTR when it changes them (at close, fsync, syncfs), and keeps
// showing its own. A page it writes back later must not move the backing
// file's mtime (the pwrite would), or the store, and so the blobbers and a
// restore, would hold another mtime than the one the mount shows; nor the
// ctime the mount shows once the kernel has dropped its inode
// (kernel_ctimes.h 2a).
struct KeepTimes {
  int fd = -1;
  struct timespec mtime{}, ctime{};
  KeepTimes(int f, bool on) {
    struct stat st;
    if (on && fstat(f, &st) == 0) fd = f, mtime = st.st_mtim, ctime = st.st_ctim;
  }
  void restore(Fs& fs) const {
    const struct timespec tv[2] = {{0, UTIME_OMIT}, mtime};
    struct stat st;
    if (fd >= 0 && futimens(fd, tv) == 0 && fstat(fd, &st) == 0) fs.kernel_ctime_kept(ctime, st);
  }
};

void op_write_buf(fuse_req_t req, fuse_ino_t ino, fuse_bufvec* in_buf, off_t off, fuse_file_info* fi) {
  FileHandle* fh = fh_of(fi);
  reply(req, {"write", ino}, under(lock_read(fs_of(req), ino), [&]() -> Result<WriteReply> {
          TCFS_TRY(fs_of(req).mark_write(ino, fuse_buf_size(in_buf)));
          KeepTimes keep(fh->fd, fi->writepage && fs_of(req).options().writeback_cache);
          auto w = fh->direct ? write_direct(fh, in_buf, off) : write_buffered(fh, in_buf, off);
          if (w) keep.restore(fs_of(req));
          if (w) fs_of(req).note_write(ino, static_cast<uint64_t>(off), w->count);
          return w;
        }));
}

void op_release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  FileHandle* fh = fh_of(fi);
  fs_of(req).table().released(*fh->inode);
  delete fh;
  fuse_reply_err(req, 0);
}

// The inode lock covers the sync itself; making committed sync-off
// compounds durable needs none (and takes the txn layer's own mutexes).
void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
  int fd = fh_of(fi)->fd;
  Status st = under(lock_read(fs_of(req), ino), [&] { return fs_of(req).fsync_file(ino, fd, datasync != 0); });
  if (!st) return reply(req, {"fsync", ino}, st);
  reply(req, {"fsync", ino}, fs_of(req).before_fsync_ack());
}

void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, fuse_file_info* fi) {
  reply(req, {"fallocate", ino}, under(lock_read(fs_of(req), ino), [&] {
          TCFS_TRY(fs_of(req).mark_data(ino));
          TCFS_TRY(fs_of(req).ensure_all(ino));
          return fallocate(fh_of(fi)->fd, mode, off, len) == 0 ? Status() : errno_status();
        }));
}

void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, fuse_file_info* fi_in, fuse_ino_t ino_out,
                        off_t off_out, fuse_file_info* fi_out, size_t len, int flags) {
  auto g = lock_two(fs_of(req), ino_in, txn::LockMode::Read, ino_out, txn::LockMode::Read);
  reply(req, {"copy_file_range", ino_in}, under(std::move(g), [&]() -> Result<WriteReply> {
          TCFS_TRY(fs_of(req).mark_data(ino_out));
          TCFS_TRY(fs_of(req).ensure(ino_in, static_cast<uint64_t>(off_in), len));
          TCFS_TRY(fs_of(req).ensure_all(ino_out));
          // Server side: on XFS/btrfs the backing copy_file_range shares extents.
          loff_t in = off_in, out = off_out;
          ssize_t n =
              copy_file_range(fh_of(fi_in)->fd, &in, fh_of(fi_out)->fd, &out, len, static_cast<unsigned>(flags));
          if (n < 0) return errno_status();
          return WriteReply{static_cast<size_t>(n)};
        }));
}

void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, fuse_file_info* fi) {
  // With the writeback cache the newest data may still be in the kernel's
  // dirty pages, where the store cannot see it: a hole answered from the
  // backing file alone could hide written data (from cp, which skips
  // holes). So the pages are written back first (before any lock: the
  // WRITEs take the inode's lock).
  bool holes = (whence == SEEK_DATA || whence == SEEK_HOLE) && off >= 0;
  if (holes) fs_of(req).launder(ino);
  // A stub's local bytes are holes: SEEK_DATA/SEEK_HOLE answer for its
  // content, so the rest of it is fetched first.
  auto g = guard_local(fs_of(req), ino, holes ? static_cast<uint64_t>(off) : 0, holes ? ~uint64_t{0} : 0,
                       [&] { return lock_read(fs_of(req), ino); });
  if (!g) return reply(req, {"lseek", ino}, g.status());
  reply(req, {"lseek", ino}, under(std::move(g.value()), [&]() -> Result<LseekReply> {
          off_t r = lseek(fh_of(fi)->fd, off, whence);
          if (r < 0) return errno_status();
          return LseekReply{r};
        }));
}

}  // namespace

Result<CreateReply> create_unnamed(Fs& fs, const CallerIds& who, fuse_ino_t parent, mode_t mode, int flags) {
  // O_TMPFILE includes O_DIRECTORY: strip both, then ask for them again.
  int bflags = backing_flags(flags & ~O_TMPFILE, fs.options().writeback_cache, fs.options().journal) | O_TMPFILE | (flags & O_EXCL);
  int fd = -1;
  Status st = with_fd(fs, parent, [&](int dfd) {
    return Status::code(with_caller_creds(who, mode, [&] {
      fd = openat(dfd, ".", bflags, mode & 07777);
      return fd < 0 ? errno : 0;
    }));
  });
  if (!st) return st;
  struct stat sb;
  auto in = fstat(fd, &sb) == 0 ? fs.table().adopt_unnamed(fd) : Result<Inode*>(errno_status());
  if (!in) {
    close(fd);
    return in.status();
  }
  fuse_file_info fi{};
  fi.flags = flags;
  CreateReply r{fs.make_entry(*in.value(), sb).e, fi};
  fill_open_reply(fs, &r.fi, new_handle(*in.value(), fd, flags));
  return r;
}

void drop_unnamed(Fs& fs, const CreateReply& r) {
  FileHandle* fh = reinterpret_cast<FileHandle*>(r.fi.fh);
  fs.table().released(*fh->inode);
  delete fh;
  fs.table().forget(r.e.ino, 1);
}

void fill_file_ops(fuse_lowlevel_ops& o) {
  o.open = op_open;
  o.create = op_create;
  o.read = op_read;
  o.write_buf = op_write_buf;
  o.release = op_release;
  o.fsync = op_fsync;
  o.fallocate = op_fallocate;
  o.copy_file_range = op_copy_file_range;
  o.lseek = op_lseek;
}

}  // namespace tcfs::fusefs
