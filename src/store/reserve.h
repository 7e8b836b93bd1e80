// store/reserve.h — a few MiB of the store's filesystem held back so that a
// compound that only frees space can still run on a full store.
//
// A compound needs a little space before it changes anything: its id block
// and recovery record in LMDB, txn/<id>/ and its progress marker. On a full
// store that space is not there, so without a reserve even a compound that
// only removes files would be refused, where a plain rm works. The reserve
// is the file <store>/reserve, allocated (fallocate) at open; borrow()
// frees its blocks for the compound that needs them, refill() allocates
// them again once space is back (the background retirer calls it).
//
// Thread-safety: every method may be called from any thread (mu_ protects
// the file's state; it is a leaf lock, held across fallocate/ftruncate only).
#pragma once

#include <cstdint>

#include "util/fd.h"
#include "util/mutex.h"

namespace tcfs::store {

class SpaceReserve {
 public:
  static constexpr uint64_t kDefaultBytes = 16ull << 20;
  // Opens or creates <dir_fd>/reserve and tries to allocate bytes.
  SpaceReserve(int dir_fd, uint64_t bytes = kDefaultBytes);
  // Frees the reserved blocks for the caller; false if there was nothing
  // to free. While a borrower holds the space (until give_back()), refill()
  // does nothing: it would take the space back from under the compound.
  bool borrow();
  void give_back();
  // Allocates the reserve again if it was released or never filled and
  // nobody borrows it; true when it is whole.
  bool refill();

 private:
  Mutex mu_;  // protects fd_, whole_ and borrowers_
  Fd fd_ TCFS_GUARDED_BY(mu_);
  uint64_t bytes_;  // set at construction, then read-only
  bool whole_ TCFS_GUARDED_BY(mu_) = false;
  unsigned borrowers_ TCFS_GUARDED_BY(mu_) = 0;
};

}  // namespace tcfs::store
