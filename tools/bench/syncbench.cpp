// syncbench — the timed pieces bench-sync needs that the CLI cannot do:
//
//   syncbench ec [--seconds S]
//       erasure-coding throughput of one core: encode of 4 MiB blocks for
//       2+1, 4+2 and 10+4, and a rebuild of M lost data shards; SHA-256 too.
//   syncbench put-each --blobber URL [--blobber URL...] [--ec K+M]
//                      --count N --size BYTES
//       one object per "file": N objects of BYTES each, one put after the
//       other, through the same erasure-coded object layer tcfs uses (the
//       reference "one PUT per file" a naive uploader pays).
//   syncbench rss PID
//       prints the resident set (VmRSS) and peak (VmHWM) of PID in KiB.
//
// Prints "name value unit" lines. Exit 0, 1 on an error, 2 on usage.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "blob/blobber.h"
#include "blob/ec.h"
#include "blob/hash.h"
#include "blob/objects.h"

using namespace tcfs;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int ec_bench(double secs) {
  const size_t block = 4u << 20;
  std::mt19937 rng(1);
  std::string data(block, '\0');
  for (auto& c : data) c = static_cast<char>(rng());
  struct KM {
    unsigned k, m;
  };
  for (KM km : {KM{2, 1}, KM{4, 2}, KM{10, 4}}) {
    auto c = blob::Codec::make(km.k, km.m);
    if (!c) return 1;
    size_t S = (block + km.k - 1) / km.k;
    std::vector<std::string> sh(km.k + km.m, std::string(S, '\0'));
    for (unsigned i = 0; i < km.k; i++) sh[i] = data.substr(i * S, S), sh[i].resize(S);
    std::vector<const uint8_t*> dp;
    std::vector<uint8_t*> pp;
    for (unsigned i = 0; i < km.k; i++) dp.push_back(reinterpret_cast<const uint8_t*>(sh[i].data()));
    for (unsigned i = km.k; i < km.k + km.m; i++) pp.push_back(reinterpret_cast<uint8_t*>(sh[i].data()));
    auto t0 = Clock::now();
    uint64_t bytes = 0;
    while (seconds_since(t0) < secs) {
      c->encode(S, dp.data(), pp.data());
      bytes += block;
    }
    double enc = static_cast<double>(bytes) / seconds_since(t0);
    // Rebuild the first M data shards from the rest.
    std::vector<unsigned> have, want;
    for (unsigned i = 0; i < km.k + km.m; i++) (i < km.m ? want : have).push_back(i);
    have.resize(km.k);
    std::vector<const uint8_t*> hp;
    for (unsigned i : have) hp.push_back(reinterpret_cast<const uint8_t*>(sh[i].data()));
    std::vector<std::string> out(want.size(), std::string(S, '\0'));
    std::vector<uint8_t*> op;
    for (auto& o : out) op.push_back(reinterpret_cast<uint8_t*>(o.data()));
    t0 = Clock::now();
    bytes = 0;
    while (seconds_since(t0) < secs) {
      if (!c->rebuild(S, have, hp.data(), want, op.data())) return 1;
      bytes += block;
    }
    double dec = static_cast<double>(bytes) / seconds_since(t0);
    printf("ec_encode_%u+%u %.2f GB/s\n", km.k, km.m, enc / 1e9);
    printf("ec_rebuild_%u+%u %.2f GB/s\n", km.k, km.m, dec / 1e9);
  }
  auto t0 = Clock::now();
  uint64_t bytes = 0;
  while (seconds_since(t0) < secs) {
    (void)blob::sha256(data);
    bytes += block;
  }
  printf("sha256 %.2f GB/s\n", static_cast<double>(bytes) / seconds_since(t0) / 1e9);
  return 0;
}

int put_each(const std::vector<std::string>& urls, unsigned k, unsigned m, uint64_t count, size_t size) {
  std::vector<std::unique_ptr<blob::Blobber>> bl;
  for (const auto& u : urls) {
    auto b = blob::open_blobber(u);
    if (!b) {
      fprintf(stderr, "syncbench: %s\n", b.status().message().c_str());
      return 1;
    }
    bl.push_back(std::move(*b));
  }
  auto os = blob::ObjectStore::make(std::move(bl), k, m);
  if (!os) {
    fprintf(stderr, "syncbench: %s\n", os.status().message().c_str());
    return 1;
  }
  std::string data(size, 'x');
  auto t0 = Clock::now();
  for (uint64_t i = 0; i < count; i++) {
    std::memcpy(data.data(), &i, std::min(sizeof i, data.size()));
    Status st = (*os)->put("bench/f" + std::to_string(i), data);
    if (!st) {
      fprintf(stderr, "syncbench: %s\n", st.message().c_str());
      return 1;
    }
  }
  double s = seconds_since(t0);
  printf("put_each_seconds %.3f s\n", s);
  printf("put_each_rate %.1f objects/s\n", static_cast<double>(count) / s);
  printf("put_each_bytes_rate %.1f MiB/s\n", static_cast<double>(count * size) / s / (1 << 20));
  return 0;
}

int rss(const std::string& pid) {
  std::ifstream f("/proc/" + pid + "/status");
  std::string line;
  bool any = false;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0 || line.rfind("VmHWM:", 0) == 0) {
      printf("%s\n", line.c_str());
      any = true;
    }
  }
  return any ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  if (a.empty()) {
    fprintf(stderr, "usage: syncbench ec|put-each|rss ...\n");
    return 2;
  }
  auto opt = [&](const std::string& name, const std::string& dflt) {
    for (size_t i = 1; i + 1 < a.size(); i++)
      if (a[i] == name) return a[i + 1];
    return dflt;
  };
  if (a[0] == "ec") return ec_bench(std::stod(opt("--seconds", "1")));
  if (a[0] == "rss" && a.size() == 2) return rss(a[1]);
  if (a[0] == "put-each") {
    std::vector<std::string> urls;
    for (size_t i = 1; i + 1 < a.size(); i++)
      if (a[i] == "--blobber") urls.push_back(a[i + 1]);
    unsigned k = static_cast<unsigned>(urls.size()), m = 0;
    std::string ec = opt("--ec", "");
    if (!ec.empty() && sscanf(ec.c_str(), "%u+%u", &k, &m) != 2) return 2;
    return put_each(urls, k, m, std::stoull(opt("--count", "1000")), std::stoull(opt("--size", "4096")));
  }
  fprintf(stderr, "syncbench: unknown command %s\n", a[0].c_str());
  return 2;
}
