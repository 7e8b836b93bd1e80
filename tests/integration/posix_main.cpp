// posix_main.cpp — entry point and shared helpers of the mounted POSIX suite
// (see posix_util.h). Usage:
//   TCFS_TEST_MNT=/mnt/tcfs [TCFS_TEST_STORE=...] posix_test [doctest options]
//   TCFS_TEST_DIR=/some/native/dir posix_test        (expectations on native fs)
#define DOCTEST_CONFIG_IMPLEMENT
#include "posix_util.h"

#include <ftw.h>
#include <sys/vfs.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace pt {
namespace {

struct Env {
  std::string top, base, store, native, fs;
  bool mount = false;
};
Env g_env;
std::string g_test_name = "test";
std::string g_prev_test = "(none)";  // the last case whose TestDir was released
unsigned g_test_seq = 0;

std::string getenv_str(const char* n) {
  const char* v = std::getenv(n);
  return v ? v : "";
}

std::string detect_fs(const std::string& dir) {
  struct statfs sf{};
  if (statfs(dir.c_str(), &sf) != 0) return "unknown";
  switch (static_cast<unsigned long>(sf.f_type)) {
    case 0x58465342UL: return "xfs";
    case 0xEF53UL: return "ext4";
    case 0x9123683EUL: return "btrfs";
    case 0x01021994UL: return "tmpfs";
    case 0x65735546UL: return "fuse";
    default: return "unknown";
  }
}

// Records the running test case's name, for naming its directory.
struct NameListener : doctest::IReporter {
  explicit NameListener(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override {}
  void test_case_start(const doctest::TestCaseData& tc) override { g_test_name = tc.m_name; }
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};
REGISTER_LISTENER("tcfs-names", 1, NameListener);

std::string sanitize(const std::string& s) {
  std::string out;
  for (char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_')
      out += c;
    else if (!out.empty() && out.back() != '-')
      out += '-';
    if (out.size() >= 60) break;
  }
  return out;
}

int rm_cb(const char* path, const struct stat*, int type, struct FTW*) {
  int r = (type == FTW_DP) ? ::rmdir(path) : ::unlink(path);
  if (r != 0 && errno != ENOENT) {
    std::fprintf(stderr, "rm_rf: %s: %s\n", path, std::strerror(errno));
    return -1;
  }
  return 0;
}

int report_from_child(pid_t pid, int rfd) {
  int v = 0;
  ssize_t n;
  do n = ::read(rfd, &v, sizeof v);
  while (n < 0 && errno == EINTR);
  ::close(rfd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (n != static_cast<ssize_t>(sizeof v)) return WIFSIGNALED(status) ? -2000 - WTERMSIG(status) : -1001;
  return v;
}

int fork_run(const Cred* c, const std::function<int()>& fn) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return -1002;
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(p[0]);
    ::close(p[1]);
    return -1003;
  }
  if (pid == 0) {
    ::close(p[0]);
    int v;
    if (c && (::setgroups(c->groups.size(), c->groups.data()) != 0 || ::setgid(c->gid) != 0 ||
              ::setuid(c->uid) != 0)) {
      v = -1004;
    } else {
      if (c) ::umask(022);
      v = fn();
    }
    (void)!::write(p[1], &v, sizeof v);
    ::_exit(0);
  }
  ::close(p[1]);
  return report_from_child(pid, p[0]);
}

}  // namespace

const std::string& base_dir() { return g_env.base; }
const std::string& top_dir() { return g_env.top; }
const std::string& store_dir() { return g_env.store; }
const std::string& native_dir() { return g_env.native; }
const std::string& fs_type() { return g_env.fs; }
bool on_mount() { return g_env.mount; }

Fd must_open(const std::string& path, int flags, mode_t mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  int e = errno;
  if (fd < 0) FAIL("open(", path, ") failed: ", errname(e));
  return Fd(fd);
}

std::string pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint64_t x = 0x9E3779B97F4A7C15ULL ^ (static_cast<uint64_t>(seed) * 0x100000001B3ULL + 1);
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

void write_file(const std::string& path, std::string_view data, mode_t mode) {
  Fd fd = must_open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  pwrite_all(fd, data, 0);
}

void pwrite_all(int fd, std::string_view data, off_t off) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, off + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    int e = errno;
    if (n <= 0) FAIL("pwrite failed: ", errname(e));
    done += static_cast<size_t>(n);
  }
}

std::string pread_all(int fd, size_t n, off_t off) {
  std::string out(n, '\0');
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, out.data() + done, n - done, off + static_cast<off_t>(done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return "<pread error " + errname(errno) + ">";
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  out.resize(done);
  return out;
}

std::string read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "<open error " + errname(errno) + ">";
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t r = ::read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      out = "<read error " + errname(errno) + ">";
      break;
    }
    if (r == 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  ::close(fd);
  return out;
}

