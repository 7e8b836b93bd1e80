// fuse/export.h — node ids that outlive the daemon's memory: what makes
// tcfs exportable (NFS, open_by_handle_at on the mount).
//
// The kernel's handle of a FUSE object is (node id, generation). Once it
// has forgotten the inode (cache drop, remount) it asks LOOKUP(id, ".")
// and compares the reply's id and generation with the handle. So a node
// id must name its backing object by itself:
//
//   node id = gen << 32 | ino     (ino: backing inode number, < 2^32;
//                                   gen: its generation, from its handle)
//
// with the root's own code swapped with 1 (FUSE_ROOT_ID). A reused inode
// number has another generation, so it gets another node id: an id names
// one object for ever, which keeps the kernel's nlookup/FORGET accounting
// per object even while the kernel still holds the old one.
//
// Objects that cannot be coded that way (inode number >= 2^32, a handle
// that does not have the layout learned from the root, no handle at all,
// an unnamed O_TMPFILE) get a "session id" instead: seq << 32 (low 32
// bits 0, never an inode number, so never a coded id), seq counting up
// from a random start, with the session's random epoch as generation:
// valid while the kernel holds them, ESTALE after (another session's id
// has another epoch).
//
// HandleLayout rebuilds the backing filesystem's file handle from (ino,
// gen). It is learned from the root's handle at mount and recognised only
// for the layouts below, and only if rebuilding the root's handle from its
// own (ino, gen) gives it back byte for byte; an object's handle is coded
// only if it, too, is exactly rebuilt from its (ino, gen):
//   XFS    type 0x81 [u64 ino][u32 gen]     (inode64, the default)
//   XFS    type 0x01 [u32 ino][u32 gen]     (inode32); ext4: the same
//   btrfs  type 0x4d [u64 objectid][u64 root][u32 gen] (root as learned)
//   tmpfs  type 0x01 [u32 gen][u32 ino lo][u32 ino hi]
//
// Thread-safety: immutable after learn(); plain values.
#pragma once

#include <fuse_lowlevel.h>

#include <cstdint>
#include <optional>
#include <string>

namespace tcfs::fusefs {

class HandleLayout {
 public:
  enum class Kind { Xfs64, Ino32Gen, Btrfs, Tmpfs };
  // The layout of the filesystem whose root has handle `root` and inode
  // number root_ino; nullopt if unknown.
  static std::optional<HandleLayout> learn(const std::string& root, uint64_t root_ino);
  // (ino, gen) of a handle in this layout; false if it is not one.
  bool split(const std::string& h, uint64_t* ino, uint32_t* gen) const;
  // The handle of (ino, gen) (struct file_handle bytes).
  std::string build(uint64_t ino, uint32_t gen) const;
  Kind kind() const { return kind_; }
  const char* name() const;

 private:
  Kind kind_ = Kind::Ino32Gen;
  int type_ = 0;
  unsigned len_ = 0;       // handle_bytes
  uint64_t btrfs_root_ = 0;  // btrfs: the subvolume (the root's)
};

// Node id <-> (ino, gen) (see above). root_code: the root's gen << 32 | ino.
struct NodeCode {
  uint64_t root_code = 0;
  static constexpr uint64_t kLow = 0xffffffffu;
  // 0 if (ino, gen) cannot be coded.
  fuse_ino_t encode(uint64_t ino, uint32_t gen) const {
    if (ino == 0 || ino > kLow) return 0;
    uint64_t c = (uint64_t{gen} << 32) | ino;
    return c == root_code ? FUSE_ROOT_ID : c == FUSE_ROOT_ID ? root_code : c;
  }
  // False for a session id (low bits 0) and for 0.
  bool decode(fuse_ino_t id, uint64_t* ino, uint32_t* gen) const {
    uint64_t c = id == FUSE_ROOT_ID ? root_code : id == root_code ? FUSE_ROOT_ID : id;
    if ((c & kLow) == 0) return false;
    *ino = c & kLow;
    *gen = static_cast<uint32_t>(c >> 32);
    return true;
  }
  static bool is_session_id(fuse_ino_t id) { return id != 0 && (id & kLow) == 0; }
};

}  // namespace tcfs::fusefs
