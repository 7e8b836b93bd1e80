// metricsbench — what counting a FUSE request costs the daemon
// (util/metrics.h: two clock reads and one histogram observation per
// request), against an empty loop of the same clock reads: the reference
// measured in the same run. Prints ns per request for 1, 2 and 8 threads
// sharing one histogram (one op kind under load), and the ratio to a FUSE
// round trip of REF_US microseconds (default 20, about a 4 KiB cached
// write through the mount on the test machine).
//   build/tools/bench/metricsbench [REF_US]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "util/metrics.h"

namespace {

using Clock = std::chrono::steady_clock;

double run(int threads, int n, bool observe) {
  auto& h = tcfs::metrics::latency("tcfs_bench_seconds", "metricsbench", {{"op", "write"}});
  volatile double sink = 0;
  auto t0 = Clock::now();
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; t++)
    ts.emplace_back([&] {
      for (int i = 0; i < n / threads; i++) {
        auto a = Clock::now();
        double d = tcfs::metrics::since(a);
        if (observe) h.Observe(d);
        else sink = sink + d;
      }
    });
  for (auto& t : ts) t.join();
  return std::chrono::duration<double>(Clock::now() - t0).count() / n * 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  const double ref_us = argc > 1 ? atof(argv[1]) : 20;
  const int n = 4000000;
  printf("threads  clocks only  clocks+observe (the wrapper's cost)  share of a %.0f us request\n", ref_us);
  for (int threads : {1, 2, 8}) {
    double base = run(threads, n, false), with = run(threads, n, true);
    printf("%7d  %8.1f ns  %14.1f ns %21s %13.3f%%\n", threads, base, with, "", with / (ref_us * 1000) * 100);
  }
}
