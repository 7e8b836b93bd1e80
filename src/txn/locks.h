// txn/locks.h — per-inode locks shared by FUSE operations and compounds
// (DESIGN.md §5 invariant 7).
//
// Contract:
//  * A lock is named by the backing object's (st_dev, st_ino): LockKey. The
//    global lock order is ascending LockKey. acquire() takes a whole set at
//    once, in that order, and blocks until every lock is granted; a LockSet
//    releases them on destruction (or release()).
//  * Four modes and their compatibility (✓ = may be held together):
//             Read  NameWrite  Path  Exclusive
//      Read     ✓       ✓        ✓       -       Read: a FUSE operation on the inode
//      NameW    ✓       ✓        -       -       NameWrite: a FUSE op that changes names in a directory
//      Path     ✓       -        ✓       -       Path: a compound resolves a path through the directory
//      Excl     -       -        -       -       Exclusive: a compound changes the inode
//    FUSE operations never block each other; a compound blocks the FUSE
//    operations on what it changes, and renames/creates/unlinks in the
//    directories its paths pass through, until it has committed or undone.
//  * Waiting Exclusive and Path requests block newcomers on that key that
//    conflict with them (so compounds are not starved by streams of FUSE
//    operations). No deadlock: every blocking request is taken in ascending
//    key order, so a request waiting on key k holds only keys below k. What
//    it waits for is either a holder of k, which (having k) can only be
//    waiting on a key above k, or a waiter on k of a stronger mode
//    (Read/NameWrite wait for waiting Path/Exclusive, Path for waiting
//    Exclusive, Exclusive for holders only), and that chain ends at a holder
//    of k after at most two steps. So every wait-for chain climbs the key
//    order and cannot close a cycle. The preference adds edges only
//    between waiters on the same key, in that fixed mode order; a lock
//    taken out of order by fuse_try() belongs to an operation that waits
//    for nothing more, so it ends every chain it is part of.
//  * Fast path: while no compound holds or waits for any lock, FUSE
//    operations take no lock at all (fuse_enter()/FuseGuard): a compound
//    first announces itself and waits until the FUSE operations already past
//    the fast-path check have finished, so none of them can overlap it.
//    That wait cannot deadlock: the announcing compound holds no lock yet,
//    and a fast-path operation waits for no lock. (acquire() and
//    try_acquire() both make that wait; try_acquire() never waits for a
//    lock.) A FUSE operation then costs two atomic operations on one
//    counter and no allocation; while compounds run it takes real locks,
//    still without allocating a LockSet (FuseGuard holds at most two).
//  * fuse_try() is for a FUSE operation that already holds its locks (slow
//    path) and needs one more out of order (a child found by a lookup): it
//    never waits, so the order does not matter, and the operation must not
//    wait for any other lock while it holds the result.
//  * freeze() stops the world for the sync layer's point-in-time capture
//    (sync/sync.h): it announces itself like a compound (so FUSE operations
//    leave the fast path), waits until no compound holds locks and no FUSE
//    operation holds slow-path locks, and keeps new ones out until the
//    Freeze is destroyed. Compounds and slow-path FUSE operations enter the
//    "world" before their first lock and leave it after their last, and a
//    waiting freeze keeps newcomers out (no starvation). No deadlock: a
//    request blocked at the world gate holds no lock, and everything inside
//    the world never waits for the gate again (fuse_try() does not enter).
//  * Memory: a key has an entry only while it is held or waited for.
//
// Locks: each shard's mutex protects its map; no other lock is taken while
// holding one, and none is held across a wait except through the shard's
// condition variable. Callers may hold their own mutexes around fuse_try()
// (it only takes a shard mutex briefly) but not around a blocking call.
//
// Thread-safety: all members may be called from any thread; a LockSet or
// FuseGuard belongs to one thread at a time (move it to hand it over).
#pragma once

#include <array>
#include <atomic>
#include <compare>
#include <condition_variable>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "util/mutex.h"

namespace tcfs::txn {

struct LockKey {
  uint64_t dev = 0, ino = 0;
  auto operator<=>(const LockKey&) const = default;
};

struct LockKeyHash {
  size_t operator()(const LockKey& k) const { return std::hash<uint64_t>()(k.ino * 0x9e3779b97f4a7c15ull ^ k.dev); }
};

enum class LockMode : uint8_t { Read, NameWrite, Path, Exclusive };

class LockManager;

class LockSet {
 public:
  LockSet() = default;
  LockSet(LockSet&& o) noexcept
      : m_(std::exchange(o.m_, nullptr)), compound_(o.compound_), held_(std::exchange(o.held_, {})) {}
  LockSet& operator=(LockSet&& o) noexcept;
  ~LockSet() { release(); }
  void release();
  size_t size() const { return held_.size(); }

 private:
  friend class LockManager;
  LockManager* m_ = nullptr;
  bool compound_ = false;  // counted in LockManager::compounds_ and inside the world
  std::vector<std::pair<LockKey, LockMode>> held_;
};

// Held while the world is frozen (see freeze()).
class Freeze {
 public:
  Freeze() = default;
  Freeze(Freeze&& o) noexcept : m_(std::exchange(o.m_, nullptr)) {}
  Freeze& operator=(Freeze&&) = delete;
  ~Freeze() { release(); }
  void release();

