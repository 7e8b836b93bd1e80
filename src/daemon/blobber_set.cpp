// daemon/blobber_set.cpp — the blobber set's configuration, opening it, and
// init/restore (blobber_set.h).
#include "daemon/blobber_set.h"

#include "sync/follow.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <filesystem>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "blob/metered.h"
#include "sync/state.h"

namespace tcfs::daemon {
namespace {

using json = nlohmann::json;

constexpr const char* kKeyCheckText = "tcfs key check v1";

json to_json(const RemoteConfig& c) {
  json j = {{"blobbers", c.urls}, {"k", c.k}, {"m", c.m}};
  if (!c.key_file.empty()) j["key_file"] = c.key_file, j["key_id"] = c.key_id;  // plain sets: unchanged
  return j;
}

}  // namespace

Result<RemoteConfig> parse_ec(const std::vector<std::string>& urls, const std::string& ec) {
  RemoteConfig c;
  c.urls = urls;
  size_t n = urls.size();
  if (n == 0) return Status::error(EINVAL, "no blobber given (--blobber URL)");
  if (ec.empty()) {
    c.m = n >= 2 ? 1 : 0;
    c.k = static_cast<unsigned>(n) - c.m;
    return c;
  }
  unsigned k = 0, m = 0;
  int used = 0;
  if (sscanf(ec.c_str(), "%u+%u%n", &k, &m, &used) != 2 || static_cast<size_t>(used) != ec.size() || k == 0)
    return Status::error(EINVAL, "--ec " + ec + ": expected K+M with K >= 1 (e.g. 2+1)");
  if (size_t{k} + m != n)
    return Status::error(EINVAL, "--ec " + ec + " needs " + std::to_string(k + m) + " blobbers, " +
                                     std::to_string(n) + " given");
  c.k = k;
  c.m = m;
  return c;
}

Result<int> open_stage(store::Store& s) {
  for (const char* d : {"sync", "sync/stage"})
    if (mkdirat(s.dir_fd(), d, 0700) != 0 && errno != EEXIST)
      return Status::from_errno("create " + s.path() + "/" + d);
  int fd = openat(s.dir_fd(), "sync/stage", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno("open " + s.path() + "/sync/stage");
  return fd;
}

Result<std::optional<RemoteConfig>> load_config(meta::Env& env) {
  auto t = meta::Txn::begin(env, false);
  if (!t) return t.status();
  sync::State st(env);
  auto v = st.get(*t, "config");
  if (!v) return v.status();
  if (!v->has_value()) return std::optional<RemoteConfig>();
  json j = json::parse(**v, nullptr, false);
  if (j.is_discarded() || !j.contains("blobbers") || !j["blobbers"].is_array())
    return Status::error(EIO, "the store's blobber configuration is damaged");
  RemoteConfig c;
  for (const auto& u : j["blobbers"]) c.urls.push_back(u.get<std::string>());
  c.k = j.value("k", 1u);
  c.m = j.value("m", 0u);
  c.key_file = j.value("key_file", "");
  c.key_id = j.value("key_id", "");
  return std::optional<RemoteConfig>(std::move(c));
}

Result<std::unique_ptr<blob::ObjectStore>> open_objects(const RemoteConfig& c, std::vector<std::string>* down) {
  std::vector<std::unique_ptr<blob::Blobber>> bl;
  for (size_t i = 0; i < c.urls.size(); i++) {
    blob::BlobberOptions o;
    o.index = static_cast<int>(i);
    auto opened = blob::open_blobber(c.urls[i], o);
    if (!opened) return opened.status();
    auto b = blob::metered(std::move(*opened), static_cast<unsigned>(i));  // blob/metered.h
    if (down) {
      Status p = b->probe();
      if (!p) down->push_back(p.message());
    }
    bl.push_back(std::move(b));
  }
  std::shared_ptr<const blob::Cipher> cipher;
  if (!c.key_file.empty()) {
    auto key = blob::load_key_file(c.key_file);
    if (!key) return Status::error(key.err(), key.status().message() + " (the store's blobbers are encrypted with it)");
    auto ci = blob::Cipher::make(*key);
    if (!ci) return ci.status();
    if (!c.key_id.empty() && (*ci)->key_id() != c.key_id)
      return Status::error(EKEYREJECTED, "key file " + c.key_file + " holds another key than the one the store's "
                                         "blobbers are encrypted with (key id " + (*ci)->key_id().substr(0, 16) +
                                         ", expected " + c.key_id.substr(0, 16) + ")");
    cipher = std::move(*ci);
  }
  return blob::ObjectStore::make(std::move(bl), c.k, c.m, std::move(cipher));
}

namespace {

// A restore may start with up to M blobbers missing (objects.h 6).
Status check_down(const RemoteConfig& c, const std::vector<std::string>& down, bool restore) {
  if (down.empty()) return {};
  std::string what;
  for (const auto& d : down) what += (what.empty() ? "" : "; ") + d;
  if (!restore) return Status::error(EHOSTDOWN, what);
  if (down.size() > c.m)
    return Status::error(EHOSTDOWN, "restore needs " + std::to_string(c.k) + " of the " +
                                        std::to_string(c.urls.size()) + " blobbers (erasure code " + c.ec() +
                                        "), " + std::to_string(down.size()) + " are missing: " + what);
  spdlog::warn("init: restoring with {} of {} blobbers missing: {}", down.size(), c.urls.size(), what);
  return {};
}

// The key file for init: read, or created for a new set (blobber_set.h).
// *created: init made the file (it is removed again if init fails).
Status prepare_key(RemoteConfig& c, const std::string& key_file, bool restore, bool* created) {
  if (key_file.empty()) return {};
  char abs[PATH_MAX];
  std::string dir = key_file.substr(0, key_file.find_last_of('/') + 1);
  if (!realpath(dir.empty() ? "." : dir.c_str(), abs)) return Status::from_errno("key file " + key_file);
  c.key_file = std::string(abs) + "/" + key_file.substr(key_file.find_last_of('/') + 1);
  auto key = blob::load_key_file(c.key_file);
  if (!key && key.err() == ENOENT && !restore) {
    key = blob::create_key_file(c.key_file);
    *created = key.is_ok();
  }
  if (!key && key.err() == ENOENT)
    return Status::error(ENOENT, "key file " + c.key_file + " does not exist: a restore needs the key the set "
                                 "was encrypted with");
  if (!key) return key.status();
  auto ci = blob::Cipher::make(*key);
  if (!ci) return ci.status();
  c.key_id = (*ci)->key_id();
  spdlog::info("init: key file {} (key id {})", c.key_file, c.key_id.substr(0, 16));
  return {};
}

// The key-check object against this init's key, or its absence
// (blobber_set.h). A new encrypted set gets one; nothing else is written.
Status check_key_object(blob::ObjectStore& os, const RemoteConfig& c, bool restore) {
  auto names = os.list("k/");
  if (!names) return names.status();
  bool marked = std::find(names->begin(), names->end(), kKeyCheck) != names->end();
  if (!os.cipher()) {
    if (marked)
      return Status::error(EKEYREJECTED, "the blobbers hold an ENCRYPTED tcfs set (key-check object " +
                                             std::string(kKeyCheck) + "): give its key with --key-file FILE");
    return {};
  }
  if (!marked) {
    if (restore)
      return Status::error(EKEYREJECTED, "the blobbers hold a tcfs set that is NOT encrypted (no key-check object " +
                                             std::string(kKeyCheck) + "): restore it without --key-file");
    return os.put(kKeyCheck, kKeyCheckText);
  }
  auto got = os.read_all(kKeyCheck, {});
  if (!got && got.err() == EIO)
    return Status::error(EKEYREJECTED, "key file " + c.key_file + " is not the key these blobbers are encrypted "
                                       "with (their key-check object does not open with it: " +
                                       got.status().message() + ")");
  if (!got) return got.status();
  if (*got != kKeyCheckText) return Status::error(EKEYREJECTED, "the blobbers' key-check object is not tcfs's");
  return {};
}

// A store that has its set already: the same set is fine (init is
// idempotent), another one is refused. Nothing is created to find out.
// True: the store already has exactly this set.
Result<bool> check_existing(const std::string& store_dir, InitReport& rep) {
  const RemoteConfig& cfg = rep.cfg;
  auto peek = store::Store::open(store_dir, store::OpenOptions{false});
  if (!peek) return peek.err() == EBUSY ? Result<bool>(peek.status()) : Result<bool>(false);
  rep.store_path = (*peek)->path();
  auto have = load_config((*peek)->meta());
  if (!have) return have.status();
  if (!have->has_value()) return false;
  if (to_json(**have) == to_json(cfg)) return true;
  return Status::error(EEXIST, "store " + (*peek)->path() + " already has another blobber set (" + (*have)->ec() +
                                   " over " + std::to_string((*have)->urls.size()) + " blobbers)");
}

// The blobbers hold a tree exactly when a restore wants one, written with
// the code the caller gave (else EINVAL naming both codes).
Status check_tree(blob::ObjectStore& os, bool restore) {
  auto existing = os.list("n/j/");
  if (!existing) return existing.status();
  if (restore && existing->empty()) return Status::error(ENOENT, "the blobbers hold no tcfs tree to restore");
  if (restore) {
    const std::string& shard = existing->front();  // "NAME.i": the object is NAME
    auto code = os.code_of(shard.substr(0, shard.rfind('.')));
    if (code && (code->first != os.k() || code->second != os.m()))
      return Status::error(EINVAL, "the blobbers hold a tree written with erasure code " +
                                       std::to_string(code->first) + "+" + std::to_string(code->second) +
                                       ", not the " + std::to_string(os.k()) + "+" + std::to_string(os.m()) +
                                       " given: pass --ec " + std::to_string(code->first) + "+" +
                                       std::to_string(code->second) + " (and the same blobbers, in order)");
  }
  if (!restore && !existing->empty())
    return Status::error(EEXIST, "the blobbers already hold a tcfs tree (" + std::to_string(existing->size()) +
                                     " journal objects): they belong to another store; "
                                     "--from-blobbers restores it into a new store");
  return {};
}

// A follower's role and the writer of the round it starts at (follow.h 1).
Status record_follower(blob::ObjectStore& os, sync::State& state, meta::Txn& t, const sync::RestoreReport& r) {
  sync::Image img(state);
  TCFS_TRY(sync::record_round(os, img, t, r.epoch, r.head));
  return state.put(t, "role", "follower");
}

// Restores the tree (if asked), then records the set: the commit point of init.
using Progress = decltype(sync::RestoreOptions::progress);

Status record_set(const std::string& store_dir, blob::ObjectStore& os, InitReport& rep, bool restore,
                  bool accept_older, bool follow, const std::string& at, const Progress& progress) {
  auto store = store::Store::open(store_dir);
  if (!store) return store.status();
  auto& s = **store;
  rep.store_path = s.path();
  if (restore) {
    sync::State rs(s.meta());
    sync::RestoreOptions ro;
    ro.accept_older = accept_older;
    ro.progress = progress;
    ro.image_only = follow;  // follow.h 5
    if (!at.empty()) {  // follow.h 7
      auto r = sync::resolve_at(os, at);
      if (!r) return r.status();
      ro.stop_at = *r;
    }
    auto r = sync::restore(os, s.root_fd(), rs, ro);
    if (!r) return r.status().wrap("restore into " + s.path());
    rep.restored = std::move(*r);
  }
  auto stage = open_stage(s);
  if (!stage) return stage.status();
  close(*stage);
  auto t = meta::Txn::begin(s.meta(), true);
  if (!t) return t.status();
  sync::State state(s.meta());
  TCFS_TRY(state.put(*t, "config", to_json(rep.cfg).dump()));
  if (follow) TCFS_TRY(record_follower(os, state, *t, *rep.restored));
  return t->commit();  // commit point: the store is bound to this set
}

Status init_with_key(const std::string& store_dir, InitReport& rep, bool restore, bool accept_older, bool follow,
                     const std::string& at, const Progress& progress) {
  auto os = open_objects(rep.cfg, &rep.down);
  if (!os) return os.status();
  TCFS_TRY(check_down(rep.cfg, rep.down, restore));
  auto same = check_existing(store_dir, rep);
  if (!same) return same.status();
  if (*same) {
    rep.unchanged = true;
    return {};
  }
  TCFS_TRY(check_tree(**os, restore));
  TCFS_TRY(check_key_object(**os, rep.cfg, restore));
  return record_set(store_dir, **os, rep, restore, accept_older, follow, at, progress);
}

// A failed init with a key it created: the key-check object it may have
// written (only this init can have sealed one with a fresh random key) and
// the key file go again.
void undo_created_key(const RemoteConfig& c) {
  if (auto os = open_objects(c, nullptr); os) {
    auto names = (*os)->list("k/");
    if (names && std::find(names->begin(), names->end(), kKeyCheck) != names->end() &&
        (*os)->read_all(kKeyCheck, {}))
      (void)(*os)->remove(kKeyCheck);
  }
  unlink(c.key_file.c_str());
  spdlog::info("init: failed; removed the key file it created, {}", c.key_file);
}

}  // namespace

Result<InitReport> init_set(const std::string& store_dir, RemoteConfig cfg, const std::string& key_file, bool restore,
                            bool accept_older, bool follow, const std::string& at, const Progress& progress) {
  InitReport rep;
  rep.cfg = std::move(cfg);
  TCFS_TRY(prepare_key(rep.cfg, key_file, restore, &rep.key_created));
  std::error_code ec;
  bool existed = std::filesystem::exists(store_dir, ec) || ec;
  Status st = init_with_key(store_dir, rep, restore || follow, accept_older, follow, at, progress);
  if (!st && rep.key_created) undo_created_key(rep.cfg);  // blobber_set.h: a failed init leaves no key behind
  if (!st && !existed) {  // nor a store it created
    std::filesystem::remove_all(store_dir, ec);
    spdlog::info("init: failed; removed the store directory it created, {}", store_dir);
  }
  if (!st) return st;
  return rep;
}

}  // namespace tcfs::daemon
