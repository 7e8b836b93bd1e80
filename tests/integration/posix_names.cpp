// posix_names.cpp — the namespace: mkdir, rmdir, unlink, symlink, readlink,
// rename (with flags), link, name length limits and cross-device errors.
#include <stdio.h>
#include <sys/stat.h>

#include <algorithm>

#include "posix_util.h"

using namespace pt;

namespace {

int rename2(const std::string& a, const std::string& b, unsigned flags) {
  return renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), flags);
}

}  // namespace

TEST_SUITE("mkdir") {

TEST_CASE("mkdir creates an empty directory and counts links") {
  TestDir t;
  nlink_t before = must_stat(t.path()).st_nlink;
  CHECK_SYS(mkdir((t / "d").c_str(), 0777));
  struct stat st = must_lstat(t / "d");
  CHECK(S_ISDIR(st.st_mode));
  CHECK((st.st_mode & 07777) == 0755);  // umask 022
  CHECK(st.st_nlink == 2);
  CHECK(st.st_uid == 0);
  CHECK(st.st_gid == 0);
  CHECK(list_names(t / "d").empty());
  CHECK(must_stat(t.path()).st_nlink == before + 1);
  CHECK(must_stat(t / "d/..").st_ino == must_stat(t.path()).st_ino);
  CHECK(must_stat(t / "d/.").st_ino == st.st_ino);
  CHECK_SYS(mkdir((t / "d/e").c_str(), 0700));
  CHECK(must_stat(t / "d").st_nlink == 3);
  CHECK((must_stat(t / "d/e").st_mode & 07777) == 0700);
  Fd dfd = must_open(t / "d", O_RDONLY | O_DIRECTORY);
  CHECK_SYS(mkdirat(dfd, "f", 0750));
  CHECK(S_ISDIR(must_stat(t / "d/f").st_mode));
  CHECK(must_stat(t / "d").st_nlink == 4);
}

TEST_CASE("mkdir errors") {
  TestDir t;
  write_file(t / "f", "x");
  REQUIRE_SYS(mkdir((t / "d").c_str(), 0755));
  REQUIRE_SYS(symlink("d", (t / "l").c_str()));
  CHECK_ERR(mkdir((t / "d").c_str(), 0755), EEXIST);
  CHECK_ERR(mkdir((t / "f").c_str(), 0755), EEXIST);
  CHECK_ERR(mkdir((t / "l").c_str(), 0755), EEXIST);
  CHECK_ERR(mkdir((t / "nope/d").c_str(), 0755), ENOENT);
  CHECK_ERR(mkdir((t / "f/d").c_str(), 0755), ENOTDIR);
  CHECK_ERR(mkdir("", 0755), ENOENT);
  CHECK(S_ISREG(must_lstat(t / "f").st_mode));
}

}  // TEST_SUITE mkdir

