// journal/log.h — the endurant log: stable small writes made durable by
// one append, many writers per flush (issue 13, docs/DESIGN.md §9).
//
// What it is for: an fsync (or an O_SYNC/O_DSYNC write) of a file through
// the mount whose data is already in the backing file (page cache) is
// acknowledged once a record holding that data, the file's size and its
// mtime is durable here, instead of forcing the backing filesystem's log.
// A background checkpoint later makes the backing files durable (syncfs)
// and retires the log up to that point; recovery replays what follows the
// last checkpoint.
//
// Invariants (numbered; code and tests cite them as "log.h N"):
//  1. Layout. <dir>/seg-<i> (i < segments), each segment_bytes long,
//     preallocated and written once with zeros, so a batch write is an
//     overwrite of written blocks: O_DIRECT + RWF_DSYNC never changes the
//     backing filesystem's metadata (one FUA write, no log force). Block 0
//     of a segment is its header: magic, store id, the log key, the
//     segment's generation, CRC. Segments are used in generation order;
//     a segment is (re)started by writing its header with the next
//     generation, durably, before any batch goes into it.
//  2. Batches. A batch (from offset 4096, 4096-aligned, padded to 4096)
//     is a header {magic, crc, gen, first_seq, nrec, len} and records
//     {kind, seq, handle, off, size, mtime, data}. Its CRC-32C covers the
//     log key and the whole batch: a batch is valid only if its magic,
//     generation (= its segment's), CRC and first_seq (= the previous
//     batch's last seq + 1) hold. Seqs grow by one per record, across
//     segments and restarts.
//  3. Group commit. One committer thread writes one batch at a time: all
//     appends waiting when the previous batch's flush completes form the
//     next batch (up to kMaxBatch bytes); a lone append is written at once.
//     The write is one io_uring WRITE with RWF_DSYNC (pwritev2 if io_uring
//     is unavailable), followed by still_up() (util/durable.h); then, and
//     only then, its appends return. COMMIT POINT of a stable write: the
//     completion of its batch's write.
//  4. Checkpoint. Records carry data already written to the backing files.
//     A checkpoint takes upto = durable_seq(), makes the backing files
//     durable (the caller: syncfs), then appends a CKPT record naming upto
//     (checkpointed()). Every record <= the newest durable CKPT is retired;
//     a segment all of whose records are retired is free for reuse, except
//     the segment holding that newest CKPT.
//  5. Space. A data batch is placed only where it leaves one block free in
//     its segment, so a CKPT always fits. When no segment is free, appends
//     wait (the owner's on_full callback is asked for a checkpoint); they
//     never fail for want of space and never drop a record. on_full is
//     asked already when a segment starts while half of them or more hold
//     records not retired, so a steady stream of stable writes is rarely
//     made to wait.
//  6. Recovery (recover()): every segment header is checked (another
//     store's segment, a bad header CRC: refused, naming the segment); the
//     segments are read in generation order, batch by batch. The log ends
//     at the first invalid batch of the newest segment (a torn tail: its
//     write was never acknowledged, 3); an invalid batch anywhere else, or
//     a valid batch after an invalid one, or a seq gap, is damage: EIO
//     naming the segment and offset, and nothing is applied. Then every
//     record after the newest CKPT is handed to the caller in seq order.
//     recover() writes nothing; open() zeroes the newest segment after its
//     last valid batch before appending there, so nothing stale or torn
//     can ever read as a continuation.
//  7. Drop. A file made durable by its own fsync (a change the log does
//     not carry: a truncate, a large write) gets a Drop record; recovery
//     applies none of its data records older than its newest Drop, so a
//     replay never puts back what a later durable change replaced.
//  8. Live files. The log knows, per file handle, its newest record not
//     yet retired (live()): a file's own fsync needs a Drop (7) exactly
//     when the file is live, and a compound committed through the log
//     (txn.h 14) writes the records of a file only when it is not live,
//     making a live one durable by its own fdatasync plus a Drop instead.
//     append_all() takes records of any total size (each at most one
//     batch), queued at once in groups of one batch, and returns when all
//     are durable.
//
// Thread-safety: append(), durable_seq(), checkpointed() and stats() may
// be called from any thread. mu_ guards the queue, the segment table and
// the figures; the committer thread alone does segment I/O (append and
// checkpointed hand it their batches). Lock order: mu_ is a leaf.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tcfs/status.h"
#include "util/fd.h"
#include "util/mutex.h"

