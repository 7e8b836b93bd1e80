// fuse/kernel_ctimes.cpp — see kernel_ctimes.h.
#include "fuse/kernel_ctimes.h"

namespace tcfs::fusefs {
namespace {

bool same(const struct timespec& a, const struct timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

}  // namespace

void KernelCtimes::record(const struct stat& st, const struct timespec& kernel) {
  MutexLock g(mu_);
  record_locked(st, kernel);
}

void KernelCtimes::carry(const struct timespec& before, const struct stat& after) {
  MutexLock g(mu_);
  auto it = pairs_.find(after.st_ino);
  const struct timespec kernel = it != pairs_.end() && same(it->second.backing, before) ? it->second.kernel : before;
  record_locked(after, kernel);
}

void KernelCtimes::record_locked(const struct stat& st, const struct timespec& kernel) {
  auto it = pairs_.find(st.st_ino);
  if (it != pairs_.end()) {
    order_.splice(order_.end(), order_, it->second.pos);  // recorded again: the newest now
    it->second.backing = st.st_ctim;
    it->second.kernel = kernel;
  } else {
    pairs_.emplace(st.st_ino, Pair{st.st_ctim, kernel, order_.insert(order_.end(), st.st_ino)});
  }
  while (pairs_.size() > kMax) {  // kernel_ctimes.h 3: the oldest first
    pairs_.erase(order_.front());
    order_.pop_front();
  }
}

void KernelCtimes::apply(struct stat& st) {
  MutexLock g(mu_);
  if (pairs_.empty()) return;
  auto it = pairs_.find(st.st_ino);
  if (it == pairs_.end()) return;
  if (same(it->second.backing, st.st_ctim)) {
    st.st_ctim = it->second.kernel;  // kernel_ctimes.h 2
    return;
  }
  order_.erase(it->second.pos);  // kernel_ctimes.h 2: changed since
  pairs_.erase(it);
}

size_t KernelCtimes::size() {
  MutexLock g(mu_);
  return pairs_.size();
}

}  // namespace tcfs::fusefs
