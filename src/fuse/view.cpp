// fuse/view.cpp — the follower's read-only view (view.h).
#include "fuse/view.h"

#include "fuse/metered_ops.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "util/mutex.h"

namespace tcfs::fusefs {
namespace {

struct Entry {
  std::string name;
  uint64_t id;
  uint32_t mode;
};

struct DirList {
  std::vector<Entry> ents;  // the round of opendir (view.h 3)
};

// Read-ahead (view.h 4): a read that starts near where the handle's reads
// got to so far is sequential; it has the cache prefetch (block_cache.h 7)
// the next kReadAhead blocks after the one it ends in. Reads of one handle
// may run concurrently and out of order (async reads): kSlack allows it.
constexpr size_t kReadAhead = 8;           // blocks (4 MiB each normally)
constexpr uint64_t kSlack = 2ull << 20;    // bytes either side of the expected offset

struct OpenFile {
  uint64_t id = 0, size = 0, version = 0;  // id: the node id (view.h 2)
  struct stat st {};                       // the version's attributes, for fstat (view.h 2)
  std::vector<blob::BlockRef> blocks;  // view.h 2: the content opened
  std::vector<uint64_t> starts;        // file offset of each block
  bool cached = false;                 // uses the kernel's page cache
  std::atomic<uint64_t> next{0};       // the furthest end of a read so far
  std::atomic<size_t> ahead{0};        // blocks [0, ahead) were asked for (prefetch or read)
  // view.h 4: the cache file of one block of `blocks` (the one reads were
  // last spliced from), kept open across the reads within it. Shared: a
  // read splicing from it keeps it open while another moves the handle on.
  Mutex mu;
  size_t fd_block TCFS_GUARDED_BY(mu) = 0;
  std::shared_ptr<const Fd> fd TCFS_GUARDED_BY(mu);
};

// view.h 2: which content the kernel's page cache of an inode holds.
struct PageCache {
  uint64_t version = 0;
  unsigned users = 0;  // open handles that use it
};

class View {
 public:
  View(sync::Image& img, sync::BlockCache& cache, Activity& act) : img_(img), cache_(cache), act_(act) {}
  sync::Image& img() { return img_; }
  sync::BlockCache& cache() { return cache_; }
  Activity& activity() { return act_; }

  // view.h 2: whether an open of `version` may use the page cache, and
  // whether what it holds may be kept.
  void open_cached(OpenFile& f, bool* keep) TCFS_EXCLUDES(mu_) {
    MutexLock g(mu_);
    PageCache& pc = pages_[f.id];
    if (pc.users && pc.version != f.version) {
      f.cached = false;  // another version is being read through the cache: read directly
      *keep = false;
      return;
    }
    *keep = pc.users || pc.version == f.version;
    pc.version = f.version;
    pc.users++;
    f.cached = true;
  }
  void release(const OpenFile& f) TCFS_EXCLUDES(mu_) {
    if (!f.cached) return;
    MutexLock g(mu_);
    auto it = pages_.find(f.id);
    if (it != pages_.end() && it->second.users) it->second.users--;
  }
  void forget(uint64_t id) TCFS_EXCLUDES(mu_) {
    MutexLock g(mu_);
    auto it = pages_.find(id);
    if (it != pages_.end() && !it->second.users) pages_.erase(it);
  }
  // view.h 2: the attributes of node ids with open handles, for a getattr
  // of an older version's node without a handle (stat of /proc/PID/fd/N).
  void hold(const OpenFile& f) TCFS_EXCLUDES(mu_) {
    MutexLock g(mu_);
    auto& h = held_[f.id];
    h.first = f.st;
    h.second++;
  }
  void unhold(const OpenFile& f) TCFS_EXCLUDES(mu_) {
    MutexLock g(mu_);
    auto it = held_.find(f.id);
    if (it != held_.end() && --it->second.second == 0) held_.erase(it);
  }
  std::optional<struct stat> held(uint64_t node) TCFS_EXCLUDES(mu_) {
    MutexLock g(mu_);
    auto it = held_.find(node);
    if (it == held_.end()) return std::nullopt;
    return it->second.first;
  }

