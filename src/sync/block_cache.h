// sync/block_cache.h — a bounded, content-addressed local cache of blocks
// for follower stores: reads of blocks (blocks.h) served from local files,
// fetched from the blobbers once.
//
// Design note (cited as "block_cache.h N"):
//  1. Layout. A cached block is the file DIR/XX/HEX: HEX its content hash
//     (blocks.h 1) in hex, XX its first two digits; it holds exactly the
//     block's bytes. Temp files live in DIR/tmp/; DIR/clean is the clean
//     marker (2). open() creates DIR (mode 0700, its parent must exist)
//     and DIR/tmp, removes every file in DIR/tmp (a crash's leftovers) and
//     indexes every DIR/XX/HEX (a restarted follower keeps its cache),
//     oldest modification time least recently used, if the last run closed
//     cleanly (2); otherwise it removes them. Other names in DIR are left
//     alone. DIR is flock(2)ed: one BlockCache per directory (a second open
//     is EBUSY).
//  2. Storing. A block read from the blobbers (blob::read_block: verified
//     against its hash) is written to a temp file, then rename(2)d to its
//     name: no reader, and no later open within this run, ever sees a
//     partial block under a block name. Nothing is fsync'ed per block (a
//     miss never waits for the disk); durability across a crash or power
//     cut comes from the clean marker DIR/clean instead: open() removes it
//     (and fsyncs DIR, so the removal is on disk before any new block is)
//     and remembers whether it was there; if it was not (the last run
//     crashed or lost power, or first use), every DIR/XX/HEX is removed,
//     as it may be torn or empty. The destructor (a clean close) stops
//     the prefetch workers, syncfs(2)s DIR's filesystem, and only then
//     creates DIR/clean (and fsyncs DIR). A block that cannot be stored
//     (ENOSPC, fault site "block_cache.store") is logged and still
//     returned; the cache is best effort, the blobbers hold the truth.
//  3. Reading. A hit opens the file (under mu_, so eviction cannot unlink
//     it first) and preads the range from that descriptor outside mu_: a
//     concurrent eviction only unlinks the name. A file whose size is not
//     the block's length (truncated, damaged by hand) is dropped and the
//     block fetched again; a missing one likewise. The local disk is
//     trusted beyond that: the hash is checked when a block is fetched,
//     not on every hit.
//  4. Single flight. Concurrent reads of one missing block make one
//     blobber read: the first reader (or a prefetch, 7) fetches, the
//     others wait for it and are served from its buffer (they count as
//     hits). A fetch that fails gives its error, naming the block (first
//     16 hex digits), to the fetcher and its waiters, and changes nothing
//     in the cache; the next read tries again. Readers waiting for a failed
//     prefetch do not take its error: they try again themselves.
//  5. Bound. After a block is stored, least recently used blocks are
//     unlinked until bytes() <= limit() (the new block too, last, if it
//     alone is larger). Recency is an in-memory LRU list: hits move a
//     block to the front; after a restart the order is that of (1).
//  6. Memory: the index, one entry per cached block, one block buffer per
//     fetch in flight (shared with its waiters): at most kPrefetchWorkers
//     from prefetches, plus one per reader that fetches itself; the
//     prefetch queue holds at most kPrefetchQueue block references; a hit
//     holds only the range it reads.
//  7. Prefetch. prefetch(ref) queues the block for one of kPrefetchWorkers
//     background threads (started by open(), joined by the destructor)
//     unless it is cached, in flight or queued already, or the queue is
//     full (then it is ignored: a prefetch is a hint); a cached block's
//     file is read ahead instead (posix_fadvise WILLNEED: the disk reads
//     start, nothing waits for them), so a reader moving into that block
//     finds its pages in memory. A worker fetches a queued block
//     as a read would (4: a reader arriving meanwhile waits for it) and
//     stores it (2). Failures are logged at debug level only: the reader's
//     own read reports the error. Stats: `prefetched` counts the fetches
//     prefetch started; `misses` only reads that fetched themselves.
//  8. Descriptors. open_block() hands out a cached block's file as an
//     fd (the view splices replies from it, view.h 4). Such an fd keeps
//     its file's data on disk after an eviction (5) until it is closed:
//     bytes() counts only the blocks indexed, so the disk used may exceed
//     limit() by the blocks whose evicted files are still open (the view:
//     at most one per open handle).
//
// Thread-safety: every member may be called from any thread (the
// destructor once no other call runs). mu_ protects the index, the LRU
// list, the byte count, the fetches in flight (a Flight's fields too: not
// annotated, the analysis names a lock only through the object that holds
// the member) and the prefetch queue; cv_ is signalled when a fetch ends
// or a prefetch worker goes idle, work_cv_ when a prefetch is queued or
// the workers must stop. mu_ is a leaf. Under it run only the metadata
// syscalls that must agree with the index (open of a hit, rename of a
// stored block, unlink of an evicted or bad one); block bytes and blobber
// reads never.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "blob/blocks.h"
#include "blob/objects.h"
#include "util/fd.h"
#include "util/mutex.h"

namespace tcfs::sync {

class BlockCache {
 public:
  // dir: created if absent (mode 0700); limit: bytes of blocks kept (> 0,
  // normally at least one block; no default is applied here). Indexes the
  // blocks already in dir and removes leftover temp files (1).
  static Result<std::unique_ptr<BlockCache>> open(const std::string& dir, uint64_t limit, blob::ObjectStore& os);
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;
  // A clean close (2): joins the prefetch workers, syncs, marks DIR clean.
  ~BlockCache();

