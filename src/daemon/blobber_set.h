// daemon/blobber_set.h — a store's blobber set: its recorded configuration,
// opening it, and `tcfs init` (a new set, or a restore from one).
//
// Contract:
//  * The set (URLs and the K+M code) is recorded in the store's LMDB
//    (sync_meta "config", JSON) by init_set and read by load_config at
//    mount; credentials are never recorded (they come from the AWS_*
//    environment when a blobber is opened).
//  * init_set refuses, changing nothing, when: a blobber fails its probe
//    (the message names it and why), the store already has a different set,
//    or the blobbers already hold a tree (journals) — that tree belongs to
//    another store. The same set again is no change (InitReport::unchanged).
//    A failed init removes the store directory when it created it.
//    With restore it is the other way round: the blobbers must hold a tree
//    and the store's must be empty; the tree is rebuilt as stubs
//    (sync/restore.h) before the set is recorded. A restore goes ahead with
//    up to M blobbers failing their probe (a lost disk; InitReport::down
//    names them, the caller says the set is degraded); with more it fails,
//    naming them. A restore whose chain is cut (chain.h 3) fails unless
//    accept_older, and then the report says which round it restored.
//  * Encryption (blob/cipher.h): with a key file, everything sent to the
//    blobbers is sealed. The config then also records the key file's
//    absolute path and the key's id; open_objects() loads the key from that
//    path and refuses, naming the path, a missing, malformed, group/world-
//    accessible key file, or one whose id differs. init_set creates a
//    missing key file (a new set only, never a restore; removed again when
//    init fails, so a refused init leaves nothing) and writes the key-check
//    object kKeyCheck, sealed; a set that holds one is encrypted. init_set
//    refuses, changing nothing: a plain init or restore of an encrypted set
//    (no key file), an encrypted restore of a plain set, and a key the
//    key-check object does not open with.
//
// Thread-safety: plain functions; init_set runs with no daemon on the store
// (the store's lock, store/store.h, refuses a second opener).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "blob/objects.h"
#include "meta/env.h"
#include "store/store.h"
#include "sync/restore.h"

namespace tcfs::daemon {

// The key-check object of an encrypted set (its sealed content is fixed).
constexpr const char* kKeyCheck = "k/key";

struct RemoteConfig {
  std::vector<std::string> urls;
  unsigned k = 1, m = 0;
  std::string key_file, key_id;  // empty: the set is not encrypted
  std::string ec() const { return std::to_string(k) + "+" + std::to_string(m); }
};

// The set for `urls` with the code "K+M" (empty: 1+0 for one blobber, N-1+1
// for N). EINVAL naming the problem: no URL, a malformed code, K+M != N.
Result<RemoteConfig> parse_ec(const std::vector<std::string>& urls, const std::string& ec);

Result<std::optional<RemoteConfig>> load_config(meta::Env& env);
// Opens every blobber of the set; with `down`, probes each one now and
// appends a message for each that fails (else no probe).
Result<std::unique_ptr<blob::ObjectStore>> open_objects(const RemoteConfig& c, std::vector<std::string>* down);

// Creates <store>/sync/stage if needed and opens it (sync's capture stage).
Result<int> open_stage(store::Store& s);

struct InitReport {
  RemoteConfig cfg;                            // as recorded (key file made absolute)
  std::string store_path;                      // the store's canonical path
  bool unchanged = false;                      // the store already had this set
  bool key_created = false;                    // init made the key file
  std::vector<std::string> down;               // restore: blobbers missing (at most M)
  std::optional<sync::RestoreReport> restored;  // restore: what came back
};

// `tcfs init`: records cfg as the store's set (restore: rebuilds the tree
// from it first); key_file (may be relative or empty) encrypts the set.
// follow: a follower store (sync/follow.h): as a restore, but the tree is
// loaded as the image only, and the store is recorded as a follower.
// at: with follow, the round to stop at (sync/follow.h 7: a round number
// or a time; "" = the newest).
Result<InitReport> init_set(const std::string& store_dir, RemoteConfig cfg, const std::string& key_file, bool restore,
                            bool accept_older, bool follow = false, const std::string& at = "",
                            const decltype(sync::RestoreOptions::progress)& progress = {});

}  // namespace tcfs::daemon
