#include "fuse/inode_table.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "util/handle.h"

namespace tcfs::fusefs {

Inode::~Inode() {
  if (fd >= 0) close(fd);
}

FdPin::~FdPin() {
  if (t_) t_->unpin(in_);
}

Result<std::unique_ptr<InodeTable>> InodeTable::create(int root_fd, size_t fd_budget) {
  auto t = std::make_unique<InodeTable>();
  t->fd_budget_ = fd_budget;
  t->mount_fd_ = openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (t->mount_fd_ < 0) return Status::from_errno("open store root");
  auto root = std::make_unique<Inode>();
  root->fd = openat(root_fd, ".", O_PATH | O_CLOEXEC);
  if (root->fd < 0) return Status::from_errno("open store root");
  struct stat st;
  if (fstatat(root->fd, "", &st, AT_EMPTY_PATH) != 0) return Status::from_errno("stat store root");
  root->src_dev = st.st_dev;
  root->src_ino = st.st_ino;
  root->type = st.st_mode & S_IFMT;
  root->handle = make_handle(root->fd, "");  // the sync layer's identity of it (sync/sync.h 4a)
  root->nlookup = 1;  // never dropped
  t->root_ = root.get();
  t->root_owner_ = std::move(root);
  return t;
}

InodeTable::~InodeTable() {
  lru_.clear();
  if (mount_fd_ >= 0) close(mount_fd_);
}

void InodeTable::settle_locked(Inode& in) {
  bool evictable = &in != root_ && in.fd >= 0 && in.pins == 0 && in.opens == 0 && !in.handle.empty();
  if (in.is_linked()) lru_.erase(lru_.iterator_to(in));
  if (evictable) lru_.push_back(in);
}

void InodeTable::evict_locked() {
  while (open_fds_ > fd_budget_ && !lru_.empty()) {
    Inode& victim = lru_.front();
    lru_.pop_front();
    close(victim.fd);
    victim.fd = -1;
    --open_fds_;
  }
}

Result<FdPin> InodeTable::pin(Inode& in) {
  std::unique_lock<std::mutex> g(mu_);
  if (in.fd < 0) {
    g.unlock();
    int fd = open_handle(mount_fd_, in.handle, O_PATH);
    if (fd < 0) return Status::from_errno();
    g.lock();
    if (in.fd < 0) {
      in.fd = fd;
      ++open_fds_;
    } else {
      close(fd);  // another thread reopened it first
    }
  }
  ++in.pins;
  settle_locked(in);
  evict_locked();
  return FdPin(this, &in, in.fd);
}

void InodeTable::unpin(Inode* in) {
  std::lock_guard<std::mutex> g(mu_);
  --in->pins;
  settle_locked(*in);
}

void InodeTable::opened(Inode& in) {
  std::lock_guard<std::mutex> g(mu_);
  ++in.opens;
  settle_locked(in);
}

void InodeTable::released(Inode& in) {
  std::lock_guard<std::mutex> g(mu_);
  --in.opens;
  settle_locked(in);
  evict_locked();
}

bool InodeTable::in_use(ino_t ino, const std::string& handle) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = map_.find(Key{root_->src_dev, ino});
  // A detached Inode (its number taken by another object) may still have
  // files open: it is the old object, and no other.
  if (it != map_.end() && it->second->handle == handle && it->second->opens > 0) return true;
  for (const auto& [p, in] : detached_)
    if (in->src_ino == ino && in->handle == handle && in->opens > 0) return true;
  return false;
}

fuse_ino_t InodeTable::find_id(dev_t dev, ino_t ino) {
  if (dev == root_->src_dev && ino == root_->src_ino) return FUSE_ROOT_ID;
  std::lock_guard<std::mutex> g(mu_);
  auto it = map_.find(Key{dev, ino});
  return it == map_.end() ? 0 : id_of(*it->second);
}

Inode* InodeTable::ref_locked(const Key& k) {
  if (k.dev == root_->src_dev && k.ino == root_->src_ino) return root_;
  auto it = map_.find(k);
  if (it == map_.end()) return nullptr;
  ++it->second->nlookup;
  return it->second.get();
}

