// txn/txn.h — the transaction manager: runs compounds all-or-nothing,
// recovers the store at start-up, reclaims undo images.
//
// Protocol of one compound (DESIGN.md §5; crash points in brackets):
//   1. plan (plan.h) without locks; take the plan's locks in the global
//      order; plan again under them, until the plan needs no lock not held
//      (invariant 7).                                   [txn.after_lock]
//   2. undo images: txn/<id>/, its progress marker (undo.h), and a reflink
//      clone of every existing file whose data the compound changes, all
//      in one pack file txn/<id>/images (invariant 3).  [txn.after_images]
//   3. syncfs: the images are durable (invariant 2); on XFS, when every
//      image is a clone, one force of XFS's log instead (invariant 14).
//   4. the recovery record (encoded while a helper thread does step 3),
//      synced into LMDB (invariants 1, 2).               [txn.after_rr]
//   5. the operations, in order, as the caller, the progress marker advanced
//      before each.                  [txn.before_op/after_op, then txn.after_exec]
//      On a failure: undo 0..k, syncfs, delete the RR, reply "rolled back".
//   6. sync on: syncfs, so every effect is durable, or, on XFS with the
//      endurant log, the compound's unsynced bytes in the log (sent there
//      256 KiB at a time while step 5 runs, the rest now) and one force of
//      XFS's log (invariant 14).                         [txn.after_sync]
//   7. COMMIT POINT: the synced LMDB transaction that deletes the RR
//      (invariant 6).                                    [txn.after_commit]
//      sync off: the RR stays until a later syncfs retires it (make_durable,
//      the background retirer, any fsync through the mount); a crash before
//      that rolls the compound back whole.
//   8. invalidate kernel attributes of touched inodes; release the locks;
//      invalidate entries and data (invariant 8); reply. txn/<id>/ is
//      removed in the background.
// On a full store, a compound that only frees space (remove, rename,
// truncate, setattr, removexattr) prepares with the store's space reserve
// (store/reserve.h), as a plain rm would succeed.
// With txn off, steps 2-4 and the undo are skipped: operations stop at the
// first error (best effort), locks are still taken.
//
// Invariant 10 (beyond DESIGN.md §5's nine): the daemon never does I/O
// through its own mount. A descriptor passed with a compound whose file
// lives on the mount (Invalidator::device()) is refused before planning,
// with EDEADLK: reading it would wait on a FUSE request that this daemon
// serves, while the compound holds locks (or a sync round freezes the
// world) that the request needs. Files inside the mount are named by
// path instead ("copy"), which reads the store directly.
//
// Invariant 11: a compound with txn on never changes an immutable or
// append-only inode (chattr +i / +a; fuse/fs_flags.cpp): the plan fails
// with EPERM naming the path before anything changes (plan.cpp), because
// the backing filesystem would refuse the change halfway through, or the
// undo that must restore the inode. So no compound is left half-done and
// no undo meets an inode it cannot write. The flags cannot change while
// the compound holds its locks (the FUSE ioctl takes the inode's lock).
//
// Invariant 12: a compound changes nothing on a read-only mount (mounted
// -o ro, or remounted so: Invalidator::read_only()). It is refused with
// EROFS naming the mountpoint before planning, as the kernel refuses
// every write there. The flag is read when the compound starts; a remount
// to read-only while one runs lets it finish, as it lets a write in flight
// finish. The same holds for a store whose write gate is shut: a writer
// superseded on its blobbers (sync.h 10) refuses compounds with EROFS and
// the gate's reason.
//
// Invariant 13 (the writeback cache): data written through the mount
// before a compound began is in the store before the compound plans: the
// kernel's dirty pages of every object the compound names are written back
// first, outside its locks (TxnManager::flush_kernel). After it, a regular
// file it changed gets a new kernel inode (Invalidator::renew), since the
// kernel keeps its own size and times of a cached one.
//
// Invariant 14 (commit through the endurant log, txn/logged.h): a sync-on
// compound on an XFS store with a log, whose changed data the log can carry
// (inline bytes, truncates, whole-file reflinks; at most an eighth of the
// log), and with no sync-off compound waiting, is made durable at step 6
// by appending its records to the log (journal/log.h 8) and forcing XFS's
// log once, instead of a syncfs that writes back every dirty page of the
// store. Recovery replays the log before undoing compounds (DESIGN.md §9),
// so a compound cut before its commit point is undone over its replayed
// bytes, and one committed gets them back. Otherwise (and when the log
// fails) the syncfs of step 6 runs. Records go to the log while the
// operations run (logged.h Feed), so a compound rolled back may have
// records there: roll_back() makes the undone state durable and
// checkpoints the log past them (syncfs, CKPT) before it deletes the RR,
// so no replay can put them back over the undone files.
//
// Locks: id_mu_ protects the id block (held across its one LMDB write);
// durable_mu_ serializes commit points and make_durable() (held across
// syncfs, or the log append and XFS's log force, and the LMDB delete); mu_ protects lazy_, reclaim_ and stop_ and
// is a leaf, never held while calling out. Order: durable_mu_ -> mu_.
// Compound locks (LockManager) are taken before any of these.
//
// Thread-safety: run() may be called from many threads at once; compounds
// on disjoint inodes run in parallel.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "store/reserve.h"
#include "store/store.h"
#include "sync/fetch.h"
#include "sync/tracker.h"
#include "tcfs/compound.h"
#include "txn/invalidate.h"
#include "txn/locks.h"
#include "txn/logged.h"
#include "util/creds.h"
#include "util/mutex.h"

