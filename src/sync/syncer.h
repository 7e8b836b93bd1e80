// sync/syncer.h — sync rounds: capture, upload, remote commit, local commit
// (the numbered notes in sync.h).
//
// Contract:
//  * open() loads the sync state and takes the next boot number (synced to
//    LMDB before anything else, sync.h 6).
//  * rescan() before the mount serves, when the last stop was not clean
//    (was_clean() false): marks what differs from the synced state.
//  * round() runs one round on the caller's thread: freeze, take marks,
//    capture, unfreeze; make the capture durable (on a second thread)
//    while uploading missing blocks (bounded parallelism, deduplicated by
//    SHA-256); write the journal stream (the barrier, then its end object,
//    the remote commit point), commit LMDB. On
//    failure the marks go back (sync.h 8) and the error is returned. An
//    empty round (no marks) writes nothing. Every snapshot_every epochs a
//    snapshot of the synced state follows (chain.h); a failed snapshot is
//    logged and tried again after the next round.
//  * start() runs rounds in the background: one after `interval_ms` of
//    pending changes, or at once when wait_synced() asks; failures retry
//    with backoff (retry_ms doubling up to 60 s) and are logged once per
//    change of error.
//  * wait_synced(timeout) returns OK once a round that began after the call
//    has committed (so everything committed before the call is on the
//    blobbers), or ETIMEDOUT with a message saying what is pending and the
//    last error.
//  * stop() ends the background thread after a last round; a stop whose
//    last round committed with nothing pending is recorded as clean. It
//    returns within about stop_limit_ms (sync.h 11) even when a blobber
//    does not answer: the round is then cut, and the next mount sends it.
//  * The image gives back what the store calls synced (chain.h 5;
//    maintain.cpp): before a round writes its journal, the head it extends
//    must read back (check_head()); scrub() and ensure_restorable() (for
//    tcfs sync) walk the whole chain as a restore would. When the walk does
//    not reach the head, the synced state is rewritten as a snapshot, so it
//    is restorable again; until then chain_problem() (tcfs status) says why.
//
// Locks: round_mu_ serializes rounds (held for a whole round, never while
// waiting for a freeze... the freeze is taken inside it, and nothing that
// holds world locks ever takes round_mu_). mu_ protects the counters,
// status fields and the background thread's wake-up state; while it is
// held only the Tracker's mutex (a leaf: tracker.h) is taken (put_back,
// oldest, pending). Order: round_mu_ -> mu_ -> Tracker::mu_.
//
// Thread-safety: every member may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <set>
#include <vector>
#include <memory>
#include <string>
#include <thread>

#include "blob/objects.h"
#include "sync/capture.h"
#include "sync/state.h"
#include "sync/tracker.h"
#include "util/mutex.h"

