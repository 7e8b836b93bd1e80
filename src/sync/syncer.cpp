// sync/syncer.cpp — sync rounds (syncer.h; notes cited as "sync.h N").
#include "sync/syncer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cassert>
#include <cinttypes>
#include <map>
#include <set>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "blob/blocks.h"
#include "sync/stream.h"
#include "util/fd.h"
#include "util/fault.h"
#include "util/parallel.h"

namespace tcfs::sync {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Syncer::Round {
  Capture cap;
  std::vector<std::vector<blob::BlockRef>> refs;  // per captured object with data
  std::map<blob::Hash, blob::BlockRef> new_blocks;
  std::string journal;
  uint64_t bytes_uploaded = 0, blocks_uploaded = 0, blocks_dedup = 0;
  double upload_s = 0;
  // Phase times in seconds, for the round's log line.
  double capture_s = 0, durable_s = 0, journal_s = 0, commit_s = 0;
};

namespace {
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
}  // namespace

Result<std::unique_ptr<Syncer>> Syncer::open(SyncEnv env, SyncOptions opt) {
  std::unique_ptr<Syncer> s(new Syncer(std::move(env), opt));
  auto t = meta::Txn::begin(*s->env_.meta, true);
  if (!t) return t.status();
  auto boot = s->state_.get_u64(*t, "boot", 0);
  auto epoch = s->state_.get_u64(*t, "epoch", 0);
  auto next = s->state_.get_u64(*t, "next_id", kRootId + 1);
  auto head = s->state_.get(*t, "head");
  auto clean = s->state_.get(*t, "clean");
  auto writer = s->state_.get(*t, "writer");
  for (const Status& st : {boot.status(), epoch.status(), next.status(), head.status(), clean.status(),
                           writer.status()})
    TCFS_TRY(st);
  s->writer_ = writer->value_or(blob::random_id().hex().substr(0, 32));  // sync.h 10: one id per store, kept
  if (!writer->has_value()) TCFS_TRY(s->state_.put(*t, "writer", s->writer_));
  s->boot_ = *boot + 1;  // sync.h 6: never the same journal name twice
  {
    MutexLock rl(s->round_mu_);  // not shared yet: the locks are taken for the analysis only
    s->epoch_ = *epoch;
    s->next_id_ = *next;
    s->head_ = head->value_or("");
    MutexLock g(s->mu_);
    s->stats_.epoch = s->epoch_;
    s->stats_.head = s->head_;
  }
  s->was_clean_ = clean->has_value() && **clean == "1";
  TCFS_TRY(s->state_.put(*t, "boot", std::to_string(s->boot_)));
  TCFS_TRY(t->del(s->env_.meta->db(kSyncDb), "clean"));  // a crash from here on is not clean
  TCFS_TRY(t->commit());
  clear_stage(s->env_.fs.stage_fd);
  return s;
}

Syncer::~Syncer() { stop(); }

Status Syncer::rescan() { return sync::rescan(env_.fs, state_, *env_.tracker); }

namespace {

// One block of a captured object's data: refs[obj][idx] once uploaded.
struct BlockItem {
  size_t obj = 0, idx = 0;
  uint64_t off = 0;
  size_t len = 0;
};

// Reads [off, off+len) of a stage file whole.
Status read_stage(int fd, const std::string& name, uint64_t off, size_t len, char* out) {
  for (size_t done = 0; done < len;) {
    ssize_t n = ::pread(fd, out + done, len - done, static_cast<off_t>(off + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::from_errno("read sync stage file " + name);
    if (n == 0) return Status::error(EIO, "sync stage file " + name + " is shorter than captured");
    done += static_cast<size_t>(n);
  }
  return {};
}

}  // namespace

// What the upload workers share (Syncer::upload).
struct Syncer::Uploader {
  blob::BlockWriter writer;
  Mutex mu;                         // protects everything below, and a Round's new_blocks and counts
  std::condition_variable done_cv;  // an inflight upload finished
  std::set<blob::Hash> inflight TCFS_GUARDED_BY(mu);
  Status first_err TCFS_GUARDED_BY(mu);
  Uploader(blob::ObjectStore& os, const blob::BlockWriterOptions& o) : writer(os, o) {}
  bool failed() {
    MutexLock g(mu);
    return !first_err;
  }
  void fail(const Status& s) {
    MutexLock g(mu);
    if (first_err) first_err = s;
  }
  Status error() {
    MutexLock g(mu);
    return first_err;
  }
};

// Stores one block unless the store (or this round) has it already; sets ref.
Status Syncer::put_block(Round& r, Uploader& u, meta::Txn& t, std::string_view block, blob::BlockRef& ref) {
  blob::Hash h = env_.objects->content_hash(block);  // blocks.h 1
  std::optional<blob::BlockRef> have;
  {
    // A block another worker is uploading right now is waited for, so
    // identical blocks of one round are stored once.
    UniqueLock g(u.mu);
    g.wait(u.done_cv, [&]() TCFS_REQUIRES(u.mu) { return !u.inflight.count(h); });
    if (auto it = r.new_blocks.find(h); it != r.new_blocks.end()) have = it->second;
    else u.inflight.insert(h);
  }
  bool uploaded = false;
  if (!have) {
    auto known = state_.block(t, h);
    if (known && !*known) {
      auto put = u.writer.put(block, h);  // a batched put: the journal's barrier makes it durable (sync.h 5)
      if (put) known = std::optional<blob::BlockRef>(*put);
      else known = put.status();
      uploaded = put.is_ok();
    }
    {
      MutexLock g(u.mu);
      u.inflight.erase(h);
      if (uploaded) r.new_blocks.emplace(h, **known);
    }
    u.done_cv.notify_all();
    if (!known) return known.status();
    have = *known;
  }
  round_done_.fetch_add(block.size(), std::memory_order_relaxed);
  MutexLock g(u.mu);
  if (uploaded) {
    r.blocks_uploaded++;
    r.bytes_uploaded += block.size();
  } else {
    r.blocks_dedup++;
  }
  ref = *have;
  return {};
}

// Blocks, not files, are the unit of work, so the blocks of one large file
// go up in parallel; each worker holds one block buffer (sync.h 9).
Status Syncer::upload(Round& r) {
  std::vector<BlockItem> items;
  r.refs.assign(r.cap.objects.size(), {});
  for (size_t i = 0; i < r.cap.objects.size(); i++) {
    const CapturedObject& o = r.cap.objects[i];
    if (!o.has_data) continue;
    uint64_t size = o.state.rec.size;
    r.refs[i].resize(static_cast<size_t>((size + blob::kMaxBlock - 1) / blob::kMaxBlock));
    for (size_t b = 0; b < r.refs[i].size(); b++) {
      uint64_t off = uint64_t{b} * blob::kMaxBlock;
      items.push_back({i, b, off, static_cast<size_t>(std::min<uint64_t>(blob::kMaxBlock, size - off))});
    }
  }
  Uploader u(*env_.objects, opt_.packs);
  std::atomic<size_t> next{0};
  auto t0 = Clock::now();
  size_t nworkers = std::max<size_t>(1, std::min<size_t>(opt_.workers, items.size()));
  parallel_for(nworkers, [&](size_t) {
    auto t = meta::Txn::begin(*env_.meta, false);
    if (!t) return u.fail(t.status());
    std::string buf;
    Fd fd;
    size_t fd_obj = SIZE_MAX;  // the object fd is open for
    for (size_t j; (j = next.fetch_add(1)) < items.size() && !u.failed();) {
      if (Status st = check_cut(); !st) return u.fail(st);  // sync.h 11: no further block
      const BlockItem& it = items[j];
      CapturedObject& o = r.cap.objects[it.obj];
      std::string_view block;
      if (o.stage.empty()) {  // read during the capture
        block = std::string_view(o.bytes).substr(static_cast<size_t>(it.off), it.len);
      } else {
        if (fd_obj != it.obj) {
          fd = Fd(::openat(env_.fs.stage_fd, o.stage.c_str(), O_RDONLY | O_CLOEXEC));
          if (fd.get() < 0) return u.fail(Status::from_errno("open sync stage file " + o.stage));
          fd_obj = it.obj;
        }
        buf.resize(it.len);
        // The blocks the workers take next start reading now (a hint).
        (void)::posix_fadvise(fd.get(), static_cast<off_t>(it.off + nworkers * blob::kMaxBlock),
                              static_cast<off_t>(blob::kMaxBlock), POSIX_FADV_WILLNEED);
        if (Status st = read_stage(fd.get(), o.stage, it.off, it.len, buf.data()); !st) return u.fail(st);
        block = buf;
      }
      if (Status st = put_block(r, u, *t, block, r.refs[it.obj][it.idx]); !st) return u.fail(st);
    }
  });
  TCFS_TRY(u.error());  // the workers are done; the lock is for the analysis
  TCFS_TRY(u.writer.flush());  // every pack is written before a record names it (sync.h 5)
  // Refs into packs get their pack's length now (blocks.h 3).
  for (auto& [h, ref] : r.new_blocks)
    if (ref.objlen == 0) TCFS_TRY(u.writer.finish(ref));
  for (auto& refs : r.refs)
    for (auto& ref : refs)
      if (ref.objlen == 0) TCFS_TRY(u.writer.finish(ref));
  for (size_t i = 0; i < r.cap.objects.size(); i++) {
    CapturedObject& o = r.cap.objects[i];
    if (o.has_data) o.state.rec.blocks = std::move(r.refs[i]);
    std::string().swap(o.bytes);  // uploaded: the memory goes back now (sync.h 9)
  }
  r.upload_s = since(t0);
  return {};
}

Status Syncer::write_journal(Round& r) {
  char name[64];
  snprintf(name, sizeof name, "n/j/%016" PRIx64 "-%08" PRIx64 "-%04x", epoch_ + 1, boot_, attempt_);
  r.journal = name;
  StreamWriter w(*env_.objects, r.journal);
  for (const auto& o : r.cap.objects) TCFS_TRY(w.add(encode(o.state.rec)));
  for (const auto& e : r.cap.entries) TCFS_TRY(w.add(encode(e)));
  for (const auto& [id, ino] : r.cap.drops) TCFS_TRY(w.add(encode(DropRec{id})));
  json info = {{"epoch", epoch_ + 1}, {"prev", head_},         {"boot", boot_},
               {"attempt", attempt_}, {"time", ::time(nullptr)}, {"objects", r.cap.objects.size()},
               {"entries", r.cap.entries.size()}};
  // The barrier (every block, pack and chunk durable), then the end object:
  // THE REMOTE COMMIT POINT of this round (sync.h 5), durable on return (sync.h 7).
  return w.finish(info);
}

Status Syncer::commit_local(Round& r) {
  auto t = meta::Txn::begin(*env_.meta, true);
  if (!t) return t.status();
  for (const auto& o : r.cap.objects) {
    FileState f = o.state;
    if (f.stub) {  // captured as a stub: a fetch may have finished since (fetch.h 3)
      auto cur = state_.file_of(*t, ObjRef{o.ino, o.state.handle});  // sync.h 4a
      if (!cur) return cur.status();
      if (cur->has_value() && !(*cur)->stub) {
        f.stub = false;
        f.ctime_sec = (*cur)->ctime_sec;
        f.ctime_nsec = (*cur)->ctime_nsec;
      }
    }
    TCFS_TRY(state_.put_file(*t, o.ino, f));
  }
  for (const auto& e : r.cap.entries) {
    if (e.child) TCFS_TRY(state_.put_entry(*t, e.parent, e.name, e.child));
    else TCFS_TRY(state_.del_entry(*t, e.parent, e.name));
  }
  for (const auto& [h, ref] : r.new_blocks) TCFS_TRY(state_.put_block(*t, ref));
  for (const auto& [id, ino] : r.cap.drops) TCFS_TRY(state_.drop(*t, ino, id));
  TCFS_TRY(state_.put(*t, "epoch", std::to_string(epoch_ + 1)));
  TCFS_TRY(state_.put(*t, "head", r.journal));
  TCFS_TRY(state_.put(*t, "next_id", std::to_string(r.cap.next_id)));
  return t->commit();  // sync.h 7: the round is synced locally
}

// A snapshot: every synced object and entry as of `epoch` (whose journal is
// `head`), from one LMDB read transaction (a consistent view), streamed.
Status Syncer::write_snapshot(uint64_t epoch, const std::string& head) {
  auto t = meta::Txn::begin(*env_.meta, false);
  if (!t) return t.status();
  char name[64];
  snprintf(name, sizeof name, "n/s/%016" PRIx64 "-%08" PRIx64 "-%04x", epoch, boot_, snap_attempt_++);
  StreamWriter w(*env_.objects, name);
  Status err;
  TCFS_TRY(t->scan(env_.meta->db(kFilesDb), "", [&](std::string_view k, std::string_view) {
    auto f = state_.file(*t, from_be64(k));
    err = f ? (f->has_value() ? w.add(encode((*f)->rec)) : Status{}) : f.status();
    return err.is_ok();
  }));
  TCFS_TRY(err);
  TCFS_TRY(t->scan(env_.meta->db(kEntriesDb), "", [&](std::string_view k, std::string_view v) {
    err = w.add(encode(EntryRec{from_be64(k.substr(0, 8)), std::string(k.substr(8)), from_be64(v)}));
    return err.is_ok();
  }));
  TCFS_TRY(err);
  json info = {{"epoch", epoch}, {"head", head}, {"boot", boot_}, {"time", ::time(nullptr)}, {"kind", "snapshot"}};
  TCFS_TRY(w.finish(info));
  spdlog::info("sync: snapshot {} of epoch {}: {} records", name, epoch, w.records());
  return {};
}

// A round with something in it, once captured: its blocks and journal go
// up while the local state is made durable, then the round is committed
// locally (sync.h 3, 5, 7) and a snapshot written when one is due.
Status Syncer::send(Round& r) {
  // sync.h 3: the local state is made durable while the blocks go up,
  // and before the end object is written.
  Status durable;
  std::thread local([&] {
    auto t = Clock::now();
    durable = env_.make_durable ? env_.make_durable() : Status{};
    r.durable_s = since(t);
  });
  Status st = upload(r);
  local.join();
  if (st) st = durable;
  auto t0 = Clock::now();
  if (st) st = check_cut();  // sync.h 11: no end object is begun after the deadline
  if (st) st = check_head();  // the head this journal names as prev reads back (chain.h 5)
  if (st) st = write_journal(r);  // the journal's end object (sync.h 5)
  if (st) TCFS_CRASH_POINT("sync.after_end");
  if (st) st = mark_round(r.journal);  // REMOTE COMMIT POINT: the round's marker (sync.h 10)
  if (st) TCFS_CRASH_POINT("sync.after_marker");
  r.journal_s = since(t0);
  t0 = Clock::now();
  if (st) st = commit_local(r);  // sync.h 7: the round is synced locally
  if (st) TCFS_CRASH_POINT("sync.after_local_commit");
  r.commit_s = since(t0);
  clear_stage(env_.fs.stage_fd);
  if (st && opt_.snapshot_every && (epoch_ + 1) % opt_.snapshot_every == 0) snapshot_due_ = true;
  if (st && snapshot_due_) {
    Status s = write_snapshot(epoch_ + 1, r.journal);
    if (s) snapshot_due_ = false;
    else spdlog::warn("sync: snapshot of epoch {} failed, will retry: {}", epoch_ + 1, s.message());
  }
  return st;
}

Status Syncer::round() {
  MutexLock rl(round_mu_);
  if (!fenced_.empty()) return Status::error(EROFS, fenced_);  // sync.h 10: superseded for good
  TCFS_TRY(check_cut());                                        // sync.h 11
  if (probe_next_) {
    Status st = probe_marker();
    if (!st) {
      MutexLock g(mu_);
      stats_.failures++;
      stats_.last_error = st.message();
      return st;
    }
  }
  Round r;
  uint64_t ticket;
  auto t0 = Clock::now();
  {
    std::shared_ptr<void> frozen = env_.freeze ? env_.freeze() : nullptr;  // sync.h 2: the capture point
    {
      MutexLock g(mu_);
      ticket = requested_;
      stats_.running = true;
    }
    r.cap.marks = env_.tracker->take();
    r.cap.next_id = next_id_;
    if (!r.cap.marks.empty()) {
      Status st = capture(env_.fs, state_, r.cap);
      if (!st) {
        env_.tracker->put_back(std::move(r.cap.marks));
        MutexLock g(mu_);
        stats_.running = false;
        stats_.failures++;
        stats_.last_error = st.message();
        return st;
      }
    }
  }
  r.capture_s = since(t0);
  Status st;
  bool empty = r.cap.objects.empty() && r.cap.entries.empty() && r.cap.drops.empty();
  round_done_.store(0), round_bytes_.store(r.cap.data_bytes);
  if (!empty) st = send(r);
  round_bytes_.store(0), round_done_.store(0);
  MutexLock g(mu_);
  stats_.running = false;
  stats_.rounds++;
  if (!st) {
    env_.tracker->put_back(std::move(r.cap.marks));  // sync.h 8
    probe_next_ = true;  // sync.h 10: its marker may exist though the reply was lost
    attempt_++;
    stats_.failures++;
    stats_.last_error = st.message();
    return st;
  }
  if (!empty) {
    epoch_++;
    head_ = r.journal;
    next_id_ = r.cap.next_id;
    attempt_ = 0;
    stats_.epoch = epoch_;
    stats_.head = head_;
    stats_.bytes_uploaded += r.bytes_uploaded;
    stats_.blocks_uploaded += r.blocks_uploaded;
    stats_.blocks_deduplicated += r.blocks_dedup;
    stats_.objects_synced += r.cap.objects.size();
    if (r.upload_s > 0) stats_.upload_rate = static_cast<double>(r.bytes_uploaded) / r.upload_s;
    spdlog::info(
        "sync: epoch {} ({}): {} objects, {} entries, {} blocks ({} bytes) uploaded, {} deduplicated; "
        "seconds: capture {:.3f}, local durable {:.3f}, upload {:.3f}, journal {:.3f}, local commit {:.3f}",
        epoch_, head_, r.cap.objects.size(), r.cap.entries.size(), r.blocks_uploaded, r.bytes_uploaded,
        r.blocks_dedup, r.capture_s, r.durable_s, r.upload_s, r.journal_s, r.commit_s);
  }
  stats_.last_error.clear();
  covered_ = std::max(covered_, ticket);
  cv_.notify_all();
  return {};
}

void Syncer::start() {
  MutexLock g(mu_);
  if (bg_.joinable()) return;
  stop_ = false;
  bg_ = std::thread([this] { background(); });
}

void Syncer::background() {
  auto delay = std::chrono::milliseconds(opt_.retry_ms);
  auto not_before = Clock::now();
  std::string last_logged;
  UniqueLock g(mu_);
  while (!stop_) {
    auto interval = std::chrono::milliseconds(opt_.interval_ms);
    if (Clock::now() < not_before) {
      // Backing off after a failure: a waiter (requested_ > covered_) does
      // not cut the back-off short, or this loop would spin until it ends.
      g.wait_until(cv_, not_before, [&]() TCFS_REQUIRES(mu_) { return stop_; });
      continue;
    }
    // sync.h 10: a probe due (at start, after a failure) does not wait for
    // the interval: a superseded writer learns it at once.
    auto pause = probe_next_ ? std::chrono::milliseconds(0) : interval / 4 + std::chrono::milliseconds(1);
    g.wait_for(cv_, pause, [&]() TCFS_REQUIRES(mu_) { return stop_ || requested_ > covered_; });
    if (stop_) break;
    auto now = Clock::now();
    auto oldest = env_.tracker->oldest();
    bool due = requested_ > covered_ || (oldest != Clock::time_point{} && now - oldest >= interval) ||
               probe_next_;  // sync.h 10: an own marked round to adopt makes a round due
    if (!due) continue;
    g.unlock();
    Status st = round();
    g.lock();
    if (st) {
      delay = std::chrono::milliseconds(opt_.retry_ms);
      // stats_.epoch is epoch_ (both change under mu_), which is round_mu_'s.
      if (!last_logged.empty()) spdlog::warn("sync: caught up after failures (epoch {})", stats_.epoch);
      last_logged.clear();
      continue;
    }
    if (st.err() == EROFS && !stats_.fenced.empty()) {  // sync.h 10: no retry can succeed
      g.wait(cv_, [&]() TCFS_REQUIRES(mu_) { return stop_; });
      break;
    }
    if (st.message() != last_logged) spdlog::warn("sync: round failed, will retry: {}", st.message());
    last_logged = st.message();
    not_before = Clock::now() + delay;
    delay = std::min<std::chrono::milliseconds>(delay * 2, std::chrono::seconds(60));
  }
}

Status Syncer::check_cut() const {
  if (!cut_.load()) return {};
  return Status::error(ECANCELED, "sync: the round was cut at the stop's deadline (stop_timeout=" +
                                      std::to_string(opt_.stop_limit_ms / 1000) + " s; sync.h 11)");
}

void Syncer::stop_watch(const bool* done) {
  UniqueLock g(mu_);
  auto deadline = Clock::now() + std::chrono::milliseconds(opt_.stop_limit_ms);
  if (g.wait_until(cv_, deadline, [&]() TCFS_REQUIRES(mu_) { return *done; })) return;
  cut_.store(true);  // sync.h 11: from here no block, no end object
  g.unlock();
  spdlog::warn("sync: stop: the last round did not end within {} s; cutting it (the next mount sends it)",
               opt_.stop_limit_ms / 1000);
  env_.objects->cancel();
}

void Syncer::stop() {
  {
    MutexLock g(mu_);
    if (!bg_.joinable()) return;
    stop_ = true;
  }
  cv_.notify_all();
  bool done = false;  // under mu_: the last round ended (stop_watch)
  std::thread watch;
  if (opt_.stop_limit_ms) watch = std::thread([&] { stop_watch(&done); });
  bg_.join();  // a round in progress ends first: the deadline covers it too (sync.h 11)
  Status st = round();
  {
    MutexLock g(mu_);
    done = true;
  }
  cv_.notify_all();
  if (watch.joinable()) watch.join();
  if (st && env_.tracker->pending() == 0) {
    auto t = meta::Txn::begin(*env_.meta, true);
    if (t && state_.put(*t, "clean", "1") && t->commit()) return;
  }
  if (!st) spdlog::warn("sync: last round before stop failed ({}): the next mount rescans", st.message());
}

Status Syncer::wait_synced(std::chrono::milliseconds timeout) {
  UniqueLock g(mu_);
  uint64_t ticket = ++requested_;
  cv_.notify_all();
  if (g.wait_for(cv_, timeout, [&]() TCFS_REQUIRES(mu_) { return covered_ >= ticket || !stats_.fenced.empty(); }) &&
      stats_.fenced.empty())
    return {};
  if (!stats_.fenced.empty()) return Status::error(EROFS, stats_.fenced);
  std::string msg = std::to_string(env_.tracker->pending()) + " changes not on the blobbers yet";
  if (stats_.running) msg += ", a round is in progress";
  if (!stats_.last_error.empty()) msg += "; last error: " + stats_.last_error;
  return Status::error(ETIMEDOUT, msg);
}

SyncStatus Syncer::status() {
  MutexLock g(mu_);
  SyncStatus s = stats_;
  s.round_bytes = round_bytes_.load(), s.round_done = round_done_.load();
  s.pending = env_.tracker->pending();
  auto oldest = env_.tracker->oldest();
  s.oldest_pending_s = oldest == Clock::time_point{} ? 0 : std::chrono::duration<double>(Clock::now() - oldest).count();
  return s;
}

}  // namespace tcfs::sync
