// difftest/ops.cpp — op generation from the seed, and op descriptions.
#include "ops.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/xattr.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace difftest {

const char* kind_name(Kind k) {
  static const char* const names[] = {
      "open",     "close",  "write",    "pwrite",   "read",      "pread",     "ftruncate",   "fsync",
      "fdatasync", "fallocate", "lseek", "fstat",   "fchmod",    "futimens",  "fxattr",      "copy_file_range",
      "truncate", "unlink", "mkdir",    "rmdir",    "rename",    "link",      "symlink",     "readlink",
      "chmod",    "utimensat", "stat",  "setxattr", "getxattr",  "listxattr", "removexattr", "readdir"};
  static_assert(sizeof(names) / sizeof(names[0]) == size_t(Kind::Count));
  return names[size_t(k)];
}

namespace {

constexpr const char* kDirNames[] = {"a", "b", "c"};

struct Gen {
  Rng rng;
  GenConfig cfg;

  std::string name(int dir_pct) {
    if (rng.chance(dir_pct)) return kDirNames[rng.below(3)];
    return "f" + std::to_string(rng.below(uint64_t(cfg.files)));
  }
  // A path of 1..3 components; inner components are mostly directory names.
  std::string path(int final_dir_pct, bool allow_dot = false, bool allow_slash = true) {
    if (allow_dot && rng.chance(2)) return ".";
    uint64_t r = rng.below(100);
    int depth = r < 45 ? 1 : r < 80 ? 2 : 3;
    std::string p;
    for (int i = 0; i < depth - 1; ++i) p += name(88) + "/";
    p += name(final_dir_pct);
    if (allow_slash && rng.chance(3)) p += "/";
    return p;
  }
  // Symlink targets are relative and never contain "..", so whatever the
  // link's place, resolution stays inside the tree.
  std::string target() {
    uint64_t r = rng.below(100);
    if (r < 3) return "";
    if (r < 8) return ".";
    std::string p = path(35, false, false);
    if (r < 12) p += "/";
    return p;
  }
  int slot() { return int(rng.below(kSlots)); }
  int64_t off() {
    uint64_t r = rng.below(100);
    if (r < 10) return 0;
    if (r < 45) return rng.range(0, 65535);
    if (r < 70) return rng.range(0, 512 * 1024);
    if (r < 82) return 4096 * rng.range(0, 256);
    if (r < 94) return rng.range(0, 4 << 20);
    return rng.range(4 << 20, 16 << 20);  // far past EOF: sparse
  }
  int64_t len(int64_t max = 256 * 1024) {
    uint64_t r = rng.below(100);
    if (r < 5) return 0;
    if (r < 50) return rng.range(1, 4096);
    if (r < 60) return 4096 * rng.range(1, 16);
    if (r < 85) return rng.range(4097, 65536);
    return rng.range(65537, max);
  }
  int64_t trunc_len() {
    uint64_t r = rng.below(100);
    if (r < 15) return 0;
    if (r < 19) return -1 - int64_t(rng.below(4096));
    if (r < 55) return rng.range(0, 65535);
    if (r < 85) return rng.range(0, 512 * 1024);
    return rng.range(0, 16 << 20);
  }
  mode_t file_mode() {
    static const mode_t common[] = {0644, 0600, 0755, 0444, 0, 0666, 0700, 0640};
    uint64_t r = rng.below(100);
    if (r < 80) return common[rng.below(8)];
    if (r < 90) return mode_t(rng.below(01000));
    return mode_t(rng.below(010000));  // setuid/setgid/sticky too
  }
  mode_t dir_mode() {
    static const mode_t common[] = {0755, 0700, 0777, 0750, 01777, 02755, 0555, 0711};
    return rng.chance(85) ? common[rng.below(8)] : mode_t(rng.below(010000));
  }
  std::string xname() {
    uint64_t r = rng.below(100);
    if (r < 90) return "user.x" + std::to_string(rng.below(5));
    if (r < 95) return "user." + std::string(200, char('k' + rng.below(3)));
    if (r < 98) return "user.x" + std::to_string(rng.below(5)) + ".sub";
    return "bogus.ns";  // EOPNOTSUPP
  }
  int64_t xlen() {
    uint64_t r = rng.below(100);
    if (r < 10) return 0;
    if (r < 50) return rng.range(1, 32);
    if (r < 88) return rng.range(33, 300);
    if (r < 97) return rng.range(301, 3000);
    return rng.range(3001, 20000);
  }
  void times(Op& op) {
    for (int i = 0; i < 2; ++i) {
      uint64_t r = rng.below(100);
      op.ts[2 * i] = rng.range(kExplicitLo, kExplicitHi - 1);
      op.ts[2 * i + 1] = r < 50 ? rng.range(0, 999999999) : r < 75 ? UTIME_NOW : UTIME_OMIT;
    }
  }

