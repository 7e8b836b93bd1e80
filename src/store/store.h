// store/store.h — the local store: its on-disk layout, its lock, and what
// the filesystem under it can do.
//
// Layout (DESIGN.md §4), created on first open unless noted:
//   <store>/root/      the tree the mount shows
//   <store>/txn/       undo images of in-flight compounds (same fs as root/)
//   <store>/meta/      LMDB environment (database "store": format, uuid)
//   <store>/journal/   reserved for the endurant log (planned; empty)
//   <store>/sync/      sync/stage: point-in-time clones of a sync round
//                      (made by the daemon when the store has blobbers)
//   <store>/reserve    space held back for compounds that free space
//                      (reserve.h; made when a TxnManager is built)
//   <store>/control.sock  the control socket of a daemon run by a user
//                      other than root (root's lives in /run/tcfs:
//                      control/socket_path.h P2)
//   <store>/lock       flock()ed by the one process that owns the store; it
//                      holds that process's pid as text, for error messages
//
// Invariant I1: the store directory is mode 0700, its owner's (root's for
// a daemon run by root): made so when open() creates it, and an older
// store with a wider mode is closed by open() before anything in it is
// used. Nothing in the store is reachable by other users outside the
// mount (root's control socket lives in /run/tcfs: control/socket_path.h).
//
// Contract: Store::open() either returns a store whose lock this process
// holds for the Store's lifetime, or an error naming the path and reason
// (e.g. EBUSY "store /x is in use by tcfs pid 123"), having changed nothing
// but the creation of a missing layout and closing the store directory (I1).
//
// Thread-safety: a Store is immutable after open(); its accessors may be
// called from any thread. The meta Env has its own rules (meta/env.h).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "meta/env.h"
#include "tcfs/status.h"

namespace tcfs::store {

constexpr int kFormatVersion = 1;

struct OpenOptions {
  bool create = true;  // create the layout if missing
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> open(const std::string& dir, OpenOptions opts = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& path() const { return path_; }
  int dir_fd() const { return dir_fd_; }    // <store>
  int root_fd() const { return root_fd_; }  // <store>/root, O_RDONLY|O_DIRECTORY
  int txn_fd() const { return txn_fd_; }    // <store>/txn
  const std::string& fs_type() const { return fs_type_; }
  bool reflink() const { return reflink_; }  // FICLONE works between txn/ and root/
  const std::string& uuid() const { return uuid_; }
  meta::Env& meta() const { return *meta_; }

 private:
  Store() = default;
  Status take_lock();
  Status make_private();
  Status open_dirs(bool create);
  Status open_meta();
  void probe_filesystem();

  std::string path_;
  int dir_fd_ = -1, root_fd_ = -1, txn_fd_ = -1, lock_fd_ = -1;
  std::string fs_type_;
  bool reflink_ = false;
  std::string uuid_;
  std::unique_ptr<meta::Env> meta_;
};

// Name of the filesystem type behind fd ("xfs", "btrfs", "ext4", "tmpfs",
// or "0x<magic>").
std::string fs_type_name(int fd);
// True when FICLONE works inside the directory dirfd (probed with two
// unnamed temporary files).
bool probe_reflink(int dirfd);
// pid of the process holding the store's lock, 0 if none holds it.
Result<pid_t> lock_holder(const std::string& dir);

}  // namespace tcfs::store
