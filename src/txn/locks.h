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
//    operations). No deadlock: a request waiting on key k holds only keys
//    below k, and anything it waits for (a holder, or an earlier waiter that
//    waits for holders) holds or waits on keys >= k, so every wait-for
//    chain climbs the key order and cannot close a cycle.
//  * Fast path: while no compound holds or waits for any lock, FUSE
//    operations take no lock at all (fuse_enter()/FuseGuard): a compound
//    first announces itself and waits until the FUSE operations already past
//    the fast-path check have finished, so none of them can overlap it.
//
// Locks: each shard's mutex protects its map; no other lock is taken while
// holding one, and none is held across a wait except through the shard's
// condition variable.
//
// Thread-safety: all members may be called from any thread.
#pragma once

#include <array>
#include <atomic>
#include <compare>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

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
      : m_(std::exchange(o.m_, nullptr)), compound_(o.compound_), held_(std::move(o.held_)) {}
  LockSet& operator=(LockSet&& o) noexcept;
  ~LockSet() { release(); }
  void release();
  size_t size() const { return held_.size(); }

 private:
  friend class LockManager;
  LockManager* m_ = nullptr;
  bool compound_ = false;  // counted in LockManager::compounds_
  std::vector<std::pair<LockKey, LockMode>> held_;
};

// Held by a FUSE operation for its whole duration: either nothing (fast
// path) or its locks.
class FuseGuard {
 public:
  FuseGuard() = default;
  FuseGuard(FuseGuard&& o) noexcept : m_(std::exchange(o.m_, nullptr)), locks_(std::move(o.locks_)) {}
  FuseGuard& operator=(FuseGuard&&) = delete;
  ~FuseGuard();

 private:
  friend class LockManager;
  LockManager* m_ = nullptr;  // set while on the fast path
  LockSet locks_;
};

class LockManager {
 public:
  LockManager() = default;
  LockManager(const LockManager&) = delete;
  LockManager& operator=(const LockManager&) = delete;

  // Compounds: blocks until every (key, mode) is granted. A key listed with
  // two modes gets the stronger (two different weak modes make Exclusive).
  LockSet acquire(std::vector<std::pair<LockKey, LockMode>> want);
  LockSet acquire(const std::vector<LockKey>& keys, LockMode mode);
  // Non-blocking: nullopt (holding nothing) if any lock is unavailable.
  std::optional<LockSet> try_acquire(std::vector<std::pair<LockKey, LockMode>> want);

  // FUSE operations: up to a few keys, Read or NameWrite.
  FuseGuard fuse_enter(std::initializer_list<std::pair<LockKey, LockMode>> want);

  // For tests: keys with an entry (held or waited for), and waiting requests.
  size_t entries();
  size_t waiting();

 private:
  friend class LockSet;
  friend class FuseGuard;
  struct Entry {
    uint32_t read = 0, namew = 0, path = 0;
    bool excl = false;
    uint32_t wait_excl = 0, wait_path = 0;
    uint32_t waiters = 0;  // requests of any mode waiting on this key (keeps the entry alive)
    bool empty() const { return !read && !namew && !path && !excl && !waiters; }
  };
  struct Shard {
    std::mutex mu;
    std::condition_variable cv;
    std::unordered_map<LockKey, Entry, LockKeyHash> map;
  };
  static constexpr size_t kShards = 64;

  Shard& shard(const LockKey& k) { return shards_[LockKeyHash()(k) % kShards]; }
  static bool grantable(const Entry& e, LockMode m);
  void lock_one(const LockKey& k, LockMode m);
  bool try_one(const LockKey& k, LockMode m);
  void unlock_one(const LockKey& k, LockMode m);
  static std::vector<std::pair<LockKey, LockMode>> normalize(std::vector<std::pair<LockKey, LockMode>> want);
  void compound_begin();
  void compound_end();

  std::array<Shard, kShards> shards_;
  // Fast path (see the contract): compounds_ counts compounds holding or
  // acquiring locks; fast_ counts FUSE operations past the fast-path check.
  std::atomic<uint64_t> compounds_{0};
  std::atomic<uint64_t> fast_{0};
  std::atomic<uint64_t> waiting_{0};
};

}  // namespace tcfs::txn
