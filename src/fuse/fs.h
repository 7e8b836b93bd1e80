// fuse/fs.h — the FUSE adapter: POSIX operations on the store's root/,
// served through the libfuse3 low-level API.
//
// Contract: every operation has the semantics of the backing filesystem
// (XFS, btrfs, ext4, tmpfs) applied to <store>/root: the adapter adds no
// caching of its own and no state beyond the inode table and open handles.
// Permission checks are the kernel's (default_permissions); objects are
// created with the caller's credentials (creds.h). Each callback computes a
// Result and hands it to reply() (reply.h), the one place replies are made.
//
// Isolation from compounds (DESIGN.md §5 invariant 7): every operation that
// reads or changes backing inodes first takes their locks from the shared
// txn::LockManager, all in one fuse_enter() call (so in the global order),
// and holds them for its syscalls: Read on inodes it reads or changes in
// place, NameWrite on directories whose names it changes. A lookup (or
// readdirplus entry) also locks the child whose attributes it returns while
// a compound runs. The guard is released *before* the reply goes to the
// kernel (under()); the one exception is a spliced READ reply, which reads
// the backing file itself while it is being sent. No operation calls the
// kernel's notify API. While no compound runs the locks cost two atomic
// operations (txn/locks.h, fast path).
//
// Thread-safety and locks: callbacks run on many libfuse workers at once.
// Shared state is the InodeTable (its own leaf mutex, taken for one hash
// lookup by every node id -> Inode resolution, get()) and per-handle state
// (FileHandle, DirHandle), which the kernel never uses from two requests at
// once for directories; FileHandle is immutable after open. Lock order:
// LockManager locks (FuseGuard) -> DirHandle::mu -> InodeTable::mu_ and
// LockManager shard mutexes (leaves).
#pragma once

#include <fuse_lowlevel.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fuse/inode_table.h"
#include "fuse/kernel_ctimes.h"
#include "fuse/reply.h"
#include "store/store.h"
#include "sync/evict.h"
#include "sync/fetch.h"
#include "sync/tracker.h"
#include "journal/log.h"
#include "txn/locks.h"
#include "util/durable.h"
#include "util/mutex.h"

