// txn/undo.h — the undo executor, shared by online rollback, start-up
// recovery and the offline tcfs-undo tool (DESIGN.md §5 invariant 9).
//
// Contract: undo(ctx, rr, upto) brings the tree back to its state before the
// compound `rr` describes, assuming only that the compound's operations
// 0..upto (or any prefix of them, or none) ran, each possibly halfway:
//   1. the namespace steps of those operations, last first (rr.h);
//   2. the inode records: data cloned back into the original inode (found
//      by file handle) and truncated to the recorded size, then xattrs,
//      owner, mode and times (invariant 4).
// Every step checks before it acts, so running undo again after a crash in
// the middle of it converges to the same tree (invariant 5). undo() does
// not sync and does not delete the RR: the caller syncs the filesystem,
// then deletes the RR (finish_undo() does both and reclaims txn/<id>/).
// A step that cannot be carried out (e.g. an undo image is missing) is
// reported and the rest still run; the result is then an error, and the RR
// must be kept for a human to look at.
//
// Progress marker. Undo steps are check-then-act, which is exact only if
// the tree is in the state right around the step's operation — not in an
// older state, where a path a later operation created may still hold the
// pre-compound object it replaced. So txn/<id>/progress records how far the
// compound got, in its timestamps (a metadata update, journaled in order
// with the tree's own changes on the same filesystem, so after a crash or
// power cut it is exactly as current as they are, and it costs one
// futimens per operation):
//   mtime = k      operations 0..k-1 completed; operation k may have started;
//                  so may later operations without undo steps of their own
//                  (data and attribute changes: not marked, since the inode
//                  records restore them whatever the marker says, and no
//                  step of theirs can be missed)
//   atime = k + 1  undo has finished the steps of operations k.. (0: none)
// Recovery undoes only operations that may have run, and resumes an
// interrupted undo where it stopped.
//
// Markless compounds (markless()): when every namespace step is the
// removal of a name the compound created (RemoveCreated: create, mkdir,
// symlink, mknod, link), no two of one path, the marker is never advanced
// and undo takes the steps of every operation. It is exact without it:
// each such name was absent when the compound began (the plan holds its
// locks from the start), and no operation of the compound removes or
// renames anything (those have other steps), so at any moment the name
// exists if and only if its operation ran; "remove it if it is there" is
// then right whether or not it ran. It spares the batch-create compound
// one timestamp transaction per file.
//
// Crash points: undo.before_step, undo.after_step, undo.after_inodes,
// undo.after_sync, undo.after_delete.
//
// Thread-safety: runs on one thread, as root, with the compound's locks
// held (online) or with the store locked against any daemon (offline).
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <string>

#include "meta/env.h"
#include "txn/rr.h"

namespace tcfs::txn {

struct UndoCtx {
  int root_fd = -1;     // <store>/root
  int txn_root_fd = -1;  // <store>/txn
  bool dry_run = false;  // report what would be done, change nothing
  // One line per action taken (or, dry-run, that would be taken).
  std::function<void(const std::string&)> report;
};

struct UndoStats {
  unsigned applied = 0, skipped = 0, failed = 0;
};

constexpr uint32_t kAllOps = std::numeric_limits<uint32_t>::max();

// The rule above, from the record alone (recovery and execution agree).
bool markless(const RecoveryRecord& rr);

// Creates txn/<id>/progress saying "operation 0 may have started", owned by
// owner (so the caller's thread can advance it), and returns its fd.
Result<int> create_progress(int txn_fd, uid_t owner_uid, gid_t owner_gid);
// Operations before k completed; k may start (futimens on the fd).
Status mark_ran(int progress_fd, uint32_t k);

// Undoes operations 0..upto of rr (kAllOps: as far as its progress marker
// says the compound got). Errors are counted in stats and the
// first one is returned; every step is attempted.
Status undo(const UndoCtx& ctx, const RecoveryRecord& rr, uint32_t upto, UndoStats& stats);

// Makes an undo durable and forgets the compound: syncfs, delete the RR
// (synced), remove txn/<id>/.
Status finish_undo(const UndoCtx& ctx, meta::Env& env, uint64_t id);

// Recovery (invariant 9): undoes every pending RR, newest first (a later
// compound may have changed what an earlier one did), making each undo
// durable and deleting its RR, then removes every txn/<id>/ that no RR
// names. With ctx.dry_run, reports and changes nothing. Safe to interrupt
// and run again.
Status recover_all(const UndoCtx& ctx, meta::Env& env);

// Removes txn/<id>/ and everything in it (undo images of a committed or
// undone compound). Missing is fine.
Status remove_txn_dir(int txn_root_fd, uint64_t id);
// Ids of every txn/<id>/ directory present.
std::vector<uint64_t> list_txn_dirs(int txn_root_fd);

}  // namespace tcfs::txn
