// difftest/side.cpp — running ops on one tree, snapshots and tree comparison.
#include "side.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>

namespace difftest {

namespace {

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

Res sys(long long r) {
  Res res;
  res.ret = r < 0 ? -1 : r;
  res.err = r < 0 ? errno : 0;
  return res;
}

uint64_t fnv(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

const char* errname(int e) {
  const char* n = e ? strerrorname_np(e) : "OK";
  return n ? n : "E?";
}

// NUL-separated list -> sorted, comma-joined.
std::string sorted_names(const char* buf, ssize_t len) {
  std::vector<std::string> v;
  for (ssize_t i = 0; i < len;) {
    size_t l = strnlen(buf + i, size_t(len - i));
    v.emplace_back(buf + i, l);
    i += ssize_t(l) + 1;
  }
  std::sort(v.begin(), v.end());
  std::string s;
  for (auto& n : v) s += (s.empty() ? "" : ",") + n;
  return s;
}

bool explicit_time(const struct timespec& t) { return t.tv_sec >= kExplicitLo && t.tv_sec < kExplicitHi; }

struct Buf {  // reusable I/O buffers
  std::vector<char> v;
  char* get(size_t n) {
    if (v.size() < n) v.resize(n);
    return v.data();
  }
};
Buf g_buf, g_buf2;

Res xattr_value_res(ssize_t r, const char* buf) {
  Res res = sys(r);
  if (r > 0 && buf) res.data.assign(buf, size_t(r));
  return res;
}

}  // namespace

bool g_compare_blocks = false;

std::string stat_line(const struct stat& st) {
  char t = S_ISREG(st.st_mode) ? 'f' : S_ISDIR(st.st_mode) ? 'd' : S_ISLNK(st.st_mode) ? 'l' : '?';
  std::string s = fmt("%c mode=%04o nlink=%lu uid=%u gid=%u", t, unsigned(st.st_mode & 07777),
                      (unsigned long)st.st_nlink, st.st_uid, st.st_gid);
  if (!S_ISDIR(st.st_mode)) s += fmt(" size=%lld", (long long)st.st_size);
  if (g_compare_blocks && S_ISREG(st.st_mode) && st.st_size == 0) s += fmt(" blocks=%lld", (long long)st.st_blocks);
  if (explicit_time(st.st_mtim))
    s += fmt(" mtime=%lld.%09ld", (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  return s;
}

std::string format_res(const Res& r) {
  std::string s = r.ret < 0 ? fmt("-1 %s", errname(r.err)) : fmt("%lld", r.ret);
  if (r.binary)
    s += fmt(" [%zu bytes, fnv %016llx]", r.data.size(), (unsigned long long)fnv(r.data));
  else if (!r.data.empty())
    s += " [" + (r.data.size() > 300 ? r.data.substr(0, 300) + "..." : r.data) + "]";
  return s;
}

std::string diff_res(const Res& a, const Res& b) {
  if (a.ret != b.ret || a.err != b.err) return "return values differ";
  if (a.binary) {
    size_t n = std::min(a.data.size(), b.data.size()), i = 0;
    while (i < n && a.data[i] == b.data[i]) ++i;
    if (i == n) return fmt("data lengths differ (%zu vs %zu)", a.data.size(), b.data.size());
    return fmt("data differ first at byte %zu (0x%02x vs 0x%02x)", i, (unsigned char)a.data[i],
               (unsigned char)b.data[i]);
  }
  return "returned data differ";
}

Side::Side(std::string dir) : dir_(std::move(dir)) {
  for (int& fd : fds_) fd = -1;
  root_ = open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root_ < 0) throw std::runtime_error("cannot open " + dir_ + ": " + strerror(errno));
  struct stat st;
  if (fstat(root_, &st) == 0) root_mode_ = st.st_mode & 07777;
}

Side::~Side() {
  close_all();
  if (root_ >= 0) close(root_);
}

void Side::close_all() {
  for (int& fd : fds_) {
    if (fd >= 0) close(fd);
    fd = -1;
  }
}

bool Side::empty() const {
  int fd = openat(root_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR* d = fd >= 0 ? fdopendir(fd) : nullptr;
  if (!d) return false;
  bool e = true;
  while (dirent* de = readdir(d))
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) e = false;
  closedir(d);
  return e;
}

bool Side::dead() const {
  struct statfs sf;  // always a request to the filesystem, never answered from a cache
  return fstatfs(root_, &sf) != 0 && (errno == ENOTCONN || errno == ECONNABORTED);
}

namespace {
std::string remove_below(int dfd, const std::string& where) {
  int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR* d = fd >= 0 ? fdopendir(fd) : nullptr;
  if (!d) return "cannot open " + where + ": " + strerror(errno);
  std::vector<std::string> names;
  while (dirent* de = readdir(d))
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) names.push_back(de->d_name);
  std::string err;
  for (auto& n : names) {
    struct stat st;
    if (fstatat(dirfd(d), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      int sub = openat(dirfd(d), n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) { err = "cannot open " + where + "/" + n + ": " + strerror(errno); continue; }
      std::string e = remove_below(sub, where + "/" + n);
      close(sub);
      if (!e.empty()) err = e;
      if (unlinkat(dirfd(d), n.c_str(), AT_REMOVEDIR) != 0) err = "rmdir " + where + "/" + n + ": " + strerror(errno);
    } else if (unlinkat(dirfd(d), n.c_str(), 0) != 0) {
      err = "unlink " + where + "/" + n + ": " + strerror(errno);
    }
  }
  closedir(d);
  return err;
}
}  // namespace

std::string Side::clear() {
  close_all();
  std::string err = remove_below(root_, dir_);
  // A symlink to "." lets ops reach the root itself: put its mode and
  // xattrs back the way they were.
  fchmod(root_, root_mode_);
  char names[65536];
  ssize_t n = flistxattr(root_, names, sizeof names);
  for (ssize_t i = 0; i < n; i += ssize_t(strlen(names + i)) + 1)
    if (strncmp(names + i, "user.", 5) == 0) fremovexattr(root_, names + i);
  return err;
}

Res Side::exec(const Op& op) {
  const char* p1 = op.p1.c_str();
  int fd = fds_[op.slot];
  switch (op.kind) {
    case Kind::Open: {
      // The new fd replaces the slot's old one only if the open succeeded,
      // so that the slots stay mostly full.
      int nfd = openat(root_, p1, op.flags | O_CLOEXEC, op.mode);
      Res r = sys(nfd);
      if (nfd >= 0) {
        if (fd >= 0 && close(fd) != 0) r.data = fmt("close of previous fd: %s", errname(errno));
        fds_[op.slot] = nfd;
        r.ret = 0;
      }
      return r;
    }
    case Kind::Close: {
      if (fd < 0) return sys((errno = EBADF, -1));
      fds_[op.slot] = -1;
      return sys(close(fd));
    }
    case Kind::Write: case Kind::Pwrite: {
      char* buf = g_buf.get(size_t(op.len) + 1);
      fill_data(buf, size_t(op.len), op.dseed);
      return sys(op.kind == Kind::Write ? write(fd, buf, size_t(op.len)) : pwrite(fd, buf, size_t(op.len), op.off));
    }
    case Kind::Read: case Kind::Pread: {
      char* buf = g_buf.get(size_t(op.len) + 1);
      ssize_t n = op.kind == Kind::Read ? read(fd, buf, size_t(op.len)) : pread(fd, buf, size_t(op.len), op.off);
      Res r = sys(n);
      if (n > 0) r.data.assign(buf, size_t(n));
      r.binary = true;
      return r;
    }
    case Kind::Ftruncate: return sys(ftruncate(fd, op.len));
    case Kind::Fsync: return sys(fsync(fd));
    case Kind::Fdatasync: return sys(fdatasync(fd));
    case Kind::Fallocate: return sys(fallocate(fd, op.flags, op.off, op.len));
    case Kind::Lseek: {
      struct stat st;
      bool dir = fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
      Res r = sys(lseek(fd, op.off, op.flags));
      // Directory offsets are cookies private to each filesystem (ext4's
      // htree hashes, XFS's st_size-bounded offsets): compare nothing, and
      // rewind so that the position cannot leak into later ops.
      if (dir) {
        lseek(fd, 0, SEEK_SET);
        return Res{0, 0, "directory", false};
      }
      if (op.flags == SEEK_DATA || op.flags == SEEK_HOLE) {
        // Where a filesystem puts data/hole boundaries over unwritten
        // (fallocated) extents depends on its page cache, so two correct
        // filesystems may answer differently (see seek_valid). Check that
        // the offset moved, then put it at `off` on both sides so that
        // later ops see the same position either way.
        if (r.ret >= 0) {
          off_t pos = lseek(fd, 0, SEEK_CUR);
          if (pos != r.ret) r.data = fmt("position after lseek is %lld", (long long)pos);
        }
        if (op.off >= 0) lseek(fd, op.off, SEEK_SET);
      }
      return r;
    }
    case Kind::Fstat: {
      struct stat st;
      Res r = sys(fstat(fd, &st));
      if (r.ret == 0) r.data = stat_line(st);
      return r;
    }
    case Kind::Fchmod: return sys(fchmod(fd, op.mode));
    case Kind::Futimens: {
      struct timespec ts[2] = {{op.ts[0], op.ts[1]}, {op.ts[2], op.ts[3]}};
      return sys(futimens(fd, ts));
    }
    case Kind::FXattr: {
      const char* name = op.xname.c_str();
      switch (op.sub) {
        case 0: {
          char* buf = g_buf.get(size_t(op.len) + 1);
          fill_data(buf, size_t(op.len), op.dseed);
          return sys(fsetxattr(fd, name, buf, size_t(op.len), op.flags));
        }
        case 1: {
          char* buf = g_buf.get(65536);
          return xattr_value_res(fgetxattr(fd, name, buf, 65536), buf);
        }
        case 2: {
          char* buf = g_buf.get(65536);
          ssize_t n = flistxattr(fd, buf, 65536);
          Res r = sys(n);
          if (n > 0) r.data = sorted_names(buf, n);
          return r;
        }
        default: return sys(fremovexattr(fd, name));
      }
    }
    case Kind::CopyRange: {
      int out = fds_[op.slot2];
      if (op.sub) {
        loff_t in_off = op.off, out_off = op.off2;
        Res r = sys(copy_file_range(fd, &in_off, out, &out_off, size_t(op.len), unsigned(op.flags)));
        r.data = fmt("in_off=%lld out_off=%lld", (long long)in_off, (long long)out_off);
        return r;
      }
      return sys(copy_file_range(fd, nullptr, out, nullptr, size_t(op.len), unsigned(op.flags)));
    }
    case Kind::Truncate: return sys(truncate(full(op.p1).c_str(), op.len));
    case Kind::Unlink: return sys(unlinkat(root_, p1, 0));
    case Kind::Mkdir: return sys(mkdirat(root_, p1, op.mode));
    case Kind::Rmdir: return sys(unlinkat(root_, p1, AT_REMOVEDIR));
    case Kind::Rename: return sys(renameat2(root_, p1, root_, op.p2.c_str(), unsigned(op.flags)));
    case Kind::Link: return sys(linkat(root_, p1, root_, op.p2.c_str(), op.flags));
    case Kind::Symlink: return sys(symlinkat(op.p2.c_str(), root_, p1));
    case Kind::Readlink: {
      char buf[4096];
      ssize_t n = readlinkat(root_, p1, buf, size_t(op.len));
      Res r = sys(n);
      if (n > 0) r.data.assign(buf, size_t(n));
      return r;
    }
    case Kind::Chmod: return sys(fchmodat(root_, p1, op.mode, 0));
    case Kind::Utimens: {
      struct timespec ts[2] = {{op.ts[0], op.ts[1]}, {op.ts[2], op.ts[3]}};
      return sys(utimensat(root_, p1, ts, op.flags));
    }
    case Kind::Stat: {
      struct stat st;
      Res r = sys(fstatat(root_, p1, &st, op.flags));
      if (r.ret == 0) r.data = stat_line(st);
      return r;
    }
    case Kind::Setxattr: {
      char* buf = g_buf.get(size_t(op.len) + 1);
      fill_data(buf, size_t(op.len), op.dseed);
      std::string f = full(op.p1);
      return sys(op.sub ? lsetxattr(f.c_str(), op.xname.c_str(), buf, size_t(op.len), op.flags)
                        : setxattr(f.c_str(), op.xname.c_str(), buf, size_t(op.len), op.flags));
    }
    case Kind::Getxattr: {
      std::string f = full(op.p1);
      if (op.sub < 10) return sys(getxattr(f.c_str(), op.xname.c_str(), nullptr, 0));
      size_t size = op.sub < 25 ? size_t(op.len) : 65536;
      char* buf = g_buf.get(size);
      return xattr_value_res(getxattr(f.c_str(), op.xname.c_str(), buf, size), buf);
    }
    case Kind::Listxattr: {
      std::string f = full(op.p1);
      if (op.sub < 10) return sys(listxattr(f.c_str(), nullptr, 0));
      size_t size = op.sub < 25 ? size_t(op.len) : 65536;
      char* buf = g_buf.get(size);
      ssize_t n = listxattr(f.c_str(), buf, size);
      Res r = sys(n);
      if (n > 0) r.data = sorted_names(buf, n);
      return r;
    }
    case Kind::Removexattr: {
      std::string f = full(op.p1);
      return sys(op.sub ? lremovexattr(f.c_str(), op.xname.c_str()) : removexattr(f.c_str(), op.xname.c_str()));
    }
    case Kind::Readdir: {
      int dfd = openat(root_, p1, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dfd < 0) return sys(-1);
      DIR* d = fdopendir(dfd);
      std::vector<std::string> names;
      errno = 0;
      while (dirent* de = readdir(d)) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char t = de->d_type == DT_REG ? 'f' : de->d_type == DT_DIR ? 'd' : de->d_type == DT_LNK ? 'l'
               : de->d_type == DT_UNKNOWN ? '?' : 'x';
        names.push_back(std::string(de->d_name) + ":" + t);
      }
      Res r = sys(errno ? -1 : 0);
      closedir(d);
      std::sort(names.begin(), names.end());
      for (auto& n : names) r.data += (r.data.empty() ? "" : " ") + n;
      return r;
    }
    case Kind::Count: break;
  }
  return Res{};
}

namespace {

// Whether lseek result `r` of SEEK_DATA/SEEK_HOLE from `off` is true to a
// file of `size` bytes; zeros(from, to) says whether [from, to) reads as zeros.
std::string check_seek(int whence, const Res& r, long long size, long long off,
                       const std::function<bool(long long, long long)>& zeros) {
  if (whence == SEEK_DATA) {
    if (r.ret < 0) return r.err == ENXIO && zeros(off, size) ? "" : fmt("SEEK_DATA: %s but data follows", errname(r.err));
    if (r.ret < off || r.ret >= size) return "SEEK_DATA result outside [off, size)";
    return zeros(off, r.ret) ? "" : "SEEK_DATA skipped non-zero bytes";
  }
  if (r.ret < 0) return fmt("SEEK_HOLE: %s", errname(r.err));
  if (r.ret < off || r.ret > size) return "SEEK_HOLE result outside [off, size]";
  // A hole starts on a block boundary and reads as zeros at least to the next one.
  if (r.ret < size && !zeros(r.ret, std::min<long long>(size, (r.ret / 4096 + 1) * 4096)))
    return "SEEK_HOLE result points at non-zero bytes";
  return "";
}

}  // namespace

std::string Side::seek_valid(const Op& op, const Res& r) {
  int fd = fds_[op.slot];
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return "not a regular file";
  if (!r.data.empty()) return r.data;
  const long long size = st.st_size, off = op.off;
  if (off < 0) return r.err == EINVAL ? "" : "negative offset did not give EINVAL";
  if (off >= size) return r.err == ENXIO ? "" : "offset at or past EOF did not give ENXIO";
  // The slot's fd may be write-only: read through a new O_RDONLY open of
  // the same file (works for unlinked files too).
  int rfd = open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDONLY | O_CLOEXEC);
  if (rfd < 0) return fmt("cannot reopen the file to check: %s", errname(errno));
  auto zeros = [&](long long from, long long to) -> bool {
    char* buf = g_buf2.get(1 << 20);
    for (long long o = from; o < to;) {
      ssize_t n = pread(rfd, buf, size_t(std::min<long long>(to - o, 1 << 20)), o);
      if (n <= 0) return false;
      for (ssize_t i = 0; i < n; ++i)
        if (buf[i]) return false;
      o += n;
    }
    return true;
  };
  std::string v = check_seek(op.flags, r, size, off, zeros);
  close(rfd);
  return v;
}

// ---------------------------------------------------------------- snapshots

namespace {

void walk(int dfd, const std::string& rel, const std::string& absdir, Tree& t) {
  int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR* d = fd >= 0 ? fdopendir(fd) : nullptr;
  if (!d) {
    t[rel].err = fmt("cannot read directory: %s", errname(errno));
    return;
  }
  std::vector<std::string> names;
  while (dirent* de = readdir(d))
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) names.push_back(de->d_name);
  for (auto& n : names) {
    std::string path = rel == "." ? n : rel + "/" + n;
    Entry& e = t[path];
    if (fstatat(dirfd(d), n.c_str(), &e.st, AT_SYMLINK_NOFOLLOW) != 0) {
      e.err = fmt("lstat: %s", errname(errno));
      continue;
    }
    if (S_ISLNK(e.st.st_mode)) {
      char buf[4096];
      ssize_t l = readlinkat(dirfd(d), n.c_str(), buf, sizeof buf);
      if (l >= 0) e.target.assign(buf, size_t(l));
      else e.err = fmt("readlink: %s", errname(errno));
    }
    std::string abs = absdir + "/" + path;
    static char lbuf[65536], vbuf[65536];
    ssize_t ll = llistxattr(abs.c_str(), lbuf, sizeof lbuf);
    if (ll < 0) e.err = fmt("llistxattr: %s", errname(errno));
    for (ssize_t i = 0; i < ll; i += ssize_t(strlen(lbuf + i)) + 1) {
      ssize_t vl = lgetxattr(abs.c_str(), lbuf + i, vbuf, sizeof vbuf);
      e.xattrs[lbuf + i] = vl >= 0 ? std::string(vbuf, size_t(vl)) : fmt("<lgetxattr: %s>", errname(errno));
    }
    if (S_ISDIR(e.st.st_mode)) {
      int sub = openat(dirfd(d), n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) {
        e.err = fmt("open dir: %s", errname(errno));
        continue;
      }
      walk(sub, path, absdir, t);
      close(sub);
    }
  }
  closedir(d);
}

}  // namespace

