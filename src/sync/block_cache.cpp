// sync/block_cache.cpp — the follower's local block cache (block_cache.h;
// notes cited as "block_cache.h N").
#include "sync/block_cache.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "util/metrics.h"
#include "util/dir.h"
#include "util/fault.h"

namespace tcfs::sync {
namespace {
prometheus::Histogram& block_fetches() {
  static prometheus::Histogram& h = metrics::latency(
      "tcfs_block_fetch_duration_seconds",
      "Blocks a follower fetched from the blobbers (read, verified), with the time it took.", {});
  return h;
}

constexpr const char* kTmp = "tmp";
constexpr const char* kClean = "clean";  // block_cache.h 2

// How messages name a block (block_cache.h 4).
std::string short_name(const blob::Hash& h) { return h.hex().substr(0, 16); }

bool is_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

size_t BlockCache::HashOf::operator()(const blob::Hash& h) const {
  size_t v;
  std::memcpy(&v, h.b.data(), sizeof v);  // a content hash: its bytes are uniform already
  return v;
}

std::string BlockCache::rel_of(const blob::Hash& h) {
  std::string x = h.hex();
  return x.substr(0, 2) + "/" + x;  // block_cache.h 1
}

std::string BlockCache::path_of(const blob::Hash& h) const { return dir_ + "/" + rel_of(h); }

Result<std::unique_ptr<BlockCache>> BlockCache::open(const std::string& dir, uint64_t limit, blob::ObjectStore& os) {
  if (limit == 0) return Status::error(EINVAL, "block cache " + dir + ": a limit of 0 bytes");
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return Status::from_errno("block cache: create " + dir);
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return Status::from_errno("block cache: open " + dir);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return Status::error(EBUSY, "block cache " + dir + ": already open");
    return Status::from_errno("block cache: lock " + dir);
  }
  if (::mkdirat(fd.get(), kTmp, 0700) != 0 && errno != EEXIST)
    return Status::from_errno("block cache: create " + dir + "/" + kTmp);
  // block_cache.h 2: take the clean marker away (durably) before anything changes.
  bool clean = false;
  if (::unlinkat(fd.get(), kClean, 0) == 0) {
    clean = true;
    if (::fsync(fd.get()) != 0) return Status::from_errno("block cache: fsync " + dir);
  } else if (errno != ENOENT) {
    return Status::from_errno("block cache: remove " + dir + "/" + kClean);
  }
  std::unique_ptr<BlockCache> c(new BlockCache(dir, std::move(fd), limit, os));
  (void)block_fetches();  // its metric is shown from the start
  c->was_clean_ = clean;
  TCFS_TRY(c->scan());
  c->opened_ = true;
  c->workers_.reserve(kPrefetchWorkers);
  for (size_t i = 0; i < kPrefetchWorkers; i++) c->workers_.emplace_back([p = c.get()] { p->worker(); });
  return Result<std::unique_ptr<BlockCache>>(std::move(c));
}

BlockCache::~BlockCache() {
  {
    MutexLock g(mu_);
    stopping_ = true;
    queue_.clear();
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();  // each ends its fetch in flight first
  if (opened_) mark_clean();
}

// block_cache.h 2: every block stored is on disk before the marker is.
void BlockCache::mark_clean() {
  if (::syncfs(dirfd_.get()) != 0) {
    spdlog::warn("block cache {}: syncfs: {} (not marked clean: the next open empties it)", dir_, std::strerror(errno));
    return;
  }
  Fd m(::openat(dirfd_.get(), kClean, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!m || ::fsync(m.get()) != 0 || ::fsync(dirfd_.get()) != 0)
    spdlog::warn("block cache {}: cannot write {}: {} (the next open empties it)", dir_, kClean, std::strerror(errno));
}

// block_cache.h 1: drop the temp files, index the blocks.
Status BlockCache::scan() {
  auto tmps = list_names(dirfd_.get(), kTmp, "block cache: list " + dir_ + "/" + kTmp);
  TCFS_TRY(tmps);
  for (const std::string& n : tmps.value()) {
    std::string p = std::string(kTmp) + "/" + n;
    if (::unlinkat(dirfd_.get(), p.c_str(), 0) != 0 && errno != ENOENT)
      spdlog::warn("block cache {}: cannot remove temp file {}: {}", dir_, p, std::strerror(errno));
  }
  if (!tmps.value().empty())
    spdlog::info("block cache {}: removed {} temp files left by a crash", dir_, tmps.value().size());

  auto top = list_names(dirfd_.get(), ".", "block cache: list " + dir_);
  TCFS_TRY(top);
  struct Found {
    struct timespec mtime;
    blob::Hash h;
    uint64_t size;
  };
  std::vector<Found> found;
  size_t wiped = 0;
  for (const std::string& sub : top.value()) {
    if (sub.size() != 2 || !is_hex(sub)) continue;
    Status st = for_each_entry(
        dirfd_.get(), sub.c_str(),
        [&](const char* name, unsigned char) {
          std::string_view n(name);
          if (n.size() != 64 || n.substr(0, 2) != sub || !is_hex(n)) return true;  // not ours: left alone
          auto h = blob::Hash::from_hex(n);
          struct stat sb;
          std::string rel = sub + "/" + std::string(n);
          if (!h || ::fstatat(dirfd_.get(), rel.c_str(), &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode))
            return true;
          if (!was_clean_) {  // block_cache.h 2: maybe torn by a crash
            if (::unlinkat(dirfd_.get(), rel.c_str(), 0) == 0 || errno == ENOENT) {
              wiped++;
              return true;
            }
            spdlog::warn("block cache {}: cannot remove {}: {}", dir_, rel, std::strerror(errno));
            return true;  // not indexed: never read, overwritten when fetched
          }
          found.push_back({sb.st_mtim, h.value(), static_cast<uint64_t>(sb.st_size)});
          return true;
        },
        "block cache: list " + dir_ + "/" + sub);
    if (!st && st.err() != ENOTDIR) return st;
  }
  if (wiped)
    spdlog::info("block cache {}: not closed cleanly last time: removed its {} blocks", dir_, wiped);
  std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) {
    if (a.mtime.tv_sec != b.mtime.tv_sec) return a.mtime.tv_sec < b.mtime.tv_sec;
    if (a.mtime.tv_nsec != b.mtime.tv_nsec) return a.mtime.tv_nsec < b.mtime.tv_nsec;
    return a.h < b.h;
  });
  MutexLock g(mu_);
  for (const Found& f : found) insert_locked(f.h, f.size);  // oldest first: the newest ends in front
  evict_locked();  // the limit may have shrunk since the last run
  return {};
}

void BlockCache::insert_locked(const blob::Hash& h, uint64_t size) {
  if (auto it = index_.find(h); it != index_.end()) {
    bytes_ -= it->second.size;
    lru_.erase(it->second.lru);
    index_.erase(it);
  }
  lru_.push_front(h);
  index_[h] = Entry{size, ++gen_, lru_.begin()};
  bytes_ += size;
}

void BlockCache::drop_locked(const blob::Hash& h) {
  auto it = index_.find(h);
  if (it == index_.end()) return;
  std::string rel = rel_of(h);
  if (::unlinkat(dirfd_.get(), rel.c_str(), 0) != 0 && errno != ENOENT)
    spdlog::warn("block cache {}: cannot remove {}: {}", dir_, rel, std::strerror(errno));
  bytes_ -= it->second.size;
  lru_.erase(it->second.lru);
  index_.erase(it);
}

void BlockCache::evict_locked() {  // block_cache.h 5
  while (bytes_ > limit_ && !lru_.empty()) {
    drop_locked(lru_.back());
    evicted_++;
  }
}

Result<std::string> BlockCache::read(const blob::BlockRef& ref, uint64_t off, uint64_t len) {
  if (off >= ref.len || len == 0) return std::string();
  const uint64_t n = std::min<uint64_t>(len, ref.len - off);
  const std::string rel = rel_of(ref.hash);
  for (int pass = 0; pass < 3; pass++) {
    Fd fd;
    uint64_t gen = 0;
    std::shared_ptr<Flight> fl;
    {
      UniqueLock lk(mu_);
      if (auto it = index_.find(ref.hash); it != index_.end()) {
        fd = Fd(::openat(dirfd_.get(), rel.c_str(), O_RDONLY | O_CLOEXEC));  // under mu_ (block_cache.h 3)
        if (fd) {
          lru_.splice(lru_.begin(), lru_, it->second.lru);
          gen = it->second.gen;
        } else if (errno == ENOENT) {
          spdlog::warn("block cache {}: block {} is gone from disk; fetching it again", dir_, short_name(ref.hash));
          drop_locked(ref.hash);
        } else {
          return Status::from_errno("block cache: open " + dir_ + "/" + rel);
        }
      }
      if (!fd) {
        if (auto f = flights_.find(ref.hash); f != flights_.end()) {  // block_cache.h 4: wait for it
          fl = f->second;
          waiting_++;
          lk.wait(cv_, [&] { return fl->done; });
          waiting_--;
          if (!fl->st && fl->prefetch) continue;  // block_cache.h 4: try it ourselves
          if (!fl->st) return fl->st;
          hits_++;
          return fl->data->substr(off, n);
        }
        fl = std::make_shared<Flight>();
        flights_[ref.hash] = fl;
        misses_++;
      }
    }
    if (!fd) {
      auto d = fetch(ref, fl);
      if (!d) return d.status();
      return d.value()->substr(off, n);
    }

    struct stat sb;
    if (::fstat(fd.get(), &sb) != 0) return Status::from_errno("block cache: stat " + dir_ + "/" + rel);
    uint64_t got = 0;
    std::string out;
    if (static_cast<uint64_t>(sb.st_size) == ref.len) {
      out.resize(n);
      while (got < n) {
        ssize_t r = ::pread(fd.get(), out.data() + got, n - got, static_cast<off_t>(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return Status::from_errno("block cache: read " + dir_ + "/" + rel);
        if (r == 0) break;
        got += static_cast<uint64_t>(r);
      }
      if (got == n) {
        hits_++;
        return out;
      }
    }
    spdlog::warn("block cache {}: block {}: its file is short ({} bytes, not {}): dropped, fetching it again", dir_,
                 short_name(ref.hash), static_cast<long long>(sb.st_size), ref.len);
    MutexLock g(mu_);
    if (auto it = index_.find(ref.hash); it != index_.end() && it->second.gen == gen) drop_locked(ref.hash);
    // the next pass misses, or finds the block another reader stored since
  }
  return Status::error(EIO, "block cache: block " + short_name(ref.hash) + ": its cache file keeps changing");
}

Result<Fd> BlockCache::open_block(const blob::BlockRef& ref) {
  const std::string rel = rel_of(ref.hash);
  Fd fd;
  uint64_t gen = 0;
  {
    MutexLock g(mu_);
    auto it = index_.find(ref.hash);
    if (it == index_.end()) return Status::error(ENOENT, "block cache: block " + short_name(ref.hash) + ": not cached");
    fd = Fd(::openat(dirfd_.get(), rel.c_str(), O_RDONLY | O_CLOEXEC));  // under mu_ (block_cache.h 3)
    if (!fd) {
      if (errno != ENOENT) return Status::from_errno("block cache: open " + dir_ + "/" + rel);
      spdlog::warn("block cache {}: block {} is gone from disk; fetching it again", dir_, short_name(ref.hash));
      drop_locked(ref.hash);
      return Status::error(ENOENT, "block cache: block " + short_name(ref.hash) + ": gone from disk");
    }
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    gen = it->second.gen;
  }
  struct stat sb;
  if (::fstat(fd.get(), &sb) != 0) return Status::from_errno("block cache: stat " + dir_ + "/" + rel);
  if (static_cast<uint64_t>(sb.st_size) != ref.len) {
    spdlog::warn("block cache {}: block {}: its file has {} bytes, not {}: dropped, fetching it again", dir_,
                 short_name(ref.hash), static_cast<long long>(sb.st_size), ref.len);
    MutexLock g(mu_);
    if (auto it = index_.find(ref.hash); it != index_.end() && it->second.gen == gen) drop_locked(ref.hash);
    return Status::error(ENOENT, "block cache: block " + short_name(ref.hash) + ": its file was the wrong size");
  }
  hits_++;
  return fd;
}

Result<std::shared_ptr<const std::string>> BlockCache::fetch(const blob::BlockRef& ref,
                                                             const std::shared_ptr<Flight>& fl) {
  const bool quiet = fl->prefetch;  // set before the flight was published; never changes
  if (fetch_hook_) fetch_hook_(ref);
  prometheus::Histogram& fetches = block_fetches();
  const auto t0 = std::chrono::steady_clock::now();
  auto r = blob::read_block(os_, ref);  // verified (blocks.h 4)
  fetches.Observe(metrics::since(t0));
  Status st;
  std::shared_ptr<const std::string> data;
  Result<std::string> tmp = Status::error(ECANCELED, "not stored");
  if (!r) {
    st = r.status().wrap("block cache: block " + short_name(ref.hash) + " (" + std::to_string(ref.len) + " bytes)");
    if (quiet)
      spdlog::debug("prefetch: {}", st.message());
    else
      spdlog::warn("{}", st.message());
  } else {
    data = std::make_shared<const std::string>(std::move(r.value()));
    tmp = write_temp(ref.hash, *data);
    if (!tmp) spdlog::warn("block cache {}: cannot keep block {}: {}", dir_, short_name(ref.hash), tmp.status().message());
  }
  std::string rename_err;
  {
    MutexLock g(mu_);
    if (tmp) {  // block_cache.h 2: whole, under its name, or not at all
      std::string rel = rel_of(ref.hash);
      if (::renameat(dirfd_.get(), tmp.value().c_str(), dirfd_.get(), rel.c_str()) == 0) {
        insert_locked(ref.hash, data->size());
        evict_locked();
      } else {
        rename_err = std::strerror(errno);
        ::unlinkat(dirfd_.get(), tmp.value().c_str(), 0);
      }
    }
    fl->st = st;
    fl->data = data;
    fl->done = true;
    flights_.erase(ref.hash);
  }
  cv_.notify_all();
  if (!rename_err.empty())
    spdlog::warn("block cache {}: cannot keep block {}: rename: {}", dir_, short_name(ref.hash), rename_err);
  if (!st) return st;
  return data;
}

void BlockCache::prefetch(const blob::BlockRef& ref) {
  if (ref.len == 0) return;
  Fd warm;  // block_cache.h 7: a cached block's file, to read ahead
  {
    MutexLock g(mu_);
    if (stopping_) return;
    if (index_.count(ref.hash)) {
      warm = Fd(::openat(dirfd_.get(), rel_of(ref.hash).c_str(), O_RDONLY | O_CLOEXEC));  // under mu_ (3)
    } else {
      if (queue_.size() >= kPrefetchQueue || flights_.count(ref.hash)) return;  // a hint: dropped (7)
      for (const auto& q : queue_)
        if (q.hash == ref.hash) return;
      queue_.push_back(ref);
    }
  }
  if (warm)
    (void)::posix_fadvise(warm.get(), 0, 0, POSIX_FADV_WILLNEED);  // starts the disk reads; never waits for them
  else
    work_cv_.notify_one();
}

void BlockCache::worker() {  // block_cache.h 7
  UniqueLock lk(mu_);
  for (;;) {
    lk.wait(work_cv_, [&]() TCFS_REQUIRES(mu_) { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    blob::BlockRef ref = std::move(queue_.front());
    queue_.pop_front();
    if (index_.count(ref.hash) || flights_.count(ref.hash)) {
      if (queue_.empty() && busy_ == 0) cv_.notify_all();  // drain()
      continue;
    }
    auto fl = std::make_shared<Flight>();
    fl->prefetch = true;
    flights_[ref.hash] = fl;
    busy_++;
    lk.unlock();
    prefetched_++;
    (void)fetch(ref, fl);  // silent: the reader's own read reports an error
    lk.lock();
    busy_--;
    cv_.notify_all();  // drain()
  }
}

void BlockCache::drain() {
  UniqueLock lk(mu_);
  lk.wait(cv_, [&]() TCFS_REQUIRES(mu_) { return queue_.empty() && busy_ == 0; });
}

Result<std::string> BlockCache::write_temp(const blob::Hash& h, const std::string& data) {
  std::string x = h.hex();
  if (::mkdirat(dirfd_.get(), x.substr(0, 2).c_str(), 0700) != 0 && errno != EEXIST)
    return Status::from_errno("create " + dir_ + "/" + x.substr(0, 2));
  std::string tmp = std::string(kTmp) + "/" + x + "." + std::to_string(tmp_seq_++);
  Fd fd(::openat(dirfd_.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) return Status::from_errno("create " + dir_ + "/" + tmp);
  auto fail = [&](const std::string& what) {
    Status s = Status::from_errno(what + " " + dir_ + "/" + tmp);
    ::unlinkat(dirfd_.get(), tmp.c_str(), 0);
    return s;
  };
  if (int e = fault::check("block_cache.store"); e != 0) {
    errno = e;
    return fail("write (injected)");
  }
  size_t done = 0;
  while (done < data.size()) {
    ssize_t w = ::write(fd.get(), data.data() + done, data.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return fail("write");
    done += static_cast<size_t>(w);
  }
  if (::close(fd.release()) != 0) return fail("close");
  return tmp;
}

uint64_t BlockCache::bytes() const {
  MutexLock g(mu_);
  return bytes_;
}

size_t BlockCache::blocks() const {
  MutexLock g(mu_);
  return index_.size();
}

size_t BlockCache::waiting() const {
  MutexLock g(mu_);
  return waiting_;
}

BlockCache::Stats BlockCache::stats() const {
  return Stats{hits_.load(), misses_.load(), evicted_.load(), prefetched_.load()};
}

}  // namespace tcfs::sync
