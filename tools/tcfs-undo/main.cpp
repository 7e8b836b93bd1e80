// tcfs-undo — offline recovery of a tcfs store (DESIGN.md §5 invariant 9).
//
//   tcfs-undo [--list | --dry-run] STORE
//
// Replays the endurant log into the store (stable writes acknowledged
// after its last checkpoint), then undoes every compound a crash left
// half-done (newest first), using the
// recovery records in the store's LMDB and the undo images in txn/, then
// removes undo images no record names. Refuses to touch a store a running
// daemon holds (the daemon recovers by itself when it starts). Safe to
// interrupt and run again.
//
// Exit codes: 0 done (or nothing to do); 1 an error the message names
// (store busy, missing, an undo step that failed); 2 a usage error.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <string>

#include "journal/store_log.h"
#include "store/store.h"
#include "txn/rr.h"
#include "txn/undo.h"
#include "util/log.h"

namespace {

int fail(const std::string& msg) {
  fprintf(stderr, "tcfs-undo: error: %s\n", msg.c_str());
  return 1;
}

std::string age(int64_t created) {
  int64_t s = time(nullptr) - created;
  if (s < 0) s = 0;
  char buf[64];
  if (s < 120) snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  else if (s < 7200) snprintf(buf, sizeof buf, "%lldm", static_cast<long long>(s / 60));
  else if (s < 172800) snprintf(buf, sizeof buf, "%lldh", static_cast<long long>(s / 3600));
  else snprintf(buf, sizeof buf, "%lldd", static_cast<long long>(s / 86400));
  return buf;
}

int list(tcfs::store::Store& store) {
  auto rrs = tcfs::txn::list_rrs(store.meta());
  if (!rrs) return fail(rrs.status().message());
  if (rrs->empty()) {
    printf("no pending compounds in %s\n", store.path().c_str());
    return 0;
  }
  printf("%-10s %-6s %-6s %-8s %-8s %s\n", "ID", "AGE", "OPS", "UID", "PID", "OPERATIONS");
  for (const auto& rr : *rrs)
    printf("%-10llu %-6s %-6u %-8u %-8d %s\n", static_cast<unsigned long long>(rr.id), age(rr.created).c_str(),
           rr.nops, rr.uid, rr.pid, rr.summary.c_str());
  printf("%zu pending compound(s); run tcfs-undo %s to roll them back\n", rrs->size(), store.path().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  tcfs::init_logging("tcfs-undo", tcfs::LogTarget::Stderr);
  CLI::App app{"tcfs-undo: replay the endurant log, then roll back the compounds a crash left unfinished in a tcfs store (no daemon may hold it)"};
  app.set_version_flag("--version", "tcfs-undo " TCFS_VERSION);
  std::string dir;
  bool do_list = false, dry = false;
  app.add_flag("-l,--list", do_list, "list pending compounds (id, age, operations, caller) and change nothing");
  app.add_flag("-n,--dry-run", dry, "print what would be undone and change nothing");
  app.add_option("STORE", dir, "the store directory (as given to tcfs mount --store)")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (do_list && dry) {
    fail("--list and --dry-run exclude each other");
    return 2;
  }
  if (geteuid() != 0) return fail("must run as root (it restores owners and opens files by handle)");
  if (access(dir.c_str(), F_OK) != 0) return fail("store " + dir + " does not exist");
  tcfs::store::OpenOptions oo;
  oo.create = false;
  auto store = tcfs::store::Store::open(dir, oo);
  if (!store) {
    if (store.err() == EBUSY)
      return fail(store.status().message() + "; unmount it first (the daemon rolls pending compounds back itself when it starts)");
    return fail(store.status().message());
  }
  if (do_list) return list(**store);
  unsigned actions = 0;
  tcfs::txn::UndoCtx ctx{(*store)->root_fd(), (*store)->txn_fd(), dry, [&](const std::string& line) {
                           ++actions;
                           printf("  %s\n", line.c_str());
                           fflush(stdout);
                         }};
  // docs/DESIGN.md §9: the endurant log is replayed first (as the daemon does), then compounds are undone.
  if (tcfs::journal::has_log((*store)->path())) {
    auto o = tcfs::journal::store_options((*store)->path(), (*store)->uuid(),
                                                tcfs::journal::kDefaultBytes);
    if (dry) {
      uint64_t n = 0;
      auto r = tcfs::journal::recover(o, [&](const tcfs::journal::Record&) { return n++, tcfs::Status(); });
      if (!r) return fail(r.status().message());
      printf("would replay %llu stable write(s) from the endurant log\n", static_cast<unsigned long long>(n));
    } else {
      tcfs::journal::Replayed rep;
      auto log = tcfs::journal::open_store_log(o, (*store)->root_fd(), &rep);
      if (!log) return fail(log.status().message());
      printf("replayed %llu stable write(s) from the endurant log (%llu of removed files skipped)\n",
             static_cast<unsigned long long>(rep.applied), static_cast<unsigned long long>(rep.skipped));
    }
  }
  auto rrs = tcfs::txn::list_rrs((*store)->meta());
  if (!rrs) return fail(rrs.status().message());
  tcfs::Status st = tcfs::txn::recover_all(ctx, (*store)->meta());
  if (!st) return fail(st.message());
  if (rrs->empty()) printf("no pending compounds in %s\n", dir.c_str());
  else printf("%s %zu compound(s)\n", dry ? "would roll back" : "rolled back", rrs->size());
  return 0;
}