TEST_SUITE("rmdir") {

TEST_CASE("rmdir removes an empty directory") {
  TestDir t;
  REQUIRE_SYS(mkdir((t / "d").c_str(), 0755));
  nlink_t n = must_stat(t.path()).st_nlink;
  CHECK_SYS(rmdir((t / "d").c_str()));
  CHECK_FALSE(exists(t / "d"));
  CHECK(must_stat(t.path()).st_nlink == n - 1);
  // Recreating the name gives a working, empty directory.
  CHECK_SYS(mkdir((t / "d").c_str(), 0755));
  CHECK(list_names(t / "d").empty());
  // A directory removed while open: fd stays usable, it lists nothing.
  Fd fd = must_open(t / "d", O_RDONLY | O_DIRECTORY);
  CHECK_SYS(rmdir((t / "d").c_str()));
  struct stat st{};
  CHECK_SYS(fstat(fd, &st));
  CHECK(st.st_nlink == 0);
  CHECK_ERR(mkdirat(fd, "x", 0755), ENOENT);
  CHECK_ERR(openat(fd, "x", O_CREAT | O_WRONLY, 0644), ENOENT);
}

TEST_CASE("rmdir errors") {
  TestDir t;
  REQUIRE_SYS(mkdir((t / "full").c_str(), 0755));
  write_file(t / "full/f", "x");
  REQUIRE_SYS(mkdir((t / "full2").c_str(), 0755));
  REQUIRE_SYS(mkdir((t / "full2/sub").c_str(), 0755));
  write_file(t / "f", "x");
  REQUIRE_SYS(mkdir((t / "d").c_str(), 0755));
  REQUIRE_SYS(symlink("d", (t / "l").c_str()));
  CHECK_ERR2(rmdir((t / "full").c_str()), ENOTEMPTY, EEXIST);
  CHECK_ERR2(rmdir((t / "full2").c_str()), ENOTEMPTY, EEXIST);
  CHECK_ERR(rmdir((t / "f").c_str()), ENOTDIR);
  CHECK_ERR(rmdir((t / "nope").c_str()), ENOENT);
  CHECK_ERR(rmdir((t / "l").c_str()), ENOTDIR);
  CHECK_ERR(rmdir((t / "d/.").c_str()), EINVAL);
  CHECK_ERR2(rmdir((t / "d/..").c_str()), ENOTEMPTY, EEXIST);
  CHECK_ERR(rmdir((t / "f/x").c_str()), ENOTDIR);
  CHECK(exists(t / "full/f"));
  CHECK(exists(t / "d"));
  CHECK(exists(t / "l"));
}

}  // TEST_SUITE rmdir

TEST_SUITE("unlink") {

TEST_CASE("unlink removes names; open descriptors keep the file") {
  TestDir t;
  const std::string data = pattern(10000, 7);
  write_file(t / "f", data);
  Fd fd = must_open(t / "f", O_RDWR);
  CHECK_SYS(unlink((t / "f").c_str()));
  CHECK_FALSE(exists(t / "f"));
  CHECK(list_names(t.path()).empty());
  struct stat st{};
  REQUIRE_SYS(fstat(fd, &st));
  CHECK(st.st_nlink == 0);
  CHECK(st.st_size == 10000);
  CHECK(pread_all(fd, 10000, 0) == data);
  pwrite_all(fd, "tail", 10000);
  CHECK(pread_all(fd, 4, 10000) == "tail");
  CHECK_SYS(fsync(fd));
  // A new file with the same name is a different file.
  write_file(t / "f", "new");
  CHECK(read_file(t / "f") == "new");
  CHECK(pread_all(fd, 4, 0) == data.substr(0, 4));
  // Unlinking a symlink removes the link only.
  REQUIRE_SYS(symlink("f", (t / "l").c_str()));
  CHECK_SYS(unlink((t / "l").c_str()));
  CHECK_FALSE(exists(t / "l"));
  CHECK(read_file(t / "f") == "new");
  Fd dfd = must_open(t.path(), O_RDONLY | O_DIRECTORY);
  CHECK_SYS(unlinkat(dfd, "f", 0));
  REQUIRE_SYS(mkdir((t / "d").c_str(), 0755));
  CHECK_SYS(unlinkat(dfd, "d", AT_REMOVEDIR));
  CHECK(list_names(t.path()).empty());
}

TEST_CASE("unlink errors") {
  TestDir t;
  REQUIRE_SYS(mkdir((t / "d").c_str(), 0755));
  write_file(t / "f", "x");
  CHECK_ERR2(unlink((t / "d").c_str()), EISDIR, EPERM);
  CHECK_ERR(unlink((t / "nope").c_str()), ENOENT);
  CHECK_ERR(unlink((t / "f/x").c_str()), ENOTDIR);
  CHECK_ERR(unlink((t / "f/").c_str()), ENOTDIR);
  Fd dfd = must_open(t.path(), O_RDONLY | O_DIRECTORY);
  CHECK_ERR(unlinkat(dfd, "f", AT_REMOVEDIR), ENOTDIR);
  CHECK(exists(t / "d"));
  CHECK(exists(t / "f"));
}

}  // TEST_SUITE unlink

