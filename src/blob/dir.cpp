// blob/dir.cpp — the dir://PATH blobber: one file per object under PATH.
//
// Design note:
//  1. An object KEY is the file PATH/KEY; the key's '/' components are
//     directories, created on demand under PATH (never PATH itself: a
//     blobber whose directory is gone is down, and says so).
//  2. A durable put (Durability::now) writes PATH/~tmp/<unique>, fsyncs
//     it, creates and fsyncs missing parent directories, renames it over
//     PATH/KEY and fsyncs the parent, and every ancestor directory that a
//     batched put changed since the last flush (3): readers see the old
//     object or the whole new one, and after OK the new one survives a
//     power cut. '~' is outside the key alphabet, so ~tmp never collides
//     with an object; list() skips it.
//  3. A batched put (Durability::batched, blobber.h) of a new key does the
//     same with no fsync (over an existing key it is a durable put, so an
//     object that was durable never turns into lost bytes): it starts the
//     temp file's writeback (sync_file_range, no wait, so the disk works
//     while the caller computes the next shard), renames, and records every directory whose entries it changed (the
//     key's parent, the parent of each directory it created). flush() is
//     one syncfs through a descriptor of PATH opened before the first
//     batched put wrote anything (syncfs reports writeback errors seen
//     since that open), then an fsync of each recorded directory. A failed
//     flush keeps the directories recorded; which puts it made durable is
//     unknown (blobber.h).
//  4. list walks the tree in key order (a directory's entries sorted as
//     "name/" for directories), skipping subtrees wholly at or before the
//     continuation token (the last key of the previous page), so a page
//     costs what it returns, not the whole tree.
//  5. Buffers: one 256 KiB buffer per call in flight.
//  6. A create-only put (put_new) writes and fsyncs the temp file as in 2,
//     then link(2)s it to PATH/KEY: the kernel refuses an existing name
//     with EEXIST in one step, so of racing creators (threads, processes,
//     hosts sharing the directory over a filesystem with atomic link) one
//     wins. The temp name is unlinked either way; the parent is fsynced
//     after a successful link.
//
// Thread-safety: mu_ protects the root descriptor and the recorded
// directories (a leaf lock, no I/O under it but the descriptor's open);
// an atomic counter names temp files; every call may run on many threads
// at once.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <set>
#include <vector>

#include "blob/backend.h"
#include "util/fd.h"
#include "util/mutex.h"

namespace tcfs::blob {
namespace {

constexpr size_t kBuf = 256 << 10;
constexpr const char* kTmp = "~tmp";

class DirBlobber final : public Blobber {
 public:
  DirBlobber(std::string root, int index) : root_(std::move(root)), url_("dir://" + root_), index_(index) {}
  const std::string& url() const override { return url_; }

  Status put(const std::string& key, uint64_t size, const Source& src, Durability d) override;
  Status put_new(const std::string& key, std::string_view data) override;
  Status flush() override;
  Status get(const std::string& key, uint64_t off, uint64_t len, const Sink& sink) override;
  Result<std::string> get_bytes(const std::string& key, uint64_t off, uint64_t len) override;
  Result<ObjectInfo> head(const std::string& key) override;
  Status del(const std::string& key) override;
  Result<ListPage> list(const std::string& prefix, const std::string& token, size_t max) override;
  Status probe() override;

 private:
  Status err(const std::string& op, const std::string& key) const {
    return Status::from_errno(url_ + ": " + op + " " + key);
  }
  Status make_parents(const std::string& key, Durability d);
  // A new temporary file under ~tmp/ (its path in *path), open for writing.
  Result<int> open_tmp(std::string* path);
  Status write_tmp(int fd, uint64_t size, const Source& src, const std::string& key, Durability d);
  // Opens root_fd_ if needed (3).
  Status watch() TCFS_EXCLUDES(mu_);
  // Records dir (relative, "" = PATH) as changed by a batched put (3).
  void changed(const std::string& dir) TCFS_EXCLUDES(mu_);
  // fsyncs every ancestor of key recorded by changed() (2).
  Status sync_ancestors(const std::string& key) TCFS_EXCLUDES(mu_);
  std::string abs(const std::string& rel) const { return rel.empty() ? root_ : root_ + "/" + rel; }
  // Appends keys > token under dir (relative "rel", "" = root) to out.
  Status walk(const std::string& rel, const std::string& prefix, const std::string& token, size_t max,
              std::vector<ObjectInfo>& out);

