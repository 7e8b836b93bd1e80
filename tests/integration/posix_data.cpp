// posix_data.cpp — fallocate, copy_file_range, lseek (incl. SEEK_DATA /
// SEEK_HOLE) and advisory locks (flock, fcntl) between processes.
#include <sys/file.h>
#include <sys/stat.h>

#include "posix_util.h"

using namespace pt;

namespace {

// A child that takes a lock and holds it until told to go: lets the parent
// look at a lock held by another live process.
class Holder {
 public:
  // fn runs in the child; it returns 0 once the lock is held.
  explicit Holder(const std::function<int()>& fn) {
    REQUIRE_SYS(pipe2(ready_, O_CLOEXEC));
    REQUIRE_SYS(pipe2(go_, O_CLOEXEC));
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      close(ready_[0]);
      close(go_[1]);
      int v = fn();
      (void)!write(ready_[1], &v, sizeof v);
      char c;
      (void)!read(go_[0], &c, 1);
      _exit(0);
    }
    close(ready_[1]);
    close(go_[0]);
    int v = -1;
    REQUIRE(read(ready_[0], &v, sizeof v) == static_cast<ssize_t>(sizeof v));
    close(ready_[0]);
    REQUIRE_MESSAGE(v == 0, "lock holder failed: ", errname(v));
  }
  pid_t pid() const { return pid_; }
  // Let the child exit (releasing its locks) and reap it.
  void release() {
    if (pid_ <= 0) return;
    close(go_[1]);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  ~Holder() { release(); }

 private:
  int ready_[2] = {-1, -1}, go_[2] = {-1, -1};
  pid_t pid_ = -1;
};

struct flock range_lock(short type, off_t start, off_t len) {
  struct flock fl{};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = start;
  fl.l_len = len;
  return fl;
}

}  // namespace

TEST_SUITE("fallocate") {

TEST_CASE("fallocate mode 0 extends the size with zeros") {
  TestDir t;
  write_file(t / "f", "abc");
  Fd fd = must_open(t / "f", O_RDWR);
  CHECK_SYS(fallocate(fd, 0, 0, 1 << 20));
  struct stat st{};
  REQUIRE_SYS(fstat(fd, &st));
  CHECK(st.st_size == (1 << 20));
  CHECK(st.st_blocks * 512 >= (1 << 20));
  CHECK(pread_all(fd, 1 << 20, 0) == "abc" + std::string((1 << 20) - 3, '\0'));
  // Within the file it changes nothing.
  CHECK_SYS(fallocate(fd, 0, 0, 100));
  REQUIRE_SYS(fstat(fd, &st));
  CHECK(st.st_size == (1 << 20));
  CHECK(pread_all(fd, 3, 0) == "abc");
  // Beyond a hole.
  CHECK_SYS(fallocate(fd, 0, 4 << 20, 4096));
  REQUIRE_SYS(fstat(fd, &st));
  CHECK(st.st_size == (4 << 20) + 4096);
  CHECK(pread_all(fd, 8192, (4 << 20) - 4096) == std::string(8192, '\0'));
}

TEST_CASE("fallocate FALLOC_FL_KEEP_SIZE allocates without growing") {
  TestDir t;
  write_file(t / "f", "abc");
  Fd fd = must_open(t / "f", O_RDWR);
  struct stat before{};
  REQUIRE_SYS(fstat(fd, &before));
  CHECK_SYS(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 4 << 20));
  struct stat st{};
  REQUIRE_SYS(fstat(fd, &st));
  CHECK(st.st_size == 3);
  CHECK(st.st_blocks > before.st_blocks);
  CHECK(st.st_blocks * 512 >= (4 << 20));
  CHECK(read_file(t / "f") == "abc");
  // Writing into the preallocated range later works as usual.
  pwrite_all(fd, "later", 1 << 20);
  CHECK(must_stat(t / "f").st_size == (1 << 20) + 5);
  CHECK(pread_all(fd, 10, (1 << 20) - 5) == std::string(5, '\0') + "later");
}

