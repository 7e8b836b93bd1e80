// sync/maintain.cpp — gc and scrub of the remote image (syncer.h).
//
// Live objects: every block and pack a synced object names (the local
// LMDB state is the state of the newest journal, sync.h 7), every chunk and
// end of the newest usable snapshot and of the journals after it (chain.h 4).
// Restoring needs nothing else: a restore applies the snapshot and those
// journals, and fetches only the blocks of the final state. gc holds
// round_mu_, so no round uploads objects that no record names yet while it
// lists; with a blobber missing it does not collect (its shards would stay).
//
// The chain's health (chain.h 5): verify_chain() walks the image as a
// restore would and checks that it passes through this store's head; when
// it does not (an end object beyond repair, a lost journal, a snapshot that
// no longer reads), the store rewrites its synced state (LMDB, the state of
// its head, sync.h 7) as a fresh snapshot whose "head" is its head: a
// restore starts there and needs no older object. Its callers: every
// round's check_head() (the head the round extends must read back), scrub,
// and tcfs sync (ensure_restorable()); chain_problem() tells tcfs status.
// Scrub also rewrites the state when a chunk of a live journal or snapshot
// cannot be made whole.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>

#include "sync/chain.h"
#include "sync/follow.h"
#include "sync/records.h"
#include "sync/stream.h"
#include "sync/syncer.h"

namespace tcfs::sync {

namespace {

// The start of the remote image (chain.h 4): the newest snapshot whose end
// reads back, the ones skipped on the way, and the walk from it.
struct Remote {
  std::string snapshot, start;
  size_t chunks = 0;
  ChainWalk walk;
};

// max_epoch: only snapshots of that round or before (gc's retention).
Result<Remote> remote_image(blob::ObjectStore& os, uint64_t max_epoch = 0) {
  Remote rm;
  std::vector<Skipped> skipped;
  auto snaps = snapshots(os);
  if (!snaps) return snaps.status();
  for (const auto& snap : *snaps) {
    if (max_epoch && snap.epoch > max_epoch) continue;
    auto r = StreamReader::open(os, snap.base);
    if (!r) {
      skipped.push_back({snap.base, snap.epoch, r.status().what()});
      continue;
    }
    rm.snapshot = snap.base;
    rm.start = r->info().value("head", std::string());
    rm.chunks = r->chunks();
    break;
  }
  auto w = follow(os, rm.start, skipped);
  if (!w) return w.status();
  rm.walk = std::move(*w);
  return rm;
}

// Whether the walk passes through `head` (the image is, or follows, that state).
bool passes(const Remote& rm, const std::string& head) {
  if (rm.start == head) return true;
  return std::find(rm.walk.journals.begin(), rm.walk.journals.end(), head) != rm.walk.journals.end();
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : "; ") + x;
  return s;
}

}  // namespace

// Every block object the records of stream `base` name (gc's retention),
// and (hashes) the content hash of each one that is not a pack.
Status named_blocks(blob::ObjectStore& os, const std::string& base, std::set<std::string>& live,
                    std::map<std::string, blob::Hash>* hashes = nullptr) {
  auto r = StreamReader::open(os, base);
  if (!r) return r.status();
  for (;;) {
    auto rec = r->next();
    if (!rec) return rec.status();
    if (!rec->has_value()) return {};
    auto d = decode(**rec);
    if (!d) return d.status().wrap(base);
    if (auto* i = std::get_if<InodeRec>(&*d))
      for (const auto& b : i->blocks) {
        live.insert(b.object_name());
        if (hashes && !b.packed) (*hashes)[b.object_name()] = b.hash;
      }
  }
}

// syncer.h check_remote: the objects of the image and the blocks it names.
Result<RemoteCheck> check_remote(blob::ObjectStore& os, bool repair,
                                 const std::function<void(uint64_t, uint64_t)>& progress) {
  RemoteCheck rc;
  auto rm = remote_image(os);
  if (!rm) return rm.status();
  rc.epoch = rm->walk.epoch, rc.head = rm->walk.head, rc.chain_cut = rm->walk.unreadable;
  std::set<std::string> names;
  std::map<std::string, blob::Hash> hashes;
  std::vector<std::string> streams;
  if (!rm->snapshot.empty()) streams.push_back(rm->snapshot);
  streams.insert(streams.end(), rm->walk.journals.begin(), rm->walk.journals.end());
  for (const auto& base : streams) {
    auto r = StreamReader::open(os, base);
    if (!r) {
      rc.problems.push_back(base + ": " + r.status().message());
      continue;
    }
    names.insert(base + "/end");
    for (size_t i = 0; i < r->chunks(); i++) names.insert(chunk_name(base, i));
    if (Status st = named_blocks(os, base, names, &hashes); !st) rc.problems.push_back(base + ": " + st.message());
  }
  for (const auto& name : names) {
    rc.objects++;
    if (progress) progress(rc.objects - 1, names.size());
    blob::Verify v;
    if (auto it = hashes.find(name); it != hashes.end())
      v = [h = it->second, &os](std::string_view b) { return os.content_hash(b) == h; };  // blocks.h 1
    auto r = os.scrub(name, v, repair);
    if (!r || !r->readable) {
      rc.unrecoverable++;
      rc.problems.push_back(name + ": " + (r ? "content does not match its hash" : r.status().message()));
    } else if (r->bad + r->missing > r->repaired) {
      rc.damaged++;
      rc.problems.push_back(name + ": " + std::to_string(r->bad) + " bad and " + std::to_string(r->missing) +
                            " missing shard(s)" + (repair ? ", " + std::to_string(r->repaired) + " rewritten" : ""));
    } else if (r->repaired) {
      rc.repaired++;
    } else {
      rc.good++;
    }
  }
  if (progress) progress(names.size(), names.size());
  return rc;
}

