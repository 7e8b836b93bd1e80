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
// Which round (chain.h 2-5; numbered here as "restore.h N"):
//  1. The restore reaches the newest round the chain gives back from the
//     newest usable snapshot. When the blobbers prove a later round that
//     cannot be read (a cut walk, chain.h 3), it fails with EIO before it
//     builds anything, naming the round it reached and each object it could
//     not read with the reason; the store's tree stays empty, so the same
//     store can be used again.
//  2. With accept_older it restores the round it reached instead, and the
//     report says so (older, unreadable): never silently.
//
// Thread-safety: one call at a time per store, before it is mounted.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "blob/objects.h"
#include "sync/chain.h"
#include "sync/state.h"

namespace tcfs::sync {

struct RestoreOptions {
  bool accept_older = false;  // restore.h 2
  // follow.h 5: load the image into the sync databases (objects stay in
  // kRestoreDb) and record epoch and head; build no tree.
  bool image_only = false;
  // Time travel (follow.h 7): the round to restore (0: the newest); the
  // newest snapshot at or before it, then the journals up to it.
  uint64_t stop_at = 0;
  // Progress, for a bar (tools/tcfs/progress.h): ("journals", done, of)
  // as each journal after the snapshot is loaded, then ("files", made, 0)
  // every few hundred objects made in the tree (their number is not known
  // ahead), called on the restoring thread.
  std::function<void(const char* phase, uint64_t done, uint64_t total)> progress;
  // chain.h 3: how many times a cut chain is walked again, kCutPauseMs
  // apart, before the cut counts (a writer may be between its chunks and
  // its end). Tests that cut the chain on purpose ask for fewer.
  int settle = kCutRetries;
};

struct RestoreReport {
  uint64_t epoch = 0;         // the round reached
  std::string head;           // its journal
  std::string snapshot;  // the snapshot it started from ("" = the first journal)
  uint64_t journals = 0, records = 0;
  uint64_t dirs = 0, files = 0, symlinks = 0, others = 0, links = 0, stub_bytes = 0;
  bool older = false;                   // restore.h 2: a later round exists and could not be read
  std::vector<std::string> unreadable;  // what cut the chain, and why (chain.h 3)
};

Result<RestoreReport> restore(blob::ObjectStore& os, int root_fd, State& st, const RestoreOptions& opt = {});
// follow.h 9: a follower's image rebuilt in place (opt.image_only): its
// object and name records are cleared and loaded again from the blobbers,
// and its round recorded. "rebuilding" in the sync db marks the work from
// the clearing to the end, so that an image a crash left half-built is
// rebuilt again (rebuild_pending) before it is served.
Result<RestoreReport> rebuild_image(blob::ObjectStore& os, int root_fd, State& st, RestoreOptions opt);
Result<bool> rebuild_pending(State& st);
// follow.h 6 (promote): builds the tree and synced state under root_fd
// (empty) from a follower's image in st, as restore() would have from the
// blobbers at the image's round. The image's object records are dropped.
Result<RestoreReport> build_from_image(int root_fd, State& st);

}  // namespace tcfs::sync
