#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
// Unit tests for the lock manager: the compatibility matrix, ordering and
// freedom from deadlock under random contention, writer preference, the
// FUSE fast path, and memory returned when locks are released.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <set>
#include <thread>
#include <type_traits>
#include <vector>

#include "txn/locks.h"

using namespace tcfs::txn;
using namespace std::chrono_literals;

namespace {

const LockKey A{1, 10}, B{1, 20}, C{2, 5};

// True if `second` can be granted while `first` is held.
bool compatible(LockMode first, LockMode second) {
  LockManager m;
  LockSet held = m.acquire({{A, first}});
  auto other = m.try_acquire({{A, second}});
  return other.has_value();
}

// Waits (bounded) until m has `n` waiting requests.
bool wait_for_waiters(LockManager& m, size_t n) {
  for (int i = 0; i < 2000 && m.waiting() < n; ++i) std::this_thread::sleep_for(1ms);
  return m.waiting() >= n;
}

}  // namespace

TEST_CASE("compatibility matrix") {
  using M = LockMode;
  CHECK(compatible(M::Read, M::Read));
  CHECK(compatible(M::Read, M::NameWrite));
  CHECK(compatible(M::Read, M::Path));
  CHECK(!compatible(M::Read, M::Exclusive));
  CHECK(compatible(M::NameWrite, M::NameWrite));
  CHECK(!compatible(M::NameWrite, M::Path));
  CHECK(!compatible(M::NameWrite, M::Exclusive));
  CHECK(compatible(M::Path, M::Path));
  CHECK(!compatible(M::Path, M::NameWrite));
  CHECK(!compatible(M::Path, M::Exclusive));
  for (M m : {M::Read, M::NameWrite, M::Path, M::Exclusive}) CHECK(!compatible(M::Exclusive, m));
}

TEST_CASE("a key asked for twice gets the stronger mode") {
  LockManager m;
  LockSet s = m.acquire({{A, LockMode::NameWrite}, {A, LockMode::Path}});
  CHECK(s.size() == 1);
  CHECK(!m.try_acquire({{A, LockMode::Read}}).has_value());  // NameWrite + Path = Exclusive
}

TEST_CASE("an Exclusive request blocks until readers leave, and then excludes them") {
  LockManager m;
  auto reader = m.acquire({{A, LockMode::Read}});
  std::atomic<bool> got{false};
  std::thread t([&] {
    LockSet x = m.acquire({{A, LockMode::Exclusive}, {B, LockMode::Exclusive}});
    got = true;
    std::this_thread::sleep_for(20ms);
  });
  REQUIRE(wait_for_waiters(m, 1));
  CHECK(!got);
  // Writer preference: a new Read waits behind the waiting Exclusive.
  CHECK(!m.try_acquire({{A, LockMode::Read}}).has_value());
  reader.release();
  t.join();
  CHECK(got);
  CHECK(m.entries() == 0);
}

TEST_CASE("FUSE operations take no lock while no compound runs, and wait for one that does") {
  LockManager m;
  {
    FuseGuard g = m.fuse_enter({{A, LockMode::NameWrite}});
    CHECK(m.entries() == 0);  // fast path
  }
  LockSet x = m.acquire({{A, LockMode::Exclusive}});
  std::atomic<bool> in{false};
  std::thread t([&] {
    FuseGuard g = m.fuse_enter({{A, LockMode::Read}});
    in = true;
  });
  REQUIRE(wait_for_waiters(m, 1));
  CHECK(!in);
  x.release();
  t.join();
  CHECK(in);
}

TEST_CASE("a compound waits for FUSE operations already on the fast path") {
  LockManager m;
  std::atomic<bool> compound_in{false};
  auto g = std::make_unique<FuseGuard>(m.fuse_enter({{A, LockMode::Read}}));
  std::thread t([&] {
    LockSet x = m.acquire({{C, LockMode::Exclusive}});  // even on another key
    compound_in = true;
  });
  std::this_thread::sleep_for(50ms);
  CHECK(!compound_in);
  g.reset();
  t.join();
  CHECK(compound_in);
}

TEST_CASE("LockKey: the global order is (dev, ino); equal keys hash alike") {
  CHECK(LockKey{1, 99} < LockKey{2, 0});
  CHECK(LockKey{1, 5} < LockKey{1, 6});
  CHECK(LockKey{3, 4} == LockKey{3, 4});
  CHECK(LockKeyHash()(LockKey{3, 4}) == LockKeyHash()(LockKey{3, 4}));
}

