// txn/txn.cpp — the compound protocol (see txn.h for its numbered steps).
#include "txn/txn.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <ctime>
#include <map>
#include <optional>
#include <set>
#include <system_error>
#include <thread>

#include "txn/exec.h"
#include "txn/fsops.h"
#include "txn/plan.h"
#include "txn/rr.h"
#include "txn/undo.h"
#include "util/check.h"
#include "util/durable.h"
#include "util/fault.h"
#include "util/metrics.h"

namespace tcfs::txn {
namespace {

constexpr int kMaxReplans = 8;
constexpr uint64_t kIdBlock = 1024;
constexpr const char* kPackName = "images";

std::string summary_of(const Compound& c) {
  std::map<std::string, unsigned> n;
  for (const auto& op : c.ops) ++n[op_kind_name(op.kind)];
  std::string s;
  for (const auto& [k, v] : n) s += (s.empty() ? "" : ", ") + std::to_string(v) + " " + k;
  return s;
}

// Every failure reply is built here: outcome, the failing operation (-1:
// the request), its errno on the reply and on its result, the message.
CompoundReply ended(CompoundReply r, Outcome o, int32_t op, int err, std::string msg) {
  r.outcome = o;
  r.failed_op = op;
  r.err = err;
  r.message = std::move(msg);
  if (op >= 0 && static_cast<size_t>(op) < r.results.size()) r.results[static_cast<size_t>(op)].err = err;
  return r;
}

CompoundReply rejected(int err, std::string msg, int op = -1) {
  return ended(CompoundReply{}, Outcome::Rejected, op, err, std::move(msg));
}

// Invariant 10: the index of the first descriptor whose file lives on the
// mount, or -1. AT_STATX_DONT_SYNC answers from the inode the kernel
// already has, without a request to this daemon.
int fd_on_mount(const Compound& c, dev_t mount_dev) {
  if (!mount_dev) return -1;
  for (size_t i = 0; i < c.fds.size(); ++i) {
    struct statx sx {};
    if (statx(c.fds[i], "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE, &sx) != 0) continue;
    if (makedev(sx.stx_dev_major, sx.stx_dev_minor) == mount_dev) return static_cast<int>(i);
  }
  return -1;
}

// Invariant 11: a plan that would change an immutable or append-only
// inode ends the compound before anything runs.
CompoundReply refused_by_plan(const Compound& c, const Plan& p) {
  CompoundReply r;
  r.results.resize(c.ops.size());
  return ended(std::move(r), Outcome::RolledBack, p.failed_op, p.err, p.message);
}

CompoundReply refuse_own_mount(const Compound& c, int fd_index) {
  auto it = std::find_if(c.ops.begin(), c.ops.end(), [&](const Op& o) { return o.fd_index == fd_index; });
  int op = it == c.ops.end() ? -1 : static_cast<int>(it - c.ops.begin());
  std::string what = op < 0 ? "compound" : std::string(op_kind_name(it->kind)) + " " + (it->path.empty() ? "/" : it->path);
  return rejected(EDEADLK, what + ": the file passed as descriptor " + std::to_string(fd_index) +
                               " lies on this tcfs mount, and the daemon never reads through its own mount; "
                               "name it by its path in the mount with a \"copy\" operation instead",
                  op);
}

}  // namespace

namespace {

// Compounds by outcome, with their latency and size (issue 15 metrics).
struct CompoundMetrics {
  prometheus::Histogram* latency[4];
  prometheus::Histogram& ops = metrics::histogram("tcfs_compound_operations", "Operations per compound (all outcomes).")
                                   .Add({}, metrics::count_buckets());
  CompoundMetrics() {
    for (Outcome o : {Outcome::Committed, Outcome::RolledBack, Outcome::Partial, Outcome::Rejected})
      latency[static_cast<int>(o)] = &metrics::latency(
          "tcfs_compound_duration_seconds",
          "Compounds by outcome (committed, rolled_back, partial, rejected), with their time from the request to the "
          "answer.",
          {{"outcome", outcome_name(o)}});
  }
};

CompoundMetrics& compound_metrics() {
  static CompoundMetrics m;
  return m;
}

}  // namespace

TxnManager::TxnManager(store::Store& store, LockManager& locks, Invalidator* inv)
    : store_(store), locks_(locks), inv_(inv), log_orders_(orders_all_metadata(store.root_fd())),
      reserve_(store.dir_fd()) {
  (void)compound_metrics();  // shown from the start, at 0
}

TxnManager::~TxnManager() { stop_background(); }

void TxnManager::set_log(journal::Log* log) {
  log_ = log;
  log_limit_ = log ? log->stats().limit_bytes / 8 : 0;  // invariant 14: an eighth of the log at most
}

Result<uint64_t> TxnManager::new_id() {
  MutexLock g(id_mu_);
  if (next_id_ >= id_limit_) {
    // Reserve a block of ids with one synced LMDB write; ids never repeat,
    // even across a crash (a reserved block is simply skipped).
    auto t = meta::Txn::begin(store_.meta(), true);
    if (!t) return t.status();
    MDB_dbi db = store_.meta().db("store");
    auto cur = t->get(db, "next_txn");
    if (!cur) return cur.status();
    uint64_t base = cur->has_value() ? std::stoull(**cur) : 1;
    TCFS_TRY(t->put(db, "next_txn", std::to_string(base + kIdBlock)));
    TCFS_TRY(t->commit());
    next_id_ = base;
    id_limit_ = base + kIdBlock;
  }
  return next_id_++;
}

// Step 1: plan, lock, re-plan under the locks until the locks cover it.
Result<LockSet> TxnManager::lock_plan(const Compound& c, Plan& p) {
  p = plan(store_.root_fd(), c, /*keys_only=*/true);
  flush_kernel(p);
  std::map<LockKey, LockMode> want;
  auto add = [&](const Plan& q) {
    for (const auto& k : q.shared) want.emplace(k, LockMode::Path);
    for (const auto& k : q.exclusive) want[k] = LockMode::Exclusive;
  };
  add(p);
  for (int i = 0; i < kMaxReplans; ++i) {
    LockSet held = locks_.acquire(std::vector<std::pair<LockKey, LockMode>>(want.begin(), want.end()));
    p = plan(store_.root_fd(), c);
    size_t before = want.size();
    bool stronger = false;
    for (const auto& k : p.exclusive) {
      auto it = want.find(k);
      if (it != want.end() && it->second != LockMode::Exclusive) stronger = true;
    }
    add(p);
    if (want.size() == before && !stronger) return held;
    held.release();  // the tree changed between the two plans: widen and retry
  }
  return Status::error(EAGAIN, "the tree kept changing under the compound");
}

// Step 2: the undo images, in txn/<id>/.
Status TxnManager::make_images(uint64_t id, Plan& p, const Caller& who, int* txn_fd, int* progress_fd, bool* copied) {
  std::string dir = std::to_string(id);
  if (mkdirat(store_.txn_fd(), dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Status::from_errno("create undo directory txn/" + dir);
  *txn_fd = openat(store_.txn_fd(), dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (*txn_fd < 0) return Status::from_errno("open undo directory txn/" + dir);
  auto prog = create_progress(*txn_fd, who.creds.uid, who.creds.gid);
  if (!prog) return prog.status();
  *progress_fd = *prog;
  // One pack file holds every data image of the compound.
  Fd pack;
  uint64_t pack_end = 0;
  for (auto& r : p.rr.inodes) {
    if (!r.has_data) continue;
    Fd src(openat(store_.root_fd(), r.path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!src) return Status::from_errno("open " + r.path + " for its undo image");
    if (int f = fault::check("txn.image")) return Status::error(f, "undo image of " + r.path);
    if (!pack) {
      pack = Fd(openat(*txn_fd, kPackName, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      if (!pack) return Status::from_errno("create undo image pack txn/" + dir + "/" + kPackName);
    }
    r.image = kPackName;
    // The size undo restores is the one the image has (taken under the locks).
    Status st = add_to_pack(src.get(), pack.get(), store_.reflink(), &pack_end, &r.image_off, &r.size, copied);
    if (!st) return st.wrap("undo image of " + r.path);
  }
  return {};
}

void TxnManager::invalidate_attrs(Plan& p) {
  Invalidator* inv = inv_.load();
  if (!inv) return;
  for (const auto& k : p.attrs) inv->attrs(k);
  for (auto& f : p.files) f.retired = inv->retire(f.key, f.size);  // invariant 13
}

// The sync layer's identity of a locked object (sync/sync.h 4a): its
// number and the handle the plan took while it was locked.
static sync::ObjRef obj_of(const Plan& p, const LockKey& k) {
  auto it = p.handles.find(k);
  return {k.ino, it == p.handles.end() ? std::string() : it->second};
}

void TxnManager::mark(const Plan& p) {
  sync::Tracker* t = tracker_.load();
  if (!t) return;
  for (const auto& e : p.entries)
    if (e.dir.ino) t->name(obj_of(p, e.dir), e.name);
  for (const auto& k : p.attrs) t->attr(obj_of(p, k));
  for (const auto& k : p.data) t->data(obj_of(p, k));
}

// Invariant 13: what a program wrote through the mount before the
// compound began is in the store before the compound plans, so its undo
// images protect it and its operations see it (the kernel's writeback
// cache may hold it as dirty pages). Done before the locks: writing the
// pages back sends WRITE requests, which wait for the inode's lock. A
// write that reaches the kernel after this, while the compound runs, is
// concurrent with it and lands after it. Objects found only by a re-plan
// under the locks are not flushed (the tree changed meanwhile: those
// writes are as concurrent).
void TxnManager::flush_kernel(const Plan& p) {
  Invalidator* inv = inv_.load();
  if (!inv) return;
  for (const auto& k : p.exclusive) inv->flush(k);
  for (const auto& k : p.shared) inv->flush(k);
}

void TxnManager::invalidate_rest(const Plan& p) {
  Invalidator* inv = inv_.load();
  if (!inv) return;
  for (const auto& f : p.files)
    if (f.retired) inv->renew(f.key, f.path);
  for (const auto& e : p.entries) inv->entry(e.dir, e.name, e.absent);
  for (const auto& k : p.data) inv->data(k);
}


CompoundReply TxnManager::run(const Compound& c, const Caller& who, const Progress& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  CompoundReply reply = run_counted(c, who, progress);
  CompoundMetrics& m = compound_metrics();
  m.latency[static_cast<int>(reply.outcome)]->Observe(metrics::since(t0));
  m.ops.Observe(static_cast<double>(c.ops.size()));
  return reply;
}

CompoundReply TxnManager::run_counted(const Compound& c, const Caller& who, const Progress& progress) {
  CompoundReply reply;
  if (c.ops.empty()) {
    reply.outcome = Outcome::Committed;
    return reply;
  }
  Invalidator* inv = inv_.load();
  if (inv && inv->read_only())  // invariant 12
    return rejected(EROFS, "the tcfs mount " + inv->mountpoint() +
                               " is read-only: compounds change nothing there (mount -o remount,rw " +
                               inv->mountpoint() + " makes it writable)");
  if (std::string shut = gate_ ? gate_() : ""; !shut.empty())  // invariant 12
    return rejected(EROFS, "compounds are refused: " + shut);
  if (int i = fd_on_mount(c, inv ? inv->device() : 0); i >= 0) return refuse_own_mount(c, i);  // invariant 10
  Plan p;
  const auto start = std::chrono::steady_clock::now();
  // The plan resolves paths as the caller: in a directory it may not
  // search, it learns EACCES, never what exists there (as POSIX says).
  auto held = [&] {
    AsUser as(who.creds);
    return lock_plan(c, p);
  }();
  p.steps.assign({{"start", start}});  // lock_plan() made p anew
  p.step("plan+locks");
  if (!held) return rejected(held.err(), held.status().message());
  if (p.refuse) return refused_by_plan(c, p);  // invariant 11: nothing ran, nothing to mark
  if (sync::Fetcher* f = fetcher_.load())
    for (const auto& k : p.exclusive)
      if (Status st = f->ensure_all(obj_of(p, k)); !st)
        return rejected(st.err(), "content of a file the compound changes: " + st.message());
  TCFS_CRASH_POINT("txn.after_lock");
  reply = c.options.txn ? run_txn(c, who, p, progress) : run_plain(c, who, p, progress);
  TCFS_CHECK(reply.outcome == Outcome::Rejected || p.phase == Phase::Ended,
             "txn 7: locks are held until the commit or the undo has finished");
  mark(p);               // sync.h 1: inside the world, before the locks go
  invalidate_attrs(p);  // safe under the locks: takes no page or inode lock
  held->release();
  invalidate_rest(p);
  p.step("invalidate");
  log_steps(p, c.ops.size());
  return reply;
}

// At debug level, one line per compound: the milliseconds of each step.
void TxnManager::log_steps(const Plan& p, size_t nops) {
  if (!spdlog::should_log(spdlog::level::debug) || p.steps.empty()) return;
  std::string out;
  for (size_t i = 1; i < p.steps.size(); ++i)
    out += fmt::format(" {} {:.2f}", p.steps[i].first,
                       std::chrono::duration<double, std::milli>(p.steps[i].second - p.steps[i - 1].second).count());
  spdlog::debug("compound {}: {} ops, ms:{}", p.rr.id, nops, out);
}

// txn off: run until the first failure, keep what ran.
CompoundReply TxnManager::run_plain(const Compound& c, const Caller& who, Plan& p, const Progress& progress) {
  CompoundReply reply;
  reply.results.resize(c.ops.size());
  LastOpen last;
  ExecCtx ctx{store_.root_fd(), -1, &who.creds, &c.fds, store_.reflink(), {}, &last};
  AsUser as(who.creds);
  ThreadUmask mask(0);  // modes are applied as given (tcfs/compound.h)
  size_t i = 0;
  Status st_;
  for (; i < p.ops.size(); ++i) {
    reply.results[i].ran = true;
    st_ = exec_op(ctx, c.ops[i], p.ops[i], reply.results[i]);
    if (!st_) break;
    if (progress) progress(i + 1, c.ops.size());
  }
  if (st_ && p.failed_op >= 0) {
    int e = probe_errno(ctx, c.ops[static_cast<size_t>(p.failed_op)]);
    st_ = Status::error(e ? e : p.err, p.message);
    i = static_cast<size_t>(p.failed_op);
  }
  if (c.options.sync) {
    AsRoot root(who.creds);
    if (syncfs(store_.root_fd()) != 0 && st_) st_ = Status::from_errno("syncfs");
  }
  p.phase = Phase::Ended;
  if (!st_) return ended(std::move(reply), Outcome::Partial, static_cast<int32_t>(i), st_.err(), st_.message());
  reply.outcome = Outcome::Committed;
  return reply;
}

// Steps 2-4: the id, the undo images and the RR. Nothing has changed yet;
// a failure leaves only garbage in txn/<id>/, which reclaim removes.
Status TxnManager::prepare(const Compound& c, const Caller& who, Plan& p, Fd* txn_dir, Fd* marker) {
  auto id = new_id();
  if (!id) return id.status().wrap("allocate a compound id");
  RecoveryRecord& rr = p.rr;
  rr.id = *id;
  rr.created = time(nullptr);
  rr.pid = who.pid;
  rr.uid = who.creds.uid;
  rr.gid = who.creds.gid;
  rr.nops = static_cast<uint32_t>(c.ops.size());
  rr.sync = c.options.sync;
  rr.summary = summary_of(c);
  if (p.ops.empty()) {
    p.phase = Phase::Prepared;  // nothing will change: no image, no RR
    return {};
  }
  int tfd = -1, pfd = -1;
  bool copied = false;
  Status st = make_images(rr.id, p, who, &tfd, &pfd, &copied);
  *txn_dir = Fd(tfd);
  *marker = Fd(pfd);
  TCFS_CRASH_POINT("txn.after_images");
  p.step("images");
  // Invariant 2 (14: on XFS, cloned images and the undo directory are
  // metadata: one force of its log makes them durable).
  const bool force = log_orders_ && !copied;
  // The images are made durable on a helper thread (it waits for the
  // disk) while this one encodes the RR (CPU: about 1 µs a step), which
  // depends on nothing the force does. The encoding stays on this thread
  // so its memory comes from this thread's heap, not a fresh one.
  Status forced;
  auto make_durable = [&] {
    if (force) forced = force_metadata(tfd);
    else if (syncfs(store_.root_fd()) != 0) forced = Status::from_errno("syncfs undo images");
  };
  std::thread forcer;
  try {
    if (st) forcer = std::thread(make_durable);
  } catch (const std::system_error&) {  // no thread to be had: in turn below
  }
  std::string encoded = st ? encode_rr(rr) : std::string();
  if (forcer.joinable()) forcer.join();
  else if (st) make_durable();
  if (st) st = forced;
  p.step(force ? "force" : "syncfs");
  if (st) st = put_rr(store_.meta(), rr.id, encoded);  // invariant 2: RR durable before the first change
  p.step("rr");
  if (!st) {
    reclaim_later(rr.id);
    return st.wrap("prepare compound");
  }
  TCFS_CRASH_POINT("txn.after_rr");
  p.phase = Phase::Prepared;
  return {};
}

// A compound whose every operation frees space or needs none may use the
// store's space reserve (store/reserve.h) to prepare on a full store.
bool TxnManager::frees_only(const Compound& c) {
  for (const auto& op : c.ops)
    switch (op.kind) {
      case OpKind::Remove: case OpKind::Truncate: case OpKind::Removexattr:
      case OpKind::Rename: case OpKind::Setattr: break;
      default: return false;
    }
  return true;
}

// Step 2-4 with the reserve when the store is full and the compound only
// frees space; `borrowed` gives the reserve back when the compound ends.
Status TxnManager::prepare_any(const Compound& c, const Caller& who, Plan& p, Fd* txn_dir, Fd* marker,
                               Borrowed& borrowed) {
  Status st = prepare(c, who, p, txn_dir, marker);
  if (st || st.err() != ENOSPC || !frees_only(c) || !reserve_.borrow()) return st;
  borrowed.r = &reserve_;
  return prepare(c, who, p, txn_dir, marker);
}

// Step 5: the operations, as the caller, the progress marker advanced
// before each. Returns the index of the operation that failed (or the
// planned failure), with its error; ok when all ran.
std::pair<size_t, Status> TxnManager::execute(const Compound& c, const Caller& who, Plan& p, const Fd& txn_dir,
                                              const Fd& marker, CompoundReply& reply, const Progress& progress,
                                              Feed* feed) {
  TCFS_CHECK(p.phase == Phase::Prepared, "txn 2: the RR and the images are durable before the first change");
  TCFS_CHECK_EXPENSIVE(p.ops.empty() || has_rr(store_.meta(), p.rr.id), "txn 2: the RR is in LMDB before the first change");
  p.phase = Phase::Executing;
  RecoveryRecord& rr = p.rr;
  LastOpen last;
  ExecCtx ctx{store_.root_fd(), txn_dir.get(), &who.creds, &c.fds, store_.reflink(), {}, &last, feed ? &feed->lg : nullptr};
  ctx.amend_exchange = [&](size_t step, Identity ident) {
    rr.steps[step].id = ident;
    return put_rr(store_.meta(), rr);
  };
  AsUser as(who.creds);
  ThreadUmask mask(0);  // modes are applied as given (tcfs/compound.h)
  // undo.h (progress marker): an operation with no undo steps of its own
  // (a data or attribute change, restored from the inode records whatever
  // the marker says) need not be marked before it runs.
  // Nor need any operation of a markless compound (undo.h).
  std::vector<bool> stepped(p.ops.size(), false);
  if (!markless(rr))
    for (const auto& s : rr.steps)
      if (s.op < stepped.size()) stepped[s.op] = true;
  size_t i = 0;
  Status st;
  for (; i < p.ops.size(); ++i) {
    if (i > 0 && stepped[i] && !(st = mark_ran(marker.get(), static_cast<uint32_t>(i))))  // as the caller: it owns the marker
      return {i, st};
    TCFS_CRASH_POINT("txn.before_op");
    reply.results[i].ran = true;
    if (!(st = exec_op(ctx, c.ops[i], p.ops[i], reply.results[i]))) return {i, st};
    if (feed) feed->pump();  // invariant 14: the log writes while the next operations run
    TCFS_CRASH_POINT("txn.after_op");
    if (progress) progress(i + 1, c.ops.size());
  }
  if (p.failed_op >= 0) {
    int e = probe_errno(ctx, c.ops[static_cast<size_t>(p.failed_op)]);
    return {static_cast<size_t>(p.failed_op), Status::error(e ? e : p.err, p.message)};
  }
  return {i, {}};
}

// Online undo of operations 0..last (`last` may have half happened). When
// the undo fails the RR stays: recovery (or tcfs-undo) finishes the job.
void TxnManager::roll_back(const Plan& p, uint32_t last, Feed* feed) {
  if (p.ops.empty()) return;  // prepare() stored no RR
  UndoCtx uctx{store_.root_fd(), store_.txn_fd(), false, {}};
  UndoStats us;
  uint32_t upto = last == kAllOps ? kAllOps : std::min<uint32_t>(last, static_cast<uint32_t>(p.ops.size() - 1));
  Status st = undo(uctx, p.rr, upto, us);
  if (st && feed && feed->sent()) {
    // Invariant 14: the log may hold records of this compound. Were the
    // RR gone first, a crash would replay them over the undone files with
    // nothing left to undo them: the undone state is made durable and the
    // log retired past them (a checkpoint) while the RR still stands.
    (void)feed->wait();
    MutexLock d(durable_mu_);
    st = durable_by_syncfs();
  }
  if (st) st = finish_undo(uctx, store_.meta(), p.rr.id);
  if (!st) spdlog::error("txn {}: undo failed: {}", p.rr.id, st.message());
}

CompoundReply TxnManager::run_txn(const Compound& c, const Caller& who, Plan& p, const Progress& progress) {
  CompoundReply reply;
  reply.results.resize(c.ops.size());
  Fd txn_dir, marker;
  Borrowed borrowed;  // the reserve stays free for this compound until it ends
  if (Status st = prepare_any(c, who, p, &txn_dir, &marker, borrowed); !st) return rejected(st.err(), st.message());
  reply.txn_id = p.rr.id;

  // Invariant 14: what a commit through the log must carry, sent to the
  // log while the operations run.
  std::optional<Feed> feed;
  if (log_ && log_orders_ && c.options.sync) feed.emplace(store_.root_fd(), *log_, log_limit_);
  auto [i, st] = execute(c, who, p, txn_dir, marker, reply, progress, feed ? &*feed : nullptr);
  p.step("ops");
  p.phase = st ? Phase::Executed : Phase::Ended;
  if (!st) {
    roll_back(p, static_cast<uint32_t>(i), feed ? &*feed : nullptr);
    for (auto& r : reply.results) r.bytes = r.ran ? r.bytes : 0;
    return ended(std::move(reply), Outcome::RolledBack, static_cast<int32_t>(i), st.err(), st.message());
  }
  TCFS_CRASH_POINT("txn.after_exec");

  TCFS_CHECK(p.phase == Phase::Executed, "txn 6: the commit point comes after every operation ran");
  p.phase = Phase::Ended;
  if (!c.options.sync) {  // committed once a later commit() takes it along
    MutexLock g(mu_);
    lazy_.push_back(p.rr.id);
    reply.outcome = Outcome::Committed;
    return reply;
  }
  if (Status cst = commit(p.rr.id, &p, feed ? &*feed : nullptr, txn_dir.get()); !cst) {
    roll_back(p, kAllOps, feed ? &*feed : nullptr);  // cannot commit durably: undo instead (the RR is still there)
    return ended(std::move(reply), Outcome::RolledBack, -1, cst.err(), "commit: " + cst.message());
  }
  reply.outcome = Outcome::Committed;
  return reply;
}

// Step 6 the usual way: syncfs makes every effect of every compound
// durable; the endurant log is retired up to it (DESIGN.md §9).
Status TxnManager::durable_by_syncfs() {
  const uint64_t logged = before_syncfs_ ? before_syncfs_() : 0;
  Status st = syncfs(store_.root_fd()) == 0 ? Status() : Status::from_errno("syncfs");
  if (st) st = still_up(store_.root_fd(), ".", "syncfs");  // util/durable.h
  // docs/DESIGN.md §9: the endurant log retired up to the syncfs, before the commit point.
  if (st && after_syncfs_) st = after_syncfs_(logged);
  return st;
}

// Step 6 by invariant 14: the compound's records durable in the log, then
// one force of XFS's log over all its metadata.
Status TxnManager::durable_by_log(Feed& feed, int txn_dir, Plan* p) {
  TCFS_TRY(feed.finish());
  if (p) p->step("append");
  return force_metadata(txn_dir);
}

// Steps 6-7 for compound `id` (0: none) and every sync-off compound still
// waiting (lazy_): their effects made durable (by syncfs, or through the
// log: invariant 14), then one synced LMDB transaction deletes their RRs.
// One routine serves a sync-on compound and make_durable().
Status TxnManager::commit(uint64_t id, Plan* p, Feed* feed, int txn_dir) {
  std::vector<uint64_t> ids;
  {
    MutexLock d(durable_mu_);
    if (p) p->step("wait commit");
    if (id) ids.push_back(id);
    bool by_log = feed && feed->lg.ok && txn_dir >= 0 && id;
    {
      MutexLock g(mu_);
      by_log = by_log && lazy_.empty();  // invariant 14: waiting sync-off compounds need the syncfs
      ids.insert(ids.end(), lazy_.begin(), lazy_.end());
    }
    if (ids.empty()) return {};
    if (feed && !by_log) (void)feed->wait();  // what it sent is in the log before the syncfs retires it
    Status st = by_log ? durable_by_log(*feed, txn_dir, p) : durable_by_syncfs();
    if (!st && by_log) {  // EAGAIN: syncfs is the cheaper way for this one (logged.h)
      spdlog::log(st.err() == EAGAIN ? spdlog::level::debug : spdlog::level::warn,
                  "txn {}: commit through the endurant log: {}; syncfs instead", id, st.message());
      st = durable_by_syncfs();
    }
    TCFS_CRASH_POINT("txn.after_sync");
    if (p) p->step(by_log ? "force" : "syncfs");
    TCFS_TRY(st);
    TCFS_TRY(delete_rrs(store_.meta(), ids));  // COMMIT POINT (invariant 6)
    TCFS_CRASH_POINT("txn.after_commit");
    if (p) p->step("commit");
    MutexLock g(mu_);
    std::erase_if(lazy_, [&](uint64_t x) { return std::find(ids.begin(), ids.end(), x) != ids.end(); });
  }
  for (uint64_t x : ids) reclaim_later(x);
  return {};
}

Status TxnManager::make_durable() { return commit(0); }

bool TxnManager::has_lazy() {
  MutexLock g(mu_);
  return !lazy_.empty();
}

void TxnManager::reclaim_later(uint64_t id) {
  MutexLock g(mu_);
  reclaim_.push_back(id);
  if (!bg_.joinable()) return;  // no background thread: reclaimed at the next start
  cv_.notify_one();
}

Status TxnManager::recover(const std::function<void(const std::string&)>& report) {
  UndoCtx ctx{store_.root_fd(), store_.txn_fd(), false, report};
  return recover_all(ctx, store_.meta());
}

void TxnManager::start_background(unsigned interval_ms) {
  bg_ = std::thread([this, interval_ms] { background(interval_ms); });
}

void TxnManager::stop_background() {
  {
    MutexLock g(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (bg_.joinable()) bg_.join();
}

void TxnManager::background(unsigned interval_ms) {
  UniqueLock g(mu_);
  while (!stop_) {
    g.wait_for(cv_, std::chrono::milliseconds(interval_ms),
               [&]() TCFS_REQUIRES(mu_) { return stop_ || !reclaim_.empty(); });
    std::vector<uint64_t> ids;
    ids.swap(reclaim_);
    bool lazy = !lazy_.empty();
    g.unlock();
    for (uint64_t id : ids) {
      Status s = remove_txn_dir(store_.txn_fd(), id);
      if (!s) spdlog::warn("reclaim txn/{}: {}", id, s.message());
    }
    if (lazy) {
      Status s = make_durable();
      if (!s) spdlog::warn("retire sync-off compounds: {}", s.message());
    }
    reserve_.refill();  // once the space a compound freed is back
    g.lock();
  }
}

}  // namespace tcfs::txn