  static constexpr size_t kPrefetchWorkers = 3;  // 7
  static constexpr size_t kPrefetchQueue = 16;

  // Bytes [off, off+len) of the block (clipped to its length) from its
  // cache file (3), or fetched once (4), stored (2) and returned.
  Result<std::string> read(const blob::BlockRef& ref, uint64_t off, uint64_t len) TCFS_EXCLUDES(mu_);
  // The block's cache file, opened read-only (3: under mu_, so an
  // eviction only unlinks the name and the descriptor still reads the
  // whole block) and checked to hold ref.len bytes, for the caller to read
  // or splice from itself (8). A hit: counted, and the block moved to the
  // front of the LRU list. Never fetches and never waits for a fetch:
  // ENOENT when the block is not cached (or its file was gone or of the
  // wrong size: dropped, as read() drops it); then read() fetches it.
  Result<Fd> open_block(const blob::BlockRef& ref) TCFS_EXCLUDES(mu_);
  // Fetches the block in the background if it is neither cached nor in
  // flight (7). Never blocks on a fetch.
  void prefetch(const blob::BlockRef& ref) TCFS_EXCLUDES(mu_);
  uint64_t bytes() const;  // bytes of blocks held now
  uint64_t limit() const { return limit_; }
  size_t blocks() const;   // blocks held now
  struct Stats {
    uint64_t hits = 0, misses = 0, evicted = 0, prefetched = 0;
  };
  Stats stats() const;
  // The cache file of a block (1), whether or not it is held.
  std::string path_of(const blob::Hash& h) const;

  // Test seams: fetch_hook runs in the fetching thread (a prefetch
  // worker's too) just before its blobber read (set it before reads or
  // prefetches start); waiting() is the number of reads waiting for
  // another's fetch (4); drain() returns once the prefetch queue is empty
  // and no worker is fetching (7); was_clean() tells whether DIR/clean
  // was there at open (2).
  void set_fetch_hook(std::function<void(const blob::BlockRef&)> f) { fetch_hook_ = std::move(f); }
  size_t waiting() const TCFS_EXCLUDES(mu_);
  void drain() TCFS_EXCLUDES(mu_);
  bool was_clean() const { return was_clean_; }

 private:
  struct HashOf {
    size_t operator()(const blob::Hash& h) const;
  };
  struct Entry {
    uint64_t size = 0;
    uint64_t gen = 0;  // which file: a drop (3) removes only the one it read
    std::list<blob::Hash>::iterator lru;
  };
  struct Flight {  // a fetch in flight (4); fields under mu_
    bool done = false;
    bool prefetch = false;  // started by a prefetch worker (7)
    Status st;
    std::shared_ptr<const std::string> data;
  };

  BlockCache(std::string dir, Fd dirfd, uint64_t limit, blob::ObjectStore& os)
      : dir_(std::move(dir)), dirfd_(std::move(dirfd)), limit_(limit), os_(os) {}
  Status scan();
  // Reads the block from the blobbers, stores it (2) and ends the flight
  // (4): the block's bytes, or the error (logged at warn, or at debug for
  // a prefetch).
  Result<std::shared_ptr<const std::string>> fetch(const blob::BlockRef& ref, const std::shared_ptr<Flight>& fl)
      TCFS_EXCLUDES(mu_);
  void worker() TCFS_EXCLUDES(mu_);  // a prefetch worker's loop (7)
  void mark_clean();                 // the end of a clean close (2)
  // Writes the temp file (2); its name relative to dir_, or the error.
  Result<std::string> write_temp(const blob::Hash& h, const std::string& data);
  void insert_locked(const blob::Hash& h, uint64_t size) TCFS_REQUIRES(mu_);
  void drop_locked(const blob::Hash& h) TCFS_REQUIRES(mu_);
  void evict_locked() TCFS_REQUIRES(mu_);
  static std::string rel_of(const blob::Hash& h);

  const std::string dir_;
  const Fd dirfd_;  // DIR, flock'ed (1); every path is relative to it
  const uint64_t limit_;
  blob::ObjectStore& os_;
  std::function<void(const blob::BlockRef&)> fetch_hook_;

  bool was_clean_ = false;  // DIR/clean was there at open (2)
  bool opened_ = false;     // open() succeeded: the destructor may mark DIR clean

  mutable Mutex mu_;
  std::condition_variable cv_;       // a fetch ended, or a worker went idle
  std::condition_variable work_cv_;  // a prefetch was queued, or stopping_
  std::deque<blob::BlockRef> queue_ TCFS_GUARDED_BY(mu_);  // prefetches to start (7)
  size_t busy_ TCFS_GUARDED_BY(mu_) = 0;                   // workers fetching now
  bool stopping_ TCFS_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;  // started by open(), joined by the destructor
  std::unordered_map<blob::Hash, Entry, HashOf> index_ TCFS_GUARDED_BY(mu_);
  std::list<blob::Hash> lru_ TCFS_GUARDED_BY(mu_);  // most recently used first
  std::unordered_map<blob::Hash, std::shared_ptr<Flight>, HashOf> flights_ TCFS_GUARDED_BY(mu_);
  uint64_t bytes_ TCFS_GUARDED_BY(mu_) = 0;
  uint64_t gen_ TCFS_GUARDED_BY(mu_) = 0;
  size_t waiting_ TCFS_GUARDED_BY(mu_) = 0;
  std::atomic<uint64_t> hits_{0}, misses_{0}, evicted_{0}, prefetched_{0};
  std::atomic<uint64_t> tmp_seq_{0};
};

}  // namespace tcfs::sync