TEST_CASE("LockSet and FuseGuard are move-only RAII handles") {
  static_assert(!std::is_copy_constructible_v<LockSet> && !std::is_copy_assignable_v<LockSet>);
  static_assert(std::is_nothrow_move_constructible_v<LockSet> && std::is_nothrow_move_assignable_v<LockSet>);
  static_assert(!std::is_copy_constructible_v<FuseGuard> && !std::is_copy_assignable_v<FuseGuard>);
  static_assert(std::is_nothrow_move_constructible_v<FuseGuard> && std::is_nothrow_move_assignable_v<FuseGuard>);
  LockManager m;
  {
    LockSet a = m.acquire({A, B}, LockMode::Exclusive);
    CHECK(a.size() == 2);
    LockSet b(std::move(a));
    CHECK(a.size() == 0);  // NOLINT: moved-from is empty and releases nothing
    a.release();
    CHECK(!m.try_acquire({{A, LockMode::Read}}).has_value());
    LockSet c;
    c = std::move(b);
    CHECK(m.entries() == 2);
    c = m.acquire({C}, LockMode::Exclusive);  // assignment releases what c held
    CHECK(m.entries() == 1);
    CHECK(m.try_acquire({{A, LockMode::Exclusive}}).has_value());
  }
  CHECK(m.entries() == 0);
  // FuseGuard: the slow path (a compound runs elsewhere) holds real locks.
  LockSet other = m.acquire({C}, LockMode::Exclusive);
  {
    FuseGuard g = m.fuse_enter({{B, LockMode::Read}, {A, LockMode::NameWrite}});
    CHECK(g.locked());
    FuseGuard h(std::move(g));
    CHECK(!g.locked());  // NOLINT
    CHECK(h.locked());
    CHECK(m.entries() == 3);
    g = std::move(h);
    CHECK(m.entries() == 3);
    g.release();
    CHECK(!g.locked());
    CHECK(m.entries() == 1);
  }
  other.release();
  CHECK(m.entries() == 0);
}

TEST_CASE("acquire sorts and merges its keys; try_acquire holds nothing when it fails") {
  LockManager m;
  LockSet s = m.acquire({{C, LockMode::Read}, {A, LockMode::Path}, {C, LockMode::Exclusive}, {B, LockMode::Read}});
  CHECK(s.size() == 3);
  CHECK(m.entries() == 3);
  auto t = m.try_acquire({{LockKey{9, 9}, LockMode::Exclusive}, {C, LockMode::Read}});
  CHECK(!t.has_value());
  CHECK(m.entries() == 3);  // {9, 9} was taken first (sorted) and given back
  s.release();
  CHECK(m.entries() == 0);
}

TEST_CASE("opposite orders in the request lists cannot deadlock") {
  LockManager m;
  std::atomic<int> inside{0}, bad{0};
  auto worker = [&](std::vector<LockKey> keys) {
    for (int i = 0; i < 2000; ++i) {
      LockSet s = m.acquire(keys, LockMode::Exclusive);
      if (inside.fetch_add(1) != 0) ++bad;
      inside.fetch_sub(1);
    }
  };
  std::thread t1(worker, std::vector<LockKey>{A, B, C});
  std::thread t2(worker, std::vector<LockKey>{C, B, A});
  std::thread t3(worker, std::vector<LockKey>{B, C, A});
  t1.join();
  t2.join();
  t3.join();
  CHECK(bad == 0);
  CHECK(m.entries() == 0);
}

TEST_CASE("fuse_try: granted now or not at all, never waits") {
  LockManager m;
  LockSet x = m.acquire({{A, LockMode::Exclusive}});
  FuseGuard no = m.fuse_try(A, LockMode::Read);
  CHECK(!no.locked());
  FuseGuard yes = m.fuse_try(B, LockMode::Read);
  CHECK(yes.locked());
  CHECK(m.entries() == 2);
  yes.release();
  x.release();
  // A waiting Exclusive request makes fuse_try fail too (writer preference).
  FuseGuard r = m.fuse_try(A, LockMode::Read);
  REQUIRE(r.locked());
  std::thread t([&] { LockSet e = m.acquire({{A, LockMode::Exclusive}}); });
  REQUIRE(wait_for_waiters(m, 1));
  CHECK(!m.fuse_try(A, LockMode::Read).locked());
  r.release();
  t.join();
  CHECK(m.entries() == 0);
}