namespace tcfs::sync {

struct SyncEnv {
  CaptureEnv fs;                    // root, stage, reflink
  meta::Env* meta = nullptr;
  blob::ObjectStore* objects = nullptr;
  Tracker* tracker = nullptr;
  // Stops the world while the returned holder lives (sync.h 2).
  std::function<std::shared_ptr<void>()> freeze;
  // syncfs and retirement of committed sync-off compounds (sync.h 3).
  std::function<Status()> make_durable;
};

struct SyncOptions {
  unsigned interval_ms = 1000;
  unsigned workers = 4;     // parallel block uploads
  unsigned retry_ms = 1000;  // first retry delay after a failed round
  unsigned snapshot_every = 64;  // epochs between snapshots (0: never)
  blob::BlockWriterOptions packs;
  // gc's retention (follow.h 8): a round is kept while it is one of the
  // newest keep_rounds or younger than keep_age_s, or a live follower
  // announced it or an older round.
  unsigned keep_rounds = 64;
  uint64_t keep_age_s = 86400;
  // sync.h 11: stop()'s bound on the round in progress plus the last
  // round (0: none). Below systemd's TimeoutStopSec (tcfs@.service: 120 s).
  unsigned stop_limit_ms = 90000;
};

// What gc() or scrub() did.
struct MaintenanceReport {
  uint64_t objects = 0;      // looked at
  uint64_t deleted = 0;      // gc: objects removed (blocks, packs, old journals/snapshots)
  uint64_t index_dropped = 0;  // gc: dedup entries that named removed objects
  uint64_t kept_from = 0;      // gc: the oldest round kept (follow.h 8)
  uint64_t notes_expired = 0;  // gc: follower notes removed
  uint64_t good = 0, repaired = 0, unrecoverable = 0;  // scrub: objects
  std::vector<std::string> problems;  // scrub: one line per object it could not make whole
  std::string chain_rewritten;        // scrub: why the synced state was rewritten as a snapshot ("" = not)
};

struct SyncStatus {
  uint64_t epoch = 0;        // last committed round
  std::string head;          // its journal
  size_t pending = 0;        // marks not yet in a committed round
  double oldest_pending_s = 0;  // age of the oldest of them
  uint64_t rounds = 0, failures = 0;
  std::string last_error;    // of the last round, "" if it committed
  uint64_t bytes_uploaded = 0, blocks_uploaded = 0, blocks_deduplicated = 0, objects_synced = 0;
  double upload_rate = 0;    // bytes/s of the last round's uploads
  bool running = false;      // a round in progress
  std::string chain_problem;  // why the blobbers cannot give back `epoch` ("" = they can, as last checked)
  std::string fenced;         // sync.h 10: why this store no longer extends the chain ("" = it does)
  uint64_t chain_rewrites = 0;  // synced states rewritten as snapshots (chain.h 5)
  // gc or scrub in progress ("" = none): objects done of total (total
  // grows while gc lists the blobbers), for progress bars.
  std::string maintenance;
  uint64_t maint_done = 0, maint_total = 0;
  // The round in progress: bytes of content it captured, and of those the
  // bytes already hashed and uploaded or found on the blobbers (0, 0 when
  // no round runs): what a progress bar of `tcfs sync` shows.
  uint64_t round_bytes = 0, round_done = 0;
};

// tcfs fsck --remote, offline (no Syncer, no store needed): whether the
// chain on the blobbers is whole (chain.h 3), and whether every object of
// its newest usable snapshot and of the journals after it, and every block
// they name, has at least K good shards and reads back (a block: its
// content hash). With repair, bad or missing shards are rewritten where K
// good ones remain (as scrub does); a cut chain is only reported (a
// writer's scrub rewrites its state as a snapshot, chain.h 5).
struct RemoteCheck {
  uint64_t epoch = 0;                  // the round the chain reaches
  std::string head;                    // its journal
  std::vector<std::string> chain_cut;  // ChainWalk::unreadable: empty when whole
  uint64_t objects = 0, good = 0, repaired = 0;
  uint64_t damaged = 0;        // readable, but shards bad or missing (not all rewritten)
  uint64_t unrecoverable = 0;  // fewer than K good shards, or content not matching its hash
  std::vector<std::string> problems;  // one line per object: name and why
};
Result<RemoteCheck> check_remote(blob::ObjectStore& os, bool repair,
                                 const std::function<void(uint64_t done, uint64_t total)>& progress = {});

class Syncer {
 public:
  static Result<std::unique_ptr<Syncer>> open(SyncEnv env, SyncOptions opt);
  ~Syncer();
  Syncer(const Syncer&) = delete;
  Syncer& operator=(const Syncer&) = delete;

  bool was_clean() const { return was_clean_; }
  Status rescan();
  Status round();
  void start();
  void stop();
  Status wait_synced(std::chrono::milliseconds timeout);
  SyncStatus status();
  // Removes what no synced state needs: blocks and packs no synced object
  // names (and their dedup entries), journals and snapshots before the
  // newest snapshot, stray journals of failed rounds. Runs between rounds.
  Result<MaintenanceReport> gc();
  // Reads every shard of every object the synced state needs, rewrites
  // bad or missing shards, and reports objects it cannot make whole.
  Result<MaintenanceReport> scrub();
  // Waits for a running round; OK once the blobbers give back the synced
  // state (rewriting it as a snapshot if needed), else why not.
  Status ensure_restorable();
  // Why the blobbers cannot give back the synced state, "" if they can:
  // checked now, or as the running round last checked.
  std::string chain_problem();
  // sync.h 10: "" while this store extends the chain; else the marker of
  // another writer that superseded it (rounds have stopped for good).
  std::string fenced();
  // The same as !fenced().empty(), without a lock (for every FUSE change).
  bool is_fenced() const { return is_fenced_.load(std::memory_order_acquire); }
  const std::string& writer_id() const { return writer_; }
  // Runs fn between rounds (holding round_mu_): no round is capturing,
  // uploading or committing meanwhile, so the synced state in LMDB and the
  // marks in the Tracker together say what is on the blobbers (evict.h).
  Status between_rounds(const std::function<Status()>& fn) TCFS_EXCLUDES(round_mu_) {
    MutexLock g(round_mu_);
    return fn();
  }