 private:
  sync::Image& img_;
  sync::BlockCache& cache_;
  Activity& act_;
  Mutex mu_;  // protects pages_, held_
  std::unordered_map<uint64_t, PageCache> pages_ TCFS_GUARDED_BY(mu_);
  std::unordered_map<uint64_t, std::pair<struct stat, unsigned>> held_ TCFS_GUARDED_BY(mu_);  // node -> (attrs, handles)
};

View& view_of(fuse_req_t req) { return *static_cast<View*>(fuse_req_userdata(req)); }

// view.h 5: a request in flight (reads need none: their handle is open).
class Busy {
 public:
  explicit Busy(fuse_req_t req) : a_(view_of(req).activity()) { a_.begin(); }
  ~Busy() { a_.end(); }
  Busy(const Busy&) = delete;
  Busy& operator=(const Busy&) = delete;

 private:
  Activity& a_;
};

struct stat stat_of(const sync::InodeRec& r) {
  struct stat st {};
  st.st_ino = r.id;
  st.st_mode = r.mode;
  st.st_nlink = 1;  // link counts are not in the image (a directory's 1: find does not assume leaves)
  st.st_uid = r.uid;
  st.st_gid = r.gid;
  st.st_size = static_cast<off_t>(S_ISLNK(r.mode) ? r.target.size() : r.size);
  st.st_rdev = static_cast<dev_t>(r.rdev);
  st.st_blksize = 4096;
  st.st_blocks = static_cast<blkcnt_t>((r.size + 511) / 512);
  st.st_atim = {r.atime_sec, static_cast<long>(r.atime_nsec)};
  st.st_mtim = {r.mtime_sec, static_cast<long>(r.mtime_nsec)};
  st.st_ctim = st.st_mtim;
  return st;
}

// One LMDB read transaction per request (view.h 1).
template <typename Fn>
auto in_round(fuse_req_t req, Fn&& fn) -> decltype(fn(std::declval<meta::Txn&>())) {
  auto t = meta::Txn::begin(view_of(req).img().env(), false);
  if (!t) return t.status();
  return fn(*t);
}

uint64_t version_of(const sync::InodeRec& r) {
  uint64_t h = 1469598103934665603ull ^ r.size;  // FNV-1a over the block hashes
  for (const auto& b : r.blocks)
    for (uint8_t c : b.hash.b) h = (h ^ c) * 1099511628211ull;
  return h ? h : 1;
}

// view.h 2: a regular file's node id is its object id (below 2^kIdBits)
// with the low bits of its content version above; other objects' node id
// is their object id. st_ino is always the object id.
constexpr unsigned kIdBits = 44;
constexpr uint64_t kIdMask = (1ull << kIdBits) - 1;
uint64_t id_of(fuse_ino_t node) { return node & kIdMask; }
fuse_ino_t node_of(const sync::InodeRec& r) {
  if (!S_ISREG(r.mode) || r.id > kIdMask) return r.id;
  return r.id | (version_of(r) << kIdBits);
}

// The object a node id names in this round, whatever its version.
Result<sync::InodeRec> object(meta::Txn& t, sync::Image& img, fuse_ino_t node) {
  const uint64_t id = id_of(node);
  auto r = img.object(t, id);
  if (!r) return r.status();
  if (!r->has_value()) return Status::error(ESTALE, "object " + std::to_string(id) + " is not in this round");
  return std::move(**r);
}

// ... and only in the version the node id names (view.h 2).
Result<sync::InodeRec> version(meta::Txn& t, sync::Image& img, fuse_ino_t node) {
  auto r = object(t, img, node);
  if (r && node_of(*r) != node)
    return Status::error(ESTALE, "object " + std::to_string(id_of(node)) + " has other content in this round");
  return r;
}

EntryReply entry_of(const sync::InodeRec& r) {
  EntryReply e{};
  e.e.ino = node_of(r);
  e.e.generation = 1;
  e.e.attr = stat_of(r);
  e.e.attr_timeout = 0;  // view.h 1
  e.e.entry_timeout = 0;
  return e;
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Busy busy(req);
  reply(req, {"lookup", parent, name}, in_round(req, [&](meta::Txn& t) -> Result<EntryReply> {
          sync::Image& img = view_of(req).img();
          auto c = img.child(t, id_of(parent), name);
          if (!c) return c.status();
          if (!c->has_value()) return Status::error(ENOENT);
          auto r = object(t, img, **c);
          if (!r) return r.status();
          return entry_of(*r);
        }));
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t) {
  view_of(req).forget(ino);
  fuse_reply_none(req);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Busy busy(req);
  // view.h 2: through a handle (fstat, the kernel's checks before a read:
  // regular files only), the version that handle reads.
  if (fi) return reply(req, {"getattr", ino}, Result<AttrReply>(AttrReply{reinterpret_cast<OpenFile*>(fi->fh)->st, 0}));
  reply(req, {"getattr", ino}, in_round(req, [&](meta::Txn& t) -> Result<AttrReply> {
          auto r = version(t, view_of(req).img(), ino);
          if (r) return AttrReply{stat_of(*r), 0};
          if (auto st = view_of(req).held(ino); st && r.status().err() == ESTALE) return AttrReply{*st, 0};
          return r.status();
        }));
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  Busy busy(req);
  reply(req, {"readlink", ino}, in_round(req, [&](meta::Txn& t) -> Result<ReadlinkReply> {
          auto r = object(t, view_of(req).img(), ino);
          if (!r) return r.status();
          if (!S_ISLNK(r->mode)) return Status::error(EINVAL);
          return ReadlinkReply{r->target};
        }));
}

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Busy busy(req);
  if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
    return reply(req, {"open", ino}, Status::error(EROFS));
  auto f = std::make_unique<OpenFile>();
  Status st = in_round(req, [&](meta::Txn& t) -> Status {
    auto r = version(t, view_of(req).img(), ino);  // view.h 2: the content this node names
    if (!r) return r.status();
    if (S_ISDIR(r->mode)) return Status::error(EISDIR);
    f->id = ino;
    f->st = stat_of(*r);
    f->size = r->size;
    f->version = version_of(*r);
    f->blocks = std::move(r->blocks);
    uint64_t at = 0;
    for (const auto& b : f->blocks) f->starts.push_back(at), at += b.len;
    return Status();
  });
  if (!st) return reply(req, {"open", ino}, st);
  bool keep = false;
  view_of(req).open_cached(*f, &keep);
  fi->direct_io = f->cached ? 0 : 1;
  fi->keep_cache = keep ? 1 : 0;
  fi->noflush = 1;
  view_of(req).hold(*f);
  fi->fh = reinterpret_cast<uint64_t>(f.release());
  view_of(req).activity().begin();  // view.h 5: open until release
  reply(req, {"open", ino}, Result<OpenReply>(OpenReply{*fi}));
}

// The block holding file offset off (< f.size).
size_t block_at(const OpenFile& f, uint64_t off) {
  auto it = std::upper_bound(f.starts.begin(), f.starts.end(), off);
  return static_cast<size_t>(it - f.starts.begin()) - 1;
}

// Read-ahead for a read of [off, off+len) (len > 0, off < f.size).
void read_ahead(sync::BlockCache& cache, OpenFile& f, uint64_t off, uint64_t len) {
  uint64_t end = std::min(off + len, f.size);
  size_t last = block_at(f, end - 1);  // the reader itself reads up to this one
  uint64_t next = f.next.load(std::memory_order_relaxed);
  if (off + kSlack < next || off > next + kSlack) {  // a seek: sequential from here on, perhaps
    f.next.store(end, std::memory_order_relaxed);
    f.ahead.store(last + 1, std::memory_order_relaxed);
    return;
  }
  while (next < end && !f.next.compare_exchange_weak(next, end, std::memory_order_relaxed)) {
  }
  size_t want = std::min(f.blocks.size(), last + 1 + kReadAhead);
  size_t from = f.ahead.load(std::memory_order_relaxed);
  do {
    if (from >= want) return;
  } while (!f.ahead.compare_exchange_weak(from, want, std::memory_order_relaxed));
  for (size_t i = std::max(from, last + 1); i < want; i++) cache.prefetch(f.blocks[i]);
}

Result<std::string> read_range(sync::BlockCache& cache, const OpenFile& f, uint64_t off, uint64_t len) {
  std::string out;
  if (off >= f.size) return out;
  len = std::min(len, f.size - off);
  size_t i = block_at(f, off);
  while (len > 0 && i < f.blocks.size()) {
    uint64_t in = off - f.starts[i];
    uint64_t n = std::min<uint64_t>(len, f.blocks[i].len - in);
    auto part = cache.read(f.blocks[i], in, n);
    if (!part) return part.status();
    if (part->size() != n) return Status::error(EIO, "short block read");
    if (out.empty())
      out = std::move(*part);  // the common case, one block: no copy
    else
      out += *part;
    off += n, len -= n, i++;
  }
  return out;
}

// view.h 4: the open cache file of block i of the handle's block list, if
// the block is cached (else null: read_range fetches it, or waits for its
// prefetch, and reports any error).
std::shared_ptr<const Fd> block_fd(sync::BlockCache& cache, OpenFile& f, size_t i) {
  {
    MutexLock g(f.mu);
    if (f.fd && f.fd_block == i) return f.fd;
  }
  auto r = cache.open_block(f.blocks[i]);  // outside f.mu: it takes the cache's lock
  if (!r) return nullptr;
  auto p = std::make_shared<const Fd>(std::move(r.value()));
  MutexLock g(f.mu);
  f.fd_block = i;
  f.fd = p;  // the previous block's closes when its last read is sent
  return p;
}

// view.h 4: a read within one cached block, or across the end of one into
// the next (reads of 1 MiB and blocks of a few MiB: one in three), is
// spliced from the blocks' files. False when a block is not cached.
bool splice_cached(fuse_req_t req, fuse_ino_t ino, OpenFile& f, uint64_t off, uint64_t len) {
  const size_t i = block_at(f, off), j = block_at(f, off + len - 1);
  if (j > i + 1) return false;
  auto& cache = view_of(req).cache();
  std::shared_ptr<const Fd> fd[2];
  for (size_t k = i; k <= j; k++)
    if (!(fd[k - i] = block_fd(cache, f, k))) return false;
  struct {
    fuse_bufvec v;
    fuse_buf second;  // v.buf[1]: fuse_bufvec ends in a one-element array
  } b{};
  static_assert(offsetof(decltype(b), second) == offsetof(fuse_bufvec, buf) + sizeof(fuse_buf));
  b.v.count = j - i + 1;
  for (size_t k = 0; k < b.v.count; k++) {
    fuse_buf& x = k == 0 ? b.v.buf[0] : b.second;
    const uint64_t from = k == 0 ? off - f.starts[i] : 0;
    const uint64_t to = std::min(off + len, f.starts[i + k] + f.blocks[i + k].len) - f.starts[i + k];
    x.size = static_cast<size_t>(to - from);
    x.flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
    x.fd = fd[k]->get();
    x.pos = static_cast<off_t>(from);
  }
  reply_data(req, {"read", ino}, &b.v);  // the fds stay open until it is sent
  return true;
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  auto* f = reinterpret_cast<OpenFile*>(fi->fh);
  const uint64_t uoff = static_cast<uint64_t>(off);
  if (size > 0 && uoff < f->size) {
    read_ahead(view_of(req).cache(), *f, uoff, size);  // first: fetched beside this read
    if (splice_cached(req, ino, *f, uoff, std::min<uint64_t>(size, f->size - uoff))) return;
  }
  auto data = read_range(view_of(req).cache(), *f, static_cast<uint64_t>(off), size);
  if (!data) return reply(req, {"read", ino}, data.status());
  fuse_bufvec buf = FUSE_BUFVEC_INIT(data->size());
  buf.buf[0].mem = data->data();
  reply_data(req, {"read", ino}, &buf);
}

void op_release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  std::unique_ptr<OpenFile> f(reinterpret_cast<OpenFile*>(fi->fh));
  view_of(req).release(*f);
  view_of(req).unhold(*f);
  view_of(req).activity().end();
  fuse_reply_err(req, 0);
}

