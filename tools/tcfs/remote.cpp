// tools/tcfs/remote.cpp — the init, sync, status, gc and scrub commands
// (remote.h): what they print; the work is daemon/blobber_set.h's or the
// daemon's, through the client library.
#include "tools/tcfs/remote.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "daemon/blobber_set.h"
#include "tcfs/client.h"
#include "tools/tcfs/progress.h"

namespace tcfs::cli {

int fail(const Status& st) {
  fprintf(stderr, "tcfs: error: %s\n", st.message().c_str());
  return 1;
}

namespace {

using json = nlohmann::json;
constexpr int kExitError = 1, kExitUsage = 2;

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

// Says what a restore from a degraded set means (blobber_set.h).
void print_degraded(const daemon::InitReport& rep) {
  if (rep.down.empty()) return;
  for (const auto& d : rep.down) fprintf(stderr, "tcfs: warning: blobber missing: %s\n", d.c_str());
  fprintf(stderr,
          "tcfs: warning: restoring from %zu of %zu blobbers: the set is DEGRADED (%zu missing, no redundancy "
          "to spare). Once the missing blobber is back (an empty directory or a fresh bucket will do), run "
          "tcfs scrub on the mount to rebuild its shards.\n",
          rep.cfg.urls.size() - rep.down.size(), rep.cfg.urls.size(), rep.down.size());
}

}  // namespace

int cmd_init(const std::string& store_dir, const std::vector<std::string>& urls, const std::string& ec, bool restore,
             bool accept_older, const std::string& key_file, bool follow, const std::string& at,
             std::optional<bool> progress) {
  auto cfg = daemon::parse_ec(urls, ec);
  if (!cfg) {
    fprintf(stderr, "tcfs: error: %s\n", cfg.status().message().c_str());
    return kExitUsage;
  }
  // progress.h: a bar per phase of a restore (journals loaded, then names made).
  std::optional<Bar> bar;
  std::string phase;
  auto on_progress = [&](const char* p, uint64_t done, uint64_t total) {
    if (phase != p) {
      if (bar) bar->end();
      phase = p;
      bar.emplace(std::string("restore ") + p, false);
    }
    bar->draw(static_cast<double>(done), static_cast<double>(total), done == total);
  };
  decltype(sync::RestoreOptions::progress) hook;
  if ((restore || follow) && progress_enabled(progress)) hook = on_progress;
  auto rep = daemon::init_set(store_dir, *cfg, key_file, restore, accept_older, follow, at, hook);
  if (bar) bar->end();
  if (!rep) return fail(rep.status());
  const daemon::RemoteConfig& c = rep->cfg;
  if (rep->unchanged) {
    printf("tcfs: store %s already uses these blobbers (%s)\n", rep->store_path.c_str(), c.ec().c_str());
    return 0;
  }
  if (restore) print_degraded(*rep);
  if (rep->restored && follow)
    printf("tcfs: follower store at round %llu (%s): %llu records from %llu journal(s); content is fetched on "
           "first read\n", static_cast<unsigned long long>(rep->restored->epoch), rep->restored->head.c_str(),
           static_cast<unsigned long long>(rep->restored->records),
           static_cast<unsigned long long>(rep->restored->journals));
  else if (rep->restored) print_restore(*rep->restored);
  std::string enc = c.key_file.empty() ? "" : ", encrypted (AES-256-GCM, key file " + c.key_file + ")";
  printf("tcfs: store %s: %zu blobber(s), erasure code %s%s%s\n", rep->store_path.c_str(), c.urls.size(), c.ec().c_str(),
         enc.c_str(), rep->down.empty() ? "" : " (DEGRADED: a blobber is missing)");
  for (const auto& u : c.urls) printf("  %s\n", u.c_str());
  if (rep->key_created)
    fprintf(stderr, "tcfs: created key file %s (32 random bytes, mode 0600). KEEP A COPY OF IT ELSEWHERE: "
                    "without it nothing on the blobbers can be read, not even by a restore.\n",
            c.key_file.c_str());
  return 0;
}

int cmd_sync(const std::string& mountpoint, double timeout_s, bool as_json, std::optional<bool> progress) {
  auto c = Client::for_path(mountpoint);
  if (!c) return fail(c.status());
  // The kernel's writeback cache may still hold what programs wrote (files
  // not closed yet, maps): syncfs of the mount sends it to the daemon
  // first, so the round holds everything written before this call. (This
  // is the client, not the daemon: I/O through the mount is fine here.)
  if (int fd = open(mountpoint.c_str(), O_RDONLY | O_CLOEXEC); fd >= 0) {
    if (syncfs(fd) != 0)
      fprintf(stderr, "tcfs: sync %s: writing back the kernel's cache: %s\n", mountpoint.c_str(), strerror(errno));
    close(fd);
  }
  uint64_t ms = timeout_s > 0 ? static_cast<uint64_t>(timeout_s * 1000) : 0;
  std::optional<Watch> watch;  // progress.h: the round's bytes sent (or found there) of its own and those dirty
  if (progress_enabled(progress))
    watch.emplace(mountpoint, "sync", true, [](const json& s, double* done, double* total) {
      if (!s.contains("sync")) return false;
      const json& y = s["sync"];
      const double rd = y.value("round_done", 0.0), rb = y.value("round_bytes", 0.0), dirty = y.value("dirty_bytes", 0.0);
      *done = std::max(*done, rd), *total = std::max(*total, *done + (rb - rd) + dirty);  // never backwards
      return *total > 0;  // nothing to send (yet, or any more): no bar
    });
  Status st = c->sync(ms);
  if (watch) watch->finish(st.is_ok());
  if (!st) {
    fprintf(stderr, "tcfs: sync %s: %s\n", mountpoint.c_str(), st.message().c_str());
    return kExitError;
  }
  if (!as_json) {
    printf("tcfs: %s: everything committed is on the blobbers\n", mountpoint.c_str());
    return 0;
  }
  auto text = c->status_json();  // the round now holds everything committed before the call
  if (!text) return fail(text.status());
  json j = json::parse(*text, nullptr, false);
  json out = {{"mount", mountpoint}, {"round", j["status"]["sync"].value("epoch", 0ull)},
              {"head", j["status"]["sync"].value("head", "")}};
  printf("%s\n", out.dump().c_str());
  return 0;
}

int cmd_maintain(const std::string& mountpoint, const std::string& what, std::optional<bool> progress) {
  auto c = Client::for_path(mountpoint);
  if (!c) return fail(c.status());
  std::optional<Watch> watch;  // progress.h: objects done of those listed
  if (progress_enabled(progress))
    watch.emplace(mountpoint, what, false, [what](const json& s, double* done, double* total) {
      if (!s.contains("sync") || s["sync"]["maintenance"].value("what", "") != what) return false;
      *done = s["sync"]["maintenance"].value("done", 0.0), *total = s["sync"]["maintenance"].value("total", 0.0);
      return true;
    });
  auto text = c->maintain(what);
  if (watch)
    watch->finish(text.is_ok(), text ? json::parse(*text, nullptr, false).value("objects", 0.0) : 0.0);
  if (!text) {
    fprintf(stderr, "tcfs: %s %s: %s\n", what.c_str(), mountpoint.c_str(), text.status().message().c_str());
    return kExitError;
  }
  json r = json::parse(*text, nullptr, false);
  if (what == "gc") {
    printf("tcfs gc: %llu objects on the blobbers, %llu removed, %llu dedup entries dropped; rounds from %llu on "
           "kept (%llu expired follower notes removed)\n",
           static_cast<unsigned long long>(r.value("objects", 0ull)), static_cast<unsigned long long>(r.value("deleted", 0ull)),
           static_cast<unsigned long long>(r.value("index_dropped", 0ull)),
           static_cast<unsigned long long>(r.value("kept_from", 0ull)),
           static_cast<unsigned long long>(r.value("notes_expired", 0ull)));
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

// The endurant log's part of `tcfs status` (-o journal=on).
void print_log_status(const json& s) {
  if (!s.contains("journal")) return;
  const json& j = s["journal"];
  auto u = [&](const char* k) { return static_cast<unsigned long long>(j.value(k, 0ull)); };
  auto d = [&](const char* k) { return j.value(k, 0.0); };
  printf("log:        %llu of %llu bytes in use; %llu records in %llu batches (%s)\n", u("used_bytes"),
         u("limit_bytes"), u("records"), u("batches"), j.value("io_uring", false) ? "io_uring" : "pwritev2");
  printf("            %.0f records/s, %.0f batches/s, %.1f records per batch; checkpoint lag %.1f s, "
         "%llu checkpoints, %llu waits for a full log\n",
         d("records_per_s"), d("batches_per_s"), d("mean_batch"), d("checkpoint_lag_s"), u("checkpoints"),
         u("full_waits"));
}

int cmd_metrics(const std::string& mountpoint) {
  auto c = Client::for_path(mountpoint);
  if (!c) return fail(c.status());
  auto text = c->metrics_text();
  if (!text) return fail(text.status());
  fwrite(text->data(), 1, text->size(), stdout);
  return 0;
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
  if (s.contains("metrics")) printf("metrics:    %s\n", s.value("metrics", "").c_str());
  if (s.contains("follow")) {
    print_follow_status(s);
    return 0;
  }
  if (!s.contains("sync")) {
    printf("blobbers:   none (local store only; see tcfs init --blobber)\n");
    print_log_status(s);
    return 0;
  }
  const json& y = s["sync"];
  std::string enc = s.contains("encryption") ? ", encrypted (AES-256-GCM, key file " +
                                                   s["encryption"].value("key_file", "") + ")"
                                             : "";
  printf("blobbers:   %s erasure code%s\n", s.value("ec", "").c_str(), enc.c_str());
  for (const auto& b : s["blobbers"])
    printf("  %-40s %s\n", b.value("url", "").c_str(), b.value("health", "").c_str());
  if (std::string fenced = y.value("fenced", ""); !fenced.empty())  // sync.h 10
    printf("FENCED:     %s\n            (compounds are refused; tcfs sync fails; local changes after epoch %llu are "
           "not on the blobbers)\n",
           fenced.c_str(), static_cast<unsigned long long>(y.value("epoch", 0ull)));
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
  print_log_status(s);
  return 0;
}

}  // namespace tcfs::cli