  std::string root_, url_;
  int index_;
  // Temp and probe names: one counter for the whole process, so two
  // blobbers of one directory in one process (two stores, a restore
  // beside a mount) never pick the same name.
  static inline std::atomic<uint64_t> seq_{0};
  Mutex mu_;  // protects root_fd_, dirty_
  Fd root_fd_ TCFS_GUARDED_BY(mu_);
  std::set<std::string> dirty_ TCFS_GUARDED_BY(mu_);  // directories batched puts changed since the last flush
};

// Objects are the tree's bytes and names (an erasure code keeps plain data
// slices): the blobber's directory is the daemon's alone. A root other users
// can enter is closed (0700) when the daemon owns it, so objects written by
// an older tcfs with wider modes are out of reach too.
Status make_private(int fd, const std::string& url) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return Status::from_errno("blobber " + url + ": stat");
  if ((st.st_mode & 077) == 0 || st.st_uid != ::geteuid()) return {};
  if (::fchmod(fd, st.st_mode & 07700) != 0) return Status::from_errno("blobber " + url + ": chmod 0700");
  return {};
}

Status fsync_dir(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno("open " + path);
  int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? Status{} : Status::from_errno("fsync " + path);
}

std::string parent_of(const std::string& p) {
  auto s = p.rfind('/');
  return s == std::string::npos ? "" : p.substr(0, s);
}

Status DirBlobber::make_parents(const std::string& key, Durability d) {
  std::string dir = parent_of(key);
  if (dir.empty()) return {};
  struct stat st;
  if (::stat((root_ + "/" + dir).c_str(), &st) == 0) return {};
  TCFS_TRY(make_parents(dir, d));
  if (::mkdir((root_ + "/" + dir).c_str(), 0700) != 0 && errno != EEXIST) return err("mkdir", dir);
  if (d == Durability::batched) {
    changed(parent_of(dir));
    return {};
  }
  return fsync_dir(abs(parent_of(dir)));
}

Status DirBlobber::write_tmp(int fd, uint64_t size, const Source& src, const std::string& key, Durability d) {
  std::vector<char> buf(kBuf);
  uint64_t done = 0;
  while (done < size) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(kBuf, size - done));
    auto got = src(buf.data(), want);
    if (!got) return got.status();
    if (*got == 0) return Status::error(EIO, url_ + ": put " + key + ": source ended at " + std::to_string(done) +
                                                 " of " + std::to_string(size) + " bytes");
    size_t n = std::min(*got, want);
    for (size_t w = 0; w < n;) {
      ssize_t r = ::write(fd, buf.data() + w, n - w);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return err("write", key);
      w += static_cast<size_t>(r);
    }
    done += n;
  }
  if (d == Durability::batched) {
    // Writeback starts now; flush() waits for it (3). Only a hint.
    (void)::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    return {};
  }
  if (::fsync(fd) != 0) return err("fsync", key);
  return {};
}

