// sync/tracker.h — marks of what changed since the last capture (sync.h 1).
//
// Contract: data(), attr() and name() record that an object's content, an
// object's attributes, or a directory entry (parent inode, name) changed.
// name() also marks the parent's attributes (its times change). take()
// hands over everything marked so far and starts afresh; put_back() returns
// marks of a round that failed. Marks are backing inode numbers of the
// store's one filesystem.
//
// Thread-safety: every member may be called from any thread; mu_ protects
// the marks and the counters and is a leaf (nothing is called under it).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>

namespace tcfs::sync {

struct Marks {
  std::unordered_set<uint64_t> data, attr;
  std::set<std::pair<uint64_t, std::string>> names;
  uint64_t bytes = 0;  // bytes written or cut by the marked data changes (an upper bound)
  std::chrono::steady_clock::time_point since{};  // when the oldest mark was made
  bool empty() const { return data.empty() && attr.empty() && names.empty(); }
  size_t size() const { return data.size() + attr.size() + names.size(); }
  void merge(Marks&& o);
};

class Tracker {
 public:
  // bytes: how many bytes the change wrote or cut, when known.
  void data(uint64_t ino, uint64_t bytes = 0);
  // Adds to the bytes of a data change already marked.
  void bytes(uint64_t n);
  void attr(uint64_t ino);
  void name(uint64_t parent, std::string_view name);

  Marks take();
  void put_back(Marks m);
  // Marks now held, and when the oldest of them was made (steady clock;
  // nullopt-like zero when there are none).
  size_t pending() const;
  size_t dirty_files() const;  // objects whose content changed
  uint64_t dirty_bytes() const;  // bytes those changes wrote (an upper bound: a rewrite counts twice)
  // Whether ino has a data or attribute mark (evict.h 2).
  bool marked(uint64_t ino) const;
  std::chrono::steady_clock::time_point oldest() const;

 private:
  void touched();  // caller holds mu_
  mutable std::mutex mu_;
  Marks m_;
  std::chrono::steady_clock::time_point oldest_{};
};

}  // namespace tcfs::sync