 private:
  Syncer(SyncEnv env, SyncOptions opt) : env_(std::move(env)), opt_(opt), state_(*env_.meta) {}
  struct Round;
  struct Uploader;
  Status send(Round& r) TCFS_REQUIRES(round_mu_);
  // SyncStatus::maintenance and its counts (what "" when it ends).
  void maint_progress(const char* what, uint64_t done, uint64_t total) TCFS_EXCLUDES(mu_);
  Status upload(Round& r);
  Status put_block(Round& r, Uploader& u, meta::Txn& t, std::string_view block, blob::BlockRef& ref);
  Status write_journal(Round& r) TCFS_REQUIRES(round_mu_);
  // fence.cpp: sync.h 10.
  Status mark_round(const std::string& journal) TCFS_REQUIRES(round_mu_);
  Status probe_marker() TCFS_REQUIRES(round_mu_);
  Status adopt(const std::string& journal, uint64_t epoch) TCFS_REQUIRES(round_mu_);
  Status fence(const std::string& why, uint64_t epoch) TCFS_REQUIRES(round_mu_);
  Status commit_local(Round& r) TCFS_REQUIRES(round_mu_);
  Status write_snapshot(uint64_t epoch, const std::string& head) TCFS_REQUIRES(round_mu_);
  void background();
  // sync.h 11: waits until *done or the deadline; at the deadline cuts.
  void stop_watch(const bool* done) TCFS_EXCLUDES(mu_);
  Status check_cut() const;
  // keep_from: also everything rounds from keep_from on read (gc's
  // retention); 0: the newest round only.
  Result<std::set<std::string>> live_objects(std::map<std::string, blob::Hash>* blocks, uint64_t keep_from = 0)
      TCFS_REQUIRES(round_mu_);
  Result<uint64_t> retention_start(MaintenanceReport& rep) TCFS_REQUIRES(round_mu_);
  // maintain.cpp: chain.h 5.
  Status verify_chain(bool repair) TCFS_REQUIRES(round_mu_);
  Status check_head() TCFS_REQUIRES(round_mu_);
  Status set_chain_problem(const std::string& p) TCFS_EXCLUDES(mu_);

  SyncEnv env_;
  SyncOptions opt_;
  State state_;
  bool was_clean_ = false;
  uint64_t boot_ = 0;
  std::string writer_;  // this store's id as a writer of the chain (sync.h 10); set at open
  std::atomic<bool> is_fenced_{false};  // set once, by fence()

  // Lock order: round_mu_ -> mu_ (-> Tracker::mu_).
  Mutex round_mu_ TCFS_ACQUIRED_BEFORE(mu_);  // one round at a time; protects everything below up to mu_
  // epoch_ and head_ change with mu_ held too, so stats_ (under mu_) repeats them.
  uint64_t epoch_ TCFS_GUARDED_BY(round_mu_) = 0, next_id_ TCFS_GUARDED_BY(round_mu_) = kRootId + 1;
  std::string head_ TCFS_GUARDED_BY(round_mu_);
  unsigned attempt_ TCFS_GUARDED_BY(round_mu_) = 0, snap_attempt_ TCFS_GUARDED_BY(round_mu_) = 0;
  bool snapshot_due_ TCFS_GUARDED_BY(round_mu_) = false;
  std::string last_rewrite_ TCFS_GUARDED_BY(round_mu_);  // why verify_chain() last rewrote the state
  std::string fenced_ TCFS_GUARDED_BY(round_mu_);  // sync.h 10 (stats_.fenced repeats it under mu_)
  // sync.h 10: the next round first looks for a marker of epoch_ + 1 (at
  // open, and after a failed round); set, it makes a round due.
  std::atomic<bool> probe_next_{true};
  std::atomic<uint64_t> round_bytes_{0}, round_done_{0};  // SyncStatus::round_bytes, round_done
  std::atomic<bool> cut_{false};  // sync.h 11: stop()'s deadline passed; set once

  Mutex mu_;  // protects everything below but bg_
  std::condition_variable cv_;
  // wait_synced() tickets; covered_ = the last committed round's
  uint64_t requested_ TCFS_GUARDED_BY(mu_) = 0, covered_ TCFS_GUARDED_BY(mu_) = 0;
  bool stop_ TCFS_GUARDED_BY(mu_) = false;
  SyncStatus stats_ TCFS_GUARDED_BY(mu_);
  // Started under mu_ (start()); stop() joins it without mu_, which the
  // thread takes: not annotated.
  std::thread bg_;
};

}  // namespace tcfs::sync