  Op make() {
    // Weights: fd ops ~45 %, namespace ops ~40 %, attribute/xattr ops ~15 %.
    static const std::pair<Kind, int> weights[] = {
        {Kind::Open, 13},     {Kind::Close, 1},      {Kind::Write, 7},     {Kind::Pwrite, 8},
        {Kind::Read, 4},      {Kind::Pread, 5},      {Kind::Ftruncate, 3}, {Kind::Fsync, 1},
        {Kind::Fdatasync, 1}, {Kind::Fallocate, 4},  {Kind::Lseek, 4},     {Kind::Fstat, 3},
        {Kind::Fchmod, 1},    {Kind::Futimens, 1},   {Kind::FXattr, 2},    {Kind::CopyRange, 3},
        {Kind::Truncate, 2},  {Kind::Unlink, 5},     {Kind::Mkdir, 3},     {Kind::Rmdir, 3},
        {Kind::Rename, 7},    {Kind::Link, 3},       {Kind::Symlink, 3},   {Kind::Readlink, 2},
        {Kind::Chmod, 2},     {Kind::Utimens, 3},    {Kind::Stat, 5},      {Kind::Setxattr, 4},
        {Kind::Getxattr, 3},  {Kind::Listxattr, 2},  {Kind::Removexattr, 2}, {Kind::Readdir, 2}};
    static const int total = [] {
      int t = 0;
      for (auto& w : weights) t += w.second;
      return t;
    }();
    int pick = int(rng.below(uint64_t(total)));
    Kind k = Kind::Stat;
    for (auto& w : weights) {
      if (pick < w.second) { k = w.first; break; }
      pick -= w.second;
    }
    Op op;
    op.kind = k;
    switch (k) {
      case Kind::Open: {
        op.p1 = path(8, true);
        op.slot = slot();
        uint64_t r = rng.below(100);
        int f = r < 30 ? O_RDONLY : r < 60 ? O_WRONLY : O_RDWR;
        if (rng.chance(60)) {
          f |= O_CREAT;
          if (rng.chance(30)) f |= O_EXCL;
        }
        if (rng.chance(15)) f |= O_TRUNC;
        if (rng.chance(15)) f |= O_APPEND;
        if (rng.chance(3)) f |= O_DIRECTORY;
        if (rng.chance(4)) f |= O_NOFOLLOW;
        op.flags = f;
        op.mode = file_mode();
        break;
      }
      case Kind::Close: case Kind::Fsync: case Kind::Fdatasync: case Kind::Fstat:
        op.slot = slot();
        break;
      case Kind::Write:
        op.slot = slot();
        op.len = len();
        op.dseed = rng.next();
        break;
      case Kind::Pwrite:
        op.slot = slot();
        op.len = len();
        op.off = rng.chance(3) ? -1 - int64_t(rng.below(100)) : off();
        op.dseed = rng.next();
        break;
      case Kind::Read:
        op.slot = slot();
        op.len = len(300 * 1024);
        break;
      case Kind::Pread:
        op.slot = slot();
        op.len = len(300 * 1024);
        op.off = rng.chance(2) ? -1 : off();
        break;
      case Kind::Ftruncate:
        op.slot = slot();
        op.len = trunc_len();
        break;
      case Kind::Fallocate: {
        op.slot = slot();
        uint64_t r = rng.below(100);
        op.flags = r < 35 ? 0 : r < 60 ? FALLOC_FL_KEEP_SIZE : r < 95 ? (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)
                                                                        : FALLOC_FL_PUNCH_HOLE;  // EOPNOTSUPP
        op.off = rng.chance(2) ? -1 : off();
        op.len = rng.chance(4) ? 0 : rng.range(1, rng.chance(80) ? 256 * 1024 : 1 << 20);
        break;
      }
      case Kind::Lseek: {
        op.slot = slot();
        uint64_t r = rng.below(100);
        op.flags = r < 25 ? SEEK_SET : r < 40 ? SEEK_CUR : r < 55 ? SEEK_END : r < 78 ? SEEK_DATA : SEEK_HOLE;
        op.off = off();
        if ((op.flags == SEEK_CUR || op.flags == SEEK_END) && rng.chance(40)) op.off = -rng.range(0, 70000);
        if (rng.chance(3)) op.off = -1 - int64_t(rng.below(10));
        break;
      }
      case Kind::Fchmod:
        op.slot = slot();
        op.mode = file_mode();
        break;
      case Kind::Futimens:
        op.slot = slot();
        times(op);
        break;
      case Kind::FXattr:
        op.slot = slot();
        op.sub = int(rng.below(4));  // 0 set, 1 get, 2 list, 3 remove
        op.xname = xname();
        op.len = xlen();
        op.dseed = rng.next();
        op.flags = rng.chance(70) ? 0 : rng.chance(50) ? XATTR_CREATE : XATTR_REPLACE;
        break;
      case Kind::CopyRange:
        op.slot = slot();
        op.slot2 = rng.chance(15) ? op.slot : slot();
        op.sub = rng.chance(75) ? 1 : 0;  // 1: explicit offsets, 0: file positions
        op.off = off();
        op.off2 = off();
        op.len = len();
        op.flags = rng.chance(3) ? 1 : 0;  // EINVAL
        break;
      case Kind::Truncate:
        op.p1 = path(20);
        op.len = trunc_len();
        break;
      case Kind::Unlink:
        op.p1 = path(25, true);
        break;
      case Kind::Mkdir:
        op.p1 = path(88, true);
        op.mode = dir_mode();
        break;
      case Kind::Rmdir:
        op.p1 = path(50, true);
        break;
      case Kind::Rename: {
        op.p1 = path(20, true);
        uint64_t r = rng.below(100);
        if (r < 10) op.p2 = op.p1 + "/" + name(40);       // into its own subtree
        else if (r < 14) op.p2 = op.p1;                     // onto itself
        else op.p2 = path(20, true);
        r = rng.below(100);
        op.flags = r < 62 ? 0 : r < 80 ? RENAME_NOREPLACE : r < 96 ? RENAME_EXCHANGE
                 : rng.chance(50) ? (RENAME_NOREPLACE | RENAME_EXCHANGE) : (1 << 7);  // EINVAL
        break;
      }
      case Kind::Link:
        op.p1 = path(20, true);
        op.p2 = path(20, true);
        op.flags = rng.chance(20) ? AT_SYMLINK_FOLLOW : 0;
        break;
      case Kind::Symlink:
        op.p1 = path(20, true);
        op.p2 = target();
        break;
      case Kind::Readlink:
        op.p1 = path(20);
        op.len = rng.chance(10) ? rng.range(1, 4) : 4096;
        break;
      case Kind::Chmod:
        op.p1 = path(30);
        op.mode = rng.chance(50) ? file_mode() : dir_mode();
        break;
      case Kind::Utimens:
        op.p1 = path(30);
        op.flags = rng.chance(20) ? AT_SYMLINK_NOFOLLOW : 0;
        times(op);
        break;
      case Kind::Stat:
        op.p1 = path(30, true);
        op.flags = rng.chance(35) ? AT_SYMLINK_NOFOLLOW : 0;
        break;
      case Kind::Setxattr:
        op.p1 = path(30);
        op.xname = xname();
        op.len = xlen();
        op.dseed = rng.next();
        op.flags = rng.chance(60) ? 0 : rng.chance(50) ? XATTR_CREATE : XATTR_REPLACE;
        op.sub = rng.chance(20) ? 1 : 0;  // 1: lsetxattr
        break;
      case Kind::Getxattr:
        op.p1 = path(30, true);
        op.xname = xname();
        op.sub = int(rng.below(100));  // <10: size query, <25: small buffer, else big
        op.len = rng.range(1, 24);
        break;
      case Kind::Listxattr:
        op.p1 = path(30, true);
        op.sub = int(rng.below(100));
        op.len = rng.range(1, 12);
        break;
      case Kind::Removexattr:
        op.p1 = path(30);
        op.xname = xname();
        op.sub = rng.chance(20) ? 1 : 0;
        break;
      case Kind::Readdir:
        op.p1 = path(75, true);
        break;
      case Kind::Count:
        break;
    }
    return op;
  }
};

std::string open_flags(int f) {
  std::string s = (f & O_ACCMODE) == O_RDONLY ? "O_RDONLY" : (f & O_ACCMODE) == O_WRONLY ? "O_WRONLY" : "O_RDWR";
  if (f & O_CREAT) s += "|O_CREAT";
  if (f & O_EXCL) s += "|O_EXCL";
  if (f & O_TRUNC) s += "|O_TRUNC";
  if (f & O_APPEND) s += "|O_APPEND";
  if (f & O_DIRECTORY) s += "|O_DIRECTORY";
  if (f & O_NOFOLLOW) s += "|O_NOFOLLOW";
  return s;
}

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, f);
  vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

