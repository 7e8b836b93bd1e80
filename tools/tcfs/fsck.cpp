// tcfs fsck STORE [--repair] [--json] — an offline check of a store (issue
// 15). Refuses a store a daemon (or tcfs-undo, tcfs init) holds: it takes
// the store's lock as they do.
//
// Checks, in the order recovery would act (docs/DESIGN.md §9: log replay
// first, then compound undo):
//  1. journal: the endurant log verifies (log.h 6), and the stable writes
//     after its last checkpoint (left by a crash) are counted. Repair:
//     replay them into the files (as the daemon and tcfs-undo do). A log
//     that does not verify is not repaired (nothing may replay it: the
//     mount refuses it too).
//  2. compounds: every recovery record left (a compound cut short by a
//     crash) is listed. Repair: roll it back (tcfs-undo's code).
//  3. undo images: txn/<id>/ directories no recovery record names (their
//     compound finished, the reclaim did not run). Repair: remove them.
//  4. sync records, for a store with blobbers that says it stopped cleanly
//     (sync_meta "clean": the next mount then trusts its records and does
//     not rescan): a record naming a file that no longer exists, a file in
//     root/ with no record, a stub whose size differs from its record.
//     Repair: a stub gets its recorded size back (its bytes are holes,
//     fetched on use); for the others the clean mark is dropped, so the
//     next mount rescans the tree and syncs what it finds (as after a
//     crash). Without the clean mark there is nothing to check: the next
//     mount rescans anyway.
//  5. --remote: the blobbers the store names (sync/syncer.h check_remote):
//     the chain is whole, and every object of the newest usable snapshot,
//     of the journals after it and every block they name has at least K
//     good shards and reads back. Repair: bad or missing shards rewritten
//     from the good ones; a cut chain or an unreadable object is not
//     repairable here (tcfs scrub on the writer's mount rewrites its state).
// With --progress (or on a terminal) bars on stderr: the walk of root/
// (a count), the records of 4, the objects of 5.
// Reports name the path (under root/) or the object. Exit (as fsck(8)):
// 0 no problem; 1 problems, all repaired; 4 problems left; 8 the store
// could not be checked (busy, unreadable); 2 usage.
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/blobber_set.h"
#include "journal/log.h"
#include "journal/store_log.h"
#include "store/store.h"
#include "sync/state.h"
#include "sync/sync.h"
#include "sync/syncer.h"
#include "tools/tcfs/progress.h"
#include "tools/tcfs/remote.h"
#include "txn/rr.h"
#include "txn/undo.h"
#include "util/fd.h"
#include "util/handle.h"

namespace tcfs::cli {
namespace {

using json = nlohmann::json;

struct Problem {
  std::string kind, what;
  bool repairable = false, repaired = false;
  std::string repair;  // what --repair did, or why it could not
};

struct Fsck {
  store::Store& s;
  bool repair;
  std::deque<Problem> found;  // a deque: add() hands out references that later adds keep valid
  bool rescan = false;  // 4: drop the clean mark
  bool progress = false;  // bars on stderr (progress.h 2)

