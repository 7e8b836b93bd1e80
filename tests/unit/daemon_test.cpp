// Unit tests for daemon/: the composition root's start and stop order
// (daemon.h 3, 4) on a real store, a real dir:// blobber and the real
// control socket, without a FUSE mount (the invalidator is a test's).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <future>
#include <set>
#include <thread>

#include "control/socket_path.h"
#include "daemon/blobber_set.h"
#include "daemon/daemon.h"
#include "tcfs/client.h"
#include "test_util.h"

using namespace tcfs;
using namespace std::chrono_literals;

namespace {

struct NoKernel final : txn::Invalidator {
  void attrs(const txn::LockKey&) override {}
  void data(const txn::LockKey&) override {}
  void entry(const txn::LockKey&, const std::string&, bool) override {}
};

// A store bound to one dir:// blobber (tcfs init).
struct World {
  TempDir tmp;
  std::string store = tmp / "store", url;
  World() {
    mkdir((tmp / "b0").c_str(), 0700);
    url = "dir://" + (tmp / "b0");
    auto cfg = daemon::parse_ec({url}, "");
    REQUIRE(cfg.is_ok());
    auto rep = daemon::init_set(store, *cfg, "", false, false);
    REQUIRE_MESSAGE(rep.is_ok(), rep.status().message());
  }
  std::unique_ptr<daemon::Daemon> open() {
    daemon::DaemonOptions o;
    o.store_dir = store;
    o.sync.interval_ms = 1;  // rounds back to back while compounds commit
    auto d = daemon::Daemon::open(o);
    REQUIRE_MESSAGE(d.is_ok(), d.status().message());
    return std::move(*d);
  }
};

std::string content(int i) { return random_bytes(256 << 10, static_cast<uint32_t>(i)); }

// Commits compounds (create + 256 KiB write each) through the control
// socket until the daemon stops serving; returns the committed indexes.
std::set<int> commit_until_stopped(const std::string& store, std::atomic<int>& committed) {
  std::set<int> done;
  auto c = Client::connect(MountInfo{"/unused", store, control::socket_path(store, geteuid())});
  if (!c) return done;
  for (int i = 0;; i++) {
    Compound k;
    k.create("f" + std::to_string(i)).write("f" + std::to_string(i), content(i));
    auto r = c->submit(k);
    if (!r || r->outcome != Outcome::Committed) break;
    done.insert(i);
    committed++;
  }
  return done;
}

}  // namespace

