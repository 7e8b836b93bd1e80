// daemon/daemon.cpp — the composition root (daemon.h; notes cited as
// "daemon.h N").
#include "daemon/daemon.h"

#include <sys/stat.h>

#include <sys/statvfs.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "control/socket_path.h"
#include "daemon/executor.h"
#include "daemon/status_metrics.h"
#include "journal/store_log.h"
#include "util/durable.h"
#include "util/path.h"

namespace tcfs::daemon {

Remote::~Remote() {
  evictor.reset();
  syncer.reset();
  fetcher.reset();
  if (stage_fd >= 0) close(stage_fd);
}

Status check_apart(const std::string& store_dir, const std::string& mountpoint) {
  char* real = realpath(store_dir.c_str(), nullptr);
  std::string store = real ? real : store_dir;
  free(real);
  if (path_under(mountpoint, store))
    return Status::error(EINVAL, "mountpoint " + mountpoint + " is inside the store " + store +
                                     ": the daemon would read through its own mount");
  if (path_under(store, mountpoint))
    return Status::error(EINVAL, "the store " + store + " is inside the mountpoint " + mountpoint +
                                     ": the daemon would read through its own mount");
  return {};
}

// The same for a dir:// blobber: its objects would be written through the
// mount (txn.h invariant 10).
Status check_blobbers_apart(const RemoteConfig& cfg, const std::string& mountpoint) {
  for (const auto& url : cfg.urls) {
    if (url.rfind("dir://", 0) != 0) continue;
    if (!check_apart(url.substr(6), mountpoint))
      return Status::error(EINVAL, "blobber " + url + " is inside the mountpoint " + mountpoint +
                                       ": the daemon would write it through its own mount");
  }
  return {};
}

namespace {

// The evictor (sync/evict.h): the cap from cache_size, and a reserve of
// free space (5% of the store's filesystem, at most 1 GiB, unless given).
std::unique_ptr<sync::Evictor> open_evictor(store::Store& s, txn::LockManager& locks, Remote& r,
                                            const DaemonOptions& o, Checkpointer* ckpt) {
  sync::EvictOptions eo = o.evict;
  struct statvfs v;
  if (!o.reserve_set && fstatvfs(s.root_fd(), &v) == 0)
    eo.reserve_bytes = std::min<uint64_t>(uint64_t{1} << 30, uint64_t{v.f_blocks} * v.f_frsize / 20);
  sync::EvictEnv env;
  env.root_fd = s.root_fd();
  env.meta = &s.meta();
  env.fetcher = r.fetcher.get();
  env.tracker = &r.tracker;
  env.freeze = [&locks] { return std::make_shared<txn::Freeze>(locks.freeze()); };
  sync::Syncer* syncer = r.syncer.get();
  // checkpoint.h: no record of the endurant log may replay into a file eviction punched.
  env.between_rounds = [syncer, ckpt](const std::function<Status()>& fn) {
    return syncer->between_rounds([&] {
      if (ckpt) TCFS_TRY(ckpt->now());
      return fn();
    });
  };
  env.want_sync = [syncer] { (void)syncer->wait_synced(std::chrono::milliseconds(0)); };
  return std::make_unique<sync::Evictor>(std::move(env), eo);
}

// The sync layer's view of the store and its hooks (daemon.h 2).
sync::SyncEnv sync_env(store::Store& s, txn::LockManager& locks, txn::TxnManager& tm, Remote& r) {
  sync::SyncEnv env;
  env.fs = {s.root_fd(), r.stage_fd, s.reflink()};
  env.meta = &s.meta();
  env.objects = r.objects.get();
  env.tracker = &r.tracker;
  env.freeze = [&locks] { return std::make_shared<txn::Freeze>(locks.freeze()); };
  int root = s.root_fd();
  env.make_durable = [&tm, root] {
    if (syncfs(root) != 0) return Status::from_errno("syncfs");
    TCFS_TRY(still_up(root, ".", "syncfs"));  // util/durable.h
    return tm.has_lazy() ? tm.make_durable() : Status();
  };
  return env;
}

}  // namespace

Result<std::unique_ptr<Daemon>> Daemon::open(const DaemonOptions& opt) {
  std::unique_ptr<Daemon> d(new Daemon());
  d->opt_ = opt;
  auto store = store::Store::open(opt.store_dir);
  if (!store) return store.status();
  d->store_ = std::move(*store);
  store::Store& s = *d->store_;
  // docs/DESIGN.md §9: the endurant log is replayed first, then compounds are undone.
  if (Status st = d->open_log(); !st) return st;  // its message names the log's segment
  d->tm_ = std::make_unique<txn::TxnManager>(s, d->locks_, nullptr);
  if (Checkpointer* c = d->ckpt_.get()) {
    d->tm_->set_syncfs_hooks([c] { return c->before_syncfs(); }, [c](uint64_t upto) { return c->after_syncfs(upto); });
    d->tm_->set_log(&c->log());  // txn.h 14
  }
  // txn.h 9: roll back what a crash left half-done before serving.
  Status st = d->tm_->recover([](const std::string& line) { spdlog::warn("recovery: {}", line); });
  if (!st) return st.wrap("recovery of store " + s.path());
  if (st = d->open_remote(); !st) return st.wrap("blobbers of store " + s.path());
  Remote* r = d->remote_.get();
  if (r) {
    d->tm_->set_tracker(&r->tracker);
    d->tm_->set_fetcher(r->fetcher.get());
    sync::Syncer* syncer = r->syncer.get();
    d->tm_->set_write_gate([syncer] { return syncer->fenced(); });  // sync.h 10, txn.h 12
  }
  d->exec_ = make_executor(*d->tm_, r, s.path(), d->ckpt_.get());
  d->metrics_ = collect_status(d->exec_);  // status_metrics.h
  return d;
}

// The default leaves the log off on a small store filesystem: its
// segments (64 MiB by default, 16 MiB at least) would take too large a
// share of it.
constexpr uint64_t kSmallForLog = 512ull << 20;

bool Daemon::want_log() const {
  if (opt_.journal) return *opt_.journal;
  struct statvfs sv;
  if (::fstatvfs(store_->root_fd(), &sv) != 0) return true;
  const uint64_t total = static_cast<uint64_t>(sv.f_blocks) * sv.f_frsize;
  if (total >= kSmallForLog) return true;
  spdlog::info("endurant log: off by default on {}'s filesystem of {} MiB (under {} MiB); -o journal=on turns it on",
               store_->path(), total >> 20, kSmallForLog >> 20);
  return false;
}

// The endurant log (journal/store_log.h): replayed into the store, then
// kept open for appends when wanted.
Status Daemon::open_log() {
  store::Store& s = *store_;
  const bool want = want_log();
  if (!want && !journal::has_log(s.path())) return {};  // never used
  journal::Options o = journal::store_options(s.path(), s.uuid(), opt_.journal_bytes);
  auto slot = std::make_shared<Checkpointer*>(nullptr);  // the log's on_full reaches the checkpointer made below
  o.on_full = [slot] {
    if (*slot) (*slot)->kick();
  };
  journal::Replayed rep;
  auto log = journal::open_store_log(o, s.root_fd(), &rep);
  if (!log && rep.cannot_keep && !opt_.journal) {  // the default: on without a log, said once
    spdlog::warn("mount {}: {}; stable writes go to the backing files (-o journal=off says so quietly)",
                 s.path(), log.status().message());
    return {};
  }
  if (!log && rep.cannot_keep)  // asked for: refused (-o journal=off mounts without the log)
    return Status::error(log.status().err(), "-o journal=on: " + log.status().message() +
                                                  " (-o journal=off mounts without the log)");
  if (!log) return log.status();
  if (!want) return {};  // replayed and retired: closed
  ckpt_ = std::make_unique<Checkpointer>(std::move(*log), s.root_fd(), 1000);
  *slot = ckpt_.get();
  return {};
}

// daemon.h 1: the blobber set, the sync state, and a rescan after an
// unclean stop (before the mount serves: nothing else runs yet).
Status Daemon::open_remote() {
  store::Store& s = *store_;
  auto cfg = load_config(s.meta());
  if (!cfg) return cfg.status();
  if (!cfg->has_value()) return {};
  if (!opt_.mountpoint.empty()) TCFS_TRY(check_blobbers_apart(**cfg, opt_.mountpoint));
  auto r = std::make_unique<Remote>();
  r->cfg = **cfg;
  std::vector<std::string> down;
  auto os = open_objects(r->cfg, &down);
  if (!os) return os.status();
  r->objects = std::move(*os);
  for (const auto& d : down) {
    fprintf(stderr, "tcfs: warning: %s (changes queue locally until it is back)\n", d.c_str());
    spdlog::warn("mount: blobber down: {}", d);
  }
  auto stage = open_stage(s);
  if (!stage) return stage.status();
  r->stage_fd = *stage;
  auto syncer = sync::Syncer::open(sync_env(s, locks_, *tm_, *r), opt_.sync);
  if (!syncer) return syncer.status();
  r->syncer = std::move(*syncer);
  r->fetcher = std::make_unique<sync::Fetcher>(s.root_fd(), s.meta(), *r->objects);
  TCFS_TRY(r->fetcher->load());
  if (!r->syncer->was_clean()) {
    spdlog::info("mount: the last stop was not clean: rescanning {}", s.path());
    if (Status st = r->syncer->rescan(); !st) return st.wrap("rescan");
  }
  r->evictor = open_evictor(s, locks_, *r, opt_, ckpt_.get());
  remote_ = std::move(r);
  return {};
}

fusefs::Hooks Daemon::hooks() {
  fusefs::Hooks h;
  h.locks = &locks_;
  if (remote_) {
    sync::Syncer* syncer = remote_->syncer.get();
    h.write_gate = [syncer] {  // sync.h 10: a fenced store changes nothing more
      if (!syncer->is_fenced()) return Status();
      return Status::error(EROFS, syncer->fenced() + " (tcfs export-unsynced copies those changes out)");
    };
    h.tracker = &remote_->tracker;
    h.fetcher = remote_->fetcher.get();
    h.evictor = remote_->evictor.get();
  }
  txn::TxnManager* tm = tm_.get();
  h.before_fsync_ack = [tm] { return tm->has_lazy() ? tm->make_durable() : Status(); };
  if (ckpt_) h.log = &ckpt_->log();
  return h;
}

void Daemon::start(txn::Invalidator& inv) {
  // daemon.h 3
  tm_->set_invalidator(&inv);
  tm_->start_background();
  if (ckpt_) ckpt_->start();
  if (remote_) remote_->syncer->start();
  if (remote_) remote_->evictor->start();
  control::ServerInfo info{opt_.version, opt_.mountpoint, store_->path()};
  auto sock = control::prepare_socket_path(store_->path());  // control/socket_path.h P1, P2
  auto srv = sock ? control::ControlServer::start(*sock, exec_, opt_.limits, info)
                  : Result<std::unique_ptr<control::ControlServer>>(sock.status());
  if (srv) control_ = std::move(srv.value());
  else spdlog::error("compounds unavailable on {}: {}", opt_.mountpoint, srv.status().message());
  started_ = true;
}

void Daemon::stop() {
  if (!started_) return;
  started_ = false;
  trace_.clear();
  // daemon.h 4, in this order.
  if (control_) control_->stop(), trace_.push_back("control");
  if (remote_) remote_->evictor->stop(), trace_.push_back("evictor");
  if (remote_) remote_->syncer->stop(), trace_.push_back("syncer");  // a last round: what was committed goes out
  tm_->set_invalidator(nullptr);
  tm_->stop_background();
  trace_.push_back("txn");
  if (ckpt_) ckpt_->stop(), trace_.push_back("journal");  // a last checkpoint
}

Status Daemon::run(const fusefs::MountConfig& cfg_in, const std::function<void()>& ready) {
  fusefs::MountConfig cfg = cfg_in;
  cfg.fs.journal = ckpt_ != nullptr;  // fs.h Options::journal: only with a log to write to
  Status st = fusefs::serve(*store_, cfg, hooks(), [&](txn::Invalidator& inv) {
    start(inv);
    if (ready) ready();
  }, [this] { stop(); });
  stop();
  return st;
}

Daemon::~Daemon() { stop(); }

}  // namespace tcfs::daemon
