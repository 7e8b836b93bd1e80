// posix_meta.cpp — attributes: stat family, chmod, chown, truncate,
// utimensat, mknod, statvfs, access.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <time.h>

#include <set>

#include "posix_util.h"

using namespace pt;

namespace {

timespec coarse_now() {
  timespec t{};
  clock_gettime(CLOCK_REALTIME_COARSE, &t);
  return t;
}
timespec precise_now() {
  timespec t{};
  clock_gettime(CLOCK_REALTIME, &t);
  return t;
}
// t lies within [lo - 2s, hi + 2s] (file timestamps come from the coarse
// clock; the slack only guards against clock granularity).
bool within(const timespec& t, const timespec& lo, const timespec& hi) {
  return t.tv_sec >= lo.tv_sec - 2 && t.tv_sec <= hi.tv_sec + 2;
}
bool same_ts(const timespec& a, const timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}
std::string ts_str(const timespec& t) {
  return std::to_string(t.tv_sec) + "." + std::to_string(t.tv_nsec);
}
void set_times(const std::string& p, time_t a, time_t m, int flags = 0) {
  timespec ts[2] = {{a, 0}, {m, 0}};
  REQUIRE_SYS(utimensat(AT_FDCWD, p.c_str(), ts, flags));
}

}  // namespace

