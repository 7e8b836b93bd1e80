// sync/fence.cpp — a round's marker, the fence of its epoch (sync.h 10).
#include <spdlog/spdlog.h>

#include <ctime>

#include "sync/chain.h"
#include "sync/records.h"
#include "sync/stream.h"
#include "sync/syncer.h"

namespace tcfs::sync {

namespace {

// sync.h 10: why a store is fenced, from the marker that holds its epoch.
std::string superseded_by(const Result<Marker>& m, uint64_t epoch) {
  if (m) return "epoch " + std::to_string(epoch) + " was committed by another store (writer " +
                m.value().writer.substr(0, 12) + ", journal " + m.value().journal + ")";
  return "the marker of epoch " + std::to_string(epoch) + " is another's and unreadable: " + m.status().message();
}

}  // namespace

// sync.h 10: the marker of epoch_ + 1 names `journal`, created once on the
// arbiter. EEXIST: the epoch is taken, by this store before a crash or a
// failed attempt (adopted) or by another writer (fenced).
Status Syncer::mark_round(const std::string& journal) {
  const uint64_t epoch = epoch_ + 1;
  Marker m{epoch, journal, writer_, boot_, static_cast<int64_t>(::time(nullptr))};
  std::string holder;
  Status st = env_.objects->create_marker(marker_name(epoch), encode_marker(m), &holder);
  if (st || st.err() != EEXIST) return st;
  auto theirs = decode_marker(epoch, holder);
  if (theirs && theirs->writer == writer_) {  // a lost reply: this round's marks go back, the next round follows
    TCFS_TRY(adopt(theirs->journal, epoch));
    return Status::error(EAGAIN, "epoch " + std::to_string(epoch) + " was already committed by this store (" +
                                     theirs->journal + "): adopted; the next round follows it");
  }
  return fence(superseded_by(theirs, epoch), epoch);
}

namespace {

// The tracker's name for the synced object `id` (null when it is not known here).
std::optional<ObjRef> obj_of(State& state, meta::Txn& t, uint64_t id) {
  auto ino = state.ino_of(t, id);
  if (!ino || !ino->has_value()) return std::nullopt;
  auto f = state.file(t, **ino);
  if (!f || !f->has_value()) return std::nullopt;
  return ObjRef{**ino, (*f)->handle};
}

}  // namespace

// sync.h 10 (adoption): this store's own marked round, which it did not
// record locally. The chain follows it from now on; every object and name
// it touched is marked, so the next round sends them as they are now (what
// the local synced state does not know of it — ids it gave new objects,
// content since changed back — is overwritten). The round that found it
// fails (its marks go back, sync.h 8) and the next one extends `journal`.
Status Syncer::adopt(const std::string& journal, uint64_t epoch) {
  auto rd = StreamReader::open(*env_.objects, journal);
  if (!rd) return rd.status().wrap("adopting " + journal);
  auto t = meta::Txn::begin(*env_.meta, false);
  if (!t) return t.status();
  size_t marked = 0;
  for (;;) {
    auto bytes = rd->next();
    if (!bytes) return bytes.status().wrap("adopting " + journal);
    if (!bytes->has_value()) break;
    auto rec = decode(**bytes);
    if (!rec) return rec.status().wrap("adopting " + journal);
    if (auto* i = std::get_if<InodeRec>(&*rec)) {
      if (auto o = obj_of(state_, *t, i->id)) env_.tracker->data(*o), env_.tracker->attr(*o), marked++;
    } else if (auto* e = std::get_if<EntryRec>(&*rec)) {
      if (auto p = obj_of(state_, *t, e->parent)) env_.tracker->name(*p, e->name), marked++;
    }
  }
  epoch_ = epoch;
  head_ = journal;
  {
    MutexLock g(mu_);
    stats_.epoch = epoch_;
    stats_.head = head_;
  }
  spdlog::warn("sync: epoch {} ({}) was committed by this store before it stopped or retried: adopted, {} "
               "objects and names go out again",
               epoch, journal, marked);
  return {};
}

// sync.h 10: before a round, the markers past epoch_ (after a crash, or a
// failed round whose marker may have been created): this store's own are
// adopted, another writer's fence it. OK when none is left.
Status Syncer::probe_marker() {
  for (;;) {
    const uint64_t epoch = epoch_ + 1;
    auto bytes = env_.objects->read_marker(marker_name(epoch));
    if (!bytes && bytes.err() == ENOENT) break;
    if (!bytes)
      return Status::error(bytes.err(), "looking for the marker of epoch " + std::to_string(epoch) + ": " +
                                            bytes.status().message());
    auto m = decode_marker(epoch, *bytes);
    if (!m || m->writer != writer_)
      return fence(superseded_by(m, epoch), epoch);
    TCFS_TRY(adopt(m->journal, epoch));
  }
  probe_next_ = false;
  return {};
}

// sync.h 10 (fencing): another writer holds the epoch. Rounds stop for good;
// what was committed locally after epoch_ stays local (tcfs status says so).
Status Syncer::fence(const std::string& why, uint64_t epoch) {
  fenced_ = "superseded: " + why + "; this store stopped syncing at epoch " + std::to_string(epoch - 1) +
            " and keeps its later changes locally";
  {
    MutexLock g(mu_);
    stats_.fenced = fenced_;
    is_fenced_.store(true, std::memory_order_release);
    cv_.notify_all();
  }
  spdlog::error("sync: {}", fenced_);
  return Status::error(EROFS, fenced_);
}

std::string Syncer::fenced() {
  MutexLock g(mu_);
  return stats_.fenced;
}

}  // namespace tcfs::sync
