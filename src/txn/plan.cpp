// txn/plan.cpp — the virtual tree and the per-operation planning rules.
//
// The virtual tree (VTree) is the real tree under root/ as it is now,
// overlaid with the effects of the operations planned so far. A VNode is
// either Existing (an object of the real tree: identity, stat, the path it
// has now) or Fresh (created by operation `born`). A directory's `kids` map
// overrides the real directory: name -> VNode, or nullptr for "known absent"
// (removed, renamed away, or looked up and not found). Real names are read
// lazily with lstat at `orig` (the object's path before the compound), which
// stays valid while planning because planning changes nothing.
//
// Immutable and append-only inodes (txn.h invariant 11): with txn on, every
// existing inode the compound changes (data, attributes, entries, link
// count), moves or removes, and everything inside a tree it removes, must be
// neither: the backing filesystem would refuse the change halfway through
// the compound, or refuse the undo that restores the inode (a truncate back
// after an append, an entry removed from an append-only directory, times
// put back). The plan fails with EPERM naming the path, before anything
// changes. With txn off the kernel's own checks at execution decide.
#include "txn/plan.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/limits.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <map>
#include <unordered_map>

#include "util/dir.h"
#include "util/fd.h"

namespace tcfs::txn {
namespace {

constexpr int kMaxSymlinks = 40;

struct VNode {
  bool fresh = false;
  mode_t type = 0;
  Identity id;           // Existing only
  std::string orig;      // Existing only: path under root/ before the compound ("" = root)
  struct stat st{};      // Existing only
  std::string link;      // symlink contents (Fresh: known; Existing: read lazily)
  bool link_read = false;
  VNode* parent = nullptr;  // directories: the virtual parent
  std::map<std::string, VNode*> kids;
  int rec = -1;          // index of this inode's record in rr.inodes
  std::string handle;    // Existing only: its file handle, once asked (handle_of)
  bool handle_read = false;
  uint64_t fsattrs = 0;  // Existing only: statx attributes (immutable, append), read lazily
  bool fsattrs_read = false;
};

struct IdHash {
  size_t operator()(const Identity& i) const { return std::hash<uint64_t>()(i.ino * 31 + i.dev); }
};

struct Fail {
  int err;
  std::string msg;
  bool refuse = false;  // Plan::refuse: nothing may run
};

// Where a path leads: the directory, the final name, the object (or null),
// and the canonical path of (dir, name).
struct Where {
  VNode* dir = nullptr;
  std::string name;
  VNode* node = nullptr;
  std::string path;
};

std::string join(const std::string& a, const std::string& b) { return a.empty() ? b : a + "/" + b; }

std::vector<std::string> split(const std::string& p) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string::npos) j = p.size();
    if (j > i) out.push_back(p.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

class Planner {
 public:
  Planner(int root_fd, const Compound& c, bool keys_only) : root_fd_(root_fd), c_(c), keys_only_(keys_only) {}
  Plan run();

 private:
  // --- virtual tree ---
  VNode* existing(const std::string& path, const struct stat& st);
  VNode* fresh(mode_t type, VNode* parent);
  VNode* lookup(VNode* dir, const std::string& name, const std::string& dir_path);
  Where resolve(const std::string& path, bool follow, bool leaf_unseen = false);
  std::string vpath(VNode* dir);
  bool dir_empty(VNode* dir, const std::string& path);
  bool is_ancestor(VNode* a, VNode* b);  // a is b or an ancestor of b
  void put(VNode* dir, const std::string& name, VNode* n);
  VNode* add_fresh(const Where& w, mode_t type);  // a new object at w, removed by undo

  // --- records ---
  int record(VNode* n);
  void touch_dir(VNode* dir, const std::string& name);
  void touch_attrs(VNode* n);
  void touch_data(VNode* n);
  void touch_xattr(VNode* n, const std::string& name);
  void lock_x(VNode* n);
  const std::string& handle_of(VNode* n);
  uint64_t protection(VNode* n);
  void check_changeable(VNode* n);
  void check_subtree(VNode* dir, const std::string& path);
  void step(StepKind k, std::string path, std::string path2 = {}, std::string image = {});

  // --- operations: fill po, or throw Fail ---
  void mkdir(const Op& op, PlannedOp& po);
  void create(const Op& op, PlannedOp& po);
  void write_like(const Op& op, PlannedOp& po);
  void copy(const Op& op, PlannedOp& po);
  void setattr(const Op& op, PlannedOp& po);
  void xattr(const Op& op, PlannedOp& po);
  void symlink(const Op& op, PlannedOp& po);
  void link(const Op& op, PlannedOp& po);
  void rename(const Op& op, PlannedOp& po);
  void exchange(const Op& op, PlannedOp& po, Where& a, Where& b);
  void remove(const Op& op, PlannedOp& po);
  Where need_parent(const std::string& path, bool follow, bool leaf_unseen = false);
  Where need_new(const std::string& path);
  VNode* need_node(const std::string& path, bool follow, Where* w = nullptr);
  void dispose_victim(VNode* v, const std::string& path, PlannedOp& po, bool recursive);

  int root_fd_;
  const Compound& c_;
  bool keys_only_;
  Plan plan_;
  std::deque<VNode> nodes_;
  std::unordered_map<Identity, VNode*, IdHash> by_id_;
  std::map<std::pair<uint64_t, uint64_t>, bool> xkeys_, skeys_;
  VNode* root_ = nullptr;
  uint32_t op_ = 0;
  unsigned images_ = 0;
};

[[noreturn]] void fail(int err, std::string msg) { throw Fail{err, std::move(msg)}; }

constexpr uint64_t kProtected = STATX_ATTR_IMMUTABLE | STATX_ATTR_APPEND;

// The immutable / append-only attributes of root-relative path p (0 if it
// cannot be stat'ed: the operation itself reports that).
uint64_t protection_at(int dirfd, const char* p) {
  struct statx sx {};
  if (statx(dirfd, p, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_TYPE, &sx) != 0) return 0;
  return sx.stx_attributes & sx.stx_attributes_mask & kProtected;
}

[[noreturn]] void fail_protected(uint64_t attrs, const std::string& path) {
  const std::string shown = path.empty() ? "/" : path;
  if (attrs & STATX_ATTR_IMMUTABLE)
    throw Fail{EPERM, shown + ": immutable (chattr +i): the compound would change it; nothing was changed", true};
  throw Fail{EPERM,
             shown + ": append-only (chattr +a): the compound would change it and its undo could not;"
                     " nothing was changed",
             true};
}

// Invariant 11: the first immutable or append-only object at or below
// directory dirfd (shown as path) fails the plan. Depth-bounded, no symlinks.
void scan_protected(int dirfd, const std::string& path, int depth) {
  if (depth > 4096) fail(ELOOP, path + ": too deep");
  std::string hit;
  uint64_t attrs = 0;
  Status listed = for_each_entry(dirfd, ".", [&](const char* n, unsigned char type) {
    std::string sub = join(path, n);
    if ((attrs = protection_at(dirfd, n)) != 0) {
      hit = sub;
      return false;
    }
    if (type != DT_DIR && type != DT_UNKNOWN) return true;
    Fd sfd(openat(dirfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (sfd) scan_protected(sfd.get(), sub, depth + 1);  // else not a directory; unreadable ones fail when removed
    return true;
  });
  if (!listed) fail(listed.err(), "cannot read directory " + path);
  if (attrs) fail_protected(attrs, hit);
}

VNode* Planner::existing(const std::string& path, const struct stat& st) {
  Identity id{st.st_dev, st.st_ino};
  if (auto it = by_id_.find(id); it != by_id_.end()) return it->second;
  VNode& n = nodes_.emplace_back();
  n.type = st.st_mode & S_IFMT;
  n.id = id;
  n.orig = path;
  n.st = st;
  by_id_[id] = &n;
  return &n;
}

VNode* Planner::fresh(mode_t type, VNode* parent) {
  VNode& n = nodes_.emplace_back();
  n.fresh = true;
  n.type = type;
  n.parent = type == S_IFDIR ? parent : nullptr;
  return &n;
}

VNode* Planner::lookup(VNode* dir, const std::string& name, const std::string& dir_path) {
  if (auto it = dir->kids.find(name); it != dir->kids.end()) return it->second;
  VNode* n = nullptr;
  if (!dir->fresh) {
    struct stat st;
    std::string p = join(dir->orig, name);
    if (fstatat(root_fd_, p.empty() ? "." : p.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
      n = existing(p, st);
      if (n->type == S_IFDIR) n->parent = dir;
    } else if (errno != ENOENT) {
      fail(errno, "cannot look up " + join(dir_path, name));
    }
  }
  dir->kids[name] = n;
  return n;
}

std::string Planner::vpath(VNode* dir) {
  std::vector<const std::string*> parts;
  for (VNode* d = dir; d != root_; d = d->parent) {
    VNode* p = d->parent;
    if (!p) return {};  // detached: cannot happen for a reachable directory
    for (const auto& [name, kid] : p->kids)
      if (kid == d) {
        parts.push_back(&name);
        break;
      }
  }
  std::string out;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) out = join(out, **it);
  return out;
}

// leaf_unseen: the last name is not looked up on disk (need_new()).
Where Planner::resolve(const std::string& path, bool follow, bool leaf_unseen) {
  std::vector<std::string> todo = split(path);
  std::reverse(todo.begin(), todo.end());  // a stack: back() is next
  VNode* dir = root_;
  std::string dir_path;
  int links = 0;
  while (!todo.empty()) {
    std::string name = std::move(todo.back());
    todo.pop_back();
    if (name == ".") continue;
    if (name == "..") {
      if (dir == root_) fail(EXDEV, path + ": leads outside the mount");
      dir = dir->parent;
      dir_path = vpath(dir);
      continue;
    }
    if (name.size() > NAME_MAX) fail(ENAMETOOLONG, path + ": name too long");
    if (!dir->fresh) skeys_[{dir->id.dev, dir->id.ino}] = true;
    bool last = todo.empty();
    VNode* n = nullptr;
    if (!(last && leaf_unseen)) {
      n = lookup(dir, name, dir_path);
    } else if (auto it = dir->kids.find(name); it != dir->kids.end()) {
      n = it->second;  // need_new(): known to the plan already
    }
    if (n && n->type == S_IFLNK && (!last || follow)) {
      if (++links > kMaxSymlinks) fail(ELOOP, path + ": too many levels of symbolic links");
      if (!n->link_read) {
        char buf[PATH_MAX];
        ssize_t len = readlinkat(root_fd_, n->orig.c_str(), buf, sizeof(buf));
        if (len < 0) fail(errno, "cannot read symlink " + join(dir_path, name));
        n->link.assign(buf, static_cast<size_t>(len));
        n->link_read = true;
      }
      if (n->link.empty()) fail(ENOENT, path + ": empty symlink");
      if (n->link[0] == '/') fail(EXDEV, path + ": symlink " + join(dir_path, name) + " leads outside the mount");
      auto parts = split(n->link);
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) todo.push_back(*it);
      continue;
    }
    if (last) return Where{dir, name, n, join(dir_path, name)};
    if (!n) fail(ENOENT, path + ": " + join(dir_path, name) + " does not exist");
    if (n->type != S_IFDIR) fail(ENOTDIR, path + ": " + join(dir_path, name) + " is not a directory");
    dir = n;
    dir_path = join(dir_path, name);
  }
  // The path named the root itself (or only "." / "..").
  return Where{nullptr, "", root_, ""};
}

bool Planner::dir_empty(VNode* dir, const std::string& path) {
  for (const auto& [name, kid] : dir->kids)
    if (kid) return false;
  if (dir->fresh) return true;
  bool empty = true;
  Status listed = for_each_entry(root_fd_, dir->orig.empty() ? "." : dir->orig.c_str(), [&](const char* n, unsigned char) {
    auto it = dir->kids.find(n);
    if (it != dir->kids.end() && !it->second) return true;  // removed by this compound
    empty = false;
    return false;
  });
  if (!listed) fail(listed.err(), "cannot read directory " + path);
  return empty;
}

bool Planner::is_ancestor(VNode* a, VNode* b) {
  for (VNode* n = b; n; n = n->parent)
    if (n == a) return true;
  return false;
}

void Planner::put(VNode* dir, const std::string& name, VNode* n) {
  dir->kids[name] = n;
  if (n && n->type == S_IFDIR) n->parent = dir;
}

// A new object of this type at w (whose name is free): the directory's
// entry recorded, the node put, and its removal the undo step.
VNode* Planner::add_fresh(const Where& w, mode_t type) {
  touch_dir(w.dir, w.name);
  VNode* n = fresh(type, w.dir);
  put(w.dir, w.name, n);
  step(StepKind::RemoveCreated, w.path);
  return n;
}

int Planner::record(VNode* n) {
  if (n->rec >= 0) return n->rec;
  InodeRecord r;
  r.id = n->id;
  r.type = n->type;
  r.path = n->orig;
  // A file handle finds the inode wherever later operations move it.
  r.handle = handle_of(n);
  n->rec = static_cast<int>(plan_.rr.inodes.size());
  plan_.rr.inodes.push_back(std::move(r));
  return n->rec;
}

// An existing node's file handle ("" in a keys_only plan, or where the
// filesystem gives none); asked once per node.
const std::string& Planner::handle_of(VNode* n) {
  if (n->handle_read || keys_only_ || n->fresh) return n->handle;
  n->handle_read = true;
  char buf[sizeof(struct file_handle) + MAX_HANDLE_SZ];
  auto* fh = reinterpret_cast<struct file_handle*>(buf);
  fh->handle_bytes = MAX_HANDLE_SZ;
  int mnt = 0;
  const char* p = n->orig.empty() ? "." : n->orig.c_str();
  if (name_to_handle_at(root_fd_, p, fh, &mnt, 0) == 0) n->handle.assign(buf, sizeof(struct file_handle) + fh->handle_bytes);
  return n->handle;
}

void Planner::lock_x(VNode* n) {
  if (n->fresh) return;
  LockKey k{n->id.dev, n->id.ino};
  xkeys_[{k.dev, k.ino}] = true;
  if (!keys_only_) plan_.handles[k] = handle_of(n);  // sync/sync.h 4a
}

uint64_t Planner::protection(VNode* n) {
  if (!n->fsattrs_read) {
    n->fsattrs = protection_at(root_fd_, n->orig.empty() ? "." : n->orig.c_str());
    n->fsattrs_read = true;
  }
  return n->fsattrs;
}

// Invariant 11: an existing inode the compound changes, moves or removes.
void Planner::check_changeable(VNode* n) {
  if (n->fresh || !c_.options.txn) return;
  if (uint64_t a = protection(n)) fail_protected(a, n->orig);
}

// Invariant 11: a directory a recursive remove takes away whole. Names
// this compound already removed or replaced at its top are skipped.
void Planner::check_subtree(VNode* dir, const std::string& path) {
  if (dir->fresh || !c_.options.txn || keys_only_) return;
  std::vector<std::pair<std::string, std::string>> entries;  // (name, path under root/ now)
  Status listed = for_each_entry(root_fd_, dir->orig.empty() ? "." : dir->orig.c_str(), [&](const char* n, unsigned char) {
    if (!dir->kids.count(n)) entries.emplace_back(n, join(dir->orig, n));
    return true;
  });
  if (!listed) fail(listed.err(), "cannot read directory " + path);
  for (const auto& [name, kid] : dir->kids)
    if (kid && !kid->fresh) entries.emplace_back(name, kid->orig);
  for (const auto& [n, real] : entries) {
    if (uint64_t a = protection_at(root_fd_, real.c_str())) fail_protected(a, join(path, n));
    Fd sfd(openat(root_fd_, real.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (sfd) scan_protected(sfd.get(), join(path, n), 1);
  }
}

void Planner::touch_attrs(VNode* n) {
  if (n->fresh) return;
  check_changeable(n);  // invariant 11
  lock_x(n);
  InodeRecord& r = plan_.rr.inodes[static_cast<size_t>(record(n))];
  if (!r.has_attrs) {
    auto keep = std::move(r.attrs.xattrs);
    r.attrs = attrs_of(n->st);
    r.attrs.xattrs = std::move(keep);
    r.has_attrs = true;
    plan_.attrs.push_back({n->id.dev, n->id.ino});
    if (n->type == S_IFREG)
      plan_.files.push_back({{n->id.dev, n->id.ino}, n->orig, static_cast<uint64_t>(n->st.st_size)});
  }
}

// Called before the name changes in the virtual tree. Entry::absent: the
// name is free now, so it was free when the compound began, or an earlier
// operation of it freed the name (remove, rename away) and recorded an
// entry then, with the name taken (not absent): the kernel hears of it.
void Planner::touch_dir(VNode* dir, const std::string& name) {
  if (dir->fresh) return;
  touch_attrs(dir);
  auto it = dir->kids.find(name);
  plan_.entries.push_back({{dir->id.dev, dir->id.ino}, name, it != dir->kids.end() && !it->second});
}

void Planner::touch_data(VNode* n) {
  if (n->fresh) return;
  touch_attrs(n);
  InodeRecord& r = plan_.rr.inodes[static_cast<size_t>(n->rec)];
  if (!r.has_data) {
    r.has_data = true;
    r.size = static_cast<uint64_t>(n->st.st_size);
    plan_.data.push_back({n->id.dev, n->id.ino});
  }
}

void Planner::touch_xattr(VNode* n, const std::string& name) {
  if (n->fresh) return;
  touch_attrs(n);
  InodeRecord& r = plan_.rr.inodes[static_cast<size_t>(n->rec)];
  for (const auto& x : r.attrs.xattrs)
    if (x.name == name) return;
  XattrPre pre{name, false, {}};
  if (keys_only_) return;
  std::string p = "/proc/self/fd/";
  int fd = openat(root_fd_, n->orig.empty() ? "." : n->orig.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) fail(errno, "cannot open " + n->orig);
  p += std::to_string(fd);
  std::vector<char> buf(65536);
  ssize_t len = n->type == S_IFLNK ? -1 : getxattr(p.c_str(), name.c_str(), buf.data(), buf.size());
  if (n->type == S_IFLNK) errno = ENODATA;
  int e = errno;
  close(fd);
  if (len >= 0) {
    pre.present = true;
    pre.value.assign(buf.data(), static_cast<size_t>(len));
  } else if (e != ENODATA && e != ENOTSUP) {
    fail(e, "cannot read xattr " + name + " of " + n->orig);
  }
  r.attrs.xattrs.push_back(std::move(pre));
}

void Planner::step(StepKind k, std::string path, std::string path2, std::string image) {
  Step s;
  s.kind = k;
  s.op = op_;
  s.path = std::move(path);
  s.path2 = std::move(path2);
  s.image = std::move(image);
  plan_.rr.steps.push_back(std::move(s));
}

Where Planner::need_parent(const std::string& path, bool follow, bool leaf_unseen) {
  Where w = resolve(path, follow, leaf_unseen);
  if (!w.dir) fail(EEXIST, "/: the mount's root");
  return w;
}

// Where a new name goes; a name there already is EEXIST (mkdir, an
// exclusive create, symlink, link). A keys_only plan does not stat that
// name: had it existed, the full plan under the locks fails at this
// operation with EEXIST, and the locks that plan needs (of the operations
// before it, and of the parent directory) are all in the first one's set.
// The real plan stats it. So 1,000 new
// files cost 1,000 lookups, not 2,000.
Where Planner::need_new(const std::string& path) { return need_parent(path, false, keys_only_); }

VNode* Planner::need_node(const std::string& path, bool follow, Where* out) {
  Where w = resolve(path, follow);
  if (!w.node) fail(ENOENT, path);
  if (out) *out = w;
  return w.node;
}

void Planner::mkdir(const Op& op, PlannedOp& po) {
  if (op.parents) {
    // Every missing ancestor, outermost first; the last one is the target.
    auto parts = split(op.path);
    std::string prefix;
    for (const auto& part : parts) {
      prefix = join(prefix, part);
      Where w = resolve(prefix, true);
      if (w.node) {
        if (w.node->type != S_IFDIR) fail(ENOTDIR, prefix + ": exists and is not a directory");
        continue;
      }
      add_fresh(w, S_IFDIR);
      po.mkdirs.push_back(w.path);
    }
    po.noop = po.mkdirs.empty();
    po.path = po.mkdirs.empty() ? op.path : po.mkdirs.back();
    return;
  }
  Where w = need_new(op.path);
  if (w.node) fail(EEXIST, op.path);
  add_fresh(w, S_IFDIR);
  po.path = w.path;
}

void Planner::create(const Op& op, PlannedOp& po) {
  Where w = op.exclusive ? need_new(op.path) : need_parent(op.path, true);
  po.path = w.path;
  if (w.node) {
    if (op.exclusive) fail(EEXIST, op.path);
    if (w.node->type == S_IFDIR) fail(EISDIR, op.path);
    if (op.truncate && w.node->type == S_IFREG) touch_data(w.node);
    return;
  }
  add_fresh(w, S_IFREG);
  po.created = true;
}

// Write and Truncate: an existing regular file, changed in place.
void Planner::write_like(const Op& op, PlannedOp& po) {
  Where w;
  VNode* n = need_node(op.path, true, &w);
  if (n->type == S_IFDIR) fail(EISDIR, op.path);
  if (n->type != S_IFREG) fail(EINVAL, op.path + ": not a regular file");
  if (op.kind == OpKind::Write && op.fd_index >= 0 && static_cast<size_t>(op.fd_index) >= c_.fds.size())
    fail(EBADF, op.path + ": no passed descriptor " + std::to_string(op.fd_index));
  touch_data(n);
  po.path = w.path;
}

void Planner::copy(const Op& op, PlannedOp& po) {
  Where ws;
  VNode* src = need_node(op.path, true, &ws);
  if (src->type == S_IFDIR) fail(EISDIR, op.path);
  if (src->type != S_IFREG) fail(EINVAL, op.path + ": not a regular file");
  lock_x(src);  // read; Exclusive keeps it simple: compounds on one file serialize
  Where wd = need_parent(op.path2, true);
  po.path = ws.path;
  po.path2 = wd.path;
  if (wd.node) {
    if (wd.node->type == S_IFDIR) fail(EISDIR, op.path2);
    if (wd.node->type != S_IFREG) fail(EINVAL, op.path2 + ": not a regular file");
    touch_data(wd.node);
    return;
  }
  add_fresh(wd, S_IFREG);
  po.created = true;
}

void Planner::setattr(const Op& op, PlannedOp& po) {
  Where w;
  VNode* n = need_node(op.path, true, &w);
  touch_attrs(n);
  po.path = w.path;
}

void Planner::xattr(const Op& op, PlannedOp& po) {
  Where w;
  VNode* n = need_node(op.path, true, &w);
  if (n->fresh) {
    po.path = w.path;
    return;
  }
  touch_xattr(n, op.name);
  po.path = w.path;
  if (op.kind == OpKind::Removexattr || (op.xattr_flags & XATTR_REPLACE) || (op.xattr_flags & XATTR_CREATE)) {
    const auto& xs = plan_.rr.inodes[static_cast<size_t>(n->rec)].attrs.xattrs;
    // Only the pre-compound value is known here; later ops on the same
    // name within this compound are checked by the kernel at execution.
    (void)xs;
  }
}

void Planner::symlink(const Op& op, PlannedOp& po) {
  Where w = need_new(op.path);
  if (w.node) fail(EEXIST, op.path);
  if (op.target.empty()) fail(ENOENT, op.path + ": empty symlink target");
  VNode* n = add_fresh(w, S_IFLNK);
  n->link = op.target;
  n->link_read = true;
  po.path = w.path;
}

void Planner::link(const Op& op, PlannedOp& po) {
  Where wo;
  VNode* n = need_node(op.path, false, &wo);
  if (n->type == S_IFDIR) fail(EPERM, op.path + ": is a directory (hard links to directories are not allowed)");
  Where wn = need_new(op.path2);
  if (wn.node) fail(EEXIST, op.path2);
  touch_attrs(n);  // link count and ctime change
  touch_dir(wn.dir, wn.name);
  put(wn.dir, wn.name, n);
  step(StepKind::RemoveCreated, wn.path);
  po.path = wo.path;
  po.path2 = wn.path;
}

// The victim of a remove or a rename-overwrite: record how to bring it back.
void Planner::dispose_victim(VNode* v, const std::string& path, PlannedOp& po, bool recursive) {
  po.victim_path = path;
  if (v->type != S_IFDIR) {
    touch_attrs(v);  // link count and ctime
    po.victim = Victim::File;
    po.image = "v" + std::to_string(images_++);
    step(StepKind::RelinkVictim, path, {}, po.image);
    return;
  }
  // A directory, empty or not, is moved aside whole, so undo brings back
  // the same inode (invariant 4).
  if (!recursive && !dir_empty(v, path)) fail(ENOTEMPTY, path);
  check_changeable(v);  // invariant 11: the tree and all in it
  if (recursive) check_subtree(v, path);
  lock_x(v);
  po.victim = Victim::Tree;
  po.image = "t" + std::to_string(images_++);
  step(StepKind::RestoreTree, path, {}, po.image);
}

void Planner::remove(const Op& op, PlannedOp& po) {
  Where w;
  VNode* n = need_node(op.path, false, &w);
  if (!w.dir) fail(EBUSY, "cannot remove the mount's root");
  if (n->type == S_IFDIR && !n->fresh && !op.recursive && !dir_empty(n, w.path))
    fail(ENOTEMPTY, op.path);
  touch_dir(w.dir, w.name);
  dispose_victim(n, w.path, po, op.recursive);
  put(w.dir, w.name, nullptr);
  po.path = w.path;
}

void Planner::rename(const Op& op, PlannedOp& po) {
  const uint32_t known = RENAME_NOREPLACE | RENAME_EXCHANGE;
  if ((op.rename_flags & ~known) || op.rename_flags == known) fail(EINVAL, op.path + ": invalid rename flags");
  Where a, b;
  VNode* src = need_node(op.path, false, &a);
  if (!a.dir) fail(EBUSY, "cannot rename the mount's root");
  b = need_parent(op.path2, false);
  po.path = a.path;
  po.path2 = b.path;
  if (op.rename_flags & RENAME_EXCHANGE) return exchange(op, po, a, b);
  if (b.node && (op.rename_flags & RENAME_NOREPLACE)) fail(EEXIST, op.path2);
  if (b.node == src) {  // two names of one inode, or the same name: POSIX says do nothing
    po.noop = true;
    return;
  }
  if (src->type == S_IFDIR && is_ancestor(src, b.dir))
    fail(EINVAL, op.path2 + ": cannot move a directory into itself");
  if (b.node) {
    if (src->type == S_IFDIR && b.node->type != S_IFDIR) fail(ENOTDIR, op.path2);
    if (src->type != S_IFDIR && b.node->type == S_IFDIR) fail(EISDIR, op.path2);
    if (b.node->type == S_IFDIR && !dir_empty(b.node, b.path)) fail(ENOTEMPTY, op.path2);
    dispose_victim(b.node, b.path, po, false);
  }
  touch_dir(a.dir, a.name);
  touch_dir(b.dir, b.name);
  if (src->type == S_IFDIR) {
    touch_attrs(src);  // its ".." changes
  } else {
    check_changeable(src);  // invariant 11: renaming it changes it
    lock_x(src);
  }
  put(a.dir, a.name, nullptr);
  put(b.dir, b.name, src);
  step(StepKind::UndoRename, a.path, b.path);
}

void Planner::exchange(const Op& op, PlannedOp& po, Where& a, Where& b) {
  if (!b.node) fail(ENOENT, op.path2);
  VNode* x = a.node;
  VNode* y = b.node;
  if (x == y) {
    po.noop = true;
    return;
  }
  if ((x->type == S_IFDIR && is_ancestor(x, b.dir)) || (y->type == S_IFDIR && is_ancestor(y, a.dir)))
    fail(EINVAL, op.path + ": cannot exchange a directory with one inside it");
  touch_dir(a.dir, a.name);
  touch_dir(b.dir, b.name);
  for (VNode* n : {x, y}) {
    if (n->type == S_IFDIR) {
      touch_attrs(n);
    } else {
      check_changeable(n);  // invariant 11
      lock_x(n);
    }
  }
  put(a.dir, a.name, y);
  put(b.dir, b.name, x);
  step(StepKind::UndoExchange, a.path, b.path);
  po.exchange_step = plan_.rr.steps.size() - 1;
  if (y->fresh) po.amend_exchange = true;  // its identity is known only once it exists
  else plan_.rr.steps.back().id = y->id;
}

Plan Planner::run() {
  struct stat st;
  if (fstat(root_fd_, &st) != 0) {
    plan_.failed_op = 0;
    plan_.err = errno;
    plan_.message = "cannot stat the store's root";
    return std::move(plan_);
  }
  root_ = existing("", st);
  for (op_ = 0; op_ < c_.ops.size(); ++op_) {
    const Op& op = c_.ops[op_];
    PlannedOp po;
    try {
      switch (op.kind) {
        case OpKind::Mkdir: mkdir(op, po); break;
        case OpKind::Create: create(op, po); break;
        case OpKind::Write:
        case OpKind::Truncate: write_like(op, po); break;
        case OpKind::Copy: copy(op, po); break;
        case OpKind::Setattr: setattr(op, po); break;
        case OpKind::Setxattr:
        case OpKind::Removexattr: xattr(op, po); break;
        case OpKind::Symlink: symlink(op, po); break;
        case OpKind::Link: link(op, po); break;
        case OpKind::Rename: rename(op, po); break;
        case OpKind::Remove: remove(op, po); break;
      }
    } catch (const Fail& f) {
      plan_.failed_op = static_cast<int>(op_);
      plan_.err = f.err;
      plan_.message = f.msg;
      plan_.refuse = f.refuse;
      break;
    }
    plan_.ops.push_back(std::move(po));
  }
  for (const auto& [k, v] : xkeys_) plan_.exclusive.push_back({k.first, k.second});
  for (const auto& [k, v] : skeys_)
    if (!xkeys_.count(k)) plan_.shared.push_back({k.first, k.second});
  return std::move(plan_);
}

}  // namespace

Plan plan(int root_fd, const Compound& c, bool keys_only) { return Planner(root_fd, c, keys_only).run(); }

}  // namespace tcfs::txn
