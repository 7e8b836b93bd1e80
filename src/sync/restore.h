// sync/restore.h — rebuilding a store from its blobbers alone.
//
// Contract: restore() reads the remote image (the newest snapshot that
// reads back whole, then the journal chain after it, chain.h)
// and rebuilds it under root_fd, which must be an empty directory: every
// directory, symlink, device node and hard link as it was, with its mode,
// owner, xattrs and times; every non-empty regular file as a stub (a
// sparse file of the right size whose content the fetcher brings in on
// use, fetch.h). The sync state it records (ids, entries, block index,
// epoch, head) makes the new store continue the same remote image: its
// next round is the chain's next epoch, and its journals outrank those of
// any store that wrote the image before (a higher boot number, sync.h 6).
// Memory: records go through LMDB; the tree is built depth first.
// A failed restore leaves a half-built store, and says so.
//
// Thread-safety: one call at a time per store, before it is mounted.
#pragma once

#include <string>

#include "blob/objects.h"
#include "sync/state.h"

namespace tcfs::sync {

struct RestoreReport {
  uint64_t epoch = 0;
  std::string head;
  std::string snapshot;  // the snapshot it started from ("" = the first journal)
  uint64_t journals = 0, records = 0;
  uint64_t dirs = 0, files = 0, symlinks = 0, others = 0, links = 0, stub_bytes = 0;
};

Result<RestoreReport> restore(blob::ObjectStore& os, int root_fd, State& st);

}  // namespace tcfs::sync