  Problem& add(const std::string& kind, const std::string& what, bool repairable) {
    found.push_back({kind, what, repairable, false, repairable ? "" : "not repairable by fsck"});
    return found.back();
  }
  void done(Problem& p, const Status& st, const std::string& how) {
    p.repaired = st.is_ok();
    p.repair = st ? how : "repair failed: " + st.message();
  }
};

void check_journal(Fsck& f) {  // 1
  if (!journal::has_log(f.s.path())) return;
  auto o = journal::store_options(f.s.path(), f.s.uuid(), journal::kDefaultBytes);
  uint64_t n = 0;
  auto r = journal::recover(o, [&](const journal::Record&) { return n++, Status(); });
  if (!r) {
    f.add("journal", "the endurant log does not verify: " + r.status().message(), false).repair =
        "not repairable: nothing replays a log that does not verify (the mount refuses it too); keep the store as "
        "it is and restore from the blobbers";
    return;
  }
  if (n == 0) return;
  Problem& p = f.add("journal", std::to_string(n) + " stable write(s) after the log's last checkpoint (a crash): "
                                    "not yet replayed into the files",
                     true);
  if (!f.repair) return;
  journal::Replayed rep;
  auto log = journal::open_store_log(o, f.s.root_fd(), &rep);
  f.done(p, log ? Status() : log.status(),
         "replayed " + std::to_string(rep.applied) + " (" + std::to_string(rep.skipped) + " of removed files skipped)");
}

void check_compounds(Fsck& f) {  // 2, 3
  auto rrs = txn::list_rrs(f.s.meta());
  if (!rrs) {
    f.add("compounds", "the recovery records cannot be read: " + rrs.status().message(), false);
    return;
  }
  std::vector<Problem*> cut;
  for (const auto& rr : *rrs)
    cut.push_back(&f.add("compounds", "compound " + std::to_string(rr.id) + " (" + rr.summary + ", pid " +
                                          std::to_string(rr.pid) + ") was cut short and is not rolled back",
                         true));
  if (f.repair && !cut.empty()) {
    txn::UndoCtx ctx{f.s.root_fd(), f.s.txn_fd(), false, {}};
    Status st = txn::recover_all(ctx, f.s.meta());
    for (Problem* p : cut) f.done(*p, st, "rolled back");
  }
  for (uint64_t id : txn::list_txn_dirs(f.s.txn_fd())) {
    if (txn::has_rr(f.s.meta(), id)) continue;
    Problem& p = f.add("undo images", "txn/" + std::to_string(id) + "/: undo images of a finished compound", true);
    if (f.repair) f.done(p, txn::remove_txn_dir(f.s.txn_fd(), id), "removed");
  }
}

// Regular files under root/: backing inode -> path (relative to root/);
// with a bar, the count so far (the total is not known before the end).
std::map<uint64_t, std::string> walk_root(const std::string& root, Bar* bar) {
  static std::map<uint64_t, std::string>* out;
  static size_t skip;
  static Bar* shown;
  std::map<uint64_t, std::string> m;
  out = &m, skip = root.size() + 1, shown = bar;
  nftw(root.c_str(), [](const char* p, const struct stat* st, int type, FTW*) {
    if (type == FTW_F && S_ISREG(st->st_mode) && strlen(p) > skip) (*out)[st->st_ino] = p + skip;
    if (shown) shown->draw(static_cast<double>(out->size()), 0);
    return 0;
  }, 64, FTW_PHYS | FTW_MOUNT);
  if (bar) bar->draw(static_cast<double>(m.size()), static_cast<double>(m.size()), true), bar->end();
  return m;
}

// 4: a stub's recorded size back, its times as recorded, and the new ctime
// recorded, so the next mount sees an unchanged stub (never content to sync).
Status fix_stub(Fsck& f, uint64_t ino, sync::FileState rec) {
  Fd w(open_handle(f.s.root_fd(), rec.handle, O_WRONLY | O_NOFOLLOW));
  if (!w) return Status::from_errno("open for writing");
  if (ftruncate(w.get(), static_cast<off_t>(rec.rec.size)) != 0) return Status::from_errno("truncate");
  const timespec times[2] = {{rec.rec.atime_sec, rec.rec.atime_nsec}, {rec.rec.mtime_sec, rec.rec.mtime_nsec}};
  struct stat sb;
  if (futimens(w.get(), times) != 0 || fstat(w.get(), &sb) != 0) return Status::from_errno("set times");
  rec.ctime_sec = sb.st_ctim.tv_sec, rec.ctime_nsec = static_cast<uint32_t>(sb.st_ctim.tv_nsec);
  auto t = meta::Txn::begin(f.s.meta(), true);
  if (!t) return t.status();
  TCFS_TRY(sync::State(f.s.meta()).put_file(*t, ino, rec));
  return t->commit();
}

// The sync records (backing inode -> state) of a store marked clean and
// with blobbers: false when there is nothing to check. The read
// transaction ends here, before any repair writes (one LMDB transaction
// per thread at a time).
bool read_sync_records(Fsck& f, std::map<uint64_t, sync::FileState>& recs) {
  meta::Env& env = f.s.meta();
  auto t = meta::Txn::begin(env, false);
  if (!t) return f.add("sync", "LMDB: " + t.status().message(), false), false;
  auto cfg = t->get(env.db(sync::kSyncDb), "config");
  auto clean = t->get(env.db(sync::kSyncDb), "clean");
  if (!cfg || !*cfg || !clean || !*clean) return false;  // no blobbers, or a rescan is due anyway
  sync::State state(env);
  Status st = t->scan(env.db(sync::kFilesDb), "", [&](std::string_view k, std::string_view) {
    auto fs = state.file(*t, sync::from_be64(k));
    if (fs && *fs) recs[sync::from_be64(k)] = **fs;
    return true;
  });
  if (!st) return f.add("sync", "the sync records cannot be read: " + st.message(), false), false;
  return true;
}

void check_sync(Fsck& f) {  // 4
  std::map<uint64_t, sync::FileState> recs;
  if (!read_sync_records(f, recs)) return;
  std::optional<Bar> walk, files_bar;
  if (f.progress) walk.emplace("fsck: tree", false), files_bar.emplace("fsck: records", false);
  auto files = walk_root(f.s.path() + "/root", walk ? &*walk : nullptr);
  double n = 0;
  for (const auto& [ino, rec] : recs) {
    n += 1;
    if (files_bar) files_bar->draw(n, static_cast<double>(recs.size()), n == static_cast<double>(recs.size()));
    Fd fd(open_handle(f.s.root_fd(), rec.handle, O_RDONLY | O_NOFOLLOW));
    if (!fd) {
      f.add("sync", "the record of object " + std::to_string(rec.id) + " (backing inode " + std::to_string(ino) +
                        ") names a file that no longer exists",
            true);
      f.rescan = true;
      continue;
    }
    struct stat sb;
    if (!rec.stub || fstat(fd.get(), &sb) != 0 || S_ISDIR(sb.st_mode) ||
        static_cast<uint64_t>(sb.st_size) == rec.rec.size)
      continue;
    auto it = files.find(ino);
    Problem& p = f.add("stubs", (it == files.end() ? "inode " + std::to_string(ino) : it->second) + ": a stub of " +
                                    std::to_string(rec.rec.size) + " bytes on the blobbers, but " +
                                    std::to_string(sb.st_size) + " bytes here",
                       true);
    if (f.repair) f.done(p, fix_stub(f, ino, rec), "size set back (its bytes are fetched on use)");
  }
  if (files_bar) files_bar->end();
  for (const auto& [ino, path] : files)
    if (!recs.count(ino)) {
      f.add("sync", path + ": not known to sync, yet the store is marked clean: it would never be synced", true);
      f.rescan = true;
    }
}

// --remote (5): the blobbers the store names, checked as a restore would
// read them (sync/syncer.h check_remote).
void check_blobbers(Fsck& f) {
  auto cfg = daemon::load_config(f.s.meta());
  if (!cfg) return void(f.add("blobbers", "the store's blobber set cannot be read: " + cfg.status().message(), false));
  if (!*cfg) return void(fprintf(stderr, "tcfs: fsck --remote: %s has no blobbers: nothing to check there\n",
                                  f.s.path().c_str()));
  std::vector<std::string> down;
  auto os = daemon::open_objects(**cfg, &down);
  if (!os) return void(f.add("blobbers", "the blobbers cannot be opened: " + os.status().message(), false));
  for (const auto& d : down) f.add("blobbers", "a blobber does not answer: " + d, false);
  std::optional<Bar> bar;
  if (f.progress) bar.emplace("fsck --remote", false);
  auto rc = sync::check_remote(**os, f.repair, [&](uint64_t done, uint64_t total) {
    if (bar) bar->draw(static_cast<double>(done), static_cast<double>(total), done == total);
  });
  if (bar) bar->end();
  if (!rc) return void(f.add("blobbers", "the chain cannot be walked: " + rc.status().message(), false));
  if (!rc->chain_cut.empty()) {
    std::string why;
    for (const auto& u : rc->chain_cut) why += (why.empty() ? "" : "; ") + u;
    f.add("chain", "the chain is cut after round " + std::to_string(rc->epoch) + ": " + why, false).repair =
        "not repairable by fsck: a scrub of the writer's mount (tcfs scrub) rewrites its synced state as a snapshot";
  }
  for (const auto& p : rc->problems) {
    const bool shards = p.find(" missing shard(s)") != std::string::npos;  // readable: scrub can rewrite them
    Problem& q = f.add("blobbers", p, shards);
    if (!shards) q.repair = "not repairable: fewer than K good shards, or the content does not match its hash";
    else if (f.repair) q.repair = "not all shards could be rewritten";
  }
  if (rc->repaired) {
    Problem& q = f.add("blobbers", std::to_string(rc->repaired) + " object(s) had bad or missing shards", true);
    q.repaired = true, q.repair = "rewritten from the good ones";
  }
  printf("fsck --remote: round %llu (%s), %llu objects: %llu good, %llu repaired, %llu damaged, %llu unreadable\n",
         static_cast<unsigned long long>(rc->epoch), rc->head.c_str(), static_cast<unsigned long long>(rc->objects),
         static_cast<unsigned long long>(rc->good), static_cast<unsigned long long>(rc->repaired),
         static_cast<unsigned long long>(rc->damaged), static_cast<unsigned long long>(rc->unrecoverable));
}

void drop_clean(Fsck& f) {
  if (!f.rescan || !f.repair) return;
  meta::Env& env = f.s.meta();
  auto t = meta::Txn::begin(env, true);
  Status st = t ? t->del(env.db(sync::kSyncDb), "clean") : t.status();
  if (st) st = t->commit();
  for (Problem& p : f.found)
    if (p.kind == "sync" && p.repairable) f.done(p, st, "the next mount rescans the tree and syncs what it finds");
}

}  // namespace

int cmd_fsck(const std::string& dir, bool repair, bool as_json, bool remote, std::optional<bool> progress) {
  if (geteuid() != 0) return fprintf(stderr, "tcfs: error: fsck must run as root (it opens files by handle)\n"), 8;
  if (access(dir.c_str(), F_OK) != 0) return fprintf(stderr, "tcfs: error: store %s does not exist\n", dir.c_str()), 8;
  store::OpenOptions oo;
  oo.create = false;
  auto s = store::Store::open(dir, oo);
  if (!s) {
    fprintf(stderr, "tcfs: error: fsck %s: %s%s\n", dir.c_str(), s.status().message().c_str(),
            s.err() == EBUSY ? "; unmount it first (fsck checks a store nothing holds)" : "");
    return 8;
  }
  Fsck f{**s, repair, {}};
  f.progress = !as_json && progress_enabled(progress);
  check_journal(f);
  check_compounds(f);
  check_sync(f);
  drop_clean(f);
  if (remote) check_blobbers(f);
  size_t left = 0, fixed = 0;
  for (const Problem& p : f.found) p.repaired ? fixed++ : left++;
  if (as_json) {
    json j = {{"store", (*s)->path()}, {"problems", json::array()}, {"repaired", fixed}, {"left", left}};
    for (const Problem& p : f.found)
      j["problems"].push_back({{"kind", p.kind}, {"what", p.what}, {"repaired", p.repaired}, {"repair", p.repair}});
    printf("%s\n", j.dump(2).c_str());
  } else {
    for (const Problem& p : f.found)
      printf("%s: %s%s\n", p.kind.c_str(), p.what.c_str(),
             p.repaired ? ("; repaired: " + p.repair).c_str()
                        : (repair || !p.repairable ? "; " + p.repair : std::string("; --repair fixes it")).c_str());
    printf("fsck %s: %zu problem(s), %zu repaired, %zu left\n", (*s)->path().c_str(), f.found.size(), fixed, left);
  }
  return left ? 4 : fixed ? 1 : 0;
}

}  // namespace tcfs::cli