TEST_SUITE("symlink") {

TEST_CASE("symlink and readlink keep the target string exactly") {
  TestDir t;
  const std::vector<std::string> targets = {
      "f", "../x/y", "/absolute/path/nowhere", "with space and \xc3\xa9 and \n newline",
      std::string(1000, 'z'), "a//b/./c/", "."};
  int i = 0;
  for (const auto& target : targets) {
    std::string l = t / ("l" + std::to_string(i++));
    CAPTURE(target);
    REQUIRE_SYS(symlink(target.c_str(), l.c_str()));
    struct stat st = must_lstat(l);
    CHECK(S_ISLNK(st.st_mode));
    CHECK(st.st_size == static_cast<off_t>(target.size()));
    char buf[4096];
    ssize_t n = readlink(l.c_str(), buf, sizeof buf);
    REQUIRE(n >= 0);
    CHECK(std::string(buf, static_cast<size_t>(n)) == target);
  }
  // readlink into a short buffer truncates.
  char small[3];
  CHECK(readlink((t / "l2").c_str(), small, sizeof small) == 3);
  CHECK(std::string(small, 3) == "/ab");
  // readlinkat and following the link.
  write_file(t / "f", "content");
  Fd dfd = must_open(t.path(), O_RDONLY | O_DIRECTORY);
  char buf[16];
  CHECK(readlinkat(dfd, "l0", buf, sizeof buf) == 1);
  CHECK(read_file(t / "l0") == "content");
  CHECK_SYS(symlinkat("f", dfd, "l9"));
  CHECK(read_file(t / "l9") == "content");
  // Symlinks to directories resolve through.
  REQUIRE_SYS(mkdir((t / "d").c_str(), 0755));
  write_file(t / "d/in", "inside");
  REQUIRE_SYS(symlink("d", (t / "ld").c_str()));
  CHECK(read_file(t / "ld/in") == "inside");
  CHECK(list_names(t / "ld") == std::vector<std::string>{"in"});
}

TEST_CASE("symlink and readlink errors") {
  TestDir t;
  write_file(t / "f", "x");
  REQUIRE_SYS(symlink("f", (t / "l").c_str()));
  REQUIRE_SYS(symlink("l_b", (t / "l_a").c_str()));
  REQUIRE_SYS(symlink("l_a", (t / "l_b").c_str()));
  char buf[64];
  CHECK_ERR(symlink("x", (t / "l").c_str()), EEXIST);
  CHECK_ERR(symlink("x", (t / "f").c_str()), EEXIST);
  CHECK_ERR(symlink("", (t / "empty").c_str()), ENOENT);
  CHECK_ERR(symlink("x", (t / "nope/l").c_str()), ENOENT);
  CHECK_ERR(readlink((t / "f").c_str(), buf, sizeof buf), EINVAL);
  CHECK_ERR(readlink(t.path().c_str(), buf, sizeof buf), EINVAL);
  CHECK_ERR(readlink((t / "nope").c_str(), buf, sizeof buf), ENOENT);
  CHECK_ERR(readlink((t / "l").c_str(), buf, 0), EINVAL);
  CHECK_ERR(open((t / "l_a").c_str(), O_RDONLY), ELOOP);
  CHECK_ERR(symlink(std::string(5000, 'x').c_str(), (t / "toolong").c_str()), ENAMETOOLONG);
  CHECK_FALSE(exists(t / "toolong"));
}

}  // TEST_SUITE symlink

