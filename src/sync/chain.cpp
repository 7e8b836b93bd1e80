// sync/chain.cpp — journal chains (chain.h; its notes are cited as "chain.h N").
#include "sync/chain.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <optional>
#include <chrono>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "sync/stream.h"

namespace tcfs::sync {

namespace {

// The streams among listed names under dir that have an end object.
std::vector<JournalName> ends_in(const std::vector<std::string>& names, const std::string& dir) {
  std::vector<JournalName> out;
  for (const auto& n : names) {
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

Result<std::vector<JournalName>> streams(blob::ObjectStore& os, const std::string& dir) {
  auto names = os.list(dir);
  if (!names) return names.status();
  return ends_in(*names, dir);
}

// The listed journals by epoch, each epoch's highest (boot, attempt) first,
// and every end object read at most once (chain.h 1).
class Walker {
 public:
  explicit Walker(blob::ObjectStore& os) : os_(os) {}

  Status list() {
    auto names = os_.list("n/j/");  // ends (1) and chunks (3d)
    if (!names) return names.status();
    for (auto& j : ends_in(*names, "n/j/")) {
      listed_.insert(j.base);
      by_epoch_[j.epoch].push_back(std::move(j));
    }
    for (const auto& n : *names) {
      auto slash = n.rfind("/c");
      if (slash == std::string::npos || slash < 4) continue;
      std::string base = n.substr(0, slash);
      if (uint64_t e = epoch_of(base); e && !listed_.count(base) && n == chunk_name(base, 0)) headless_[e].push_back(base);
    }
    for (auto& [e, v] : by_epoch_)
      std::sort(v.begin(), v.end(), [](const JournalName& a, const JournalName& b) {
        return std::tie(a.boot, a.attempt) > std::tie(b.boot, b.attempt);
      });
    return list_markers();
  }

  // chain.h 6: the chain uses markers from the first marked epoch on.
  bool marker_mode(uint64_t epoch) const { return !marked_.empty() && marked_.begin()->first <= epoch; }
  bool marked(uint64_t epoch) const { return marked_.count(epoch) > 0; }
  uint64_t last_marked() const { return marked_.empty() ? 0 : marked_.rbegin()->first; }
  // The journal the marker of `epoch` names, or why it cannot be read.
  Result<std::string>& marked_journal(uint64_t epoch) {
    auto it = marked_journal_.find(epoch);
    if (it != marked_journal_.end()) return it->second;
    auto m = read_round_marker(os_, epoch);
    Result<std::string> j = m ? Result<std::string>(m->journal) : m.status();
    return marked_journal_.emplace(epoch, std::move(j)).first->second;
  }

  const std::vector<JournalName>& at(uint64_t epoch) const {
    static const std::vector<JournalName> none;
    auto it = by_epoch_.find(epoch);
    return it == by_epoch_.end() ? none : it->second;
  }

  // The end object's "prev", or why the end does not read back.
  Result<std::string>& prev(const std::string& base) {
    auto it = ends_.find(base);
    if (it != ends_.end()) return it->second;
    auto r = StreamReader::open(os_, base);
    Result<std::string> p = r ? Result<std::string>(r->info().value("prev", std::string())) : r.status();
    return ends_.emplace(base, std::move(p)).first->second;
  }

  bool listed(const std::string& base) const { return listed_.count(base) > 0; }
  Status list_markers() {
    auto marks = os_.list_markers("n/r/");
    if (!marks) return marks.status();
    for (const auto& n : *marks)
      if (uint64_t e = marker_epoch(n)) marked_[e] = n;
    return {};
  }
  // Journals of `epoch` with a first chunk and no end object listed (3d).
  const std::vector<std::string>& headless(uint64_t epoch) const {
    static const std::vector<std::string> none;
    auto it = headless_.find(epoch);
    return it == headless_.end() ? none : it->second;
  }

 private:
  blob::ObjectStore& os_;
  std::map<uint64_t, std::vector<JournalName>> by_epoch_;
  std::set<std::string> listed_;
  std::map<uint64_t, std::vector<std::string>> headless_;
  std::map<std::string, Result<std::string>> ends_;
  std::map<uint64_t, std::string> marked_;  // epoch -> marker name (chain.h 6)
  std::map<uint64_t, Result<std::string>> marked_journal_;
};

const std::string kHeadless =
    "its chunks are on the blobbers but not its end object (lost after its round was committed, or its writer "
    "stopped before committing it)";

// chain.h 3a and 3b, at the epoch the walk reached.
void find_cuts(Walker& w, const ChainWalk& cw, std::vector<std::string>& out) {
  std::set<std::string> named;
  auto add = [&](const std::string& base, const std::string& why) {
    if (named.insert(base).second) out.push_back(base + " (epoch " + std::to_string(epoch_of(base)) + "): " + why);
  };
  for (const auto& cand : w.at(cw.epoch + 1))  // 3a
    if (auto& p = w.prev(cand.base); !p) add(cand.base, p.status().what());
  for (const auto& base : w.headless(cw.epoch + 1)) add(base, kHeadless);  // 3d
  for (uint64_t e : {cw.epoch + 1, cw.epoch + 2}) {  // 3b
    for (const auto& cand : w.at(e)) {
      auto& p = w.prev(cand.base);
      if (!p || p->empty() || *p == cw.head || epoch_of(*p) != e - 1) continue;
      if (!w.listed(*p)) {
        add(*p, "named as prev by " + cand.base + ", but not on the blobbers");
      } else if (auto& pp = w.prev(*p); !pp) {
        add(*p, "named as prev by " + cand.base + ", but " + pp.status().what());
      }
    }
  }
}

}  // namespace

uint64_t marker_epoch(const std::string& name) {
  uint64_t e = 0;
  int used = 0;
  if (name.size() != 20 || name.compare(0, 4, "n/r/") != 0) return 0;
  if (sscanf(name.c_str() + 4, "%16" SCNx64 "%n", &e, &used) != 1 || used != 16) return 0;
  return e;
}

Result<Marker> read_round_marker(blob::ObjectStore& os, uint64_t epoch) {
  auto bytes = os.read_marker(marker_name(epoch));
  if (!bytes) return bytes.status();
  return decode_marker(epoch, *bytes);
}

namespace {

// A journal's or snapshot's name, "n/{j,s}/<epoch>-<boot>-<attempt>"; false if malformed.
bool parse_stream_name(const std::string& base, uint64_t* e, uint64_t* b) {
  unsigned a = 0;
  return sscanf(base.c_str(), "n/%*1[js]/%16" SCNx64 "-%8" SCNx64 "-%4x", e, b, &a) == 3;
}

}  // namespace

uint64_t epoch_of(const std::string& base) {
  uint64_t e = 0, b = 0;
  return parse_stream_name(base, &e, &b) ? e : 0;
}

uint64_t boot_of(const std::string& base) {
  uint64_t e = 0, b = 0;
  return parse_stream_name(base, &e, &b) ? b : 0;
}

Result<std::vector<JournalName>> journals(blob::ObjectStore& os) { return streams(os, "n/j/"); }

Result<std::vector<JournalName>> snapshots(blob::ObjectStore& os) {
  auto s = streams(os, "n/s/");
  if (!s) return s.status();
  std::sort(s->begin(), s->end(), [](const JournalName& a, const JournalName& b) {
    return std::tie(a.epoch, a.boot, a.attempt) > std::tie(b.epoch, b.boot, b.attempt);
  });
  return s;
}

std::string marker_name(uint64_t epoch) {
  char name[32];
  snprintf(name, sizeof name, "n/r/%016" PRIx64, epoch);
  return name;
}

std::string encode_marker(const Marker& m) {
  return nlohmann::json{{"epoch", m.epoch}, {"journal", m.journal}, {"writer", m.writer}, {"boot", m.boot},
                        {"time", m.time}}
      .dump();
}

Result<Marker> decode_marker(uint64_t epoch, std::string_view bytes) {
  auto j = nlohmann::json::parse(bytes, nullptr, false);
  const std::string what = "marker " + marker_name(epoch) + ": ";
  if (!j.is_object()) return Status::error(EINVAL, what + "not a JSON object");
  Marker m;
  try {
    m.epoch = j.at("epoch").get<uint64_t>();
    m.journal = j.at("journal").get<std::string>();
    m.writer = j.at("writer").get<std::string>();
    m.boot = j.at("boot").get<uint64_t>();
    m.time = j.at("time").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    return Status::error(EINVAL, what + "a field is missing or mistyped: " + e.what());
  }
  if (m.epoch != epoch || epoch_of(m.journal) != epoch || m.journal.rfind("n/j/", 0) != 0)
    return Status::error(EINVAL, what + "names " + m.journal + " for epoch " + std::to_string(m.epoch));
  return m;
}

namespace {

void cut(ChainWalk& cw, const std::string& name, uint64_t epoch, const std::string& why) {
  cw.unreadable.push_back(name + " (epoch " + std::to_string(epoch) + "): " + why);
}

// chain.h 6: the marked journal of `epoch` when it extends the head (in
// *next); else false, with the cut (if any) recorded.
bool marked_step(Walker& w, ChainWalk& cw, uint64_t epoch, std::string* next) {
  if (!w.marked(epoch)) {
    if (w.last_marked() > epoch)
      cut(cw, marker_name(epoch), epoch, "no marker, but rounds up to epoch " + std::to_string(w.last_marked()) +
                                             " are marked (a marker was lost)");
    return false;
  }
  auto& j = w.marked_journal(epoch);
  if (!j) {
    cut(cw, marker_name(epoch), epoch, j.status().what());
    return false;
  }
  auto& p = w.prev(*j);
  if (!p) {
    const auto& hl = w.headless(epoch);
    bool chunks_only = std::find(hl.begin(), hl.end(), *j) != hl.end();
    cut(cw, *j, epoch, "the marked journal: " + (chunks_only ? kHeadless : p.status().what()));
    return false;
  }
  if (*p != cw.head) {
    cut(cw, *j, epoch, "the marked journal follows " + (p->empty() ? std::string("nothing") : *p) + ", not " +
                           (cw.head.empty() ? std::string("nothing") : cw.head));
    return false;
  }
  *next = *j;
  return true;
}

// chain.h 2: the readable candidate of highest (boot, attempt) extending the head.
std::string legacy_step(Walker& w, const ChainWalk& cw) {
  for (const auto& cand : w.at(cw.epoch + 1)) {
    auto& p = w.prev(cand.base);
    if (p && *p == cw.head) return cand.base;
  }
  return "";
}

ChainWalk walk_once(Walker& w, const std::string& from, uint64_t from_epoch) {
  ChainWalk cw;
  cw.head = from;
  cw.epoch = from_epoch;
  if (!from.empty() && w.marked(from_epoch)) {  // chain.h 6: the start must be the marked round
    auto& j = w.marked_journal(from_epoch);
    if (!j || *j != from) {
      cut(cw, from, from_epoch, "not the round its epoch's marker names (" + (j ? *j : j.status().what()) + ")");
      return cw;
    }
  }
  for (;;) {
    std::string next;
    if (w.marker_mode(cw.epoch + 1)) {
      if (!marked_step(w, cw, cw.epoch + 1, &next)) break;
    } else {
      next = legacy_step(w, cw);
    }
    if (next.empty()) break;
    cw.journals.push_back(next);
    cw.head = next;
    cw.epoch++;
  }
  if (!w.marker_mode(cw.epoch + 1)) find_cuts(w, cw, cw.unreadable);
  return cw;
}

}  // namespace

Result<ChainWalk> follow(blob::ObjectStore& os, const std::string& from, const std::vector<Skipped>& skipped,
                         int settle) {
  uint64_t from_epoch = 0;
  if (!from.empty() && (from_epoch = epoch_of(from)) == 0)
    return Status::error(EINVAL, "journal name " + from + ": malformed");
  ChainWalk cw;
  for (int attempt = 0;; attempt++) {
    Walker w(os);
    TCFS_TRY(w.list());
    cw = walk_once(w, from, from_epoch);
    if (cw.whole() || attempt >= settle) break;
    // chain.h 3: an end being put right now is not a cut; look again.
    std::this_thread::sleep_for(std::chrono::milliseconds(kCutPauseMs));
  }
  for (const auto& s : skipped)  // chain.h 3c
    if (s.epoch > cw.epoch) cw.unreadable.push_back(s.base + " (snapshot of epoch " + std::to_string(s.epoch) + "): " + s.why);
  return cw;
}

Result<std::vector<std::string>> chain(blob::ObjectStore& os, const std::string& from) {
  auto w = follow(os, from);
  if (!w) return w.status();
  return std::move(w->journals);
}

}  // namespace tcfs::sync