std::string ts_str(int64_t sec, int64_t nsec) {
  if (nsec == UTIME_NOW) return "UTIME_NOW";
  if (nsec == UTIME_OMIT) return "UTIME_OMIT";
  return fmt("%lld.%09lld", (long long)sec, (long long)nsec);
}

std::string q(const std::string& p) { return "\"" + p + "\""; }

}  // namespace

void fill_data(char* buf, size_t len, uint64_t dseed) {
  if (dseed % 16 == 0) {  // some all-zero writes: zeros must not become holes that read differently
    memset(buf, 0, len);
    return;
  }
  Rng r(dseed);
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t v = r.next();
    memcpy(buf + i, &v, 8);
  }
  if (i < len) {
    uint64_t v = r.next();
    memcpy(buf + i, &v, len - i);
  }
}

std::vector<Op> generate(uint64_t seed, size_t n, const GenConfig& cfg) {
  Gen g{Rng(seed), cfg};
  std::vector<Op> ops;
  ops.reserve(n);
  for (size_t i = 0; i < n; ++i) ops.push_back(g.make());
  return ops;
}

std::string describe(const Op& op) {
  const char* k = kind_name(op.kind);
  const long long off = op.off, off2 = op.off2, len = op.len;
  switch (op.kind) {
    case Kind::Open:
      return fmt("open(%s, %s, 0%o) -> slot %d", q(op.p1).c_str(), open_flags(op.flags).c_str(), op.mode, op.slot);
    case Kind::Close: case Kind::Fsync: case Kind::Fdatasync: case Kind::Fstat:
      return fmt("%s(slot %d)", k, op.slot);
    case Kind::Write:
      return fmt("write(slot %d, len %lld, data %016llx)", op.slot, len, (unsigned long long)op.dseed);
    case Kind::Pwrite:
      return fmt("pwrite(slot %d, len %lld, off %lld, data %016llx)", op.slot, len, off, (unsigned long long)op.dseed);
    case Kind::Read:
      return fmt("read(slot %d, len %lld)", op.slot, len);
    case Kind::Pread:
      return fmt("pread(slot %d, len %lld, off %lld)", op.slot, len, off);
    case Kind::Ftruncate:
      return fmt("ftruncate(slot %d, %lld)", op.slot, len);
    case Kind::Fallocate: {
      std::string m = op.flags == 0 ? "0" : "";
      if (op.flags & FALLOC_FL_PUNCH_HOLE) m += "PUNCH_HOLE";
      if (op.flags & FALLOC_FL_KEEP_SIZE) m += m.empty() ? "KEEP_SIZE" : "|KEEP_SIZE";
      return fmt("fallocate(slot %d, %s, off %lld, len %lld)", op.slot, m.c_str(), off, len);
    }
    case Kind::Lseek: {
      static const char* const wh[] = {"SEEK_SET", "SEEK_CUR", "SEEK_END", "SEEK_DATA", "SEEK_HOLE"};
      return fmt("lseek(slot %d, %lld, %s)", op.slot, off, wh[op.flags]);
    }
    case Kind::Fchmod:
      return fmt("fchmod(slot %d, 0%o)", op.slot, op.mode);
    case Kind::Futimens:
      return fmt("futimens(slot %d, atime %s, mtime %s)", op.slot, ts_str(op.ts[0], op.ts[1]).c_str(),
                 ts_str(op.ts[2], op.ts[3]).c_str());
    case Kind::FXattr: {
      static const char* const sub[] = {"fsetxattr", "fgetxattr", "flistxattr", "fremovexattr"};
      if (op.sub == 0)
        return fmt("fsetxattr(slot %d, %s, len %lld, data %016llx, flags %d)", op.slot, op.xname.c_str(), len,
                   (unsigned long long)op.dseed, op.flags);
      if (op.sub == 2) return fmt("flistxattr(slot %d)", op.slot);
      return fmt("%s(slot %d, %s)", sub[op.sub], op.slot, op.xname.c_str());
    }
    case Kind::CopyRange:
      if (op.sub)
        return fmt("copy_file_range(slot %d off %lld -> slot %d off %lld, len %lld, flags %d)", op.slot, off,
                   op.slot2, off2, len, op.flags);
      return fmt("copy_file_range(slot %d pos -> slot %d pos, len %lld, flags %d)", op.slot, op.slot2, len, op.flags);
    case Kind::Truncate:
      return fmt("truncate(%s, %lld)", q(op.p1).c_str(), len);
    case Kind::Unlink: case Kind::Rmdir:
      return fmt("%s(%s)", k, q(op.p1).c_str());
    case Kind::Mkdir:
      return fmt("mkdir(%s, 0%o)", q(op.p1).c_str(), op.mode);
    case Kind::Rename: {
      std::string f = op.flags == 0 ? "0" : op.flags == RENAME_NOREPLACE ? "RENAME_NOREPLACE"
                    : op.flags == RENAME_EXCHANGE ? "RENAME_EXCHANGE" : fmt("0x%x", op.flags);
      return fmt("renameat2(%s, %s, %s)", q(op.p1).c_str(), q(op.p2).c_str(), f.c_str());
    }
    case Kind::Link:
      return fmt("linkat(%s, %s, %s)", q(op.p1).c_str(), q(op.p2).c_str(), op.flags ? "AT_SYMLINK_FOLLOW" : "0");
    case Kind::Symlink:
      return fmt("symlink(target %s, %s)", q(op.p2).c_str(), q(op.p1).c_str());
    case Kind::Readlink:
      return fmt("readlink(%s, bufsize %lld)", q(op.p1).c_str(), len);
    case Kind::Chmod:
      return fmt("chmod(%s, 0%o)", q(op.p1).c_str(), op.mode);
    case Kind::Utimens:
      return fmt("utimensat(%s, atime %s, mtime %s%s)", q(op.p1).c_str(), ts_str(op.ts[0], op.ts[1]).c_str(),
                 ts_str(op.ts[2], op.ts[3]).c_str(), op.flags ? ", AT_SYMLINK_NOFOLLOW" : "");
    case Kind::Stat:
      return fmt("%s(%s)", op.flags ? "lstat" : "stat", q(op.p1).c_str());
    case Kind::Setxattr:
      return fmt("%s(%s, %s, len %lld, data %016llx, flags %s)", op.sub ? "lsetxattr" : "setxattr",
                 q(op.p1).c_str(), op.xname.c_str(), len, (unsigned long long)op.dseed,
                 op.flags == 0 ? "0" : op.flags == XATTR_CREATE ? "XATTR_CREATE" : "XATTR_REPLACE");
    case Kind::Getxattr:
      return fmt("getxattr(%s, %s, size %lld)", q(op.p1).c_str(), op.xname.c_str(),
                 op.sub < 10 ? 0LL : op.sub < 25 ? len : 65536LL);
    case Kind::Listxattr:
      return fmt("listxattr(%s, size %lld)", q(op.p1).c_str(), op.sub < 10 ? 0LL : op.sub < 25 ? len : 65536LL);
    case Kind::Removexattr:
      return fmt("%s(%s, %s)", op.sub ? "lremovexattr" : "removexattr", q(op.p1).c_str(), op.xname.c_str());
    case Kind::Readdir:
      return fmt("readdir(%s)", q(op.p1).c_str());
    case Kind::Count:
      break;
  }
  return k;
}

}  // namespace difftest