Result<Inode*> InodeTable::create_inode(int parent_fd, const char* name, struct stat* st) {
  auto in = std::make_unique<Inode>();
  in->src_dev = st->st_dev;
  in->src_ino = st->st_ino;
  in->type = st->st_mode & S_IFMT;
  in->nlookup = 1;
  in->handle = make_handle(parent_fd, name);
  if (in->handle.empty()) {
    // No handles here: pin the object with an fd for the Inode's lifetime,
    // re-stat through it so the identity we record is the object we hold.
    in->fd = openat(parent_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (in->fd < 0) return Status::from_errno();
    if (fstatat(in->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return Status::from_errno();
    in->src_dev = st->st_dev;
    in->src_ino = st->st_ino;
  }
  std::lock_guard<std::mutex> g(mu_);
  if (Inode* known = ref_locked({in->src_dev, in->src_ino})) return known;
  if (in->fd >= 0) ++open_fds_;
  Inode* raw = in.get();
  map_.emplace(Key{raw->src_dev, raw->src_ino}, std::move(in));
  return raw;
}

Result<Inode*> InodeTable::adopt_unnamed(int fd) {
  auto in = std::make_unique<Inode>();
  in->fd = open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_PATH | O_CLOEXEC);
  if (in->fd < 0) return Status::from_errno();
  struct stat st;
  if (fstat(in->fd, &st) != 0) return Status::from_errno();
  in->src_dev = st.st_dev;
  in->src_ino = st.st_ino;
  in->type = st.st_mode & S_IFMT;
  in->nlookup = 1;
  std::lock_guard<std::mutex> g(mu_);
  Key k{in->src_dev, in->src_ino};
  if (auto it = map_.find(k); it != map_.end()) {
    // A forgotten-to-be Inode of a gone object with the same number: it
    // lives on for the kernel's references only (as in lookup()).
    detached_.emplace(it->second.get(), std::move(it->second));
    map_.erase(it);
  }
  ++open_fds_;
  Inode* raw = in.get();
  map_.emplace(k, std::move(in));
  return raw;
}

// Whether the object `in` names is gone, so that (parent_fd, name), which
// has its inode number, is another object that reused the number (ext4 and
// XFS reuse freed numbers at once, while the kernel may still hold the old
// node). With its fd open: the old object has no links left. Without: the
// name's handle differs (the handle carries the inode's generation).
bool InodeTable::dead_locked(Inode& in, int parent_fd, const char* name) {
  if (&in == root_) return false;
  if (in.fd >= 0) {
    struct stat o;
    return fstatat(in.fd, "", &o, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0 || o.st_nlink == 0;
  }
  return !in.handle.empty() && make_handle(parent_fd, name) != in.handle;
}

Result<Inode*> InodeTable::lookup(Inode& parent, const char* name, struct stat* st) {
  auto pp = pin(parent);
  if (!pp) return pp.status();
  // One fstatat for an object the kernel already knows; a new one costs
  // one more syscall for its handle and no fd until something needs one.
  // (The kernel serializes a lookup against renames in the same directory,
  // so the name still means the object stat() saw.)
  if (fstatat(pp->fd(), name, st, AT_SYMLINK_NOFOLLOW) != 0) return Status::from_errno();
  {
    std::lock_guard<std::mutex> g(mu_);
    Key k{st->st_dev, st->st_ino};
    if (Inode* in = ref_locked(k)) {
      if (in->type == (st->st_mode & S_IFMT) && !dead_locked(*in, pp->fd(), name)) return in;
      // The inode number names another object now (the one the kernel
      // still holds is gone): that Inode leaves the map and lives on, for
      // the kernel's references only, until they are forgotten.
      --in->nlookup;
      auto it = map_.find(k);
      detached_.emplace(it->second.get(), std::move(it->second));
      map_.erase(it);
    }
  }
  return create_inode(pp->fd(), name, st);
}

void InodeTable::forget(fuse_ino_t ino, uint64_t n) {
  if (ino == FUSE_ROOT_ID) return;
  std::unique_ptr<Inode> dead;  // destroyed (fd closed) outside the lock
  {
    std::lock_guard<std::mutex> g(mu_);
    Inode& in = get(ino);
    if (in.nlookup > n) {
      in.nlookup -= n;
      return;
    }
    auto it = map_.find({in.src_dev, in.src_ino});
    if (it != map_.end() && it->second.get() == &in) {
      dead = std::move(it->second);
      map_.erase(it);
    } else if (auto d = detached_.find(&in); d != detached_.end()) {
      dead = std::move(d->second);
      detached_.erase(d);
    } else {
      return;
    }
    if (in.is_linked()) lru_.erase(lru_.iterator_to(in));
    if (in.fd >= 0) --open_fds_;
  }
}

size_t InodeTable::size() {
  std::lock_guard<std::mutex> g(mu_);
  return map_.size();
}

size_t InodeTable::open_fds() {
  std::lock_guard<std::mutex> g(mu_);
  return open_fds_;
}

}  // namespace tcfs::fusefs
