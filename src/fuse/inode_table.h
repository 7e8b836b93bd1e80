// fuse/inode_table.h — the FUSE inode table: kernel node ids <-> backing
// objects in <store>/root.
//
// Contract:
//  * Each Inode names one backing object by an O_PATH fd (so renames and
//    unlinks behind a name never make it point at another object) and by
//    its (st_dev, st_ino) identity. Two names of one object (hard links)
//    share one Inode.
//  * The FUSE node id of an Inode is its address; FUSE_ROOT_ID maps to the
//    root Inode, which is never forgotten. The kernel holds `nlookup`
//    references; an Inode is destroyed (its fd closed) when forget() drops
//    the count to zero. A node id is never used by the kernel after that.
//
// Lock order: InodeTable::mu_ is a leaf lock: nothing else is acquired
// while it is held. mu_ protects map_ and every Inode::nlookup.
//
// Thread-safety: all members are safe to call from any FUSE worker.
#pragma once

#include <fuse_lowlevel.h>
#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "tcfs/status.h"

namespace tcfs::fusefs {

struct Inode {
  int fd = -1;  // O_PATH | O_NOFOLLOW, immutable after creation
  dev_t src_dev = 0;
  ino_t src_ino = 0;
  mode_t type = 0;       // S_IFMT bits, immutable (an object never changes type)
  uint64_t nlookup = 0;  // guarded by InodeTable::mu_
  ~Inode();
};

class InodeTable {
 public:
  // root_fd: the store's root/ directory (duplicated; caller keeps its own).
  static Result<std::unique_ptr<InodeTable>> create(int root_fd);

  Inode& root() { return *root_; }
  // Node id -> Inode. The kernel guarantees the id is live.
  Inode& get(fuse_ino_t ino) {
    return ino == FUSE_ROOT_ID ? *root_ : *reinterpret_cast<Inode*>(ino);
  }
  fuse_ino_t id_of(const Inode& in) const {
    return &in == root_ ? FUSE_ROOT_ID : reinterpret_cast<fuse_ino_t>(&in);
  }

  // Looks `name` up in `parent`, adds one kernel reference to the matching
  // Inode (creating it if needed) and fills *st. ENOENT etc. as lstat gives.
  Result<Inode*> lookup(Inode& parent, const char* name, struct stat* st);
  // Drops n kernel references.
  void forget(fuse_ino_t ino, uint64_t n);
  size_t size();

 private:
  struct Key {
    dev_t dev;
    ino_t ino;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const { return std::hash<uint64_t>()(k.ino ^ (uint64_t(k.dev) << 48)); }
  };
  // Adds a reference to the Inode for key, if present. Caller holds mu_.
  Inode* ref_locked(const Key& k);

  std::mutex mu_;
  std::unordered_map<Key, std::unique_ptr<Inode>, KeyHash> map_;
  Inode* root_ = nullptr;
  std::unique_ptr<Inode> root_owner_;
};

}  // namespace tcfs::fusefs
