// daemon/checkpoint.cpp — checkpoints of the endurant log (checkpoint.h).
#include "daemon/checkpoint.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "util/durable.h"
#include "util/fault.h"

namespace tcfs::daemon {

Status Checkpointer::now() {
  MutexLock g(mu_);
  if (!log_->dirty()) return {};
  uint64_t upto = log_->durable_seq();  // journal/log.h 4: taken before the syncfs
  if (::syncfs(root_fd_) != 0) return Status::from_errno("endurant log checkpoint: syncfs");
  TCFS_TRY(still_up(root_fd_, ".", "endurant log checkpoint"));
  TCFS_CRASH_POINT("journal.ckpt_after_syncfs");
  TCFS_TRY(log_->checkpointed(upto));  // the commit point of a checkpoint: records <= upto retired
  TCFS_CRASH_POINT("journal.after_ckpt");
  return {};
}

Status Checkpointer::after_syncfs(uint64_t upto) {
  if (upto <= log_->ckpt_seq()) return {};
  return log_->checkpointed(upto);
}

void Checkpointer::sample() {
  journal::Stats s = log_->stats();
  const bool dirty = log_->dirty();
  const Clock::time_point t = Clock::now();
  MutexLock g(fig_mu_);
  if (at_ != Clock::time_point{}) {
    const double dt = std::chrono::duration<double>(t - at_).count();
    if (dt > 0) {
      fig_.records_per_s = static_cast<double>(s.records - records_) / dt;
      fig_.batches_per_s = static_cast<double>(s.batches - batches_) / dt;
    }
  }
  at_ = t, records_ = s.records, batches_ = s.batches;
  fig_.mean_batch = s.batches ? static_cast<double>(s.records) / static_cast<double>(s.batches) : 0;
  if (!dirty) dirty_since_.reset();
  else if (!dirty_since_) dirty_since_ = t;
}

Checkpointer::Figures Checkpointer::figures() {
  MutexLock g(fig_mu_);
  Figures f = fig_;
  f.ckpt_lag_s = dirty_since_ ? std::chrono::duration<double>(Clock::now() - *dirty_since_).count() : 0;
  return f;
}

void Checkpointer::kick() {
  {
    MutexLock g(wake_mu_);
    kicked_ = true;
  }
  cv_.notify_all();
}

void Checkpointer::start() {
  {
    MutexLock g(wake_mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { loop(); });
}

void Checkpointer::stop() {
  if (!thread_.joinable()) return;
  {
    MutexLock g(wake_mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  if (Status st = now(); !st) spdlog::warn("endurant log: last checkpoint at stop: {}", st.message());
}

void Checkpointer::loop() {
  UniqueLock g(wake_mu_);
  for (;;) {
    g.wait_for(cv_, std::chrono::milliseconds(interval_ms_),
               [&]() TCFS_REQUIRES(wake_mu_) { return kicked_ || stopping_; });
    if (stopping_) return;
    kicked_ = false;
    g.unlock();
    if (Status st = now(); !st) spdlog::warn("endurant log: checkpoint: {}", st.message());
    sample();
    g.lock();
  }
}

}  // namespace tcfs::daemon
