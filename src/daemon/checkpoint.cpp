// daemon/checkpoint.cpp — checkpoints of the endurant log (checkpoint.h).
#include "daemon/checkpoint.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "util/durable.h"

namespace tcfs::daemon {

Status Checkpointer::now() {
  MutexLock g(mu_);
  if (!log_->dirty()) return {};
  uint64_t upto = log_->durable_seq();  // journal/log.h 4: taken before the syncfs
  if (::syncfs(root_fd_) != 0) return Status::from_errno("endurant log checkpoint: syncfs");
  TCFS_TRY(still_up(root_fd_, ".", "endurant log checkpoint"));
  return log_->checkpointed(upto);
}

Status Checkpointer::after_syncfs(uint64_t upto) {
  if (upto <= log_->ckpt_seq()) return {};
  return log_->checkpointed(upto);
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
    g.lock();
  }
}

}  // namespace tcfs::daemon