void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Busy busy(req);
  auto d = std::make_unique<DirList>();
  Status st = in_round(req, [&](meta::Txn& t) -> Status {
    sync::Image& img = view_of(req).img();
    auto r = object(t, img, ino);
    if (!r) return r.status();
    if (!S_ISDIR(r->mode)) return Status::error(ENOTDIR);
    auto ents = img.state().entries(t, id_of(ino));
    if (!ents) return ents.status();
    for (auto& [name, id] : *ents) {
      auto c = img.object(t, id);
      if (!c) return c.status();
      if (c->has_value()) d->ents.push_back({std::move(name), id, (*c)->mode});
    }
    return Status();
  });
  if (!st) return reply(req, {"opendir", ino}, st);
  fi->fh = reinterpret_cast<uint64_t>(d.release());
  fi->cache_readdir = 0;
  view_of(req).activity().begin();  // view.h 5: open until releasedir
  reply(req, {"opendir", ino}, Result<OpenReply>(OpenReply{*fi}));
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  Busy busy(req);
  auto* d = reinterpret_cast<DirList*>(fi->fh);
  std::vector<char> out(size);
  size_t used = 0;
  // Offsets: 1 ".", 2 "..", 3.. the entries.
  for (size_t i = static_cast<size_t>(off); i < d->ents.size() + 2; i++) {
    struct stat st {};
    const char* name = i == 0 ? "." : i == 1 ? ".." : d->ents[i - 2].name.c_str();
    st.st_ino = i < 2 ? id_of(ino) : d->ents[i - 2].id;
    st.st_mode = i < 2 ? S_IFDIR : d->ents[i - 2].mode & S_IFMT;
    size_t need = fuse_add_direntry(req, out.data() + used, size - used, name, &st, static_cast<off_t>(i + 1));
    if (need > size - used) break;
    used += need;
  }
  reply_buf(req, {"readdir", ino}, out.data(), used);
}

