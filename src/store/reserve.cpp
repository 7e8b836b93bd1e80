// store/reserve.cpp — the space reserve (reserve.h).
#include "store/reserve.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tcfs::store {

SpaceReserve::SpaceReserve(int dir_fd, uint64_t bytes)
    : fd_(openat(dir_fd, "reserve", O_RDWR | O_CREAT | O_CLOEXEC, 0600)), bytes_(bytes) {
  if (!fd_) spdlog::warn("space reserve: open <store>/reserve: {}", strerror(errno));
  refill();
}

bool SpaceReserve::refill() {
  MutexLock g(mu_);
  if (whole_ || !fd_ || borrowers_) return whole_;
  // Mode 0: real blocks, so the space is held, not merely promised.
  if (fallocate(fd_.get(), 0, 0, static_cast<off_t>(bytes_)) == 0) {
    whole_ = true;
  } else if (errno != ENOSPC) {
    spdlog::debug("space reserve: fallocate: {}", strerror(errno));
  }
  return whole_;
}

bool SpaceReserve::borrow() {
  MutexLock g(mu_);
  if (!fd_) return false;
  off_t size = lseek(fd_.get(), 0, SEEK_END);
  whole_ = false;
  if (size <= 0) return false;
  if (ftruncate(fd_.get(), 0) != 0) return false;
  ++borrowers_;  // only a successful borrow is given back
  // The freed blocks must be usable now, not after the next log flush.
  fdatasync(fd_.get());
  spdlog::info("space reserve: released {} bytes of the store for a compound that frees space", size);
  return true;
}

void SpaceReserve::give_back() {
  MutexLock g(mu_);
  if (borrowers_) --borrowers_;
}

}  // namespace tcfs::store
