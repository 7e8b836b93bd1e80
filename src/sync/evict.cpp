// sync/evict.cpp — eviction of clean files to stubs (evict.h; notes cited
// as "evict.h N").
#include "sync/evict.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <spdlog/spdlog.h>

#include "util/fault.h"
#include "util/fd.h"
#include "util/handle.h"
#include "util/dir.h"

namespace tcfs::sync {
namespace {

constexpr size_t kMaxTouched = size_t{1} << 18;  // last-open times kept (then the older half goes): ~10 MiB
constexpr unsigned kMaxDepth = 4096;
constexpr std::chrono::milliseconds kMaxIdle{10000};  // longest back-off after a pass that could free nothing

int64_t ns_of(const struct timespec& ts) { return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec; }

int64_t now_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ns_of(ts);
}

bool same_ctime(const FileState& f, const struct stat& sb) {
  return f.ctime_sec == sb.st_ctim.tv_sec && f.ctime_nsec == static_cast<uint32_t>(sb.st_ctim.tv_nsec);
}

}  // namespace

Evictor::Evictor(EvictEnv env, EvictOptions opt) : env_(std::move(env)), opt_(opt), state_(*env_.meta) {
  stats_.cap = opt_.cache_bytes;
  stats_.reserve = opt_.reserve_bytes;
}

Evictor::~Evictor() { stop(); }

void Evictor::set_in_use(std::function<bool(const ObjRef&)> f) {
  MutexLock g(mu_);
  in_use_ = std::move(f);
}

void Evictor::touch(const ObjRef& o) {
  MutexLock g(mu_);
  touched_[o.ino] = {o.handle, now_ns()};
  if (touched_.size() <= kMaxTouched) return;
  std::vector<int64_t> times;
  times.reserve(touched_.size());
  for (const auto& [i, t] : touched_) times.push_back(t.second);
  std::nth_element(times.begin(), times.begin() + static_cast<long>(times.size() / 2), times.end());
  int64_t median = times[times.size() / 2];
  std::erase_if(touched_, [&](const auto& kv) { return kv.second.second < median; });
}

uint64_t Evictor::fs_used() {
  struct statvfs v;
  if (::fstatvfs(env_.root_fd, &v) != 0) return 0;
  return (uint64_t{v.f_blocks} - v.f_bfree) * v.f_frsize;
}

uint64_t Evictor::fs_free() {
  struct statvfs v;
  if (::fstatvfs(env_.root_fd, &v) != 0) return ~uint64_t{0};
  return uint64_t{v.f_bavail} * v.f_frsize;
}

// evict.h 2: a clean file, kept if it is among the least recently used.
void Evictor::consider(int dirfd, const char* name, const struct stat& sb, meta::Txn& t, Scan& s) {
  if (sb.st_blocks == 0 || sb.st_size == 0) return;
  ObjRef o{sb.st_ino, make_handle(dirfd, name)};
  if (o.handle.empty()) return;
  if (env_.fetcher && env_.fetcher->is_stub(o)) return;
  if (env_.tracker && env_.tracker->marked(o)) return;
  auto f = state_.file_of(t, o);  // sync.h 4a: this file's record, not a gone one's
  if (!f || !f->has_value()) return;
  const FileState& fs = **f;
  if (fs.stub || !same_ctime(fs, sb) || fs.rec.size != static_cast<uint64_t>(sb.st_size)) return;
  int64_t last = std::max(ns_of(sb.st_atim), ns_of(sb.st_mtim));
  {
    MutexLock g(mu_);
    if (in_use_ && in_use_(o)) return;
    if (auto it = touched_.find(sb.st_ino); it != touched_.end() && it->second.first == o.handle)
      last = std::max(last, it->second.second);
  }
  Candidate c{last, sb.st_ino, static_cast<uint64_t>(sb.st_blocks) * 512};
  if (s.heap.size() < opt_.max_candidates) {
    s.heap.push_back(c);
    std::push_heap(s.heap.begin(), s.heap.end());
  } else if (!s.heap.empty() && c < s.heap.front()) {
    std::pop_heap(s.heap.begin(), s.heap.end());
    s.heap.back() = c;
    std::push_heap(s.heap.begin(), s.heap.end());
  }
}

// evict.h 1: measures every regular file under dirfd.
Status Evictor::scan_dir(int dirfd, meta::Txn& t, Scan& s, unsigned depth) {
  if (depth > kMaxDepth) return {};
  Status st;
  Status listed = for_each_entry(dirfd, ".", [&](const char* name, unsigned char type) {
    if (type != DT_UNKNOWN && type != DT_DIR && type != DT_REG) return true;
    struct stat sb;
    if (::fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) != 0) return true;  // gone meanwhile
    if (S_ISDIR(sb.st_mode)) {
      Fd sub(::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      return sub.get() < 0 || (st = scan_dir(sub.get(), t, s, depth + 1)).is_ok();
    }
    if (!S_ISREG(sb.st_mode)) return true;
    if (sb.st_nlink > 1 && !s.linked.emplace(sb.st_ino, true).second) return true;
    s.used += static_cast<uint64_t>(sb.st_blocks) * 512;
    consider(dirfd, name, sb, t, s);
    return true;
  }, "evict: open a directory to scan");
  return st ? listed : st;
}

