// posix_stress.cpp — behaviour that depends on the daemon keeping its state
// right: several processes at once, names reused for other objects,
// operations through descriptors whose path changed or vanished, directory
// timestamps, exec, 64-bit offsets.
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>

#include <algorithm>

#include "posix_util.h"

using namespace pt;

namespace {

// Run fn(i) in n children at once (released together); returns the number
// of children that did not exit 0, and the sum of their exit codes in *codes.
int run_parallel(int n, const std::function<int(int)>& fn, int* codes = nullptr) {
  int start[2];
  REQUIRE_SYS(pipe2(start, O_CLOEXEC));
  std::vector<pid_t> kids;
  std::fflush(nullptr);
  for (int i = 0; i < n; ++i) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      close(start[1]);
      char c;
      (void)!read(start[0], &c, 1);
      _exit(std::min(fn(i), 255));
    }
    kids.push_back(pid);
  }
  close(start[0]);
  close(start[1]);
  int bad = 0, sum = 0;
  for (pid_t k : kids) {
    int status = 0;
    waitpid(k, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++bad;
    if (WIFEXITED(status)) sum += WEXITSTATUS(status);
  }
  if (codes) *codes = sum;
  return bad;
}

int count_entries(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (!d) return -1;
  int n = 0;
  while (readdir(d)) ++n;
  closedir(d);
  return n;
}

}  // namespace

