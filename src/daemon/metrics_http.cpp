// daemon/metrics_http.cpp — the Prometheus endpoint (metrics_http.h).
#include "daemon/metrics_http.h"

#include <prometheus/exposer.h>
#include <spdlog/spdlog.h>

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <thread>

#include "util/metrics.h"

namespace tcfs::daemon {
namespace {

struct Spec {
  std::string host;
  int port = 0;
};

// ADDR:PORT (ADDR an IPv4 address or a name civetweb resolves; PORT 0-65535).
std::string parse(const std::string& spec, Spec* out) {
  const size_t colon = spec.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == spec.size())
    return "metrics=" + spec + ": expected ADDR:PORT (e.g. 127.0.0.1:9570) or off";
  const std::string port = spec.substr(colon + 1);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535)
    return "metrics=" + spec + ": the port must be a number from 0 to 65535";
  out->host = spec.substr(0, colon);
  out->port = std::stoi(port);
  return "";
}

// One try; the exposer or null (why in *err).
std::unique_ptr<prometheus::Exposer> listen_on(const Spec& s, std::string* err) {
  try {
    auto ex = std::make_unique<prometheus::Exposer>(s.host + ":" + std::to_string(s.port), 1);
    ex->RegisterCollectable(metrics::everything());  // 2
    return ex;
  } catch (const std::exception& e) {  // civetweb could not listen (metrics.h 4: caught here)
    *err = e.what();
    return nullptr;
  }
}

// civetweb's listening thread polls with a 2 s quantum (compiled in), and
// stopping waits for it: an unmount would take 2 s longer. Connections to
// our own port while it stops wake that poll at once (4).
void poke(const std::string& addr) {
  const size_t colon = addr.rfind(':');
  std::string host = addr.substr(0, colon), port = addr.substr(colon + 1);
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || !res) return;
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    (void)::connect(fd, res->ai_addr, res->ai_addrlen);
    ::close(fd);
  }
  freeaddrinfo(res);
}
}  // namespace

std::string check_metrics_spec(const std::string& spec) {
  if (spec.empty() || spec == "off") return "";
  Spec s;
  return parse(spec, &s);
}

Result<std::unique_ptr<MetricsHttp>> MetricsHttp::start(const std::string& spec) {
  if (spec == "off") return std::unique_ptr<MetricsHttp>();
  Spec s{"127.0.0.1", kDefaultMetricsPort};
  if (!spec.empty())
    if (std::string why = parse(spec, &s); !why.empty()) return Status::error(EINVAL, why);
  const int tries = spec.empty() ? kDefaultMetricsTries : 1;  // 1
  std::string err;
  for (int i = 0; i < tries; i++) {
    Spec t{s.host, s.port + i};
    if (auto ex = listen_on(t, &err)) {
      auto m = std::unique_ptr<MetricsHttp>(new MetricsHttp());
      std::vector<int> ports = ex->GetListeningPorts();
      m->addr_ = t.host + ":" + std::to_string(ports.empty() ? t.port : ports[0]);
      m->ex_ = std::move(ex);
      metrics::set_endpoint("http://" + m->addr_ + "/metrics");  // 3
      return m;
    }
  }
  if (!spec.empty())
    return Status::error(EADDRINUSE, "metrics=" + spec + ": cannot listen there (" + err +
                                         "); choose another port, or metrics=off");
  spdlog::warn("metrics: ports {}-{} of {} are all taken: no HTTP endpoint (tcfs metrics MOUNTPOINT still works)",
               s.port, s.port + tries - 1, s.host);
  return std::unique_ptr<MetricsHttp>();
}

MetricsHttp::~MetricsHttp() {
  metrics::set_endpoint("");
  std::atomic<bool> stopped{false};
  std::thread waker([&] {
    while (!stopped.load()) {
      poke(addr_);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  ex_.reset();
  stopped.store(true);
  waker.join();
}

}  // namespace tcfs::daemon