TEST_CASE("fallocate FALLOC_FL_PUNCH_HOLE zeroes the range") {
  TestDir t;
  std::string data(1 << 20, 'A');
  write_file(t / "f", data);
  Fd fd = must_open(t / "f", O_RDWR);
  CHECK_SYS(fsync(fd));
  struct stat before{};
  REQUIRE_SYS(fstat(fd, &before));
  // Block aligned: the blocks go away.
  CHECK_SYS(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 65536, 65536 * 4));
  data.replace(65536, 65536 * 4, std::string(65536 * 4, '\0'));
  struct stat st{};
  REQUIRE_SYS(fstat(fd, &st));
  CHECK(st.st_size == (1 << 20));
  CHECK(st.st_blocks < before.st_blocks);
  CHECK(pread_all(fd, 1 << 20, 0) == data);
  // Unaligned: exactly the bytes asked for read back as zeros.
  CHECK_SYS(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1000, 5000));
  data.replace(1000, 5000, std::string(5000, '\0'));
  CHECK(pread_all(fd, 1 << 20, 0) == data);
  // Past EOF: no growth.
  CHECK_SYS(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (1 << 20) - 10, 100000));
  data.replace((1 << 20) - 10, 10, std::string(10, '\0'));
  CHECK(must_stat(t / "f").st_size == (1 << 20));
  CHECK(read_file(t / "f") == data);
}

TEST_CASE("fallocate FALLOC_FL_ZERO_RANGE") {
  if (fs_type() == "tmpfs") {
    MESSAGE("tmpfs has no FALLOC_FL_ZERO_RANGE: skipped");
    return;
  }
  TestDir t;
  std::string data = pattern(200000, 14);
  write_file(t / "f", data);
  Fd fd = must_open(t / "f", O_RDWR);
  CHECK_SYS(fallocate(fd, FALLOC_FL_ZERO_RANGE, 3000, 70000));
  data.replace(3000, 70000, std::string(70000, '\0'));
  CHECK(read_file(t / "f") == data);
  CHECK_SYS(fallocate(fd, FALLOC_FL_ZERO_RANGE, 190000, 20000));
  CHECK(must_stat(t / "f").st_size == 210000);
  data.replace(190000, 10000, std::string(20000, '\0'));
  CHECK(read_file(t / "f") == data);
}

TEST_CASE("fallocate errors") {
  TestDir t;
  write_file(t / "f", "abc");
  REQUIRE_SYS(mkdir((t / "d").c_str(), 0755));
  Fd ro = must_open(t / "f", O_RDONLY);
  CHECK_ERR(fallocate(ro, 0, 0, 4096), EBADF);
  Fd rw = must_open(t / "f", O_RDWR);
  CHECK_ERR(fallocate(rw, FALLOC_FL_PUNCH_HOLE, 0, 4096), EOPNOTSUPP);
  CHECK_ERR(fallocate(rw, 0, 0, 0), EINVAL);
  CHECK_ERR(fallocate(rw, 0, -1, 4096), EINVAL);
  CHECK_ERR(fallocate(rw, 0x4000, 0, 4096), EOPNOTSUPP);
  Fd dfd = must_open(t / "d", O_RDONLY | O_DIRECTORY);
  CHECK_ERR(fallocate(dfd, 0, 0, 4096), EBADF);
  CHECK(read_file(t / "f") == "abc");
}

}  // TEST_SUITE fallocate

TEST_SUITE("copy_file_range") {

TEST_CASE("copy_file_range copies content and returns the count") {
  TestDir t;
  const std::string data = pattern(3 << 20, 15);
  write_file(t / "src", data);
  Fd in = must_open(t / "src", O_RDONLY);
  Fd out = must_open(t / "dst", O_CREAT | O_WRONLY, 0644);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = copy_file_range(in, nullptr, out, nullptr, data.size() - done, 0);
    int e = errno;
    REQUIRE_MESSAGE(n > 0, "copy_file_range: ", errname(e));
    done += static_cast<size_t>(n);
  }
  CHECK(done == data.size());
  // The descriptors' offsets advanced.
  CHECK(lseek(in, 0, SEEK_CUR) == static_cast<off_t>(data.size()));
  CHECK(lseek(out, 0, SEEK_CUR) == static_cast<off_t>(data.size()));
  CHECK(copy_file_range(in, nullptr, out, nullptr, 100, 0) == 0);  // at EOF
  CHECK(must_stat(t / "dst").st_size == static_cast<off_t>(data.size()));
  CHECK(read_file(t / "dst") == data);
}

