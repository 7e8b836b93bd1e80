// fuse/view.h — a follower store's read-only FUSE view of its image
// (sync/follow.h), served from LMDB and a local block cache.
//
// Contract (numbered; cited as "view.h N"):
//  1. One round per answer: every lookup, getattr, readlink, getxattr and
//     open reads the image in one LMDB read transaction (follow.h 3). The
//     kernel caches no name and no attribute (timeouts 0), so a path walk
//     started after a switch sees the new round for every name it resolves.
//  2. Close-to-open: open copies the file's block list; every read of that
//     handle reads those blocks, whatever rounds come after, and its fstat
//     (and a stat of /proc/PID/fd/N) gives that version's attributes. A
//     regular file's node id is its object id (below 2^44) with the low 20
//     bits of a hash of its content above, so a round that changes a
//     file's content gives lookups a new node: the kernel keeps the old
//     inode, with the old size and page cache, for the handles still open
//     on it (st_ino stays the object id). A getattr or open of a node whose
//     content this round no longer has is ESTALE, unless a handle of that
//     node is open (getattr: its attributes). The kernel's
//     page cache of a file is kept across opens while its content (block
//     list) is unchanged; an open of new content drops it. While a handle
//     of other content uses the page cache, a new open reads directly
//     (no page cache), so two versions never share cached pages.
//  3. A directory listing is the round of its opendir: the entries are
//     copied at opendir (memory: one directory's names while it is open).
//     A walk that straddles a switch may thus list a directory of the old
//     round and then look a name up in the new one: it sees each directory
//     whole, and each file it opens whole, of one round or the other.
//  4. Content is read by block through sync::BlockCache (verified on
//     fetch, bounded). A handle read sequentially (each read starting
//     near where its reads got to) has the cache prefetch the next few
//     blocks of its block list in the background (block_cache.h 7: those
//     cached already are read ahead from disk); a seek stops that until
//     reads are sequential again. A read within one block, or across the
//     end of one block into the next, whose blocks are cached is spliced
//     to the kernel from the blocks' cache files (BlockCache::open_block;
//     no copy through memory here); the handle keeps the last of those
//     files open while its reads stay in that block (an evicted block's
//     file thus lives on until the handle moves on or is released:
//     block_cache.h 8). A read spanning more blocks, or of a block not
//     cached yet, is read through the cache. Nothing is ever
//     written: the mount is read-only (EROFS from the kernel), and opens
//     for writing get EROFS here too.
//  5. Switches wait for a quiet moment. Before the poller commits a
//     round (follow.h 2, the switch point) it waits, up to the mount's
//     switch_wait (default 500 ms; 0: never), until no file or directory
//     of the mount is open and no request has been in flight for
//     kQuietMs. A reader that keeps a directory (or a file) open for the
//     whole of a pass over many files, or that pauses between passes
//     longer than kQuietMs, thus sees each pass in one round; one that
//     never pauses sees the switch mid-pass after switch_wait, under the
//     rule of 3 (old round first, then new, never the reverse). Handles
//     held open for long make every switch wait the whole switch_wait.
//
// Thread-safety: serve_view() runs libfuse's multi-threaded loop; the
// view's shared state (page-cache versions) is guarded by its mutex, and
// a handle's open block file (4) by the handle's. Activity is shared by
// the FUSE threads and the poller; its mutex guards all of it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <string>

#include "fuse/session.h"
#include "sync/block_cache.h"
#include "sync/follow.h"

namespace tcfs::fusefs {

// view.h 5: what the view is doing, for the poller's wait before a switch.
class Activity {
 public:
  static constexpr std::chrono::milliseconds kQuietMs{10};
  void begin() TCFS_EXCLUDES(mu_);  // a request starts, or a handle opens
  void end() TCFS_EXCLUDES(mu_);    // ... ends, or closes
  // Waits until nothing has been busy for kQuietMs, at most `limit`, or
  // until cancel(). True when the quiet moment came.
  bool wait_quiet(std::chrono::milliseconds limit) TCFS_EXCLUDES(mu_);
  void cancel() TCFS_EXCLUDES(mu_);  // wakes a wait_quiet for good (the mount stops)

 private:
  using Clock = std::chrono::steady_clock;
  Mutex mu_;  // protects every member below
  std::condition_variable cv_;
  uint64_t busy_ TCFS_GUARDED_BY(mu_) = 0;
  Clock::time_point idle_since_ TCFS_GUARDED_BY(mu_) = Clock::now();
  bool cancelled_ TCFS_GUARDED_BY(mu_) = false;
};

Status serve_view(const std::string& fsname, const MountConfig& cfg, sync::Image& img, sync::BlockCache& cache,
                  Activity& activity, const std::function<void()>& on_mounted,
                  const std::function<void()>& before_unmount = {});

}  // namespace tcfs::fusefs
