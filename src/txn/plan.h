// txn/plan.h — the planner: a dry run of a compound over a virtual view of
// the tree, before anything changes.
//
// Contract: plan() walks the compound's operations in order over a virtual
// tree (the real tree under root/, read lazily with lstat, overlaid with the
// effects of the earlier operations) and produces, without changing
// anything:
//  * the recovery record's steps and inode records (rr.h) for every
//    operation up to the first one that is predicted to fail: everything
//    undo needs, so the RR can be made durable before the first change
//    (DESIGN.md §5 invariant 1);
//  * for each such operation, the canonical path(s) it acts on (no symlinks,
//    no "..": what the executor resolves, and what undo uses);
//  * the lock set: Exclusive on every existing inode the compound changes
//    (files, directories whose entries change, attribute targets), Shared
//    on every existing directory its paths pass through (so nothing renames
//    a path from under it);
//  * the predicted failure (first failing op, errno, message), if any, and
//    the kernel caches to invalidate after commit.
// Paths that escape root/ (an absolute symlink, ".." above the root) fail
// with EXDEV before anything runs. The plan is exact only if nobody changes
// the tree between plan() and execution: the caller plans, takes the locks,
// and plans again under them (txn.cpp).
//
// Thread-safety: plan() is a pure function of the tree; call it from any
// thread. It reads the tree as the daemon (root).
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "tcfs/compound.h"
#include "txn/locks.h"
#include "txn/rr.h"

namespace tcfs::txn {

// How an operation disposes of a victim it removes or replaces.
enum class Victim : uint8_t {
  None,
  File,      // hard-link the victim into txn/<id>/<image> first (RelinkVictim)
  Tree,      // a directory (empty or not): renamed into txn/<id>/<image> (RestoreTree)
};

struct PlannedOp {
  std::string path, path2;  // canonical: Copy src/dst, Link old/new, Rename from/to; path = target of the op
  Victim victim = Victim::None;
  std::string victim_path;  // canonical path of the victim
  std::string image;        // txn/<id>/<image> for File / Tree victims
  bool created = false;     // Create/Copy: the file did not exist before (so O_EXCL is used)
  bool noop = false;        // rename of a name onto another name of the same inode, mkdir -p of a directory
  std::vector<std::string> mkdirs;  // Mkdir with parents: the directories to create, outermost first
  bool amend_exchange = false;      // Exchange involving an object created by this compound
  size_t exchange_step = 0;         // index of its UndoExchange step in rr.steps
};

// Where a compound is in the protocol (txn.h steps 2-8); each transition
// checks the invariant it relies on (util/check.h, "txn N").
enum class Phase {
  Planned,    // locked, nothing written (a failed prepare leaves only garbage)
  Prepared,   // images and RR durable (invariants 1-3): changes may start
  Executing,  // operations running as the caller
  Executed,   // every operation done, the RR still there (undo possible)
  Ended,      // committed (or queued as sync-off), rolled back, or partial (txn off)
};

struct Plan {
  Phase phase = Phase::Planned;  // set by TxnManager as the protocol goes
  RecoveryRecord rr;          // id, caller, steps, inodes (id/created/pid filled by the caller)
  std::vector<PlannedOp> ops;  // one per op up to (excluding) failed_op
  std::vector<LockKey> exclusive, shared;
  int failed_op = -1;  // predicted to fail
  int err = 0;
  std::string message;
  // The predicted failure stops the compound before any operation runs
  // (an immutable or append-only inode: txn.h invariant 11); otherwise the
  // operations before failed_op run and are undone.
  bool refuse = false;
  // After commit: entries to invalidate (parent inode, name; absent: the
  // name was free when the operation took it, so free when the compound
  // began unless an earlier entry of it freed the name: Invalidator::entry),
  // inodes whose attributes / data changed.
  struct Entry {
    LockKey dir;
    std::string name;
    bool absent = false;
  };
  std::vector<Entry> entries;
  std::vector<LockKey> attrs, data;
  // Existing regular files whose data or attributes change, with their
  // paths under root/ and sizes before the compound (Invalidator::retire,
  // renew).
  struct File {
    LockKey key;
    std::string path;
    uint64_t size = 0;
    bool retired = false;  // Invalidator::retire found a node of it: renew() it
  };
  std::vector<File> files;
  // The file handle of every existing object locked Exclusive (not in a
  // keys_only plan): with the inode number, the sync layer's identity of
  // the object its marks and fetches name (sync/sync.h 4a).
  std::map<LockKey, std::string> handles;
  // Where the compound's time went (TxnManager logs it at debug level):
  // each step's name and when it ended, in order.
  std::vector<std::pair<const char*, std::chrono::steady_clock::time_point>> steps;
  void step(const char* name) { steps.emplace_back(name, std::chrono::steady_clock::now()); }
};

// root_fd: the store's root/ directory. Image names are unique within the
// compound (data images go into one pack, txn/<id>/images; "v<n>" file
// victims, "t<n>" directory victims). keys_only: a first pass
// that only needs the lock set (no file handles, no xattr values).
Plan plan(int root_fd, const Compound& c, bool keys_only = false);

}  // namespace tcfs::txn