Tree snapshot(const std::string& dir) {
  Tree t;
  Entry& root = t["."];
  if (lstat(dir.c_str(), &root.st) != 0) root.err = fmt("lstat: %s", errname(errno));
  static char lbuf[65536], vbuf[65536];
  ssize_t ll = llistxattr(dir.c_str(), lbuf, sizeof lbuf);
  for (ssize_t i = 0; i < ll; i += ssize_t(strlen(lbuf + i)) + 1) {
    ssize_t vl = lgetxattr(dir.c_str(), lbuf + i, vbuf, sizeof vbuf);
    root.xattrs[lbuf + i] = vl >= 0 ? std::string(vbuf, size_t(vl)) : "<error>";
  }
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    root.err = fmt("open: %s", errname(errno));
    return t;
  }
  walk(fd, ".", dir, t);
  close(fd);
  // Hard-link groups: the other names of each non-directory inode.
  std::map<ino_t, std::vector<std::string>> byino;
  for (auto& [p, e] : t)
    if (e.err.empty() && !S_ISDIR(e.st.st_mode)) byino[e.st.st_ino].push_back(p);
  for (auto& [p, e] : t) {
    if (!e.err.empty() || S_ISDIR(e.st.st_mode)) continue;
    for (auto& other : byino[e.st.st_ino])
      if (other != p) e.link_group += (e.link_group.empty() ? "" : ",") + other;
  }
  return t;
}