TEST_SUITE("stat") {

TEST_CASE("stat, lstat and fstat of each file type") {
  TestDir t;
  write_file(t / "f", pattern(100, 1));
  REQUIRE_SYS(mkdir((t / "d").c_str(), 0755));
  REQUIRE_SYS(symlink("f", (t / "l").c_str()));
  REQUIRE_SYS(mkfifo((t / "p").c_str(), 0640));

  struct stat f = must_lstat(t / "f");
  CHECK(S_ISREG(f.st_mode));
  CHECK((f.st_mode & 07777) == 0644);
  CHECK(f.st_size == 100);
  CHECK(f.st_nlink == 1);
  CHECK(f.st_uid == 0);
  CHECK(f.st_gid == 0);
  CHECK(f.st_blksize > 0);
  CHECK(f.st_blocks > 0);

  struct stat d = must_lstat(t / "d");
  CHECK(S_ISDIR(d.st_mode));
  CHECK((d.st_mode & 07777) == 0755);
  CHECK(d.st_nlink == 2);

  struct stat l = must_lstat(t / "l");
  CHECK(S_ISLNK(l.st_mode));
  CHECK(l.st_size == 1);  // strlen("f")
  struct stat lf = must_stat(t / "l");
  CHECK(lf.st_ino == f.st_ino);
  CHECK(S_ISREG(lf.st_mode));

  struct stat p = must_lstat(t / "p");
  CHECK(S_ISFIFO(p.st_mode));
  CHECK((p.st_mode & 07777) == 0640);

  // One device, distinct inode numbers.
  struct stat top = must_stat(t.path());
  CHECK(f.st_dev == top.st_dev);
  CHECK(d.st_dev == top.st_dev);
  CHECK(l.st_dev == top.st_dev);
  std::set<ino_t> inos{f.st_ino, d.st_ino, l.st_ino, p.st_ino, top.st_ino};
  CHECK(inos.size() == 5);

  // fstat on an open file and on O_PATH descriptors.
  Fd fd = must_open(t / "f", O_RDONLY);
  struct stat fs{};
  REQUIRE_SYS(fstat(fd, &fs));
  CHECK(fs.st_ino == f.st_ino);
  CHECK(fs.st_dev == f.st_dev);
  CHECK(fs.st_size == 100);
  CHECK(fs.st_mode == f.st_mode);
  Fd lp = must_open(t / "l", O_PATH | O_NOFOLLOW);
  struct stat ls{};
  REQUIRE_SYS(fstat(lp, &ls));
  CHECK(S_ISLNK(ls.st_mode));
  CHECK(ls.st_ino == l.st_ino);
  Fd dp = must_open(t / "d", O_PATH | O_DIRECTORY);
  struct stat ds{};
  REQUIRE_SYS(fstatat(dp, "", &ds, AT_EMPTY_PATH));
  CHECK(ds.st_ino == d.st_ino);
  // fstatat relative to a directory fd.
  Fd top_fd = must_open(t.path(), O_RDONLY | O_DIRECTORY);
  struct stat rel{};
  REQUIRE_SYS(fstatat(top_fd, "l", &rel, AT_SYMLINK_NOFOLLOW));
  CHECK(rel.st_ino == l.st_ino);
  REQUIRE_SYS(fstatat(top_fd, "l", &rel, 0));
  CHECK(rel.st_ino == f.st_ino);
}

TEST_CASE("statx reports what stat reports") {
  TestDir t;
  write_file(t / "f", pattern(5000, 2));
  struct stat st = must_stat(t / "f");
  struct statx sx{};
  REQUIRE_SYS(statx(AT_FDCWD, (t / "f").c_str(), 0, STATX_BASIC_STATS, &sx));
  CHECK((sx.stx_mask & STATX_BASIC_STATS & ~STATX_BLOCKS) == (STATX_BASIC_STATS & ~STATX_BLOCKS));
  CHECK(sx.stx_ino == st.st_ino);
  CHECK(sx.stx_size == static_cast<uint64_t>(st.st_size));
  CHECK(sx.stx_mode == st.st_mode);
  CHECK(sx.stx_nlink == st.st_nlink);
  CHECK(sx.stx_uid == st.st_uid);
  CHECK(sx.stx_gid == st.st_gid);
  CHECK(sx.stx_mtime.tv_sec == st.st_mtim.tv_sec);
  CHECK(sx.stx_mtime.tv_nsec == static_cast<uint32_t>(st.st_mtim.tv_nsec));
  CHECK(makedev(sx.stx_dev_major, sx.stx_dev_minor) == st.st_dev);
}

TEST_CASE("stat errors") {
  TestDir t;
  write_file(t / "f", "x");
  REQUIRE_SYS(symlink("missing", (t / "dangling").c_str()));
  REQUIRE_SYS(symlink("loop2", (t / "loop1").c_str()));
  REQUIRE_SYS(symlink("loop1", (t / "loop2").c_str()));
  struct stat st{};
  CHECK_ERR(stat((t / "nope").c_str(), &st), ENOENT);
  CHECK_ERR(lstat((t / "nope").c_str(), &st), ENOENT);
  CHECK_ERR(stat((t / "nope/x").c_str(), &st), ENOENT);
  CHECK_ERR(stat((t / "f/x").c_str(), &st), ENOTDIR);
  CHECK_ERR(stat((t / "f/").c_str(), &st), ENOTDIR);
  CHECK_ERR(stat("", &st), ENOENT);
  CHECK_ERR(stat((t / "dangling").c_str(), &st), ENOENT);
  CHECK_SYS(lstat((t / "dangling").c_str(), &st));
  CHECK_ERR(stat((t / "loop1").c_str(), &st), ELOOP);
  CHECK_ERR(fstat(-1, &st), EBADF);
}

TEST_CASE("writes update size and mtime at once") {
  TestDir t;
  write_file(t / "f", "");
  set_times(t / "f", 1000, 1000);
  Fd fd = must_open(t / "f", O_WRONLY);
  pwrite_all(fd, pattern(12345, 3), 0);
  struct stat st = must_stat(t / "f");  // by path, no fsync, fd still open
  CHECK(st.st_size == 12345);
  CHECK(st.st_mtim.tv_sec != 1000);
  CHECK(st.st_ctim.tv_sec != 1000);
  struct stat fs{};
  REQUIRE_SYS(fstat(fd, &fs));
  CHECK(fs.st_size == 12345);
  // A second descriptor sees the data without any sync.
  Fd rd = must_open(t / "f", O_RDONLY);
  CHECK(pread_all(rd, 12345, 0) == pattern(12345, 3));
}

}  // TEST_SUITE stat