Result<std::set<std::string>> Syncer::live_objects(std::map<std::string, blob::Hash>* blocks, uint64_t keep_from) {
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
  // The newest usable snapshot and the journals after it.
  bool retain = keep_from && keep_from < epoch_;
  auto rm = remote_image(*env_.objects, retain ? keep_from : 0);
  if (!rm) return rm.status();
  // follow.h 8: the kept rounds' blocks. A superset: every block named in
  // the snapshot they start from and in the journals after it.
  if (retain && !rm->snapshot.empty()) TCFS_TRY(named_blocks(*env_.objects, rm->snapshot, live));
  if (retain)
    for (const auto& base : rm->walk.journals) TCFS_TRY(named_blocks(*env_.objects, base, live));
  if (!rm->snapshot.empty()) {
    live.insert(rm->snapshot + "/end");
    for (size_t i = 0; i < rm->chunks; i++) live.insert(chunk_name(rm->snapshot, i));
  }
  const ChainWalk& ch = rm->walk;
  // Cut lines past this store's head are its failed rounds' leftovers (garbage here).
  if (!head_.empty() && ch.head != head_)
    return Status::error(EAGAIN, "the remote journal chain ends at " + (ch.head.empty() ? "nothing" : ch.head) +
                                     (ch.whole() ? "" : " (cut: " + joined(ch.unreadable) + ")") +
                                     ", this store at " + head_ + ": not collecting while they disagree");
  for (const auto& base : ch.journals) {
    auto r = StreamReader::open(*env_.objects, base);
    if (!r) return r.status();
    live.insert(base + "/end");
    for (size_t i = 0; i < r->chunks(); i++) live.insert(chunk_name(base, i));
  }
  return live;
}

// syncer.h: the blobbers give back this store's synced state, or it is
// rewritten as a snapshot (chain.h 5). Holds round_mu_ (the caller's).
Status Syncer::verify_chain(bool repair) {
  if (head_.empty()) return set_chain_problem("");  // nothing synced yet: nothing to give back
  auto rm = remote_image(*env_.objects);
  if (!rm) return rm.status();
  if (passes(*rm, head_)) return set_chain_problem("");
  std::string why = rm->walk.whole() ? "the chain they hold ends at " +
                                           (rm->walk.head.empty() ? std::string("nothing") : rm->walk.head)
                                     : joined(rm->walk.unreadable);
  // Not this store's to rewrite: its head reads back, and the chain went on past
  // its epoch along another line (another writer, design section 8).
  if (rm->walk.epoch > epoch_ && StreamReader::open(*env_.objects, head_))
    return Status::error(EAGAIN, "the remote journal chain ends at " + rm->walk.head + ", this store at " + head_ +
                                     ": another store extends it");
  std::string problem = "the blobbers cannot give back epoch " + std::to_string(epoch_) + " (" + head_ + "): " + why;
  if (!repair) {
    set_chain_problem(problem);
    return Status::error(EIO, problem);
  }
  spdlog::warn("sync: {}: rewriting the synced state as a snapshot", problem);
  if (Status st = write_snapshot(epoch_, head_); !st) {  // its end is the commit point of the rewrite
    set_chain_problem(problem);
    return st.wrap(problem + "; rewriting it failed");
  }
  auto again = remote_image(*env_.objects);
  if (!again) return again.status();
  if (!passes(*again, head_)) {
    set_chain_problem(problem);
    return Status::error(EIO, problem + "; still so after rewriting it as a snapshot");
  }
  spdlog::warn("sync: epoch {} ({}) is whole on the blobbers again (rewritten as a snapshot)", epoch_, head_);
  {
    MutexLock g(mu_);
    stats_.chain_rewrites++;
  }
  last_rewrite_ = problem;
  return set_chain_problem("");
}

Status Syncer::set_chain_problem(const std::string& p) {
  MutexLock g(mu_);
  stats_.chain_problem = p;
  return {};
}

// The round's cheap check (syncer.h): the head it extends reads back.
Status Syncer::check_head() {
  if (head_.empty()) return {};
  auto r = StreamReader::open(*env_.objects, head_);
  if (r) return {};
  spdlog::warn("sync: the head journal {} does not read back ({}): checking the chain", head_, r.status().message());
  return verify_chain(true);
}