namespace tcfs::txn {

struct Caller {
  pid_t pid = 0;
  UserCreds creds;
};

using Progress = std::function<void(size_t done, size_t total)>;

class TxnManager {
 public:
  // inv may be null (no kernel to tell, e.g. in unit tests).
  TxnManager(store::Store& store, LockManager& locks, Invalidator* inv);
  ~TxnManager();
  TxnManager(const TxnManager&) = delete;
  TxnManager& operator=(const TxnManager&) = delete;

  // The kernel-cache invalidator of the live mount (null: none).
  void set_invalidator(Invalidator* inv) { inv_.store(inv); }
  // Change marks for the sync layer (sync/sync.h 1): every compound marks
  // what its plan touches, committed or undone, before its locks go.
  void set_tracker(sync::Tracker* t) { tracker_.store(t); }
  // Stubs a compound changes are fetched whole first, under its locks.
  void set_fetcher(sync::Fetcher* f) { fetcher_.store(f); }
  // Invariant 12: a non-empty answer refuses every compound with EROFS and
  // that reason. Set before compounds run (not thread-safe to change).
  void set_write_gate(std::function<std::string()> gate) { gate_ = std::move(gate); }
  // The endurant log around the commit's syncfs (daemon/checkpoint.h):
  // `before` gives the log position the syncfs covers, `after` retires the
  // log up to it before the commit point. Set before compounds run.
  void set_syncfs_hooks(std::function<uint64_t()> before, std::function<Status(uint64_t)> after) {
    before_syncfs_ = std::move(before);
    after_syncfs_ = std::move(after);
  }

  // Invariant 14: the endurant log that may carry commits (null: none).
  // Set before compounds run.
  void set_log(journal::Log* log);

  // Undoes every pending recovery record (newest first) and removes undo
  // images no record names. Must run before the mount serves requests
  // (invariant 9). report gets one line per action.
  Status recover(const std::function<void(const std::string&)>& report = {});

  CompoundReply run(const Compound& c, const Caller& who, const Progress& progress = {});

  // Makes every committed sync-off compound durable: syncfs, then delete
  // their RRs. Called before a FUSE fsync reports success.
  Status make_durable();
  bool has_lazy();

  // Background thread: removes txn/<id>/ of finished compounds and retires
  // sync-off compounds every `retire_interval_ms`.
  void start_background(unsigned retire_interval_ms = 5000);
  void stop_background();

