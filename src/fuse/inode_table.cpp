#include "fuse/inode_table.h"

#include <fcntl.h>
#include <unistd.h>

namespace tcfs::fusefs {

Inode::~Inode() {
  if (fd >= 0) close(fd);
}

Result<std::unique_ptr<InodeTable>> InodeTable::create(int root_fd) {
  auto t = std::make_unique<InodeTable>();
  auto root = std::make_unique<Inode>();
  root->fd = openat(root_fd, ".", O_PATH | O_CLOEXEC);
  if (root->fd < 0) return Status::from_errno("open store root");
  struct stat st;
  if (fstatat(root->fd, "", &st, AT_EMPTY_PATH) != 0) return Status::from_errno("stat store root");
  root->src_dev = st.st_dev;
  root->src_ino = st.st_ino;
  root->type = st.st_mode & S_IFMT;
  root->nlookup = 1;  // never dropped
  t->root_ = root.get();
  t->root_owner_ = std::move(root);
  return t;
}

Inode* InodeTable::ref_locked(const Key& k) {
  if (k.dev == root_->src_dev && k.ino == root_->src_ino) return root_;
  auto it = map_.find(k);
  if (it == map_.end()) return nullptr;
  ++it->second->nlookup;
  return it->second.get();
}

Result<Inode*> InodeTable::lookup(Inode& parent, const char* name, struct stat* st) {
  // Fast path: stat by name and reuse a known Inode; this costs one syscall
  // for every repeated lookup of an object the kernel already knows.
  if (fstatat(parent.fd, name, st, AT_SYMLINK_NOFOLLOW) != 0) return Status::from_errno();
  {
    std::lock_guard<std::mutex> g(mu_);
    if (Inode* in = ref_locked({st->st_dev, st->st_ino})) return in;
  }
  // Slow path: pin the object with an O_PATH fd, then re-stat through the
  // fd so that the identity we record is the object we hold (the name may
  // have been renamed over in between).
  int fd = openat(parent.fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Status::from_errno();
  if (fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
    Status s = Status::from_errno();
    close(fd);
    return s;
  }
  std::lock_guard<std::mutex> g(mu_);
  if (Inode* in = ref_locked({st->st_dev, st->st_ino})) {
    close(fd);
    return in;
  }
  auto in = std::make_unique<Inode>();
  in->fd = fd;
  in->src_dev = st->st_dev;
  in->src_ino = st->st_ino;
  in->type = st->st_mode & S_IFMT;
  in->nlookup = 1;
  Inode* raw = in.get();
  map_.emplace(Key{st->st_dev, st->st_ino}, std::move(in));
  return raw;
}

void InodeTable::forget(fuse_ino_t ino, uint64_t n) {
  if (ino == FUSE_ROOT_ID) return;
  std::unique_ptr<Inode> dead;  // closed outside the lock
  {
    std::lock_guard<std::mutex> g(mu_);
    Inode& in = get(ino);
    if (&in == root_) return;
    if (in.nlookup > n) {
      in.nlookup -= n;
      return;
    }
    auto it = map_.find({in.src_dev, in.src_ino});
    if (it != map_.end()) {
      dead = std::move(it->second);
      map_.erase(it);
    }
  }
}

size_t InodeTable::size() {
  std::lock_guard<std::mutex> g(mu_);
  return map_.size();
}

}  // namespace tcfs::fusefs
