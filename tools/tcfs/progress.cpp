// tools/tcfs/progress.cpp — progress bars (progress.h).
#include "tools/tcfs/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

#include "tcfs/client.h"

namespace tcfs::cli {
namespace {

std::string amount(double v, bool bytes) {
  if (bytes) return human_bytes(v);
  char s[32];
  snprintf(s, sizeof s, "%.0f", v);
  return s;
}

std::string clock_of(double s) {
  char b[32];
  const long t = std::lround(s);
  snprintf(b, sizeof b, "%ld:%02ld", t / 60, t % 60);
  return b;
}

}  // namespace

std::string human_bytes(double v) {
  const char* u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int i = 0;
  while (v >= 1024 && i < 4) v /= 1024, i++;
  char s[32];
  snprintf(s, sizeof s, i ? "%.1f %s" : "%.0f %s", v, u[i]);
  return s;
}

bool progress_enabled(std::optional<bool> flag) { return flag ? *flag : isatty(STDERR_FILENO) == 1; }

void Bar::draw(double done, double total, bool force) {
  const auto now = Clock::now();
  if (!force && drawn_ && now - last_ < std::chrono::milliseconds(kRedrawMs)) return;
  last_ = now;
  const double secs = std::chrono::duration<double>(now - t0_).count();
  const double rate = secs > 0 ? done / secs : 0;
  std::string line = label_ + " ";
  if (total > 0) {
    const double f = std::min(1.0, done / total);
    const int w = 24, n = static_cast<int>(f * w);
    line += "[" + std::string(n, '#') + std::string(w - n, '.') + "] ";
    char pct[16];
    snprintf(pct, sizeof pct, "%3.0f%%  ", f * 100);
    line += pct + amount(done, bytes_) + "/" + amount(total, bytes_);
  } else {
    line += amount(done, bytes_);
  }
  if (secs >= 0.5) {  // a rate over less is noise
    line += (bytes_ ? "  " + amount(rate, true) + "/s" : "  " + amount(rate, false) + "/s");
    if (total > done && rate > 0) line += "  ETA " + clock_of((total - done) / rate);
  }
  fprintf(stderr, "\r%-78s", line.c_str());
  fflush(stderr);
  drawn_ = true;
}

void Bar::end() {
  if (drawn_) fputc('\n', stderr);
  drawn_ = false;
}

Watch::Watch(const std::string& mountpoint, std::string label, bool bytes, Read read) {
  th_ = std::thread([this, mountpoint, label = std::move(label), bytes, read = std::move(read)] {
    auto c = Client::for_path(mountpoint);
    if (!c) return;
    Bar bar(label, bytes);
    double done = 0, total = 0;
    bool any = false;
    while (!stop_.load()) {
      if (auto s = c->figures_json()) {  // no blobber probes (progress.h 3)
        auto j = nlohmann::json::parse(*s, nullptr, false);
        if (!j.is_discarded() && j.contains("status") && read(j["status"], &done, &total)) bar.draw(done, total), any = true;
      }
      for (int i = 0; i < Watch::kPollMs / 50 && !stop_.load(); i++) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (double f = final_.load(); ok_.load() && f > 0) bar.draw(f, f, true);  // answered: all of it
    else if (any && ok_.load()) bar.draw(total > 0 ? total : done, total, true);
    bar.end();
  });
}

void Watch::finish(bool ok, double final_total) {
  if (!th_.joinable()) return;
  ok_.store(ok);
  final_.store(final_total);
  stop_.store(true);
  th_.join();
}

}  // namespace tcfs::cli
