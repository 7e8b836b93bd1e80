// tools/tcfs/follow.cpp — the follower commands (remote.h): `tcfs wait`
// and what `tcfs status` prints for a follower mount.
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "tcfs/client.h"
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

}  // namespace tcfs::cli
