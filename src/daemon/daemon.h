// daemon/daemon.h — the composition root: one mounted store with everything
// that serves it (the tcfs daemon's life from open to the last sync round).
//
// Design note (numbered; code and tests cite them as "daemon.h N"):
//  1. Open order, before anything is served (Daemon::open): the store
//     (store/store.h: its lock refuses a second daemon), recovery of every
//     compound a crash left half done (txn.h 9), the check that no dir://
//     blobber lies inside the mountpoint (txn.h 10), then the blobber set
//     (blobber_set.h) with the sync state, the fetcher's stub list and,
//     after an unclean stop, a rescan (sync/capture.h), and the evictor.
//     A blobber that is down is a warning (changes queue locally), never a
//     refusal to mount.
//  2. Wiring: one txn::LockManager is shared by FUSE operations, compounds
//     and the sync/evict freeze; the Tracker gets the change marks of
//     both; the Fetcher is asked by both before they touch a stub;
//     make_durable (sync's barrier) syncs the store's filesystem and makes
//     lazy compounds durable, as an fsync through the mount does.
//  3. Start order (Daemon::start, once the kernel has the mount): the
//     invalidator goes to the compound manager, its background retirer
//     starts, then the sync rounds, then the evictor, and last the control
//     socket (compounds arrive only once everything they use runs).
//  4. Stop order (Daemon::stop, idempotent; from before_unmount, and again
//     after serve() returns): the control socket first (no new compound;
//     the ones running finish: control/server.h), then the evictor (its
//     pass in flight ends), then the syncer (the round in flight ends, then
//     a last round sends what was committed), then the invalidator is
//     dropped and the retirer stopped, and last the endurant log's
//     checkpointer runs its last checkpoint ("journal", when the log is
//     on). Each step is named in stop_trace().
//     Nothing stops while a step before it may still start work on it.
//
// Thread-safety: open/start/stop/run from one thread (main); the objects it
// hands out (executor, hooks) are used from FUSE and control threads until
// stop() returns.
#pragma once

#include <prometheus/collectable.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "control/server.h"
#include "daemon/blobber_set.h"
#include "daemon/checkpoint.h"
#include "fuse/session.h"
#include "store/store.h"
#include "sync/evict.h"
#include "sync/fetch.h"
#include "sync/syncer.h"
#include "sync/tracker.h"
#include "txn/txn.h"

namespace tcfs::daemon {

struct DaemonOptions {
  std::string store_dir;
  std::string mountpoint;  // absolute; checked against dir:// blobbers (daemon.h 1)
  control::Limits limits;
  sync::SyncOptions sync;
  sync::EvictOptions evict;
  bool reserve_set = false;  // evict.reserve_bytes given (else 5% of the filesystem, at most 1 GiB)
  // The endurant log (journal/log.h, checkpoint.h): stable writes go to it.
  // Off, a log left by an earlier mount is still replayed (then closed).
  // Unset (the default): on, but for a store filesystem under
  // kSmallForLog, and without a log (a warning) where one cannot be made.
  std::optional<bool> journal;
  uint64_t journal_bytes = journal::kDefaultBytes;  // its size bound (4 segments)
  std::string version = "tcfs";  // told to clients in hello
};

// The store's link to its blobbers while mounted (absent: local only).
struct Remote {
  RemoteConfig cfg;
  std::unique_ptr<blob::ObjectStore> objects;
  sync::Tracker tracker;
  std::unique_ptr<sync::Syncer> syncer;
  std::unique_ptr<sync::Fetcher> fetcher;
  std::unique_ptr<sync::Evictor> evictor;
  int stage_fd = -1;
  ~Remote();
};

// The daemon never does I/O through its own mount (txn.h invariant 10):
// EINVAL naming both when the mountpoint is inside the store (the daemon
// would walk into the mount from root/) or the store inside the
// mountpoint (its paths would lead into the mount once it is up).
Status check_apart(const std::string& store_dir, const std::string& mountpoint);
// The same for every dir:// blobber of cfg.
Status check_blobbers_apart(const RemoteConfig& cfg, const std::string& mountpoint);

class Daemon {
 public:
  // daemon.h 1. Errors name the store and the step.
  static Result<std::unique_ptr<Daemon>> open(const DaemonOptions& opt);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // daemon.h 2: what FUSE operations share with compounds and sync.
  fusefs::Hooks hooks();
  // daemon.h 3. inv: the live session's kernel-cache invalidator (or a
  // test's); valid until stop() returns. A control socket that cannot be
  // bound is logged: the mount still serves, without compounds.
  void start(txn::Invalidator& inv);
  // daemon.h 4.
  void stop();
  // Mounts on cfg.mountpoint and serves until unmounted (start at mount,
  // stop before unmount and after); `ready` runs after start().
  Status run(const fusefs::MountConfig& cfg, const std::function<void()>& ready);

  store::Store& store() { return *store_; }
  txn::TxnManager& txns() { return *tm_; }
  Remote* remote() { return remote_.get(); }
  Checkpointer* checkpointer() { return ckpt_.get(); }  // null: the endurant log is off
  std::shared_ptr<control::Executor> executor() { return exec_; }
  // Steps of the last stop(), in order (daemon.h 4).
  const std::vector<std::string>& stop_trace() const { return trace_; }

 private:
  Daemon() = default;
  Status open_remote();
  Status open_log();
  bool want_log() const;  // the log's option, or its default for this store

  DaemonOptions opt_;
  std::unique_ptr<store::Store> store_;
  txn::LockManager locks_;
  std::unique_ptr<Checkpointer> ckpt_;  // before tm_: compounds' hooks use it
  std::unique_ptr<txn::TxnManager> tm_;
  std::unique_ptr<Remote> remote_;
  std::shared_ptr<control::Executor> exec_;
  std::unique_ptr<control::ControlServer> control_;
  std::shared_ptr<prometheus::Collectable> metrics_;  // status_metrics.h
  bool started_ = false;
  std::vector<std::string> trace_;
};

}  // namespace tcfs::daemon