struct stat must_lstat(const std::string& path) {
  struct stat st{};
  int r = ::lstat(path.c_str(), &st);
  int e = errno;
  if (r != 0) FAIL("lstat(", path, ") failed: ", errname(e));
  return st;
}

struct stat must_stat(const std::string& path) {
  struct stat st{};
  int r = ::stat(path.c_str(), &st);
  int e = errno;
  if (r != 0) FAIL("stat(", path, ") failed: ", errname(e));
  return st;
}

bool exists(const std::string& path) {
  struct stat st{};
  return ::lstat(path.c_str(), &st) == 0;
}

std::vector<std::string> list_names(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  int e = errno;
  if (d == nullptr) FAIL("opendir(", dir, ") failed: ", errname(e));
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* de = ::readdir(d)) {
    std::string n = de->d_name;
    if (n != "." && n != "..") names.push_back(n);
    errno = 0;
  }
  e = errno;
  ::closedir(d);
  if (e != 0) FAIL_CHECK("readdir(", dir, ") failed: ", errname(e));
  std::sort(names.begin(), names.end());
  return names;
}

bool rm_rf(const std::string& path) {
  if (!exists(path)) return true;
  return ::nftw(path.c_str(), rm_cb, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) == 0;
}

int run_as(const Cred& c, const std::function<int()>& fn) { return fork_run(&c, fn); }
int run_child(const std::function<int()>& fn) { return fork_run(nullptr, fn); }

TestDir::TestDir() {
  char seq[16];
  std::snprintf(seq, sizeof seq, "%04u-", ++g_test_seq);
  path_ = g_env.base + "/" + seq + sanitize(g_test_name);
  rm_rf(path_);
  int r = ::mkdir(path_.c_str(), 0755);
  int e = errno;
  if (r != 0 && e == ENOTCONN) {
    // The daemon is gone: every later case would fail the same way.
    std::fprintf(stderr,
                 "posix_test: %s: ENOTCONN: the mount is dead (daemon crashed?); the last case "
                 "that ran before it was \"%s\". Stopping.\n",
                 g_env.base.c_str(), g_prev_test.c_str());
    std::fflush(nullptr);
    std::_Exit(1);
  }
  if (r != 0) FAIL("mkdir(", path_, ") failed: ", errname(e));
  if (::chmod(path_.c_str(), 0755) != 0) FAIL("chmod(", path_, ") failed: ", errname(errno));
}

TestDir::~TestDir() {
  g_prev_test = g_test_name;
  if (!getenv_str("TCFS_TEST_KEEP").empty()) return;
  if (!rm_rf(path_)) std::fprintf(stderr, "warning: could not remove %s\n", path_.c_str());
}

}  // namespace pt

int main(int argc, char** argv) {
  using pt::g_env;
  g_env.top = pt::getenv_str("TCFS_TEST_MNT");
  g_env.mount = !g_env.top.empty();
  if (!g_env.mount) g_env.top = pt::getenv_str("TCFS_TEST_DIR");
  if (g_env.top.empty()) {
    std::fprintf(stderr, "posix_test: set TCFS_TEST_MNT (a tcfs mount) or TCFS_TEST_DIR\n");
    return 2;
  }
  if (g_env.mount) g_env.store = pt::getenv_str("TCFS_TEST_STORE");
  g_env.native = pt::getenv_str("TCFS_TEST_NATIVE");
  g_env.fs = pt::getenv_str("TCFS_TEST_FS");
  if (g_env.fs.empty()) g_env.fs = pt::detect_fs(g_env.top);
  if (geteuid() != 0) {
    std::fprintf(stderr, "posix_test: must run as root\n");
    return 2;
  }
  ::umask(022);
  // The suite's tree: <top>/posix.<pid>, reachable by the unprivileged
  // users of the permission tests.
  g_env.base = g_env.top + "/posix." + std::to_string(::getpid());
  if (::mkdir(g_env.base.c_str(), 0755) != 0 || ::chmod(g_env.base.c_str(), 0755) != 0) {
    std::fprintf(stderr, "posix_test: mkdir %s: %s\n", g_env.base.c_str(), std::strerror(errno));
    return 2;
  }
  std::fprintf(stderr, "posix_test: testing %s (%s%s), fs %s\n", g_env.base.c_str(),
               g_env.mount ? "tcfs mount" : "native dir",
               g_env.store.empty() ? "" : (", store " + g_env.store).c_str(), g_env.fs.c_str());

  doctest::Context ctx;
  ctx.applyCommandLine(argc, argv);
  int rc = ctx.run();
  if (pt::getenv_str("TCFS_TEST_KEEP").empty() && !pt::rm_rf(g_env.base)) {
    std::fprintf(stderr, "posix_test: could not remove %s\n", g_env.base.c_str());
    if (rc == 0) rc = 1;
  }
  return rc;
}