namespace tcfs::fusefs {

struct Options {
  // Entry, attribute and negative-entry timeouts (seconds) handed to the
  // kernel. The daemon is the only writer of <store>/root and tells the
  // kernel whenever it changes the tree outside a FUSE request, so long
  // timeouts are correct and save one round trip per stat/lookup.
  double entry_timeout = 86400.0;
  double attr_timeout = 86400.0;
  double negative_timeout = 86400.0;
  // Entry timeout of a hard-linked regular file under the writeback cache
  // (Fs::make_entry).
  static constexpr double kLinkEntryTimeout = 1.0;
  // The kernel's writeback cache: writes land in the page cache and reach
  // the daemon in large WRITEs at writeback, fsync or close (what makes
  // writing through FUSE cheap). Compounds stay exact under it (txn.h
  // invariant 13). -o writeback=off turns it off.
  bool writeback_cache = true;
  // Stable writes go to the endurant log (Hooks::log, fs_journal.cpp);
  // backing files are then opened without O_SYNC/O_DSYNC (the kernel
  // sends an fsync after each such write, which the log makes durable).
  bool journal = false;
  // Kernel read-ahead for the mount. FUSE mounts start at 128 KiB, which
  // splits a sequential read into 128 KiB requests, one round trip each;
  // 4 MiB keeps several 1 MiB reads in flight, as a disk's own default does.
  unsigned read_ahead_kb = 4096;
  // FUSE workers (fuse/session.cpp says why these defaults): -o threads=N,
  // -o clone_fd=on|off.
  unsigned max_threads = 16;
  unsigned max_idle_threads = 8;
  bool clone_fd = true;
};

struct FileHandle {
  Inode* inode = nullptr;  // kept alive by the kernel while the file is open
  int fd = -1;
  bool direct = false;  // the caller asked for O_DIRECT
  ~FileHandle();
};

struct DirHandle {
  Mutex mu;  // protects everything below but fd
  int fd = -1;  // set by opendir, then read-only
  off_t pos TCFS_GUARDED_BY(mu) = 0;  // d_off of the last entry handed to the kernel (0 = start)
  std::unique_ptr<char[]> buf TCFS_GUARDED_BY(mu);  // getdents64 buffer (kDentsBuf), made at the first read
  size_t buf_off TCFS_GUARDED_BY(mu) = 0, buf_len TCFS_GUARDED_BY(mu) = 0;
  ~DirHandle();
};

// What the daemon hooks into the FUSE layer.
struct Hooks {
  txn::LockManager* locks = nullptr;  // shared with compounds (serve(): null = a private one)
  // Called before fsync/fsyncdir report success: makes committed sync-off
  // compounds durable, so no recovery can roll back what fsync promised.
  std::function<Status()> before_fsync_ack;
  // Asked before every change (with its mark): an error refuses the change
  // (a fenced store: EROFS naming the new writer, sync.h 10). Null: none.
  std::function<Status()> write_gate;
  // Change marks for the sync layer (sync/sync.h 1); null: no blobbers.
  // Marks are made while the operation still holds its guard.
  sync::Tracker* tracker = nullptr;
  // Brings stubs' content back from the blobbers (sync/fetch.h); null: no
  // blobbers. Reads wait for their range, writers for the whole file.
  sync::Fetcher* fetcher = nullptr;
  // Keeps the store under its cache size (sync/evict.h); null: no cap.
  // Told of every open (LRU) and asks the inode table what is open.
  sync::Evictor* evictor = nullptr;
  // The endurant log (journal/log.h); null: fsync is the backing file's own.
  journal::Log* log = nullptr;
};

class Fs {
 public:
  Fs(store::Store& store, std::unique_ptr<InodeTable> table, Options opts, Hooks hooks)
      : store_(store), table_(std::move(table)), opts_(opts), hooks_(std::move(hooks)) {}

