// util/metrics.cpp — the process-wide registry and exposition (metrics.h).
#include "util/metrics.h"

#include <prometheus/text_serializer.h>

#include <algorithm>
#include <sstream>
#include <vector>

#include "util/mutex.h"

namespace tcfs::metrics {
namespace {

Mutex g_mu;  // protects g_collectors and g_endpoint
std::vector<std::weak_ptr<prometheus::Collectable>> g_collectors TCFS_GUARDED_BY(g_mu);
std::string g_endpoint TCFS_GUARDED_BY(g_mu);

}  // namespace

std::shared_ptr<prometheus::Registry> registry() {
  static const auto r = std::make_shared<prometheus::Registry>(prometheus::Registry::InsertBehavior::Merge);
  return r;
}

prometheus::Family<prometheus::Counter>& counter(const std::string& name, const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(*registry());
}

prometheus::Family<prometheus::Gauge>& gauge(const std::string& name, const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(*registry());
}

prometheus::Family<prometheus::Histogram>& histogram(const std::string& name, const std::string& help) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(*registry());
}

const prometheus::Histogram::BucketBoundaries& latency_buckets() {
  static const prometheus::Histogram::BucketBoundaries b = {1e-5, 2.5e-5, 5e-5, 1e-4,  2.5e-4, 5e-4, 1e-3,
                                                            2.5e-3, 5e-3, 0.01, 0.025, 0.05,  0.1,  0.25,
                                                            0.5,    1,    2.5,  5,     10};
  return b;
}

const prometheus::Histogram::BucketBoundaries& count_buckets() {
  static const prometheus::Histogram::BucketBoundaries b = {1, 2, 4, 8, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576};
  return b;
}

prometheus::Histogram& latency(const std::string& family, const std::string& help, const Labels& labels) {
  return histogram(family, help).Add(labels, latency_buckets());
}

void add_collector(const std::weak_ptr<prometheus::Collectable>& c) {
  MutexLock g(g_mu);
  g_collectors.push_back(c);
}

std::vector<prometheus::MetricFamily> collect_all() {
  std::vector<prometheus::MetricFamily> all = registry()->Collect();
  std::vector<std::shared_ptr<prometheus::Collectable>> live;
  {
    MutexLock g(g_mu);
    std::erase_if(g_collectors, [](const auto& w) { return w.expired(); });
    for (const auto& w : g_collectors)
      if (auto c = w.lock()) live.push_back(std::move(c));
  }
  for (const auto& c : live) {  // outside g_mu: a collector may take its own locks
    auto fams = c->Collect();
    all.insert(all.end(), std::make_move_iterator(fams.begin()), std::make_move_iterator(fams.end()));
  }
  return all;
}

std::shared_ptr<prometheus::Collectable> everything() {
  struct All : prometheus::Collectable {
    std::vector<prometheus::MetricFamily> Collect() const override { return collect_all(); }
  };
  static const auto all = std::make_shared<All>();
  return all;
}

void set_endpoint(const std::string& url) {
  MutexLock g(g_mu);
  g_endpoint = url;
}

std::string endpoint() {
  MutexLock g(g_mu);
  return g_endpoint;
}

std::string text() {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, collect_all());
  return out.str();
}

}  // namespace tcfs::metrics
