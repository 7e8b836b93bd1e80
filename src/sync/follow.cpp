// sync/follow.cpp — a follower's image, moved one whole round at a time
// (follow.h).
#include "sync/follow.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <ctime>

#include "sync/stream.h"
#include "util/fault.h"

namespace tcfs::sync {

Status apply_record(State& st, meta::Txn& t, const Record& rec, uint64_t* max_id) {
  MDB_dbi objs = st.env().db(kRestoreDb);
  if (auto* i = std::get_if<InodeRec>(&rec)) {
    if (max_id) *max_id = std::max(*max_id, i->id);
    return t.put(objs, be64(i->id), encode_inode(*i));
  }
  if (auto* e = std::get_if<EntryRec>(&rec))
    return e->child ? st.put_entry(t, e->parent, e->name, e->child) : st.del_entry(t, e->parent, e->name);
  uint64_t id = std::get<DropRec>(rec).id;
  TCFS_TRY(t.del(objs, be64(id)));
  auto ents = st.entries(t, id);  // a dropped directory's names (none, normally) go with it
  if (!ents) return ents.status();
  for (const auto& [name, child] : *ents) TCFS_TRY(st.del_entry(t, id, name));
  return {};
}

Result<Round> Image::round(meta::Txn& t) {
  Round r;
  auto e = st_.get_u64(t, "epoch", 0);
  if (!e) return e.status();
  r.epoch = *e;
  auto h = st_.get(t, "head");
  if (!h) return h.status();
  r.head = h->value_or("");
  auto w = st_.get(t, "round_writer");
  if (!w) return w.status();
  r.writer = w->value_or("");
  auto tm = st_.get_u64(t, "round_time", 0);
  if (!tm) return tm.status();
  r.time = static_cast<int64_t>(*tm);
  return r;
}

Status Image::set_round(meta::Txn& t, const Round& r) {
  TCFS_TRY(st_.put(t, "epoch", std::to_string(r.epoch)));
  TCFS_TRY(st_.put(t, "head", r.head));
  TCFS_TRY(st_.put(t, "round_writer", r.writer));
  return st_.put(t, "round_time", std::to_string(r.time > 0 ? r.time : 0));
}

Result<std::optional<InodeRec>> Image::object(meta::Txn& t, uint64_t id) {
  auto v = t.get(st_.env().db(kRestoreDb), be64(id));
  if (!v) return v.status();
  if (!v->has_value()) return std::optional<InodeRec>();
  auto r = decode_inode(**v);
  if (!r) return r.status().wrap("object " + std::to_string(id) + " of the image");
  return std::optional<InodeRec>(std::move(*r));
}

// follow.h 2.
Status Image::apply(blob::ObjectStore& os, const Marker& m) {
  auto rd = StreamReader::open(os, m.journal);
  if (!rd) return Status::error(EIO, "journal " + m.journal + " of round " + std::to_string(m.epoch) + ": " +
                                         rd.status().message());
  auto t = meta::Txn::begin(st_.env(), true);
  if (!t) return t.status();
  auto cur = round(*t);
  if (!cur) return cur.status();
  if (m.epoch != cur->epoch + 1)
    return Status::error(EAGAIN, "round " + std::to_string(m.epoch) + " does not follow the image's round " +
                                     std::to_string(cur->epoch));
  std::string prev = rd->info().value("prev", std::string());
  if (prev != cur->head)
    return Status::error(EIO, "journal " + m.journal + " of round " + std::to_string(m.epoch) + " follows " +
                                  (prev.empty() ? std::string("nothing") : prev) + ", not the image's head " +
                                  cur->head + " (chain.h 6)");
  uint64_t n = 0;
  for (;;) {
    auto rec = rd->next();
    if (!rec) return Status::error(EIO, "journal " + m.journal + ": " + rec.status().message());
    if (!rec->has_value()) break;
    auto d = decode(**rec);
    if (!d) return Status::error(EIO, "journal " + m.journal + " record " + std::to_string(n) + ": " +
                                          d.status().message());
    TCFS_TRY(apply_record(st_, *t, *d));
    n++;
  }
  TCFS_TRY(set_round(*t, Round{m.epoch, m.journal, m.writer, m.time}));
  if (int f = fault::check("follow.apply")) return Status::error(f, "apply round " + std::to_string(m.epoch));
  if (gate_) gate_(m.epoch);  // follow.h 2: the view's quiet moment (fuse/view.h 5)
  return t->commit();  // SWITCH POINT (follow.h 2): readers see round m.epoch from here on
}

// follow.h 4.
PollReport poll(blob::ObjectStore& os, Image& img, uint64_t stop_at) {
  PollReport rep;
  uint64_t epoch = 0;
  {
    auto t = meta::Txn::begin(img.env(), false);
    if (!t) return rep.error = t.status(), rep;
    auto r = img.round(*t);
    if (!r) return rep.error = r.status(), rep;
    epoch = r->epoch;
  }
  auto names = os.list_markers("n/r/", marker_name(epoch));
  if (!names) return rep.error = names.status().wrap("list round markers"), rep;
  std::vector<uint64_t> epochs;
  for (const auto& n : *names)
    if (uint64_t e = marker_epoch(n); e > epoch) epochs.push_back(e);
  std::sort(epochs.begin(), epochs.end());
  if (epochs.empty()) return rep;
  rep.newest = epochs.back();
  for (uint64_t e : epochs) {
    if (stop_at && e > stop_at) break;
    if (e != epoch + 1) {
      rep.error = Status::error(EIO, "round " + std::to_string(epoch + 1) + " has no marker (" +
                                         marker_name(epoch + 1) + ") but round " + std::to_string(e) +
                                         " has: the follower stays at round " + std::to_string(epoch));
      break;
    }
    auto m = read_round_marker(os, e);
    if (!m) {
      rep.error = m.status().wrap("round " + std::to_string(e));
      break;
    }
    if (e == rep.newest) rep.newest_time = m->time;
    if (Status st = img.apply(os, *m); !st) {
      rep.error = st;
      break;
    }
    rep.applied++;
    epoch = e;
  }
  return rep;
}

// follow.h 9.
Result<std::optional<std::string>> stranded(blob::ObjectStore& os, Image& img, uint64_t stop_at) {
  uint64_t epoch = 0;
  {
    auto t = meta::Txn::begin(img.env(), false);
    if (!t) return t.status();
    auto r = img.round(*t);
    if (!r) return r.status();
    epoch = r->epoch;
  }
  using None = std::optional<std::string>;
  if (stop_at && epoch >= stop_at) return None();
  auto m = read_round_marker(os, epoch + 1);
  if (!m) return m.err() == ENOENT ? Result<None>(None()) : Result<None>(m.status().wrap("round " + std::to_string(epoch + 1)));
  std::vector<std::string> down;
  auto objs = os.list(m->journal + "/", &down);
  if (!objs) return objs.status().wrap("list journal " + m->journal);
  if (!objs->empty() || !down.empty()) return None();  // there, or perhaps there
  return None("the journal of round " + std::to_string(epoch + 1) + " (" + m->journal +
              ") is gone from the blobbers (gc on the writer removed it while this follower was away)");
}

Status record_round(blob::ObjectStore& os, Image& img, meta::Txn& t, uint64_t epoch, const std::string& head) {
  Round round{epoch, head, "", 0};
  if (auto m = read_round_marker(os, epoch); m && m->journal == head) round.writer = m->writer, round.time = m->time;
  return img.set_round(t, round);
}

Result<std::vector<RoundInfo>> round_log(blob::ObjectStore& os, bool with_sizes) {
  auto names = os.list_markers("n/r/");
  if (!names) return names.status().wrap("list round markers");
  std::vector<uint64_t> epochs;
  for (const auto& n : *names)
    if (uint64_t e = marker_epoch(n)) epochs.push_back(e);
  std::sort(epochs.begin(), epochs.end());
  std::vector<RoundInfo> out;
  for (uint64_t e : epochs) {
    auto m = read_round_marker(os, e);
    if (!m) return m.status().wrap("round " + std::to_string(e));
    RoundInfo r{e, m->journal, m->writer, m->time, 0, true};
    if (with_sizes) {
      auto rd = StreamReader::open(os, m->journal);
      r.readable = rd.is_ok();
      if (rd) r.records = rd->records();
    }
    out.push_back(std::move(r));
  }
  return out;
}

Result<uint64_t> round_at_time(blob::ObjectStore& os, int64_t when) {
  auto log = round_log(os, false);
  if (!log) return log.status();
  uint64_t best = 0;
  for (const auto& r : *log)
    if (r.time <= when) best = r.epoch;
  if (!best)
    return Status::error(ENOENT, log->empty() ? std::string("the blobbers hold no marked round")
                                              : "no round was marked at or before that time (the first: " +
                                                    std::to_string(log->front().time) + " s since the epoch)");
  return best;
}

std::string note_name(const std::string& id) { return "n/f/" + id; }

Status announce(blob::ObjectStore& os, const std::string& id, uint64_t round, int64_t expires) {
  nlohmann::json j = {{"round", round}, {"expires", expires}};
  return os.put_note(note_name(id), j.dump());
}

Result<std::vector<FollowerNote>> follower_notes(blob::ObjectStore& os) {
  auto names = os.list_markers("n/f/");
  if (!names) return names.status().wrap("list follower notes");
  std::vector<FollowerNote> out;
  for (const auto& n : *names) {
    auto bytes = os.read_marker(n);
    if (!bytes) continue;  // removed meanwhile
    auto j = nlohmann::json::parse(*bytes, nullptr, false);
    FollowerNote f{n.substr(4), 0, 0};
    if (j.is_object()) {
      f.round = j.value("round", uint64_t{0});
      f.expires = j.value("expires", int64_t{0});
    }
    out.push_back(std::move(f));  // a malformed note has expired (0)
  }
  return out;
}

Result<uint64_t> resolve_at(blob::ObjectStore& os, const std::string& spec) {
  auto bad = [&] {
    return Status::error(EINVAL, "--at " + spec + ": give a round number, @SECONDS since the epoch, or a UTC time "
                                                  "YYYY-MM-DD HH:MM[:SS]");
  };
  if (!spec.empty() && spec.find_first_not_of("0123456789") == std::string::npos) {
    uint64_t r = 0;
    if (sscanf(spec.c_str(), "%" SCNu64, &r) != 1 || r == 0) return bad();
    return r;
  }
  int64_t when = 0;
  if (spec.size() > 1 && spec[0] == '@') {
    if (spec.find_first_not_of("0123456789", 1) != std::string::npos) return bad();
    when = std::stoll(spec.substr(1));
  } else {
    struct tm tm {};
    std::string t = spec;
    std::replace(t.begin(), t.end(), 'T', ' ');
    const char* end = strptime(t.c_str(), "%Y-%m-%d %H:%M:%S", &tm);
    if (!end || *end) {
      tm = {};
      end = strptime(t.c_str(), "%Y-%m-%d %H:%M", &tm);
    }
    if (!end || *end) return bad();
    when = static_cast<int64_t>(timegm(&tm));
  }
  return round_at_time(os, when);
}

}  // namespace tcfs::sync