TEST_SUITE("concurrency") {

TEST_CASE("parallel directory listings from several processes") {
  TestDir t;
  for (int i = 0; i < 60; ++i) write_file(t / ("e" + std::to_string(i)), "");
  const std::string dir = t.path();
  int wrong = 0;
  int bad = run_parallel(4, [&](int) {
    int errors = 0;
    for (int round = 0; round < 300; ++round) {
      if (count_entries(dir) != 62) ++errors;
      // A stream abandoned half way and one that seeks back.
      DIR* d = opendir(dir.c_str());
      if (!d) return 100;
      for (int k = 0; k < round % 40; ++k) readdir(d);
      long pos = telldir(d);
      int rest = 0;
      while (readdir(d)) ++rest;
      seekdir(d, pos);
      int rest2 = 0;
      while (readdir(d)) ++rest2;
      if (rest != rest2) ++errors;
      closedir(d);
    }
    return errors;
  }, &wrong);
  CHECK(bad == 0);
  CHECK(wrong == 0);
  CHECK(count_entries(dir) == 62);
}

TEST_CASE("concurrent creates, renames and unlinks in one directory") {
  TestDir t;
  const std::string dir = t.path();
  constexpr int kProcs = 4, kFiles = 200;
  int bad = run_parallel(kProcs, [&](int p) {
    for (int i = 0; i < kFiles; ++i) {
      std::string a = dir + "/p" + std::to_string(p) + "-" + std::to_string(i);
      int fd = open(a.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
      if (fd < 0) return 1;
      std::string content = a.substr(dir.size());
      if (write(fd, content.data(), content.size()) != static_cast<ssize_t>(content.size())) return 2;
      close(fd);
      if (rename(a.c_str(), (a + ".r").c_str()) != 0) return 3;
      if (i % 2 == 0 && unlink((a + ".r").c_str()) != 0) return 4;
      if (i % 10 == 0 && mkdir((a + ".d").c_str(), 0755) != 0) return 5;
    }
    return 0;
  });
  CHECK(bad == 0);
  std::vector<std::string> want;
  for (int p = 0; p < kProcs; ++p)
    for (int i = 0; i < kFiles; ++i) {
      std::string a = "p" + std::to_string(p) + "-" + std::to_string(i);
      if (i % 2) want.push_back(a + ".r");
      if (i % 10 == 0) want.push_back(a + ".d");
    }
  std::sort(want.begin(), want.end());
  std::vector<std::string> got = list_names(dir);
  CHECK(got.size() == want.size());
  CHECK(got == want);
  int wrong = 0;
  for (const auto& n : want)
    if (n.size() > 2 && n.substr(n.size() - 2) == ".r" && read_file(t / n) != "/" + n.substr(0, n.size() - 2))
      ++wrong;
  CHECK(wrong == 0);
  CHECK(must_stat(dir).st_nlink == 2 + kProcs * kFiles / 10);
}

TEST_CASE("concurrent writers to disjoint ranges of one file") {
  TestDir t;
  constexpr int kProcs = 4;
  constexpr size_t kSlice = 1 << 20;
  write_file(t / "f", "");
  const std::string path = t / "f";
  int bad = run_parallel(kProcs, [&](int p) {
    int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return 1;
    std::string data = pattern(kSlice, 100 + p);
    for (size_t off = 0; off < kSlice; off += 65536)
      if (pwrite(fd, data.data() + off, 65536, static_cast<off_t>(p * kSlice + off)) != 65536) return 2;
    close(fd);
    return 0;
  });
  CHECK(bad == 0);
  std::string want;
  for (int p = 0; p < kProcs; ++p) want += pattern(kSlice, 100 + p);
  CHECK(must_stat(path).st_size == static_cast<off_t>(want.size()));
  CHECK(read_file(path) == want);
}

}  // TEST_SUITE concurrency

TEST_SUITE("identity") {

TEST_CASE("a name reused for objects of other types") {
  TestDir t;
  const std::string x = t / "x";
  int wrong = 0;
  for (int i = 0; i < 60; ++i) {
    write_file(x, "file" + std::to_string(i));
    struct stat st = must_lstat(x);
    if (!S_ISREG(st.st_mode) || read_file(x) != "file" + std::to_string(i)) ++wrong;
    REQUIRE_SYS(unlink(x.c_str()));
    REQUIRE_SYS(mkdir(x.c_str(), 0700));
    st = must_lstat(x);
    if (!S_ISDIR(st.st_mode) || (st.st_mode & 07777) != 0700 || st.st_nlink != 2) ++wrong;
    write_file(x + "/in", "in");
    if (list_names(x) != std::vector<std::string>{"in"}) ++wrong;
    REQUIRE_SYS(unlink((x + "/in").c_str()));
    REQUIRE_SYS(rmdir(x.c_str()));
    std::string target = "target-" + std::to_string(i);
    REQUIRE_SYS(symlink(target.c_str(), x.c_str()));
    char buf[64];
    ssize_t n = readlink(x.c_str(), buf, sizeof buf);
    if (!S_ISLNK(must_lstat(x).st_mode) || n != static_cast<ssize_t>(target.size()) ||
        std::string(buf, static_cast<size_t>(n)) != target)
      ++wrong;
    REQUIRE_SYS(unlink(x.c_str()));
    REQUIRE_SYS(mkfifo(x.c_str(), 0600));
    if (!S_ISFIFO(must_lstat(x).st_mode)) ++wrong;
    REQUIRE_SYS(unlink(x.c_str()));
  }
  CHECK(wrong == 0);
  CHECK(list_names(t.path()).empty());
}

// ext4 and XFS hand a freed inode number to the next new file at once,
// while the kernel may still hold the old node: each new file must be
// itself (its own content, mode and link count), never the deleted one.
TEST_CASE("a name reused for files, one after another") {
  TestDir t;
  const std::string x = t / "x";
  int wrong = 0;
  for (int i = 0; i < 200; ++i) {
    std::string want = "generation " + std::to_string(i);
    write_file(x, want);
    REQUIRE_SYS(chmod(x.c_str(), 0600 | (i % 2 ? 0044 : 0)));
    struct stat st = must_lstat(x);
    if (!S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_size != static_cast<off_t>(want.size()) ||
        (st.st_mode & 0777) != (0600u | (i % 2 ? 0044u : 0u)) || read_file(x) != want)
      ++wrong;
    REQUIRE_SYS(unlink(x.c_str()));
  }
  CHECK(wrong == 0);
  CHECK(list_names(t.path()).empty());
}

TEST_CASE("descriptors keep working after their path is renamed or unlinked") {
  TestDir t;
  REQUIRE_SYS(mkdir((t / "d").c_str(), 0755));
  write_file(t / "d/f", "0123456789");
  Fd fd = must_open(t / "d/f", O_RDWR);
  // Parent directory renamed under the open file.
  REQUIRE_SYS(rename((t / "d").c_str(), (t / "e").c_str()));
  CHECK_SYS(fchmod(fd, 0600));
  CHECK_SYS(fchown(fd, 12345, 12345));
  CHECK_SYS(ftruncate(fd, 5));
  CHECK_SYS(fsetxattr(fd, "user.k", "v1", 2, 0));
  const timespec ts[2] = {{1000, 0}, {2000, 0}};
  CHECK_SYS(futimens(fd, ts));
  pwrite_all(fd, "AB", 0);
  struct stat st = must_stat(t / "e/f");
  CHECK((st.st_mode & 07777) == 0600);
  CHECK(st.st_uid == 12345);
  CHECK(st.st_size == 5);
  CHECK(read_file(t / "e/f") == "AB234");
  char v[8];
  CHECK(getxattr((t / "e/f").c_str(), "user.k", v, sizeof v) == 2);
  // The file itself unlinked: attribute changes through the fd still work.
  REQUIRE_SYS(unlink((t / "e/f").c_str()));
  CHECK_SYS(fchmod(fd, 0640));
  CHECK_SYS(fchown(fd, 0, 0));
  CHECK_SYS(ftruncate(fd, 3));
  CHECK_SYS(fsetxattr(fd, "user.k", "v2", 2, 0));
  CHECK(fgetxattr(fd, "user.k", v, sizeof v) == 2);
  CHECK(std::string(v, 2) == "v2");
  CHECK_SYS(fallocate(fd, 0, 0, 8192));
  CHECK_SYS(futimens(fd, ts));
  CHECK_SYS(fsync(fd));
  REQUIRE_SYS(fstat(fd, &st));
  CHECK(st.st_nlink == 0);
  CHECK((st.st_mode & 07777) == 0640);
  CHECK(st.st_uid == 0);
  CHECK(st.st_size == 8192);
  CHECK(st.st_mtim.tv_sec == 2000);
  CHECK(pread_all(fd, 4, 0) == std::string("AB2") + '\0');
  // A new file under the old name is unrelated.
  write_file(t / "e/f", "new");
  CHECK(must_stat(t / "e/f").st_ino != st.st_ino);
  CHECK(must_stat(t / "e/f").st_size == 3);
  REQUIRE_SYS(fstat(fd, &st));
  CHECK(st.st_size == 8192);
  // A directory fd whose directory was renamed still creates inside it.
  REQUIRE_SYS(mkdir((t / "d2").c_str(), 0755));
  Fd dfd = must_open(t / "d2", O_RDONLY | O_DIRECTORY);
  REQUIRE_SYS(rename((t / "d2").c_str(), (t / "d3").c_str()));
  Fd nf(openat(dfd, "made", O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
  CHECK(nf.ok());
  CHECK(exists(t / "d3/made"));
  CHECK_SYS(mkdirat(dfd, "sub", 0755));
  CHECK(S_ISDIR(must_stat(t / "d3/sub").st_mode));
  Fd up(openat(dfd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  REQUIRE(up.ok());
  struct stat ust{};
  REQUIRE_SYS(fstat(up, &ust));
  CHECK(ust.st_ino == must_stat(t.path()).st_ino);
}

TEST_CASE("paths with . and .. components") {
  TestDir t;
  REQUIRE_SYS(mkdir((t / "a").c_str(), 0755));
  REQUIRE_SYS(mkdir((t / "a/b").c_str(), 0755));
  write_file(t / "a/f", "f");
  CHECK(read_file(t / "a/./f") == "f");
  CHECK(read_file(t / "a/b/../f") == "f");
  CHECK(read_file(t / "a/b/.././b/../../a/f") == "f");
  CHECK(must_stat(t / "a/b/..").st_ino == must_stat(t / "a").st_ino);
  CHECK(must_stat(t / "a/.").st_ino == must_stat(t / "a").st_ino);
  CHECK(must_stat(t / "a//b//").st_ino == must_stat(t / "a/b").st_ino);
  write_file(t / "a/b/../g", "g");
  CHECK(read_file(t / "a/g") == "g");
  struct stat st{};
  CHECK_ERR(stat((t / "a/f/..").c_str(), &st), ENOTDIR);
  CHECK_ERR(mkdir((t / "a/.").c_str(), 0755), EEXIST);
  CHECK_ERR(mkdir((t / "a/..").c_str(), 0755), EEXIST);
}

}  // TEST_SUITE identity

TEST_SUITE("timestamps") {

TEST_CASE("directory mtime changes with its entries") {
  TestDir t;
  const std::string d = t / "d";
  REQUIRE_SYS(mkdir(d.c_str(), 0755));
  REQUIRE_SYS(mkdir((t / "other").c_str(), 0755));
  auto reset = [&](const std::string& p) {
    const timespec ts[2] = {{1000, 0}, {1000, 0}};
    REQUIRE_SYS(utimensat(AT_FDCWD, p.c_str(), ts, 0));
    REQUIRE(must_stat(p).st_mtim.tv_sec == 1000);
  };
  auto changed = [&](const std::string& p) { return must_stat(p).st_mtim.tv_sec != 1000; };
  reset(d);
  write_file(d + "/f", "x");
  CHECK(changed(d));
  reset(d);
  REQUIRE_SYS(mkdir((d + "/sub").c_str(), 0755));
  CHECK(changed(d));
  reset(d);
  REQUIRE_SYS(symlink("f", (d + "/l").c_str()));
  CHECK(changed(d));
  reset(d);
  REQUIRE_SYS(link((d + "/f").c_str(), (d + "/h").c_str()));
  CHECK(changed(d));
  reset(d);
  REQUIRE_SYS(rename((d + "/h").c_str(), (d + "/h2").c_str()));
  CHECK(changed(d));
  reset(d);
  REQUIRE_SYS(unlink((d + "/h2").c_str()));
  CHECK(changed(d));
  reset(d);
  REQUIRE_SYS(rmdir((d + "/sub").c_str()));
  CHECK(changed(d));
  reset(d);
  reset(t / "other");
  REQUIRE_SYS(rename((d + "/l").c_str(), (t / "other/l").c_str()));
  CHECK(changed(d));
  CHECK(changed(t / "other"));
  // Writing a file does not touch its directory.
  reset(d);
  {
    Fd fd = must_open(d + "/f", O_WRONLY);
    pwrite_all(fd, "more", 1);
  }
  CHECK(must_stat(d).st_mtim.tv_sec == 1000);
}

}  // TEST_SUITE timestamps

TEST_SUITE("readwrite") {

TEST_CASE("offsets beyond 4 GiB") {
  TestDir t;
  Fd fd = must_open(t / "f", O_CREAT | O_RDWR, 0644);
  const off_t far = (off_t{5} << 30) + 12345;
  pwrite_all(fd, "far away", far);
  struct stat st{};
  REQUIRE_SYS(fstat(fd, &st));
  CHECK(st.st_size == far + 8);
  CHECK(pread_all(fd, 8, far) == "far away");
  CHECK(pread_all(fd, 4, far - 4) == std::string(4, '\0'));
  CHECK(lseek(fd, 0, SEEK_END) == far + 8);
  CHECK_SYS(ftruncate(fd, (off_t{4} << 30) + 1));
  CHECK(must_stat(t / "f").st_size == (off_t{4} << 30) + 1);
  CHECK(pread_all(fd, 10, (off_t{4} << 30)) == std::string(1, '\0'));
}

TEST_CASE("a program copied into the tree can be executed") {
  TestDir t;
  const std::string src = "/bin/true";
  std::string bin = read_file(src);
  REQUIRE(bin.size() > 1000);
  write_file(t / "true", bin, 0755);
  REQUIRE_SYS(chmod((t / "true").c_str(), 0755));
  const std::string path = t / "true";
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    char* argv[] = {const_cast<char*>(path.c_str()), nullptr};
    execv(path.c_str(), argv);
    _exit(127);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  // A copy without execute permission cannot be run.
  write_file(t / "noexec", bin, 0644);
  const std::string nx = t / "noexec";
  char* argv[] = {const_cast<char*>(nx.c_str()), nullptr};
  CHECK_ERR(execv(nx.c_str(), argv), EACCES);
}

}  // TEST_SUITE readwrite
