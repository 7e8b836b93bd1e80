// sync/fetch.cpp — stub fetch jobs (fetch.h; notes cited as "fetch.h N").
#include "sync/fetch.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "util/metrics.h"
#include "util/handle.h"
#include "util/fault.h"

namespace tcfs::sync {

namespace {
prometheus::Histogram& fetch_waits() {
  static prometheus::Histogram& h = metrics::latency(
      "tcfs_fetch_wait_seconds",
      "Requests that waited for a stub's blocks to come from the blobbers, with the wait (_count: the number).", {});
  return h;
}
}  // namespace

Fetcher::Fetcher(int root_fd, meta::Env& env, blob::ObjectStore& os) : root_(root_fd), state_(env), os_(os) {
  (void)fetch_waits();  // the family is shown from the start
}

Fetcher::~Fetcher() {
  UniqueLock g(mu_);
  stopping_ = true;
  cv_.notify_all();
  g.wait(cv_, [&]() TCFS_REQUIRES(mu_) { return jobs_.empty(); });
}

Status Fetcher::load() {
  auto t = meta::Txn::begin(state_.env(), false);
  if (!t) return t.status();
  std::vector<uint64_t> inos;
  TCFS_TRY(t->scan(state_.env().db(kFilesDb), "", [&](std::string_view k, std::string_view) {
    inos.push_back(from_be64(k));
    return true;
  }));
  std::unordered_map<uint64_t, std::string> stubs;
  for (uint64_t ino : inos) {
    auto f = state_.file(*t, ino);
    if (!f) return f.status();
    if (f->has_value() && (*f)->stub) stubs[ino] = (*f)->handle;
  }
  MutexLock g(mu_);
  stubs_ = std::move(stubs);
  return {};
}

// sync.h 4a: the stub at o.ino is o only if its handle is o's.
bool Fetcher::stub_locked(const ObjRef& o) const {
  auto it = stubs_.find(o.ino);
  return it != stubs_.end() && it->second == o.handle;
}

bool Fetcher::is_stub(const ObjRef& o) {
  MutexLock g(mu_);
  return stub_locked(o);
}

void Fetcher::add_stub(const ObjRef& o) {
  MutexLock g(mu_);
  stubs_[o.ino] = o.handle;
}

size_t Fetcher::stubs() {
  MutexLock g(mu_);
  return stubs_.size();
}

Status Fetcher::ensure(const ObjRef& o, uint64_t off, uint64_t len) {
  UniqueLock g(mu_);
  if (!stub_locked(o)) return {};
  std::shared_ptr<Job> job;
  if (auto it = jobs_.find(o); it != jobs_.end()) {
    job = it->second;
  } else {
    g.unlock();
    auto t = meta::Txn::begin(state_.env(), false);
    if (!t) return t.status();
    auto f = state_.file_of(*t, o);
    if (!f) return f.status();
    if (!f->has_value()) return Status::error(EIO, "stub inode " + std::to_string(o.ino) + " has no sync record");
    auto fresh = std::make_shared<Job>();
    fresh->blocks = (*f)->rec.blocks;
    uint64_t at = 0;
    for (const auto& b : fresh->blocks) {
      fresh->offs.push_back(at);
      at += b.len;
    }
    fresh->done.assign(fresh->blocks.size(), false);
    fresh->busy.assign(fresh->blocks.size(), false);
    g.lock();
    if (!stub_locked(o)) return {};  // fetched meanwhile
    if (stopping_) return Status::error(ESHUTDOWN, "fetch of object " + std::to_string((*f)->id) + ": stopping");
    auto [slot, inserted] = jobs_.emplace(o, fresh);
    job = slot->second;
    if (inserted) {
      FileState fs = std::move(**f);
      std::thread([this, o, job, fs = std::move(fs)]() mutable { run(o, job, std::move(fs)); }).detach();
    }
  }
  if (len == 0) return {};
  // The blocks under [off, off+len): wanted first (fetch.h 2).
  std::vector<size_t> need = missing(*job, off, len);
  if (need.empty()) return {};
  job->wanted.insert(job->wanted.end(), need.begin(), need.end());
  cv_.notify_all();
  metrics::Timer timed(fetch_waits());
  g.wait(cv_, [&] {
    if (job->finished) return true;
    for (size_t i : need)
      if (!job->done[i]) return false;
    return true;
  });
  for (size_t i : need)
    if (!job->done[i])
      return Status::error(job->err ? EIO : job->err.err(), "fetch from the blobbers: " + job->err.message());
  return {};
}

std::vector<size_t> Fetcher::missing(const Job& job, uint64_t off, uint64_t len) {
  std::vector<size_t> need;
  for (size_t i = 0; i < job.blocks.size(); i++) {
    uint64_t a = job.offs[i], b = a + job.blocks[i].len;
    if (b > off && (len == ~uint64_t{0} || a < off + len) && !job.done[i]) need.push_back(i);
  }
  return need;
}

bool Fetcher::is_local(const ObjRef& o, uint64_t off, uint64_t len) {
  MutexLock g(mu_);
  if (!stub_locked(o)) return true;
  if (len == 0) return true;
  auto it = jobs_.find(o);
  return it != jobs_.end() && missing(*it->second, off, len).empty();
}

// A job's lead thread: starts helpers (fetch.h 2), fetches with them, and
// once every block is written completes the file (fetch.h 3).
void Fetcher::run(ObjRef o, std::shared_ptr<Job> job, FileState fs) {
  int fd = open_handle(root_, fs.handle, O_WRONLY);
  Status st = fd < 0 ? Status::from_errno("open stub " + std::to_string(fs.rec.id)) : Status{};
  Mutex write_mu;  // one block's write and the times after it (fetch.h 2)
  std::vector<std::thread> helpers;
  if (st) {
    {
      MutexLock g(mu_);
      size_t want = std::min<size_t>(kDepth, job->blocks.size());
      while (helpers.size() + 1 < want && helpers_ < kMaxHelpers) {
        helpers_++;
        helpers.emplace_back([&] {
          Status h = fetch_all(*job, fd, fs, write_mu);
          MutexLock l(mu_);
          if (!h && job->err) job->err = h;
          helpers_--;
          cv_.notify_all();
        });
      }
    }
    Status own = fetch_all(*job, fd, fs, write_mu);
    for (auto& t : helpers) t.join();
    MutexLock g(mu_);
    st = job->err ? own : job->err;
  }
  if (st) st = complete(o, fd);
  if (fd >= 0) ::close(fd);
  if (!st) spdlog::error("fetch of object {} (inode {}): {}", fs.rec.id, o.ino, st.message());
  MutexLock l(mu_);
  job->err = st;
  job->finished = true;
  if (st && stub_locked(o)) stubs_.erase(o.ino);  // fetch.h 3: an ordinary file from here on
  jobs_.erase(o);
  cv_.notify_all();
}

std::optional<size_t> Fetcher::pick(Job& job) {
  while (!job.wanted.empty() && (job.done[job.wanted.front()] || job.busy[job.wanted.front()]))
    job.wanted.erase(job.wanted.begin());
  if (!job.wanted.empty()) return job.wanted.front();
  while (job.next < job.done.size() && (job.done[job.next] || job.busy[job.next])) job.next++;
  if (job.next < job.done.size()) return job.next;
  return std::nullopt;
}

Status Fetcher::fetch_all(Job& job, int fd, const FileState& f, Mutex& write_mu) {
  for (;;) {
    size_t i;
    {
      MutexLock g(mu_);
      if (stopping_) return Status::error(ESHUTDOWN, "stopping");
      if (!job.err) return {};  // another thread of the job failed
      auto p = pick(job);
      if (!p) return {};
      i = *p;
      job.busy[i] = true;
    }
    auto data = blob::read_block(os_, job.blocks[i]);  // fetch.h 4: verified, or an error
    Status st = data ? Status{} : Status::error(EIO, "object " + std::to_string(f.rec.id) + ": " + data.status().message());
    if (st) {
      MutexLock w(write_mu);
      st = write_block(fd, *data, job.offs[i], f);
    }
    MutexLock g(mu_);
    job.busy[i] = false;
    if (!st) {
      if (job.err) job.err = st;
      cv_.notify_all();
      return st;
    }
    fetched_ += data->size();
    job.done[i] = true;
    cv_.notify_all();
  }
}

// Writes one fetched block, then puts the object's times back: the write
// moved them, and a reader woken now must see the object's own (fetch.h 2).
Status Fetcher::write_block(int fd, const std::string& data, uint64_t off, const FileState& f) {
  for (size_t w = 0; w < data.size();) {
    ssize_t n = ::pwrite(fd, data.data() + w, data.size() - w, static_cast<off_t>(off + w));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::from_errno("write fetched data of object " + std::to_string(f.rec.id));
    w += static_cast<size_t>(n);
  }
  struct timespec ts[2] = {{f.rec.atime_sec, f.rec.atime_nsec}, {f.rec.mtime_sec, f.rec.mtime_nsec}};
  if (::futimens(fd, ts) != 0) return Status::from_errno("restore times of fetched object " + std::to_string(f.rec.id));
  return {};
}

Status Fetcher::complete(const ObjRef& o, int fd) {
  if (::fdatasync(fd) != 0) return Status::from_errno("fdatasync fetched file");
  TCFS_CRASH_POINT("fetch.after_data");
  struct stat sb;
  if (::fstat(fd, &sb) != 0) return Status::from_errno("stat fetched file");
  auto t = meta::Txn::begin(state_.env(), true);
  if (!t) return t.status();
  auto f = state_.file_of(*t, o);
  if (!f) return f.status();
  if (!f->has_value()) return Status::error(EIO, "fetched inode " + std::to_string(o.ino) + " lost its sync record");
  (*f)->stub = false;
  (*f)->ctime_sec = sb.st_ctim.tv_sec;
  (*f)->ctime_nsec = static_cast<uint32_t>(sb.st_ctim.tv_nsec);
  TCFS_TRY(state_.put_file(*t, o.ino, **f));
  TCFS_TRY(t->commit());  // fetch.h 3: an ordinary clean file from here on
  TCFS_CRASH_POINT("fetch.after_commit");
  return {};
}

}  // namespace tcfs::sync
