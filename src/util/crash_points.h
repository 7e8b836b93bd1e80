// util/crash_points.h — the one registry of named crash points.
//
// Contract:
//  * Every TCFS_CRASH_POINT(name) in the tree names an entry of
//    kCrashPoints: the macro checks it at compile time (registered() is
//    consteval), so a point cannot be added without its entry here.
//  * Each entry says which protocol the point belongs to, where it is
//    (file and function) and what a crash there leaves behind, i.e. the
//    state recovery starts from. `tcfs debug crash-points` prints the table
//    (name, protocol, where, state; tab-separated); the crash sweeps read
//    it, so a new point of a swept protocol is swept without editing a
//    script (tests/integration/crash_sweep.sh: txn, undo;
//    evict_test.sh: evict; sync_crash_test.sh: sync, fetch).
//  * A point fires (SIGKILL) when TCFS_CRASH_AT=name[:nth] names it
//    (util/fault.h).
//
// Thread-safety: constant data.
#pragma once

#include <string_view>

namespace tcfs::crash {

struct PointInfo {
  const char* name;
  const char* protocol;  // txn, undo, evict, sync, fetch, journal
  const char* where;
  const char* state;     // what a crash here leaves for recovery
};

inline constexpr PointInfo kCrashPoints[] = {
    // The compound protocol (txn/txn.h steps 1-8).
    {"txn.after_lock", "txn", "txn/txn.cpp TxnManager::run", "locks held, nothing written: no RR"},
    {"txn.after_images", "txn", "txn/txn.cpp TxnManager::prepare",
     "undo images in txn/<id>/, not yet synced; no RR: reclaimed"},
    {"txn.after_rr", "txn", "txn/txn.cpp TxnManager::prepare", "RR durable, no operation run: undo is a no-op"},
    {"txn.before_op", "txn", "txn/txn.cpp TxnManager::execute", "operations 0..k-1 done, marker at k: undone"},
    {"txn.after_op", "txn", "txn/txn.cpp TxnManager::execute", "operations 0..k done: undone"},
    {"txn.after_exec", "txn", "txn/txn.cpp TxnManager::run_txn", "every operation done, RR present: undone"},
    {"txn.after_sync", "txn", "txn/txn.cpp TxnManager::commit",
     "effects durable, RR present (before the commit point): undone"},
    {"txn.after_commit", "txn", "txn/txn.cpp TxnManager::commit", "RR deleted (after the commit point): kept"},
    // The undo executor (txn/undo.h), online, at recovery and in tcfs-undo.
    {"undo.before_step", "undo", "txn/undo.cpp Undoer::run", "some steps undone: undo runs again (idempotent)"},
    {"undo.after_step", "undo", "txn/undo.cpp Undoer::run", "one more step undone: undo runs again"},
    {"undo.after_inodes", "undo", "txn/undo.cpp Undoer::run", "every step undone, not yet synced: runs again"},
    {"undo.after_sync", "undo", "txn/undo.cpp finish_undo", "undo durable, RR present: runs again"},
    {"undo.after_delete", "undo", "txn/undo.cpp finish_undo", "RR deleted: txn/<id>/ reclaimed later"},
    // Eviction (sync/evict.h).
    {"evict.after_intent", "evict", "sync/evict.cpp Evictor::evict_batch",
     "stub state committed in LMDB (evict.h 4a), content intact: fetched back as needed"},
    {"evict.after_punch", "evict", "sync/evict.cpp Evictor::evict_batch",
     "content punched, times put back, ctime not yet recorded: a stub, rescanned at mount"},
    // Sync rounds (sync/sync.h).
    {"sync.after_barrier", "sync", "sync/stream.cpp StreamWriter::finish",
     "every chunk and block durable on the blobbers, no end object: the round never happened"},
    {"sync.after_end", "sync", "sync/syncer.cpp Syncer::send",
     "end object written, no marker: the round never happened (a stray journal); the next start "
     "rescans and re-does the epoch"},
    {"sync.after_marker", "sync", "sync/syncer.cpp Syncer::send",
     "marker created (the remote commit point, sync.h 10), the round not committed locally: the next "
     "start adopts its own marked round and the round after it sends what it touched again"},
    {"sync.after_local_commit", "sync", "sync/syncer.cpp Syncer::send", "the round committed on both sides"},
    // Fetching a stub's content (sync/fetch.h).
    {"fetch.after_data", "fetch", "sync/fetch.cpp Fetcher::complete",
     "content written and synced, still a stub in LMDB: fetched again on use (same bytes)"},
    {"fetch.after_commit", "fetch", "sync/fetch.cpp Fetcher::complete", "an ordinary clean file"},
    // The endurant log (journal/log.h).
    {"journal.before_segment", "journal", "journal/log.cpp Log::start_segment",
     "a segment about to be restarted, its old header intact: the log as it was"},
    {"journal.before_batch", "journal", "journal/log.cpp Log::commit_batch",
     "a batch not yet written: its appends were never acknowledged"},
    {"journal.after_batch", "journal", "journal/log.cpp Log::commit_batch",
     "a batch durable, its appends not yet answered: replayed at recovery"},
    {"journal.ckpt_after_syncfs", "journal", "daemon/checkpoint.cpp Checkpointer::now",
     "the store synced, no CKPT record: the records replay again at recovery (idempotent, log.h 6)"},
    {"journal.after_ckpt", "journal", "daemon/checkpoint.cpp Checkpointer::now",
     "a CKPT durable: the records before it are retired, never replayed"},
    {"journal.replay_record", "journal", "journal/store_log.cpp open_store_log",
     "some records replayed, not synced: the next recovery replays them all again"},
    {"journal.after_replay", "journal", "journal/store_log.cpp open_store_log",
     "every record replayed and synced, no CKPT yet: replayed again at the next recovery"},
};

inline constexpr bool same(const char* a, const char* b) { return std::string_view(a) == std::string_view(b); }

// `name`, if it is registered; otherwise not a constant expression (a
// compile error at the TCFS_CRASH_POINT that names it).
consteval const char* registered(const char* name) {
  for (const auto& p : kCrashPoints)
    if (same(p.name, name)) return name;
  throw "crash point not in util/crash_points.h";
}

}  // namespace tcfs::crash