void op_releasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  delete reinterpret_cast<DirList*>(fi->fh);
  view_of(req).activity().end();
  fuse_reply_err(req, 0);
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  Busy busy(req);
  reply(req, {"getxattr", ino, name}, in_round(req, [&](meta::Txn& t) -> Result<XattrReply> {
          auto r = object(t, view_of(req).img(), ino);
          if (!r) return r.status();
          for (const auto& [n, v] : r->xattrs) {
            if (n != name) continue;
            if (size && v.size() > size) return Status::error(ERANGE);
            return XattrReply{size == 0, v.size(), size ? v : std::string()};
          }
          return Status::error(ENODATA);
        }));
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Busy busy(req);
  reply(req, {"listxattr", ino}, in_round(req, [&](meta::Txn& t) -> Result<XattrReply> {
          auto r = object(t, view_of(req).img(), ino);
          if (!r) return r.status();
          std::string names;
          for (const auto& x : r->xattrs) names += x.first + '\0';
          if (size && names.size() > size) return Status::error(ERANGE);
          return XattrReply{size == 0, names.size(), size ? names : std::string()};
        }));
}

void op_statfs(fuse_req_t req, fuse_ino_t) {
  StatfsReply r{};
  r.sv.f_bsize = r.sv.f_frsize = 4096;
  r.sv.f_namemax = 255;
  reply(req, {"statfs", 1}, Result<StatfsReply>(r));
}

