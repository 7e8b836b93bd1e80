// daemon/executor.cpp — control requests on a mounted store (executor.h).
#include "daemon/executor.h"

#include <sys/statvfs.h>

#include "sync/follow.h"

namespace tcfs::daemon {
namespace {

using control::Json;

class DaemonExecutor final : public control::Executor {
 public:
  DaemonExecutor(txn::TxnManager& tm, Remote* r, std::string store, Checkpointer* ckpt)
      : tm_(tm), r_(r), store_(std::move(store)), ckpt_(ckpt) {}

  CompoundReply run(const Compound& c, const control::Caller& who, const control::ProgressFn& progress) override {
    txn::Caller w;
    w.pid = who.pid;
    w.creds.uid = who.uid;
    w.creds.gid = who.gid;
    w.creds.groups = who.groups;
    return tm_.run(c, w, progress);
  }

  Status sync(uint64_t timeout_ms) override {
    if (!r_) return Executor::sync(timeout_ms);
    TCFS_TRY(r_->syncer->wait_synced(std::chrono::milliseconds(timeout_ms)));
    return r_->syncer->ensure_restorable();  // "on the blobbers" only if they give it back (chain.h 5)
  }

  Json status() override {
    Json j = figures();
    if (!r_) return j;
    j["blobbers"] = blobbers_status();
    j["sync"]["chain_problem"] = r_->syncer->chain_problem();  // checked now: a walk of the chain
    return j;
  }

  // Nothing here asks the blobbers: read by every metrics scrape and poll.
  Json figures() override {
    Json j = Json::object();
    struct statvfs v;
    if (statvfs(store_.c_str(), &v) == 0)
      j["cache"] = {{"used_bytes", (uint64_t{v.f_blocks} - v.f_bfree) * v.f_frsize},
                    {"free_bytes", uint64_t{v.f_bavail} * v.f_frsize}};
    if (ckpt_) j["journal"] = journal_status();
    if (!r_) return j;
    cache_status(j["cache"]);
    j["ec"] = r_->cfg.ec();
    if (!r_->cfg.key_file.empty()) j["encryption"] = {{"cipher", "AES-256-GCM"}, {"key_file", r_->cfg.key_file}};
    j["sync"] = sync_status();
    return j;
  }

  Result<Json> maintain(const std::string& what) override {
    if (!r_) return Executor::maintain(what);
    if (what == "log") return log_json(*r_->objects);
    auto rep = what == "gc" ? r_->syncer->gc() : r_->syncer->scrub();
    if (!rep) return rep.status();
    return Json{{"objects", rep->objects},        {"deleted", rep->deleted},
                {"index_dropped", rep->index_dropped}, {"kept_from", rep->kept_from},
                {"notes_expired", rep->notes_expired}, {"good", rep->good},
                {"repaired", rep->repaired},      {"unrecoverable", rep->unrecoverable},
                {"problems", rep->problems},      {"chain_rewritten", rep->chain_rewritten}};
  }

 private:
  // issue 13: the endurant log's fill, records, batches, checkpoint lag.
  Json journal_status() {
    journal::Stats s = ckpt_->log().stats();
    Checkpointer::Figures f = ckpt_->figures();
    return {{"records", s.records},       {"batches", s.batches},
            {"bytes", s.bytes},           {"checkpoints", s.ckpts},
            {"full_waits", s.full_waits}, {"durable_seq", s.durable_seq},
            {"ckpt_seq", s.ckpt_seq},     {"used_bytes", s.used_bytes},
            {"limit_bytes", s.limit_bytes}, {"io_uring", s.uring},
            {"records_per_s", f.records_per_s}, {"batches_per_s", f.batches_per_s},
            {"mean_batch", f.mean_batch}, {"checkpoint_lag_s", f.ckpt_lag_s}};
  }
  void cache_status(Json& c) {
    auto ev = r_->evictor->stats();
    c["cap_bytes"] = ev.cap;
    c["reserve_bytes"] = ev.reserve;
    c["store_bytes"] = ev.used;
    c["stubs"] = r_->fetcher->stubs();
    c["evicted_files"] = ev.files_evicted;
    c["evicted_bytes"] = ev.bytes_evicted;
    c["fetched_bytes"] = r_->fetcher->bytes_fetched();
    if (!ev.last_error.empty()) c["last_error"] = ev.last_error;
  }

  Json blobbers_status() {
    auto bl = Json::array();
    for (size_t i = 0; i < r_->objects->width(); i++) {
      Status p = r_->objects->blobber(i).probe();
      bl.push_back({{"url", r_->objects->blobber(i).url()}, {"health", p ? "ok" : "DOWN: " + p.message()}});
    }
    return bl;
  }

  Json sync_status() {
    auto st = r_->syncer->status();
    return {{"epoch", st.epoch},
            {"head", st.head},
            {"pending", st.pending},
            {"dirty_files", r_->tracker.dirty_files()},
            {"dirty_bytes", r_->tracker.dirty_bytes()},
            {"oldest_pending_s", st.oldest_pending_s},
            {"rounds", st.rounds},
            {"failures", st.failures},
            {"last_error", st.last_error},
            {"bytes_uploaded", st.bytes_uploaded},
            {"blocks_uploaded", st.blocks_uploaded},
            {"blocks_deduplicated", st.blocks_deduplicated},
            {"objects_synced", st.objects_synced},
            {"upload_rate", st.upload_rate},
            {"running", st.running},
            {"chain_problem", st.chain_problem},  // as last checked (status() checks now)
            {"fenced", st.fenced},
            {"chain_rewrites", st.chain_rewrites},
            {"maintenance", {{"what", st.maintenance}, {"done", st.maint_done}, {"total", st.maint_total}}},
            {"round_bytes", st.round_bytes},
            {"round_done", st.round_done}};
  }

  txn::TxnManager& tm_;
  Remote* r_;
  std::string store_;
  Checkpointer* ckpt_;  // null: the endurant log is off
};

}  // namespace

Result<Json> log_json(blob::ObjectStore& os) {
  auto log = sync::round_log(os, true);
  if (!log) return log.status();
  Json rounds = Json::array();
  for (const auto& r : *log)
    rounds.push_back({{"round", r.epoch}, {"journal", r.journal}, {"writer", r.writer}, {"time", r.time},
                      {"records", r.records}, {"readable", r.readable}});
  return Json{{"rounds", rounds}};
}

std::shared_ptr<control::Executor> make_executor(txn::TxnManager& tm, Remote* r, std::string store_path,
                                                Checkpointer* ckpt) {
  return std::make_shared<DaemonExecutor>(tm, r, std::move(store_path), ckpt);
}

}  // namespace tcfs::daemon
