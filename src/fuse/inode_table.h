// fuse/inode_table.h — the FUSE inode table: kernel node ids <-> backing
// objects in <store>/root.
//
// Contract:
//  * Each Inode names one backing object by its (st_dev, st_ino) identity
//    and by a kernel file handle (name_to_handle_at), so renames and
//    unlinks behind a name never make it point at another object. Two names
//    of one object (hard links) share one Inode. An inode number reused by
//    another object (of any type: the old one has no links left, or its
//    handle differs) gets a new Inode; the old one is detached.
//  * The handle (which carries the inode's generation) is part of the
//    object's identity wherever it outlives the Inode: the sync layer's
//    marks, stubs and last opens take (src_ino, handle) (sync/sync.h 4a;
//    the root's handle is set too), and in_use() asks for an object, not a
//    number. find_id() alone goes by number: it only serves invalidations,
//    and invalidating a new object that took a gone one's number is
//    harmless (its cache is dropped once more, never kept stale).
//  * An Inode's O_PATH fd is a cache: opened on first use (pin()), closed
//    again, least recently used first, when more than `fd_budget` inode fds
//    are open, so the number of objects the kernel may remember is not
//    bounded by RLIMIT_NOFILE. Pinned inodes, inodes with open files and
//    objects whose filesystem gives no handles keep their fd.
//  * Node ids (fuse/export.h): an object's id is its backing inode number
//    and generation, gen << 32 | ino, with the root's swapped with 1
//    (FUSE_ROOT_ID), when the filesystem's handle layout is known and the
//    number fits; otherwise a session id. An id names one object only: a
//    new object that reused a number has another generation, so another
//    id, and the kernel's references to the old one (nlookup, FORGET) stay
//    with the old Inode. `generation` in entry replies is the backing one
//    (0 for the root, as the kernel wants; the session epoch for session
//    ids). The root is never forgotten. The kernel holds `nlookup`
//    references; an Inode is destroyed when forget() drops them to zero.
//    A node id is never used by the kernel after that except in
//    LOOKUP(id, "."), which resolve() answers by decoding the id, and
//    never while one of its requests is in flight, so a pinned Inode is
//    never destroyed.
//  * Export security rule: resolve() reaches only objects inside the
//    store's root/. The handle it opens is rebuilt from (ino, gen), never
//    taken from the request, and opened on the store's filesystem; then
//      - a directory must reach root/ by walking "..", at most kMaxDepth
//        steps (otherwise: outside root/, e.g. txn/ or meta/);
//      - a non-directory must have links (nlink > 0) and must not be any
//        object found under the store directory outside root/ (meta/,
//        txn/, journal/, sync/, reserve, lock, ...: scanned at each such
//        resolve, at most kMaxScan entries, refused if there are more).
//    Everything refused gives ESTALE, like a deleted object. Limit: a
//    non-directory has no path to check, so one that lies on the same
//    filesystem outside the store directory altogether (the store on a
//    filesystem shared with other data) is not refused by this rule; the
//    kernel's own permission checks still apply to it. Export a store that
//    has its filesystem to itself (tcfs(8), NFS EXPORT).
//    parent() (LOOKUP(id, "..")) of the root is the root: never the store.
//
// Lock order: InodeTable::mu_ is a leaf lock: nothing else is acquired
// while it is held. mu_ protects by_id_, map_, detached_, lru_, open_fds_,
// next_seq_ and every Inode's fd, nlookup, pins and opens. get() takes it
// for one hash lookup (every request resolves its node id so).
//
// Thread-safety: all members are safe to call from any FUSE worker.
#pragma once

#include <fuse_lowlevel.h>
#include <sys/stat.h>

#include <boost/intrusive/list.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <atomic>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "fuse/export.h"
#include "tcfs/status.h"
#include "util/mutex.h"