void on_init(void*, fuse_conn_info* conn) {
  if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
  // view.h 4: replies spliced from the cache files (as session.cpp does).
  if (conn->capable & FUSE_CAP_SPLICE_WRITE) conn->want |= FUSE_CAP_SPLICE_WRITE;
  if (conn->capable & FUSE_CAP_SPLICE_MOVE) conn->want |= FUSE_CAP_SPLICE_MOVE;
  if (conn->capable & FUSE_CAP_CACHE_SYMLINKS) conn->want &= ~FUSE_CAP_CACHE_SYMLINKS;  // view.h 1
  conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
  conn->max_background = 64;
  conn->time_gran = 1;
}

fuse_lowlevel_ops make_view_ops() {
  fuse_lowlevel_ops o{};
  o.init = on_init;
  o.lookup = op_lookup;
  o.forget = op_forget;
  o.getattr = op_getattr;
  o.readlink = op_readlink;
  o.open = op_open;
  o.read = op_read;
  o.release = op_release;
  o.opendir = op_opendir;
  o.readdir = op_readdir;
  o.releasedir = op_releasedir;
  o.getxattr = op_getxattr;
  o.listxattr = op_listxattr;
  o.statfs = op_statfs;
  return o;
}

}  // namespace

void Activity::begin() {
  MutexLock g(mu_);
  busy_++;
}