Status DirBlobber::watch() {
  MutexLock g(mu_);
  if (root_fd_.get() >= 0) return {};
  root_fd_ = Fd(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (root_fd_.get() < 0) return Status::from_errno("blobber " + url_);
  return make_private(root_fd_.get(), url_);
}

void DirBlobber::changed(const std::string& dir) {
  MutexLock g(mu_);
  dirty_.insert(dir);
}

Status DirBlobber::sync_ancestors(const std::string& key) {
  std::vector<std::string> todo;
  {
    MutexLock g(mu_);
    if (dirty_.empty()) return {};
    for (std::string d = parent_of(key); !d.empty();) {
      d = parent_of(d);
      if (dirty_.count(d)) todo.push_back(d);
    }
  }
  for (const auto& d : todo) TCFS_TRY(fsync_dir(abs(d)));
  return {};
}

Status DirBlobber::put(const std::string& key, uint64_t size, const Source& src, Durability d) {
  TCFS_TRY(injected("put", index_, url_, key));
  TCFS_TRY(check_key(key));
  if (d == Durability::batched) TCFS_TRY(watch());  // before any byte is written (3)
  std::string tmp;
  auto tfd = open_tmp(&tmp);
  if (!tfd) return tfd.status();
  int fd = *tfd;
  // A batched put never replaces an object that may be durable (e.g. one
  // a committed round names) with bytes a power cut could lose: over an
  // existing key it is a durable put of its data (3).
  struct stat old;
  if (d == Durability::batched && ::stat((root_ + "/" + key).c_str(), &old) == 0) d = Durability::now;
  Status st = write_tmp(fd, size, src, key, d);
  ::close(fd);
  if (st) st = make_parents(key, d);
  if (st && ::rename(tmp.c_str(), (root_ + "/" + key).c_str()) != 0) st = err("rename", key);
  if (!st) {
    ::unlink(tmp.c_str());
    return st;
  }
  if (d == Durability::batched) {
    changed(parent_of(key));
    return {};
  }
  TCFS_TRY(fsync_dir(abs(parent_of(key))));
  return sync_ancestors(key);  // 2: the key's whole path survives
}

Result<int> DirBlobber::open_tmp(std::string* path) {
  std::string tmpdir = root_ + "/" + kTmp;
  if (::mkdir(tmpdir.c_str(), 0700) != 0 && errno != EEXIST) return err("mkdir", kTmp);
  for (;;) {  // a leftover of a crashed process with our pid is skipped, not reused
    *path = tmpdir + "/" + std::to_string(::getpid()) + "." + std::to_string(seq_++);
    int fd = ::open(path->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) return fd;
    if (errno != EEXIST) return err("create", *path);
  }
}

// blobber.h put_new; design note 6.
Status DirBlobber::put_new(const std::string& key, std::string_view data) {
  TCFS_TRY(injected("put", index_, url_, key));
  TCFS_TRY(check_key(key));
  std::string tmp;
  auto fd = open_tmp(&tmp);
  if (!fd) return fd.status();
  size_t pos = 0;
  Status st = write_tmp(*fd, data.size(), [&](char* buf, size_t n) -> Result<size_t> {
    size_t take = std::min(n, data.size() - pos);
    std::memcpy(buf, data.data() + pos, take);
    pos += take;
    return take;
  }, key, Durability::now);
  ::close(*fd);
  if (st) st = make_parents(key, Durability::now);
  int link_errno = 0;
  if (st && ::link(tmp.c_str(), (root_ + "/" + key).c_str()) != 0) link_errno = errno;
  ::unlink(tmp.c_str());
  if (!st) return st;
  if (link_errno == EEXIST) return existing_is(*this, key, data);
  if (link_errno != 0) return Status::error(link_errno, url_ + ": create " + key + ": link: " + strerror(link_errno));
  TCFS_TRY(fsync_dir(abs(parent_of(key))));  // the create is durable
  return sync_ancestors(key);
}

Status DirBlobber::flush() {
  TCFS_TRY(injected("flush", index_, url_, ""));
  std::set<std::string> dirs;
  int fd;
  {
    MutexLock g(mu_);
    dirs.swap(dirty_);
    fd = root_fd_.get();
  }
  Status st;
  if (fd >= 0 && ::syncfs(fd) != 0) st = Status::from_errno(url_ + ": flush: syncfs");
  for (auto it = dirs.begin(); st && it != dirs.end(); ++it) st = fsync_dir(abs(*it));
  if (!st) {
    MutexLock g(mu_);
    dirty_.insert(dirs.begin(), dirs.end());  // 3: still to be made durable
  }
  return st;
}

Status DirBlobber::get(const std::string& key, uint64_t off, uint64_t len, const Sink& sink) {
  TCFS_TRY(injected("get", index_, url_, key));
  TCFS_TRY(check_key(key));
  Fd f(::open((root_ + "/" + key).c_str(), O_RDONLY | O_CLOEXEC));
  if (f.get() < 0) return err("get", key);
  std::vector<char> buf(kBuf);
  uint64_t left = len;
  while (left > 0) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(kBuf, left));
    ssize_t r = ::pread(f.get(), buf.data(), want, static_cast<off_t>(off));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return err("read", key);
    if (r == 0) break;
    TCFS_TRY(sink(std::string_view(buf.data(), static_cast<size_t>(r))));
    off += static_cast<uint64_t>(r);
    if (left != kToEnd) left -= static_cast<uint64_t>(r);
  }
  return {};
}

