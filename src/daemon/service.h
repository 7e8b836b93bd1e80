// daemon/service.h — telling a service manager (systemd, Type=notify)
// how the mount is doing, through sd_notify(3) of libsystemd.
//
// Contract:
//  1. Nothing is sent when the daemon was not started with $NOTIFY_SOCKET
//     (sd_notify does nothing then): a mount from a shell or fstab is
//     unchanged.
//  2. ready() sends READY=1 with a STATUS= line once the mount serves
//     requests (after recovery and the first INIT), then a new STATUS=
//     line every kStatusEvery while it runs: the round, the changes and
//     bytes not yet on the blobbers, or a follower's round and lag
//     (status_line()).
//  3. stopping() sends STOPPING=1 with the status "unmounting: last sync
//     round", when the FUSE loop ends (SIGTERM from systemctl stop, or
//     umount), before the daemon's last round; the status thread stops.
//  4. A send that fails is logged once at debug level, never fatal.
//
// Thread-safety: ready() and stopping() from the daemon's main thread;
// the status thread only reads the figures callback, which is
// thread-safe (control::Executor::figures).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <string>
#include <thread>

#include "control/server.h"
#include "util/mutex.h"

namespace tcfs::daemon {

// 2: one line for systemctl status, from the executor's figures().
std::string status_line(const control::Json& figures);

class ServiceNotifier {
 public:
  static constexpr std::chrono::seconds kStatusEvery{5};
  using Figures = std::function<control::Json()>;
  ServiceNotifier() = default;
  ~ServiceNotifier() { stop_thread(); }
  ServiceNotifier(const ServiceNotifier&) = delete;
  ServiceNotifier& operator=(const ServiceNotifier&) = delete;

  void ready(const std::string& mountpoint, Figures figures) TCFS_EXCLUDES(mu_);
  void stopping() TCFS_EXCLUDES(mu_);

 private:
  void loop() TCFS_EXCLUDES(mu_);
  void stop_thread() TCFS_EXCLUDES(mu_);

  Figures figures_;  // set by ready(), before the status thread starts
  Mutex mu_;  // protects stop_
  std::condition_variable cv_;
  bool stop_ TCFS_GUARDED_BY(mu_) = false;
  std::thread th_;  // the status thread (2); joined by stop_thread()
};

}  // namespace tcfs::daemon
