// posix_util.h — shared helpers of the mounted POSIX conformance suite.
//
// The suite runs against the directory named by TCFS_TEST_MNT (a tcfs mount
// made by tests/support/with-tcfs) or, failing that, TCFS_TEST_DIR (any
// native directory, to check that the expectations hold on the backing
// filesystems themselves). Every test case works in its own fresh
// subdirectory (TestDir), removed again when the case ends.
//
// Conventions: CHECK_SYS(expr) asserts that a syscall-style expression did
// not return -1; CHECK_ERR(expr, E) asserts that it returned -1 with errno E.
// Work that must run under other credentials or in another process runs in a
// forked child (run_as / run_child) that reports one int back through a pipe:
// by convention 0 for success or an errno value.
#pragma once

#include <doctest/doctest.h>

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace pt {

// ---- environment ---------------------------------------------------------

// The directory all test directories are made in (set up by main()).
const std::string& base_dir();
// The root of what is under test: TCFS_TEST_MNT or TCFS_TEST_DIR.
const std::string& top_dir();
// $TCFS_TEST_STORE ("" unless running through a tcfs mount).
const std::string& store_dir();
// $TCFS_TEST_NATIVE: a directory on another mount than the one under test
// ("" if unset).
const std::string& native_dir();
// $TCFS_TEST_FS, or the type of the filesystem under test when unset.
const std::string& fs_type();
// True when running through a tcfs mount (TCFS_TEST_MNT set).
bool on_mount();

// ---- errno helpers -----------------------------------------------------------

inline std::string errname(int e) {
  if (e == 0) return "0 (success)";
  const char* n = strerrorname_np(e);
  return std::string(n ? n : "E?") + " (" + std::strerror(e) + ")";
}
// 0 when r >= 0, errno otherwise: the value children report.
inline int err_of(long r) { return r < 0 ? errno : 0; }

}  // namespace pt

#define PT_CAT2(a, b) a##b
#define PT_CAT(a, b) PT_CAT2(a, b)

// The expression (a syscall returning -1 on error) succeeded.
#define CHECK_SYS(expr)                                                               \
  do {                                                                                \
    errno = 0;                                                                        \
    long pt_r_ = static_cast<long>(expr);                                             \
    int pt_e_ = errno;                                                                \
    CHECK_MESSAGE(pt_r_ != -1, #expr " failed: ", pt::errname(pt_e_));                \
  } while (0)
#define REQUIRE_SYS(expr)                                                             \
  do {                                                                                \
    errno = 0;                                                                        \
    long pt_r_ = static_cast<long>(expr);                                             \
    int pt_e_ = errno;                                                                \
    REQUIRE_MESSAGE(pt_r_ != -1, #expr " failed: ", pt::errname(pt_e_));              \
  } while (0)
// The expression failed with errno `err`.
#define CHECK_ERR(expr, err)                                                          \
  do {                                                                                \
    errno = 0;                                                                        \
    long pt_r_ = static_cast<long>(expr);                                             \
    int pt_e_ = errno;                                                                \
    CHECK_MESSAGE((pt_r_ == -1 && pt_e_ == (err)), #expr ": expected ",               \
                  pt::errname(err), ", got ",                                         \
                  (pt_r_ == -1 ? pt::errname(pt_e_) : "success " + std::to_string(pt_r_))); \
  } while (0)
// The expression failed with errno e1 or e2 (where Linux filesystems differ
// legitimately, e.g. ENOTEMPTY/EEXIST).
#define CHECK_ERR2(expr, e1, e2)                                                      \
  do {                                                                                \
    errno = 0;                                                                        \
    long pt_r_ = static_cast<long>(expr);                                             \
    int pt_e_ = errno;                                                                \
    CHECK_MESSAGE((pt_r_ == -1 && (pt_e_ == (e1) || pt_e_ == (e2))), #expr ": expected ", \
                  pt::errname(e1), " or ", pt::errname(e2), ", got ",                 \
                  (pt_r_ == -1 ? pt::errname(pt_e_) : "success " + std::to_string(pt_r_))); \
  } while (0)
// A child's reported errno is the expected one.
#define CHECK_ERRNO(got, expected)                                                    \
  CHECK_MESSAGE((got) == (expected), #got ": expected ", pt::errname(expected), ", got ", \
                pt::errname(got))

namespace pt {

// ---- file descriptors ----------------------------------------------------------

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }
  ~Fd() { reset(); }
  int get() const { return fd_; }
  operator int() const { return fd_; }  // NOLINT: used as a syscall argument
  bool ok() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// open() that REQUIREs success.
Fd must_open(const std::string& path, int flags, mode_t mode = 0644);

// ---- files ---------------------------------------------------------------------

// Deterministic pseudo-random bytes: pattern(n, seed) differs for each seed.
std::string pattern(size_t n, uint32_t seed);
// Create/replace `path` with `data` (REQUIREs success).
void write_file(const std::string& path, std::string_view data, mode_t mode = 0644);
// Whole content of `path`, or "<error ...>" when it cannot be read.
std::string read_file(const std::string& path);
// Read exactly n bytes at offset off from fd (short only at EOF).
std::string pread_all(int fd, size_t n, off_t off);
// Write all of data at offset off (REQUIREs success).
void pwrite_all(int fd, std::string_view data, off_t off);
// lstat()/stat() that REQUIRE success.
struct stat must_lstat(const std::string& path);
struct stat must_stat(const std::string& path);
bool exists(const std::string& path);  // lstat succeeds
// Names in a directory, without "." and "..", sorted (REQUIREs success).
std::vector<std::string> list_names(const std::string& dir);
// Remove a tree (like rm -rf); true on success.
bool rm_rf(const std::string& path);
// A string of n copies of c.
inline std::string rep(size_t n, char c = 'a') { return std::string(n, c); }

// ---- processes and credentials ------------------------------------------------------

struct Cred {
  uid_t uid;
  gid_t gid;
  std::vector<gid_t> groups = {};
};
inline const Cred kUser{12345, 12345, {}};
inline const Cred kUser2{12346, 12346, {}};
inline const Cred kNobody{65534, 65534, {}};
constexpr gid_t kGroup = 4242;  // a group only some test users are in

// Fork; in the child switch to `c` (setgroups, setgid, setuid; umask 022),
// run fn and send its int result back. Returns that result, or a value
// < -1000 if the child died without reporting.
int run_as(const Cred& c, const std::function<int()>& fn);
// Fork and run fn in the child with unchanged credentials.
int run_child(const std::function<int()>& fn);

// ---- the per-test directory ------------------------------------------------------

// A fresh, empty directory (mode 0755, owned by root) for one test case,
// named after the test case; removed (rm -rf) when it goes out of scope
// unless TCFS_TEST_KEEP is set.
class TestDir {
 public:
  TestDir();
  ~TestDir();
  TestDir(const TestDir&) = delete;
  TestDir& operator=(const TestDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

// Run fn with the process umask set to m, then restore it.
template <class F>
auto with_umask(mode_t m, F&& fn) {
  mode_t old = ::umask(m);
  struct Restore {
    mode_t m;
    ~Restore() { ::umask(m); }
  } restore{old};
  return fn();
}

}  // namespace pt
