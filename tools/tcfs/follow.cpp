// tools/tcfs/follow.cpp — the follower commands (remote.h): `tcfs wait`
// and what `tcfs status` prints for a follower mount.
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "daemon/executor.h"
#include "daemon/follower.h"
#include "store/store.h"
#include "sync/unsynced.h"
#include "tcfs/client.h"
#include "util/fd.h"
#include "tools/tcfs/remote.h"

namespace tcfs::cli {
namespace {

using json = nlohmann::json;
constexpr int kExitError = 1;

unsigned long long u64(const json& j, const char* k) { return static_cast<unsigned long long>(j.value(k, 0ull)); }

}  // namespace

void print_follow_status(const json& s) {
  const json& f = s["follow"];
  printf("role:       follower (read-only) of %s erasure code over:\n", s.value("ec", "").c_str());
  for (const auto& b : s["blobbers"]) printf("  %s\n", b.value("url", "").c_str());
  std::string writer = f.value("writer", "");
  printf("round:      %llu (%s), written by %s\n", u64(f, "round"), f.value("head", "").c_str(),
         writer.empty() ? "a writer before round markers" : ("writer " + writer.substr(0, 12)).c_str());
  if (u64(f, "at")) printf("at:         stays at round %llu (time travel)\n", u64(f, "at"));
  printf("lag:        %llu round(s), %llu s (newest round on the blobbers: %llu; polled every %llu ms, %llu polls)\n",
         u64(f, "lag_rounds"), u64(f, "lag_s"), u64(f, "newest"), u64(f, "poll_ms"), u64(f, "polls"));
  if (u64(f, "switch_wait_ms"))
    printf("switches:   %llu at a quiet moment, %llu when the %llu ms wait ran out\n", u64(f, "switches_quiet"),
           u64(f, "switches_forced"), u64(f, "switch_wait_ms"));
  else
    printf("switches:   at once (switch_wait=0)\n");
  if (!f.value("last_error", "").empty()) printf("STOPPED:    %s\n", f.value("last_error", "").c_str());
  const json& c = s["cache"];
  printf("cache:      %llu of %llu bytes; %llu hits, %llu misses, %llu blocks evicted\n", u64(c, "bytes"),
         u64(c, "limit"), u64(c, "hits"), u64(c, "misses"), u64(c, "evicted"));
}

int cmd_wait(const std::string& mountpoint, uint64_t round, double timeout_s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s > 0 ? timeout_s : 1e9);
  for (;;) {
    auto c = Client::for_path(mountpoint);
    if (!c) return fprintf(stderr, "tcfs: wait %s: %s\n", mountpoint.c_str(), c.status().message().c_str()), kExitError;
    auto text = c->status_json();
    if (!text) return fprintf(stderr, "tcfs: wait %s: %s\n", mountpoint.c_str(), text.status().message().c_str()), kExitError;
    json j = json::parse(*text, nullptr, false);
    const json& s = j["status"];
    uint64_t at = 0;
    if (s.contains("follow")) at = s["follow"].value("round", 0ull);
    else if (s.contains("sync")) at = s["sync"].value("epoch", 0ull);
    else {
      fprintf(stderr, "tcfs: wait %s: this mount has no blobbers: it has no rounds\n", mountpoint.c_str());
      return kExitError;
    }
    if (at >= round) {
      printf("tcfs: %s shows round %llu\n", mountpoint.c_str(), static_cast<unsigned long long>(at));
      return 0;
    }
    uint64_t tt = s.contains("follow") ? s["follow"].value("at", 0ull) : 0;
    if (tt && round > tt) {
      fprintf(stderr, "tcfs: wait %s: the mount stays at round %llu (time travel): round %llu never comes\n",
              mountpoint.c_str(), static_cast<unsigned long long>(tt), static_cast<unsigned long long>(round));
      return kExitError;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      fprintf(stderr, "tcfs: wait %s: timed out at round %llu, waiting for %llu\n", mountpoint.c_str(),
              static_cast<unsigned long long>(at), static_cast<unsigned long long>(round));
      return kExitError;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

namespace {

// The rounds of the chain on urls, as the daemon's maintain "log" reply.
Result<std::string> log_of_blobbers(const std::vector<std::string>& urls, const std::string& ec,
                                    const std::string& key_file) {
  auto cfg = daemon::parse_ec(urls, ec);
  if (!cfg) return cfg.status();
  if (!key_file.empty()) {
    char* abs = realpath(key_file.c_str(), nullptr);
    cfg->key_file = abs ? abs : key_file;
    free(abs);
  }
  auto os = daemon::open_objects(*cfg, nullptr);
  if (!os) return os.status();
  auto j = daemon::log_json(**os);
  if (!j) return j.status();
  return j->dump();
}

}  // namespace

int cmd_log(const std::string& mountpoint, bool as_json, const std::vector<std::string>& urls, const std::string& ec,
            const std::string& key_file) {
  std::string where = urls.empty() ? mountpoint : urls.front();
  Result<std::string> text = Status::error(EINVAL, "no source");
  if (urls.empty()) {
    auto c = Client::for_path(mountpoint);
    if (!c) return fprintf(stderr, "tcfs: log %s: %s\n", where.c_str(), c.status().message().c_str()), kExitError;
    text = c->maintain("log");
  } else {
    text = log_of_blobbers(urls, ec, key_file);
  }
  if (!text) return fprintf(stderr, "tcfs: log %s: %s\n", where.c_str(), text.status().message().c_str()), kExitError;
  json r = json::parse(*text, nullptr, false);
  if (as_json) {
    printf("%s\n", r.dump(2).c_str());
    return 0;
  }
  printf("%-8s %-20s %10s  %-12s %s\n", "ROUND", "MARKED (UTC)", "RECORDS", "WRITER", "JOURNAL");
  for (const auto& x : r["rounds"]) {
    time_t t = static_cast<time_t>(x.value("time", 0ll));
    char when[32] = "?";
    struct tm tm {};
    if (gmtime_r(&t, &tm)) strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    std::string records = x.value("readable", true) ? std::to_string(x.value("records", 0ull)) : "UNREADABLE";
    printf("%-8llu %-20s %10s  %-12s %s\n", u64(x, "round"), when, records.c_str(),
           x.value("writer", "").substr(0, 12).c_str(), x.value("journal", "").c_str());
  }
  return 0;
}

int cmd_promote(const std::string& store_dir, bool force) {
  auto rep = daemon::promote(store_dir, force);
  if (!rep) {
    fprintf(stderr, "tcfs: promote: %s\n", rep.status().message().c_str());
    return kExitError;
  }
  printf("tcfs: store %s is now the writer of its chain, continuing from round %llu (%s; %llu round(s) caught up)\n",
         store_dir.c_str(), static_cast<unsigned long long>(rep->epoch), rep->head.c_str(),
         static_cast<unsigned long long>(rep->caught_up));
  if (!rep->stopped.empty()) fprintf(stderr, "tcfs: warning: --force: %s\n", rep->stopped.c_str());
  if (force)
    printf("tcfs: --force: its first mount takes round %llu, which fences the old writer\n",
           static_cast<unsigned long long>(rep->epoch + 1));
  printf("tcfs: mount it with: tcfs mount --store %s MOUNTPOINT\n", store_dir.c_str());
  return 0;
}

int cmd_export_unsynced(const std::string& store_dir, const std::string& out) {
  auto s = store::Store::open(store_dir, store::OpenOptions{false});
  if (!s) {
    fprintf(stderr, "tcfs: export-unsynced: store %s: %s%s\n", store_dir.c_str(), s.status().message().c_str(),
            s.err() == EBUSY ? " (unmount it first)" : "");
    return kExitError;
  }
  if (mkdir(out.c_str(), 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "tcfs: export-unsynced: create %s: %s\n", out.c_str(), strerror(errno));
    return kExitError;
  }
  Fd dir(open(out.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir || faccessat(dir.get(), "manifest.txt", F_OK, 0) == 0 || faccessat(dir.get(), "tree", F_OK, 0) == 0) {
    fprintf(stderr, "tcfs: export-unsynced: %s: %s\n", out.c_str(),
            dir ? "already holds an export (manifest.txt or tree/): give a new directory" : strerror(errno));
    return kExitError;
  }
  sync::State st((*s)->meta());
  auto rep = sync::export_unsynced((*s)->root_fd(), st, dir.get());
  if (!rep) {
    fprintf(stderr, "tcfs: export-unsynced: %s\n", rep.status().message().c_str());
    return kExitError;
  }
  printf("tcfs: changes of store %s after its last synced round (%llu): %llu new, %llu changed, %llu removed "
         "(%llu bytes copied) -> %s/tree, listed in %s/manifest.txt\n",
         (*s)->path().c_str(), static_cast<unsigned long long>(rep->epoch), static_cast<unsigned long long>(rep->added),
         static_cast<unsigned long long>(rep->changed), static_cast<unsigned long long>(rep->removed),
         static_cast<unsigned long long>(rep->bytes), out.c_str(), out.c_str());
  return 0;
}

}  // namespace tcfs::cli