  static const fuse_lowlevel_ops& ops();
  InodeTable& table() { return *table_; }
  const Options& options() const { return opts_; }
  store::Store& store() { return store_; }
  txn::LockManager& locks() { return *hooks_.locks; }
  // What fsync/fsyncdir do after their own sync succeeded: the hook, then
  // util/durable.h's check that the store's filesystem did not shut down
  // while that sync ran (XFS can then report success for nothing).
  Status before_fsync_ack() {
    TCFS_TRY(hooks_.before_fsync_ack ? hooks_.before_fsync_ack() : Status());
    return still_up(store_.root_fd(), ".", "fsync");
  }
  // The sync layer's name of an Inode's backing object: number and handle,
  // never the number alone (sync/sync.h 4a).
  static sync::ObjRef obj(const Inode& in) { return {in.src_ino, in.handle}; }
  // Sync marks (no-ops without blobbers); call them under the op's guard.
  // Each refuses (the write gate: EROFS on a fenced store, sync.h 10)
  // before the change is made; the caller returns that error.
  // mark_data and mark_attr also tell the log that the change is one it
  // does not carry (fs_journal.cpp); a WRITE request uses mark_write.
  [[nodiscard]] Status mark_data(fuse_ino_t ino, uint64_t bytes = 0) {
    TCFS_TRY(mark_write(ino, bytes));
    note_other(ino);
    return {};
  }
  [[nodiscard]] Status mark_write(fuse_ino_t ino, uint64_t bytes) {
    TCFS_TRY(write_gate());
    if (hooks_.tracker) hooks_.tracker->data(obj(table_->get(ino)), bytes);
    return {};
  }
  // logged: the change is one the endurant log's records carry (the mtime,
  // fs_journal.cpp 1), so it keeps the file's fsync on the log.
  [[nodiscard]] Status mark_attr(fuse_ino_t ino, bool logged = false) {
    TCFS_TRY(write_gate());
    if (hooks_.tracker) hooks_.tracker->attr(obj(table_->get(ino)));
    if (logged) note_times(ino);
    else note_other(ino);
    return {};
  }
  // The endurant log (fs_journal.cpp): a WRITE of [off, off+n) done; any
  // other change of the file's content or attributes; an fsync.
  void note_write(fuse_ino_t ino, uint64_t off, uint64_t n);
  void note_times(fuse_ino_t ino);
  void note_other(fuse_ino_t ino);
  Status fsync_file(fuse_ino_t ino, int fd, bool datasync);
  Status write_gate() { return hooks_.write_gate ? hooks_.write_gate() : Status(); }
  // Stub content (a no-op for ordinary files): the range [off, off+len)
  // local before a read, len 0 starts a fetch, ensure_all before a change.
  Status ensure(fuse_ino_t ino, uint64_t off, uint64_t len) {
    return hooks_.fetcher ? hooks_.fetcher->ensure(obj(table_->get(ino)), off, len) : Status();
  }
  Status ensure_all(fuse_ino_t ino) { return ensure(ino, 0, ~uint64_t{0}); }
  // Whether [off, off+len) of ino is local now; asked under a guard after
  // ensure(): false when an eviction came in between (sync/evict.h 3).
  bool is_local(fuse_ino_t ino, uint64_t off, uint64_t len) {
    return !hooks_.fetcher || hooks_.fetcher->is_local(obj(table_->get(ino)), off, len);
  }
  // A stub's bytes are holes locally, but it is not sparse: report the
  // blocks it takes once fetched, so tools that trust st_blocks (cp, tar
  // --sparse, du) treat it as the whole file it is.
  // Every attribute reply's stat passes here: a stub's blocks, and the
  // kernel's own ctime of a file it last set (kernel_ctimes.h).
  void attr_out(const Inode& in, struct stat& st) const {
    if (hooks_.fetcher && S_ISREG(st.st_mode) && hooks_.fetcher->is_stub(obj(in)))
      st.st_blocks = std::max<blkcnt_t>(st.st_blocks, (st.st_size + 511) / 512);
    if (opts_.writeback_cache) ctimes_.apply(st);
  }
  // kernel_ctimes.h 2: a SETATTR carried the kernel's ctime; st is the
  // backing object's stat after it, and gets the kernel's ctime.
  void kernel_ctime(struct stat& st, const struct timespec& kernel) {
    ctimes_.record(st, kernel);
    st.st_ctim = kernel;
  }
  // kernel_ctimes.h 2a: a writepage WRITE moved the backing ctime.
  void kernel_ctime_kept(const struct timespec& before, const struct stat& after) { ctimes_.carry(before, after); }
  // An open of the backing inode (least recently used order for eviction).
  void opened(const Inode& in) {
    if (hooks_.evictor) hooks_.evictor->touch(obj(in));
  }
  Status ensure_backing(const sync::ObjRef& o) {
    return hooks_.fetcher ? hooks_.fetcher->ensure_all(o) : Status();
  }
  [[nodiscard]] Status mark_name(fuse_ino_t parent, const char* name) {
    TCFS_TRY(write_gate());
    if (hooks_.tracker) hooks_.tracker->name(obj(table_->get(parent)), name);
    return {};
  }

  // The live session, for notifications from inside a handler (null
  // before the mount and in unit tests).
  void set_session(fuse_session* se) { se_ = se; }
  // Drops the kernel's cached attributes of ino (never its pages: safe in
  // a handler, the kernel takes no inode or page lock for it).
  void inval_attrs(fuse_ino_t ino) {
    if (se_) fuse_lowlevel_notify_inval_inode(se_, ino, -1, 0);
  }
  // Has the kernel write ino's dirty pages back (writeback cache) and drop
  // its pages. From a handler only while it holds no lock of ours: the
  // WRITEs it causes are served by other workers meanwhile, and take the
  // inode's lock.
  void launder(fuse_ino_t ino) {
    if (se_ && opts_.writeback_cache) fuse_lowlevel_notify_inval_inode(se_, ino, 0, 0);
  }

  // Entry for an object just looked up or created (one kernel reference).
  Result<EntryReply> lookup_entry(Inode& parent, const char* name);
  EntryReply make_entry(Inode& in, const struct stat& st) const;

