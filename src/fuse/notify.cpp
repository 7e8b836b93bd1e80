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

// Every node the kernel may hold for k: a file retired by a compound
// (InodeTable::retire) still has its old node while files are open on it.
void KernelNotifier::attrs(const txn::LockKey& k) {
  for (fuse_ino_t id : table_.find_ids(static_cast<dev_t>(k.dev), static_cast<ino_t>(k.ino)))
    check(fuse_lowlevel_notify_inval_inode(se_, id, -1, 0), "attributes", k.ino);
}

void KernelNotifier::data(const txn::LockKey& k) {
  for (fuse_ino_t id : table_.find_ids(static_cast<dev_t>(k.dev), static_cast<ino_t>(k.ino)))
    check(fuse_lowlevel_notify_inval_inode(se_, id, 0, 0), "data", k.ino);
}

// txn.h invariant 13: invalidating a range of a regular file's pages
// writes its dirty ones back first (the kernel's launder), as WRITE
// requests that the workers serve while this waits.
void KernelNotifier::flush(const txn::LockKey& k) {
  if (!writeback_) return;
  for (fuse_ino_t id : table_.find_ids(static_cast<dev_t>(k.dev), static_cast<ino_t>(k.ino), S_IFREG))
    check(fuse_lowlevel_notify_inval_inode(se_, id, 0, 0), "flush", k.ino);
}

// txn.h invariant 13, under the compound's locks: the old node leaves the
// table's map (open files keep it); an open that waited for the locks
// then drops the stale pages, or is retried by the kernel after a fresh
// lookup (fs_file.cpp op_open).
bool KernelNotifier::retire(const txn::LockKey& k, uint64_t size) {
  return writeback_ && table_.retire(static_cast<dev_t>(k.dev), static_cast<ino_t>(k.ino), size);
}

// After the locks: the name the file had loses its dentry, so the next
// lookup makes the new node. Another name of a hard-linked file keeps the
// old node until its short entry timeout (Fs::make_entry) or an open.
void KernelNotifier::renew(const txn::LockKey&, const std::string& path) {
  if (!writeback_) return;
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  struct stat st;
  if (name.empty() || fstatat(root_fd_, dir.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return;  // gone meanwhile
  entry({static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)}, name, false);
}

void KernelNotifier::entry(const txn::LockKey& parent, const std::string& name, bool absent) {
  bool negatives = false;
  fuse_ino_t id = table_.find_id(static_cast<dev_t>(parent.dev), static_cast<ino_t>(parent.ino), &negatives);
  if (absent && !negatives) return;  // notify.h: the kernel can hold no entry for the name
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
