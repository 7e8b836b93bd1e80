// sync/capture.cpp — point-in-time capture and rescan (capture.h; sync.h 2).
#include "sync/capture.h"

#include <dirent.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <set>
#include <spdlog/spdlog.h>
#include <unordered_map>

#include "util/fd.h"
#include "util/handle.h"
#include "util/dir.h"

namespace tcfs::sync {
namespace {

// Names in a directory (not "." or ".."), from an fd the caller keeps.
Result<std::vector<std::string>> list_dir(int dirfd) {
  auto names = list_names(dirfd, ".", "open directory");
  if (names) std::sort(names->begin(), names->end());
  return names;
}

Status read_xattrs(int fd, std::vector<std::pair<std::string, std::string>>& out) {
  std::string path = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = ::listxattr(path.c_str(), nullptr, 0);
  if (n < 0) return errno == ENOTSUP ? Status{} : Status::from_errno("listxattr");
  std::string names(static_cast<size_t>(n), '\0');
  n = ::listxattr(path.c_str(), names.data(), names.size());
  if (n < 0) return Status::from_errno("listxattr");
  names.resize(static_cast<size_t>(n));
  for (size_t at = 0; at < names.size();) {
    std::string name = names.c_str() + at;
    at += name.size() + 1;
    ssize_t v = ::getxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (v < 0) continue;  // removed meanwhile (cannot happen frozen) or unreadable
    std::string value(static_cast<size_t>(v), '\0');
    v = ::getxattr(path.c_str(), name.c_str(), value.data(), value.size());
    if (v < 0) continue;
    value.resize(static_cast<size_t>(v));
    out.emplace_back(std::move(name), std::move(value));
  }
  std::sort(out.begin(), out.end());
  return {};
}

// Reads size bytes of src into out (a small file, capture.h).
Status read_whole(int src, uint64_t size, std::string& out) {
  out.resize(static_cast<size_t>(size));
  for (size_t done = 0; done < out.size();) {
    ssize_t n = ::pread(src, out.data() + done, out.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::from_errno("read");
    if (n == 0) return Status::error(EIO, "shorter than its size (cannot happen frozen)");
    done += static_cast<size_t>(n);
  }
  return {};
}

// Clones (or copies) size bytes of src into a new stage file.
Status stage_copy(const CaptureEnv& env, int src, const std::string& name, uint64_t size) {
  Fd dst(::openat(env.stage_fd, name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (dst.get() < 0) return Status::from_errno("create sync stage file " + name);
  if (env.reflink && ::ioctl(dst.get(), FICLONE, src) == 0) return {};
  loff_t in = 0, out = 0;
  while (static_cast<uint64_t>(in) < size) {
    ssize_t n = ::copy_file_range(src, &in, dst.get(), &out, static_cast<size_t>(size - in), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::from_errno("copy to sync stage file " + name);
    if (n == 0) break;  // the file is shorter than its size said (cannot happen frozen)
  }
  return {};
}

struct Known {
  uint64_t id = 0;
  std::string handle;
  bool is_new = false;
  std::optional<FileState> old;
};

class Capturer {
 public:
  Capturer(const CaptureEnv& env, State& st, meta::Txn& t, Capture& cap) : env_(env), st_(st), t_(t), cap_(cap) {}

  Status run() {
    struct stat rs;
    if (::fstat(env_.root_fd, &rs) != 0) return Status::from_errno("stat store root");
    root_ = ObjRef{rs.st_ino, make_handle(env_.root_fd, "")};
    if (root_.handle.empty()) return Status::error(ENOTSUP, "store root: the filesystem gives no file handles");
    auto root = lookup(root_);
    if (!root) return root.status();
    if (!*root) {  // the first round: the root is id 1 (sync.h 4)
      known_[root_] = Known{kRootId, root_.handle, true, std::nullopt};
      cap_.next_id = std::max(cap_.next_id, kRootId + 1);
      want_[root_] = false;
    }
    for (const auto& o : cap_.marks.data) want_[norm(o)] = true;
    for (const auto& o : cap_.marks.attr) want_.emplace(norm(o), false);
    for (const auto& [p, name] : cap_.marks.names) work_.emplace_back(norm(p), name);
    TCFS_TRY(resolve_names());
    for (const auto& [o, data] : want_) TCFS_TRY(object(o, data));
    return drops();
  }

 private:
  // The store root lives as long as the store: its inode number alone names
  // it, whatever handle bytes a marker took for it.
  const ObjRef& norm(const ObjRef& o) const { return o.ino == root_.ino ? root_ : o; }

  // What the capture knows of the object o (sync.h 4a: exactly o, never a
  // gone object whose inode number o reuses): an id handed out this round,
  // or its synced record.
  Result<std::optional<Known>> lookup(const ObjRef& o) {
    if (auto it = known_.find(o); it != known_.end()) return std::optional<Known>(it->second);
    auto f = o == root_ ? st_.file(t_, o.ino) : st_.file_of(t_, o);
    if (!f) return f.status();
    if (!f->has_value()) return std::optional<Known>();
    Known k{(*f)->id, (*f)->handle, false, std::move(**f)};
    known_[o] = k;
    return std::optional<Known>(std::move(k));
  }

  // An O_PATH fd for a directory (cached for the capture); -1 if it is gone.
  Result<int> dir_fd(const ObjRef& o, const Known& k) {
    if (o == root_) return env_.root_fd;
    if (auto it = fds_.find(o); it != fds_.end()) return it->second.get();
    int fd = open_handle(env_.root_fd, k.handle, O_PATH | O_DIRECTORY);
    if (fd < 0 && (errno == ESTALE || errno == ENOENT || errno == ENOTDIR)) return -1;
    if (fd < 0) return Status::from_errno("reopen directory " + std::to_string(k.id));
    fds_[o] = Fd(fd);
    return fd;
  }

  // Name marks, parents first: one whose parent is not known yet waits for
  // a pass that makes it known (a new directory); what stays unknown is
  // not in the tree any more.
  Status resolve_names() {
    while (!work_.empty()) {
      size_t before = work_.size();
      std::deque<std::pair<ObjRef, std::string>> later;
      while (!work_.empty()) {
        auto n = std::move(work_.front());
        work_.pop_front();
        if (!done_.insert(n).second) continue;
        auto r = entry(n.first, n.second);
        if (!r) return r.status();
        if (!*r) {
          done_.erase(n);
          later.push_back(std::move(n));
        }
      }
      if (later.size() == before) break;  // no progress: the rest has no parent in the tree
      work_ = std::move(later);
    }
    return {};
  }

  // false: the parent is not known (yet).
  Result<bool> entry(const ObjRef& parent, const std::string& name) {
    auto pk = lookup(parent);
    if (!pk) return pk.status();
    if (!*pk) return false;
    auto pfd = dir_fd(parent, **pk);
    if (!pfd) return pfd.status();
    auto old = st_.entry(t_, (*pk)->id, name);
    if (!old) return old.status();
    struct stat sb;
    if (*pfd < 0 || ::fstatat(*pfd, name.c_str(), &sb, AT_SYMLINK_NOFOLLOW) != 0) {
      if (*pfd >= 0 && errno != ENOENT) return Status::from_errno("stat " + name);
      if (old->has_value()) {
        cap_.entries.push_back({(*pk)->id, name, 0});
        gone_.insert(**old);
      }
      return true;
    }
    ObjRef child{sb.st_ino, make_handle(*pfd, name.c_str())};
    if (child.handle.empty()) return Status::error(ENOTSUP, "file handle of " + name + ": not supported here");
    auto ck = lookup(child);
    if (!ck) return ck.status();
    uint64_t cid;
    if (*ck) {
      cid = (*ck)->id;
      want_.emplace(child, false);  // a rename or link changes its ctime
    } else {
      // New, or a new object that reuses a gone one's inode number (sync.h
      // 4a: the gone one's record does not make it known).
      cid = cap_.next_id++;
      known_[child] = Known{cid, child.handle, true, std::nullopt};
      want_[child] = true;
      if (S_ISDIR(sb.st_mode)) TCFS_TRY(walk_new_dir(*pfd, name, child));
    }
    if (!old->has_value() || **old != cid) cap_.entries.push_back({(*pk)->id, name, cid});
    if (old->has_value() && **old != cid) gone_.insert(**old);
    return true;
  }

  Status walk_new_dir(int pfd, const std::string& name, const ObjRef& dir) {
    Fd d(::openat(pfd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (d.get() < 0) return Status::from_errno("open new directory " + name);
    auto names = list_dir(d.get());
    if (!names) return names.status().wrap("list new directory " + name);
    for (auto& n : *names) work_.emplace_back(dir, std::move(n));
    fds_[dir] = std::move(d);
    return {};
  }

  Status object(const ObjRef& obj, bool data) {
    auto k = lookup(obj);
    if (!k) return k.status();
    if (!*k) return {};  // never in the tree as far as a capture saw: nothing to send
    Fd own;
    int fd = env_.root_fd;
    if (obj != root_) {
      own = Fd(open_handle(env_.root_fd, (*k)->handle, O_PATH | O_NOFOLLOW));
      if (own.get() < 0 && (errno == ESTALE || errno == ENOENT)) return {};  // gone
      if (own.get() < 0) return Status::from_errno("reopen object " + std::to_string((*k)->id));
      fd = own.get();
    }
    struct stat sb;
    if (::fstat(fd, &sb) != 0) return Status::from_errno("stat object " + std::to_string((*k)->id));
    if (sb.st_nlink == 0) return {};
    CapturedObject o;
    o.ino = obj.ino;
    o.is_new = (*k)->is_new;
    o.state.id = (*k)->id;
    o.state.handle = (*k)->handle;
    o.state.ctime_sec = sb.st_ctim.tv_sec;
    o.state.ctime_nsec = static_cast<uint32_t>(sb.st_ctim.tv_nsec);
    InodeRec& r = o.state.rec;
    r.id = (*k)->id;
    r.mode = sb.st_mode;
    r.uid = sb.st_uid;
    r.gid = sb.st_gid;
    r.size = S_ISREG(sb.st_mode) ? static_cast<uint64_t>(sb.st_size) : 0;
    r.atime_sec = sb.st_atim.tv_sec;
    r.atime_nsec = static_cast<uint32_t>(sb.st_atim.tv_nsec);
    r.mtime_sec = sb.st_mtim.tv_sec;
    r.mtime_nsec = static_cast<uint32_t>(sb.st_mtim.tv_nsec);
    r.rdev = (S_ISCHR(sb.st_mode) || S_ISBLK(sb.st_mode)) ? sb.st_rdev : 0;
    if (S_ISLNK(sb.st_mode)) {
      std::string t(static_cast<size_t>(sb.st_size) + 1, '\0');
      ssize_t n = ::readlinkat(fd, "", t.data(), t.size());
      if (n < 0) return Status::from_errno("readlink object " + std::to_string(r.id));
      t.resize(static_cast<size_t>(n));
      r.target = std::move(t);
    } else if (S_ISREG(sb.st_mode) || S_ISDIR(sb.st_mode)) {
      TCFS_TRY(read_xattrs(fd, r.xattrs));
    }
    if (S_ISREG(sb.st_mode)) {
      bool same = !data && (*k)->old && (*k)->old->rec.size == r.size;
      if (same) {
        r.blocks = (*k)->old->rec.blocks;
        o.state.stub = (*k)->old->stub;  // still only on the blobbers
      } else {
        // A stub's local bytes are holes: its content changes only after a
        // fetch made it whole (fetch.h), so this is a round to retry.
        if ((*k)->old && (*k)->old->stub)
          return Status::error(EAGAIN, "object " + std::to_string(r.id) + " changed while still a stub");
        TCFS_TRY(content(o));
      }
    }
    cap_.objects.push_back(std::move(o));
    return {};
  }

  // A regular file's data: read into memory when small (capture.h), else
  // cloned into the stage directory.
  Status content(CapturedObject& o) {
    const InodeRec& r = o.state.rec;
    Fd src(open_handle(env_.root_fd, o.state.handle, O_RDONLY | O_NOATIME));
    if (src.get() < 0) return Status::from_errno("open object " + std::to_string(r.id) + " for capture");
    if (r.size <= kMemoryFile && cap_.memory_bytes + r.size <= kMemoryBudget) {
      Status st = read_whole(src.get(), r.size, o.bytes);
      if (!st) return st.wrap("capture object " + std::to_string(r.id));
      cap_.memory_bytes += r.size;
    } else {
      o.stage = std::to_string(o.ino);
      TCFS_TRY(stage_copy(env_, src.get(), o.stage, r.size));
    }
    o.has_data = true;
    cap_.data_bytes += r.size;
    return {};
  }

  // Objects that lost a name this round and are not in the tree any more
  // (their handle is stale, or no link is left) are dropped.
  Status drops() {
    std::set<uint64_t> alive;
    for (const auto& o : cap_.objects) alive.insert(o.state.id);
    for (uint64_t id : gone_) {
      if (alive.count(id)) continue;
      auto ino = st_.ino_of(t_, id);
      if (!ino) return ino.status();
      if (!ino->has_value()) continue;
      auto f = st_.file(t_, **ino);
      if (!f) return f.status();
      if (!f->has_value() || (*f)->id != id) continue;
      Fd o(open_handle(env_.root_fd, (*f)->handle, O_PATH));
      struct stat sb;
      bool gone = o.get() < 0 ? (errno == ESTALE || errno == ENOENT) : (::fstat(o.get(), &sb) == 0 && sb.st_nlink == 0);
      if (gone) cap_.drops.emplace_back(id, **ino);
    }
    return {};
  }

  const CaptureEnv& env_;
  State& st_;
  meta::Txn& t_;
  Capture& cap_;
  std::set<uint64_t> gone_;  // ids whose entry was removed or rebound
  ObjRef root_;
  // Keyed by object, never by inode number alone (sync.h 4a): a name mark
  // of a gone directory and one of a new directory that took its number
  // are two marks, resolved against two objects.
  std::map<ObjRef, Known> known_;
  std::map<ObjRef, Fd> fds_;
  std::map<ObjRef, bool> want_;  // object -> data changed
  std::deque<std::pair<ObjRef, std::string>> work_;
  std::set<std::pair<ObjRef, std::string>> done_;
};

}  // namespace

Status capture(const CaptureEnv& env, State& st, Capture& cap) {
  auto t = meta::Txn::begin(st.env(), false);
  if (!t) return t.status();
  Capturer c(env, st, *t, cap);
  Status s = c.run();
  if (!s) {
    clear_stage(env.stage_fd);
    cap.objects.clear();
    cap.entries.clear();
  }
  return s;
}

void clear_stage(int stage_fd) {
  auto names = list_dir(stage_fd);
  if (!names) return;
  for (const auto& n : *names) ::unlinkat(stage_fd, n.c_str(), 0);
}

namespace {

class Rescanner {
 public:
  Rescanner(State& st, meta::Txn& t, Tracker& tr) : st_(st), t_(t), tr_(tr) {}

  // dirfd: an fd of the directory (the caller keeps it); dir: the object;
  // id: its remote id.
  Status walk(int dirfd, const ObjRef& dir, uint64_t id) {
    auto names = list_dir(dirfd);
    if (!names) return names.status();
    auto synced = st_.entries(t_, id);
    if (!synced) return synced.status();
    std::map<std::string, uint64_t> was(synced->begin(), synced->end());
    for (const auto& name : *names) {
      struct stat sb;
      if (::fstatat(dirfd, name.c_str(), &sb, AT_SYMLINK_NOFOLLOW) != 0) continue;
      ObjRef obj{sb.st_ino, make_handle(dirfd, name.c_str())};
      auto f = st_.file_of(t_, obj);  // sync.h 4a
      if (!f) return f.status();
      auto it = was.find(name);
      bool same = f->has_value() && it != was.end() && it->second == (*f)->id;
      if (!same) {
        tr_.name(dir, name);
      } else if ((*f)->ctime_sec != sb.st_ctim.tv_sec ||
                 (*f)->ctime_nsec != static_cast<uint32_t>(sb.st_ctim.tv_nsec)) {
        if ((*f)->stub) TCFS_TRY(stub_moved(dirfd, name, obj, **f));
        else tr_.data(obj);
      }
      if (it != was.end()) was.erase(it);
      if (same && S_ISDIR(sb.st_mode)) {
        Fd sub(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (sub.get() < 0) return Status::from_errno("rescan: open " + name);
        TCFS_TRY(walk(sub.get(), obj, (*f)->id));
      }
    }
    for (const auto& [name, child] : was) tr_.name(dir, name);  // gone from the directory
    return {};
  }

 private:
  // A stub's content cannot change before a fetch makes it whole (writers
  // fetch first), so a moved ctime is an attribute change or an eviction
  // cut short by the crash (evict.h 4), whose hole punch may have moved
  // the times: they are put back to the synced ones, never sent as new.
  Status stub_moved(int dirfd, const std::string& name, const ObjRef& obj, const FileState& f) {
    struct timespec ts[2] = {{f.rec.atime_sec, static_cast<long>(f.rec.atime_nsec)},
                             {f.rec.mtime_sec, static_cast<long>(f.rec.mtime_nsec)}};
    if (::utimensat(dirfd, name.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0)
      return Status::from_errno("rescan: put back the times of stub " + name);
    tr_.attr(obj);
    return {};
  }

  State& st_;
  meta::Txn& t_;
  Tracker& tr_;
};

}  // namespace

Status rescan(const CaptureEnv& env, State& st, Tracker& tracker) {
  auto t = meta::Txn::begin(st.env(), false);
  if (!t) return t.status();
  struct stat rs;
  if (::fstat(env.root_fd, &rs) != 0) return Status::from_errno("stat store root");
  ObjRef root_ref{rs.st_ino, make_handle(env.root_fd, "")};
  auto root = st.file(*t, rs.st_ino);
  if (!root) return root.status();
  if (!root->has_value()) {
    // Never synced: every entry of the root is new (capture walks the rest).
    auto names = list_dir(env.root_fd);
    if (!names) return names.status();
    tracker.attr(root_ref);
    for (const auto& n : *names) tracker.name(root_ref, n);
    return {};
  }
  if ((*root)->ctime_sec != rs.st_ctim.tv_sec || (*root)->ctime_nsec != static_cast<uint32_t>(rs.st_ctim.tv_nsec))
    tracker.attr(root_ref);
  Rescanner r(st, *t, tracker);
  return r.walk(env.root_fd, root_ref, (*root)->id);
}

}  // namespace tcfs::sync
