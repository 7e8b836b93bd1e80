#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
// The FUSE side of compound isolation, in process: this program mounts a
// store with fusefs::serve() on a thread, owns the LockManager it hands the
// session (as the daemon does) and plays the compound itself: it takes
// Exclusive / Path locks, changes the backing tree directly, and calls the
// session's Invalidator in the order the executor does (attrs under the
// locks; data and entries after release). POSIX calls through the mount,
// each on its own thread, must wait for those locks — observed through the
// manager's waiting() counter, not through timing — and must see the
// compound's result once it is released.
//
// Needs root and /dev/fuse (skipped otherwise: each case says so).
#include <doctest/doctest.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "fuse/session.h"
#include "store/store.h"
#include "test_util.h"
#include "txn/locks.h"

using namespace tcfs;
using namespace std::chrono_literals;
using txn::LockKey;
using txn::LockMode;

namespace {

bool skip() {
  if (geteuid() == 0 && access("/dev/fuse", R_OK | W_OK) == 0) return false;
  MESSAGE("skipped: needs root and /dev/fuse");
  return true;
}

// A store mounted on <tmp>/mnt, served on a background thread.
struct Mount {
  TempDir t;
  std::string store_dir = t / "store", mnt = t / "mnt";
  std::unique_ptr<store::Store> store;
  txn::LockManager locks;
  std::thread server;
  std::mutex mu;
  std::condition_variable cv;
  txn::Invalidator* inv = nullptr;  // guarded by mu until set
  bool done = false;
  Status result;

  // writeback: the kernel's writeback cache (the default; txn.h invariant 13).
  explicit Mount(bool writeback = true) {
    REQUIRE(mkdir(mnt.c_str(), 0755) == 0);
    auto s = store::Store::open(store_dir);
    REQUIRE_MESSAGE(s.is_ok(), s.status().message());
    store = std::move(s.value());
    server = std::thread([this, writeback] {
      fusefs::MountConfig cfg;
      cfg.mountpoint = mnt;
      cfg.fs.writeback_cache = writeback;
      fusefs::Hooks hooks;
      hooks.locks = &locks;
      Status st = fusefs::serve(*store, cfg, hooks, [this](txn::Invalidator& i) {
        std::lock_guard g(mu);
        inv = &i;
        cv.notify_all();
      });
      std::lock_guard g(mu);
      result = st;
      done = true;
      cv.notify_all();
    });
    std::unique_lock g(mu);
    cv.wait(g, [&] { return inv || done; });
    if (!inv) {
      g.unlock();
      server.join();
      FAIL("mount failed: " << result.message());
    }
  }
  ~Mount() {
    if (umount2(mnt.c_str(), 0) != 0) umount2(mnt.c_str(), MNT_DETACH);
    server.join();
  }

  std::string m(const std::string& rel) const { return mnt + "/" + rel; }
  std::string b(const std::string& rel) const { return store_dir + "/root/" + rel; }
  LockKey key(const std::string& rel) const {
    struct stat st;
    REQUIRE(lstat(b(rel).c_str(), &st) == 0);
    return {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
  }
  bool wait_waiting(size_t n) {
    for (int i = 0; i < 5000 && locks.waiting() < n; ++i) std::this_thread::sleep_for(1ms);
    return locks.waiting() >= n;
  }
};

// A POSIX call through the mount on its own thread.
struct Call {
  struct State {
    std::atomic<bool> finished{false};
    int rc = 0;
  };
  std::shared_ptr<State> st = std::make_shared<State>();
  std::thread th;
  explicit Call(std::function<int()> fn) : th([s = st, fn] {
    s->rc = fn();
    s->finished = true;
  }) {}
  bool finished() const { return st->finished; }
  int join() {
    th.join();
    return st->rc;
  }
  // A failed check leaves the call blocked on a lock the test still holds:
  // let it finish on its own once the lock goes.
  ~Call() {
    if (th.joinable()) th.detach();
  }
};

void put(const std::string& path, const std::string& data) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
  close(fd);
}

std::string get(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return "<" + std::string(strerror(errno)) + ">";
  char buf[256];
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  return n < 0 ? "<read error>" : std::string(buf, static_cast<size_t>(n));
}

off_t size_of(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? st.st_size : -errno;
}

std::set<std::string> list(const std::string& dir) {
  std::set<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (!d) return names;
  while (dirent* de = readdir(d)) names.insert(de->d_name);
  closedir(d);
  return names;
}

}  // namespace

