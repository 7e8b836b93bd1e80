// txn/locks.cpp — the lock manager (see locks.h for modes and ordering).
#include "txn/locks.h"

#include <algorithm>
#include <cstdlib>
#include <thread>
#include <chrono>

#include "util/metrics.h"

namespace tcfs::txn {

LockSet& LockSet::operator=(LockSet&& o) noexcept {
  if (this != &o) {
    release();
    m_ = std::exchange(o.m_, nullptr);
    compound_ = o.compound_;
    held_ = std::exchange(o.held_, {});
  }
  return *this;
}

void LockSet::release() {
  if (!m_) return;
  // Reverse order: not needed for correctness, but keeps waiters on high
  // keys (which hold the low ones) moving first.
  for (auto it = held_.rbegin(); it != held_.rend(); ++it) m_->unlock_one(it->first, it->second);
  held_.clear();
  if (compound_) {
    m_->world_leave();
    m_->compound_end();
  }
  m_ = nullptr;
}

void Freeze::release() {
  if (m_) std::exchange(m_, nullptr)->unfreeze();
}

void FuseGuard::take(FuseGuard& o) {
  counted_ = std::exchange(o.counted_, nullptr);
  m_ = std::exchange(o.m_, nullptr);
  world_ = std::exchange(o.world_, false);
  n_ = std::exchange(o.n_, 0);
  held_ = o.held_;
}

FuseGuard& FuseGuard::operator=(FuseGuard&& o) noexcept {
  if (this != &o) {
    release();
    take(o);
  }
  return *this;
}

void FuseGuard::release() {
  if (counted_) std::exchange(counted_, nullptr)->fast_.fetch_sub(1, std::memory_order_seq_cst);
  for (; n_ > 0; --n_) m_->unlock_one(held_[n_ - 1].first, held_[n_ - 1].second);
  if (world_) m_->world_leave();
  world_ = false;
  m_ = nullptr;
}

bool LockManager::grantable(const Entry& e, LockMode m) {
  if (e.excl) return false;
  switch (m) {
    case LockMode::Read: return e.wait_excl == 0;
    case LockMode::NameWrite: return e.path == 0 && e.wait_excl == 0 && e.wait_path == 0;
    case LockMode::Path: return e.namew == 0 && e.wait_excl == 0;
    case LockMode::Exclusive: return e.read == 0 && e.namew == 0 && e.path == 0;
  }
  return false;
}

// Waits for a lock (metrics, issue 15): observed under the shard's mutex;
// the histogram's own mutex is a leaf (util/metrics.h 2).
static prometheus::Histogram& lock_waits() {
  static prometheus::Histogram& h = metrics::latency(
      "tcfs_lock_wait_seconds",
      "Waits for a lock another compound or FUSE request held, with their length (_count: the number of waits).", {});
  return h;
}

LockManager::LockManager() { (void)lock_waits(); }

void LockManager::lock_one(const LockKey& k, LockMode m) {
  Shard& s = shard(k);
  UniqueLock g(s.mu);
  Entry& e = s.map[k];
  if (!grantable(e, m)) {
    const auto t0 = std::chrono::steady_clock::now();
    waiting_.fetch_add(1);
    ++e.waiters;
    // A waiter counts itself only while waiting, so its own preference
    // flag does not block it.
    uint32_t* flag = m == LockMode::Exclusive ? &e.wait_excl : m == LockMode::Path ? &e.wait_path : nullptr;
    if (flag) ++*flag;
    g.wait(s.cv, [&] {
      if (flag) --*flag;
      bool ok = grantable(e, m);
      if (flag && !ok) ++*flag;
      return ok;
    });
    --e.waiters;
    waiting_.fetch_sub(1);
    lock_waits().Observe(metrics::since(t0));
  }
  switch (m) {
    case LockMode::Read: ++e.read; break;
    case LockMode::NameWrite: ++e.namew; break;
    case LockMode::Path: ++e.path; break;
    case LockMode::Exclusive: e.excl = true; break;
  }
}

bool LockManager::try_one(const LockKey& k, LockMode m) {
  Shard& s = shard(k);
  MutexLock g(s.mu);
  Entry& e = s.map[k];
  if (!grantable(e, m)) {
    if (e.empty()) s.map.erase(k);
    return false;
  }
  switch (m) {
    case LockMode::Read: ++e.read; break;
    case LockMode::NameWrite: ++e.namew; break;
    case LockMode::Path: ++e.path; break;
    case LockMode::Exclusive: e.excl = true; break;
  }
  return true;
}

void LockManager::unlock_one(const LockKey& k, LockMode m) {
  Shard& s = shard(k);
  {
    MutexLock g(s.mu);
    auto it = s.map.find(k);
    if (it == s.map.end()) return;
    Entry& e = it->second;
    switch (m) {
      case LockMode::Read: --e.read; break;
      case LockMode::NameWrite: --e.namew; break;
      case LockMode::Path: --e.path; break;
      case LockMode::Exclusive: e.excl = false; break;
    }
    if (e.empty()) s.map.erase(it);
  }
  s.cv.notify_all();
}

// Read adds nothing to a stronger mode; NameWrite + Path = Exclusive.
LockMode LockManager::combine(LockMode a, LockMode b) {
  LockMode hi = std::max(a, b), lo = std::min(a, b);
  return lo == LockMode::Read || hi == lo ? hi : LockMode::Exclusive;
}

std::vector<std::pair<LockKey, LockMode>> LockManager::normalize(std::vector<std::pair<LockKey, LockMode>> want) {
  std::sort(want.begin(), want.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::pair<LockKey, LockMode>> out;
  for (const auto& [k, m] : want) {
    if (!out.empty() && out.back().first == k) {
      out.back().second = combine(out.back().second, m);
      continue;
    }
    out.emplace_back(k, m);
  }
  return out;
}

// A compound announces itself, then waits out the FUSE operations that
// took the fast path before it did (they hold no lock it could wait on).
void LockManager::compound_begin() {
  compounds_.fetch_add(1, std::memory_order_seq_cst);
  for (unsigned spins = 0; fast_.load(std::memory_order_seq_cst) != 0; ++spins) {
    if (spins < 1000) std::this_thread::yield();
    else std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

void LockManager::compound_end() { compounds_.fetch_sub(1, std::memory_order_seq_cst); }

void LockManager::world_enter() {
  UniqueLock g(world_mu_);
  g.wait(world_cv_, [&]() TCFS_REQUIRES(world_mu_) { return !frozen_ && freezers_waiting_ == 0; });
  ++world_users_;
}

void LockManager::world_leave() {
  MutexLock g(world_mu_);
  if (--world_users_ == 0) world_cv_.notify_all();
}

Freeze LockManager::freeze() {
  compound_begin();  // FUSE operations leave the fast path; those on it drain
  {
    UniqueLock g(world_mu_);
    ++freezers_waiting_;
    g.wait(world_cv_, [&]() TCFS_REQUIRES(world_mu_) { return world_users_ == 0 && !frozen_; });
    --freezers_waiting_;
    frozen_ = true;
  }
  Freeze f;
  f.m_ = this;
  return f;
}

void LockManager::unfreeze() {
  {
    MutexLock g(world_mu_);
    frozen_ = false;
  }
  world_cv_.notify_all();
  compound_end();
}

// A compound's empty set: counted as a compound, past the world gate.
LockSet LockManager::begin_set() {
  compound_begin();
  world_enter();
  LockSet set;
  set.m_ = this;
  set.compound_ = true;
  return set;
}

LockSet LockManager::acquire(std::vector<std::pair<LockKey, LockMode>> want) {
  LockSet set = begin_set();
  for (const auto& [k, m] : normalize(std::move(want))) {
    lock_one(k, m);
    set.held_.emplace_back(k, m);
  }
  return set;
}

LockSet LockManager::acquire(const std::vector<LockKey>& keys, LockMode mode) {
  std::vector<std::pair<LockKey, LockMode>> want;
  for (const auto& k : keys) want.emplace_back(k, mode);
  return acquire(std::move(want));
}

std::optional<LockSet> LockManager::try_acquire(std::vector<std::pair<LockKey, LockMode>> want) {
  LockSet set = begin_set();
  for (const auto& [k, m] : normalize(std::move(want))) {
    if (!try_one(k, m)) return std::nullopt;  // set's destructor releases what it has
    set.held_.emplace_back(k, m);
  }
  return set;
}

FuseGuard LockManager::fuse_enter(std::initializer_list<std::pair<LockKey, LockMode>> want) {
  FuseGuard g;
  fast_.fetch_add(1, std::memory_order_seq_cst);
  if (compounds_.load(std::memory_order_seq_cst) == 0) {
    g.counted_ = this;  // fast path: no compound can start until we leave
    return g;
  }
  fast_.fetch_sub(1, std::memory_order_seq_cst);
  // Slow path: real locks, not counted as a compound (FUSE locks never
  // block each other, so they need no announcement). Sorted and merged in
  // the guard's own array: no allocation but the shard map's entries.
  if (want.size() > FuseGuard::kMax) std::abort();
  std::array<std::pair<LockKey, LockMode>, FuseGuard::kMax> keys{};
  size_t n = 0;
  for (const auto& w : want) {
    size_t i = 0;
    while (i < n && keys[i].first < w.first) ++i;
    if (i < n && keys[i].first == w.first) {
      keys[i].second = combine(keys[i].second, w.second);
      continue;
    }
    for (size_t j = n; j > i; --j) keys[j] = keys[j - 1];
    keys[i] = w;
    ++n;
  }
  world_enter();
  g.m_ = this;
  g.world_ = true;
  for (size_t i = 0; i < n; ++i) {
    lock_one(keys[i].first, keys[i].second);
    g.held_[g.n_++] = keys[i];
  }
  return g;
}

FuseGuard LockManager::fuse_try(const LockKey& k, LockMode m) {
  FuseGuard g;
  if (!try_one(k, m)) return g;
  g.m_ = this;
  g.held_[0] = {k, m};
  g.n_ = 1;
  return g;
}

size_t LockManager::entries() {
  size_t n = 0;
  for (auto& s : shards_) {
    MutexLock g(s.mu);
    n += s.map.size();
  }
  return n;
}

size_t LockManager::waiting() { return waiting_.load(); }

}  // namespace tcfs::txn