TEST_CASE("copy_file_range with explicit offsets") {
  TestDir t;
  const std::string data = pattern(10000, 16);
  write_file(t / "src", data);
  write_file(t / "dst", std::string(3000, 'D'));
  Fd in = must_open(t / "src", O_RDONLY);
  Fd out = must_open(t / "dst", O_WRONLY);
  loff_t oin = 100, oout = 5000;
  CHECK(copy_file_range(in, &oin, out, &oout, 1000, 0) == 1000);
  CHECK(oin == 1100);
  CHECK(oout == 6000);
  CHECK(lseek(in, 0, SEEK_CUR) == 0);
  CHECK(lseek(out, 0, SEEK_CUR) == 0);
  std::string want = std::string(3000, 'D') + std::string(2000, '\0') + data.substr(100, 1000);
  CHECK(read_file(t / "dst") == want);
  // Into the middle of existing data.
  oin = 0;
  oout = 10;
  CHECK(copy_file_range(in, &oin, out, &oout, 20, 0) == 20);
  want.replace(10, 20, data.substr(0, 20));
  CHECK(read_file(t / "dst") == want);
  // Short at the source's EOF, zero past it, zero for length zero.
  oin = 9990;
  oout = 0;
  CHECK(copy_file_range(in, &oin, out, &oout, 100, 0) == 10);
  oin = 20000;
  CHECK(copy_file_range(in, &oin, out, &oout, 100, 0) == 0);
  oin = 0;
  CHECK(copy_file_range(in, &oin, out, &oout, 0, 0) == 0);
  want.replace(0, 10, data.substr(9990, 10));
  CHECK(read_file(t / "dst") == want);
  // Non-overlapping ranges within one file.
  Fd same = must_open(t / "src", O_RDWR);
  loff_t a = 0, b = 8000;
  CHECK(copy_file_range(same, &a, same, &b, 1000, 0) == 1000);
  std::string src = data;
  src.replace(8000, 1000, data.substr(0, 1000));
  CHECK(read_file(t / "src") == src);
}

TEST_CASE("copy_file_range errors") {
  TestDir t;
  write_file(t / "src", pattern(10000, 17));
  REQUIRE_SYS(mkdir((t / "d").c_str(), 0755));
  Fd in = must_open(t / "src", O_RDONLY);
  Fd ro = must_open(t / "src", O_RDONLY);
  Fd wo = must_open(t / "dst", O_CREAT | O_WRONLY, 0644);
  Fd app = must_open(t / "app", O_CREAT | O_WRONLY | O_APPEND, 0644);
  Fd dfd = must_open(t / "d", O_RDONLY | O_DIRECTORY);
  loff_t a = 0, b = 0;
  CHECK_ERR(copy_file_range(in, &a, ro, &b, 100, 0), EBADF);
  CHECK_ERR(copy_file_range(wo, &a, in, &b, 100, 0), EBADF);
  CHECK_ERR(copy_file_range(in, &a, app, nullptr, 100, 0), EBADF);
  CHECK_ERR(copy_file_range(in, &a, wo, &b, 100, 1), EINVAL);
  CHECK_ERR(copy_file_range(dfd, &a, wo, &b, 100, 0), EISDIR);
  Fd same = must_open(t / "src", O_RDWR);
  a = 0;
  b = 500;
  CHECK_ERR(copy_file_range(same, &a, same, &b, 1000, 0), EINVAL);
  CHECK(must_stat(t / "dst").st_size == 0);
}

}  // TEST_SUITE copy_file_range