 private:
  friend class LockManager;
  LockManager* m_ = nullptr;
};

// Held by a FUSE operation for its whole duration: either nothing (fast
// path: the operation is counted, so no compound can start) or its locks.
class FuseGuard {
 public:
  static constexpr size_t kMax = 2;  // keys a FUSE operation locks at once

  FuseGuard() = default;
  FuseGuard(FuseGuard&& o) noexcept { take(o); }
  FuseGuard& operator=(FuseGuard&& o) noexcept;
  ~FuseGuard() { release(); }
  void release();
  // True while real locks are held (a compound ran or waited when the
  // operation began, or fuse_try() succeeded); false on the fast path and
  // after release() or a failed fuse_try().
  bool locked() const { return n_ > 0; }

 private:
  friend class LockManager;
  void take(FuseGuard& o);
  LockManager* counted_ = nullptr;  // set while counted in LockManager::fast_
  LockManager* m_ = nullptr;        // owner of held_[0, n_)
  bool world_ = false;              // inside m_'s world (a slow-path fuse_enter)
  uint8_t n_ = 0;
  std::array<std::pair<LockKey, LockMode>, kMax> held_{};
};

class LockManager {
 public:
  LockManager();  // makes its metric (tcfs_lock_wait_seconds), shown from the start
  LockManager(const LockManager&) = delete;
  LockManager& operator=(const LockManager&) = delete;

  // Compounds: blocks until every (key, mode) is granted. A key listed with
  // two modes gets the stronger (two different weak modes make Exclusive).
  LockSet acquire(std::vector<std::pair<LockKey, LockMode>> want);
  LockSet acquire(const std::vector<LockKey>& keys, LockMode mode);
  // Non-blocking: nullopt (holding nothing) if any lock is unavailable.
  // (It does wait for FUSE operations already on the fast path; see above.)
  std::optional<LockSet> try_acquire(std::vector<std::pair<LockKey, LockMode>> want);

  // FUSE operations: at most FuseGuard::kMax keys (more abort), Read or
  // NameWrite; a key listed twice gets the stronger mode. Blocks while a
  // compound holds, or waits for, a conflicting lock on one of them.
  FuseGuard fuse_enter(std::initializer_list<std::pair<LockKey, LockMode>> want);
  // One more lock for an operation whose guard is locked(): granted now or
  // not at all (an unlocked guard). Never waits, so any order is safe.
  FuseGuard fuse_try(const LockKey& k, LockMode m);

  // Stops the world (see the contract): returns once no compound and no
  // slow-path FUSE operation is inside; none enters until the Freeze goes.
  Freeze freeze();

  // For tests: keys with an entry (held or waited for), and waiting requests.
  size_t entries();
  size_t waiting();

 private:
  friend class LockSet;
  friend class FuseGuard;
  friend class Freeze;
  struct Entry {
    uint32_t read = 0, namew = 0, path = 0;
    bool excl = false;
    uint32_t wait_excl = 0, wait_path = 0;
    uint32_t waiters = 0;  // requests of any mode waiting on this key (keeps the entry alive)
    bool empty() const { return !read && !namew && !path && !excl && !waiters; }
  };
  struct Shard {
    Mutex mu;  // a leaf: protects map
    std::condition_variable cv;
    std::unordered_map<LockKey, Entry, LockKeyHash> map TCFS_GUARDED_BY(mu);
  };
  static constexpr size_t kShards = 64;

  Shard& shard(const LockKey& k) { return shards_[LockKeyHash()(k) % kShards]; }
  static bool grantable(const Entry& e, LockMode m);
  void lock_one(const LockKey& k, LockMode m);
  bool try_one(const LockKey& k, LockMode m);
  void unlock_one(const LockKey& k, LockMode m);
  static LockMode combine(LockMode a, LockMode b);
  static std::vector<std::pair<LockKey, LockMode>> normalize(std::vector<std::pair<LockKey, LockMode>> want);
  LockSet begin_set();
  void compound_begin();
  void compound_end();
  void world_enter();
  void world_leave();
  void unfreeze();

  std::array<Shard, kShards> shards_;
  // Fast path (see the contract): compounds_ counts compounds holding or
  // acquiring locks; fast_ counts FUSE operations past the fast-path check.
  std::atomic<uint64_t> compounds_{0};
  std::atomic<uint64_t> fast_{0};
  std::atomic<uint64_t> waiting_{0};
  // The world gate: world_mu_ protects the three counters; world_cv_ wakes
  // freezers and gated requests. A leaf: no other lock is taken under it.
  Mutex world_mu_;
  std::condition_variable world_cv_;
  uint64_t world_users_ TCFS_GUARDED_BY(world_mu_) = 0;  // compounds and slow-path FUSE operations inside
  uint32_t freezers_waiting_ TCFS_GUARDED_BY(world_mu_) = 0;
  bool frozen_ TCFS_GUARDED_BY(world_mu_) = false;
};

}  // namespace tcfs::txn
