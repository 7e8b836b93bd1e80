// daemon/follower.cpp — a mounted follower store (follower.h).
#include "daemon/follower.h"

#include "daemon/status_metrics.h"

#include <spdlog/spdlog.h>

#include <sys/stat.h>

#include <chrono>
#include <ctime>

#include "control/socket_path.h"
#include "daemon/daemon.h"
#include "daemon/executor.h"
#include "fuse/view.h"
#include "sync/restore.h"

namespace tcfs::daemon {

using control::Json;

namespace {

Result<bool> is_follower_meta(meta::Env& env) {
  auto t = meta::Txn::begin(env, false);
  if (!t) return t.status();
  sync::State st(env);
  auto role = st.get(*t, "role");
  if (!role) return role.status();
  return role->value_or("") == "follower";
}

}  // namespace

Result<bool> is_follower(const std::string& store_dir) {
  auto s = store::Store::open(store_dir, store::OpenOptions{false});
  if (!s) return s.err() == ENOENT ? Result<bool>(false) : Result<bool>(s.status());
  return is_follower_meta((*s)->meta());
}

namespace {

// follower.h 3: what a follower answers on its control socket.
class FollowerExecutor final : public control::Executor {
 public:
  FollowerExecutor(Follower& f, std::string chain) : f_(f), chain_(std::move(chain)) {}
  CompoundReply run(const Compound&, const control::Caller&, const control::ProgressFn&) override {
    CompoundReply r;
    r.outcome = Outcome::Rejected;
    r.err = EROFS;
    r.message = "this mount is a read-only follower of " + chain_ + ": compounds go to the writer's mount";
    return r;
  }
  Status sync(uint64_t) override {
    return Status::error(EROFS, "this mount is a read-only follower of " + chain_ +
                                    ": it has nothing to sync (tcfs wait MOUNTPOINT ROUND waits for a round)");
  }
  Json status() override { return f_.status(); }
  Result<Json> maintain(const std::string& what) override {
    if (what == "log") return log_json(f_.objects());
    return Status::error(EROFS, what + ": this mount is a read-only follower of " + chain_ + ": run it on the writer");
  }