TEST_SUITE("lseek") {

TEST_CASE("lseek SEEK_SET, SEEK_CUR, SEEK_END") {
  TestDir t;
  write_file(t / "f", "0123456789");
  Fd fd = must_open(t / "f", O_RDONLY);
  CHECK(lseek(fd, 3, SEEK_SET) == 3);
  CHECK(lseek(fd, 2, SEEK_CUR) == 5);
  char c;
  CHECK(read(fd, &c, 1) == 1);
  CHECK(c == '5');
  CHECK(lseek(fd, -1, SEEK_END) == 9);
  CHECK(lseek(fd, 100, SEEK_END) == 110);
  CHECK(read(fd, &c, 1) == 0);
  CHECK(lseek(fd, 0, SEEK_CUR) == 110);
  CHECK_ERR(lseek(fd, -1, SEEK_SET), EINVAL);
  CHECK_ERR(lseek(fd, -20, SEEK_END), EINVAL);
  CHECK_ERR(lseek(fd, 0, 42), EINVAL);
  CHECK(lseek(fd, 0, SEEK_CUR) == 110);
}

TEST_CASE("lseek SEEK_DATA and SEEK_HOLE on a sparse file") {
  TestDir t;
  const off_t mib = 1 << 20;
  Fd fd = must_open(t / "f", O_CREAT | O_RDWR, 0644);
  pwrite_all(fd, std::string(4096, 'a'), 0);
  pwrite_all(fd, std::string(4096, 'b'), 4 * mib);
  CHECK_SYS(ftruncate(fd, 8 * mib));
  CHECK_SYS(fsync(fd));
  // The first hole starts after the first data and before the second.
  off_t h = lseek(fd, 0, SEEK_HOLE);
  CHECK_MESSAGE((h >= 4096 && h < 4 * mib), "SEEK_HOLE from 0 gave ", h);
  CHECK(lseek(fd, 0, SEEK_DATA) == 0);
  CHECK(lseek(fd, 100, SEEK_DATA) == 100);
  // Data resumes at 4 MiB.
  off_t d = lseek(fd, mib, SEEK_DATA);
  CHECK_MESSAGE((d > mib && d <= 4 * mib), "SEEK_DATA from 1 MiB gave ", d);
  CHECK(lseek(fd, 2 * mib, SEEK_HOLE) == 2 * mib);
  off_t h2 = lseek(fd, 4 * mib, SEEK_HOLE);
  CHECK_MESSAGE((h2 >= 4 * mib + 4096 && h2 <= 8 * mib), "SEEK_HOLE from 4 MiB gave ", h2);
  // The tail past the last data is a hole up to EOF: no more data.
  CHECK_ERR(lseek(fd, 6 * mib, SEEK_DATA), ENXIO);
  CHECK(lseek(fd, 7 * mib, SEEK_HOLE) == 7 * mib);
  // At or past EOF both give ENXIO.
  CHECK_ERR(lseek(fd, 8 * mib, SEEK_DATA), ENXIO);
  CHECK_ERR(lseek(fd, 8 * mib, SEEK_HOLE), ENXIO);
  CHECK_ERR(lseek(fd, 9 * mib, SEEK_HOLE), ENXIO);
  // A file without holes: the only hole is at EOF.
  write_file(t / "full", std::string(10000, 'x'));
  Fd full = must_open(t / "full", O_RDONLY);
  CHECK(lseek(full, 0, SEEK_HOLE) == 10000);
  CHECK(lseek(full, 5000, SEEK_DATA) == 5000);
  CHECK_ERR(lseek(full, 10000, SEEK_DATA), ENXIO);
}

}  // TEST_SUITE lseek