TEST_SUITE("rename") {

TEST_CASE("rename a file within and across directories") {
  TestDir t;
  write_file(t / "a", "AAA");
  REQUIRE_SYS(mkdir((t / "d").c_str(), 0755));
  ino_t ino = must_stat(t / "a").st_ino;
  CHECK_SYS(rename((t / "a").c_str(), (t / "b").c_str()));
  CHECK_FALSE(exists(t / "a"));
  CHECK(must_stat(t / "b").st_ino == ino);
  CHECK(read_file(t / "b") == "AAA");
  Fd fd = must_open(t / "b", O_RDONLY);
  CHECK_SYS(rename((t / "b").c_str(), (t / "d/c").c_str()));
  CHECK_FALSE(exists(t / "b"));
  CHECK(must_stat(t / "d/c").st_ino == ino);
  CHECK(read_file(t / "d/c") == "AAA");
  CHECK(list_names(t.path()) == std::vector<std::string>{"d"});
  CHECK(list_names(t / "d") == std::vector<std::string>{"c"});
  // The open descriptor follows the file.
  struct stat st{};
  REQUIRE_SYS(fstat(fd, &st));
  CHECK(st.st_ino == ino);
  CHECK(pread_all(fd, 3, 0) == "AAA");
  // Renaming to itself is a no-op; so is renaming between two links of one file.
  CHECK_SYS(rename((t / "d/c").c_str(), (t / "d/c").c_str()));
  REQUIRE_SYS(link((t / "d/c").c_str(), (t / "d/c2").c_str()));
  CHECK_SYS(rename((t / "d/c").c_str(), (t / "d/c2").c_str()));
  CHECK(exists(t / "d/c"));
  CHECK(exists(t / "d/c2"));
  CHECK(must_stat(t / "d/c").st_nlink == 2);
  // renameat with directory fds.
  Fd d1 = must_open(t.path(), O_RDONLY | O_DIRECTORY);
  Fd d2 = must_open(t / "d", O_RDONLY | O_DIRECTORY);
  CHECK_SYS(renameat(d2, "c2", d1, "back"));
  CHECK(read_file(t / "back") == "AAA");
}

TEST_CASE("rename over an existing file replaces it") {
  TestDir t;
  write_file(t / "src", "new");
  write_file(t / "dst", "old");
  ino_t src = must_stat(t / "src").st_ino;
  Fd old = must_open(t / "dst", O_RDONLY);
  CHECK_SYS(rename((t / "src").c_str(), (t / "dst").c_str()));
  CHECK_FALSE(exists(t / "src"));
  CHECK(read_file(t / "dst") == "new");
  CHECK(must_stat(t / "dst").st_ino == src);
  CHECK(list_names(t.path()) == std::vector<std::string>{"dst"});
  // The replaced file lives on through its descriptor.
  struct stat st{};
  REQUIRE_SYS(fstat(old, &st));
  CHECK(st.st_nlink == 0);
  CHECK(pread_all(old, 10, 0) == "old");
  // Replacing one of two hard links leaves the other.
  write_file(t / "x", "x");
  REQUIRE_SYS(link((t / "x").c_str(), (t / "x2").c_str()));
  CHECK_SYS(rename((t / "dst").c_str(), (t / "x").c_str()));
  CHECK(read_file(t / "x") == "new");
  CHECK(read_file(t / "x2") == "x");
  CHECK(must_stat(t / "x2").st_nlink == 1);
  // A symlink is renamed as itself.
  REQUIRE_SYS(symlink("x2", (t / "l").c_str()));
  CHECK_SYS(rename((t / "l").c_str(), (t / "l2").c_str()));
  CHECK(S_ISLNK(must_lstat(t / "l2").st_mode));
  CHECK(read_file(t / "l2") == "x");
}

TEST_CASE("rename directories within and across directories") {
  TestDir t;
  REQUIRE_SYS(mkdir((t / "p1").c_str(), 0755));
  REQUIRE_SYS(mkdir((t / "p2").c_str(), 0755));
  REQUIRE_SYS(mkdir((t / "p1/d").c_str(), 0755));
  write_file(t / "p1/d/f", "F");
  REQUIRE_SYS(mkdir((t / "p1/d/sub").c_str(), 0755));
  ino_t ino = must_stat(t / "p1/d").st_ino;
  CHECK(must_stat(t / "p1").st_nlink == 3);
  CHECK(must_stat(t / "p2").st_nlink == 2);
  CHECK_SYS(rename((t / "p1/d").c_str(), (t / "p1/e").c_str()));
  CHECK(must_stat(t / "p1/e").st_ino == ino);
  CHECK(must_stat(t / "p1").st_nlink == 3);
  CHECK_SYS(rename((t / "p1/e").c_str(), (t / "p2/e").c_str()));
  CHECK_FALSE(exists(t / "p1/e"));
  CHECK(must_stat(t / "p2/e").st_ino == ino);
  CHECK(read_file(t / "p2/e/f") == "F");
  CHECK(must_stat(t / "p1").st_nlink == 2);
  CHECK(must_stat(t / "p2").st_nlink == 3);
  CHECK(must_stat(t / "p2/e/..").st_ino == must_stat(t / "p2").st_ino);
  CHECK(must_stat(t / "p2/e/sub/../..").st_ino == must_stat(t / "p2").st_ino);
  CHECK(list_names(t / "p1").empty());
  CHECK(list_names(t / "p2/e") == std::vector<std::string>{"f", "sub"});
  // Onto an empty directory.
  REQUIRE_SYS(mkdir((t / "p1/empty").c_str(), 0755));
  CHECK_SYS(rename((t / "p2/e").c_str(), (t / "p1/empty").c_str()));
  CHECK(must_stat(t / "p1/empty").st_ino == ino);
  CHECK(read_file(t / "p1/empty/f") == "F");
  CHECK(must_stat(t / "p1").st_nlink == 3);
  CHECK(must_stat(t / "p2").st_nlink == 2);
}

TEST_CASE("rename errors") {
  TestDir t;
  write_file(t / "f", "file");
  write_file(t / "g", "g");
  REQUIRE_SYS(mkdir((t / "d").c_str(), 0755));
  REQUIRE_SYS(mkdir((t / "full").c_str(), 0755));
  write_file(t / "full/x", "x");
  REQUIRE_SYS(mkdir((t / "d/sub").c_str(), 0755));
  CHECK_ERR2(rename((t / "d").c_str(), (t / "full").c_str()), ENOTEMPTY, EEXIST);
  CHECK_ERR(rename((t / "f").c_str(), (t / "d").c_str()), EISDIR);
  CHECK_ERR(rename((t / "d").c_str(), (t / "f").c_str()), ENOTDIR);
  CHECK_ERR(rename((t / "d").c_str(), (t / "d/sub/x").c_str()), EINVAL);
  CHECK_ERR(rename((t / "d").c_str(), (t / "d/x").c_str()), EINVAL);
  CHECK_ERR(rename((t / "nope").c_str(), (t / "x").c_str()), ENOENT);
  CHECK_ERR(rename((t / "f").c_str(), (t / "nope/x").c_str()), ENOENT);
  CHECK_ERR(rename((t / "f").c_str(), (t / "g/x").c_str()), ENOTDIR);
  CHECK_ERR(rename((t / "f").c_str(), (t / "g/").c_str()), ENOTDIR);
  CHECK_ERR(rename((t / "d/.").c_str(), (t / "x").c_str()), EBUSY);
  CHECK_ERR2(rename((t / "d/sub/..").c_str(), (t / "x").c_str()), EBUSY, ENOTEMPTY);
  // Nothing moved.
  CHECK(read_file(t / "f") == "file");
  CHECK(read_file(t / "g") == "g");
  CHECK(S_ISDIR(must_lstat(t / "d/sub").st_mode));
  CHECK(read_file(t / "full/x") == "x");
  CHECK(list_names(t.path()) == std::vector<std::string>{"d", "f", "full", "g"});
}

TEST_CASE("rename RENAME_NOREPLACE") {
  TestDir t;
  write_file(t / "a", "A");
  write_file(t / "b", "B");
  REQUIRE_SYS(mkdir((t / "d").c_str(), 0755));
  CHECK_ERR(rename2(t / "a", t / "b", RENAME_NOREPLACE), EEXIST);
  CHECK_ERR(rename2(t / "a", t / "d", RENAME_NOREPLACE), EEXIST);
  CHECK_ERR(rename2(t / "d", t / "a", RENAME_NOREPLACE), EEXIST);
  CHECK(read_file(t / "a") == "A");
  CHECK(read_file(t / "b") == "B");
  CHECK_SYS(rename2(t / "a", t / "c", RENAME_NOREPLACE));
  CHECK_FALSE(exists(t / "a"));
  CHECK(read_file(t / "c") == "A");
  CHECK_SYS(rename2(t / "c", t / "d/c", RENAME_NOREPLACE));
  CHECK(read_file(t / "d/c") == "A");
  CHECK_ERR(rename2(t / "nope", t / "x", RENAME_NOREPLACE), ENOENT);
}

TEST_CASE("rename RENAME_EXCHANGE") {
  TestDir t;
  write_file(t / "a", "A");
  write_file(t / "b", "BB");
  ino_t ia = must_stat(t / "a").st_ino, ib = must_stat(t / "b").st_ino;
  CHECK_SYS(rename2(t / "a", t / "b", RENAME_EXCHANGE));
  CHECK(read_file(t / "a") == "BB");
  CHECK(read_file(t / "b") == "A");
  CHECK(must_stat(t / "a").st_ino == ib);
  CHECK(must_stat(t / "b").st_ino == ia);

  // File <-> directory across directories.
  REQUIRE_SYS(mkdir((t / "p1").c_str(), 0755));
  REQUIRE_SYS(mkdir((t / "p2").c_str(), 0755));
  REQUIRE_SYS(mkdir((t / "p1/dir").c_str(), 0755));
  write_file(t / "p1/dir/in", "inside");
  write_file(t / "p2/file", "file");
  ino_t idir = must_stat(t / "p1/dir").st_ino, ifile = must_stat(t / "p2/file").st_ino;
  CHECK(must_stat(t / "p1").st_nlink == 3);
  CHECK(must_stat(t / "p2").st_nlink == 2);
  CHECK_SYS(rename2(t / "p1/dir", t / "p2/file", RENAME_EXCHANGE));
  struct stat s1 = must_lstat(t / "p1/dir"), s2 = must_lstat(t / "p2/file");
  CHECK(S_ISREG(s1.st_mode));
  CHECK(s1.st_ino == ifile);
  CHECK(S_ISDIR(s2.st_mode));
  CHECK(s2.st_ino == idir);
  CHECK(read_file(t / "p1/dir") == "file");
  CHECK(read_file(t / "p2/file/in") == "inside");
  CHECK(must_stat(t / "p2/file/..").st_ino == must_stat(t / "p2").st_ino);
  CHECK(must_stat(t / "p1").st_nlink == 2);
  CHECK(must_stat(t / "p2").st_nlink == 3);

  // Two directories.
  REQUIRE_SYS(mkdir((t / "p1/x").c_str(), 0755));
  write_file(t / "p1/x/xf", "x");
  CHECK_SYS(rename2(t / "p1/x", t / "p2/file", RENAME_EXCHANGE));
  CHECK(read_file(t / "p1/x/in") == "inside");
  CHECK(read_file(t / "p2/file/xf") == "x");
  CHECK(must_stat(t / "p1/x/..").st_ino == must_stat(t / "p1").st_ino);

  // Exchange needs both names.
  CHECK_ERR(rename2(t / "a", t / "nope", RENAME_EXCHANGE), ENOENT);
  CHECK_ERR(rename2(t / "nope", t / "a", RENAME_EXCHANGE), ENOENT);
  CHECK(read_file(t / "a") == "BB");
  // A directory with one of its own descendants.
  CHECK_ERR(rename2(t / "p1", t / "p1/x/in", RENAME_EXCHANGE), EINVAL);
}

TEST_CASE("rename with bad flags") {
  TestDir t;
  write_file(t / "a", "A");
  write_file(t / "b", "B");
  CHECK_ERR(rename2(t / "a", t / "b", RENAME_NOREPLACE | RENAME_EXCHANGE), EINVAL);
  CHECK_ERR(rename2(t / "a", t / "c", RENAME_NOREPLACE | RENAME_EXCHANGE), EINVAL);
  CHECK_ERR(rename2(t / "a", t / "c", 1u << 20), EINVAL);
  CHECK(read_file(t / "a") == "A");
  CHECK(read_file(t / "b") == "B");
  CHECK_FALSE(exists(t / "c"));
}

}  // TEST_SUITE rename