TEST_CASE("writer preference: a compound gets its lock under a steady stream of FUSE readers") {
  LockManager m;
  LockSet hold = m.acquire({{C, LockMode::Exclusive}});  // keeps FUSE operations on the slow path
  std::atomic<bool> stop{false}, got{false};
  std::vector<std::thread> readers;
  for (int i = 0; i < 4; ++i) {
    readers.emplace_back([&] {
      while (!stop) {  // overlapping holders: A is never free of readers by itself
        FuseGuard g = m.fuse_enter({{A, LockMode::Read}});
        std::this_thread::sleep_for(200us);
      }
    });
  }
  std::this_thread::sleep_for(20ms);
  std::thread writer([&] {
    LockSet x = m.acquire({{A, LockMode::Exclusive}});
    got = true;
  });
  for (int i = 0; i < 10000 && !got; ++i) std::this_thread::sleep_for(1ms);
  CHECK(got);
  stop = true;
  writer.join();
  for (auto& r : readers) r.join();
  hold.release();
  CHECK(m.entries() == 0);
}

TEST_CASE("memory: entries exist only while keys are held or waited for") {
  LockManager m;
  for (uint64_t i = 0; i < 10000; ++i) {
    LockSet s = m.acquire({LockKey{7, i}, LockKey{8, i}}, LockMode::Exclusive);
    CHECK(m.entries() == 2);
  }
  CHECK(m.entries() == 0);
  CHECK(m.waiting() == 0);
}

TEST_CASE("random contention: no deadlock, mutual exclusion holds, memory is returned") {
  LockManager m;
  constexpr int kKeys = 12, kThreads = 8, kRounds = 3000;
  std::vector<std::atomic<int>> excl(kKeys), shared(kKeys);
  std::atomic<int> violations{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t) * 7919u + 1);
      for (int r = 0; r < kRounds; ++r) {
        int n = 1 + static_cast<int>(rng() % 4);
        bool fuse = rng() % 2;
        std::vector<std::pair<LockKey, LockMode>> want;
        for (int i = 0; i < n; ++i) {
          LockMode mode = fuse ? (rng() % 2 ? LockMode::Read : LockMode::NameWrite)
                               : (rng() % 3 ? LockMode::Exclusive : LockMode::Path);
          want.push_back({LockKey{1, rng() % kKeys}, mode});
        }
        if (fuse) {
          // At most two keys, as FUSE operations use.
          auto g = m.fuse_enter({want[0], want.size() > 1 ? want[1] : want[0]});
          for (size_t i = 0; i < std::min<size_t>(2, want.size()); ++i)
            if (excl[want[i].first.ino] > 0) ++violations;
          if (g.locked()) {  // a lookup's out-of-order child lock
            LockKey k{1, rng() % kKeys};
            FuseGuard child = m.fuse_try(k, LockMode::Read);
            if (child.locked() && excl[k.ino] > 0) ++violations;
          }
        } else {
          LockSet s = m.acquire(want);
          std::set<uint64_t> mine;
          for (const auto& [k, mode] : want)
            if (mode == LockMode::Exclusive) mine.insert(k.ino);
          for (uint64_t k : mine)
            if (excl[k].fetch_add(1) != 0) ++violations;
          std::this_thread::yield();
          for (uint64_t k : mine) excl[k].fetch_sub(1);
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  CHECK(violations == 0);
  CHECK(m.entries() == 0);
  CHECK(m.waiting() == 0);
}

TEST_CASE("freeze: waits for compounds and FUSE operations inside, keeps new ones out until released") {
  LockManager m;
  // A compound holds a lock: the freeze waits for it.
  auto held = std::make_unique<LockSet>(m.acquire({{A, LockMode::Exclusive}}));
  std::atomic<bool> frozen{false};
  std::thread freezer([&] {
    Freeze f = m.freeze();
    frozen = true;
    // While frozen, neither a compound nor a slow-path FUSE operation gets in.
    std::atomic<bool> compound_in{false}, fuse_in{false};
    std::thread c([&] {
      LockSet s = m.acquire({{B, LockMode::Exclusive}});
      compound_in = true;
    });
    std::thread u([&] {
      FuseGuard g = m.fuse_enter({{C, LockMode::Read}});
      fuse_in = true;
    });
    std::this_thread::sleep_for(50ms);
    CHECK(!compound_in);
    CHECK(!fuse_in);
    f.release();
    c.join();
    u.join();
    CHECK(compound_in);
    CHECK(fuse_in);
  });
  std::this_thread::sleep_for(50ms);
  CHECK(!frozen);
  held.reset();
  freezer.join();
  CHECK(frozen);
  // A FUSE operation on the fast path is waited for too.
  FuseGuard fast = m.fuse_enter({{A, LockMode::Read}});
  CHECK(!fast.locked());
  std::atomic<bool> got{false};
  std::thread f2([&] {
    Freeze f = m.freeze();
    got = true;
  });
  std::this_thread::sleep_for(50ms);
  CHECK(!got);
  fast.release();
  f2.join();
  CHECK(got);
  // Afterwards the fast path is back.
  CHECK(!m.fuse_enter({{A, LockMode::Read}}).locked());
  CHECK(m.entries() == 0);
}
