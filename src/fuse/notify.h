// fuse/notify.h — the kernel side of cache invalidation for compounds: a
// txn::Invalidator over libfuse's notify calls (see txn/invalidate.h for
// when each call is safe).
//
// Thread-safety: every method may be called from any thread; the session
// must outlive the object.
#pragma once

#include <fuse_lowlevel.h>

#include "fuse/inode_table.h"
#include "txn/invalidate.h"

namespace tcfs::fusefs {

class KernelNotifier : public txn::Invalidator {
 public:
  KernelNotifier(fuse_session* se, InodeTable& table) : se_(se), table_(table) {}
  void attrs(const txn::LockKey& k) override;
  void data(const txn::LockKey& k) override;
  void entry(const txn::LockKey& parent, const std::string& name) override;

 private:
  fuse_session* se_;
  InodeTable& table_;
};

}  // namespace tcfs::fusefs
