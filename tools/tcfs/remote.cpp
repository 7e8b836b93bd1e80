// tools/tcfs/remote.cpp — blobber set configuration and the sync/status
// commands (remote.h).
#include "tools/tcfs/remote.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "store/store.h"
#include "sync/restore.h"
#include "sync/state.h"
#include "tcfs/client.h"

namespace tcfs::cli {
namespace {

using json = nlohmann::json;
constexpr int kExitError = 1, kExitUsage = 2;

int fail(const Status& st) {
  fprintf(stderr, "tcfs: error: %s\n", st.message().c_str());
  return kExitError;
}

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

json to_json(const RemoteConfig& c) {
  json j = {{"blobbers", c.urls}, {"k", c.k}, {"m", c.m}};
  if (!c.key_file.empty()) j["key_file"] = c.key_file, j["key_id"] = c.key_id;  // plain sets: unchanged
  return j;
}

constexpr const char* kKeyCheckText = "tcfs key check v1";

}  // namespace

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
    auto b = blob::open_blobber(c.urls[i], o);
    if (!b) return b.status();
    if (down) {
      Status p = (*b)->probe();
      if (!p) down->push_back(p.message());
    }
    bl.push_back(std::move(*b));
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

// A restore may start with up to M blobbers missing (objects.h 6): it says so, loudly.
Status check_down(const RemoteConfig& c, const std::vector<std::string>& down, bool restore) {
  if (down.empty()) return {};
  std::string what;
  for (const auto& d : down) what += (what.empty() ? "" : "; ") + d;
  if (!restore) return Status::error(EHOSTDOWN, what);
  if (down.size() > c.m)
    return Status::error(EHOSTDOWN, "restore needs " + std::to_string(c.k) + " of the " +
                                        std::to_string(c.urls.size()) + " blobbers (erasure code " + c.ec() +
                                        "), " + std::to_string(down.size()) + " are missing: " + what);
  for (const auto& d : down) fprintf(stderr, "tcfs: warning: blobber missing: %s\n", d.c_str());
  fprintf(stderr,
          "tcfs: warning: restoring from %zu of %zu blobbers: the set is DEGRADED (%zu missing, no redundancy "
          "to spare). Once the missing blobber is back (an empty directory or a fresh bucket will do), run "
          "tcfs scrub on the mount to rebuild its shards.\n",
          c.urls.size() - down.size(), c.urls.size(), down.size());
  spdlog::warn("init: restoring with {} of {} blobbers missing: {}", down.size(), c.urls.size(), what);
  return {};
}

// The key file for init: read, or created for a new set (remote.h).
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

// The key-check object against this init's key, or its absence (remote.h).
// A new encrypted set gets one; nothing else is written.
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

void print_restore(const sync::RestoreReport& rep) {
  printf("tcfs: restored %llu directories, %llu files (%llu bytes, fetched on first use), %llu symlinks, "
         "%llu other, %llu hard links from %llu journal(s); round reached: epoch %llu (%s)\n",
         static_cast<unsigned long long>(rep.dirs), static_cast<unsigned long long>(rep.files),
         static_cast<unsigned long long>(rep.stub_bytes), static_cast<unsigned long long>(rep.symlinks),
         static_cast<unsigned long long>(rep.others), static_cast<unsigned long long>(rep.links),
         static_cast<unsigned long long>(rep.journals), static_cast<unsigned long long>(rep.epoch),
         rep.head.c_str());
  if (!rep.older) return;
  fprintf(stderr, "tcfs: warning: restored epoch %llu, an OLDER round than the blobbers hold (--accept-older); "
                  "could not read:\n", static_cast<unsigned long long>(rep.epoch));
  for (const auto& u : rep.unreadable) fprintf(stderr, "  %s\n", u.c_str());
}

}  // namespace

