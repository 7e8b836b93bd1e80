#include "fuse/notify.h"

#include <spdlog/spdlog.h>

#include <sys/sysmacros.h>

#include <cstdio>
#include <cstring>
#include <fstream>

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

bool KernelNotifier::read_only() const {
  if (!dev_) return false;
  std::string want = std::to_string(major(dev_)) + ":" + std::to_string(minor(dev_));
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root mountpoint options [optional...] - fstype source superopts
    size_t a = line.find(' '), b = a == std::string::npos ? a : line.find(' ', a + 1);
    if (b == std::string::npos || line.compare(b + 1, want.size() + 1, want + " ") != 0) continue;
    size_t sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    size_t f = line.find(' ', sep + 3), src = f == std::string::npos ? f : line.find(' ', f + 1);
    if (src == std::string::npos) continue;
    std::string opts = line.substr(src + 1);
    return opts == "ro" || opts.rfind("ro,", 0) == 0;
  }
  return false;
}

}  // namespace tcfs::fusefs