// Re-checked under the freeze, between rounds (evict.h 3).
// o: the object the record names (opened by its handle, so sb is o's).
bool Evictor::clean_now(const ObjRef& o, const FileState& f, const struct stat& sb) {
  if (sb.st_ino != o.ino || sb.st_nlink == 0 || !S_ISREG(sb.st_mode)) return false;
  if (f.stub || !same_ctime(f, sb) || f.rec.size != static_cast<uint64_t>(sb.st_size)) return false;
  if (env_.tracker && env_.tracker->marked(o)) return false;
  if (env_.fetcher && env_.fetcher->is_stub(o)) return false;
  MutexLock g(mu_);
  return in_use_ && !in_use_(o);
}

// Evicts what of `batch` is still clean (evict.h 4); returns bytes freed.
Result<uint64_t> Evictor::evict_batch(const std::vector<Candidate>& batch, uint64_t* files) {
  struct Victim {
    uint64_t ino;
    FileState f;
    Fd fd;
    struct stat sb;
  };
  std::vector<Victim> vs;
  {
    auto t = meta::Txn::begin(*env_.meta, true);
    if (!t) return t.status();
    for (const Candidate& c : batch) {
      auto f = state_.file(*t, c.ino);
      if (!f) return f.status();
      if (!f->has_value()) continue;
      Fd fd(open_handle(env_.root_fd, (*f)->handle, O_WRONLY | O_NOATIME));
      if (fd.get() < 0) continue;  // gone, or not writable: not evicted
      struct stat sb;
      if (::fstat(fd.get(), &sb) != 0 || !clean_now(ObjRef{c.ino, (*f)->handle}, **f, sb)) continue;
      (*f)->stub = true;
      TCFS_TRY(state_.put_file(*t, c.ino, **f));
      vs.push_back({c.ino, std::move(**f), std::move(fd), sb});
    }
    if (vs.empty()) return uint64_t{0};
    TCFS_TRY(t->commit());  // evict.h 4a: stubs from here on, whatever happens next
  }
  for (const auto& v : vs) env_.fetcher->add_stub(ObjRef{v.ino, v.f.handle});
  TCFS_CRASH_POINT("evict.after_intent");
  uint64_t freed = 0;
  for (auto& v : vs) {
    if (int e = fault::check("evict.punch"); e != 0) return Status::error(e, "evict: punch a file's blocks (injected)");
    if (::fallocate(v.fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, v.sb.st_size) != 0)
      return Status::from_errno("evict: punch the blocks of object " + std::to_string(v.f.id));
    struct timespec ts[2] = {v.sb.st_atim, v.sb.st_mtim};
    if (::futimens(v.fd.get(), ts) != 0)
      return Status::from_errno("evict: put back the times of object " + std::to_string(v.f.id));
    TCFS_CRASH_POINT("evict.after_punch");
    struct stat after;
    if (::fstat(v.fd.get(), &after) != 0) return Status::from_errno("evict: stat object " + std::to_string(v.f.id));
    v.f.ctime_sec = after.st_ctim.tv_sec;
    v.f.ctime_nsec = static_cast<uint32_t>(after.st_ctim.tv_nsec);
    uint64_t was = static_cast<uint64_t>(v.sb.st_blocks) * 512, now = static_cast<uint64_t>(after.st_blocks) * 512;
    freed += was > now ? was - now : 0;
  }
  auto t = meta::Txn::begin(*env_.meta, true);
  if (!t) return t.status();
  for (const auto& v : vs) TCFS_TRY(state_.put_file(*t, v.ino, v.f));
  TCFS_TRY(t->commit());  // evict.h 4c
  *files += vs.size();
  return freed;
}

Result<EvictReport> Evictor::pass(uint64_t target) {
  EvictReport rep;
  Scan s;
  {
    auto t = meta::Txn::begin(*env_.meta, false);
    if (!t) return t.status();
    TCFS_TRY(scan_dir(env_.root_fd, *t, s, 0));
  }
  rep.used_before = s.used;
  rep.candidates = s.heap.size();
  if (target == 0) {
    target = opt_.cache_bytes ? opt_.cache_bytes / 100 * opt_.low_percent : s.used;
    uint64_t free = fs_free();
    if (opt_.reserve_bytes && free < opt_.reserve_bytes) {  // evict.h 1: the reserve
      uint64_t short_by = opt_.reserve_bytes - free + opt_.reserve_bytes / 10;
      target = std::min(target, s.used > short_by ? s.used - short_by : 0);
    }
  }
  std::sort_heap(s.heap.begin(), s.heap.end());  // oldest first
  uint64_t used = s.used;
  for (size_t at = 0; at < s.heap.size() && used > target;) {
    std::vector<Candidate> batch;
    uint64_t planned = 0;
    while (at < s.heap.size() && batch.size() < opt_.batch && used > target + planned) {
      planned += s.heap[at].bytes;
      batch.push_back(s.heap[at++]);
    }
    uint64_t files = 0;
    Result<uint64_t> freed = uint64_t{0};
    auto body = [&]() -> Status {
      std::shared_ptr<void> frozen = env_.freeze ? env_.freeze() : nullptr;  // evict.h 3
      freed = evict_batch(batch, &files);
      return freed.status();
    };
    Status st = env_.between_rounds ? env_.between_rounds(body) : body();
    if (!st) return st;
    used -= std::min(used, *freed);
    rep.files += files;
    rep.bytes += *freed;
  }
  rep.used_after = used;
  rep.still_over = used > target;
  uint64_t fsu = fs_used();
  uint64_t fetched = env_.fetcher ? env_.fetcher->bytes_fetched() : 0;
  MutexLock g(mu_);
  scan_used_ = used;
  scan_fs_used_ = fsu;
  scan_fetched_ = fetched;
  scanned_ = true;
  stats_.used = used;
  stats_.passes++;
  stats_.files_evicted += rep.files;
  stats_.bytes_evicted += rep.bytes;
  return rep;
}

