// fuse/notify.h — the kernel side of cache invalidation for compounds: a
// txn::Invalidator over libfuse's notify calls (see txn/invalidate.h for
// when each call is safe).
//
// Negative entries. The kernel keeps a negative dentry only from a LOOKUP
// answered "no such name" (fs_node.cpp, negative_timeout); other names it
// learns only as positive entries. The directory's Inode records that it
// gave such an answer (Inode::negatives), set under the lookup's lock
// guard, so before any compound could take that directory's lock. So
// entry(parent, name, absent=true) for a name that did not exist when the
// compound began has nothing to drop, and sends nothing, unless the
// directory's node has answered a lookup negatively: a compound creating
// 1,000 files in a directory nobody looked names up in sends no
// notifications (they cost about 2 µs each).
//
// Thread-safety: every method may be called from any thread; the session
// must outlive the object.
#pragma once

#include <fuse_lowlevel.h>

#include <string>

#include "fuse/inode_table.h"
#include "txn/invalidate.h"

namespace tcfs::fusefs {

class KernelNotifier : public txn::Invalidator {
 public:
  // dev: the mount's device number (from /proc/self/mountinfo), 0 unknown.
  // root_fd: the store's root/ (renew() finds a file's parent there; not
  // owned). writeback: the kernel's writeback cache is on.
  KernelNotifier(fuse_session* se, InodeTable& table, dev_t dev, std::string mountpoint, int root_fd, bool writeback)
      : se_(se), table_(table), dev_(dev), mountpoint_(std::move(mountpoint)), root_fd_(root_fd),
        writeback_(writeback) {}
  void attrs(const txn::LockKey& k) override;
  void data(const txn::LockKey& k) override;
  void entry(const txn::LockKey& parent, const std::string& name, bool absent) override;
  void flush(const txn::LockKey& k) override;
  bool retire(const txn::LockKey& k, uint64_t size) override;
  void renew(const txn::LockKey& k, const std::string& path) override;
  dev_t device() const override { return dev_; }
  // Reads the superblock's flags from /proc/self/mountinfo (a remount
  // changes them at any time; asking the mount itself would be I/O
  // through it).
  bool read_only() const override;
  std::string mountpoint() const override { return mountpoint_; }

 private:
  fuse_session* se_;
  InodeTable& table_;
  dev_t dev_;
  std::string mountpoint_;
  int root_fd_;
  bool writeback_;
};

}  // namespace tcfs::fusefs