namespace tcfs::fusefs {

struct Inode : boost::intrusive::list_base_hook<> {  // hook: InodeTable::lru_
  dev_t src_dev = 0;
  ino_t src_ino = 0;
  mode_t type = 0;     // S_IFMT bits, immutable (an object never changes type)
  std::string handle;  // struct file_handle bytes; empty: no handles, fd kept
  fuse_ino_t id = 0;     // node id, immutable (fuse/export.h)
  uint32_t gen = 0;      // generation in entry replies, immutable
  // Guarded by InodeTable::mu_ (not annotated: the analysis names a lock
  // only through the object that holds the member):
  int fd = -1;          // O_PATH | O_NOFOLLOW, or -1 while evicted
  uint64_t nlookup = 0;
  unsigned pins = 0;    // FdPins alive
  unsigned opens = 0;   // open FileHandles
  bool retired = false;  // detached by retire(): its object has a newer Inode
  // A directory that answered a LOOKUP "no such name": the kernel may keep
  // negative entries under it (fuse/notify.h). Set under the lookup's lock
  // guard, never cleared (the entries live as long as the node).
  std::atomic<bool> negatives{false};
  uint64_t retired_size = 0;  // the size the kernel holds for it then
  // The endurant log (journal/log.h, fs_journal.cpp): what WRITE requests
  // changed since the file was last made durable, while the log can carry
  // it. jmu guards these; it is a leaf (taken under an op's guard).
  Mutex jmu;
  std::vector<std::pair<uint64_t, uint64_t>> jranges TCFS_GUARDED_BY(jmu);  // [off, end), in write order
  uint64_t jbytes TCFS_GUARDED_BY(jmu) = 0;
  // A change the log does not carry: fsync the file itself. True at first:
  // what happened to the file before this Inode existed is not known.
  bool jother TCFS_GUARDED_BY(jmu) = true;
  bool jtimes TCFS_GUARDED_BY(jmu) = false;  // its mtime was set since: the next fsync records it
  ~Inode();
};

class InodeTable;

// Keeps an Inode's fd open while alive.
class FdPin {
 public:
  FdPin(InodeTable* t, Inode* in, int fd) : t_(t), in_(in), fd_(fd) {}
  FdPin(FdPin&& o) noexcept : t_(o.t_), in_(o.in_), fd_(o.fd_) { o.t_ = nullptr; }
  FdPin& operator=(FdPin&&) = delete;
  ~FdPin();
  int fd() const { return fd_; }

 private:
  InodeTable* t_;
  Inode* in_;
  int fd_;
};

class InodeTable {
 public:
  // root_fd: the store's root/ directory (duplicated; caller keeps its own).
  // fd_budget: inode fds kept open at most (beyond those that must stay).
  static Result<std::unique_ptr<InodeTable>> create(int root_fd, size_t fd_budget = 4096);
  static constexpr int kMaxDepth = 4096;     // ".." steps from a directory to root/
  static constexpr size_t kMaxScan = 100000;  // store entries outside root/ checked
  ~InodeTable();

  Inode& root() { return *root_; }
  // Node id -> Inode. The kernel uses only ids it holds; an unknown one
  // (a kernel bug) gives an Inode whose pin() fails with ESTALE.
  Inode& get(fuse_ino_t ino) {
    if (ino == FUSE_ROOT_ID) return *root_;
    MutexLock g(mu_);
    auto it = by_id_.find(ino);
    return it == by_id_.end() ? *unknown_ : *it->second;
  }
  fuse_ino_t id_of(const Inode& in) const { return in.id; }
  // Whether the filesystem's handles are understood, so node ids are coded
  // (fuse/export.h) and the kernel may be told FUSE_CAP_EXPORT_SUPPORT.
  bool exportable() const { return layout_.has_value(); }
  const std::optional<HandleLayout>& layout() const { return layout_; }

  // LOOKUP(id, "."): the object of node id `id` (known, or decoded from
  // the id under the export security rule above), one kernel reference
  // added, *st filled. ESTALE if it is gone or refused.
  Result<Inode*> resolve(fuse_ino_t id, struct stat* st);
  // LOOKUP(id, ".."): the parent directory of directory `dir` (the root
  // for the root), one kernel reference added, *st filled.
  Result<Inode*> parent(Inode& dir, struct stat* st);

  // The inode's O_PATH fd, reopened from its handle if it was evicted
  // (ESTALE if the object no longer exists).
  Result<FdPin> pin(Inode& in);
  // Looks `name` up in `parent`, adds one kernel reference to the matching
  // Inode (creating it if needed) and fills *st. ENOENT etc. as lstat gives.
  Result<Inode*> lookup(Inode& parent, const char* name, struct stat* st);
  // An unnamed object (O_TMPFILE) the kernel is to know: one kernel
  // reference, its own O_PATH fd (no name to make a handle from; an object
  // with no links cannot be reopened by handle everywhere), kept open
  // until the Inode is forgotten. fd is the object's open file (not kept).
  Result<Inode*> adopt_unnamed(int fd);
  // Drops n kernel references to node id ino (ignored if unknown).
  void forget(fuse_ino_t ino, uint64_t n);
  // An open file keeps its inode's fd (an unlinked object has no handle
  // that reopens it on every filesystem).
  void opened(Inode& in);
  void released(Inode& in);

