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