TEST_SUITE("chmod") {

TEST_CASE("chmod and fchmod set every mode bit") {
  TestDir t;
  write_file(t / "f", "x");
  REQUIRE_SYS(mkdir((t / "d").c_str(), 0755));
  for (mode_t m : {0000, 0644, 0777, 07777, 04755, 02755, 01777, 0400, 0111}) {
    CAPTURE(m);
    CHECK_SYS(chmod((t / "f").c_str(), m));
    CHECK((must_stat(t / "f").st_mode & 07777) == m);
    CHECK(S_ISREG(must_stat(t / "f").st_mode));
    CHECK_SYS(chmod((t / "d").c_str(), m));
    CHECK((must_stat(t / "d").st_mode & 07777) == m);
    CHECK(S_ISDIR(must_stat(t / "d").st_mode));
  }
  Fd fd = must_open(t / "f", O_RDONLY);
  CHECK_SYS(fchmod(fd, 0604));
  struct stat st{};
  REQUIRE_SYS(fstat(fd, &st));
  CHECK((st.st_mode & 07777) == 0604);
  CHECK((must_stat(t / "f").st_mode & 07777) == 0604);
  CHECK_SYS(fchmodat(AT_FDCWD, (t / "f").c_str(), 0640, 0));
  CHECK((must_stat(t / "f").st_mode & 07777) == 0640);
}

TEST_CASE("chmod through a symlink changes the target") {
  TestDir t;
  write_file(t / "f", "x");
  REQUIRE_SYS(symlink("f", (t / "l").c_str()));
  mode_t lmode = must_lstat(t / "l").st_mode;
  CHECK_SYS(chmod((t / "l").c_str(), 0600));
  CHECK((must_stat(t / "f").st_mode & 07777) == 0600);
  CHECK(must_lstat(t / "l").st_mode == lmode);
  CHECK_ERR(fchmodat(AT_FDCWD, (t / "l").c_str(), 0600, AT_SYMLINK_NOFOLLOW), EOPNOTSUPP);
}

TEST_CASE("chmod errors") {
  TestDir t;
  write_file(t / "f", "x");
  CHECK_ERR(chmod((t / "nope").c_str(), 0644), ENOENT);
  CHECK_ERR(chmod((t / "f/x").c_str(), 0644), ENOTDIR);
  CHECK_ERR(fchmod(-1, 0644), EBADF);
}

}  // TEST_SUITE chmod