  // Node id of the object (dev, ino) if the kernel knows it, else 0. Adds
  // no reference: the id may be forgotten at any moment after, which the
  // kernel's notify calls tolerate (an unknown id is ignored).
  // negatives (if given): that Inode answered a lookup "no such name"
  // (Inode::negatives; false when the kernel does not know the object).
  fuse_ino_t find_id(dev_t dev, ino_t ino, bool* negatives = nullptr);
  // Every node id the kernel may hold for (dev, ino): the current Inode's
  // and those of detached ones (retired, or of a gone object that had the
  // number: invalidating those is harmless). type: only Inodes of this
  // type (S_IFMT bits; 0 any).
  std::vector<fuse_ino_t> find_ids(dev_t dev, ino_t ino, mode_t type = 0);
  // Regular file (dev, ino) changed behind the kernel's back (a compound)
  // while the writeback cache is on: the kernel keeps its own size and
  // times of a cached inode then, and never takes the daemon's. So its
  // Inode is detached and marked retired with `size`, the size the kernel
  // holds (the file's before the change): the kernel's references (open
  // files, mmaps) keep it and still reach the same object, and the next
  // LOOKUP makes a new Inode with another node id (a session id while the
  // old one's coded id is held), whose attributes the kernel takes whole.
  // Takes no kernel call: safe under a compound's locks. Returns whether
  // the kernel held an Inode of it.
  bool retire(dev_t dev, ino_t ino, uint64_t size);
  // Whether `in` was retired, and the size the kernel holds for it then.
  bool retired(Inode& in, uint64_t* size) {
    MutexLock g(mu_);
    *size = in.retired_size;
    return in.retired;
  }

  // Whether the backing object (ino, handle) of the store's filesystem has
  // files open through the mount (sync/evict.h 2). Another object that
  // reused the number is not it.
  bool in_use(ino_t ino, const std::string& handle);

  size_t size();
  size_t open_fds();

 private:
  friend class FdPin;
  struct Key {
    dev_t dev;
    ino_t ino;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const { return std::hash<uint64_t>()(k.ino ^ (uint64_t(k.dev) << 48)); }
  };
  using Lru = boost::intrusive::list<Inode>;

  Inode* ref_locked(const Key& k) TCFS_REQUIRES(mu_);
  bool dead_locked(Inode& in, int parent_fd, const char* name) TCFS_REQUIRES(mu_);
  // Gives `in` its node id and puts it in by_id_ and map_ (the current
  // object of its number).
  Inode* insert_locked(std::unique_ptr<Inode> in) TCFS_REQUIRES(mu_);
  void detach_locked(Inode& in) TCFS_REQUIRES(mu_);  // another object has its number now
  // An Inode for the object open at fd (O_PATH), identity from fd itself.
  Result<Inode*> adopt_fd(int fd, const struct stat& st);
  // A detached Inode for coded node id `id` of the object of handle h.
  Result<Inode*> alias(fuse_ino_t id, uint32_t gen, const std::string& h, const struct stat& st);
  bool inside_root(int fd, const struct stat& st);  // the export security rule
  void unpin(Inode* in) TCFS_EXCLUDES(mu_);
  void settle_locked(Inode& in) TCFS_REQUIRES(mu_);  // put in/out of lru_ by its state
  void evict_locked() TCFS_REQUIRES(mu_);            // closes fds beyond the budget
  Result<Inode*> create_inode(int parent_fd, const char* name, struct stat* st);

  Mutex mu_;
  // Every Inode but the root, by node id (owner).
  std::unordered_map<fuse_ino_t, std::unique_ptr<Inode>> by_id_ TCFS_GUARDED_BY(mu_);
  // The Inode of the object that has (dev, ino) now.
  std::unordered_map<Key, Inode*, KeyHash> map_ TCFS_GUARDED_BY(mu_);
  // Inodes whose (dev, ino) was reused by another object while the kernel
  // still held them: in by_id_, not in map_, until forgotten.
  std::unordered_set<Inode*> detached_ TCFS_GUARDED_BY(mu_);
  Lru lru_ TCFS_GUARDED_BY(mu_);  // inodes whose fd may be closed, least recently used first
  size_t open_fds_ TCFS_GUARDED_BY(mu_) = 0;
  size_t fd_budget_ = 4096;  // set by create(), then read-only
  int mount_fd_ = -1;  // for open_by_handle_at
  int store_fd_ = -1;  // root/'s parent: the store directory (export rule)
  std::optional<HandleLayout> layout_;
  NodeCode code_;
  uint64_t next_seq_ TCFS_GUARDED_BY(mu_) = 1;  // session ids: next_seq_ << 32
  uint32_t epoch_ = 1;  // generation of session ids; set by create(), then read-only
  Inode* root_ = nullptr;
  std::unique_ptr<Inode> root_owner_;
  std::unique_ptr<Inode> unknown_;  // get() of an id nobody holds
};

}  // namespace tcfs::fusefs
