// tools/tcfs/remote.h — the store's blobber set: `tcfs init`, opening the
// set at mount, and the `tcfs sync` / `tcfs status` client commands.
//
// Contract:
//  * The set (URLs and the K+M code) is recorded in the store's LMDB
//    (sync_meta "config", JSON) by init and read by mount; credentials are
//    never recorded (they come from the AWS_* environment at mount).
//  * init refuses, changing nothing, when: K+M differs from the number of
//    blobbers, a blobber fails its probe (message names it and why), the
//    store already has a different set, or the blobbers already hold a
//    tree (journals) — that tree belongs to another store. With restore
//    (--from-blobbers) it is the other way round: the blobbers must hold a
//    tree and the store's must be empty; the tree is rebuilt as stubs
//    (sync/restore.h) before the set is recorded. A restore goes ahead
//    with up to M blobbers failing their probe (a lost disk): it names
//    each one and says the set is degraded (tcfs scrub rebuilds their
//    shards once they are back); with more it fails, naming them. A restore
//    whose chain is cut (chain.h 3) fails unless accept_older, and then
//    says which round it restored and what it could not read.
//  * Encryption (blob/cipher.h): with a key file, everything sent to the
//    blobbers is sealed. The config then also records the key file's
//    absolute path and the key's id; open_objects() loads the key from
//    that path and refuses, naming the path, a missing, malformed,
//    group/world-accessible key file, or one whose id differs. init
//    creates a missing key file (a new set only, never a restore; removed
//    again when init fails, so a refused init leaves nothing) and
//    writes the key-check object kKeyCheck, sealed; a set that holds one
//    is encrypted. init refuses, changing nothing: a plain init or restore
//    of an encrypted set (no --key-file), an encrypted restore of a plain
//    set, and a key the key-check object does not open with.
//
// Thread-safety: called from main() only.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "blob/objects.h"
#include "meta/env.h"
#include "store/store.h"

namespace tcfs::cli {

// The key-check object of an encrypted set (its sealed content: kKeyCheckText).
constexpr const char* kKeyCheck = "k/key";

struct RemoteConfig {
  std::vector<std::string> urls;
  unsigned k = 1, m = 0;
  std::string key_file, key_id;  // empty: the set is not encrypted
  std::string ec() const { return std::to_string(k) + "+" + std::to_string(m); }
};

Result<std::optional<RemoteConfig>> load_config(meta::Env& env);
// Opens every blobber of the set; probe: check each one now (init: any
// failure is an error; mount: failures are returned in *down).
Result<std::unique_ptr<blob::ObjectStore>> open_objects(const RemoteConfig& c, std::vector<std::string>* down);

// Creates <store>/sync/stage if needed and opens it (sync's capture stage).
Result<int> open_stage(store::Store& s);

// restore: --from-blobbers (the store's tree must be empty; the blobbers must hold one).
int cmd_init(const std::string& store_dir, const std::vector<std::string>& urls, const std::string& ec, bool restore,
             bool accept_older = false, const std::string& key_file = "");
int cmd_sync(const std::string& mountpoint, double timeout_s);
int cmd_status(const std::string& mountpoint, bool json);
// gc or scrub through the daemon; exit 1 when scrub finds objects it cannot make whole.
int cmd_maintain(const std::string& mountpoint, const std::string& what);

}  // namespace tcfs::cli
