// journal/store_log.h — a store's endurant log (log.h) at mount: what it
// holds is put back into the backing files, then it is opened for appends.
//
// Contract: open_store_log(o, mount_fd) runs recovery (log.h 6) and applies
// every record after the newest checkpoint, in seq order, to the backing
// file its handle names (open_by_handle_at relative to mount_fd, any
// descriptor on the store's filesystem): the data at its offset, then the
// file's size and mtime as the record gives them. A file gone since
// (ESTALE, ENOENT: removed after its record) is skipped. Then syncfs of
// mount_fd makes it all durable and the log is opened with a checkpoint of
// everything replayed (log.h 4): no live record is left. Idempotent: a
// crash anywhere in it replays the same records again at the next open.
// A log that cannot be verified (log.h 6) refuses, changing nothing.
// A log that cannot be opened for appends after its replay (no space for
// its segments, no O_DIRECT on the filesystem, ...) is removed — what it
// held is durable in the store by then — and the error is returned with
// Replayed::cannot_keep set: the caller may go on without a log.
// The daemon runs it before compound recovery (docs/DESIGN.md §9: log
// replay first, then undo); tcfs-undo runs the same code.
//
// Thread-safety: one call per store at a time, before the mount serves.
#pragma once

#include <memory>
#include <string>

#include "journal/log.h"

namespace tcfs::journal {

struct Replayed {
  Recovered log;
  uint64_t applied = 0, skipped = 0;  // records put back / of files gone since
  bool cannot_keep = false;           // replayed (if anything), but no log to append to: removed
};

Result<std::unique_ptr<Log>> open_store_log(const Options& o, int mount_fd, Replayed* report = nullptr);

// The log's options for a store: <store>/journal, 4 segments sharing
// total_bytes, or the size its segments already have (a log keeps the
// geometry it was made with until it is empty).
Options store_options(const std::string& store_path, const std::string& store_id, uint64_t total_bytes);
// Whether the store has a log at all (a segment file).
bool has_log(const std::string& store_path);

}  // namespace tcfs::journal
