// sync/evict.h — keeping the local store under its cache size by turning
// clean files into stubs (fetch.h), least recently used first.
//
// Design note (numbered; code and tests cite them as "evict.h N"):
//  1. Usage. The store's cache use is the space its regular files in
//     root/ take (st_blocks; a hard-linked file once). A scan walks the
//     tree and measures it exactly; between scans it is estimated as the
//     last scan's figure plus the growth since: the store filesystem's
//     used space (statvfs, one syscall) or the bytes fetched back
//     (Fetcher::bytes_fetched), whichever grew more, so growth from
//     anywhere (writes, fetches, blobbers on the same filesystem) can only
//     make a scan come sooner, and space freed elsewhere meanwhile (the
//     endurant log's segments, undo images) does not hide fetched files.
//     A scan runs when the estimate passes the cap, or when the
//     filesystem's free space falls under the reserve.
//  2. Candidates. A regular file may be evicted only if it is clean: it
//     has a synced record (state.h) that is not a stub, with the file's
//     current ctime and size, and the Tracker holds no mark for it; the
//     record is the file's only if its handle is the file's (sync.h 4a:
//     marks, stubs, opens and last uses are asked by ObjRef). Not if
//     it is open through the mount (in_use), or has no blocks allocated.
//     A scan keeps the `max_candidates` least recently used of them (last
//     use = the latest of its atime, mtime and its last open through the
//     mount), so its memory is bounded whatever the tree's size.
//  3. Exclusion. Every candidate is checked again, and evicted, between
//     sync rounds (Syncer::between_rounds: the synced records and the
//     marks then say exactly what the blobbers hold: a round in flight has
//     taken marks it has not yet committed) and with the world frozen
//     (txn::LockManager::freeze: no compound, no FUSE operation inside).
//     FUSE operations that need a file's bytes check, under their guard,
//     that the bytes are local (Fetcher::is_local) and fetch them again if
//     an eviction came between their fetch and their guard.
//  4. Order of an eviction, so a crash at any point loses nothing:
//       a. one synced LMDB transaction marks the batch's files stubs (their
//          content is on the blobbers: the records name its blocks);
//       b. each file's blocks are punched out (FALLOC_FL_PUNCH_HOLE, size
//          kept) and its atime/mtime put back;
//       c. one synced LMDB transaction records the files' new ctimes.
//     After a crash between a and c, a stub's bytes may be local, holes,
//     or a mix, and its ctime may have moved: the fetcher rewrites every
//     block of a stub (fetch.h 2), and the rescan treats a stub whose ctime
//     moved as an attribute change and puts its synced times back
//     (capture.h), never as new content.
//  5. A pass evicts down to `low_percent` of the cap (so scans do not run
//     back to back). When nothing more can go and the store is still over
//     the cap because files are dirty, it asks for a sync round (want_sync)
//     so they become clean; writers are never blocked by the cap. A full
//     filesystem gives the writer ENOSPC.
//
// Lock order: Syncer::round_mu_ (between_rounds) -> the world freeze ->
// Evictor::mu_ -> the leaves InodeTable::mu_ (in_use) and Tracker::mu_.
// mu_ protects touched_, in_use_, stats_ and the last scan's figures; it
// is held for no blocking I/O (statvfs at most). A pass that ends over the
// cap having freed nothing is repeated only after a back-off (up to 10 s),
// once a sync round has made marked files clean, or once the filesystem
// has grown by a twentieth of the cap.
//
// Thread-safety: every member may be called from any thread.
#pragma once

#include <sys/stat.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "sync/fetch.h"
#include "sync/state.h"
#include "sync/tracker.h"
#include "util/mutex.h"

