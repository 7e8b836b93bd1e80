#include "fuse/inode_table.h"

#include <dirent.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/random.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "util/fd.h"
#include "util/handle.h"

namespace tcfs::fusefs {
namespace {

uint32_t random_u32() {
  uint32_t v = 0;
  if (getrandom(&v, sizeof v, GRND_NONBLOCK) != sizeof v) v = static_cast<uint32_t>(getpid()) * 2654435761u;
  return v;
}

}  // namespace

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
  root->id = FUSE_ROOT_ID;
  root->gen = 0;  // the kernel wants 0 for the root
  t->store_fd_ = openat(root_fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (!root->handle.empty() && t->store_fd_ >= 0) t->layout_ = HandleLayout::learn(root->handle, st.st_ino);
  uint64_t ino;
  uint32_t gen;
  if (t->layout_ && t->layout_->split(root->handle, &ino, &gen) && ino <= NodeCode::kLow)
    t->code_.root_code = (uint64_t{gen} << 32) | ino;
  else
    t->layout_.reset();
  t->epoch_ = random_u32() | 1;
  {
    MutexLock g(t->mu_);  // not shared yet: taken for the analysis only
    t->next_seq_ = (random_u32() >> 8) + 1;
  }
  t->unknown_ = std::make_unique<Inode>();
  t->root_ = root.get();
  t->root_owner_ = std::move(root);
  return t;
}

InodeTable::~InodeTable() {
  lru_.clear();
  if (mount_fd_ >= 0) close(mount_fd_);
  if (store_fd_ >= 0) close(store_fd_);
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
  UniqueLock g(mu_);
  if (in.fd < 0) {
    g.unlock();
    if (in.handle.empty()) return Status::error(ESTALE);  // unknown_: a node id nobody holds
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
  MutexLock g(mu_);
  --in->pins;
  settle_locked(*in);
}

void InodeTable::opened(Inode& in) {
  MutexLock g(mu_);
  ++in.opens;
  settle_locked(in);
}

void InodeTable::released(Inode& in) {
  MutexLock g(mu_);
  --in.opens;
  settle_locked(in);
  evict_locked();
}

bool InodeTable::in_use(ino_t ino, const std::string& handle) {
  MutexLock g(mu_);
  auto it = map_.find(Key{root_->src_dev, ino});
  // A detached Inode (its number taken by another object) may still have
  // files open: it is the old object, and no other.
  if (it != map_.end() && it->second->handle == handle && it->second->opens > 0) return true;
  for (const Inode* in : detached_)
    if (in->src_ino == ino && in->handle == handle && in->opens > 0) return true;
  return false;
}

fuse_ino_t InodeTable::find_id(dev_t dev, ino_t ino, bool* negatives) {
  if (dev == root_->src_dev && ino == root_->src_ino) {
    if (negatives) *negatives = root_->negatives.load();
    return FUSE_ROOT_ID;
  }
  MutexLock g(mu_);
  auto it = map_.find(Key{dev, ino});
  if (negatives) *negatives = it != map_.end() && it->second->negatives.load();
  return it == map_.end() ? 0 : it->second->id;
}

std::vector<fuse_ino_t> InodeTable::find_ids(dev_t dev, ino_t ino, mode_t type) {
  std::vector<fuse_ino_t> ids;
  if (dev == root_->src_dev && ino == root_->src_ino) {
    if (!type || type == S_IFDIR) ids.push_back(FUSE_ROOT_ID);
    return ids;
  }
  MutexLock g(mu_);
  auto want = [&](const Inode& in) { return in.src_dev == dev && in.src_ino == ino && (!type || in.type == type); };
  if (auto it = map_.find(Key{dev, ino}); it != map_.end() && want(*it->second)) ids.push_back(it->second->id);
  for (const Inode* in : detached_)
    if (want(*in)) ids.push_back(in->id);
  return ids;
}

bool InodeTable::retire(dev_t dev, ino_t ino, uint64_t size) {
  MutexLock g(mu_);
  auto it = map_.find(Key{dev, ino});
  if (it == map_.end() || it->second->type != S_IFREG) return false;
  Inode& in = *it->second;
  in.retired = true;
  in.retired_size = size;
  detach_locked(in);
  return true;
}

Inode* InodeTable::ref_locked(const Key& k) {
  if (k.dev == root_->src_dev && k.ino == root_->src_ino) return root_;
  auto it = map_.find(k);
  if (it == map_.end()) return nullptr;
  ++it->second->nlookup;
  return it->second;
}

void InodeTable::detach_locked(Inode& in) {
  auto it = map_.find({in.src_dev, in.src_ino});
  if (it != map_.end() && it->second == &in) map_.erase(it);
  detached_.insert(&in);
}

Inode* InodeTable::insert_locked(std::unique_ptr<Inode> in) {
  fuse_ino_t id = 0;
  uint64_t ino;
  uint32_t gen = epoch_;
  if (layout_ && !in->handle.empty() && in->src_dev == root_->src_dev && layout_->split(in->handle, &ino, &gen) &&
      ino == in->src_ino)
    id = code_.encode(ino, gen);
  if (id == 0 || by_id_.count(id)) {
    // Not codable, or (ino, gen) met twice: a session id (fuse/export.h).
    gen = epoch_;
    do {
      if (next_seq_ > NodeCode::kLow) next_seq_ = 1;
      id = next_seq_++ << 32;
    } while (by_id_.count(id));
  }
  in->id = id;
  in->gen = gen;
  Inode* raw = in.get();
  if (raw->fd >= 0) ++open_fds_;
  by_id_.emplace(id, std::move(in));
  map_[Key{raw->src_dev, raw->src_ino}] = raw;
  settle_locked(*raw);
  evict_locked();
  return raw;
}

// A new Inode of the object st describes, one lookup reference counted.
static std::unique_ptr<Inode> new_inode(const struct stat& st, std::string handle, int fd) {
  auto in = std::make_unique<Inode>();
  in->src_dev = st.st_dev;
  in->src_ino = st.st_ino;
  in->type = st.st_mode & S_IFMT;
  in->handle = std::move(handle);
  in->fd = fd;
  in->nlookup = 1;
  return in;
}

Result<Inode*> InodeTable::create_inode(int parent_fd, const char* name, struct stat* st) {
  auto in = new_inode(*st, make_handle(parent_fd, name), -1);
  if (in->handle.empty()) {
    // No handles here: pin the object with an fd for the Inode's lifetime,
    // re-stat through it so the identity we record is the object we hold.
    in->fd = openat(parent_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (in->fd < 0) return Status::from_errno();
    if (fstatat(in->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return Status::from_errno();
    in->src_dev = st->st_dev;
    in->src_ino = st->st_ino;
  }
  MutexLock g(mu_);
  if (Inode* known = ref_locked({in->src_dev, in->src_ino})) return known;
  return insert_locked(std::move(in));
}

Result<Inode*> InodeTable::adopt_unnamed(int fd) {
  Fd own(open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_PATH | O_CLOEXEC));
  if (!own) return Status::from_errno();
  struct stat st;
  if (fstat(own.get(), &st) != 0) return Status::from_errno();
  auto in = new_inode(st, {}, own.release());
  MutexLock g(mu_);
  // A forgotten-to-be Inode of a gone object with the same number: it
  // lives on for the kernel's references only (as in lookup()).
  if (auto it = map_.find(Key{in->src_dev, in->src_ino}); it != map_.end()) detach_locked(*it->second);
  return insert_locked(std::move(in));  // no handle: a session id, fd kept
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
    MutexLock g(mu_);
    Key k{st->st_dev, st->st_ino};
    if (Inode* in = ref_locked(k)) {
      if (in->type == (st->st_mode & S_IFMT) && !dead_locked(*in, pp->fd(), name)) return in;
      // The inode number names another object now (the one the kernel
      // still holds is gone): that Inode leaves map_ and lives on, for
      // the kernel's references only, until they are forgotten.
      --in->nlookup;
      detach_locked(*in);
    }
  }
  return create_inode(pp->fd(), name, st);
}

// The Inode of the object open at fd (O_PATH, taken over), one reference
// added: the known one if its handle matches, else a new one keeping fd.
Result<Inode*> InodeTable::adopt_fd(int fd, const struct stat& st) {
  Fd owned(fd);
  std::string h = make_handle(fd, "");
  MutexLock g(mu_);
  Key k{st.st_dev, st.st_ino};
  if (Inode* known = ref_locked(k)) {
    if (known == root_ || (known->type == (st.st_mode & S_IFMT) && known->handle == h)) return known;
    --known->nlookup;
    detach_locked(*known);
  }
  return insert_locked(new_inode(st, std::move(h), owned.release()));
}

// The export security rule (inode_table.h).
bool InodeTable::inside_root(int fd, const struct stat& st) {
  if (st.st_dev != root_->src_dev) return false;
  if (st.st_ino == root_->src_ino) return true;
  if (S_ISDIR(st.st_mode)) {
    Fd cur(openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC));
    struct stat cst = st;
    for (int i = 0; i < kMaxDepth && cur; ++i) {
      struct stat p;
      if (fstat(cur.get(), &p) != 0 || p.st_dev != root_->src_dev) return false;
      if (p.st_ino == root_->src_ino) return true;
      if (p.st_ino == cst.st_ino) return false;  // the filesystem's root: never met root/
      cst = p;
      Fd up(openat(cur.get(), "..", O_PATH | O_DIRECTORY | O_CLOEXEC));
      cur = std::move(up);
    }
    return false;
  }
  if (st.st_nlink == 0) return false;
  // A non-directory: none of the store's own objects outside root/.
  std::vector<int> dirs;
  int top = openat(store_fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (top < 0) return false;
  dirs.push_back(top);
  size_t seen = 0;
  bool ok = true;
  while (!dirs.empty() && ok) {
    int dfd = dirs.back();
    dirs.pop_back();
    DIR* d = fdopendir(dfd);
    if (!d) {
      close(dfd);
      ok = false;
      break;
    }
    bool at_top = dfd == top;
    while (dirent* de = readdir(d)) {
      if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
      if (at_top && !strcmp(de->d_name, "root")) continue;
      if (++seen > kMaxScan) {
        ok = false;
        break;
      }
      if (de->d_ino == st.st_ino) {
        struct stat s;
        if (fstatat(dirfd(d), de->d_name, &s, AT_SYMLINK_NOFOLLOW) != 0 ||
            (s.st_dev == st.st_dev && s.st_ino == st.st_ino)) {
          ok = false;
          break;
        }
      }
      if (de->d_type == DT_DIR || de->d_type == DT_UNKNOWN) {
        int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0) dirs.push_back(sub);
        else if (de->d_type == DT_DIR) ok = false;  // unreadable: cannot tell
      }
    }
    closedir(d);
  }
  for (int f : dirs) close(f);
  return ok;
}

Result<Inode*> InodeTable::resolve(fuse_ino_t id, struct stat* st) {
  if (id == FUSE_ROOT_ID) {
    if (fstatat(root_->fd, "", st, AT_EMPTY_PATH) != 0) return Status::from_errno();
    return root_;
  }
  Inode* known = nullptr;
  {
    MutexLock g(mu_);
    if (auto it = by_id_.find(id); it != by_id_.end()) {
      known = it->second.get();
      ++known->nlookup;
    }
  }
  if (known) {  // the kernel's FORGET may still be on its way
    auto p = pin(*known);
    if (p && fstatat(p->fd(), "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0 && st->st_nlink > 0) return known;
    forget(id, 1);
    return Status::error(ESTALE);
  }
  uint64_t ino;
  uint32_t gen;
  if (!layout_ || !code_.decode(id, &ino, &gen)) return Status::error(ESTALE);
  std::string h = layout_->build(ino, gen);
  int fd = open_handle(mount_fd_, h, O_PATH);
  if (fd < 0) return Status::error(ESTALE);
  Fd owned(fd);
  if (fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0 || st->st_ino != ino) return Status::error(ESTALE);
  if (!inside_root(fd, *st)) {
    spdlog::debug("export: node {:#x} (inode {}) is not under the store's root/: refused", id, ino);
    return Status::error(ESTALE);
  }
  auto in = adopt_fd(owned.release(), *st);
  if (!in) return in.status();
  if (in.value()->id != id) {
    // The object's Inode has a session id: it was retired (retire()) while
    // the kernel held this coded id, which has been forgotten since. The
    // coded id still names this object (its handle opened it): an alias
    // Inode answers it.
    forget(in.value()->id, 1);
    return alias(id, gen, h, *st);
  }
  return in;
}

Result<Inode*> InodeTable::alias(fuse_ino_t id, uint32_t gen, const std::string& h, const struct stat& st) {
  int fd = open_handle(mount_fd_, h, O_PATH);
  if (fd < 0) return Status::error(ESTALE);
  auto in = new_inode(st, h, fd);
  in->id = id;
  in->gen = gen;
  MutexLock g(mu_);
  if (auto it = by_id_.find(id); it != by_id_.end()) {  // made meanwhile by another LOOKUP
    ++it->second->nlookup;
    return it->second.get();  // in's fd is closed by its destructor
  }
  Inode* raw = in.get();
  ++open_fds_;
  by_id_.emplace(id, std::move(in));
  detached_.insert(raw);  // never the object's current Inode (map_)
  settle_locked(*raw);
  evict_locked();
  return raw;
}

Result<Inode*> InodeTable::parent(Inode& dir, struct stat* st) {
  if (&dir == root_) return resolve(FUSE_ROOT_ID, st);  // never above root/
  if (dir.type != S_IFDIR) return Status::error(ENOTDIR);
  auto p = pin(dir);
  if (!p) return p.status();
  int fd = openat(p->fd(), "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno();
  Fd owned(fd);
  if (fstat(fd, st) != 0) return Status::from_errno();
  if (st->st_dev == root_->src_dev && st->st_ino == root_->src_ino) return root_;
  if (!inside_root(fd, *st)) return Status::error(ESTALE);
  return adopt_fd(owned.release(), *st);
}

void InodeTable::forget(fuse_ino_t ino, uint64_t n) {
  if (ino == FUSE_ROOT_ID) return;
  std::unique_ptr<Inode> dead;  // destroyed (fd closed) outside the lock
  {
    MutexLock g(mu_);
    auto it = by_id_.find(ino);
    if (it == by_id_.end()) return;
    Inode& in = *it->second;
    if (in.nlookup > n) {
      in.nlookup -= n;
      return;
    }
    auto m = map_.find({in.src_dev, in.src_ino});
    if (m != map_.end() && m->second == &in) map_.erase(m);
    detached_.erase(&in);
    if (in.is_linked()) lru_.erase(lru_.iterator_to(in));
    if (in.fd >= 0) --open_fds_;
    dead = std::move(it->second);
    by_id_.erase(it);
  }
}

size_t InodeTable::size() {
  MutexLock g(mu_);
  return by_id_.size();
}

size_t InodeTable::open_fds() {
  MutexLock g(mu_);
  return open_fds_;
}

}  // namespace tcfs::fusefs
