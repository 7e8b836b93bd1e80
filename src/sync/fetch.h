// sync/fetch.h — bringing a stub's content back from the blobbers.
//
// Design note (cited as "fetch.h N"):
//  1. A stub is a regular file of the right size whose bytes are holes; its
//     FileState (state.h) says stub and holds the block list. The set of
//     stub objects is kept in memory (loaded from LMDB at start), so asking
//     is_stub() costs a hash lookup under a mutex. Stubs are named by
//     ObjRef (sync.h 4a): a new file that took a removed stub's inode
//     number is not a stub, and nothing is ever fetched into it.
//  2. The first use of a stub starts its fetch job: up to kDepth threads
//     per job (kMaxHelpers extra threads over all jobs) write the file's
//     blocks, each verified by its SHA-256, into the backing file at their
//     offsets, taking them in file order (so a sequential reader is always
//     just behind them: read-ahead) except that a block a reader waits for
//     is taken next. Blocks are read from the blobbers in parallel; each
//     block's write and the restoring of the file's times that follows it
//     are one step under the job's write_mu, so the times a woken reader
//     sees are always the object's. ensure(off, len) returns as soon as
//     the blocks under that range are written, so the first bytes reach a
//     reader before the whole file has arrived.
//  3. When every block is written the file is fdatasync'ed, then one LMDB
//     transaction clears the stub flag and records the new ctime: from then
//     on the file is an ordinary clean file. Until then nothing else writes
//     to it: writers call ensure_all() first.
//  4. A job that fails (fewer than K shards, a bad hash) ends; its waiters
//     get EIO naming the file's id and the reason, and the next use starts
//     a new job. Wrong data is never written.
//  5. Memory: one block buffer per fetching thread: at most kDepth per job
//     and kMaxHelpers + one per job over all.
//
// Thread-safety: every member may be called from any thread. mu_ protects
// stubs_ and jobs_ (and every Job's progress fields); cv_ is signalled
// when a job makes progress or ends. mu_ is a leaf: no I/O under it.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "blob/objects.h"
#include "sync/state.h"
#include "util/mutex.h"

namespace tcfs::sync {

class Fetcher {
 public:
  Fetcher(int root_fd, meta::Env& env, blob::ObjectStore& os);
  ~Fetcher();
  Fetcher(const Fetcher&) = delete;
  Fetcher& operator=(const Fetcher&) = delete;

  Status load();
  bool is_stub(const ObjRef& o);
  // Bytes [off, off+len) of o are local when this returns OK (at once
  // for a file that is not a stub). len 0: start the fetch, do not wait.
  Status ensure(const ObjRef& o, uint64_t off, uint64_t len);
  Status ensure_all(const ObjRef& o) { return ensure(o, 0, ~uint64_t{0}); }
  // Whether bytes [off, off+len) of o are local now (no waiting). Asked
  // under a FUSE guard after ensure(): an eviction in between (evict.h 3)
  // makes it false, and the caller fetches again.
  bool is_local(const ObjRef& o, uint64_t off, uint64_t len);
  // A file just made a stub (eviction).
  void add_stub(const ObjRef& o);
  size_t stubs();
  uint64_t bytes_fetched() const { return fetched_; }

 private:
  static constexpr unsigned kDepth = 3;        // fetching threads per job (fetch.h 2)
  static constexpr unsigned kMaxHelpers = 6;  // threads beyond each job's first, over all jobs
  struct Job {
    std::vector<blob::BlockRef> blocks;
    std::vector<uint64_t> offs;  // start of each block in the file
    std::vector<bool> done, busy;  // written; being fetched
    size_t next = 0;             // the next block in file order
    std::vector<size_t> wanted;  // blocks readers wait for, taken first
    bool finished = false;
    Status err;
  };
  void run(ObjRef o, std::shared_ptr<Job> job, FileState fs);
  bool stub_locked(const ObjRef& o) const TCFS_REQUIRES(mu_);
  // The block a fetching thread takes next, or nullopt; caller holds mu_.
  static std::optional<size_t> pick(Job& job);
  // Blocks of job under [off, off+len) not written yet; caller holds mu_.
  static std::vector<size_t> missing(const Job& job, uint64_t off, uint64_t len);
  Status fetch_all(Job& job, int fd, const FileState& f, Mutex& write_mu) TCFS_EXCLUDES(mu_);
  static Status write_block(int fd, const std::string& data, uint64_t off, const FileState& f);
  Status complete(const ObjRef& o, int fd);

  int root_;
  State state_;
  blob::ObjectStore& os_;
  // A job's write_mu (run()) is a leaf, never held with mu_. A Job's fields
  // are under mu_ too (not annotated: the analysis names a lock only
  // through the object that holds the member).
  Mutex mu_;
  std::condition_variable cv_;
  // inode number -> the stub's handle (sync.h 4a)
  std::unordered_map<uint64_t, std::string> stubs_ TCFS_GUARDED_BY(mu_);
  std::map<ObjRef, std::shared_ptr<Job>> jobs_ TCFS_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
  bool stopping_ TCFS_GUARDED_BY(mu_) = false;
  unsigned helpers_ TCFS_GUARDED_BY(mu_) = 0;  // extra fetching threads running (fetch.h 2)
  std::atomic<uint64_t> fetched_{0};
};

}  // namespace tcfs::sync
