// daemon/follower.h — a follower store mounted: the read-only view of a
// writer's chain (sync/follow.h, fuse/view.h) and the poller that moves it
// from round to round.
//
// Design note (numbered; cited as "follower.h N"):
//  1. Open: the store (its lock refuses a second daemon), its role
//     ("follower", recorded by `tcfs init --follow`), the blobber set, the
//     image's round, and the block cache under <store>/cache (bounded by
//     the cache size). A blobber that is down is a warning: the follower
//     serves its current round and reports the lag.
//  2. The poller runs every poll interval (default 1 s); each poll applies every new round in order
//     (follow.h 2, 4), never past `at` (time travel). A poll that stops
//     short logs the reason once per distinct reason (warn) and keeps the
//     round it has; the lag (rounds marked but not shown, and seconds since
//     the follower first saw itself behind) is in `tcfs status`.
//  3. Control requests: status (role, round, lag, writer: `tcfs wait`
//     polls it); compounds and sync are refused with EROFS naming the
//     writer's chain.
//  6. Each poll also keeps the follower's note (follow.h 8) current: its
//     round, expiring kNoteTtl seconds later, rewritten when the round
//     changes and a third of the way to expiry; gc keeps that round.
//  7. Before each switch the poller waits for the view's quiet moment, up
//     to switch_wait (fuse/view.h 5); status counts the switches made
//     quiet and those made when the wait ran out.
//  4. Stop: the poller first (its poll in flight ends, a switch wait is
//     cut short), then the control
//     socket; the view stops with the FUSE session.
//  5. Promote (the store unmounted): the image catches up with the newest
//     marked round, becomes the store's tree (stubs) and synced state as a
//     restore at that round would (restore.h build_from_image), and the
//     store's role becomes writer with a new writer id. Its rounds extend
//     the chain from there; if the old writer is still alive, whichever
//     creates a round's marker first wins and the other is fenced
//     (sync.h 10): nothing is lost, the loser's changes stay exportable.
//     Without --force it refuses when the chain cannot be followed to its
//     newest marked round (the message names why); --force promotes at the
//     round it reached and takes the next round at the first mount (a
//     rescan marks the root), which fences a writer that is gone or hung.
//
// Thread-safety: open/run from the main thread; status() from control
// threads (mu_ guards the poll figures).
#pragma once

#include <prometheus/collectable.h>

#include <condition_variable>
#include <memory>
#include <string>
#include <thread>

#include "control/server.h"
#include "daemon/blobber_set.h"
#include "fuse/session.h"
#include "fuse/view.h"
#include "store/store.h"
#include "sync/block_cache.h"
#include "sync/follow.h"
#include "util/mutex.h"

namespace tcfs::daemon {

constexpr int64_t kNoteTtl = 3600;  // follower.h 6

struct FollowerOptions {
  std::string store_dir, mountpoint;
  uint64_t cache_bytes = 0;  // 0: 1 GiB
  unsigned poll_ms = 1000;
  unsigned switch_wait_ms = 500;  // fuse/view.h 5 (0: switch at once)
  std::string at;            // time travel (sync/follow.h 7): stay at this round or time ("": the newest)
  std::string version = "tcfs";
};

// Whether the store at dir is a follower (sync_meta "role"); ENOENT-free:
// a store that does not exist yet is not one.
Result<bool> is_follower(const std::string& store_dir);

// `tcfs promote` (follower.h 5): the follower store at store_dir (not
// mounted) becomes the chain's writer at its newest round.
struct PromoteReport {
  uint64_t epoch = 0;      // the round the store continues from
  std::string head;
  uint64_t caught_up = 0;  // rounds applied first
  bool forced = false;     // the next round is taken at the first mount
  std::string stopped;     // force: why the chain could not be followed further
};
Result<PromoteReport> promote(const std::string& store_dir, bool force);

class Follower {
 public:
  static Result<std::unique_ptr<Follower>> open(const FollowerOptions& o);
  ~Follower();
  Status run(const fusefs::MountConfig& cfg, const std::function<void()>& ready);
  void start();
  void stop();

  control::Json status() TCFS_EXCLUDES(mu_);
  sync::Image& image() { return *image_; }
  blob::ObjectStore& objects() { return *objects_; }
  uint64_t poll_once() TCFS_EXCLUDES(mu_);  // one poll now; the image's epoch after it
  void announce(uint64_t epoch);  // follower.h 6 (poller thread)
  void before_switch() TCFS_EXCLUDES(mu_);  // follower.h 7 (poller thread)

 private:
  Follower() = default;
  void loop() TCFS_EXCLUDES(mu_);
  uint64_t epoch() TCFS_EXCLUDES(mu_);

  FollowerOptions opt_;
  uint64_t at_ = 0;  // opt_.at resolved (0: none)
  std::unique_ptr<store::Store> store_;
  RemoteConfig cfg_;
  std::unique_ptr<blob::ObjectStore> objects_;
  std::unique_ptr<sync::State> state_;
  std::unique_ptr<sync::Image> image_;
  std::unique_ptr<sync::BlockCache> cache_;
  std::unique_ptr<control::ControlServer> control_;
  std::shared_ptr<prometheus::Collectable> metrics_;  // status_metrics.h, while started
  std::thread poller_;
  Mutex poll_mu_;  // one poll at a time (taken before mu_, never inside it)
  Mutex mu_;       // protects the figures below and stopping_
  std::condition_variable cv_;
  bool stopping_ TCFS_GUARDED_BY(mu_) = false;
  uint64_t newest_ TCFS_GUARDED_BY(mu_) = 0;     // newest epoch seen marked
  int64_t behind_since_ TCFS_GUARDED_BY(mu_) = 0;  // when it first saw itself behind (0: not behind)
  uint64_t polls_ TCFS_GUARDED_BY(mu_) = 0, rounds_applied_ TCFS_GUARDED_BY(mu_) = 0;
  // fuse/view.h 5: switches made at a quiet moment / after the whole switch_wait.
  uint64_t switches_quiet_ TCFS_GUARDED_BY(mu_) = 0, switches_forced_ TCFS_GUARDED_BY(mu_) = 0;
  fusefs::Activity activity_;  // the view's, for the switch gate
  std::string last_error_ TCFS_GUARDED_BY(mu_);
  // follow.h 8: this follower's note on the blobbers (poller thread only).
  std::string follower_id_;
  uint64_t announced_round_ = 0;
  int64_t announced_at_ = 0;
  bool started_ = false;
};

}  // namespace tcfs::daemon
