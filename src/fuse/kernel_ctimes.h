// fuse/kernel_ctimes.h — the ctime the kernel gave a file, kept across the
// kernel dropping its cache (writeback cache only).
//
// Design note (numbered; cited as "kernel_ctimes.h N"):
//  1. Why. With the writeback cache the kernel keeps a file's mtime and
//     ctime itself and sends both in a SETATTR (before an fsync, when it
//     drops the inode, at a chmod). The mtime is set on the backing file,
//     but no call sets a ctime: the backing file's ctime is the moment the
//     daemon applied the SETATTR, a little after the kernel's. Once the
//     kernel drops its cached inode (memory pressure, drop_caches) a lookup
//     would show that later ctime, so an unchanged file's ctime would move,
//     which no local filesystem does (git, for one, then reads every file of
//     its work tree again to see whether it changed).
//  2. What. A SETATTR that carries the kernel's ctime records the pair
//     (backing ctime after it, the kernel's ctime). Every attribute reply
//     whose backing ctime is still exactly the recorded one reports the
//     kernel's; any later change of the backing object (a write, a chmod, a
//     compound, a fetch, an undo) moves the backing ctime, the pair no
//     longer matches and is dropped, and the backing ctime is reported.
//     On a kernel whose timestamps are coarse (one tick, not per change),
//     a change within the same tick after the SETATTR keeps the backing
//     ctime, and the kernel's slightly older ctime is reported for it: the
//     same as a local filesystem on such a kernel, whose changes in one
//     tick share a ctime.
//     a. The kernel's own writes of dirty pages (writepage WRITEs) do not
//        change the times it shows: the daemon keeps the backing mtime
//        (fs_file.cpp, KeepTimes), and carries the ctime the kernel shows
//        over to the backing ctime the write left (carry()).
//  3. Bounded. At most kMax pairs, the oldest dropped first (a file whose
//     pair is dropped shows its backing ctime, as without this table); not
//     kept across a remount (the kernel's cache starts empty then too).
//
// Thread-safety: all functions from any thread; mu_ is a leaf lock.
#pragma once

#include <sys/stat.h>

#include <cstddef>
#include <list>
#include <unordered_map>

#include "util/mutex.h"

namespace tcfs::fusefs {

class KernelCtimes {
 public:
  static constexpr size_t kMax = 32768;
  // kernel_ctimes.h 2: st is the backing object's stat after the SETATTR.
  void record(const struct stat& st, const struct timespec& kernel) TCFS_EXCLUDES(mu_);
  // kernel_ctimes.h 2a: a write of the kernel's dirty pages moved the
  // backing ctime from `before` to after.st_ctim; the kernel's ctime did
  // not move: the recorded one if `before` had a pair, else `before`.
  void carry(const struct timespec& before, const struct stat& after) TCFS_EXCLUDES(mu_);
  // Reports the kernel's ctime in st if its backing ctime is the recorded one.
  void apply(struct stat& st) TCFS_EXCLUDES(mu_);
  size_t size() TCFS_EXCLUDES(mu_);

 private:
  struct Pair {
    struct timespec backing, kernel;
    std::list<ino_t>::iterator pos;  // its place in order_
  };
  void record_locked(const struct stat& st, const struct timespec& kernel) TCFS_REQUIRES(mu_);
  Mutex mu_;
  std::unordered_map<ino_t, Pair> pairs_ TCFS_GUARDED_BY(mu_);
  std::list<ino_t> order_ TCFS_GUARDED_BY(mu_);  // the pairs' numbers, oldest recorded first
};

}  // namespace tcfs::fusefs
