// util/mutex.h — a mutex and its lock holders that clang's thread-safety
// analysis understands (util/thread_annotations.h).
//
// Contract:
//  * Mutex is std::mutex with the capability attributes: lock(), unlock(),
//    try_lock() behave exactly as std::mutex's. Members it protects say
//    TCFS_GUARDED_BY(mu_); functions that need it held say TCFS_REQUIRES(mu_).
//  * MutexLock is std::lock_guard: it holds the mutex from construction to
//    the end of its scope. MutexLock(mu, std::adopt_lock) takes over a lock
//    the caller already holds (after mu.try_lock() succeeded).
//  * UniqueLock is std::unique_lock<std::mutex>: held from construction,
//    may be dropped and taken again (unlock(), lock()), released at the end
//    of its scope if held. Its wait*() are std::condition_variable's waits
//    with a predicate: the lock is dropped while waiting and held again
//    whenever the predicate runs and when they return. A predicate that
//    reads guarded members says so: [&]() TCFS_REQUIRES(mu_) { ... } (the
//    analysis checks each lambda as a function of its own).
//  * None of these is copyable or movable; a lock belongs to one scope.
//
// Thread-safety: a Mutex is shared by the threads it serializes; a
// MutexLock or UniqueLock is used only by the thread that made it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "util/thread_annotations.h"

namespace tcfs {

class TCFS_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() TCFS_ACQUIRE() { mu_.lock(); }
  void unlock() TCFS_RELEASE() { mu_.unlock(); }
  bool try_lock() TCFS_TRY_ACQUIRE(true) { return mu_.try_lock(); }

 private:
  friend class UniqueLock;
  std::mutex mu_;
};

class TCFS_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) TCFS_ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  MutexLock(Mutex& mu, std::adopt_lock_t) TCFS_REQUIRES(mu) : mu_(mu) {}
  ~MutexLock() TCFS_RELEASE() { mu_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mu_;
};

class TCFS_SCOPED_CAPABILITY UniqueLock {
 public:
  explicit UniqueLock(Mutex& mu) TCFS_ACQUIRE(mu) : lk_(mu.mu_) {}
  ~UniqueLock() TCFS_RELEASE() {}  // lk_ unlocks if it holds the mutex
  UniqueLock(const UniqueLock&) = delete;
  UniqueLock& operator=(const UniqueLock&) = delete;

  void lock() TCFS_ACQUIRE() { lk_.lock(); }
  void unlock() TCFS_RELEASE() { lk_.unlock(); }

  template <class Pred>
  void wait(std::condition_variable& cv, Pred pred) {
    cv.wait(lk_, std::move(pred));
  }
  template <class Rep, class Period, class Pred>
  bool wait_for(std::condition_variable& cv, const std::chrono::duration<Rep, Period>& d, Pred pred) {
    return cv.wait_for(lk_, d, std::move(pred));
  }
  template <class Clock, class Dur, class Pred>
  bool wait_until(std::condition_variable& cv, const std::chrono::time_point<Clock, Dur>& t, Pred pred) {
    return cv.wait_until(lk_, t, std::move(pred));
  }

 private:
  std::unique_lock<std::mutex> lk_;
};

}  // namespace tcfs