 private:
  store::Store& store_;
  std::unique_ptr<InodeTable> table_;
  Options opts_;
  Hooks hooks_;
  fuse_session* se_ = nullptr;
  mutable KernelCtimes ctimes_;  // its own leaf lock
};

inline Fs& fs_of(fuse_req_t req) { return *static_cast<Fs*>(fuse_req_userdata(req)); }

// Runs fn(fd) with node ino's O_PATH fd pinned open; fn returns a Status
// or a Result, and so does with_fd (the pin's error if it fails).
template <typename F>
auto with_fd(Fs& fs, fuse_ino_t ino, F&& fn) -> decltype(fn(0)) {
  auto p = fs.table().pin(fs.table().get(ino));
  if (!p) return p.status();
  return fn(p->fd());
}
// Locks a FUSE operation holds for its syscalls (txn/locks.h): Read on the
// inodes it reads or changes in place, NameWrite on directories whose names
// it changes. Free while no compound runs.
inline txn::LockKey key_of(const Inode& in) { return {in.src_dev, in.src_ino}; }
inline txn::FuseGuard lock_read(Fs& fs, fuse_ino_t ino) {
  return fs.locks().fuse_enter({{key_of(fs.table().get(ino)), txn::LockMode::Read}});
}
inline txn::FuseGuard lock_names(Fs& fs, fuse_ino_t dir) {
  return fs.locks().fuse_enter({{key_of(fs.table().get(dir)), txn::LockMode::NameWrite}});
}
inline txn::FuseGuard lock_two(Fs& fs, fuse_ino_t a, txn::LockMode ma, fuse_ino_t b, txn::LockMode mb) {
  return fs.locks().fuse_enter({{key_of(fs.table().get(a)), ma}, {key_of(fs.table().get(b)), mb}});
}

// The guard lock() makes, taken once [off, off+len) of ino is local: a
// stub's bytes are fetched first (without a guard held, so a slow fetch
// stalls no compound or sync round), then checked again under the guard,
// and fetched again if an eviction came in between (sync/evict.h 3).
template <typename L>
Result<txn::FuseGuard> guard_local(Fs& fs, fuse_ino_t ino, uint64_t off, uint64_t len, L&& lock) {
  for (;;) {
    TCFS_TRY(fs.ensure(ino, off, len));
    txn::FuseGuard g = lock();
    if (fs.is_local(ino, off, len)) return g;
  }
}

// Runs fn() holding g, and releases g before fn's result is returned: a
// reply made from the result goes to the kernel with no lock held.
//   reply(req, ctx, under(lock_read(fs, ino), [&] { return ...; }));
template <typename F>
auto under(txn::FuseGuard&& g, F&& fn) -> decltype(fn()) {
  txn::FuseGuard held(std::move(g));  // destroyed once the result is built
  return fn();
}

// "/proc/self/fd/N": a path that reaches an O_PATH fd's object for the
// syscalls that take no fd.
std::string proc_path(int fd);

// O_TMPFILE in directory `parent` (fs_tmpfile.cpp): an unnamed regular
// file made as the caller and opened with `flags` (the kernel's, with
// O_TMPFILE); its entry (one kernel reference) and open file.
// drop_unnamed() takes both back when the reply could not be delivered.
struct CallerIds;
Result<CreateReply> create_unnamed(Fs& fs, const CallerIds& who, fuse_ino_t parent, mode_t mode, int flags);
void drop_unnamed(Fs& fs, const CreateReply& r);
// Reads /dev/fuse through a custom io that serves FUSE_TMPFILE itself
// (libfuse 3.14 does not know it); call after fuse_session_mount().
Status serve_tmpfile_requests(fuse_session* se);

// Op tables filled by each translation unit.
void fill_node_ops(fuse_lowlevel_ops& ops);
void fill_file_ops(fuse_lowlevel_ops& ops);
void fill_dir_ops(fuse_lowlevel_ops& ops);
void fill_flag_ops(fuse_lowlevel_ops& ops);  // fs_flags.cpp: inode flags (ioctl)

}  // namespace tcfs::fusefs
