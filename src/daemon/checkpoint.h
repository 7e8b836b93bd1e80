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
// Thread-safety: all functions from any thread; now() calls are serialised
// by mu_ (a leaf but for the log's own lock, taken inside it).
#pragma once

#include <condition_variable>
#include <memory>
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

 private:
  void loop() TCFS_EXCLUDES(wake_mu_);

  std::unique_ptr<journal::Log> log_;
  int root_fd_;
  unsigned interval_ms_;
  Mutex mu_;  // one checkpoint at a time
  Mutex wake_mu_;  // protects kicked_, stopping_
  std::condition_variable cv_;
  bool kicked_ TCFS_GUARDED_BY(wake_mu_) = false;
  bool stopping_ TCFS_GUARDED_BY(wake_mu_) = false;
  std::thread thread_;
};

}  // namespace tcfs::daemon
