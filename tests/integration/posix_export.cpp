// posix_export.cpp — file handles (name_to_handle_at / open_by_handle_at)
// stay valid once the kernel has forgotten the inode, as on a local
// filesystem: what an NFS export of the mount relies on. On a tcfs mount a
// forged handle never reaches the store's own objects. (Handles across a
// remount: export_test.sh.) Needs root (CAP_DAC_READ_SEARCH).
#include <sys/stat.h>

#include <fstream>

#include "posix_util.h"

using namespace pt;

namespace {

struct Handle {
  alignas(file_handle) char buf[sizeof(file_handle) + MAX_HANDLE_SZ];
  file_handle* fh() { return reinterpret_cast<file_handle*>(buf); }
};

// The handle of path (not following a final symlink); false with errno.
bool get_handle(const std::string& path, Handle& h) {
  h.fh()->handle_bytes = MAX_HANDLE_SZ;
  int mount_id;
  return name_to_handle_at(AT_FDCWD, path.c_str(), h.fh(), &mount_id, 0) == 0;
}

// Sync, then drop the dentry and inode caches (the kernel forgets its
// inodes: a FUSE mount gets FORGETs). False if not permitted.
bool drop_all_caches() {
  ::sync();
  std::ofstream f("/proc/sys/vm/drop_caches");
  f << "3\n";
  f.flush();
  return static_cast<bool>(f);
}

// open_by_handle_at through the mount of `on`; -1 with errno.
int open_handle(const std::string& on, Handle& h, int flags) {
  Fd m(open(on.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!m.ok()) return -1;
  return open_by_handle_at(m, h.fh(), flags | O_CLOEXEC);
}

std::string read_all(int fd) {
  std::string s;
  char b[4096];
  ssize_t n;
  while ((n = read(fd, b, sizeof b)) > 0) s.append(b, static_cast<size_t>(n));
  return s;
}

bool handles_supported(const std::string& path) {
  Handle h;
  if (geteuid() != 0) return false;
  return get_handle(path, h) || errno != EOPNOTSUPP;
}

// (ino, gen) of a backing object from its handle, for the layouts tcfs
// knows (fuse/export.h; spelled out again here on purpose).
bool backing_ino_gen(const std::string& path, uint64_t* ino, uint32_t* gen) {
  Handle h;
  if (!get_handle(path, h)) return false;
  const unsigned char* b = h.fh()->f_handle;
  unsigned len = h.fh()->handle_bytes;
  int type = h.fh()->handle_type;
  uint32_t u32[3] = {};
  uint64_t u64 = 0;
  if (type == 0x81 && len == 12) {
    memcpy(&u64, b, 8);
    memcpy(&u32[0], b + 8, 4);
    *ino = u64, *gen = u32[0];
  } else if (type == 1 && len == 8) {
    memcpy(u32, b, 8);
    *ino = u32[0], *gen = u32[1];
  } else if (type == 1 && len == 12) {
    memcpy(u32, b, 12);
    *gen = u32[0], *ino = u32[1] | (uint64_t{u32[2]} << 32);
  } else if (type == 0x4d && len == 20) {
    memcpy(&u64, b, 8);
    memcpy(&u32[0], b + 16, 4);
    *ino = u64, *gen = u32[0];
  } else {
    return false;
  }
  return true;
}

// A FUSE handle (the kernel's fuse_encode_fh layout: type 0x81, node id
// high and low words, generation) naming tcfs node id gen << 32 | ino.
void forge_fuse_handle(Handle& h, uint64_t ino, uint32_t gen) {
  uint64_t nodeid = (uint64_t{gen} << 32) | ino;
  uint32_t w[3] = {static_cast<uint32_t>(nodeid >> 32), static_cast<uint32_t>(nodeid), gen};
  h.fh()->handle_type = 0x81;
  h.fh()->handle_bytes = sizeof w;
  memcpy(h.fh()->f_handle, w, sizeof w);
}

}  // namespace

TEST_SUITE("export") {

TEST_CASE("file handles survive a cache drop and a rename; a deleted object's handle is stale") {
  TestDir t;
  if (!handles_supported(t.path())) {
    MESSAGE("no file handles here (or not root): skipped");
    return;
  }
  write_file(t / "f", "handle content");
  REQUIRE_SYS(mkdir((t / "d").c_str(), 0755));
  REQUIRE_SYS(mkdir((t / "d/sub").c_str(), 0755));
  write_file(t / "d/sub/g", "in sub");
  const ino_t f_ino = must_stat(t / "f").st_ino;
  const ino_t d_ino = must_stat(t / "d").st_ino;
  const ino_t sub_ino = must_stat(t / "d/sub").st_ino;
  const ino_t top_ino = must_stat(t.path()).st_ino;
  Handle hf, hd, hsub;
  REQUIRE_SYS(get_handle(t / "f", hf));
  REQUIRE_SYS(get_handle(t / "d", hd));
  REQUIRE_SYS(get_handle(t / "d/sub", hsub));
  REQUIRE(drop_all_caches());

  {  // the file: same object, same content
    Fd f(open_handle(t.path(), hf, O_RDONLY));
    REQUIRE_MESSAGE(f.ok(), "open_by_handle_at(file): ", errname(errno));
    struct stat st{};
    REQUIRE_SYS(fstat(f, &st));
    CHECK(st.st_ino == f_ino);
    CHECK(read_all(f) == "handle content");
  }
  REQUIRE(drop_all_caches());
  {  // a directory, deeper than one level: its ".." and its names work
    Fd s(open_handle(t.path(), hsub, O_RDONLY | O_DIRECTORY));
    REQUIRE_MESSAGE(s.ok(), "open_by_handle_at(dir): ", errname(errno));
    struct stat st{};
    REQUIRE_SYS(fstat(s, &st));
    CHECK(st.st_ino == sub_ino);
    Fd up(openat(s, "..", O_RDONLY | O_DIRECTORY));
    REQUIRE_MESSAGE(up.ok(), "openat(.., handle-opened dir): ", errname(errno));
    REQUIRE_SYS(fstat(up, &st));
    CHECK(st.st_ino == d_ino);
    Fd up2(openat(up, "..", O_RDONLY | O_DIRECTORY));
    REQUIRE(up2.ok());
    REQUIRE_SYS(fstat(up2, &st));
    CHECK(st.st_ino == top_ino);
    Fd g(openat(s, "g", O_RDONLY));
    REQUIRE(g.ok());
    CHECK(read_all(g) == "in sub");
  }
  REQUIRE(drop_all_caches());
  {
    Fd d(open_handle(t.path(), hd, O_RDONLY | O_DIRECTORY));
    REQUIRE_MESSAGE(d.ok(), "open_by_handle_at(dir): ", errname(errno));
    struct stat st{};
    REQUIRE_SYS(fstat(d, &st));
    CHECK(st.st_ino == d_ino);
  }
  // A rename keeps the handle valid (into another directory, too).
  REQUIRE_SYS(rename((t / "f").c_str(), (t / "d/moved").c_str()));
  REQUIRE(drop_all_caches());
  {
    Fd f(open_handle(t.path(), hf, O_RDONLY));
    REQUIRE_MESSAGE(f.ok(), "open_by_handle_at(renamed file): ", errname(errno));
    CHECK(read_all(f) == "handle content");
  }
  // Deleted: ESTALE, with and without the kernel's cache.
  REQUIRE_SYS(unlink((t / "d/moved").c_str()));
  REQUIRE(drop_all_caches());
  errno = 0;
  Fd gone(open_handle(t.path(), hf, O_RDONLY));
  CHECK_FALSE(gone.ok());
  CHECK_ERRNO(errno, ESTALE);
  REQUIRE_SYS(unlink((t / "d/sub/g").c_str()));
  REQUIRE_SYS(rmdir((t / "d/sub").c_str()));
  errno = 0;
  Fd gone_dir(open_handle(t.path(), hsub, O_RDONLY | O_DIRECTORY));
  CHECK_FALSE(gone_dir.ok());
  CHECK_ERRNO(errno, ESTALE);
}

TEST_CASE("a forged handle never reaches the store's own objects") {
  if (store_dir().empty()) {
    MESSAGE("not a tcfs mount (TCFS_TEST_STORE unset): skipped");
    return;
  }
  TestDir t;
  if (!handles_supported(t.path())) {
    MESSAGE("no file handles here (or not root): skipped");
    return;
  }
  uint64_t ino;
  uint32_t gen;
  // Control: a forged handle of an object inside root/ does open it, so
  // the refusals below are the security rule, not a malformed handle.
  write_file(t / "mine", "mine");
  REQUIRE(backing_ino_gen(store_dir() + "/root" + (t / "mine").substr(top_dir().size()), &ino, &gen));
  REQUIRE(drop_all_caches());
  Handle h;
  forge_fuse_handle(h, ino, gen);
  {
    Fd f(open_handle(t.path(), h, O_RDONLY));
    REQUIRE_MESSAGE(f.ok(), "forged handle of root/ object: ", errname(errno));
    CHECK(read_all(f) == "mine");
  }
  // The store's LMDB file, its meta/ and txn/ directories, and a directory
  // beside the store: ESTALE.
  const std::string targets[] = {store_dir() + "/meta/data.mdb", store_dir() + "/meta", store_dir() + "/txn",
                                 store_dir() + "/journal", native_dir()};
  for (const std::string& p : targets) {
    CAPTURE(p);
    if (p.empty() || !exists(p)) continue;
    REQUIRE(backing_ino_gen(p, &ino, &gen));
    REQUIRE(drop_all_caches());
    forge_fuse_handle(h, ino, gen);
    errno = 0;
    Fd f(open_handle(t.path(), h, S_ISDIR(must_stat(p).st_mode) ? O_RDONLY | O_DIRECTORY : O_RDONLY));
    CHECK_FALSE(f.ok());
    CHECK_ERRNO(errno, ESTALE);
  }
  // ".." of the mount root stays the mount's own parent (no escape into
  // the store directory by a handle-opened root either).
  Handle hr;
  REQUIRE_SYS(get_handle(top_dir(), hr));
  REQUIRE(drop_all_caches());
  Fd r(open_handle(t.path(), hr, O_RDONLY | O_DIRECTORY));
  REQUIRE(r.ok());
  struct stat st{};
  CHECK_ERR(fstatat(r, "meta", &st, AT_SYMLINK_NOFOLLOW), ENOENT);
}

}  // TEST_SUITE
