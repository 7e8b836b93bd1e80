// fuse/metered_ops.cpp — the request-counting wrappers (metered_ops.h).
#include "fuse/metered_ops.h"

#include <array>
#include <chrono>

#include "fuse/reply.h"
#include "util/metrics.h"

namespace tcfs::fusefs {
namespace {

// Every request handler of fuse_lowlevel_ops (libfuse 3.14), by name.
#define TCFS_FUSE_REQUEST_OPS(X)                                                                                 \
  X(lookup) X(forget) X(getattr) X(setattr) X(readlink) X(mknod) X(mkdir) X(unlink) X(rmdir) X(symlink)        \
  X(rename) X(link) X(open) X(read) X(write) X(flush) X(release) X(fsync) X(opendir) X(readdir) X(releasedir) \
  X(fsyncdir) X(statfs) X(setxattr) X(getxattr) X(listxattr) X(removexattr) X(access) X(create) X(getlk)      \
  X(setlk) X(bmap) X(ioctl) X(poll) X(write_buf) X(retrieve_reply) X(forget_multi) X(flock) X(fallocate)      \
  X(readdirplus) X(copy_file_range) X(lseek)

enum Kind : unsigned {
#define TCFS_KIND(n) k_##n,
  TCFS_FUSE_REQUEST_OPS(TCFS_KIND)
#undef TCFS_KIND
  kKinds
};

constexpr std::array<const char*, kKinds> kNames = {
#define TCFS_NAME(n) #n,
    TCFS_FUSE_REQUEST_OPS(TCFS_NAME)
#undef TCFS_NAME
};

constexpr unsigned kSlots = 2;
fuse_lowlevel_ops g_inner[kSlots];                 // 2: the wrapped handlers, per table
std::array<prometheus::Histogram*, kKinds> g_hist{};  // made before any session starts (metrics.h 2)

template <unsigned S, Kind K, auto M>
struct Wrap;
template <unsigned S, Kind K, typename... A, void (*fuse_lowlevel_ops::*M)(fuse_req_t, A...)>
struct Wrap<S, K, M> {
  static void call(fuse_req_t req, A... a) {
    const auto t0 = std::chrono::steady_clock::now();
    (g_inner[S].*M)(req, a...);  // req may be gone now (replied): not touched again
    g_hist[K]->Observe(metrics::since(t0));
  }
};

// Only the kinds a table serves get a histogram (the exposition lists no
// requests the daemon never answers).
void make_hist(Kind k) {
  if (!g_hist[k])
    g_hist[k] = &metrics::latency("tcfs_fuse_request_duration_seconds",
                                  "FUSE requests by kind (op), with the time the daemon took to answer them.",
                                  {{"op", kNames[k]}});
}

template <unsigned S>
fuse_lowlevel_ops wrap_all(const fuse_lowlevel_ops& ops) {
  g_inner[S] = ops;
  fuse_lowlevel_ops o = ops;
#define TCFS_WRAP(n)                                     \
  if (ops.n) {                                           \
    make_hist(k_##n);                                    \
    o.n = &Wrap<S, k_##n, &fuse_lowlevel_ops::n>::call; \
  }
  TCFS_FUSE_REQUEST_OPS(TCFS_WRAP)
#undef TCFS_WRAP
  return o;
}

}  // namespace

fuse_lowlevel_ops metered(OpsSlot slot, const fuse_lowlevel_ops& ops) {
  init_reply_metrics();
  return slot == OpsSlot::kMount ? wrap_all<0>(ops) : wrap_all<1>(ops);
}

}  // namespace tcfs::fusefs
