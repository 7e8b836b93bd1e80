// difftest/ops.h — the operations of the differential random-operation tester.
//
// An Op is a plain description decided from the seeded RNG alone (never from
// results), so the same seed always gives the same op list and any prefix of
// it can be replayed exactly on emptied trees. Executing an op on one Side
// (a directory plus a table of open fds) yields a Res that is compared with
// the other side's.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace difftest {

// splitmix64: small, fast, and its output is fully specified (unlike the
// <random> distributions), so op lists are the same on every build.
struct Rng {
  uint64_t s;
  // The seed goes through the output mix first: plain splitmix64 streams of
  // nearby seeds are shifted copies of each other.
  explicit Rng(uint64_t seed) : s(mix(seed ^ 0x632BE59BD9B4E019ull)) {}
  static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t next() {
    return mix(s += 0x9E3779B97F4A7C15ull);
  }
  uint64_t below(uint64_t n) { return n ? next() % n : 0; }
  int64_t range(int64_t lo, int64_t hi) { return lo + int64_t(below(uint64_t(hi - lo + 1))); }  // [lo, hi]
  bool chance(int pct) { return below(100) < uint64_t(pct); }
};

enum class Kind {
  Open, Close, Write, Pwrite, Read, Pread, Ftruncate, Fsync, Fdatasync, Fallocate, Lseek, Fstat,
  Fchmod, Futimens, FXattr, CopyRange, Truncate, Unlink, Mkdir, Rmdir, Rename, Link, Symlink,
  Readlink, Chmod, Utimens, Stat, Setxattr, Getxattr, Listxattr, Removexattr, Readdir, Count
};
const char* kind_name(Kind k);

struct Op {
  Kind kind = Kind::Stat;
  std::string p1, p2;     // paths relative to the tree root (p2: rename/link target, symlink target)
  int slot = 0, slot2 = 0;  // fd-table slots (copy_file_range: in, out)
  int flags = 0;          // open flags, rename flags, fallocate mode, whence, AT_* flags, xattr flags
  mode_t mode = 0;
  int64_t off = 0, off2 = 0, len = 0;
  uint64_t dseed = 0;     // seed of the data written / xattr value
  std::string xname;      // xattr name
  int sub = 0;            // op variant (getxattr buffer size class, FXattr sub-op, ...)
  int64_t ts[4] = {0, 0, 0, 0};  // utimens: atime sec/nsec, mtime sec/nsec (nsec may be UTIME_NOW/OMIT)
};

std::string describe(const Op& op);

struct GenConfig {
  int files = 12;  // number of file names f0..f{files-1}
};
std::vector<Op> generate(uint64_t seed, size_t n, const GenConfig& cfg);

// Deterministic data for writes and xattr values.
void fill_data(char* buf, size_t len, uint64_t dseed);

// Explicitly set times are drawn from [kExplicitLo, kExplicitHi); a time in
// that range is compared exactly, any other time (set by the filesystem) not.
constexpr int64_t kExplicitLo = 946684800;   // 2000-01-01
constexpr int64_t kExplicitHi = 1262304000;  // 2010-01-01

constexpr int kSlots = 6;

}  // namespace difftest
