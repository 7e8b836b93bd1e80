// util/parallel.h — fn(0) .. fn(n-1) at once, one thread each (fn(0) on the
// caller's), returning when all have returned. For a handful of blocking
// calls (one per blobber, a few upload workers), not for CPU work.
//
// Thread-safety: fn is called from n threads at once and must be safe so.
#pragma once

#include <cstddef>
#include <functional>

namespace tcfs {

void parallel_for(size_t n, const std::function<void(size_t)>& fn);

}  // namespace tcfs