namespace tcfs::journal {

constexpr uint32_t kBlock = 4096;
constexpr uint32_t kMaxBatch = 1u << 20;  // log.h 3: bytes of one batch at most
constexpr uint64_t kMinSegment = 2ull * kMaxBatch + kBlock;  // a segment's smallest size
constexpr uint64_t kDefaultBytes = 64ull << 20;               // a store's log, all segments (-o journal_size)
std::string seg_name(unsigned i);  // log.h 1: "seg-<i>"

struct Options {
  std::string dir;                       // <store>/journal
  std::string store_id;                  // log.h 1: segments of another store are refused
  uint64_t segment_bytes = 16ull << 20;  // a multiple of kBlock, >= kMinSegment
  unsigned segments = 4;                 // the log's size bound: segments * segment_bytes
  std::function<void()> on_full;         // log.h 5: asked for a checkpoint (from the committer thread)
};

// Data: a stable write. Ckpt: records <= off are retired (4). Drop: the
// file `handle` was made durable by other means (its own fsync): its
// earlier records are void (7).
enum class Kind : uint8_t { Data = 1, Ckpt = 2, Drop = 3 };

// One stable write: bytes [off, off + data.size()) of the backing file
// `handle` (util/handle.h), and its size and mtime after them.
struct Record {
  Kind kind = Kind::Data;
  uint64_t seq = 0;     // assigned by append
  std::string handle;
  uint64_t off = 0;     // Ckpt: the seq it retires up to
  uint64_t size = 0;
  int64_t mtime_sec = 0;
  uint32_t mtime_nsec = 0;
  std::string data;
  // Appends only: the bytes by reference instead of `data` (they must
  // stay valid until the append returns).
  std::string_view ref;
};

// What recover() found (log.h 6).
struct Recovered {
  uint64_t last_seq = 0;   // the newest valid record (0: none)
  uint64_t ckpt = 0;       // the newest CKPT's upto
  uint64_t replayed = 0;   // records handed to apply
  uint64_t torn_bytes = 0; // the dropped torn tail, if any
  // Per segment (index): its generation (0: never started), the highest seq in it, where its valid batches end.
  struct Seg {
    uint64_t gen = 0, max_seq = 0, end = kBlock;
  };
  std::vector<Seg> segs;
  uint64_t key = 0;        // the log key (log.h 2), 0 for a new log
};

// log.h 6. Creates nothing; a missing or short segment file is an unused one.
Result<Recovered> recover(const Options& o, const std::function<Status(const Record&)>& apply);

struct Stats {
  uint64_t records = 0, batches = 0, bytes = 0, ckpts = 0, full_waits = 0;
  uint64_t durable_seq = 0, ckpt_seq = 0;
  uint64_t used_bytes = 0, limit_bytes = 0;  // segment space not yet retired
  bool uring = false;                        // io_uring in use (else pwritev2)
};

class Log {
 public:
  // Opens the log after recover() (log.h 1, 6): makes the segment files,
  // zeroes what follows the newest segment's valid batches, starts the
  // committer. Appends continue after r.last_seq.
  static Result<std::unique_ptr<Log>> open(const Options& o, const Recovered& r);
  ~Log();
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;

  // log.h 3: appends the records as consecutive seqs; returns the last
  // once they are durable. Waits while the log is full (5).
  Result<uint64_t> append(std::vector<Record> recs) TCFS_EXCLUDES(mu_);
  // log.h 8: any number of records, durable when it returns (the last seq).
  Result<uint64_t> append_all(std::vector<Record> recs) TCFS_EXCLUDES(mu_);
  // append_all() in two halves: submit_all() queues the records (their
  // refs must stay valid until the ticket is waited for) and returns at
  // once; Ticket::wait() returns when they are durable (the last seq, or
  // the first error). A ticket not waited for waits when destroyed.
  class Ticket;
  Result<Ticket> submit_all(std::vector<Record> recs) TCFS_EXCLUDES(mu_);
  // log.h 8: the log holds a record of this file that no checkpoint retired.
  bool live(const std::string& handle) const TCFS_EXCLUDES(mu_);
  // log.h 4: every record acknowledged so far has seq <= durable_seq().
  uint64_t durable_seq() const TCFS_EXCLUDES(mu_);
  // log.h 4: the backing files hold every record <= upto durably: append a CKPT.
  Status checkpointed(uint64_t upto) TCFS_EXCLUDES(mu_);
  // The newest durable CKPT's upto (log.h 4).
  uint64_t ckpt_seq() const TCFS_EXCLUDES(mu_);
  // Records appended after the newest CKPT (none: nothing to checkpoint).
  bool dirty() const TCFS_EXCLUDES(mu_);
  Stats stats() const TCFS_EXCLUDES(mu_);

