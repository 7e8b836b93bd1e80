// tcfs stats — a live one-screen view of a mount (issue 15), from its
// metrics (the control request "metrics", util/metrics.h) and, every
// kHealthEvery samples, its blobbers' health (the request "status").
//
// Each sample is the difference of two scrapes `interval` apart, shown as
// rates: FUSE requests by kind, errors, bytes read and written, compounds
// by outcome with their mean latency, sync (round, pending, dirty bytes,
// oldest unsynced change, rounds and bytes uploaded per second), cache and
// per-blobber requests, errors and mean latency. On a terminal the screen
// is redrawn in place; otherwise each sample is a block of lines. --json
// prints each sample as one JSON line; --once prints one sample and exits.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tcfs/client.h"
#include "tools/tcfs/progress.h"
#include "tools/tcfs/remote.h"

namespace tcfs::cli {
namespace {

using json = nlohmann::json;
constexpr int kHealthEvery = 10;  // samples between two blobber probes (each costs a request per blobber)

volatile std::sig_atomic_t g_stop = 0;



// One scrape: "name{a="x",b="y"}" -> value (labels as the text gives them).
using Scrape = std::map<std::string, double>;

Scrape parse(const std::string& text) {
  Scrape out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    try {
      out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
    } catch (const std::exception&) {  // NaN/Inf spellings stod refuses: not ours
    }
  }
  return out;
}

// The value of `label` in a sample key ("" if absent).
std::string label_of(const std::string& key, const std::string& label) {
  const std::string pat = label + "=\"";
  size_t a = key.find(pat);
  if (a == std::string::npos) return "";
  a += pat.size();
  return key.substr(a, key.find('"', a) - a);
}

double get(const Scrape& s, const std::string& key) {
  auto it = s.find(key);
  return it == s.end() ? 0 : it->second;
}

// Sum over the samples of `name` (with any labels) whose label matches.
double sum(const Scrape& s, const std::string& name, const std::string& label = "", const std::string& value = "") {
  double t = 0;
  for (auto it = s.lower_bound(name); it != s.end() && it->first.compare(0, name.size(), name) == 0; ++it) {
    const std::string rest = it->first.substr(name.size());
    if (!rest.empty() && rest[0] != '{') continue;  // another family with this prefix
    if (!label.empty() && label_of(it->first, label) != value) continue;
    t += it->second;
  }
  return t;
}

// The figures of one interval: b - a over dt seconds, gauges from b.
json figures(const Scrape& a, const Scrape& b, double dt, const json& health) {
  auto rate = [&](double x, double y) { return std::max(0.0, (y - x) / dt); };
  json f;
  json ops = json::object();
  const std::string req = "tcfs_fuse_request_duration_seconds_count";
  for (auto it = b.lower_bound(req); it != b.end() && it->first.compare(0, req.size(), req) == 0; ++it) {
    double r = rate(get(a, it->first), it->second);
    if (r > 0) ops[label_of(it->first, "op")] = r;
  }
  // Failures: all but ENOENT and ENODATA, the everyday answers "no such
  // name" and "no such attribute" (the kernel asks for security.capability
  // before writes); tcfs_fuse_errors_total has them all, by errno.
  const std::string fe = "tcfs_fuse_errors_total";
  auto failed = [&](const Scrape& s) {
    return sum(s, fe) - sum(s, fe, "errno", "ENOENT") - sum(s, fe, "errno", "ENODATA");
  };
  f["fuse"] = {{"requests_per_s", rate(sum(a, req), sum(b, req))},
               {"by_op_per_s", ops},
               {"errors_per_s", rate(failed(a), failed(b))},
               {"read_bytes_per_s", rate(get(a, "tcfs_fuse_read_bytes_total"), get(b, "tcfs_fuse_read_bytes_total"))},
               {"written_bytes_per_s",
                rate(get(a, "tcfs_fuse_written_bytes_total"), get(b, "tcfs_fuse_written_bytes_total"))}};
  json comp = json::object();
  const std::string cc = "tcfs_compound_duration_seconds_count", cs = "tcfs_compound_duration_seconds_sum";
  for (const char* o : {"committed", "rolled_back", "partial", "rejected"})
    comp[std::string(o) + "_per_s"] = rate(sum(a, cc, "outcome", o), sum(b, cc, "outcome", o));
  const double n = sum(b, cc) - sum(a, cc);
  comp["mean_ms"] = n > 0 ? (sum(b, cs) - sum(a, cs)) / n * 1e3 : 0;
  comp["committed_total"] = sum(b, cc, "outcome", "committed");
  f["compounds"] = comp;
  if (b.count("tcfs_sync_round"))
    f["sync"] = {{"round", get(b, "tcfs_sync_round")},
                 {"pending", get(b, "tcfs_sync_pending_changes")},
                 {"dirty_bytes", get(b, "tcfs_sync_dirty_bytes")},
                 {"oldest_unsynced_s", get(b, "tcfs_sync_oldest_unsynced_seconds")},
                 {"rounds_per_s", rate(get(a, "tcfs_sync_rounds_total"), get(b, "tcfs_sync_rounds_total"))},
                 {"uploaded_bytes_per_s",
                  rate(get(a, "tcfs_sync_uploaded_bytes_total"), get(b, "tcfs_sync_uploaded_bytes_total"))},
                 {"failures", get(b, "tcfs_sync_failures_total")}};
  if (b.count("tcfs_cache_bytes"))
    f["cache"] = {{"bytes", get(b, "tcfs_cache_bytes")},
                  {"limit_bytes", get(b, "tcfs_cache_limit_bytes")},
                  {"stubs", get(b, "tcfs_cache_stubs")},
                  {"evicted_bytes_per_s",
                   rate(get(a, "tcfs_cache_evicted_bytes_total"), get(b, "tcfs_cache_evicted_bytes_total"))},
                  {"fetched_bytes_per_s",
                   rate(get(a, "tcfs_cache_fetched_bytes_total"), get(b, "tcfs_cache_fetched_bytes_total"))}};
  if (b.count("tcfs_follower_round"))
    f["follower"] = {{"round", get(b, "tcfs_follower_round")}, {"lag_rounds", get(b, "tcfs_follower_lag_rounds")},
                     {"lag_s", get(b, "tcfs_follower_lag_seconds")}};
  json bl = json::array();
  const std::string bc = "tcfs_blobber_request_duration_seconds_count", bs = "tcfs_blobber_request_duration_seconds_sum";
  for (size_t i = 0; i < health.size() || sum(b, bc, "blobber", std::to_string(i)) > 0; i++) {
    const std::string ix = std::to_string(i);
    const double reqs = sum(b, bc, "blobber", ix) - sum(a, bc, "blobber", ix);
    json e = {{"blobber", i},
              {"requests_per_s", std::max(0.0, reqs / dt)},
              {"errors_per_s", rate(sum(a, "tcfs_blobber_errors_total", "blobber", ix),
                                    sum(b, "tcfs_blobber_errors_total", "blobber", ix))},
              {"mean_ms", reqs > 0 ? (sum(b, bs, "blobber", ix) - sum(a, bs, "blobber", ix)) / reqs * 1e3 : 0}};
    if (i < health.size()) e["url"] = health[i].value("url", ""), e["health"] = health[i].value("health", "");
    bl.push_back(e);
  }
  if (!bl.empty()) f["blobbers"] = bl;
  return f;
}

std::string screen(const std::string& mp, double dt, const json& f) {
  std::string o;
  char l[512];
  snprintf(l, sizeof l, "tcfs stats %s  (every %.1f s; Ctrl-C quits)\n\n", mp.c_str(), dt);
  o += l;
  const json& u = f["fuse"];
  std::string kinds;
  std::vector<std::pair<double, std::string>> by;
  for (auto& [k, v] : u["by_op_per_s"].items()) by.push_back({v.get<double>(), k});
  std::sort(by.rbegin(), by.rend());
  for (size_t i = 0; i < by.size() && i < 6; i++) kinds += (i ? ", " : "") + by[i].second + " " + std::to_string(std::lround(by[i].first));
  snprintf(l, sizeof l, "requests   %8.0f /s   %s\n", u["requests_per_s"].get<double>(), kinds.c_str());
  o += l;
  snprintf(l, sizeof l, "failed     %8.0f /s   (not counting ENOENT, ENODATA)\n", u["errors_per_s"].get<double>());
  o += l;
  o += "read       " + human_bytes(u["read_bytes_per_s"].get<double>()) + "/s   written " +
       human_bytes(u["written_bytes_per_s"].get<double>()) + "/s\n";
  const json& c = f["compounds"];
  snprintf(l, sizeof l, "compounds  %8.1f /s   rolled back %.1f/s, rejected %.1f/s, mean %.1f ms, %.0f committed in all\n",
           c["committed_per_s"].get<double>(), c["rolled_back_per_s"].get<double>(), c["rejected_per_s"].get<double>(),
           c["mean_ms"].get<double>(), c["committed_total"].get<double>());
  o += l;
  if (f.contains("sync")) {
    const json& s = f["sync"];
    snprintf(l, sizeof l, "sync       round %.0f, %.0f pending, %s dirty, oldest %.1f s; %.2f rounds/s, %s/s up, %.0f failures\n",
             s["round"].get<double>(), s["pending"].get<double>(), human_bytes(s["dirty_bytes"].get<double>()).c_str(),
             s["oldest_unsynced_s"].get<double>(), s["rounds_per_s"].get<double>(),
             human_bytes(s["uploaded_bytes_per_s"].get<double>()).c_str(), s["failures"].get<double>());
    o += l;
  }
  if (f.contains("cache")) {
    const json& s = f["cache"];
    o += "cache      " +
         (s["limit_bytes"].get<double>() > 0
              ? human_bytes(s["bytes"].get<double>()) + " of " + human_bytes(s["limit_bytes"].get<double>())
              : std::string("no size limit")) +
         ", " +
         std::to_string(std::lround(s["stubs"].get<double>())) + " stubs; evicting " +
         human_bytes(s["evicted_bytes_per_s"].get<double>()) + "/s, fetching " + human_bytes(s["fetched_bytes_per_s"].get<double>()) +
         "/s\n";
  }
  if (f.contains("follower")) {
    const json& s = f["follower"];
    snprintf(l, sizeof l, "follower   round %.0f, %.0f behind (%.0f s)\n", s["round"].get<double>(),
             s["lag_rounds"].get<double>(), s["lag_s"].get<double>());
    o += l;
  }
  for (const json& b : f.value("blobbers", json::array())) {
    snprintf(l, sizeof l, "blobber %-2d %-10s %7.1f req/s %6.1f err/s %8.2f ms  %s\n", b["blobber"].get<int>(),
             b.value("health", "?").substr(0, 10).c_str(), b["requests_per_s"].get<double>(),
             b["errors_per_s"].get<double>(), b["mean_ms"].get<double>(), b.value("url", "").c_str());
    o += l;
  }
  return o;
}

Result<Scrape> scrape(Client& c) {
  auto t = c.metrics_text();
  if (!t) return t.status();
  return parse(*t);
}

json health_of(Client& c) {
  auto s = c.status_json();
  if (!s) return json::array();
  json j = json::parse(*s, nullptr, false);
  if (j.is_discarded() || !j.contains("status")) return json::array();
  return j["status"].value("blobbers", json::array());
}

}  // namespace

