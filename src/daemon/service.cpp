// daemon/service.cpp — sd_notify for Type=notify units (service.h).
#include "daemon/service.h"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <cstdlib>

namespace tcfs::daemon {
namespace {

void notify(const std::string& msg) {  // 1, 4
  int r = sd_notify(0, msg.c_str());
  static bool warned = false;
  if (r < 0 && !warned) {
    warned = true;
    spdlog::debug("sd_notify: {}", strerror(-r));
  }
}

std::string mib(uint64_t b) {
  char s[32];
  snprintf(s, sizeof s, "%.1f MiB", static_cast<double>(b) / (1 << 20));
  return s;
}

uint64_t num(const control::Json& j, const char* sec, const char* key) {
  if (!j.contains(sec) || !j[sec].is_object() || !j[sec].contains(key) || !j[sec][key].is_number()) return 0;
  return j[sec][key].get<uint64_t>();
}

}  // namespace

std::string status_line(const control::Json& j) {
  if (j.contains("follow"))
    return "following: round " + std::to_string(num(j, "follow", "round")) + ", " +
           std::to_string(num(j, "follow", "lag_rounds")) + " round(s) behind";
  if (!j.contains("sync")) return "mounted; local store only (no blobbers)";
  std::string s = "round " + std::to_string(num(j, "sync", "epoch")) + "; " +
                  std::to_string(num(j, "sync", "pending")) + " change(s), " + mib(num(j, "sync", "dirty_bytes")) +
                  " not yet on the blobbers";
  if (j["sync"].value("fenced", "") != "") s += "; FENCED: another writer took the chain";
  return s;
}

void ServiceNotifier::ready(const std::string& mountpoint, Figures figures) {
  if (!getenv("NOTIFY_SOCKET")) return;  // 1
  figures_ = std::move(figures);
  notify("READY=1\nSTATUS=mounted on " + mountpoint + ": " + status_line(figures_()));
  th_ = std::thread([this] { loop(); });
}

void ServiceNotifier::stopping() {
  if (!getenv("NOTIFY_SOCKET")) return;
  stop_thread();
  notify("STOPPING=1\nSTATUS=unmounting: last sync round");  // 3
}

void ServiceNotifier::loop() {
  UniqueLock g(mu_);
  while (!stop_) {
    if (g.wait_for(cv_, kStatusEvery, [&]() TCFS_REQUIRES(mu_) { return stop_; })) break;
    g.unlock();
    notify("STATUS=" + status_line(figures_()));  // 2
    g.lock();
  }
}

void ServiceNotifier::stop_thread() {
  {
    MutexLock g(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (th_.joinable()) th_.join();
}

}  // namespace tcfs::daemon
