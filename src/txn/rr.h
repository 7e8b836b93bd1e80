// txn/rr.h — recovery records (RRs): everything undo needs, stored in LMDB.
//
// A recovery record describes one compound that may have changed the tree
// and has not committed. It is written, synced, before the compound's first
// change (DESIGN.md §5 invariants 1-2) and deleted, synced, at the commit
// point (invariant 6). Whoever finds an RR — the daemon at start-up, the
// online undo after a failed operation, tcfs-undo — runs undo() (undo.h) on
// it and deletes it; undo is idempotent (invariant 5), so an interrupted
// undo is simply run again.
//
// An RR holds two kinds of undo data:
//  * Steps: namespace changes, one or more per operation, undone in reverse
//    order. Each step is a check-then-act on paths (relative to root/) that
//    is a no-op when its operation never ran or was already undone:
//      RemoveCreated  the op created `path`: remove it if present
//      RelinkVictim   the op unlinked or replaced the file `path`, whose inode
//                     was first hard-linked as txn/<id>/<image>: link it back
//                     if `path` is absent
//      RestoreTree    the op removed (or renamed something over) the
//                     directory `path`, after renaming it whole to
//                     txn/<id>/<image>: rename it back if `path` is absent
//      UndoRename     the op renamed `path` -> `path2`: rename back if `path2`
//                     is present and `path` absent
//      UndoExchange   the op exchanged `path` and `path2`: exchange again if
//                     the object at `path` is `id` (the one that came from
//                     `path2`)
//  * Inode records: the pre-compound state of each existing inode the
//    compound changes in place (data via a reflink image: a block-aligned
//    range of the compound's pack file txn/<id>/<image>,
//    size, mode, owner, times, xattrs), restored into the same inode —
//    found by its file handle — after every step has been undone
//    (invariant 4).
//
// Thread-safety: plain values; the LMDB functions follow meta/env.h.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "meta/env.h"
#include "tcfs/status.h"

namespace tcfs::txn {

struct Identity {
  uint64_t dev = 0, ino = 0;
  bool operator==(const Identity&) const = default;
};

struct XattrPre {
  std::string name;
  bool present = false;
  std::string value;
};

// Attributes restored on an inode (or on a re-created directory).
struct Attrs {
  uint32_t mode = 0;  // permission bits and S_ISUID/S_ISGID/S_ISVTX
  uint32_t uid = 0, gid = 0;
  int64_t atime_sec = 0, mtime_sec = 0;
  uint32_t atime_nsec = 0, mtime_nsec = 0;
  std::vector<XattrPre> xattrs;  // those the compound changed
};
Attrs attrs_of(const struct stat& st);

enum class StepKind : uint8_t { RemoveCreated, RelinkVictim, RestoreTree, UndoRename, UndoExchange };
const char* step_kind_name(StepKind k);

struct Step {
  StepKind kind = StepKind::RemoveCreated;
  uint32_t op = 0;  // index of the operation in its compound
  std::string path, path2, image;
  Identity id;  // UndoExchange
};

struct InodeRecord {
  Identity id;
  uint32_t type = 0;       // S_IFMT bits
  std::string handle;      // struct file_handle bytes (name_to_handle_at)
  std::string path;        // path at compound start (for messages only)
  bool has_data = false;   // data image: `size` bytes at `image_off` in txn/<id>/<image>
  std::string image;
  uint64_t image_off = 0;
  uint64_t size = 0;
  bool has_attrs = false;  // mode, owner, times (always recorded with data)
  Attrs attrs;
};

struct RecoveryRecord {
  uint64_t id = 0;
  int64_t created = 0;  // unix seconds
  int32_t pid = 0;
  uint32_t uid = 0, gid = 0;
  uint32_t nops = 0;
  bool sync = true;
  std::string summary;  // e.g. "3 write, 1 rename" for tcfs-undo --list
  std::vector<Step> steps;
  std::vector<InodeRecord> inodes;
};

std::string encode_rr(const RecoveryRecord& rr);
Result<RecoveryRecord> decode_rr(std::string_view bytes);

// Name of the RR database in the store's LMDB environment and its keys
// (8-byte big-endian ids, so a scan returns them oldest first).
constexpr const char* kRrDb = "rr";
std::string rr_key(uint64_t id);

// Writes rr with a synced commit (invariant 2). Fault site "txn.rr_put".
Status put_rr(meta::Env& env, const RecoveryRecord& rr);
// The same with rr already encoded (encode_rr(rr), whose id is `id`).
Status put_rr(meta::Env& env, uint64_t id, std::string_view encoded);
// Deletes the RRs with a synced commit: the commit point (invariant 6).
Status delete_rrs(meta::Env& env, const std::vector<uint64_t>& ids);
// Whether the RR of compound `id` is in LMDB (false also when it cannot be read).
bool has_rr(meta::Env& env, uint64_t id);
// Every pending RR, oldest first.
Result<std::vector<RecoveryRecord>> list_rrs(meta::Env& env);
// Next unused compound id (persisted, so ids never repeat across restarts).
Result<uint64_t> next_txn_id(meta::Env& env);

}  // namespace tcfs::txn