TEST_CASE("FUSE operations wait for a compound's Exclusive lock, then see its result") {
  if (skip()) return;
  // Without the writeback cache: the kernel takes the size the waiting
  // GETATTR answers (with it, the kernel keeps its own: the next case).
  Mount mt(false);
  put(mt.m("f"), "old");
  CHECK(get(mt.m("f")) == "old");  // attributes and pages now cached
  CHECK(mt.locks.entries() == 0);  // no compound: FUSE operations took no lock
  LockKey f = mt.key("f");
  {
    txn::LockSet x = mt.locks.acquire({f}, LockMode::Exclusive);
    put(mt.b("f"), "newer");  // the compound's change, behind the kernel's back
    mt.inv->attrs(f);         // under the locks, as the executor does
    Call reader([&] { return static_cast<int>(size_of(mt.m("f"))); });
    REQUIRE(mt.wait_waiting(1));  // getattr waits for the lock
    CHECK(!reader.finished());
    x.release();
    CHECK(reader.join() == 5);
  }
  mt.inv->data(f);  // after release
  CHECK(get(mt.m("f")) == "newer");
  CHECK(mt.locks.entries() == 0);
}

TEST_CASE("under the writeback cache a compound's file gets a new kernel inode (txn.h invariant 13)") {
  if (skip()) return;
  Mount mt;
  put(mt.m("f"), "old");
  CHECK(get(mt.m("f")) == "old");  // attributes and pages now cached
  struct stat before;
  REQUIRE(stat(mt.m("f").c_str(), &before) == 0);
  LockKey f = mt.key("f");
  int fd = open(mt.m("f").c_str(), O_RDONLY);  // open across the compound
  REQUIRE(fd >= 0);
  {
    txn::LockSet x = mt.locks.acquire({f}, LockMode::Exclusive);
    put(mt.b("f"), "newer");  // the compound's change, behind the kernel's back
    mt.inv->attrs(f);
  }
  CHECK(size_of(mt.m("f")) == 3);  // the kernel keeps its own size: why renew() exists
  {
    txn::LockSet x = mt.locks.acquire({f}, LockMode::Exclusive);
    mt.inv->retire(f, 3);  // under the locks, as the executor does (3: the size before)
  }
  // An open of the old node is refused; the kernel looks the path up again.
  CHECK(get(mt.m("f")) == "newer");
  mt.inv->renew(f, "f");
  mt.inv->data(f);
  CHECK(size_of(mt.m("f")) == 5);
  CHECK(get(mt.m("f")) == "newer");
  struct stat now, held;
  REQUIRE(stat(mt.m("f").c_str(), &now) == 0);
  REQUIRE(fstat(fd, &held) == 0);
  CHECK(now.st_ino == before.st_ino);  // the object's number, whatever the node
  CHECK(held.st_size == 3);            // close-to-open: the old node keeps its size
  close(fd);
}