TEST_CASE("daemon.h 4: a stop while compounds and a sync round are in flight ends both, in the documented order") {
  World w;
  std::string store_path;
  std::set<int> done;
  {
    auto d = w.open();
    store_path = d->store().path();
    NoKernel inv;
    d->start(inv);
    std::atomic<int> committed{0};
    auto writer = std::async(std::launch::async, [&] { return commit_until_stopped(store_path, committed); });
    // Hang guards only: both waits end in well under a second normally.
    auto until = std::chrono::steady_clock::now() + 60s;
    while (committed < 20 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
    REQUIRE(committed >= 20);
    until = std::chrono::steady_clock::now() + 10s;  // rounds run back to back: one is running most of the time
    while (!d->remote()->syncer->status().running && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(100us);
    bool round_in_flight = d->remote()->syncer->status().running;
    d->stop();
    REQUIRE_MESSAGE(writer.wait_for(60s) == std::future_status::ready, "the compound writer hung after stop()");
    done = writer.get();
    MESSAGE("compounds committed: " << done.size() << "; a round was in flight at stop(): " << round_in_flight);
    // The endurant log is on by default: its last checkpoint comes last (daemon.h 4).
    CHECK(d->stop_trace() == std::vector<std::string>{"control", "evictor", "syncer", "txn", "journal"});
    d->stop();  // idempotent
    CHECK(d->stop_trace().size() == 5);
    // No compound half done: each file is whole or absent; every committed one is whole.
    for (int i = 0; i <= *done.rbegin() + 1; i++) {
      std::string p = store_path + "/root/f" + std::to_string(i);
      std::string got = read_file(p);
      bool exists = access(p.c_str(), F_OK) == 0;
      if (done.count(i)) CHECK_MESSAGE(got == content(i), p);
      else CHECK_MESSAGE((!exists || got == content(i)), p << " is half written");
    }
  }
  // The stop was clean: no recovery record left, no rescan needed.
  {
    auto d = w.open();
    CHECK(d->remote()->syncer->was_clean());
    CHECK(d->remote()->syncer->status().pending == 0);
  }
  // Everything committed reached the blobber: a restore shows every file whole in size.
  auto cfg = daemon::parse_ec({w.url}, "");
  REQUIRE(cfg.is_ok());
  auto rep = daemon::init_set(w.tmp / "restored", *cfg, "", true, false);
  REQUIRE_MESSAGE(rep.is_ok(), rep.status().message());
  for (int i : done) {
    struct stat sb;
    std::string p = w.tmp / "restored/root/f" + std::to_string(i);
    REQUIRE_MESSAGE(stat(p.c_str(), &sb) == 0, p << " missing after restore");
    CHECK(sb.st_size == (256 << 10));
  }
}

TEST_CASE("daemon.h 3, 4: stop before start does nothing; the executor works once open") {
  World w;
  auto d = w.open();
  d->stop();
  CHECK(d->stop_trace().empty());
  auto st = d->executor()->status();
  CHECK(st.contains("sync"));
  CHECK(st["blobbers"].size() == 1);
}

TEST_CASE("daemon.h 1: a dir:// blobber inside the mountpoint is refused at open, naming both") {
  World w;
  daemon::DaemonOptions o;
  o.store_dir = w.store;
  o.mountpoint = w.tmp.path;
  auto d = daemon::Daemon::open(o);
  REQUIRE(!d.is_ok());
  CHECK(d.status().message().find("inside the mountpoint " + w.tmp.path) != std::string::npos);
  CHECK(daemon::check_apart(w.store, w.tmp.path).err() == EINVAL);
  CHECK(daemon::check_apart(w.tmp.path, w.store).err() == EINVAL);
  CHECK(daemon::check_apart(w.store, "/mnt/elsewhere").is_ok());
}

TEST_CASE("sync.h 10 at the daemon: a second writer of the chain is fenced; its compounds and tcfs sync are refused, status says why") {
  World w;
  auto a = w.open();
  NoKernel inv_a, inv_b;
  a->start(inv_a);
  // A second store on the same chain: a restore of it that serves too.
  auto cfg = daemon::parse_ec({w.url}, "");
  REQUIRE(cfg.is_ok());
  auto c1 = Client::connect(MountInfo{"/unused", a->store().path(), control::socket_path(a->store().path(), geteuid())});
  REQUIRE(c1.is_ok());
  Compound k1;
  k1.create("a1").write("a1", "from a");
  REQUIRE(c1->submit(k1)->outcome == Outcome::Committed);
  REQUIRE(c1->sync(60000).is_ok());
  auto rep = daemon::init_set(w.tmp / "second", *cfg, "", true, false);
  REQUIRE_MESSAGE(rep.is_ok(), rep.status().message());
  daemon::DaemonOptions o;
  o.store_dir = w.tmp / "second";
  o.sync.interval_ms = 1;
  auto b = daemon::Daemon::open(o);
  REQUIRE(b.is_ok());
  (*b)->start(inv_b);
  // a extends the chain first; then b tries the same epoch.
  Compound k2;
  k2.create("a2").write("a2", "from a, again");
  REQUIRE(c1->submit(k2)->outcome == Outcome::Committed);
  REQUIRE(c1->sync(60000).is_ok());
  std::string bpath = (*b)->store().path();
  auto c2 = Client::connect(MountInfo{"/unused", bpath, control::socket_path(bpath, geteuid())});
  REQUIRE(c2.is_ok());
  Compound k3;
  k3.create("b1").write("b1", "from b");
  REQUIRE(c2->submit(k3)->outcome == Outcome::Committed);  // local: b does not know yet
  Status st = c2->sync(60000);
  CHECK(st.err() == EROFS);
  CHECK(st.message().find("another store") != std::string::npos);
  auto status = c2->status_json();
  REQUIRE(status.is_ok());
  CHECK(status->find("superseded") != std::string::npos);
  CHECK(control::Json::parse(*status)["status"].contains("blobbers"));  // probed
  auto quick = c2->figures_json();  // the same figures, without asking the blobbers
  REQUIRE(quick.is_ok());
  CHECK(!control::Json::parse(*quick)["status"].contains("blobbers"));
  CHECK(control::Json::parse(*quick)["status"]["sync"]["fenced"].get<std::string>().find("superseded") != std::string::npos);
  Compound k4;
  k4.create("b2");
  auto r4 = c2->submit(k4);
  REQUIRE(r4.is_ok());
  CHECK(r4->outcome == Outcome::Rejected);
  CHECK(r4->err == EROFS);
  CHECK(r4->message.find("superseded") != std::string::npos);
  CHECK(access((bpath + "/root/b2").c_str(), F_OK) != 0);  // nothing ran
  CHECK(access((bpath + "/root/b1").c_str(), F_OK) == 0);  // its earlier change is kept locally
  // FUSE changes are refused by the same fence (the gate every mark asks).
  auto hb = (*b)->hooks();
  REQUIRE(hb.write_gate);
  Status gate_b = hb.write_gate();
  CHECK(gate_b.err() == EROFS);
  CHECK(gate_b.message().find("export-unsynced") != std::string::npos);
  auto ha = a->hooks();
  REQUIRE(ha.write_gate);
  CHECK(ha.write_gate().is_ok());
  // a is unaffected.
  Compound k5;
  k5.create("a3");
  CHECK(c1->submit(k5)->outcome == Outcome::Committed);
  CHECK(c1->sync(60000).is_ok());
  (*b)->stop();
  a->stop();
}