 private:
  // One append's records, queued for the committer. Its waiter sleeps on
  // its own cv (under mu_): a batch's completion wakes only the appends it
  // answers, and an append wakes only the committer (on 2 cores, waking
  // every waiter on each event cost more than the appends themselves).
  struct Pending {
    std::vector<Record> recs;
    bool done = false;  // under mu_
    Status st;
    uint64_t last = 0;
    std::condition_variable cv;
  };
  void finish_locked(Pending* p, Status st) TCFS_REQUIRES(mu_);
 public:
  class Ticket {
   public:
    Ticket() = default;
    Ticket(Ticket&& o) noexcept : log_(o.log_), groups_(std::move(o.groups_)) { o.groups_.clear(); }
    Ticket& operator=(Ticket&&) = delete;
    ~Ticket();
    Result<uint64_t> wait() TCFS_EXCLUDES(log_->mu_);
   private:
    friend class Log;
    Log* log_ = nullptr;
    std::vector<std::unique_ptr<Pending>> groups_;  // queued, each one batch at most
  };
 private:
  struct Seg {
    Fd fd;
    uint64_t gen = 0, max_seq = 0;
  };

  explicit Log(const Options& o) : opt_(o) {}
  Status open_segments(const Recovered& r);
  void committer() TCFS_EXCLUDES(mu_);
  // Writes one batch of the waiting appends (committer thread).
  void commit_batch(std::vector<Pending*> batch) TCFS_EXCLUDES(mu_);
  // log.h 1, 5: room for len bytes in segment cur_ (committer thread).
  Status make_room(uint64_t len, bool ckpt) TCFS_EXCLUDES(mu_);
  Status start_segment(size_t i, uint64_t gen);  // log.h 1 (committer thread)
  Status write_at(int fd, const char* buf, size_t len, uint64_t off);  // log.h 3: durable when OK
  bool free_locked(size_t i) const TCFS_REQUIRES(mu_);
  size_t used_locked() const TCFS_REQUIRES(mu_);  // segments not free

  Options opt_;
  uint64_t key_ = 0;
  void* ring_ = nullptr;  // io_uring (log.cpp), committer thread only
  std::vector<Seg> segs_;  // fds fixed after open; gen/max_seq under mu_ (written by the committer)
  mutable Mutex mu_;
  std::condition_variable cv_;  // the committer's: the queue, stopping_ (completions: Pending::cv)
  std::deque<Pending*> queue_ TCFS_GUARDED_BY(mu_);
  bool stopping_ TCFS_GUARDED_BY(mu_) = false;
  size_t cur_ TCFS_GUARDED_BY(mu_) = 0;   // the segment being written
  uint64_t off_ TCFS_GUARDED_BY(mu_) = kBlock;  // where its next batch goes
  uint64_t gen_ TCFS_GUARDED_BY(mu_) = 0;       // the newest generation
  uint64_t next_seq_ TCFS_GUARDED_BY(mu_) = 1;
  uint64_t durable_ TCFS_GUARDED_BY(mu_) = 0;   // log.h 4
  uint64_t last_data_ TCFS_GUARDED_BY(mu_) = 0; // the newest data record's seq
  uint64_t ckpt_ TCFS_GUARDED_BY(mu_) = 0;      // the newest durable CKPT's upto
  std::unordered_map<std::string, uint64_t> live_ TCFS_GUARDED_BY(mu_);  // log.h 8: handle -> newest seq
  size_t ckpt_seg_ TCFS_GUARDED_BY(mu_) = SIZE_MAX;  // the segment holding it
  Stats stats_ TCFS_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace tcfs::journal