Status Syncer::ensure_restorable() {
  MutexLock rl(round_mu_);
  return verify_chain(true);
}

std::string Syncer::chain_problem() {
  if (round_mu_.try_lock()) {  // a round in progress: its check, or the last one, stands
    MutexLock rl(round_mu_, std::adopt_lock);
    (void)verify_chain(false);
  }
  MutexLock g(mu_);
  return stats_.chain_problem;
}

// follow.h 8: the oldest round gc keeps; expired follower notes go.
Result<uint64_t> Syncer::retention_start(MaintenanceReport& rep) {
  uint64_t from = epoch_ > opt_.keep_rounds ? epoch_ - opt_.keep_rounds + 1 : 1;
  int64_t now = static_cast<int64_t>(::time(nullptr));
  auto log = round_log(*env_.objects, false);
  if (!log) return log.status();
  for (const auto& r : *log)
    if (opt_.keep_age_s && r.time >= now - static_cast<int64_t>(opt_.keep_age_s)) {  // 0: no age rule
      from = std::min(from, r.epoch);
      break;
    }
  auto notes = follower_notes(*env_.objects);
  if (!notes) return notes.status();
  for (const auto& n : *notes) {
    if (n.expires > now) {
      from = std::min(from, std::max<uint64_t>(n.round, 1));
      continue;
    }
    if (env_.objects->remove_note(note_name(n.id))) rep.notes_expired++;
  }
  return from;
}

void Syncer::maint_progress(const char* what, uint64_t done, uint64_t total) {
  MutexLock g(mu_);
  stats_.maintenance = what;
  stats_.maint_done = done, stats_.maint_total = total;
}

Result<MaintenanceReport> Syncer::gc() {
  MutexLock rl(round_mu_);
  MaintenanceReport rep;
  auto from = retention_start(rep);
  if (!from) return from.status();
  rep.kept_from = *from;
  auto live = live_objects(nullptr, *from);
  if (!live && *from < epoch_) {  // the older rounds cannot be read back whole: keep what can be
    spdlog::warn("gc: rounds from {} on cannot all be read back ({}); keeping the newest state only",
                 *from, live.status().message());
    rep.kept_from = epoch_;
    live = live_objects(nullptr, 0);
  }
  if (!live) return live.status();
  std::set<std::string> gone;
  uint64_t total = 0;
  struct Done {
    Syncer* s;
    ~Done() { s->maint_progress("", 0, 0); }
  } done{this};
  for (const char* prefix : {"b/", "p/", "n/j/", "n/s/"}) {
    std::vector<std::string> missing;
    auto names = env_.objects->list(prefix, &missing);
    if (!names) return names.status();
    if (!missing.empty())
      return Status::error(EAGAIN, "not collecting with a blobber missing (its shards would stay behind): " +
                                       joined(missing));
    total += names->size();
    for (const auto& n : *names) {
      rep.objects++;
      maint_progress("gc", rep.objects, total);
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
  spdlog::info("gc: {} objects looked at, {} removed, {} dedup entries dropped; rounds from {} kept", rep.objects,
               rep.deleted, rep.index_dropped, rep.kept_from);
  return rep;
}

Result<MaintenanceReport> Syncer::scrub() {
  std::map<std::string, blob::Hash> blocks;
  std::set<std::string> live;
  MaintenanceReport rep;
  {
    MutexLock rl(round_mu_);
    last_rewrite_.clear();
    TCFS_TRY(verify_chain(true));  // chain.h 5: the image gives back this store's state
    rep.chain_rewritten = last_rewrite_;
    auto l = live_objects(&blocks);
    if (!l) return l.status();
    live = std::move(*l);
  }
  bool stream_lost = false;
  struct Done {
    Syncer* s;
    ~Done() { s->maint_progress("", 0, 0); }
  } done{this};
  for (const auto& name : live) {
    rep.objects++;
    maint_progress("scrub", rep.objects - 1, live.size());
    blob::Verify v;
    if (auto it = blocks.find(name); it != blocks.end()) {
      blob::Hash h = it->second;
      blob::ObjectStore* os = env_.objects;
      v = [h, os](std::string_view b) { return os->content_hash(b) == h; };  // blocks.h 1
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
  for (const auto& p : rep.problems) stream_lost = stream_lost || p.rfind("n/", 0) == 0;
  if (stream_lost) {  // a journal or snapshot chunk of the image is gone: its state is rewritten whole
    MutexLock rl(round_mu_);
    if (Status st = write_snapshot(epoch_, head_); !st)
      rep.problems.push_back("rewriting the synced state as a snapshot failed: " + st.message());
    else
      rep.chain_rewritten = "a chunk of the remote image could not be made whole";
  }
  spdlog::info("scrub: {} objects, {} good, {} repaired, {} not whole{}", rep.objects, rep.good, rep.repaired,
               rep.unrecoverable, rep.chain_rewritten.empty() ? "" : "; synced state rewritten as a snapshot (" +
                                                                      rep.chain_rewritten + ")");
  return rep;
}

}  // namespace tcfs::sync
