// util/misc.cpp — parse_size (size.h), parallel_for (parallel.h) and the
// failure path of invariant checks (check.h).
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "util/check.h"
#include "util/parallel.h"
#include "util/size.h"

namespace tcfs {

uint64_t parse_size(const std::string& s) {
  if (s.empty() || s[0] < '0' || s[0] > '9') return 0;  // stoull would take "-1" and " 5M"
  size_t used = 0;
  uint64_t v = 0;
  try {
    v = std::stoull(s, &used);
  } catch (const std::exception&) {
    return 0;
  }
  std::string unit = s.substr(used);
  if (!unit.empty() && (unit.back() == 'B' || unit.back() == 'b')) unit.pop_back();
  if (!unit.empty() && (unit.back() == 'i')) unit.pop_back();
  unsigned shift = 0;
  if (unit.empty()) shift = 0;
  else if (unit == "K" || unit == "k") shift = 10;
  else if (unit == "M" || unit == "m") shift = 20;
  else if (unit == "G" || unit == "g") shift = 30;
  else if (unit == "T" || unit == "t") shift = 40;
  else return 0;
  if (shift && v > (~uint64_t{0} >> shift)) return 0;
  return v << shift;
}

void parallel_for(size_t n, const std::function<void(size_t)>& fn) {
  if (n == 0) return;
  std::vector<std::thread> ts;
  ts.reserve(n - 1);
  for (size_t i = 1; i < n; i++) ts.emplace_back([&fn, i] { fn(i); });
  fn(0);
  for (auto& t : ts) t.join();
}

void invariant_broken(const char* cond, const char* name, const char* file, int line) {
  spdlog::critical("invariant {} broken: {} at {}:{}", name, cond, file, line);
  spdlog::default_logger()->flush();
  std::abort();
}

}  // namespace tcfs