TEST_SUITE("locks") {

TEST_CASE("flock LOCK_EX excludes another process") {
  TestDir t;
  write_file(t / "f", "x");
  const std::string path = t / "f";
  Fd fd = must_open(path, O_RDWR);
  REQUIRE_SYS(flock(fd, LOCK_EX));
  auto try_lock = [&](int op) {
    return run_child([&] {
      int f = open(path.c_str(), O_RDWR | O_CLOEXEC);
      if (f < 0) return -errno;
      return err_of(flock(f, op));
    });
  };
  CHECK_ERRNO(try_lock(LOCK_EX | LOCK_NB), EWOULDBLOCK);
  CHECK_ERRNO(try_lock(LOCK_SH | LOCK_NB), EWOULDBLOCK);
  // Downgrade to shared: other shared locks are fine, exclusive still not.
  REQUIRE_SYS(flock(fd, LOCK_SH));
  CHECK_ERRNO(try_lock(LOCK_SH | LOCK_NB), 0);
  CHECK_ERRNO(try_lock(LOCK_EX | LOCK_NB), EWOULDBLOCK);
  REQUIRE_SYS(flock(fd, LOCK_UN));
  CHECK_ERRNO(try_lock(LOCK_EX | LOCK_NB), 0);
  // A lock held by another live process blocks us; its exit releases it.
  {
    Holder h([&] {
      int f = open(path.c_str(), O_RDWR | O_CLOEXEC);
      if (f < 0) return errno;
      return err_of(flock(f, LOCK_EX | LOCK_NB));
    });
    Fd mine = must_open(path, O_RDONLY);
    CHECK_ERR(flock(mine, LOCK_SH | LOCK_NB), EWOULDBLOCK);
    h.release();
    CHECK_SYS(flock(mine, LOCK_EX | LOCK_NB));
  }
  // Closing the last descriptor releases the lock.
  Fd again = must_open(path, O_RDONLY);
  REQUIRE_SYS(flock(again, LOCK_EX));
  again.reset();
  CHECK_ERRNO(try_lock(LOCK_EX | LOCK_NB), 0);
}

TEST_CASE("fcntl F_SETLK and F_GETLK between parent and child") {
  TestDir t;
  write_file(t / "f", std::string(1000, 'x'));
  const std::string path = t / "f";
  Fd fd = must_open(path, O_RDWR);
  struct flock wr = range_lock(F_WRLCK, 0, 100);
  REQUIRE_SYS(fcntl(fd, F_SETLK, &wr));
  const pid_t me = getpid();

  // The child sees our lock with our pid.
  struct Seen {
    short type;
    off_t start, len;
    pid_t pid;
  };
  int rfd[2];
  REQUIRE_SYS(pipe2(rfd, O_CLOEXEC));
  int rc = run_child([&] {
    int f = open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (f < 0) return errno;
    struct flock q = range_lock(F_WRLCK, 0, 10);
    if (fcntl(f, F_GETLK, &q) != 0) return errno;
    Seen s{q.l_type, q.l_start, q.l_len, q.l_pid};
    (void)!write(rfd[1], &s, sizeof s);
    return 0;
  });
  close(rfd[1]);
  Seen seen{};
  CHECK(rc == 0);
  REQUIRE(read(rfd[0], &seen, sizeof seen) == static_cast<ssize_t>(sizeof seen));
  close(rfd[0]);
  CHECK(seen.type == F_WRLCK);
  CHECK(seen.start == 0);
  CHECK(seen.len == 100);
  CHECK(seen.pid == me);

  auto child_setlk = [&](short type, off_t start, off_t len) {
    return run_child([&] {
      int f = open(path.c_str(), O_RDWR | O_CLOEXEC);
      if (f < 0) return errno;
      struct flock l = range_lock(type, start, len);
      return err_of(fcntl(f, F_SETLK, &l));
    });
  };
  auto child_getlk_type = [&](short type, off_t start, off_t len) {
    return run_child([&] {
      int f = open(path.c_str(), O_RDWR | O_CLOEXEC);
      if (f < 0) return -errno;
      struct flock l = range_lock(type, start, len);
      if (fcntl(f, F_GETLK, &l) != 0) return -errno;
      return static_cast<int>(l.l_type);
    });
  };
  int e = child_setlk(F_WRLCK, 50, 10);
  CHECK_MESSAGE((e == EAGAIN || e == EACCES), "got ", errname(e));
  e = child_setlk(F_RDLCK, 99, 1);
  CHECK_MESSAGE((e == EAGAIN || e == EACCES), "got ", errname(e));
  CHECK_ERRNO(child_setlk(F_WRLCK, 100, 100), 0);
  CHECK(child_getlk_type(F_WRLCK, 200, 10) == F_UNLCK);

  // Downgrade to a read lock: readers may share, writers may not.
  struct flock rd = range_lock(F_RDLCK, 0, 100);
  REQUIRE_SYS(fcntl(fd, F_SETLK, &rd));
  CHECK_ERRNO(child_setlk(F_RDLCK, 0, 100), 0);
  CHECK(child_getlk_type(F_WRLCK, 0, 100) == F_RDLCK);
  CHECK(child_getlk_type(F_RDLCK, 0, 100) == F_UNLCK);
  struct flock un = range_lock(F_UNLCK, 0, 0);
  REQUIRE_SYS(fcntl(fd, F_SETLK, &un));
  CHECK(child_getlk_type(F_WRLCK, 0, 0) == F_UNLCK);

  // A lock held by a live child blocks the parent until the child exits.
  {
    Holder h([&] {
      int f = open(path.c_str(), O_RDWR | O_CLOEXEC);
      if (f < 0) return errno;
      struct flock l = range_lock(F_WRLCK, 0, 0);
      return err_of(fcntl(f, F_SETLK, &l));
    });
    struct flock q = range_lock(F_RDLCK, 500, 1);
    REQUIRE_SYS(fcntl(fd, F_GETLK, &q));
    CHECK(q.l_type == F_WRLCK);
    CHECK(q.l_pid == h.pid());
    struct flock mine = range_lock(F_RDLCK, 0, 10);
    CHECK_ERR2(fcntl(fd, F_SETLK, &mine), EAGAIN, EACCES);
    h.release();
    CHECK_SYS(fcntl(fd, F_SETLK, &mine));
  }
  // Closing any descriptor of the file drops this process's locks.
  struct flock all = range_lock(F_WRLCK, 0, 0);
  REQUIRE_SYS(fcntl(fd, F_SETLK, &all));
  { Fd other = must_open(path, O_RDONLY); }
  CHECK_ERRNO(child_setlk(F_WRLCK, 0, 0), 0);
  struct flock bad = range_lock(F_WRLCK, 0, 10);
  Fd ro = must_open(path, O_RDONLY);
  CHECK_ERR(fcntl(ro, F_SETLK, &bad), EBADF);
}

}  // TEST_SUITE locks