TEST_SUITE("link") {

TEST_CASE("link shares one inode between names") {
  TestDir t;
  write_file(t / "a", "shared");
  REQUIRE_SYS(mkdir((t / "d").c_str(), 0755));
  CHECK_SYS(link((t / "a").c_str(), (t / "b").c_str()));
  CHECK_SYS(link((t / "a").c_str(), (t / "d/c").c_str()));
  struct stat a = must_stat(t / "a"), b = must_stat(t / "b"), c = must_stat(t / "d/c");
  CHECK(a.st_ino == b.st_ino);
  CHECK(a.st_ino == c.st_ino);
  CHECK(a.st_nlink == 3);
  CHECK(b.st_nlink == 3);
  CHECK(c.st_nlink == 3);
  // Writes through one name are seen through the others.
  {
    Fd fd = must_open(t / "b", O_WRONLY | O_APPEND);
    REQUIRE(write(fd, "+more", 5) == 5);
  }
  CHECK(read_file(t / "a") == "shared+more");
  CHECK(read_file(t / "d/c") == "shared+more");
  CHECK(must_stat(t / "d/c").st_size == 11);
  CHECK_SYS(chmod((t / "d/c").c_str(), 0600));
  CHECK((must_stat(t / "a").st_mode & 07777) == 0600);
  // Unlinking one name decrements the count on the rest.
  CHECK_SYS(unlink((t / "a").c_str()));
  CHECK(must_stat(t / "b").st_nlink == 2);
  CHECK(must_stat(t / "d/c").st_nlink == 2);
  CHECK_SYS(unlink((t / "d/c").c_str()));
  CHECK(must_stat(t / "b").st_nlink == 1);
  CHECK(read_file(t / "b") == "shared+more");
  // linkat with fds; a link to a symlink links the symlink itself unless
  // AT_SYMLINK_FOLLOW.
  REQUIRE_SYS(symlink("b", (t / "sl").c_str()));
  Fd dfd = must_open(t.path(), O_RDONLY | O_DIRECTORY);
  CHECK_SYS(linkat(dfd, "sl", dfd, "sl2", 0));
  CHECK(S_ISLNK(must_lstat(t / "sl2").st_mode));
  CHECK(must_lstat(t / "sl2").st_ino == must_lstat(t / "sl").st_ino);
  CHECK(must_lstat(t / "sl").st_nlink == 2);
  CHECK_SYS(linkat(dfd, "sl", dfd, "followed", AT_SYMLINK_FOLLOW));
  CHECK(S_ISREG(must_lstat(t / "followed").st_mode));
  CHECK(must_stat(t / "followed").st_ino == must_stat(t / "b").st_ino);
  CHECK(must_stat(t / "b").st_nlink == 2);
}

TEST_CASE("link errors") {
  TestDir t;
  write_file(t / "a", "x");
  write_file(t / "b", "y");
  REQUIRE_SYS(mkdir((t / "d").c_str(), 0755));
  CHECK_ERR(link((t / "d").c_str(), (t / "d2").c_str()), EPERM);
  CHECK_ERR(link((t / "a").c_str(), (t / "b").c_str()), EEXIST);
  CHECK_ERR(link((t / "a").c_str(), (t / "d").c_str()), EEXIST);
  CHECK_ERR(link((t / "nope").c_str(), (t / "c").c_str()), ENOENT);
  CHECK_ERR(link((t / "a").c_str(), (t / "nope/c").c_str()), ENOENT);
  CHECK_ERR(link((t / "a").c_str(), (t / "b/c").c_str()), ENOTDIR);
  CHECK(must_stat(t / "a").st_nlink == 1);
  CHECK(read_file(t / "b") == "y");
  CHECK_FALSE(exists(t / "d2"));
}

}  // TEST_SUITE link

