// posix_io.cpp — open flags, reads and writes, O_DIRECT, sync calls, mmap.
#include <sys/mman.h>
#include <sys/uio.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <thread>

#include "posix_util.h"

using namespace pt;

TEST_SUITE("open") {

TEST_CASE("O_CREAT honours the mode and the umask") {
  TestDir t;
  struct Case {
    mode_t umask, mode, want;
  };
  int i = 0;
  for (Case c : {Case{022, 0666, 0644}, Case{077, 0666, 0600}, Case{0, 0777, 0777},
                 Case{0, 0666, 0666}, Case{027, 0777, 0750}, Case{0, 04755, 04755},
                 Case{0, 01700, 01700}, Case{022, 0, 0}}) {
    CAPTURE(c.umask);
    CAPTURE(c.mode);
    std::string f = t / ("f" + std::to_string(i)), d = t / ("d" + std::to_string(i)),
                p = t / ("p" + std::to_string(i));
    ++i;
    with_umask(c.umask, [&] {
      int fd = open(f.c_str(), O_CREAT | O_WRONLY | O_EXCL | O_CLOEXEC, c.mode);
      CHECK(fd >= 0);
      if (fd >= 0) close(fd);
      CHECK_SYS(mkdir(d.c_str(), c.mode));
      CHECK_SYS(mknod(p.c_str(), S_IFIFO | c.mode, 0));
      return 0;
    });
    CHECK((must_stat(f).st_mode & 07777) == c.want);
    CHECK((must_stat(d).st_mode & 07777) == (c.want & 01777));  // mkdir drops S_ISUID
    CHECK((must_lstat(p).st_mode & 07777) == c.want);
  }
  // The mode applies to the new file only; opening with O_CREAT again
  // changes nothing.
  with_umask(0, [&] {
    int fd = open((t / "f0").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0777);
    CHECK(fd >= 0);
    if (fd >= 0) close(fd);
    return 0;
  });
  CHECK((must_stat(t / "f0").st_mode & 07777) == 0644);
  // A file created without write permission can still be written through
  // the descriptor that created it.
  int fd = open((t / "ro").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0444);
  REQUIRE(fd >= 0);
  CHECK(write(fd, "abc", 3) == 3);
  CHECK(pread_all(fd, 3, 0) == "abc");
  close(fd);
  CHECK((must_stat(t / "ro").st_mode & 07777) == 0444);
}

TEST_CASE("O_EXCL") {
  TestDir t;
  write_file(t / "f", "keep");
  REQUIRE_SYS(symlink("missing", (t / "dangling").c_str()));
  REQUIRE_SYS(symlink("f", (t / "l").c_str()));
  REQUIRE_SYS(mkdir((t / "d").c_str(), 0755));
  CHECK_ERR(open((t / "f").c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
  CHECK_ERR(open((t / "dangling").c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
  CHECK_ERR(open((t / "l").c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
  CHECK_ERR(open((t / "d").c_str(), O_CREAT | O_EXCL | O_RDONLY, 0644), EEXIST);
  CHECK_FALSE(exists(t / "missing"));
  CHECK(read_file(t / "f") == "keep");
  {
    Fd fd = must_open(t / "new", O_CREAT | O_EXCL | O_RDWR, 0600);
    CHECK(write(fd, "n", 1) == 1);
  }
  CHECK(read_file(t / "new") == "n");
  // O_CREAT without O_EXCL opens an existing file untouched.
  { Fd fd = must_open(t / "f", O_CREAT | O_WRONLY, 0600); }
  CHECK(read_file(t / "f") == "keep");
  CHECK((must_stat(t / "f").st_mode & 07777) == 0644);
}

TEST_CASE("O_CREAT through a dangling symlink creates its target") {
  TestDir t;
  REQUIRE_SYS(symlink("target", (t / "l").c_str()));
  {
    Fd fd = must_open(t / "l", O_CREAT | O_WRONLY, 0640);
    CHECK(write(fd, "via link", 8) == 8);
  }
  CHECK(S_ISLNK(must_lstat(t / "l").st_mode));
  struct stat st = must_lstat(t / "target");
  CHECK(S_ISREG(st.st_mode));
  CHECK((st.st_mode & 07777) == 0640);
  CHECK(read_file(t / "target") == "via link");
}

TEST_CASE("O_TRUNC empties an existing file") {
  TestDir t;
  write_file(t / "f", pattern(100000, 8));
  Fd fd = must_open(t / "f", O_RDWR | O_TRUNC);
  struct stat st{};
  REQUIRE_SYS(fstat(fd, &st));
  CHECK(st.st_size == 0);
  CHECK(pread_all(fd, 10, 0).empty());
  CHECK(write(fd, "xy", 2) == 2);
  CHECK(read_file(t / "f") == "xy");
  // O_TRUNC on a new file and on a FIFO are harmless.
  { Fd n = must_open(t / "g", O_CREAT | O_WRONLY | O_TRUNC, 0644); }
  CHECK(must_stat(t / "g").st_size == 0);
}

TEST_CASE("O_APPEND writes always go to the end") {
  TestDir t;
  write_file(t / "f", "abc");
  Fd fd = must_open(t / "f", O_WRONLY | O_APPEND);
  CHECK(write(fd, "de", 2) == 2);
  CHECK(lseek(fd, 0, SEEK_SET) == 0);
  CHECK(write(fd, "fg", 2) == 2);
  CHECK(lseek(fd, 0, SEEK_CUR) == 7);
  CHECK(pwrite(fd, "hi", 2, 0) == 2);  // Linux: pwrite on O_APPEND appends
  CHECK(read_file(t / "f") == "abcdefghi");
  // Another writer extends the file; appends still land at the end.
  {
    Fd other = must_open(t / "f", O_WRONLY);
    pwrite_all(other, "XYZ", 9);
  }
  CHECK(write(fd, "!", 1) == 1);
  CHECK(read_file(t / "f") == "abcdefghiXYZ!");
}

TEST_CASE("concurrent O_APPEND writers from two processes") {
  TestDir t;
  write_file(t / "log", "");
  constexpr int kRecords = 400;
  constexpr size_t kLen = 128;
  int start[2];
  REQUIRE_SYS(pipe2(start, O_CLOEXEC));
  std::vector<pid_t> kids;
  for (char who : {'A', 'B'}) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      close(start[1]);
      char c;
      (void)!read(start[0], &c, 1);  // wait until both exist
      int fd = open((t / "log").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
      if (fd < 0) _exit(10);
      for (int i = 0; i < kRecords; ++i) {
        char rec[kLen];
        std::memset(rec, who, kLen);
        std::snprintf(rec, 16, "%c%06d", who, i);
        rec[7] = who;
        rec[kLen - 1] = '\n';
        if (write(fd, rec, kLen) != static_cast<ssize_t>(kLen)) _exit(11);
      }
      _exit(0);
    }
    kids.push_back(pid);
  }
  close(start[0]);
  close(start[1]);  // go
  for (pid_t k : kids) {
    int status = 0;
    REQUIRE(waitpid(k, &status, 0) == k);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  std::string log = read_file(t / "log");
  REQUIRE(log.size() == 2 * kRecords * kLen);
  std::map<char, int> next{{'A', 0}, {'B', 0}};
  bool intact = true, ordered = true;
  for (size_t off = 0; off < log.size(); off += kLen) {
    std::string rec = log.substr(off, kLen);
    char who = rec[0];
    if ((who != 'A' && who != 'B') || rec[kLen - 1] != '\n' ||
        rec.find_first_not_of(who, 8) != kLen - 1) {
      intact = false;
      break;
    }
    if (std::atoi(rec.substr(1, 6).c_str()) != next[who]++) ordered = false;
  }
  CHECK_MESSAGE(intact, "records were interleaved or torn");
  CHECK(ordered);
  CHECK(next['A'] == kRecords);
  CHECK(next['B'] == kRecords);
}

TEST_CASE("O_NOFOLLOW") {
  TestDir t;
  write_file(t / "f", "x");
  REQUIRE_SYS(mkdir((t / "d").c_str(), 0755));
  write_file(t / "d/in", "in");
  REQUIRE_SYS(symlink("f", (t / "l").c_str()));
  REQUIRE_SYS(symlink("d", (t / "ld").c_str()));
  CHECK_ERR(open((t / "l").c_str(), O_RDONLY | O_NOFOLLOW), ELOOP);
  CHECK_ERR(open((t / "l").c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW, 0644), ELOOP);
  CHECK_ERR(open((t / "ld").c_str(), O_RDONLY | O_NOFOLLOW | O_DIRECTORY), ENOTDIR);
  { Fd fd = must_open(t / "f", O_RDONLY | O_NOFOLLOW); }
  // Only the last component is affected.
  { Fd fd = must_open(t / "ld/in", O_RDONLY | O_NOFOLLOW); }
  Fd lp = must_open(t / "l", O_PATH | O_NOFOLLOW);
  struct stat st{};
  REQUIRE_SYS(fstat(lp, &st));
  CHECK(S_ISLNK(st.st_mode));
  char buf[8];
  CHECK(readlinkat(lp, "", buf, sizeof buf) == 1);
}

TEST_CASE("open errors") {
  TestDir t;
  write_file(t / "f", "data");
  REQUIRE_SYS(mkdir((t / "d").c_str(), 0755));
  CHECK_ERR(open((t / "nope").c_str(), O_RDONLY), ENOENT);
  CHECK_ERR(open((t / "nope/x").c_str(), O_RDONLY | O_CREAT, 0644), ENOENT);
  CHECK_ERR(open((t / "f").c_str(), O_RDONLY | O_DIRECTORY), ENOTDIR);
  CHECK_ERR(open((t / "f/x").c_str(), O_RDONLY), ENOTDIR);
  CHECK_ERR(open((t / "d").c_str(), O_WRONLY), EISDIR);
  CHECK_ERR(open((t / "d").c_str(), O_RDWR), EISDIR);
  CHECK_ERR(open((t / "d").c_str(), O_RDONLY | O_CREAT, 0644), EISDIR);
  CHECK_ERR(open((t / "new/").c_str(), O_WRONLY | O_CREAT, 0644), EISDIR);
  CHECK_ERR(open((t / "new").c_str(), O_RDONLY | O_CREAT | O_DIRECTORY, 0644), EINVAL);
  CHECK_FALSE(exists(t / "new"));
  Fd ro = must_open(t / "f", O_RDONLY);
  CHECK_ERR(write(ro, "x", 1), EBADF);
  CHECK_ERR(pwrite(ro, "x", 1, 0), EBADF);
  Fd wo = must_open(t / "f", O_WRONLY);
  char c;
  CHECK_ERR(read(wo, &c, 1), EBADF);
  Fd dfd = must_open(t / "d", O_RDONLY | O_DIRECTORY);
  CHECK_ERR(read(dfd, &c, 1), EISDIR);
  CHECK(read_file(t / "f") == "data");
}

// open(O_DIRECT) with a 4 KiB-aligned buffer of n bytes, or skip (tmpfs).
struct DirectFile {
  Fd fd;
  std::unique_ptr<void, decltype(&free)> mem{nullptr, &free};
  char* buf = nullptr;
  bool open(const std::string& path, int flags, size_t n) {
    if (fs_type() == "tmpfs") return false;
    int f = ::open(path.c_str(), flags | O_DIRECT | O_CLOEXEC, 0644);
    if (f < 0 && errno == EINVAL) return false;
    REQUIRE_SYS(f);
    fd = Fd(f);
    void* m = nullptr;
    REQUIRE(posix_memalign(&m, 4096, n) == 0);
    mem.reset(m);
    buf = static_cast<char*>(m);
    return true;
  }
};

TEST_CASE("O_DIRECT round trip with aligned buffers") {
  TestDir t;
  constexpr size_t kChunk = 65536, kTotal = 1 << 20;
  DirectFile d;
  if (!d.open(t / "f", O_CREAT | O_RDWR, kTotal)) {
    MESSAGE("no O_DIRECT here (tmpfs, or open gives EINVAL): skipped");
    return;
  }
  const Fd& fd = d.fd;
  char* buf = d.buf;
  const std::string data = pattern(kTotal, 9);
  std::memcpy(buf, data.data(), kTotal);
  for (size_t off = 0; off < kTotal; off += kChunk)
    CHECK(pwrite(fd, buf + off, kChunk, static_cast<off_t>(off)) == static_cast<ssize_t>(kChunk));
  struct stat st{};
  REQUIRE_SYS(fstat(fd, &st));
  CHECK(st.st_size == static_cast<off_t>(kTotal));
  std::memset(buf, 0, kTotal);
  CHECK(pread(fd, buf, kTotal, 0) == static_cast<ssize_t>(kTotal));
  CHECK(std::memcmp(buf, data.data(), kTotal) == 0);
  // Buffered readers see the direct writes.
  CHECK(read_file(t / "f") == data);
  // And direct readers see buffered writes.
  {
    Fd b = must_open(t / "f", O_WRONLY);
    pwrite_all(b, std::string(4096, 'q'), 8192);
  }
  std::memset(buf, 0, 3 * 4096);
  CHECK(pread(fd, buf, 3 * 4096, 0) == 3 * 4096);
  CHECK(std::memcmp(buf, data.data(), 8192) == 0);
  CHECK(std::string(buf + 8192, 4096) == std::string(4096, 'q'));
  // Direct write past EOF extends the file; reading at EOF gives 0.
  std::memset(buf, 'z', 4096);
  CHECK(pwrite(fd, buf, 4096, 2 * kTotal) == 4096);
  REQUIRE_SYS(fstat(fd, &st));
  CHECK(st.st_size == static_cast<off_t>(2 * kTotal + 4096));
  CHECK(pread(fd, buf, 4096, static_cast<off_t>(3 * kTotal)) == 0);
  CHECK(pread_all(Fd(must_open(t / "f", O_RDONLY)), 4096, kTotal) == std::string(4096, '\0'));
}

TEST_CASE("a buffered reader sees each O_DIRECT write at once, even one racing with it") {
  TestDir t;
  constexpr size_t kSize = 1 << 20;
  write_file(t / "f", std::string(kSize, 'o'));
  DirectFile d;
  if (!d.open(t / "f", O_RDWR, kSize)) {
    MESSAGE("no O_DIRECT here: skipped");
    return;
  }
  Fd reader = must_open(t / "f", O_RDONLY);
  std::atomic<bool> stop{false};
  // Buffered reads of the whole file, again and again, racing the writes.
  std::thread racer([&] {
    Fd r = must_open(t / "f", O_RDONLY);
    std::string buf(kSize, '\0');
    while (!stop) {
      if (pread(r, buf.data(), kSize, 0) < 0) break;
      posix_fadvise(r, 0, 0, POSIX_FADV_DONTNEED);  // drop clean pages: read them in again
    }
  });
  int stale = 0;
  for (int round = 0; round < 200; ++round) {
    char c = static_cast<char>('a' + round % 26);
    std::memset(d.buf, c, kSize);
    REQUIRE(pwrite(d.fd, d.buf, kSize, 0) == static_cast<ssize_t>(kSize));
    // The direct write completed: no reader may see the old bytes.
    std::string now = pread_all(reader, kSize, 0);
    if (now != std::string(kSize, c)) ++stale;
  }
  stop = true;
  racer.join();
  CHECK(stale == 0);
}

TEST_CASE("a file opened with O_DIRECT can be mapped, shared, coherently") {
  TestDir t;
  write_file(t / "f", std::string(8192, 'm'));
  DirectFile d;
  if (!d.open(t / "f", O_RDWR, 4096)) {
    MESSAGE("no O_DIRECT here: skipped");
    return;
  }
  void* p = mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, d.fd, 0);
  REQUIRE_MESSAGE(p != MAP_FAILED, "mmap of an O_DIRECT descriptor: ", strerror(errno));
  char* map = static_cast<char*>(p);
  CHECK(map[100] == 'm');
  std::memset(d.buf, 'w', 4096);
  REQUIRE(pwrite(d.fd, d.buf, 4096, 4096) == 4096);
  CHECK(map[4096] == 'w');  // the direct write shows in the map
  map[0] = 'M';
  REQUIRE_SYS(msync(map, 8192, MS_SYNC));
  CHECK(pread(d.fd, d.buf, 4096, 0) == 4096);  // and the map's write in a direct read
  CHECK(d.buf[0] == 'M');
  munmap(p, 8192);
}

}  // TEST_SUITE open

TEST_SUITE("readwrite") {

TEST_CASE("read and write at offsets") {
  TestDir t;
  Fd fd = must_open(t / "f", O_CREAT | O_RDWR, 0644);
  CHECK(write(fd, "hello", 5) == 5);
  CHECK(lseek(fd, 0, SEEK_CUR) == 5);
  CHECK(pwrite(fd, "XY", 2, 1) == 2);
  CHECK(lseek(fd, 0, SEEK_CUR) == 5);  // pwrite leaves the offset
  CHECK(pwrite(fd, "end", 3, 20) == 3);
  char buf[64] = {};
  CHECK(pread(fd, buf, sizeof buf, 0) == 23);
  CHECK(std::string(buf, 23) == std::string("hXYlo") + std::string(15, '\0') + "end");
  CHECK(lseek(fd, 2, SEEK_SET) == 2);
  CHECK(read(fd, buf, 3) == 3);
  CHECK(std::string(buf, 3) == "Ylo");
  CHECK(lseek(fd, 0, SEEK_CUR) == 5);
  CHECK(pread(fd, buf, 10, 23) == 0);
  CHECK(pread(fd, buf, 10, 1000000) == 0);
  CHECK(pread(fd, buf, 10, 21) == 2);
  CHECK(lseek(fd, 0, SEEK_END) == 23);
  CHECK(read(fd, buf, 10) == 0);
  // Vectored I/O.
  char a[] = "vec", b[] = "tored";
  iovec iov[2] = {{a, 3}, {b, 5}};
  CHECK(pwritev(fd, iov, 2, 100) == 8);
  char r1[4] = {}, r2[4] = {};
  iovec riov[2] = {{r1, 4}, {r2, 4}};
  CHECK(preadv(fd, riov, 2, 100) == 8);
  CHECK(std::string(r1, 4) + std::string(r2, 4) == "vectored");
  CHECK(lseek(fd, 200, SEEK_SET) == 200);
  CHECK(writev(fd, iov, 2) == 8);
  CHECK(lseek(fd, 200, SEEK_SET) == 200);
  CHECK(readv(fd, riov, 2) == 8);
  CHECK(std::string(r1, 4) + std::string(r2, 4) == "vectored");
  // Zero-length I/O.
  CHECK(write(fd, buf, 0) == 0);
  CHECK(read(fd, buf, 0) == 0);
  CHECK(must_stat(t / "f").st_size == 208);
}

TEST_CASE("overwrites in the middle keep the rest") {
  TestDir t;
  std::string data = pattern(300000, 10);
  write_file(t / "f", data);
  Fd fd = must_open(t / "f", O_RDWR);
  const std::string patch = pattern(70001, 11);
  for (off_t off : {off_t{0}, off_t{4095}, off_t{131072}, off_t{299999 - 70000}}) {
    pwrite_all(fd, patch, off);
    data.replace(static_cast<size_t>(off), patch.size(), patch);
  }
  CHECK(must_stat(t / "f").st_size == 300000);
  CHECK(read_file(t / "f") == data);
}

TEST_CASE("sparse files read back zeros in the holes") {
  TestDir t;
  Fd fd = must_open(t / "f", O_CREAT | O_RDWR, 0644);
  const off_t far = 64 << 20;
  pwrite_all(fd, "head", 0);
  pwrite_all(fd, "tail", far);
  struct stat st{};
  REQUIRE_SYS(fstat(fd, &st));
  CHECK(st.st_size == far + 4);
  CHECK(st.st_blocks * 512 < (8 << 20));
  CHECK(pread_all(fd, 8, 0) == std::string("head") + std::string(4, '\0'));
  CHECK(pread_all(fd, 1 << 20, far / 2) == std::string(1 << 20, '\0'));
  CHECK(pread_all(fd, 10, far - 4) == std::string(4, '\0') + "tail");
}

TEST_CASE("big writes and reads (8 MiB) keep their content") {
  TestDir t;
  constexpr size_t kBig = 8 << 20;
  const std::string data = pattern(kBig, 12);
  {
    Fd fd = must_open(t / "f", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    size_t done = 0;
    while (done < kBig) {
      ssize_t n = write(fd, data.data() + done, kBig - done);
      REQUIRE(n > 0);
      done += static_cast<size_t>(n);
    }
    CHECK_SYS(fsync(fd));
  }
  CHECK(must_stat(t / "f").st_size == static_cast<off_t>(kBig));
  Fd fd = must_open(t / "f", O_RDONLY);
  std::string got(kBig, '\0');
  size_t done = 0;
  while (done < kBig) {
    ssize_t n = read(fd, got.data() + done, kBig - done);
    REQUIRE(n > 0);
    done += static_cast<size_t>(n);
  }
  CHECK(got == data);
  // Odd-sized chunks make up the same file.
  {
    Fd w = must_open(t / "g", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    size_t off = 0, step = 1;
    while (off < kBig) {
      size_t n = std::min(step, kBig - off);
      pwrite_all(w, std::string_view(data).substr(off, n), static_cast<off_t>(off));
      off += n;
      step = step * 3 + 7;
    }
  }
  CHECK(read_file(t / "g") == data);
}

TEST_CASE("two descriptors see each other's writes at once") {
  TestDir t;
  write_file(t / "f", "");
  Fd a = must_open(t / "f", O_RDWR);
  Fd b = must_open(t / "f", O_RDWR);
  pwrite_all(a, "from a", 0);
  CHECK(pread_all(b, 100, 0) == "from a");
  pwrite_all(b, "B", 0);
  CHECK(pread_all(a, 100, 0) == "Brom a");
  struct stat st{};
  REQUIRE_SYS(fstat(b, &st));
  CHECK(st.st_size == 6);
}

TEST_CASE("fsync, fdatasync, syncfs and fsync of a directory") {
  TestDir t;
  Fd fd = must_open(t / "f", O_CREAT | O_RDWR, 0644);
  pwrite_all(fd, pattern(100000, 13), 0);
  CHECK_SYS(fsync(fd));
  CHECK_SYS(fdatasync(fd));
  CHECK_SYS(syncfs(fd));
  CHECK_SYS(sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER));
  Fd ro = must_open(t / "f", O_RDONLY);
  CHECK_SYS(fsync(ro));
  CHECK_SYS(fdatasync(ro));
  Fd dfd = must_open(t.path(), O_RDONLY | O_DIRECTORY);
  CHECK_SYS(fsync(dfd));
  CHECK_SYS(fdatasync(dfd));
  Fd sync = must_open(t / "s", O_CREAT | O_WRONLY | O_SYNC, 0644);
  CHECK(write(sync, "sync", 4) == 4);
  Fd dsync = must_open(t / "ds", O_CREAT | O_WRONLY | O_DSYNC, 0644);
  CHECK(write(dsync, "dsync", 5) == 5);
  CHECK(read_file(t / "s") == "sync");
  CHECK(read_file(t / "ds") == "dsync");
  CHECK(read_file(t / "f") == pattern(100000, 13));
  CHECK_ERR(fsync(-1), EBADF);
}

TEST_CASE("mmap: shared writes reach the file and file writes reach the map") {
  TestDir t;
  write_file(t / "f", std::string(8192, '.'));
  Fd fd = must_open(t / "f", O_RDWR);
  void* m = mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int e = errno;
  REQUIRE_MESSAGE(m != MAP_FAILED, "mmap failed: ", errname(e));
  char* p = static_cast<char*>(m);
  std::memcpy(p + 100, "mapped", 6);
  CHECK_SYS(msync(m, 8192, MS_SYNC));
  CHECK(pread_all(fd, 6, 100) == "mapped");
  CHECK(read_file(t / "f").substr(100, 6) == "mapped");
  pwrite_all(fd, "written", 5000);
  CHECK(std::string(p + 5000, 7) == "written");
  CHECK_SYS(munmap(m, 8192));
  // A private read-only map sees the content.
  void* r = mmap(nullptr, 8192, PROT_READ, MAP_PRIVATE, fd, 0);
  REQUIRE(r != MAP_FAILED);
  CHECK(std::string(static_cast<char*>(r) + 100, 6) == "mapped");
  CHECK_SYS(munmap(r, 8192));
  CHECK(must_stat(t / "f").st_size == 8192);
}

}  // TEST_SUITE readwrite
