// daemon/metrics_http.h — the Prometheus HTTP endpoint of a mount
// (-o metrics=ADDR:PORT|off).
//
// Contract:
//  1. The default is 127.0.0.1 on port kDefaultPort; when that port is
//     taken (another mount of this host) the next ones up to
//     kDefaultPort + kDefaultTries - 1 are tried, and when all are taken
//     the mount goes on without an HTTP endpoint (a warning says so):
//     `tcfs metrics MOUNTPOINT` still reads the same text over the
//     control socket. An address the operator gave is taken or the
//     mount fails (EADDRINUSE naming it); port 0 picks a free port.
//  2. GET /metrics answers the text exposition of util/metrics.h
//     collect_all(); nothing else is served. Bound to loopback by
//     default: the figures name no path, but they are the host's own.
//  3. The bound address is published (metrics::set_endpoint) for
//     `tcfs status`.
//  4. Stopping is prompt: civetweb's listener polls with a 2 s quantum,
//     so while the exposer stops, connections to its own port wake it
//     (an unmount would otherwise take 2 s longer).
//
// Thread-safety: start() and the destructor from one thread; the
// exposer's own threads (civetweb) serve the scrapes.
#pragma once

#include <memory>
#include <string>

#include "tcfs/status.h"

namespace prometheus {
class Exposer;
}

namespace tcfs::daemon {

constexpr int kDefaultMetricsPort = 9570;
constexpr int kDefaultMetricsTries = 16;

class MetricsHttp {
 public:
  // spec: "" (the default, 1), "off" (null, no endpoint), or ADDR:PORT.
  static Result<std::unique_ptr<MetricsHttp>> start(const std::string& spec);
  ~MetricsHttp();
  const std::string& address() const { return addr_; }

 private:
  std::unique_ptr<prometheus::Exposer> ex_;
  std::string addr_;
};

// Checks a -o metrics= value without binding: "" when good, else why not.
std::string check_metrics_spec(const std::string& spec);

}  // namespace tcfs::daemon