void Activity::end() {
  {
    MutexLock g(mu_);
    if (busy_ && --busy_ == 0) idle_since_ = Clock::now();
    if (busy_) return;
  }
  cv_.notify_all();
}

void Activity::cancel() {
  {
    MutexLock g(mu_);
    cancelled_ = true;
  }
  cv_.notify_all();
}

bool Activity::wait_quiet(std::chrono::milliseconds limit) {
  const Clock::time_point deadline = Clock::now() + limit;
  UniqueLock lk(mu_);
  for (;;) {
    if (cancelled_) return false;
    const Clock::time_point now = Clock::now();
    if (busy_ == 0 && now - idle_since_ >= kQuietMs) return true;
    if (now >= deadline) return false;
    if (busy_)  // until the last busy thing ends
      lk.wait_until(cv_, deadline, [&]() TCFS_REQUIRES(mu_) { return cancelled_ || busy_ == 0; });
    else  // until the quiet moment (the loop looks again: busy since?)
      lk.wait_until(cv_, std::min(deadline, idle_since_ + kQuietMs), [&]() TCFS_REQUIRES(mu_) { return cancelled_; });
  }
}

Status serve_view(const std::string& fsname, const MountConfig& cfg, sync::Image& img, sync::BlockCache& cache,
                  Activity& activity, const std::function<void()>& on_mounted,
                  const std::function<void()>& before_unmount) {
  static const fuse_lowlevel_ops ops = metered(OpsSlot::kView, make_view_ops());
  View view(img, cache, activity);
  MountConfig c = cfg;
  c.fuse_opts.push_back("ro");  // view.h 4: the kernel refuses every change with EROFS
  SessionSpec spec;
  spec.ops = &ops;
  spec.userdata = &view;
  spec.fsname = fsname;
  spec.mounted = [&](fuse_session*, const std::string&) {
    spdlog::info("mounted follower store {} on {} (read-only)", fsname, cfg.mountpoint);
    if (on_mounted) on_mounted();
    return Status();
  };
  spec.before_unmount = before_unmount;
  return run_session(spec, c);
}

}  // namespace tcfs::fusefs