void Evictor::start() {
  MutexLock g(mu_);
  if (bg_.joinable() || (opt_.cache_bytes == 0 && opt_.reserve_bytes == 0)) return;
  stop_ = false;
  bg_ = std::thread([this] { background(); });
}

void Evictor::stop() {
  {
    MutexLock g(mu_);
    if (!bg_.joinable()) return;
    stop_ = true;
  }
  cv_.notify_all();
  bg_.join();
}

void Evictor::background() {
  std::string last_logged;
  // A pass that ends still over and freed nothing (all dirty or open), or
  // failed, is not repeated at once: the next waits twice as long, up to
  // kMaxIdle, unless a round made marked files clean or the filesystem
  // grew by a twentieth of the cap since.
  auto idle = std::chrono::milliseconds(0);
  auto not_before = std::chrono::steady_clock::now();
  size_t pending_at_idle = 0;
  uint64_t fs_at_idle = 0, fetched_at_idle = 0;
  UniqueLock g(mu_);
  while (!stop_) {
    g.wait_for(cv_, std::chrono::milliseconds(opt_.check_ms), [&]() TCFS_REQUIRES(mu_) { return stop_; });
    if (stop_ || !in_use_) continue;
    size_t pending = env_.tracker ? env_.tracker->pending() : 0;
    uint64_t fsu = fs_used();
    uint64_t fetched = env_.fetcher ? env_.fetcher->bytes_fetched() : 0;
    bool grew = fsu > fs_at_idle + opt_.cache_bytes / 20 || fetched > fetched_at_idle + opt_.cache_bytes / 20;
    if (std::chrono::steady_clock::now() < not_before && pending >= pending_at_idle && !grew) continue;
    // The growth since the last scan: the filesystem's, or the bytes fetched
    // back since, whichever is more. The filesystem's alone undercounts
    // when something else frees space meanwhile (the endurant log's
    // segments, undo images, sync's files): fetched files then stayed
    // over the cap unseen.
    uint64_t grown = std::max(fsu > scan_fs_used_ ? fsu - scan_fs_used_ : 0,
                              fetched > scan_fetched_ ? fetched - scan_fetched_ : 0);
    uint64_t estimate = scan_used_ + grown;
    if (!scanned_) estimate = ~uint64_t{0};
    stats_.used = scanned_ ? estimate : 0;
    bool over = opt_.cache_bytes && estimate > opt_.cache_bytes;
    bool tight = opt_.reserve_bytes && fs_free() < opt_.reserve_bytes;
    if (!over && !tight) continue;
    g.unlock();
    auto rep = pass();
    if (rep && rep->files)
      spdlog::info("evict: {} files ({} bytes) to stubs; cache use {} of {} bytes", rep->files, rep->bytes,
                   rep->used_after, opt_.cache_bytes);
    if (rep && rep->still_over && env_.tracker && env_.tracker->dirty_files() && env_.want_sync)
      env_.want_sync();  // evict.h 5: dirty files become clean once synced
    g.lock();
    if (!rep || (rep->still_over && rep->files == 0)) {
      idle = std::min<std::chrono::milliseconds>(std::max(idle * 2, std::chrono::milliseconds(opt_.check_ms)),
                                                 kMaxIdle);
      not_before = std::chrono::steady_clock::now() + idle;
      pending_at_idle = env_.tracker ? env_.tracker->pending() : 0;
      fs_at_idle = fs_used();
      fetched_at_idle = env_.fetcher ? env_.fetcher->bytes_fetched() : 0;
    } else {
      idle = std::chrono::milliseconds(0);
      not_before = std::chrono::steady_clock::now();
    }
    std::string err = rep ? std::string() : rep.status().message();
    if (!err.empty() && err != last_logged) spdlog::warn("evict: pass failed, will retry: {}", err);
    last_logged = err;
    stats_.last_error = err;
  }
}

EvictStats Evictor::stats() {
  MutexLock g(mu_);
  return stats_;
}

}  // namespace tcfs::sync