int cmd_stats(const std::string& mountpoint, double interval_s, bool once, bool as_json) {
  if (!(interval_s >= 0.1 && interval_s <= 3600)) {
    fprintf(stderr, "tcfs: error: stats --interval: from 0.1 to 3600 seconds\n");
    return 2;
  }
  auto c = Client::for_path(mountpoint);
  if (!c) return fail(c.status());
  std::signal(SIGINT, [](int) { g_stop = 1; });
  std::signal(SIGTERM, [](int) { g_stop = 1; });
  const bool tty = !as_json && isatty(STDOUT_FILENO);
  json health = health_of(*c);
  auto prev = scrape(*c);
  if (!prev) return fail(prev.status());
  auto t0 = std::chrono::steady_clock::now();
  for (int n = 1; !g_stop; n++) {
    const auto until = t0 + std::chrono::duration<double>(interval_s);
    while (!g_stop && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (g_stop) break;
    auto cur = scrape(*c);
    if (!cur) return fail(cur.status());
    auto t1 = std::chrono::steady_clock::now();
    if (n % kHealthEvery == 0) health = health_of(*c);
    json f = figures(*prev, *cur, std::chrono::duration<double>(t1 - t0).count(), health);
    if (as_json) printf("%s\n", f.dump().c_str());
    else printf("%s%s%s", tty ? "\033[H\033[2J" : "", screen(mountpoint, interval_s, f).c_str(), tty ? "" : "\n");
    fflush(stdout);
    if (once) break;
    prev = std::move(cur), t0 = t1;
  }
  return 0;
}

}  // namespace tcfs::cli
