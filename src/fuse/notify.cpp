#include "fuse/notify.h"

#include <spdlog/spdlog.h>

#include <cstring>

namespace tcfs::fusefs {
namespace {

// ENOENT: the kernel does not have the inode (forgotten, never looked up).
void check(int rc, const char* what, uint64_t ino) {
  if (rc != 0 && rc != -ENOENT) spdlog::debug("notify {} of inode {}: {}", what, ino, strerror(-rc));
}

}  // namespace

void KernelNotifier::attrs(const txn::LockKey& k) {
  fuse_ino_t id = table_.find_id(static_cast<dev_t>(k.dev), static_cast<ino_t>(k.ino));
  if (id) check(fuse_lowlevel_notify_inval_inode(se_, id, -1, 0), "attributes", k.ino);
}

void KernelNotifier::data(const txn::LockKey& k) {
  fuse_ino_t id = table_.find_id(static_cast<dev_t>(k.dev), static_cast<ino_t>(k.ino));
  if (id) check(fuse_lowlevel_notify_inval_inode(se_, id, 0, 0), "data", k.ino);
}

void KernelNotifier::entry(const txn::LockKey& parent, const std::string& name) {
  fuse_ino_t id = table_.find_id(static_cast<dev_t>(parent.dev), static_cast<ino_t>(parent.ino));
  if (id) check(fuse_lowlevel_notify_inval_entry(se_, id, name.c_str(), name.size()), "entry", parent.ino);
}

}  // namespace tcfs::fusefs