TEST_CASE("writes, opens and reads wait too; the waiting request does not block other inodes") {
  if (skip()) return;
  Mount mt;
  put(mt.m("a"), "aaaa");
  put(mt.m("b"), "bbbb");
  int fd = open(mt.m("a").c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  LockKey a = mt.key("a");
  txn::LockSet x = mt.locks.acquire({a}, LockMode::Exclusive);
  Call writer([&] { return static_cast<int>(pwrite(fd, "AA", 2, 0)); });
  Call opener([&] {
    int f2 = open(mt.m("a").c_str(), O_RDONLY | O_DIRECT);
    if (f2 >= 0) close(f2);
    return f2 >= 0 ? 0 : -errno;
  });
  REQUIRE(mt.wait_waiting(2));
  CHECK(!writer.finished());
  CHECK(!opener.finished());
  CHECK(get(mt.m("b")) == "bbbb");  // another inode: served while the compound runs
  x.release();
  CHECK(writer.join() == 2);
  CHECK(opener.join() == 0);
  close(fd);
  CHECK(get(mt.m("a")) == "AAaa");
}

// (One waiting name change per directory: the kernel holds the directory's
// i_rwsem while its request waits in the daemon, which would hold up any
// other kernel operation on that directory too.)
TEST_CASE("names: NameWrite operations wait for a compound's Path lock, readers of the directory do not") {
  if (skip()) return;
  Mount mt;
  REQUIRE(mkdir(mt.m("d").c_str(), 0755) == 0);
  REQUIRE(mkdir(mt.m("e").c_str(), 0755) == 0);
  put(mt.m("e/x"), "x");
  LockKey d = mt.key("d"), e = mt.key("e");
  txn::LockSet p = mt.locks.acquire({{d, LockMode::Path}, {e, LockMode::Path}});
  mt.inv->attrs(d);
  struct stat st;
  CHECK(stat(mt.m("d").c_str(), &st) == 0);  // Read on d: compatible with Path
  CHECK(list(mt.m("e")) == std::set<std::string>{".", "..", "x"});
  Call mk([&] { return mkdir(mt.m("d/sub").c_str(), 0755) == 0 ? 0 : -errno; });
  Call rn([&] { return rename(mt.m("e/x").c_str(), mt.m("e/y").c_str()) == 0 ? 0 : -errno; });
  REQUIRE(mt.wait_waiting(2));
  CHECK(!mk.finished());
  CHECK(!rn.finished());
  p.release();
  CHECK(mk.join() == 0);
  CHECK(rn.join() == 0);
  CHECK(list(mt.m("d")) == std::set<std::string>{".", "..", "sub"});
  CHECK(list(mt.m("e")) == std::set<std::string>{".", "..", "y"});
}

TEST_CASE("a lookup waits for the child a compound changes, not only for the parent") {
  if (skip()) return;
  Mount mt;
  REQUIRE(mkdir(mt.m("d").c_str(), 0755) == 0);
  put(mt.b("d/g"), "g1");  // never looked up through the mount
  LockKey d = mt.key("d"), g = mt.key("d/g");
  txn::LockSet c = mt.locks.acquire({{d, LockMode::Path}, {g, LockMode::Exclusive}});
  put(mt.b("d/g"), "g-two");
  Call look([&] { return static_cast<int>(size_of(mt.m("d/g"))); });
  REQUIRE(mt.wait_waiting(1));  // lookup(d, "g") holds Read on d and waits for g
  CHECK(!look.finished());
  c.release();
  CHECK(look.join() == 5);
}

TEST_CASE("a listing does not wait for locked children; their lookups do") {
  if (skip()) return;
  Mount mt;
  REQUIRE(mkdir(mt.m("d").c_str(), 0755) == 0);
  for (const char* n : {"p", "q", "r"}) put(mt.b(std::string("d/") + n), n);
  LockKey d = mt.key("d"), q = mt.key("d/q");
  txn::LockSet c = mt.locks.acquire({{d, LockMode::Path}, {q, LockMode::Exclusive}});
  mt.inv->attrs(d);
  // readdirplus (the kernel's choice for a first listing) with q locked:
  // q is listed by name, its attributes are not read.
  CHECK(list(mt.m("d")) == std::set<std::string>{".", "..", "p", "q", "r"});
  CHECK(size_of(mt.m("d/p")) == 1);
  Call sq([&] { return static_cast<int>(size_of(mt.m("d/q"))); });
  REQUIRE(mt.wait_waiting(1));
  CHECK(!sq.finished());
  c.release();
  CHECK(sq.join() == 1);
}

TEST_CASE("Invalidator: entry() of a name absent before is sent where a lookup answered \"no such name\"") {
  if (skip()) return;
  Mount mt;
  REQUIRE(mkdir(mt.m("d").c_str(), 0755) == 0);
  REQUIRE(mkdir(mt.m("e").c_str(), 0755) == 0);
  CHECK(size_of(mt.m("d/n")) == -ENOENT);  // d answered negatively: cached
  CHECK(size_of(mt.m("rn")) == -ENOENT);   // so did the root
  put(mt.b("d/n"), "nnn");
  put(mt.b("e/n"), "ee");
  put(mt.b("rn"), "r");
  mt.inv->entry(mt.key("d"), "n", true);  // sent: it drops the negative entry
  CHECK(size_of(mt.m("d/n")) == 3);
  mt.inv->entry(mt.key(""), "rn", true);
  CHECK(size_of(mt.m("rn")) == 1);
  mt.inv->entry(mt.key("e"), "n", true);  // e never answered so: nothing cached to drop
  CHECK(size_of(mt.m("e/n")) == 2);
}

TEST_CASE("Invalidator: entry() drops a cached negative entry, data() cached pages") {
  if (skip()) return;
  Mount mt;
  REQUIRE(mkdir(mt.m("d").c_str(), 0755) == 0);
  CHECK(size_of(mt.m("d/n")) == -ENOENT);  // cached as a negative entry
  put(mt.b("d/n"), "nnn");
  CHECK(size_of(mt.m("d/n")) == -ENOENT);  // still: the kernel was not told
  mt.inv->entry(mt.key("d"), "n", false);
  CHECK(size_of(mt.m("d/n")) == 3);
  CHECK(get(mt.m("d/n")) == "nnn");
  // Same size, new bytes: the cached pages stay until data() drops them.
  put(mt.b("d/n"), "NNN");
  CHECK(get(mt.m("d/n")) == "nnn");
  mt.inv->data(mt.key("d/n"));
  CHECK(get(mt.m("d/n")) == "NNN");
  // Objects the kernel does not know are ignored.
  mt.inv->attrs({1, 1});
  mt.inv->data({1, 1});
  mt.inv->entry({1, 1}, "x", false);
}