namespace {

// "" if equal, else where they first differ.
std::string compare_content(const std::string& a, const std::string& b) {
  int fa = open(a.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fa < 0) return fmt("open A: %s", errname(errno));
  int fb = open(b.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fb < 0) {
    int e = errno;
    close(fa);
    return fmt("open B: %s", errname(e));
  }
  constexpr size_t kChunk = 1 << 20;
  char* ba = g_buf.get(kChunk);
  char* bb = g_buf2.get(kChunk);
  std::string res;
  for (long long off = 0;; off += kChunk) {
    ssize_t na = pread(fa, ba, kChunk, off), nb = pread(fb, bb, kChunk, off);
    if (na < 0 || nb < 0) {
      res = fmt("read at %lld: A %s, B %s", off, na < 0 ? errname(errno) : "ok", nb < 0 ? errname(errno) : "ok");
      break;
    }
    size_t n = size_t(std::min(na, nb));
    if (memcmp(ba, bb, n) != 0) {
      size_t i = 0;
      while (ba[i] == bb[i]) ++i;
      res = fmt("content differs first at byte %lld (0x%02x vs 0x%02x)", off + (long long)i, (unsigned char)ba[i],
                (unsigned char)bb[i]);
      break;
    }
    if (na != nb) {
      res = fmt("reads at %lld return %zd vs %zd bytes", off, na, nb);
      break;
    }
    if (na == 0) break;
  }
  close(fa);
  close(fb);
  return res;
}

std::string show(const std::string& v) {
  if (v.size() > 64) return fmt("<%zu bytes, fnv %016llx>", v.size(), (unsigned long long)fnv(v));
  bool text = std::all_of(v.begin(), v.end(), [](char c) { return c >= 32 && c < 127; });
  if (text) return "\"" + v + "\"";
  std::string s = "0x";
  for (unsigned char c : v) s += fmt("%02x", c);
  return s;
}

}  // namespace

