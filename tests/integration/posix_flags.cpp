// posix_flags.cpp — inode flags (chattr/lsattr, FS_IOC_GETFLAGS/SETFLAGS,
// FS_IOC_FSGETXATTR) and O_TMPFILE, as XFS has them.
//
// Flagged files are cleared again by a guard (Unflag) on every exit path:
// the test directory could not be removed otherwise.
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "posix_util.h"

using namespace pt;

namespace {

// FS_IOC_GETFLAGS of path (-1 with errno on failure).
long get_flags(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return -1;
  unsigned v = 0;
  int r = ioctl(fd, FS_IOC_GETFLAGS, &v);
  int e = errno;
  close(fd);
  errno = e;
  return r < 0 ? -1 : static_cast<long>(v);
}

// FS_IOC_SETFLAGS of path: 0 or the errno.
int set_flags(const std::string& path, unsigned v) {
  int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return errno;
  int r = ioctl(fd, FS_IOC_SETFLAGS, &v) == 0 ? 0 : errno;
  close(fd);
  return r;
}

int add_flags(const std::string& path, unsigned add) {
  long v = get_flags(path);
  return v < 0 ? errno : set_flags(path, static_cast<unsigned>(v) | add);
}

// Clears +i and +a of the paths it was given when it goes out of scope.
struct Unflag {
  std::vector<std::string> paths;
  ~Unflag() {
    for (const auto& p : paths) {
      long v = get_flags(p);
      if (v >= 0) set_flags(p, static_cast<unsigned>(v) & ~(FS_IMMUTABLE_FL | FS_APPEND_FL));
    }
  }
};

// Output of a shell command (trailing newline dropped).
std::string shell(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return "<popen failed>";
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  pclose(p);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

int open_err(const std::string& path, int flags) {
  int fd = open(path.c_str(), flags | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  close(fd);
  return 0;
}

}  // namespace

TEST_SUITE("inode flags") {

TEST_CASE("chattr +i: the file cannot be changed, renamed, linked or removed, only read") {
  TestDir t;
  std::string f = t / "f";
  write_file(f, "original");
  Unflag guard{{f}};
  REQUIRE(add_flags(f, FS_IMMUTABLE_FL) == 0);
  CHECK((get_flags(f) & FS_IMMUTABLE_FL) != 0);
  CHECK(shell("lsattr -d '" + f + "' | cut -c1-22").find('i') != std::string::npos);
  struct fsxattr fx {};
  {
    Fd fd = must_open(f, O_RDONLY);
    CHECK_SYS(ioctl(fd, FS_IOC_FSGETXATTR, &fx));
    CHECK((fx.fsx_xflags & FS_XFLAG_IMMUTABLE) != 0);
  }
  CHECK_ERRNO(open_err(f, O_WRONLY), EPERM);
  CHECK_ERRNO(open_err(f, O_WRONLY | O_APPEND), EPERM);
  CHECK_ERRNO(open_err(f, O_RDONLY | O_TRUNC), EPERM);
  CHECK_ERR(truncate(f.c_str(), 0), EPERM);
  CHECK_ERR(chmod(f.c_str(), 0600), EPERM);
  CHECK_ERR(chown(f.c_str(), 1, 1), EPERM);
  CHECK_ERR(utimes(f.c_str(), nullptr), EPERM);
  CHECK_ERR(setxattr(f.c_str(), "user.k", "v", 1, 0), EPERM);
  CHECK_ERR(unlink(f.c_str()), EPERM);
  CHECK_ERR(rename(f.c_str(), (t / "g").c_str()), EPERM);
  CHECK_ERR(link(f.c_str(), (t / "h").c_str()), EPERM);
  CHECK(read_file(f) == "original");
  // Cleared, it is an ordinary file again.
  REQUIRE(set_flags(f, static_cast<unsigned>(get_flags(f)) & ~FS_IMMUTABLE_FL) == 0);
  CHECK(open_err(f, O_WRONLY | O_TRUNC) == 0);
  CHECK(read_file(f).empty());
}

TEST_CASE("chattr +a: appends only; no overwrite, truncate, chmod, rename or unlink") {
  TestDir t;
  std::string f = t / "log";
  write_file(f, "one\n");
  Unflag guard{{f}};
  REQUIRE(add_flags(f, FS_APPEND_FL) == 0);
  CHECK((get_flags(f) & FS_APPEND_FL) != 0);
  CHECK(shell("lsattr -d '" + f + "' | cut -c1-22").find('a') != std::string::npos);
  {
    Fd fd = must_open(f, O_WRONLY | O_APPEND);
    CHECK(write(fd, "two\n", 4) == 4);
    // pwrite on an O_APPEND descriptor appends too (Linux).
    CHECK(pwrite(fd, "three\n", 6, 0) == 6);
  }
  CHECK(read_file(f) == "one\ntwo\nthree\n");
  CHECK_ERRNO(open_err(f, O_WRONLY), EPERM);
  CHECK_ERRNO(open_err(f, O_RDWR), EPERM);
  CHECK_ERRNO(open_err(f, O_WRONLY | O_APPEND | O_TRUNC), EPERM);
  CHECK_ERR(truncate(f.c_str(), 1), EPERM);
  CHECK_ERR(chmod(f.c_str(), 0600), EPERM);
  CHECK_ERR(unlink(f.c_str()), EPERM);
  CHECK_ERR(rename(f.c_str(), (t / "g").c_str()), EPERM);
  CHECK(read_file(f) == "one\ntwo\nthree\n");
}

TEST_CASE("chattr +i on a directory: no entry is added, removed or renamed") {
  TestDir t;
  std::string d = t / "d";
  REQUIRE_SYS(mkdir(d.c_str(), 0755));
  write_file(d + "/in", "x");
  Unflag guard{{d}};
  REQUIRE(add_flags(d, FS_IMMUTABLE_FL) == 0);
  CHECK((get_flags(d) & FS_IMMUTABLE_FL) != 0);
  CHECK_ERRNO(open_err(d + "/new", O_WRONLY | O_CREAT | O_EXCL), EPERM);
  CHECK_ERR(mkdir((d + "/sub").c_str(), 0755), EPERM);
  CHECK_ERR(unlink((d + "/in").c_str()), EPERM);
  CHECK_ERR(rename((d + "/in").c_str(), (d + "/out").c_str()), EPERM);
  CHECK_ERR(rmdir(d.c_str()), EPERM);
  // The file inside is not immutable itself.
  CHECK(open_err(d + "/in", O_WRONLY | O_APPEND) == 0);
  CHECK(list_names(d) == std::vector<std::string>{"in"});
}

TEST_CASE("flags +d and +A are set by the owner; +i and +a need CAP_LINUX_IMMUTABLE") {
  TestDir t;
  REQUIRE_SYS(chmod(t.path().c_str(), 0777));
  std::string f = t / "mine";
  REQUIRE(run_as(kUser, [&] { return open_err(f, O_WRONLY | O_CREAT | O_EXCL); }) == 0);
  Unflag guard{{f}};
  CHECK_ERRNO(run_as(kUser, [&] { return add_flags(f, FS_IMMUTABLE_FL); }), EPERM);
  CHECK_ERRNO(run_as(kUser, [&] { return add_flags(f, FS_APPEND_FL); }), EPERM);
  CHECK((get_flags(f) & (FS_IMMUTABLE_FL | FS_APPEND_FL)) == 0);
  CHECK_ERRNO(run_as(kUser, [&] { return add_flags(f, FS_NODUMP_FL | FS_NOATIME_FL); }), 0);
  CHECK((get_flags(f) & (FS_NODUMP_FL | FS_NOATIME_FL)) == (FS_NODUMP_FL | FS_NOATIME_FL));
  // Another user may not change them at all.
  CHECK_ERRNO(run_as(kUser2, [&] { return set_flags(f, 0); }), EPERM);
  CHECK((get_flags(f) & FS_NODUMP_FL) != 0);
  // Root may; and the owner cannot clear what root set.
  REQUIRE(add_flags(f, FS_IMMUTABLE_FL) == 0);
  CHECK_ERRNO(run_as(kUser, [&] { return set_flags(f, 0); }), EPERM);
  CHECK((get_flags(f) & FS_IMMUTABLE_FL) != 0);
}

}  // TEST_SUITE

TEST_SUITE("O_TMPFILE") {

TEST_CASE("O_TMPFILE: an unnamed file, written, stat'ed and linked to a name") {
  TestDir t;
  Fd fd(open(t.path().c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0640));
  REQUIRE_MESSAGE(fd.ok(), "open(O_TMPFILE): ", errname(errno));
  pwrite_all(fd, "unnamed data", 0);
  struct stat st;
  REQUIRE_SYS(fstat(fd, &st));
  CHECK(S_ISREG(st.st_mode));
  CHECK((st.st_mode & 07777) == 0640);
  CHECK(st.st_nlink == 0);
  CHECK(st.st_size == 12);
  CHECK(list_names(t.path()).empty());
  CHECK(pread_all(fd, 12, 0) == "unnamed data");
  std::string proc = "/proc/self/fd/" + std::to_string(fd.get());
  REQUIRE_SYS(linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, (t / "named").c_str(), AT_SYMLINK_FOLLOW));
  CHECK(list_names(t.path()) == std::vector<std::string>{"named"});
  struct stat nst = must_stat(t / "named");
  CHECK(nst.st_ino == st.st_ino);
  CHECK(nst.st_nlink == 1);
  REQUIRE_SYS(fstat(fd, &st));
  CHECK(st.st_nlink == 1);
  // The name and the descriptor are one file.
  pwrite_all(fd, "!", 12);
  CHECK(read_file(t / "named") == "unnamed data!");
  // A second name, through AT_EMPTY_PATH (root has CAP_DAC_READ_SEARCH).
  REQUIRE_SYS(linkat(fd, "", AT_FDCWD, (t / "again").c_str(), AT_EMPTY_PATH));
  CHECK(must_stat(t / "again").st_nlink == 2);
}

TEST_CASE("O_TMPFILE is created as the caller and needs write access to the directory") {
  TestDir t;
  REQUIRE_SYS(chmod(t.path().c_str(), 0777));
  int got = run_as(kUser, [&] {
    int fd = open(t.path().c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) return errno;
    struct stat st;
    int r = fstat(fd, &st) == 0 && st.st_uid == kUser.uid && st.st_gid == kUser.gid ? 0 : -1;
    close(fd);
    return r;
  });
  CHECK_ERRNO(got, 0);
  REQUIRE_SYS(chmod(t.path().c_str(), 0755));
  CHECK_ERRNO(run_as(kUser, [&] { return open_err(t.path(), O_TMPFILE | O_WRONLY); }), EACCES);
  // O_TMPFILE needs a directory, and write access mode.
  write_file(t / "plain", "x");
  CHECK_ERR(open((t / "plain").c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600), ENOTDIR);
  CHECK_ERR(open(t.path().c_str(), O_TMPFILE | O_RDONLY | O_CLOEXEC, 0600), EINVAL);
}

TEST_CASE("O_TMPFILE | O_EXCL can never be linked") {
  TestDir t;
  Fd fd(open(t.path().c_str(), O_TMPFILE | O_EXCL | O_WRONLY | O_CLOEXEC, 0600));
  REQUIRE_MESSAGE(fd.ok(), "open(O_TMPFILE|O_EXCL): ", errname(errno));
  pwrite_all(fd, "secret", 0);
  std::string proc = "/proc/self/fd/" + std::to_string(fd.get());
  CHECK_ERR(linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, (t / "name").c_str(), AT_SYMLINK_FOLLOW), ENOENT);
  CHECK(list_names(t.path()).empty());
}

TEST_CASE("an O_TMPFILE file never linked is gone once closed: its space comes back") {
  TestDir t;
  constexpr size_t kBytes = 32u << 20;
  auto free_bytes = [&] {
    sync();
    struct statvfs sv;
    REQUIRE_SYS(statvfs(t.path().c_str(), &sv));
    return static_cast<uint64_t>(sv.f_bfree) * sv.f_frsize;
  };
  uint64_t before = free_bytes();
  {
    Fd fd(open(t.path().c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600));
    REQUIRE_MESSAGE(fd.ok(), "open(O_TMPFILE): ", errname(errno));
    std::string chunk = pattern(1u << 20, 7);
    for (size_t off = 0; off < kBytes; off += chunk.size()) pwrite_all(fd, chunk, static_cast<off_t>(off));
    REQUIRE_SYS(fsync(fd));
    CHECK(free_bytes() + kBytes / 2 < before);
  }
  // The release and the inode's end run in the background (FUSE's release
  // and forget, XFS's inode inactivation): wait for them, at most 30 s.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  uint64_t now = free_bytes();
  while (now + kBytes / 4 < before && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    now = free_bytes();
  }
  CHECK_MESSAGE(now + kBytes / 4 >= before, "free before ", before, ", after close ", now);
  CHECK(list_names(t.path()).empty());
}

}  // TEST_SUITE
