// sync/chain.cpp — journal chains (chain.h).
#include "sync/chain.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <map>

#include "sync/stream.h"

namespace tcfs::sync {

namespace {

Result<std::vector<JournalName>> streams(blob::ObjectStore& os, const std::string& dir) {
  auto names = os.list(dir);
  if (!names) return names.status();
  std::vector<JournalName> out;
  for (const auto& n : *names) {
    const std::string suffix = "/end";
    if (n.size() < suffix.size() || n.compare(n.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    JournalName j;
    j.base = n.substr(0, n.size() - suffix.size());
    uint64_t e = 0, b = 0;
    unsigned a = 0;
    int used = 0;
    if (sscanf(j.base.c_str() + dir.size(), "%16" SCNx64 "-%8" SCNx64 "-%4x%n", &e, &b, &a, &used) != 3 ||
        static_cast<size_t>(used) != j.base.size() - dir.size())
      continue;  // not a journal of ours
    j.epoch = e;
    j.boot = b;
    j.attempt = a;
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace

Result<std::vector<JournalName>> journals(blob::ObjectStore& os) { return streams(os, "n/j/"); }

Result<std::vector<JournalName>> snapshots(blob::ObjectStore& os) {
  auto s = streams(os, "n/s/");
  if (!s) return s.status();
  std::sort(s->begin(), s->end(), [](const JournalName& a, const JournalName& b) {
    return std::tie(a.epoch, a.boot, a.attempt) > std::tie(b.epoch, b.boot, b.attempt);
  });
  return s;
}

Result<std::vector<std::string>> chain(blob::ObjectStore& os, const std::string& from) {
  auto all = journals(os);
  if (!all) return all.status();
  std::map<uint64_t, std::vector<JournalName>> by_epoch;
  for (auto& j : *all) by_epoch[j.epoch].push_back(std::move(j));
  for (auto& [e, v] : by_epoch)
    std::sort(v.begin(), v.end(), [](const JournalName& a, const JournalName& b) {
      return std::tie(a.boot, a.attempt) > std::tie(b.boot, b.attempt);
    });
  std::vector<std::string> out;
  std::string head = from;
  uint64_t epoch = 0;
  if (!from.empty()) {
    uint64_t b = 0;
    unsigned a = 0;
    if (sscanf(from.c_str(), "n/j/%16" SCNx64 "-%8" SCNx64 "-%4x", &epoch, &b, &a) != 3)
      return Status::error(EINVAL, "journal name " + from + ": malformed");
  }
  for (;;) {
    auto it = by_epoch.find(epoch + 1);
    if (it == by_epoch.end()) break;
    std::string next;
    for (const auto& cand : it->second) {
      auto r = StreamReader::open(os, cand.base);
      if (!r) continue;  // unreadable: as if absent
      if (r->info().value("prev", std::string()) == head) {
        next = cand.base;
        break;
      }
    }
    if (next.empty()) break;
    out.push_back(next);
    head = next;
    epoch++;
  }
  return out;
}

}  // namespace tcfs::sync