namespace {

// init once the key (if any) is ready (cmd_init).
int init_set(const std::string& store_dir, Result<RemoteConfig>& cfg, bool restore, bool accept_older) {
  std::vector<std::string> down;
  auto os = open_objects(*cfg, &down);
  if (!os) return fail(os.status());
  if (Status st = check_down(*cfg, down, restore); !st) return fail(st);
  // A store that has its set already: the same set is fine (init is
  // idempotent), another one is refused. Nothing is created to find out.
  if (auto peek = store::Store::open(store_dir, store::OpenOptions{false}); peek) {
    auto have = load_config((*peek)->meta());
    if (!have) return fail(have.status());
    if (have->has_value()) {
      if (to_json(**have) == to_json(*cfg)) {
        printf("tcfs: store %s already uses these blobbers (%s)\n", (*peek)->path().c_str(), cfg->ec().c_str());
        return 0;
      }
      return fail(Status::error(EEXIST, "store " + (*peek)->path() + " already has another blobber set (" +
                                            (*have)->ec() + " over " + std::to_string((*have)->urls.size()) +
                                            " blobbers)"));
    }
  } else if (peek.err() == EBUSY) {
    return fail(peek.status());
  }
  auto existing = (*os)->list("n/j/");
  if (!existing) return fail(existing.status());
  if (restore && existing->empty())
    return fail(Status::error(ENOENT, "the blobbers hold no tcfs tree to restore"));
  if (!restore && !existing->empty())
    return fail(Status::error(EEXIST, "the blobbers already hold a tcfs tree (" + std::to_string(existing->size()) +
                                          " journal objects): they belong to another store; "
                                          "--from-blobbers restores it into a new store"));
  if (Status st = check_key_object(**os, *cfg, restore); !st) return fail(st);
  auto store = store::Store::open(store_dir);
  if (!store) return fail(store.status());
  auto& s = **store;
  if (restore) {
    sync::State rs(s.meta());
    sync::RestoreOptions ro;
    ro.accept_older = accept_older;
    auto rep = sync::restore(**os, s.root_fd(), rs, ro);
    if (!rep) return fail(Status::error(rep.err(), "restore into " + s.path() + ": " + rep.status().message()));
    print_restore(*rep);
  }
  auto stage = open_stage(s);
  if (!stage) return fail(stage.status());
  close(*stage);
  auto t = meta::Txn::begin(s.meta(), true);
  if (!t) return fail(t.status());
  sync::State state(s.meta());
  if (Status st = state.put(*t, "config", to_json(*cfg).dump()); !st) return fail(st);
  if (Status st = t->commit(); !st) return fail(st);
  std::string enc = cfg->key_file.empty() ? "" : ", encrypted (AES-256-GCM, key file " + cfg->key_file + ")";
  printf("tcfs: store %s: %zu blobber(s), erasure code %s%s%s\n", s.path().c_str(), cfg->urls.size(),
         cfg->ec().c_str(), enc.c_str(), down.empty() ? "" : " (DEGRADED: a blobber is missing)");
  for (const auto& u : cfg->urls) printf("  %s\n", u.c_str());
  return 0;
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

int cmd_init(const std::string& store_dir, const std::vector<std::string>& urls, const std::string& ec, bool restore,
             bool accept_older, const std::string& key_file) {
  auto cfg = parse_ec(urls, ec);
  if (!cfg) {
    fprintf(stderr, "tcfs: error: %s\n", cfg.status().message().c_str());
    return kExitUsage;
  }
  bool created = false;
  if (Status st = prepare_key(*cfg, key_file, restore, &created); !st) return fail(st);
  int rc = init_set(store_dir, cfg, restore, accept_older);
  if (created && rc != 0) {  // remote.h: a failed init leaves no key behind
    undo_created_key(*cfg);
  } else if (created) {
    fprintf(stderr, "tcfs: created key file %s (32 random bytes, mode 0600). KEEP A COPY OF IT ELSEWHERE: "
                    "without it nothing on the blobbers can be read, not even by a restore.\n",
            cfg->key_file.c_str());
  }
  return rc;
}

int cmd_sync(const std::string& mountpoint, double timeout_s) {
  auto c = Client::for_path(mountpoint);
  if (!c) return fail(c.status());
  uint64_t ms = timeout_s > 0 ? static_cast<uint64_t>(timeout_s * 1000) : 0;
  Status st = c->sync(ms);
  if (!st) {
    fprintf(stderr, "tcfs: sync %s: %s\n", mountpoint.c_str(), st.message().c_str());
    return kExitError;
  }
  printf("tcfs: %s: everything committed is on the blobbers\n", mountpoint.c_str());
  return 0;
}

int cmd_maintain(const std::string& mountpoint, const std::string& what) {
  auto c = Client::for_path(mountpoint);
  if (!c) return fail(c.status());
  auto text = c->maintain(what);
  if (!text) {
    fprintf(stderr, "tcfs: %s %s: %s\n", what.c_str(), mountpoint.c_str(), text.status().message().c_str());
    return kExitError;
  }
  json r = json::parse(*text, nullptr, false);
  if (what == "gc") {
    printf("tcfs gc: %llu objects on the blobbers, %llu removed, %llu dedup entries dropped\n",
           static_cast<unsigned long long>(r.value("objects", 0ull)), static_cast<unsigned long long>(r.value("deleted", 0ull)),
           static_cast<unsigned long long>(r.value("index_dropped", 0ull)));
    return 0;
  }
  printf("tcfs scrub: %llu objects: %llu good, %llu repaired, %llu not whole\n",
         static_cast<unsigned long long>(r.value("objects", 0ull)), static_cast<unsigned long long>(r.value("good", 0ull)),
         static_cast<unsigned long long>(r.value("repaired", 0ull)),
         static_cast<unsigned long long>(r.value("unrecoverable", 0ull)));
  for (const auto& p : r["problems"]) printf("  %s\n", p.get<std::string>().c_str());
  if (!r.value("chain_rewritten", "").empty())
    printf("tcfs scrub: rewrote the synced state as a snapshot (the blobbers could not give it back: %s)\n",
           r.value("chain_rewritten", "").c_str());
  return r.value("unrecoverable", 0ull) ? kExitError : 0;
}

int cmd_status(const std::string& mountpoint, bool as_json) {
  auto c = Client::for_path(mountpoint);
  if (!c) return fail(c.status());
  auto text = c->status_json();
  if (!text) return fail(text.status());
  json j = json::parse(*text, nullptr, false);
  if (as_json) {
    printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  const json& s = j["status"];
  printf("mount:      %s\nstore:      %s\n", j.value("mount", "").c_str(), j.value("store", "").c_str());
  if (!s.contains("sync")) {
    printf("blobbers:   none (local store only; see tcfs init --blobber)\n");
    return 0;
  }
  const json& y = s["sync"];
  std::string enc = s.contains("encryption") ? ", encrypted (AES-256-GCM, key file " +
                                                   s["encryption"].value("key_file", "") + ")"
                                             : "";
  printf("blobbers:   %s erasure code%s\n", s.value("ec", "").c_str(), enc.c_str());
  for (const auto& b : s["blobbers"])
    printf("  %-40s %s\n", b.value("url", "").c_str(), b.value("health", "").c_str());
  if (std::string problem = y.value("chain_problem", ""); !problem.empty())  // never a state they cannot give back
    printf("synced:     NOT restorable from the blobbers: %s\n            (the local state is at epoch %llu; the "
           "next round, tcfs sync or tcfs scrub rewrites it)\n",
           problem.c_str(), static_cast<unsigned long long>(y.value("epoch", 0ull)));
  else
    printf("synced:     epoch %llu (%s)\n", static_cast<unsigned long long>(y.value("epoch", 0ull)),
           y.value("head", std::string("nothing yet")).c_str());
  printf("pending:    %llu dirty files, %llu changes, %llu bytes; oldest unsynced change %.1f s ago\n",
         static_cast<unsigned long long>(y.value("dirty_files", 0ull)),
         static_cast<unsigned long long>(y.value("pending", 0ull)),
         static_cast<unsigned long long>(y.value("dirty_bytes", 0ull)), y.value("oldest_pending_s", 0.0));
  printf("uploads:    %llu bytes in %llu blocks (%llu deduplicated), last rate %.1f MiB/s\n",
         static_cast<unsigned long long>(y.value("bytes_uploaded", 0ull)),
         static_cast<unsigned long long>(y.value("blocks_uploaded", 0ull)),
         static_cast<unsigned long long>(y.value("blocks_deduplicated", 0ull)),
         y.value("upload_rate", 0.0) / (1 << 20));
  printf("rounds:     %llu (%llu failed)%s%s\n", static_cast<unsigned long long>(y.value("rounds", 0ull)),
         static_cast<unsigned long long>(y.value("failures", 0ull)), y.value("last_error", "").empty() ? "" : "; last error: ",
         y.value("last_error", "").c_str());
  if (s.contains("cache")) {
    const json& c = s["cache"];
    auto u = [&](const char* k) { return static_cast<unsigned long long>(c.value(k, 0ull)); };
    if (u("cap_bytes"))
      printf("cache:      store files %llu bytes, cap %llu\n", u("store_bytes"), u("cap_bytes"));
    else
      printf("cache:      no cap (tcfs mount --cache-size)\n");
    printf("            %llu stubs; %llu files (%llu bytes) evicted, %llu bytes fetched back\n", u("stubs"),
           u("evicted_files"), u("evicted_bytes"), u("fetched_bytes"));
    printf("            filesystem: %llu bytes used, %llu free, %llu kept free by evicting\n", u("used_bytes"),
           u("free_bytes"), u("reserve_bytes"));
    if (c.contains("last_error")) printf("            last eviction error: %s\n", c.value("last_error", "").c_str());
  }
  return 0;
}

}  // namespace tcfs::cli
