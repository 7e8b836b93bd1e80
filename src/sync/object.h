// sync/object.h — how the sync layer names a backing object of the store's
// filesystem (sync.h 4a).
//
// Contract: an ObjRef is a backing inode number together with the kernel
// file handle of the object (name_to_handle_at). The handle carries the
// inode's generation (XFS, ext4, btrfs and tmpfs all put it there), so two
// ObjRefs are equal only for the same object: a new object that reuses a
// freed inode number has another handle and is another ObjRef. Everything
// that outlives an object (change marks, the synced records, stubs, last
// uses) names it by an ObjRef, never by the inode number alone.
//
// Thread-safety: a plain value.
#pragma once

#include <compare>
#include <cstdint>
#include <string>

namespace tcfs::sync {

struct ObjRef {
  uint64_t ino = 0;
  std::string handle;  // struct file_handle bytes (util/handle.h)
  auto operator<=>(const ObjRef&) const = default;
  bool operator==(const ObjRef&) const = default;
};

}  // namespace tcfs::sync
