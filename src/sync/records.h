// sync/records.h — the records of the remote namespace (sync.h 5).
//
// Contract: a journal or snapshot is a sequence of records, each encoded as
// one MessagePack map (nlohmann::json) with "k" its kind:
//   InodeRec  "i": an object's whole state at the capture point: id, mode
//             (S_IFMT and permission bits), uid, gid, size, atime, mtime,
//             rdev, symlink target, xattrs (name -> value), and for a
//             regular file its block list (blob::BlockRef, in file order;
//             their lengths add up to size).
//   EntryRec  "e": directory `parent` has `name` -> `child` (child 0: the
//             name is gone).
//   DropRec   "d": object `id` has no name left anywhere.
// decode() refuses a malformed record with EINVAL naming the field, so a
// damaged stream is never half-believed.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "blob/blocks.h"
#include "tcfs/status.h"

namespace tcfs::sync {

struct InodeRec {
  uint64_t id = 0;
  uint32_t mode = 0;
  uint32_t uid = 0, gid = 0;
  uint64_t size = 0;
  int64_t atime_sec = 0, mtime_sec = 0;
  uint32_t atime_nsec = 0, mtime_nsec = 0;
  uint64_t rdev = 0;
  std::string target;  // symlinks
  std::vector<std::pair<std::string, std::string>> xattrs;  // sorted by name
  std::vector<blob::BlockRef> blocks;
  bool operator==(const InodeRec&) const = default;
};

struct EntryRec {
  uint64_t parent = 0;
  std::string name;
  uint64_t child = 0;  // 0 = removed
  bool operator==(const EntryRec&) const = default;
};

struct DropRec {
  uint64_t id = 0;
  bool operator==(const DropRec&) const = default;
};

using Record = std::variant<InodeRec, EntryRec, DropRec>;

std::string encode(const Record& r);
Result<Record> decode(std::string_view bytes);

// The same encoding for the local synced state (state.h).
std::string encode_inode(const InodeRec& r);
Result<InodeRec> decode_inode(std::string_view bytes);

}  // namespace tcfs::sync