TEST_SUITE("names") {

TEST_CASE("names of 255 bytes work, 256 give ENAMETOOLONG") {
  TestDir t;
  const std::string ok = rep(255, 'n'), bad = rep(256, 'n');
  write_file(t / ok, "x");
  CHECK(read_file(t / ok) == "x");
  CHECK(list_names(t.path()) == std::vector<std::string>{ok});
  struct stat st{};
  CHECK_ERR(stat((t / bad).c_str(), &st), ENAMETOOLONG);
  CHECK_ERR(open((t / bad).c_str(), O_CREAT | O_WRONLY, 0644), ENAMETOOLONG);
  CHECK_ERR(mkdir((t / bad).c_str(), 0755), ENAMETOOLONG);
  CHECK_ERR(symlink("x", (t / bad).c_str()), ENAMETOOLONG);
  CHECK_ERR(mknod((t / bad).c_str(), S_IFIFO | 0644, 0), ENAMETOOLONG);
  CHECK_ERR(link((t / ok).c_str(), (t / bad).c_str()), ENAMETOOLONG);
  CHECK_ERR(rename((t / ok).c_str(), (t / bad).c_str()), ENAMETOOLONG);
  CHECK_ERR(unlink((t / bad).c_str()), ENAMETOOLONG);
  CHECK(list_names(t.path()) == std::vector<std::string>{ok});
  REQUIRE_SYS(mkdir((t / "d").c_str(), 0755));
  CHECK_SYS(rename((t / ok).c_str(), (t / ("d/" + ok)).c_str()));
  CHECK(read_file(t / ("d/" + ok)) == "x");
  // A path longer than PATH_MAX.
  std::string longpath = t.path();
  while (longpath.size() <= 4096) longpath += "/" + rep(200, 'p');
  CHECK_ERR(stat(longpath.c_str(), &st), ENAMETOOLONG);
}

TEST_CASE("unusual but valid names") {
  TestDir t;
  const std::vector<std::string> names = {
      " ", "-", "..." , ".hidden", "tab\there", "nl\nhere", "\xff\xfe binary", "\xe2\x9c\x93 utf8",
      "back\\slash", "star*?[]", "a:b;c"};
  for (const auto& n : names) {
    CAPTURE(n);
    write_file(t / n, n);
  }
  std::vector<std::string> want = names;
  std::sort(want.begin(), want.end());
  CHECK(list_names(t.path()) == want);
  for (const auto& n : names) {
    CAPTURE(n);
    CHECK(read_file(t / n) == n);
    CHECK_SYS(unlink((t / n).c_str()));
  }
  CHECK(list_names(t.path()).empty());
}

TEST_CASE("EXDEV between the tree under test and another mount") {
  const std::string& native = native_dir();
  if (native.empty()) {
    MESSAGE("TCFS_TEST_NATIVE not set: skipped");
    return;
  }
  TestDir t;
  struct stat here = must_stat(t.path()), there = must_stat(native);
  if (here.st_dev == there.st_dev) {
    MESSAGE("TCFS_TEST_NATIVE is on the same mount: skipped");
    return;
  }
  const std::string out = native + "/exdev." + std::to_string(getpid());
  REQUIRE_SYS(mkdir(out.c_str(), 0755));
  write_file(t / "f", "inside");
  write_file(out + "/g", "outside");
  REQUIRE_SYS(mkdir((t / "d").c_str(), 0755));
  CHECK_ERR(rename((t / "f").c_str(), (out + "/f").c_str()), EXDEV);
  CHECK_ERR(rename((out + "/g").c_str(), (t / "g").c_str()), EXDEV);
  CHECK_ERR(rename((t / "d").c_str(), (out + "/d").c_str()), EXDEV);
  CHECK_ERR(link((t / "f").c_str(), (out + "/f").c_str()), EXDEV);
  CHECK_ERR(link((out + "/g").c_str(), (t / "g").c_str()), EXDEV);
  CHECK_ERR(rename2(t / "f", out + "/g", RENAME_EXCHANGE), EXDEV);
  CHECK(read_file(t / "f") == "inside");
  CHECK(read_file(out + "/g") == "outside");
  CHECK_FALSE(exists(t / "g"));
  CHECK_FALSE(exists(out + "/f"));
  CHECK(rm_rf(out));
}

}  // TEST_SUITE names
