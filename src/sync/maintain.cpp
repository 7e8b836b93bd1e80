// sync/maintain.cpp — gc and scrub of the remote image (syncer.h).
//
// Live objects: every block and pack a synced object names (the local
// LMDB state is the state of the newest journal, sync.h 7), every chunk and
// end of the newest snapshot and of the journals after it. Restoring needs
// nothing else: a restore applies the snapshot and those journals, and
// fetches only the blocks of the final state. gc holds round_mu_, so no
// round uploads objects that no record names yet while it lists.
#include <spdlog/spdlog.h>

#include "sync/chain.h"
#include "sync/stream.h"
#include "sync/syncer.h"

namespace tcfs::sync {

Result<std::set<std::string>> Syncer::live_objects(std::map<std::string, blob::Hash>* blocks) {
  std::set<std::string> live;
  auto t = meta::Txn::begin(*env_.meta, false);
  if (!t) return t.status();
  Status err;
  TCFS_TRY(t->scan(env_.meta->db(kFilesDb), "", [&](std::string_view k, std::string_view) {
    auto f = state_.file(*t, from_be64(k));
    if (!f) err = f.status();
    else if (f->has_value())
      for (const auto& b : (*f)->rec.blocks) {
        live.insert(b.object_name());
        if (blocks && !b.packed) (*blocks)[b.object_name()] = b.hash;
      }
    return err.is_ok();
  }));
  TCFS_TRY(err);
  // The newest snapshot and the journals after it.
  std::string from;
  auto snaps = snapshots(*env_.objects);
  if (!snaps) return snaps.status();
  if (!snaps->empty()) {
    auto r = StreamReader::open(*env_.objects, snaps->front().base);
    if (r) {
      from = r->info().value("head", std::string());
      live.insert(snaps->front().base + "/end");
      for (size_t i = 0; i < r->chunks(); i++) live.insert(chunk_name(snaps->front().base, i));
    }
  }
  auto ch = chain(*env_.objects, from);
  if (!ch) return ch.status();
  if (!ch->empty() && ch->back() != head_ && !head_.empty())
    return Status::error(EAGAIN, "the remote journal chain ends at " + ch->back() + ", this store at " + head_ +
                                     ": not collecting while they disagree");
  for (const auto& base : *ch) {
    auto r = StreamReader::open(*env_.objects, base);
    if (!r) return r.status();
    live.insert(base + "/end");
    for (size_t i = 0; i < r->chunks(); i++) live.insert(chunk_name(base, i));
  }
  return live;
}

Result<MaintenanceReport> Syncer::gc() {
  std::lock_guard rl(round_mu_);
  MaintenanceReport rep;
  auto live = live_objects(nullptr);
  if (!live) return live.status();
  std::set<std::string> gone;
  for (const char* prefix : {"b/", "p/", "n/j/", "n/s/"}) {
    auto names = env_.objects->list(prefix);
    if (!names) return names.status();
    for (const auto& n : *names) {
      rep.objects++;
      if (live->count(n)) continue;
      TCFS_TRY(env_.objects->remove(n));
      gone.insert(n);
      rep.deleted++;
    }
  }
  // Dedup entries must never name a removed object.
  auto t = meta::Txn::begin(*env_.meta, true);
  if (!t) return t.status();
  std::vector<std::string> drop;
  TCFS_TRY(t->scan(env_.meta->db(kBlocksDb), "", [&](std::string_view k, std::string_view v) {
    auto ref = blob::BlockRef::decode(v);
    if (!ref || gone.count(ref->object_name()) || !live->count(ref->object_name())) drop.emplace_back(k);
    return true;
  }));
  for (const auto& k : drop) TCFS_TRY(t->del(env_.meta->db(kBlocksDb), k));
  TCFS_TRY(t->commit());
  rep.index_dropped = drop.size();
  spdlog::info("gc: {} objects looked at, {} removed, {} dedup entries dropped", rep.objects, rep.deleted,
               rep.index_dropped);
  return rep;
}

Result<MaintenanceReport> Syncer::scrub() {
  std::map<std::string, blob::Hash> blocks;
  std::set<std::string> live;
  {
    std::lock_guard rl(round_mu_);
    auto l = live_objects(&blocks);
    if (!l) return l.status();
    live = std::move(*l);
  }
  MaintenanceReport rep;
  for (const auto& name : live) {
    rep.objects++;
    blob::Verify v;
    if (auto it = blocks.find(name); it != blocks.end()) {
      blob::Hash h = it->second;
      v = [h](std::string_view b) { return blob::sha256(b) == h; };
    }
    auto r = env_.objects->scrub(name, v);
    if (!r) {
      rep.unrecoverable++;
      rep.problems.push_back(name + ": " + r.status().message());
      continue;
    }
    if (!r->readable) {
      rep.unrecoverable++;
      rep.problems.push_back(name + ": content does not match its hash");
    } else if (r->bad + r->missing > r->repaired) {
      rep.unrecoverable++;
      rep.problems.push_back(name + ": " + std::to_string(r->bad + r->missing - r->repaired) +
                             " shard(s) could not be rewritten");
    } else if (r->repaired) {
      rep.repaired++;
    } else {
      rep.good++;
    }
  }
  spdlog::info("scrub: {} objects, {} good, {} repaired, {} not whole", rep.objects, rep.good, rep.repaired,
               rep.unrecoverable);
  return rep;
}

}  // namespace tcfs::sync