 private:
  struct Locked;
  Result<LockSet> lock_plan(const Compound& c, struct Plan& plan);
  struct Borrowed {  // the space reserve, held for one compound's whole run
    store::SpaceReserve* r = nullptr;
    ~Borrowed() {
      if (r) r->give_back();  // refilled by the background thread
    }
  };
  // The protocol's steps (see the top of this file), each a function:
  // prepare (2-4), execute (5), roll_back (5, on a failure), commit (6-7).
  CompoundReply run_counted(const Compound& c, const Caller& who, const Progress& progress);  // run() less the metrics
  CompoundReply run_txn(const Compound& c, const Caller& who, struct Plan& plan, const Progress& progress);
  CompoundReply run_plain(const Compound& c, const Caller& who, struct Plan& plan, const Progress& progress);
  Status prepare(const Compound& c, const Caller& who, struct Plan& p, Fd* txn_dir, Fd* marker);
  Status prepare_any(const Compound& c, const Caller& who, struct Plan& p, Fd* txn_dir, Fd* marker,
                     Borrowed& borrowed);
  static bool frees_only(const Compound& c);
  std::pair<size_t, Status> execute(const Compound& c, const Caller& who, struct Plan& p, const Fd& txn_dir,
                                    const Fd& marker, CompoundReply& reply, const Progress& progress,
                                    Feed* feed);
  // feed: records it sent are retired before the RR goes (invariant 14).
  void roll_back(const struct Plan& p, uint32_t last, Feed* feed = nullptr) TCFS_EXCLUDES(durable_mu_, mu_);
  // feed, txn_dir: invariant 14's way when they allow it.
  Status commit(uint64_t id, struct Plan* p = nullptr, Feed* feed = nullptr, int txn_dir = -1)
      TCFS_EXCLUDES(durable_mu_, mu_);
  Status durable_by_syncfs() TCFS_REQUIRES(durable_mu_);
  Status durable_by_log(Feed& feed, int txn_dir, struct Plan* p) TCFS_REQUIRES(durable_mu_);
  static void log_steps(const struct Plan& p, size_t nops);
  Status make_images(uint64_t id, struct Plan& plan, const Caller& who, int* txn_fd, int* progress_fd, bool* copied);
  void invalidate_attrs(struct Plan& plan);
  void mark(const struct Plan& plan);
  void invalidate_rest(const struct Plan& plan);
  void flush_kernel(const struct Plan& plan);  // invariant 13
  Result<uint64_t> new_id() TCFS_EXCLUDES(id_mu_);
  void reclaim_later(uint64_t id) TCFS_EXCLUDES(mu_);
  void background(unsigned interval_ms);

  store::Store& store_;
  LockManager& locks_;
  std::atomic<Invalidator*> inv_;
  std::atomic<sync::Tracker*> tracker_{nullptr};
  std::atomic<sync::Fetcher*> fetcher_{nullptr};
  std::function<std::string()> gate_;  // invariant 12; set before serving
  std::function<uint64_t()> before_syncfs_;        // set before serving
  std::function<Status(uint64_t)> after_syncfs_;  // set before serving
  journal::Log* log_ = nullptr;                   // invariant 14; set before serving
  uint64_t log_limit_ = 0;                        // data bytes a commit through it may carry
  const bool log_orders_;                         // the store is XFS (logged.h)
  store::SpaceReserve reserve_;  // for compounds that only free space

  // Lock order: durable_mu_ -> mu_; id_mu_ is a leaf (taken alone).
  Mutex id_mu_;  // protects next_id_, id_limit_
  uint64_t next_id_ TCFS_GUARDED_BY(id_mu_) = 0, id_limit_ TCFS_GUARDED_BY(id_mu_) = 0;

  Mutex durable_mu_ TCFS_ACQUIRED_BEFORE(mu_);  // serializes commit() (commit points)
  Mutex mu_;                                     // protects lazy_, reclaim_, stop_
  std::condition_variable cv_;
  std::vector<uint64_t> lazy_ TCFS_GUARDED_BY(mu_);     // committed with sync off, RR still present
  std::vector<uint64_t> reclaim_ TCFS_GUARDED_BY(mu_);  // txn/<id>/ to remove
  bool stop_ TCFS_GUARDED_BY(mu_) = false;
  std::thread bg_;
};

}  // namespace tcfs::txn
