// daemon/status_metrics.h — the figures `tcfs status` shows, as Prometheus
// metrics read at scrape time (util/metrics.h 3).
//
// Contract:
//  1. Collect() asks the executor for its figures() (no blobber request)
//     and turns each known figure into one sample: sync (rounds,
//     failures, bytes, blocks, deduplicated blocks, the age of the oldest
//     unsynced change, dirty bytes and files, the round), cache (bytes,
//     limit, stubs, evictions, fetched bytes), the endurant log (records,
//     batches, bytes, checkpoints, full waits, fill, mean batch) and a
//     follower's round, lag, polls and block cache. A figure the store does not have (no
//     blobbers, no log) is simply absent.
//  2. Counters are the daemon's own running totals since it started
//     (Prometheus handles a restart as a counter reset).
//
// Thread-safety: Collect() may run on any thread (the exposer's, a
// control connection's); the executor's figures() are thread-safe.
#pragma once

#include <memory>

#include <prometheus/collectable.h>

#include "control/server.h"

namespace tcfs::daemon {

// Registers a collector of exec's figures (util/metrics.h add_collector);
// it lives as long as the returned pointer.
std::shared_ptr<prometheus::Collectable> collect_status(std::shared_ptr<control::Executor> exec);

}  // namespace tcfs::daemon