namespace tcfs::sync {

struct EvictEnv {
  int root_fd = -1;  // <store>/root (also the mount fd for handles)
  meta::Env* meta = nullptr;
  Fetcher* fetcher = nullptr;
  Tracker* tracker = nullptr;
  // Stops the world while the returned holder lives.
  std::function<std::shared_ptr<void>()> freeze;
  // Runs fn with no sync round in flight (Syncer::between_rounds).
  std::function<Status(const std::function<Status()>&)> between_rounds;
  // Asks for a sync round soon (does not wait).
  std::function<void()> want_sync;
};

struct EvictOptions {
  uint64_t cache_bytes = 0;    // the cap; 0: only the reserve is kept
  uint64_t reserve_bytes = 0;  // free space kept on the store's filesystem; 0: none
  unsigned low_percent = 90;   // a pass evicts down to this share of the cap (evict.h 5)
  unsigned check_ms = 1000;    // how often the background thread looks
  size_t max_candidates = 4096;  // evict.h 2
  size_t batch = 64;           // files evicted per freeze
};

struct EvictReport {
  uint64_t used_before = 0, used_after = 0;  // bytes (evict.h 1)
  uint64_t files = 0, bytes = 0;             // evicted
  uint64_t candidates = 0;                   // clean files the scan found
  bool still_over = false;                   // nothing more could go
};

struct EvictStats {
  uint64_t cap = 0, reserve = 0;
  uint64_t used = 0;  // estimate (evict.h 1)
  uint64_t files_evicted = 0, bytes_evicted = 0, passes = 0;
  std::string last_error;
};

class Evictor {
 public:
  Evictor(EvictEnv env, EvictOptions opt);
  ~Evictor();
  Evictor(const Evictor&) = delete;
  Evictor& operator=(const Evictor&) = delete;

  // What says whether a backing inode is open through the mount; until it
  // is set (and after it is cleared) nothing is evicted.
  void set_in_use(std::function<bool(const ObjRef&)> f);
  // The file was opened now (least recently used order).
  void touch(const ObjRef& o);
  // One pass: scan, and evict until under the low mark (evict.h 5). With
  // `target` non-zero, evict down to that many bytes of use instead.
  Result<EvictReport> pass(uint64_t target = 0);
  void start();
  void stop();
  EvictStats stats();

 private:
  struct Candidate {
    int64_t last_use;  // ns since the epoch
    uint64_t ino, bytes;
    bool operator<(const Candidate& o) const { return last_use < o.last_use; }
  };
  struct Scan {
    uint64_t used = 0;
    std::vector<Candidate> heap;  // max-heap on last_use: the newest on top
    std::unordered_map<uint64_t, bool> linked;  // hard-linked inodes seen
  };
  Status scan_dir(int dirfd, meta::Txn& t, Scan& s, unsigned depth);
  void consider(int dirfd, const char* name, const struct stat& sb, meta::Txn& t, Scan& s);
  Result<uint64_t> evict_batch(const std::vector<Candidate>& batch, uint64_t* files);
  bool clean_now(const ObjRef& o, const FileState& f, const struct stat& sb);
  uint64_t fs_used();
  uint64_t fs_free();
  void background();

  EvictEnv env_;
  EvictOptions opt_;
  State state_;

  Mutex mu_;  // protects everything below but bg_
  std::condition_variable cv_;
  // ino -> (handle, last open in ns since the epoch): the object's, not its
  // number's (sync.h 4a).
  std::unordered_map<uint64_t, std::pair<std::string, int64_t>> touched_ TCFS_GUARDED_BY(mu_);
  std::function<bool(const ObjRef&)> in_use_ TCFS_GUARDED_BY(mu_);
  EvictStats stats_ TCFS_GUARDED_BY(mu_);
  // evict.h 1: the last scan's figures
  uint64_t scan_used_ TCFS_GUARDED_BY(mu_) = 0, scan_fs_used_ TCFS_GUARDED_BY(mu_) = 0;
  uint64_t scan_fetched_ TCFS_GUARDED_BY(mu_) = 0;  // the fetcher's bytes_fetched() then
  bool scanned_ TCFS_GUARDED_BY(mu_) = false, stop_ TCFS_GUARDED_BY(mu_) = false;
  // Started under mu_ (start()); stop() joins it without mu_, which the
  // thread takes: not annotated.
  std::thread bg_;
};

}  // namespace tcfs::sync