TEST_SUITE("chown") {

TEST_CASE("chown as root sets owner and group") {
  TestDir t;
  write_file(t / "f", "x");
  REQUIRE_SYS(mkdir((t / "d").c_str(), 0755));
  CHECK_SYS(chown((t / "f").c_str(), 12345, kGroup));
  struct stat st = must_stat(t / "f");
  CHECK(st.st_uid == 12345);
  CHECK(st.st_gid == kGroup);
  CHECK_SYS(chown((t / "f").c_str(), static_cast<uid_t>(-1), static_cast<gid_t>(-1)));
  st = must_stat(t / "f");
  CHECK(st.st_uid == 12345);
  CHECK(st.st_gid == kGroup);
  CHECK_SYS(chown((t / "f").c_str(), static_cast<uid_t>(-1), 7));
  st = must_stat(t / "f");
  CHECK(st.st_uid == 12345);
  CHECK(st.st_gid == 7);
  CHECK_SYS(chown((t / "f").c_str(), 54321, static_cast<gid_t>(-1)));
  st = must_stat(t / "f");
  CHECK(st.st_uid == 54321);
  CHECK(st.st_gid == 7);

  CHECK_SYS(chown((t / "d").c_str(), 12345, 12345));
  st = must_stat(t / "d");
  CHECK(st.st_uid == 12345);
  CHECK(st.st_gid == 12345);

  Fd fd = must_open(t / "f", O_RDONLY);
  CHECK_SYS(fchown(fd, 0, 0));
  st = must_stat(t / "f");
  CHECK(st.st_uid == 0);
  CHECK(st.st_gid == 0);
  CHECK_ERR(chown((t / "nope").c_str(), 1, 1), ENOENT);
}

TEST_CASE("chown to -1, -1 changes nothing but ctime") {
  TestDir t;
  write_file(t / "f", "x");
  Fd fd = must_open(t / "f", O_RDONLY);
  for (int through_fd = 0; through_fd < 2; ++through_fd) {
    CAPTURE(through_fd);
    struct stat before = must_stat(t / "f");
    usleep(20000);  // a later clock reading than the last change
    if (through_fd) CHECK_SYS(fchown(fd, static_cast<uid_t>(-1), static_cast<gid_t>(-1)));
    else CHECK_SYS(chown((t / "f").c_str(), static_cast<uid_t>(-1), static_cast<gid_t>(-1)));
    struct stat after = must_stat(t / "f");
    CHECK(after.st_uid == before.st_uid);
    CHECK(after.st_gid == before.st_gid);
    CHECK(after.st_mode == before.st_mode);
    CHECK(after.st_mtim.tv_sec == before.st_mtim.tv_sec);
    CHECK(after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
    bool later = after.st_ctim.tv_sec > before.st_ctim.tv_sec ||
                 (after.st_ctim.tv_sec == before.st_ctim.tv_sec && after.st_ctim.tv_nsec > before.st_ctim.tv_nsec);
    CHECK(later);
  }
}

TEST_CASE("lchown changes the symlink, chown its target") {
  TestDir t;
  write_file(t / "f", "x");
  REQUIRE_SYS(symlink("f", (t / "l").c_str()));
  CHECK_SYS(lchown((t / "l").c_str(), 12345, 12346));
  struct stat l = must_lstat(t / "l");
  CHECK(l.st_uid == 12345);
  CHECK(l.st_gid == 12346);
  struct stat f = must_stat(t / "f");
  CHECK(f.st_uid == 0);
  CHECK(f.st_gid == 0);
  CHECK_SYS(chown((t / "l").c_str(), 777, 778));
  f = must_stat(t / "f");
  CHECK(f.st_uid == 777);
  CHECK(f.st_gid == 778);
  l = must_lstat(t / "l");
  CHECK(l.st_uid == 12345);
  CHECK(l.st_gid == 12346);
  CHECK_SYS(fchownat(AT_FDCWD, (t / "l").c_str(), 1, 2, AT_SYMLINK_NOFOLLOW));
  l = must_lstat(t / "l");
  CHECK(l.st_uid == 1);
  CHECK(l.st_gid == 2);
}

TEST_CASE("chown of a regular file clears setuid and setgid") {
  TestDir t;
  write_file(t / "f", "x");
  REQUIRE_SYS(chmod((t / "f").c_str(), 06755));
  REQUIRE(must_stat(t / "f").st_mode == (S_IFREG | 06755));
  CHECK_SYS(chown((t / "f").c_str(), 12345, 12345));
  struct stat st = must_stat(t / "f");
  CHECK(st.st_uid == 12345);
  CHECK((st.st_mode & 07777) == 0755);
  // Directories keep theirs.
  REQUIRE_SYS(mkdir((t / "d").c_str(), 0755));
  REQUIRE_SYS(chmod((t / "d").c_str(), 02755));
  CHECK_SYS(chown((t / "d").c_str(), 12345, 12345));
  CHECK((must_stat(t / "d").st_mode & 07777) == 02755);
}

}  // TEST_SUITE chown

TEST_SUITE("truncate") {

TEST_CASE("truncate shrinks keeping the prefix and grows with zeros") {
  TestDir t;
  const std::string data = pattern(10000, 4);
  write_file(t / "f", data);
  CHECK_SYS(truncate((t / "f").c_str(), 5000));
  CHECK(must_stat(t / "f").st_size == 5000);
  CHECK(read_file(t / "f") == data.substr(0, 5000));
  // Growing again must not bring back the cut bytes.
  CHECK_SYS(truncate((t / "f").c_str(), 20000));
  CHECK(must_stat(t / "f").st_size == 20000);
  CHECK(read_file(t / "f") == data.substr(0, 5000) + std::string(15000, '\0'));
  CHECK_SYS(truncate((t / "f").c_str(), 0));
  CHECK(must_stat(t / "f").st_size == 0);
  CHECK(read_file(t / "f").empty());
}

TEST_CASE("ftruncate through an open descriptor") {
  TestDir t;
  const std::string data = pattern(70000, 5);
  write_file(t / "f", data);
  Fd fd = must_open(t / "f", O_RDWR);
  CHECK_SYS(ftruncate(fd, 65536 + 10));
  struct stat st{};
  REQUIRE_SYS(fstat(fd, &st));
  CHECK(st.st_size == 65546);
  CHECK(pread_all(fd, 100000, 0) == data.substr(0, 65546));
  CHECK_SYS(ftruncate(fd, 100));
  CHECK_SYS(ftruncate(fd, 300000));
  std::string got = pread_all(fd, 400000, 0);
  CHECK(got.size() == 300000);
  CHECK(got == data.substr(0, 100) + std::string(299900, '\0'));
  CHECK(read_file(t / "f") == got);
}

TEST_CASE("truncate to a large size makes a sparse file") {
  TestDir t;
  write_file(t / "f", "");
  const off_t big = (off_t{1} << 30) + 1;
  CHECK_SYS(truncate((t / "f").c_str(), big));
  struct stat st = must_stat(t / "f");
  CHECK(st.st_size == big);
  CHECK(st.st_blocks * 512 < 1024 * 1024);
  Fd fd = must_open(t / "f", O_RDONLY);
  CHECK(pread_all(fd, 100, big - 50) == std::string(50, '\0'));
}

TEST_CASE("truncate errors") {
  TestDir t;
  write_file(t / "f", "hello");
  REQUIRE_SYS(mkdir((t / "d").c_str(), 0755));
  CHECK_ERR(truncate((t / "d").c_str(), 0), EISDIR);
  CHECK_ERR(truncate((t / "f").c_str(), -1), EINVAL);
  CHECK_ERR(truncate((t / "nope").c_str(), 0), ENOENT);
  CHECK_ERR(truncate((t / "f/x").c_str(), 0), ENOTDIR);
  Fd ro = must_open(t / "f", O_RDONLY);
  CHECK_ERR2(ftruncate(ro, 0), EINVAL, EBADF);
  Fd rw = must_open(t / "f", O_RDWR);
  CHECK_ERR(ftruncate(rw, -1), EINVAL);
  Fd dfd = must_open(t / "d", O_RDONLY | O_DIRECTORY);
  CHECK_ERR2(ftruncate(dfd, 0), EINVAL, EBADF);
  CHECK(read_file(t / "f") == "hello");
}

TEST_CASE("truncate and O_TRUNC update mtime") {
  TestDir t;
  write_file(t / "f", pattern(4096, 6));
  set_times(t / "f", 1000, 1000);
  CHECK_SYS(truncate((t / "f").c_str(), 10));
  CHECK(must_stat(t / "f").st_mtim.tv_sec != 1000);
  CHECK(must_stat(t / "f").st_ctim.tv_sec != 1000);
  set_times(t / "f", 1000, 1000);
  { Fd fd = must_open(t / "f", O_WRONLY | O_TRUNC); }
  struct stat st = must_stat(t / "f");
  CHECK(st.st_size == 0);
  CHECK(st.st_mtim.tv_sec != 1000);
}

}  // TEST_SUITE truncate

TEST_SUITE("utimensat") {

TEST_CASE("utimensat sets explicit times to the nanosecond") {
  TestDir t;
  write_file(t / "f", "x");
  REQUIRE_SYS(mkdir((t / "d").c_str(), 0755));
  const timespec ts[2] = {{1234567890, 123456789}, {1500000000, 987654321}};
  for (const char* n : {"f", "d"}) {
    CAPTURE(n);
    CHECK_SYS(utimensat(AT_FDCWD, (t / n).c_str(), ts, 0));
    struct stat st = must_stat(t / n);
    CHECK_MESSAGE(same_ts(st.st_atim, ts[0]), "atime ", ts_str(st.st_atim));
    CHECK_MESSAGE(same_ts(st.st_mtim, ts[1]), "mtime ", ts_str(st.st_mtim));
  }
  // Beyond 2038.
  const timespec late[2] = {{4102444800, 1}, {4102444801, 999999999}};
  CHECK_SYS(utimensat(AT_FDCWD, (t / "f").c_str(), late, 0));
  struct stat st = must_stat(t / "f");
  CHECK_MESSAGE(same_ts(st.st_atim, late[0]), "atime ", ts_str(st.st_atim));
  CHECK_MESSAGE(same_ts(st.st_mtim, late[1]), "mtime ", ts_str(st.st_mtim));
  // futimens through a descriptor.
  Fd fd = must_open(t / "f", O_RDONLY);
  const timespec ts2[2] = {{2000, 5}, {3000, 6}};
  CHECK_SYS(futimens(fd, ts2));
  st = must_stat(t / "f");
  CHECK(same_ts(st.st_atim, ts2[0]));
  CHECK(same_ts(st.st_mtim, ts2[1]));
}

TEST_CASE("utimensat UTIME_NOW and UTIME_OMIT") {
  TestDir t;
  write_file(t / "f", "x");
  set_times(t / "f", 1000, 2000);
  timespec lo = coarse_now();
  const timespec omit_now[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
  CHECK_SYS(utimensat(AT_FDCWD, (t / "f").c_str(), omit_now, 0));
  timespec hi = precise_now();
  struct stat st = must_stat(t / "f");
  CHECK(same_ts(st.st_atim, timespec{1000, 0}));
  CHECK_MESSAGE(within(st.st_mtim, lo, hi), "mtime ", ts_str(st.st_mtim));

  set_times(t / "f", 1000, 2000);
  lo = coarse_now();
  const timespec now_omit[2] = {{0, UTIME_NOW}, {0, UTIME_OMIT}};
  CHECK_SYS(utimensat(AT_FDCWD, (t / "f").c_str(), now_omit, 0));
  hi = precise_now();
  st = must_stat(t / "f");
  CHECK_MESSAGE(within(st.st_atim, lo, hi), "atime ", ts_str(st.st_atim));
  CHECK(same_ts(st.st_mtim, timespec{2000, 0}));

  set_times(t / "f", 1000, 2000);
  const timespec omit_omit[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
  CHECK_SYS(utimensat(AT_FDCWD, (t / "f").c_str(), omit_omit, 0));
  st = must_stat(t / "f");
  CHECK(same_ts(st.st_atim, timespec{1000, 0}));
  CHECK(same_ts(st.st_mtim, timespec{2000, 0}));

  lo = coarse_now();
  CHECK_SYS(utimensat(AT_FDCWD, (t / "f").c_str(), nullptr, 0));
  hi = precise_now();
  st = must_stat(t / "f");
  CHECK_MESSAGE(within(st.st_atim, lo, hi), "atime ", ts_str(st.st_atim));
  CHECK_MESSAGE(within(st.st_mtim, lo, hi), "mtime ", ts_str(st.st_mtim));

  set_times(t / "f", 1000, 2000);
  Fd fd = must_open(t / "f", O_RDONLY);
  lo = coarse_now();
  CHECK_SYS(futimens(fd, omit_now));
  hi = precise_now();
  st = must_stat(t / "f");
  CHECK(same_ts(st.st_atim, timespec{1000, 0}));
  CHECK_MESSAGE(within(st.st_mtim, lo, hi), "mtime ", ts_str(st.st_mtim));
}

TEST_CASE("utimensat on a symlink with AT_SYMLINK_NOFOLLOW") {
  TestDir t;
  write_file(t / "f", "x");
  REQUIRE_SYS(symlink("f", (t / "l").c_str()));
  set_times(t / "f", 1000, 2000);
  const timespec ts[2] = {{3000, 300}, {4000, 400}};
  CHECK_SYS(utimensat(AT_FDCWD, (t / "l").c_str(), ts, AT_SYMLINK_NOFOLLOW));
  struct stat l = must_lstat(t / "l");
  CHECK_MESSAGE(same_ts(l.st_atim, ts[0]), "link atime ", ts_str(l.st_atim));
  CHECK_MESSAGE(same_ts(l.st_mtim, ts[1]), "link mtime ", ts_str(l.st_mtim));
  struct stat f = must_stat(t / "f");
  CHECK(same_ts(f.st_atim, timespec{1000, 0}));
  CHECK(same_ts(f.st_mtim, timespec{2000, 0}));
  // Without the flag the target changes and the link does not.
  const timespec ts2[2] = {{5000, 0}, {6000, 0}};
  CHECK_SYS(utimensat(AT_FDCWD, (t / "l").c_str(), ts2, 0));
  f = must_stat(t / "f");
  CHECK(same_ts(f.st_atim, ts2[0]));
  CHECK(same_ts(f.st_mtim, ts2[1]));
  l = must_lstat(t / "l");
  CHECK(same_ts(l.st_mtim, ts[1]));
  // A dangling link's own times can be set.
  REQUIRE_SYS(symlink("missing", (t / "dangling").c_str()));
  CHECK_SYS(utimensat(AT_FDCWD, (t / "dangling").c_str(), ts, AT_SYMLINK_NOFOLLOW));
  CHECK(same_ts(must_lstat(t / "dangling").st_mtim, ts[1]));
  CHECK_ERR(utimensat(AT_FDCWD, (t / "dangling").c_str(), ts, 0), ENOENT);
}

TEST_CASE("utimensat errors") {
  TestDir t;
  write_file(t / "f", "x");
  const timespec ts[2] = {{1, 0}, {2, 0}};
  CHECK_ERR(utimensat(AT_FDCWD, (t / "nope").c_str(), ts, 0), ENOENT);
  const timespec bad[2] = {{1, 1000000000}, {2, 0}};
  CHECK_ERR(utimensat(AT_FDCWD, (t / "f").c_str(), bad, 0), EINVAL);
  CHECK_ERR(utimensat(AT_FDCWD, (t / "f").c_str(), ts, 0x4000000), EINVAL);
}

}  // TEST_SUITE utimensat

TEST_SUITE("mknod") {

TEST_CASE("mknod and mkfifo make working FIFOs") {
  TestDir t;
  CHECK_SYS(mknod((t / "p1").c_str(), S_IFIFO | 0666, 0));
  CHECK_SYS(mkfifo((t / "p2").c_str(), 0600));
  struct stat st = must_lstat(t / "p1");
  CHECK(S_ISFIFO(st.st_mode));
  CHECK((st.st_mode & 07777) == 0644);  // umask 022
  CHECK(st.st_uid == 0);
  st = must_lstat(t / "p2");
  CHECK(S_ISFIFO(st.st_mode));
  CHECK((st.st_mode & 07777) == 0600);
  Fd fd = must_open(t / "p1", O_RDWR | O_NONBLOCK);
  CHECK(write(fd, "hi", 2) == 2);
  char buf[4] = {};
  CHECK(read(fd, buf, sizeof buf) == 2);
  CHECK(std::string(buf, 2) == "hi");
  CHECK_ERR(lseek(fd, 0, SEEK_SET), ESPIPE);
  CHECK_ERR(mkfifo((t / "p1").c_str(), 0600), EEXIST);
}

TEST_CASE("mknod sockets and bound unix sockets") {
  TestDir t;
  CHECK_SYS(mknod((t / "s").c_str(), S_IFSOCK | 0644, 0));
  CHECK(S_ISSOCK(must_lstat(t / "s").st_mode));

  std::string path = t / "srv.sock";
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  REQUIRE(path.size() < sizeof addr.sun_path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  Fd srv(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(srv.ok());
  REQUIRE_SYS(bind(srv, reinterpret_cast<sockaddr*>(&addr), sizeof addr));
  REQUIRE_SYS(listen(srv, 1));
  CHECK(S_ISSOCK(must_lstat(path).st_mode));
  Fd cli(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(cli.ok());
  CHECK_SYS(connect(cli, reinterpret_cast<sockaddr*>(&addr), sizeof addr));
  Fd acc(accept4(srv, nullptr, nullptr, SOCK_CLOEXEC));
  REQUIRE(acc.ok());
  CHECK(write(cli, "ping", 4) == 4);
  char buf[8] = {};
  CHECK(read(acc, buf, sizeof buf) == 4);
  CHECK(std::string(buf, 4) == "ping");
  CHECK_ERR2(bind(srv, reinterpret_cast<sockaddr*>(&addr), sizeof addr), EINVAL, EADDRINUSE);
  Fd srv2(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  CHECK_ERR(bind(srv2, reinterpret_cast<sockaddr*>(&addr), sizeof addr), EADDRINUSE);
}

TEST_CASE("mknod character and block devices as root") {
  TestDir t;
  CHECK_SYS(mknod((t / "null").c_str(), S_IFCHR | 0666, makedev(1, 3)));
  struct stat st = must_lstat(t / "null");
  CHECK(S_ISCHR(st.st_mode));
  CHECK(st.st_rdev == makedev(1, 3));
  CHECK((st.st_mode & 07777) == 0644);
  CHECK_SYS(mknod((t / "blk").c_str(), S_IFBLK | 0600, makedev(7, 200)));
  st = must_lstat(t / "blk");
  CHECK(S_ISBLK(st.st_mode));
  CHECK(st.st_rdev == makedev(7, 200));
  CHECK(major(st.st_rdev) == 7);
  CHECK(minor(st.st_rdev) == 200);
  CHECK_SYS(mknod((t / "big").c_str(), S_IFCHR | 0600, makedev(300, 70000)));
  CHECK(must_lstat(t / "big").st_rdev == makedev(300, 70000));
  CHECK_ERR(mknod((t / "null").c_str(), S_IFCHR | 0666, makedev(1, 3)), EEXIST);
  CHECK_ERR(mknod((t / "nope/x").c_str(), S_IFCHR | 0666, makedev(1, 3)), ENOENT);
  CHECK_ERR(mknod((t / "dir").c_str(), S_IFDIR | 0755, 0), EPERM);
  // A plain S_IFREG mknod makes an empty regular file.
  CHECK_SYS(mknod((t / "reg").c_str(), S_IFREG | 0600, 0));
  st = must_lstat(t / "reg");
  CHECK(S_ISREG(st.st_mode));
  CHECK(st.st_size == 0);
}

}  // TEST_SUITE mknod

TEST_SUITE("statvfs") {

TEST_CASE("statvfs and fstatvfs are sane") {
  TestDir t;
  write_file(t / "f", "x");
  struct statvfs sv{};
  REQUIRE_SYS(statvfs(t.path().c_str(), &sv));
  CHECK(sv.f_bsize > 0);
  CHECK(sv.f_frsize > 0);
  CHECK(sv.f_blocks > 0);
  CHECK(sv.f_bfree <= sv.f_blocks);
  CHECK(sv.f_bavail <= sv.f_bfree);
  CHECK(sv.f_files > 0);
  CHECK(sv.f_ffree <= sv.f_files);
  CHECK(sv.f_namemax >= 255);
  Fd fd = must_open(t / "f", O_RDONLY);
  struct statvfs fv{};
  REQUIRE_SYS(fstatvfs(fd, &fv));
  CHECK(fv.f_bsize == sv.f_bsize);
  CHECK(fv.f_blocks == sv.f_blocks);
  struct statvfs top{};
  REQUIRE_SYS(statvfs(top_dir().c_str(), &top));
  CHECK(top.f_blocks == sv.f_blocks);
  CHECK_ERR(statvfs((t / "nope").c_str(), &sv), ENOENT);
}

}  // TEST_SUITE statvfs

TEST_SUITE("access") {

TEST_CASE("access and faccessat as root") {
  TestDir t;
  write_file(t / "none", "x", 0000);
  write_file(t / "rw", "x", 0644);
  write_file(t / "ux", "x", 0100);
  write_file(t / "ox", "x", 0001);
  REQUIRE_SYS(chmod((t / "none").c_str(), 0000));
  REQUIRE_SYS(chmod((t / "ux").c_str(), 0100));
  REQUIRE_SYS(chmod((t / "ox").c_str(), 0001));
  REQUIRE_SYS(mkdir((t / "d").c_str(), 0000));
  REQUIRE_SYS(chmod((t / "d").c_str(), 0000));
  REQUIRE_SYS(symlink("missing", (t / "dangling").c_str()));
  CHECK_SYS(access((t / "none").c_str(), F_OK));
  CHECK_SYS(access((t / "none").c_str(), R_OK | W_OK));
  CHECK_ERR(access((t / "none").c_str(), X_OK), EACCES);
  CHECK_ERR(access((t / "rw").c_str(), X_OK), EACCES);
  CHECK_SYS(access((t / "ux").c_str(), X_OK));
  CHECK_SYS(access((t / "ox").c_str(), R_OK | W_OK | X_OK));
  CHECK_SYS(access((t / "d").c_str(), R_OK | W_OK | X_OK));
  CHECK_ERR(access((t / "nope").c_str(), F_OK), ENOENT);
  CHECK_ERR(access((t / "rw/x").c_str(), F_OK), ENOTDIR);
  CHECK_ERR(access((t / "dangling").c_str(), F_OK), ENOENT);
  CHECK_SYS(faccessat(AT_FDCWD, (t / "dangling").c_str(), F_OK, AT_SYMLINK_NOFOLLOW));
  CHECK_SYS(faccessat(AT_FDCWD, (t / "rw").c_str(), R_OK | W_OK, AT_EACCESS));
  Fd dfd = must_open(t.path(), O_RDONLY | O_DIRECTORY);
  CHECK_SYS(faccessat(dfd, "ux", X_OK, 0));
  CHECK_ERR(faccessat(dfd, "rw", X_OK, 0), EACCES);
  CHECK_ERR(access((t / "rw").c_str(), 0100), EINVAL);
}

}  // TEST_SUITE access