// get() into one string, read in place: the file's size bounds the range,
// so the result is sized once and pread fills it (no buffer, no sink copy).
Result<std::string> DirBlobber::get_bytes(const std::string& key, uint64_t off, uint64_t len) {
  TCFS_TRY(injected("get", index_, url_, key));
  TCFS_TRY(check_key(key));
  Fd f(::open((root_ + "/" + key).c_str(), O_RDONLY | O_CLOEXEC));
  if (f.get() < 0) return err("get", key);
  struct stat st;
  if (::fstat(f.get(), &st) != 0) return err("stat", key);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const uint64_t n = off >= size ? 0 : std::min(len, size - off);
  std::string out(static_cast<size_t>(n), '\0');
  uint64_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(f.get(), out.data() + got, static_cast<size_t>(n - got), static_cast<off_t>(off + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return err("read", key);
    if (r == 0) break;  // shrunk since the fstat: the caller checks the count (blobber.h)
    got += static_cast<uint64_t>(r);
  }
  out.resize(static_cast<size_t>(got));
  return out;
}

Result<ObjectInfo> DirBlobber::head(const std::string& key) {
  TCFS_TRY(injected("head", index_, url_, key));
  TCFS_TRY(check_key(key));
  struct stat st;
  if (::stat((root_ + "/" + key).c_str(), &st) != 0) return err("head", key);
  if (!S_ISREG(st.st_mode)) return Status::error(ENOENT, url_ + ": head " + key + ": not an object");
  return ObjectInfo{key, static_cast<uint64_t>(st.st_size)};
}

Status DirBlobber::del(const std::string& key) {
  TCFS_TRY(injected("del", index_, url_, key));
  TCFS_TRY(check_key(key));
  if (::unlink((root_ + "/" + key).c_str()) != 0 && errno != ENOENT) return err("delete", key);
  return {};
}

Status DirBlobber::walk(const std::string& rel, const std::string& prefix, const std::string& token, size_t max,
                        std::vector<ObjectInfo>& out) {
  std::string path = rel.empty() ? root_ : root_ + "/" + rel;
  DIR* d = ::opendir(path.c_str());
  if (!d) {
    if (errno == ENOENT && !rel.empty()) return {};
    return err("list", rel.empty() ? "/" : rel);
  }
  struct Entry {
    std::string sortkey;  // key, plus '/' for a directory
    bool dir;
  };
  std::vector<Entry> ents;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == ".." || (rel.empty() && name == kTmp)) continue;
    std::string key = rel.empty() ? name : rel + "/" + name;
    bool dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN) {
      struct stat st;
      if (::stat((root_ + "/" + key).c_str(), &st) != 0) continue;
      dir = S_ISDIR(st.st_mode);
    }
    ents.push_back({dir ? key + "/" : key, dir});
  }
  ::closedir(d);
  std::sort(ents.begin(), ents.end(), [](const Entry& a, const Entry& b) { return a.sortkey < b.sortkey; });
  for (const auto& e : ents) {
    if (out.size() >= max) break;
    const std::string& k = e.sortkey;
    if (e.dir) {
      bool prefix_fits = k.rfind(prefix, 0) == 0 || prefix.rfind(k, 0) == 0;
      bool after_token = token < k || token.rfind(k, 0) == 0;  // some key in the subtree is > token
      if (prefix_fits && after_token) TCFS_TRY(walk(k.substr(0, k.size() - 1), prefix, token, max, out));
      continue;
    }
    if (k.rfind(prefix, 0) != 0 || k <= token) continue;
    struct stat st;
    if (::stat((root_ + "/" + k).c_str(), &st) != 0) continue;  // deleted meanwhile
    out.push_back({k, static_cast<uint64_t>(st.st_size)});
  }
  return {};
}

Result<ListPage> DirBlobber::list(const std::string& prefix, const std::string& token, size_t max) {
  TCFS_TRY(injected("list", index_, url_, prefix));
  ListPage page;
  if (max == 0) max = 1000;
  // One more than asked tells whether the listing goes on.
  TCFS_TRY(walk("", prefix, token, max + 1, page.items));
  if (page.items.size() > max) {
    page.items.resize(max);
    page.next = page.items.back().key;
  }
  return page;
}

Status DirBlobber::probe() {
  struct stat st;
  if (::stat(root_.c_str(), &st) != 0) return Status::from_errno("blobber " + url_);
  if (!S_ISDIR(st.st_mode)) return Status::error(ENOTDIR, "blobber " + url_ + ": not a directory");
  TCFS_TRY(watch());
  std::string key = "probe." + std::to_string(::getpid()) + "." + std::to_string(seq_++);
  Status s = put_bytes(key, "tcfs probe");
  if (!s) return s.wrap("blobber " + url_ + ": cannot write");
  return del(key);
}

}  // namespace

Result<std::unique_ptr<Blobber>> open_dir(const std::string& path, const BlobberOptions& opt) {
  if (path.empty() || path[0] != '/') return Status::error(EINVAL, "blobber dir://" + path + ": path must be absolute");
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return std::unique_ptr<Blobber>(new DirBlobber(p, opt.index));
}

}  // namespace tcfs::blob
