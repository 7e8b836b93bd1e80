// tools/tcfs/progress.h — progress bars of the command line (issue 15):
// tcfs sync, gc and scrub.
//
// Contract:
//  1. A bar is drawn on stderr, redrawn in place (\r) at most every
//     kRedrawMs: "LABEL [#####.....]  45%  123/456 objects  12.3/s  ETA
//     0:12" (bytes are shown in B/KiB/MiB/GiB). The rate is over the
//     whole run; the estimate is what is left at that rate.
//  2. enabled(): --progress forces it, --no-progress turns it off;
//     otherwise it is on only when stderr is a terminal (scripts and logs
//     get no bar).
//  3. Watch polls a mount's quick status (Client::figures_json: no blobber
//     probes, no chain walk; a second control connection) every
//     kPollMs on its own thread while the command's request runs, and
//     draws what the given function reads from it; it stops (and ends the
//     bar's line) when destroyed.
//
// Thread-safety: a Bar belongs to one thread (Watch's).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

namespace tcfs::cli {

bool progress_enabled(std::optional<bool> flag);  // 2

// Bytes as "123 B", "4.0 KiB", "1.5 GiB" (bars and tcfs stats).
std::string human_bytes(double b);

class Bar {
 public:
  static constexpr int kRedrawMs = 200;
  Bar(std::string label, bool bytes) : label_(std::move(label)), bytes_(bytes), t0_(Clock::now()) {}
  // done of total (total 0: unknown yet, no percentage or estimate).
  void draw(double done, double total, bool force = false);
  void end();  // a last newline, if anything was drawn

 private:
  using Clock = std::chrono::steady_clock;
  std::string label_;
  bool bytes_;
  Clock::time_point t0_, last_{};
  bool drawn_ = false;
};

class Watch {
 public:
  static constexpr int kPollMs = 250;
  // read(status json, &done, &total): false when there is nothing to show.
  using Read = std::function<bool(const nlohmann::json&, double*, double*)>;
  Watch(const std::string& mountpoint, std::string label, bool bytes, Read read);
  ~Watch() { finish(false); }
  // The request answered: ok draws the bar full (of final_total when the
  // answer gives it, else of the most seen), even if no poll came in
  // time to see it run; either way the bar's line ends.
  void finish(bool ok, double final_total = 0);

 private:
  std::atomic<bool> stop_{false}, ok_{false};
  std::atomic<double> final_{0};
  std::thread th_;
};

}  // namespace tcfs::cli
