// txn/invalidate.h — how a compound tells the kernel's FUSE caches what it
// changed (DESIGN.md §5 invariant 8). Implemented by the FUSE layer
// (fuse/notify.h); the txn layer only calls it.
//
// Contract and deadlock rules:
//  * attrs(k): the inode's cached attributes are stale. Safe while the
//    compound holds its locks: the kernel takes no inode or page lock for
//    it. With auto_inval_data, the next read of the inode refreshes its
//    attributes (a GETATTR, which waits for the compound's locks) and drops
//    stale pages, so no reader sees old data once the attributes changed.
//  * entry(parent, name, absent) and data(k): must be called after the
//    compound's locks are released. entry() takes the parent directory's
//    i_rwsem in the kernel, which a lookup blocked in our lookup handler
//    (waiting for the compound's lock) already holds; data() takes page
//    locks that a READ waiting in our read handler holds. absent: the name
//    did not exist when the compound began (under its locks), so the
//    kernel can hold only a negative entry for it; the FUSE layer skips
//    the call when the directory never answered a lookup with "no such
//    name" (fuse/notify.h).
//  * flush(k): with the kernel's writeback cache, the data a program wrote
//    to k may still be in the kernel's dirty pages: write them back to the
//    daemon now (their WRITE requests are served meanwhile). Called before
//    the compound takes its locks, never under them (the WRITEs take the
//    inode's lock). A no-op without the writeback cache.
//  * retire(k) and renew(k, path): regular file k, at `path` under root/
//    before the compound, changed size, data or times. With the writeback
//    cache the kernel keeps its own size and times of a cached inode and
//    never takes the daemon's, so the kernel must get a new inode for it.
//    retire(k, size) under the locks, `size` its size before the compound
//    (the kernel's): the daemon's side only (fuse/inode_table.h retire);
//    renew(k, path) after them: the name loses its dentry (like entry()).
//    retire() says whether the kernel held a node of k (false: nothing to
//    renew, and renew() is not called). No-ops without the writeback cache.
//  * Objects the kernel has never seen are ignored.
//  * read_only(): the mount's superblock is read-only now (mounted -o ro,
//    or remounted so); compounds are then refused (txn.h invariant 12).
//    mountpoint(): where it is mounted, for messages ("" unknown).
//  * device(): the device number of the live mount's superblock (0: no
//    mount). The daemon never does I/O through its own mount (DESIGN.md
//    §3): a file the caller passes that lives there is refused, since
//    reading it would wait on this very daemon (txn.h invariant 10).
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <sys/types.h>

#include <string>

#include "txn/locks.h"

namespace tcfs::txn {

class Invalidator {
 public:
  virtual ~Invalidator() = default;
  virtual void attrs(const LockKey& k) = 0;
  virtual void data(const LockKey& k) = 0;
  virtual void entry(const LockKey& parent, const std::string& name, bool absent) = 0;
  virtual void flush(const LockKey&) {}
  virtual bool retire(const LockKey&, uint64_t /*size*/) { return false; }
  virtual void renew(const LockKey&, const std::string& /*path*/) {}
  virtual dev_t device() const { return 0; }
  virtual bool read_only() const { return false; }
  virtual std::string mountpoint() const { return ""; }
};

}  // namespace tcfs::txn