std::vector<std::string> compare_trees(const std::string& adir, const Tree& a, const std::string& bdir,
                                       const Tree& b, size_t limit) {
  std::vector<std::string> out;
  auto add = [&](const std::string& s) {
    if (out.size() < limit) out.push_back(s);
  };
  auto ia = a.begin(), ib = b.begin();
  while (ia != a.end() || ib != b.end()) {
    if (ib == b.end() || (ia != a.end() && ia->first < ib->first)) {
      add(fmt("%s: only in A (%s)", ia->first.c_str(), stat_line(ia->second.st).c_str()));
      ++ia;
      continue;
    }
    if (ia == a.end() || ib->first < ia->first) {
      add(fmt("%s: only in B (%s)", ib->first.c_str(), stat_line(ib->second.st).c_str()));
      ++ib;
      continue;
    }
    const std::string& p = ia->first;
    const Entry& ea = ia->second;
    const Entry& eb = ib->second;
    ++ia, ++ib;
    if (!ea.err.empty() || !eb.err.empty()) {
      if (ea.err != eb.err) add(fmt("%s: walk error A \"%s\" B \"%s\"", p.c_str(), ea.err.c_str(), eb.err.c_str()));
      continue;
    }
    std::string sa = stat_line(ea.st), sb = stat_line(eb.st);
    if (sa != sb) add(fmt("%s: stat A {%s} B {%s}", p.c_str(), sa.c_str(), sb.c_str()));
    if (ea.target != eb.target)
      add(fmt("%s: symlink target A \"%s\" B \"%s\"", p.c_str(), ea.target.c_str(), eb.target.c_str()));
    if (ea.xattrs != eb.xattrs) {
      std::string d;
      for (auto& [k, v] : ea.xattrs) {
        auto it = eb.xattrs.find(k);
        if (it == eb.xattrs.end()) d += " " + k + " only in A;";
        else if (it->second != v) d += " " + k + " = " + show(v) + " vs " + show(it->second) + ";";
      }
      for (auto& [k, v] : eb.xattrs)
        if (!ea.xattrs.count(k)) d += " " + k + " only in B;";
      add(fmt("%s: xattrs differ:%s", p.c_str(), d.c_str()));
    }
    if (ea.link_group != eb.link_group)
      add(fmt("%s: hard-link group A {%s} B {%s}", p.c_str(), ea.link_group.c_str(), eb.link_group.c_str()));
    if (S_ISREG(ea.st.st_mode) && S_ISREG(eb.st.st_mode) && ea.st.st_size == eb.st.st_size) {
      std::string c = compare_content(adir + "/" + p, bdir + "/" + p);
      if (!c.empty()) add(p + ": " + c);
    }
  }
  return out;
}

}  // namespace difftest
