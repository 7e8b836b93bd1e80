// sync/tracker.h — marks of what changed since the last capture (sync.h 1).
//
// Contract: data(), attr() and name() record that an object's content, an
// object's attributes, or a directory entry (parent inode, name) changed.
// name() also marks the parent's attributes (its times change). take()
// hands over everything marked so far and starts afresh; put_back() returns
// marks of a round that failed. Marks name backing objects of the store's
// one filesystem by ObjRef (object.h: inode number and file handle), so a
// mark made for an object that is gone never applies to a new object that
// reused its inode number (sync.h 4a).
//
// Thread-safety: every member may be called from any thread; mu_ protects
// the marks and the counters and is a leaf (nothing is called under it).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "sync/object.h"
#include "util/mutex.h"

namespace tcfs::sync {

struct Marks {
  std::set<ObjRef> data, attr;
  std::set<std::pair<ObjRef, std::string>> names;
  uint64_t bytes = 0;  // bytes written or cut by the marked data changes (an upper bound)
  std::chrono::steady_clock::time_point since{};  // when the oldest mark was made
  bool empty() const { return data.empty() && attr.empty() && names.empty(); }
  size_t size() const { return data.size() + attr.size() + names.size(); }
  void merge(Marks&& o);
};

class Tracker {
 public:
  // bytes: how many bytes the change wrote or cut, when known.
  void data(const ObjRef& o, uint64_t bytes = 0);
  // Adds to the bytes of a data change already marked.
  void bytes(uint64_t n);
  void attr(const ObjRef& o);
  void name(const ObjRef& parent, std::string_view name);

  Marks take();
  void put_back(Marks m);
  // Marks now held, and when the oldest of them was made (steady clock;
  // nullopt-like zero when there are none).
  size_t pending() const;
  size_t dirty_files() const;  // objects whose content changed
  uint64_t dirty_bytes() const;  // bytes those changes wrote (an upper bound: a rewrite counts twice)
  // Whether o has a data or attribute mark (evict.h 2).
  bool marked(const ObjRef& o) const;
  std::chrono::steady_clock::time_point oldest() const;

 private:
  void touched() TCFS_REQUIRES(mu_);
  mutable Mutex mu_;
  Marks m_ TCFS_GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point oldest_ TCFS_GUARDED_BY(mu_){};
};

}  // namespace tcfs::sync
