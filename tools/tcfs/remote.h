// tools/tcfs/remote.h — the `tcfs init`, `tcfs sync`, `tcfs status`,
// `tcfs gc` and `tcfs scrub` commands: argument checks, what they print and
// their exit codes. The work is in daemon/blobber_set.h (init, restore,
// encryption keys: its contract says what is refused) and in the mounted
// daemon, reached through the client library (sync, status, maintain).
//
// Exit codes: 0 done; 1 an error the message names (nothing changed);
// 2 a usage error.
//
// Thread-safety: called from main() only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "tcfs/status.h"
#include <vector>

namespace tcfs::cli {

// Prints "tcfs: error: MESSAGE" on stderr; returns 1 (the error exit).
int fail(const Status& st);

// restore: --from-blobbers (the store's tree must be empty; the blobbers must hold one).
// follow: a follower store of the chain on urls (sync/follow.h).
int cmd_init(const std::string& store_dir, const std::vector<std::string>& urls, const std::string& ec, bool restore,
             bool accept_older = false, const std::string& key_file = "", bool follow = false,
             const std::string& at = "", std::optional<bool> progress = {});
// json: one line {"mount", "round"}: the round that holds everything committed before the call.
int cmd_sync(const std::string& mountpoint, double timeout_s, bool json = false, std::optional<bool> progress = {});
// Returns once the mount (a follower, or a writer) shows `round` or a newer one.
int cmd_wait(const std::string& mountpoint, uint64_t round, double timeout_s);
int cmd_status(const std::string& mountpoint, bool json);
int cmd_metrics(const std::string& mountpoint);
int cmd_fsck(const std::string& store_dir, bool repair, bool json, bool remote = false,
             std::optional<bool> progress = {});  // fsck.cpp
int cmd_stats(const std::string& mountpoint, double interval_s, bool once, bool json);  // stats.cpp
// gc or scrub through the daemon; exit 1 when scrub finds objects it cannot make whole.
int cmd_maintain(const std::string& mountpoint, const std::string& what, std::optional<bool> progress = {});
// The rounds of the mount's chain (time travel targets), oldest first.
// With urls: read from those blobbers directly (no mount needed).
int cmd_log(const std::string& mountpoint, bool json, const std::vector<std::string>& urls = {},
            const std::string& ec = "", const std::string& key_file = "");
// A follower store (unmounted) becomes the writer (daemon/follower.h 5).
int cmd_promote(const std::string& store_dir, bool force);
// A store's changes after its last synced round, copied into out
// (sync/unsynced.h); the store must not be mounted.
int cmd_export_unsynced(const std::string& store_dir, const std::string& out);
// follow.cpp: the follower part of `tcfs status` (status["follow"] is there).
void print_follow_status(const nlohmann::json& status);

}  // namespace tcfs::cli