 private:
  Follower& f_;
  std::string chain_;
};

std::string chain_name(const RemoteConfig& c) {
  std::string s;
  for (const auto& u : c.urls) s += (s.empty() ? "" : " ") + u;
  return "the chain on " + s;
}

// follow.h 9: an image a crash left half-rebuilt, or one whose next round
// is gone from the blobbers, is rebuilt from them (the store unmounted).
Status rebuild_if_needed(blob::ObjectStore& os, store::Store& s, sync::State& st, uint64_t at) {
  auto pending = sync::rebuild_pending(st);
  if (!pending) return pending.status();
  std::string why = "a rebuild of the image did not finish";
  if (!*pending) {
    sync::Image img(st);
    auto gone = sync::stranded(os, img, at);
    if (!gone) return gone.status();
    if (!gone->has_value()) return {};
    why = **gone;
  }
  spdlog::warn("follower store {}: {}: rebuilding its image from the blobbers", s.path(), why);
  sync::RestoreOptions ro;
  ro.stop_at = at;
  auto r = sync::rebuild_image(os, s.root_fd(), st, ro);
  if (!r) return r.status().wrap("follower store " + s.path() + ": " + why + "; rebuilding its image failed");
  spdlog::warn("follower store {}: image rebuilt at round {} ({} records from {}{} journal(s))", s.path(), r->epoch,
               r->records, r->snapshot.empty() ? "" : "snapshot " + r->snapshot + " and ", r->journals);
  return {};
}

}  // namespace

// follower.h 5.
Result<PromoteReport> promote(const std::string& store_dir, bool force) {
  PromoteReport rep;
  rep.forced = force;
  auto store = store::Store::open(store_dir, store::OpenOptions{false});
  if (!store) return store.status().wrap("store " + store_dir + (store.err() == EBUSY ? " (unmount it first)" : ""));
  store::Store& s = **store;
  auto role = is_follower_meta(s.meta());
  if (!role) return role.status();
  if (!*role) return Status::error(EINVAL, "store " + s.path() + " is not a follower: it is already a writer");
  auto cfg = load_config(s.meta());
  if (!cfg) return cfg.status();
  if (!cfg->has_value()) return Status::error(EINVAL, "store " + s.path() + " has no blobber set");
  auto os = open_objects(**cfg, nullptr);
  if (!os) return os.status();
  sync::State state(s.meta());
  TCFS_TRY(rebuild_if_needed(**os, s, state, 0));
  sync::Image img(state);
  for (;;) {  // catch up with the newest marked round
    sync::PollReport p = sync::poll(**os, img);
    rep.caught_up += p.applied;
    if (!p.error) {
      if (!force)
        return p.error.wrap("promote " + s.path() + ": the chain cannot be followed to its newest round (" +
                            std::to_string(p.newest) + "); --force promotes at the round reached");
      rep.stopped = p.error.message();
      break;
    }
    if (p.applied == 0) break;
  }
  auto built = sync::build_from_image(s.root_fd(), state);
  if (!built) return built.status().wrap("promote " + s.path() + ": build the tree");
  rep.epoch = built->epoch;
  rep.head = built->head;
  auto t = meta::Txn::begin(s.meta(), true);
  if (!t) return t.status();
  TCFS_TRY(t->del(s.meta().db(sync::kSyncDb), "role"));
  TCFS_TRY(t->del(s.meta().db(sync::kSyncDb), "round_writer"));
  TCFS_TRY(t->del(s.meta().db(sync::kSyncDb), "round_time"));
  TCFS_TRY(t->del(s.meta().db(sync::kSyncDb), "writer"));  // the Syncer makes this store's own id
  if (force) {
    TCFS_TRY(state.put(*t, "clean", "0"));  // the mount rescans ...
    struct stat sb;
    if (fstat(s.root_fd(), &sb) != 0 || fchmod(s.root_fd(), sb.st_mode & 07777) != 0)  // ... and finds the root changed
      return Status::from_errno("promote " + s.path() + ": mark the root");
  }
  TCFS_TRY(t->commit());  // COMMIT POINT of promote: the store is a writer from here on
  return rep;
}

// follower.h 1.
Result<std::unique_ptr<Follower>> Follower::open(const FollowerOptions& o) {
  std::unique_ptr<Follower> f(new Follower());
  f->opt_ = o;
  auto store = store::Store::open(o.store_dir);
  if (!store) return store.status();
  f->store_ = std::move(*store);
  store::Store& s = *f->store_;
  auto cfg = load_config(s.meta());
  if (!cfg) return cfg.status();
  if (!cfg->has_value()) return Status::error(EINVAL, "follower store " + s.path() + " has no blobber set");
  f->cfg_ = **cfg;
  if (!o.mountpoint.empty()) TCFS_TRY(check_blobbers_apart(f->cfg_, o.mountpoint));  // txn.h 10
  std::vector<std::string> down;
  auto os = open_objects(f->cfg_, &down);
  if (!os) return os.status().wrap("blobbers of follower store " + s.path());
  f->objects_ = std::move(*os);
  for (const auto& d : down) {
    fprintf(stderr, "tcfs: warning: %s (the follower serves its current round until it is back)\n", d.c_str());
    spdlog::warn("mount: blobber down: {}", d);
  }
  f->state_ = std::make_unique<sync::State>(s.meta());
  {  // follow.h 8: this follower's id, kept
    auto t = meta::Txn::begin(s.meta(), true);
    if (!t) return t.status();
    auto id = f->state_->get(*t, "follower_id");
    if (!id) return id.status();
    f->follower_id_ = id->value_or(blob::random_id().hex().substr(0, 32));
    if (!id->has_value()) {
      TCFS_TRY(f->state_->put(*t, "follower_id", f->follower_id_));
      TCFS_TRY(t->commit());
    }
  }
  f->image_ = std::make_unique<sync::Image>(*f->state_);
  f->image_->set_switch_gate([p = f.get()](uint64_t) { p->before_switch(); });
  uint64_t limit = o.cache_bytes ? o.cache_bytes : uint64_t{1} << 30;
  auto cache = sync::BlockCache::open(s.path() + "/cache", limit, *f->objects_);
  if (!cache) return cache.status().wrap("block cache of follower store " + s.path());
  f->cache_ = std::move(*cache);
  if (!o.at.empty()) {  // follow.h 7
    auto at = sync::resolve_at(*f->objects_, o.at);
    if (!at) return at.status();
    f->at_ = *at;
    uint64_t e = f->epoch();
    if (e > f->at_)
      return Status::error(EINVAL, "follower store " + s.path() + " already shows round " + std::to_string(e) +
                                       ", after round " + std::to_string(f->at_) +
                                       ": time travel to it needs a new follower store (tcfs init --follow --at)");
  }
  TCFS_TRY(rebuild_if_needed(*f->objects_, s, *f->state_, f->at_));
  return f;
}

uint64_t Follower::epoch() {
  auto t = meta::Txn::begin(image_->env(), false);
  if (!t) return 0;
  auto r = image_->round(*t);
  return r ? r->epoch : 0;
}

// follower.h 2.
uint64_t Follower::poll_once() {
  MutexLock p(poll_mu_);
  sync::PollReport rep = sync::poll(*objects_, *image_, at_);
  if (!rep.error) {  // follow.h 9: the chain gone from under the image is said as such
    auto gone = sync::stranded(*objects_, *image_, at_);
    if (gone && gone->has_value())
      rep.error = Status::error(ENOENT, **gone + ": unmount and mount again to rebuild the image");
  }
  uint64_t e = epoch();
  MutexLock g(mu_);
  polls_++;
  rounds_applied_ += rep.applied;
  newest_ = std::max(newest_, rep.newest);
  uint64_t target = at_ ? std::min(newest_, at_) : newest_;
  if (e >= target) behind_since_ = 0;
  else if (!behind_since_) behind_since_ = static_cast<int64_t>(::time(nullptr));
  announce(e);
  std::string err = rep.error ? std::string() : rep.error.message();
  if (!err.empty() && err != last_error_) spdlog::warn("follow: stays at round {}: {}", e, err);
  if (err.empty() && !last_error_.empty()) spdlog::info("follow: moving again, at round {}", e);
  last_error_ = err;
  return e;
}

// follower.h 7 (poller thread, inside the round's write transaction).
void Follower::before_switch() {
  if (opt_.switch_wait_ms == 0) return;
  bool quiet = activity_.wait_quiet(std::chrono::milliseconds(opt_.switch_wait_ms));
  MutexLock g(mu_);
  (quiet ? switches_quiet_ : switches_forced_)++;
}

void Follower::announce(uint64_t epoch) {
  int64_t now = static_cast<int64_t>(::time(nullptr));
  if (epoch == announced_round_ && now - announced_at_ < kNoteTtl / 3) return;
  Status st = sync::announce(*objects_, follower_id_, epoch, now + kNoteTtl);
  if (!st) {
    spdlog::warn("follow: cannot announce round {} on the blobbers ({}): gc may remove what it reads", epoch,
                 st.message());
    return;
  }
  announced_round_ = epoch;
  announced_at_ = now;
}

void Follower::loop() {
  for (;;) {
    poll_once();
    UniqueLock g(mu_);
    g.wait_for(cv_, std::chrono::milliseconds(opt_.poll_ms), [&]() TCFS_REQUIRES(mu_) { return stopping_; });
    if (stopping_) return;
  }
}

Json Follower::status() {
  auto t = meta::Txn::begin(image_->env(), false);
  sync::Round r;
  if (t) {
    auto rr = image_->round(*t);
    if (rr) r = *rr;
  }
  Json j = Json::object();
  MutexLock g(mu_);
  uint64_t target = at_ ? std::min(newest_, at_) : newest_;
  int64_t now = static_cast<int64_t>(::time(nullptr));
  j["follow"] = {{"round", r.epoch},
                 {"id", follower_id_},
                 {"head", r.head},
                 {"writer", r.writer},
                 {"round_time", r.time},
                 {"newest", std::max(newest_, r.epoch)},
                 {"lag_rounds", target > r.epoch ? target - r.epoch : 0},
                 {"lag_s", behind_since_ ? now - behind_since_ : 0},
                 {"at", at_},
                 {"poll_ms", opt_.poll_ms},
                 {"polls", polls_},
                 {"rounds_applied", rounds_applied_},
                 {"switch_wait_ms", opt_.switch_wait_ms},
                 {"switches_quiet", switches_quiet_},
                 {"switches_forced", switches_forced_},
                 {"last_error", last_error_}};
  auto cs = cache_->stats();
  j["cache"] = {{"bytes", cache_->bytes()}, {"limit", cache_->limit()}, {"hits", cs.hits}, {"misses", cs.misses},
                {"evicted", cs.evicted}};
  j["ec"] = cfg_.ec();
  auto bl = Json::array();
  for (size_t i = 0; i < objects_->width(); i++) bl.push_back({{"url", objects_->blobber(i).url()}});
  j["blobbers"] = bl;
  return j;
}

void Follower::start() {
  {
    MutexLock g(mu_);
    stopping_ = false;
  }
  poller_ = std::thread([this] { loop(); });
  control::ServerInfo info{opt_.version, opt_.mountpoint, store_->path()};
  auto exec = std::make_shared<FollowerExecutor>(*this, chain_name(cfg_));
  metrics_ = collect_status(exec);  // status_metrics.h
  auto sock = control::prepare_socket_path(store_->path());
  auto srv = sock ? control::ControlServer::start(*sock, exec, control::Limits{}, info)
                  : Result<std::unique_ptr<control::ControlServer>>(sock.status());
  if (srv) control_ = std::move(srv.value());
  else spdlog::error("control socket unavailable on {}: {}", opt_.mountpoint, srv.status().message());
  started_ = true;
}

// follower.h 4.
void Follower::stop() {
  if (!started_) return;
  started_ = false;
  metrics_.reset();
  {
    MutexLock g(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  activity_.cancel();  // follower.h 4: a switch wait ends now
  if (poller_.joinable()) poller_.join();
  if (control_) control_->stop();
}

Status Follower::run(const fusefs::MountConfig& cfg, const std::function<void()>& ready) {
  Status st = fusefs::serve_view(store_->path(), cfg, *image_, *cache_, activity_, [&] {
    start();
    if (ready) ready();
  }, [this] { stop(); });
  stop();
  return st;
}

Follower::~Follower() { stop(); }

}  // namespace tcfs::daemon
