// daemon/checkpoint.h — the endurant log's checkpoints (journal/log.h 4)
// for a mounted store.
//
// Contract: a Checkpointer owns the store's open log. now() runs one
// checkpoint: upto = the log's durable seq, syncfs of the store, the
// still-up check (util/durable.h), then the log's CKPT record. It runs
// every interval while the log holds records not yet retired, at once when
// the log is full (kick(), the log's on_full), at stop, and when others
// ask: before eviction punches a file (no record may replay into a stub)
// and at every compound's commit (txn_hooks: upto taken before the
// compound's syncfs, the CKPT written after it and before the commit
// point, so no replay puts back data that a committed compound replaced).
//
// figures() are the log's rates over the loop's last interval (records
// and batches per second, the mean batch) and the checkpoint lag: how
// long the oldest record not yet retired has been waiting (measured from
// the first loop pass that saw the log hold records; 0 when it holds none).
//
// Thread-safety: all functions from any thread; now() calls are serialised
// by mu_ (a leaf but for the log's own lock, taken inside it); fig_mu_ (a
// leaf) protects the figures' samples.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <optional>
#include <thread>

#include "journal/log.h"
#include "util/mutex.h"

namespace tcfs::daemon {

class Checkpointer {
 public:
  Checkpointer(std::unique_ptr<journal::Log> log, int root_fd, unsigned interval_ms)
      : log_(std::move(log)), root_fd_(root_fd), interval_ms_(interval_ms) {}
  ~Checkpointer() { stop(); }
  journal::Log& log() { return *log_; }
  void start();
  void stop();  // a last checkpoint, then the thread ends
  void kick();
  Status now() TCFS_EXCLUDES(mu_);
  // The compound commit's hooks: before its syncfs (the seq covered) and after it (the CKPT).
  uint64_t before_syncfs() { return log_->durable_seq(); }
  Status after_syncfs(uint64_t upto);
  struct Figures {
    double records_per_s = 0, batches_per_s = 0, mean_batch = 0, ckpt_lag_s = 0;
  };
  Figures figures() TCFS_EXCLUDES(fig_mu_);

 private:
  using Clock = std::chrono::steady_clock;
  void loop() TCFS_EXCLUDES(wake_mu_);
  void sample() TCFS_EXCLUDES(fig_mu_);

  std::unique_ptr<journal::Log> log_;
  int root_fd_;
  unsigned interval_ms_;
  Mutex mu_;  // one checkpoint at a time
  Mutex wake_mu_;  // protects kicked_, stopping_
  std::condition_variable cv_;
  bool kicked_ TCFS_GUARDED_BY(wake_mu_) = false;
  bool stopping_ TCFS_GUARDED_BY(wake_mu_) = false;
  std::thread thread_;
  Mutex fig_mu_;  // protects the samples below
  Clock::time_point at_ TCFS_GUARDED_BY(fig_mu_){};  // the last sample (none yet: epoch)
  uint64_t records_ TCFS_GUARDED_BY(fig_mu_) = 0, batches_ TCFS_GUARDED_BY(fig_mu_) = 0;
  Figures fig_ TCFS_GUARDED_BY(fig_mu_);
  std::optional<Clock::time_point> dirty_since_ TCFS_GUARDED_BY(fig_mu_);
};

}  // namespace tcfs::daemon
