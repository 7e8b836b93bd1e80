// daemon/status_metrics.cpp — status figures as metrics (status_metrics.h).
#include "daemon/status_metrics.h"

#include <prometheus/metric_family.h>

#include <vector>

#include "util/metrics.h"

namespace tcfs::daemon {
namespace {

using control::Json;

struct Figure {
  const char* section;  // the status map's section
  const char* key;
  const char* name;
  prometheus::MetricType type;
  const char* help;
};

constexpr auto C = prometheus::MetricType::Counter;
constexpr auto G = prometheus::MetricType::Gauge;

// 1: status key -> metric.
const Figure kFigures[] = {
    {"sync", "rounds", "tcfs_sync_rounds_total", C, "Sync rounds completed."},
    {"sync", "failures", "tcfs_sync_failures_total", C, "Sync rounds that failed (retried later)."},
    {"sync", "bytes_uploaded", "tcfs_sync_uploaded_bytes_total", C, "Bytes uploaded to the blobbers (before coding)."},
    {"sync", "blocks_uploaded", "tcfs_sync_uploaded_blocks_total", C, "Blocks uploaded to the blobbers."},
    {"sync", "blocks_deduplicated", "tcfs_sync_deduplicated_blocks_total", C,
     "Blocks not uploaded because the blobbers held them already."},
    {"sync", "objects_synced", "tcfs_sync_objects_total", C, "Files and directories synced."},
    {"sync", "oldest_pending_s", "tcfs_sync_oldest_unsynced_seconds", G,
     "Age of the oldest change not yet on the blobbers (0: none)."},
    {"sync", "pending", "tcfs_sync_pending_changes", G, "Changes waiting for a sync round."},
    {"sync", "dirty_bytes", "tcfs_sync_dirty_bytes", G, "Bytes of files changed since they were last synced."},
    {"sync", "dirty_files", "tcfs_sync_dirty_files", G, "Files changed since they were last synced."},
    {"sync", "epoch", "tcfs_sync_round", G, "The newest round on the blobbers."},
    {"cache", "store_bytes", "tcfs_cache_bytes", G, "Bytes of file content held in the local store."},
    {"cache", "cap_bytes", "tcfs_cache_limit_bytes", G, "The store's cache size limit (0: none)."},
    {"cache", "stubs", "tcfs_cache_stubs", G, "Files evicted to stubs (their content only on the blobbers)."},
    {"cache", "evicted_files", "tcfs_cache_evicted_files_total", C, "Files evicted to stubs."},
    {"cache", "evicted_bytes", "tcfs_cache_evicted_bytes_total", C, "Bytes freed by evictions."},
    {"cache", "fetched_bytes", "tcfs_cache_fetched_bytes_total", C, "Bytes fetched back from the blobbers."},
    {"journal", "records", "tcfs_journal_records_total", C, "Records appended to the endurant log."},
    {"journal", "batches", "tcfs_journal_batches_total", C, "Batches (one durable write each) of the endurant log."},
    {"journal", "bytes", "tcfs_journal_bytes_total", C, "Bytes appended to the endurant log."},
    {"journal", "checkpoints", "tcfs_journal_checkpoints_total", C, "Checkpoints that retired the endurant log."},
    {"journal", "full_waits", "tcfs_journal_full_waits_total", C, "Appends that waited for a checkpoint (log full)."},
    {"journal", "used_bytes", "tcfs_journal_used_bytes", G, "Bytes of the endurant log in use."},
    {"journal", "limit_bytes", "tcfs_journal_limit_bytes", G, "The endurant log's size."},
    {"journal", "mean_batch", "tcfs_journal_mean_batch_records", G, "Mean records per batch over the last second."},
    {"follow", "round", "tcfs_follower_round", G, "The round a follower shows."},
    {"follow", "lag_rounds", "tcfs_follower_lag_rounds", G, "Rounds the follower is behind the newest it saw."},
    {"follow", "lag_s", "tcfs_follower_lag_seconds", G, "Seconds the follower has been behind the newest round."},
    {"follow", "polls", "tcfs_follower_polls_total", C, "Polls of the blobbers for new rounds."},
    {"follow", "rounds_applied", "tcfs_follower_rounds_applied_total", C, "Rounds a follower applied."},
    {"cache", "bytes", "tcfs_block_cache_bytes", G, "Bytes in a follower's block cache."},
    {"cache", "hits", "tcfs_block_cache_hits_total", C, "Block reads a follower's block cache answered."},
    {"cache", "misses", "tcfs_block_cache_misses_total", C, "Block reads that fetched from the blobbers."},
};

class StatusCollector final : public prometheus::Collectable {
 public:
  explicit StatusCollector(std::shared_ptr<control::Executor> exec) : exec_(std::move(exec)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    Json j = exec_->figures();
    std::vector<prometheus::MetricFamily> out;
    for (const Figure& f : kFigures) {
      const Json* sec = j.contains(f.section) ? &j[f.section] : nullptr;
      if (!sec || !sec->is_object() || !sec->contains(f.key) || !(*sec)[f.key].is_number()) continue;
      const double v = (*sec)[f.key].get<double>();
      prometheus::ClientMetric m;
      if (f.type == C) m.counter.value = v;
      else m.gauge.value = v;
      out.push_back(prometheus::MetricFamily{f.name, f.help, f.type, {m}});
    }
    return out;
  }

 private:
  std::shared_ptr<control::Executor> exec_;
};

}  // namespace

std::shared_ptr<prometheus::Collectable> collect_status(std::shared_ptr<control::Executor> exec) {
  auto c = std::make_shared<StatusCollector>(std::move(exec));
  metrics::add_collector(c);
  return c;
}

}  // namespace tcfs::daemon
