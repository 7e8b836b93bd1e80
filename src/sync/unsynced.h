// sync/unsynced.h — what a store changed after its last synced round, copied
// out (`tcfs export-unsynced`): the way back for a fenced writer's local
// changes (sync.h 10), so that nothing is lost silently.
//
// Contract: export_unsynced(root_fd, st, out_fd) compares the store's tree
// with its synced state (state.h) and writes under the empty directory
// out_fd:
//   tree/PATH      a copy of every regular file and symlink that is new
//                  (no synced record of that object) or changed (its ctime
//                  is not the one its last round captured), with the
//                  directories leading to it, modes and times kept;
//   manifest.txt   one line per path: "new PATH", "changed PATH", or
//                  "removed PATH" (a synced name the tree no longer has; a
//                  removed directory is one line for its whole subtree).
// A stub (content on the blobbers only) is never changed locally and is
// never copied. Empty new directories are listed ("new PATH/") and made.
// Changes that cannot be told apart from the synced state (content changed
// and changed back) are reported as changed: the export errs towards more.
// Errors name the path. Nothing in the store is changed.
//
// Thread-safety: one call at a time; the store must not be mounted (the
// store's lock, held by the caller, makes sure of it).
#pragma once

#include <cstdint>
#include <string>

#include "sync/state.h"

namespace tcfs::sync {

struct UnsyncedReport {
  uint64_t added = 0, changed = 0, removed = 0, bytes = 0;
  uint64_t epoch = 0;  // the last synced round
};

Result<UnsyncedReport> export_unsynced(int root_fd, State& st, int out_fd);

}  // namespace tcfs::sync
