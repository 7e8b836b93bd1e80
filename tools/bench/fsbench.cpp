// fsbench — the timed half of tools/bench/bench-posix.
//
// Each subcommand does one piece of file-system work, times it with a
// monotonic clock and prints exactly one machine-readable line on stdout:
//
//   op=<name> key=value key=value ...
//
// (always including seconds= and rate= for timed work). Errors go to stderr
// and make the exit status non-zero. The program never drops caches or
// mounts anything; bench-posix does that between calls.
//
//   fsbench seqwrite FILE MIB [BLOCK_KIB]     write MIB MiB sequentially (1 MiB writes), fsync, close
//   fsbench seqread FILE [EXPECT_BYTES [BLOCK_KIB]]
//                                             read FILE to EOF (1 MiB reads); checks the size unless EXPECT_BYTES is 0
//   fsbench smallfiles DIR N SIZE             create+write SIZE bytes+close N new files DIR/s%07d
//   fsbench syncfiles DIR N SIZE new|overwrite [nosync]
//                                             per file: open (O_EXCL new / O_TRUNC existing) DIR/s%07d,
//                                             write SIZE bytes (1 MiB writes), fsync (not with nosync), close
//   fsbench stablewrites DIR THREADS SECONDS append|overwrite|dsync
//                                             THREADS writers, each on its own file DIR/w%02d, for SECONDS:
//                                             4 KiB write + fsync, appending or overwriting 64 slots in
//                                             turn, or 4 KiB O_DSYNC overwrites; rate = stable writes/s
//   fsbench mkfiles DIR N                     create N empty files DIR/f%07d (setup; still timed)
//   fsbench stat DIR N                        fstatat(AT_SYMLINK_NOFOLLOW) DIR/f%07d for i < N
//   fsbench readdir DIR [EXPECT]              opendir/readdir loop, no stat; checks count if EXPECT given
//   fsbench rsswatch PID INTERVAL_MS TIMEOUT_S -- CMD [ARGS...]
//        run CMD (stdout/stderr inherited) while sampling VmRSS of PID every
//        INTERVAL_MS; VmHWM of PID is reset first (clear_refs 5) and read back
//        afterwards so spikes between samples are not missed. TIMEOUT_S 0 = none;
//        on timeout CMD's process group is killed and timed_out=1 is reported.

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const char *what, const std::string &arg = {}) {
  int e = errno;
  std::fprintf(stderr, "fsbench: %s%s%s: %s\n", what, arg.empty() ? "" : " ", arg.c_str(),
               e ? std::strerror(e) : "failed");
  std::exit(1);
}

[[noreturn]] void usage() {
  std::fputs(
      "usage: fsbench seqwrite FILE MIB [BLOCK_KIB]\n"
      "       fsbench seqread FILE [EXPECT_BYTES [BLOCK_KIB]]\n"
      "       fsbench smallfiles DIR N SIZE\n"
      "       fsbench syncfiles DIR N SIZE new|overwrite [nosync]\n"
      "       fsbench mkfiles DIR N\n"
      "       fsbench stat DIR N\n"
      "       fsbench readdir DIR [EXPECT]\n"
      "       fsbench rsswatch PID INTERVAL_MS TIMEOUT_S -- CMD [ARGS...]\n",
      stderr);
  std::exit(2);
}

uint64_t to_u64(const char *s) {
  char *end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (errno || end == s || *end) {
    std::fprintf(stderr, "fsbench: not a number: %s\n", s);
    std::exit(2);
  }
  return v;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Aligned buffer (so the same code works if someone adds O_DIRECT later).
struct Buffer {
  std::size_t size;
  char *p;
  explicit Buffer(std::size_t n) : size(n), p(static_cast<char *>(std::aligned_alloc(4096, n))) {
    if (!p) die("aligned_alloc");
  }
  ~Buffer() { std::free(p); }
  Buffer(const Buffer &) = delete;
  Buffer &operator=(const Buffer &) = delete;
};

// Incompressible, non-zero content (xorshift64).
void fill(char *p, std::size_t n, uint64_t seed) {
  uint64_t x = seed | 1;
  for (std::size_t i = 0; i < n; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(p + i, &x, std::min<std::size_t>(8, n - i));
  }
}

void write_all(int fd, const char *p, std::size_t n, const char *path) {
  while (n) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      die("write", path);
    }
    if (w == 0) {
      errno = EIO;
      die("short write", path);
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

int open_dir(const char *dir) {
  int fd = ::open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) die("open directory", dir);
  return fd;
}

void name_of(char (&buf)[32], char prefix, uint64_t i) {
  std::snprintf(buf, sizeof buf, "%c%07" PRIu64, prefix, i);
}

int cmd_seqwrite(int argc, char **argv) {
  if (argc < 2 || argc > 3) usage();
  const char *path = argv[0];
  uint64_t mib = to_u64(argv[1]);
  std::size_t bs = (argc == 3 ? to_u64(argv[2]) : 1024) * 1024;
  if (bs == 0) usage();
  uint64_t total = mib << 20;
  Buffer buf(bs);
  fill(buf.p, bs, 0x9e3779b97f4a7c15ULL);

  auto t0 = Clock::now();
  int fd = ::open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) die("open", path);
  for (uint64_t done = 0; done < total;) {
    std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(bs, total - done));
    buf.p[0] = static_cast<char>(done >> 20);  // every block differs
    write_all(fd, buf.p, n, path);
    done += n;
  }
  auto t1 = Clock::now();
  if (::fsync(fd) != 0) die("fsync", path);
  double fsync_s = seconds_since(t1);
  if (::close(fd) != 0) die("close", path);
  double s = seconds_since(t0);
  std::printf("op=seqwrite bytes=%" PRIu64 " block=%zu seconds=%.6f fsync_seconds=%.6f rate=%.2f unit=MiB/s\n",
              total, bs, s, fsync_s, static_cast<double>(total) / 1048576.0 / s);
  return 0;
}

int cmd_seqread(int argc, char **argv) {
  if (argc < 1 || argc > 3) usage();
  const char *path = argv[0];
  uint64_t expect = argc >= 2 ? to_u64(argv[1]) : 0;
  std::size_t bs = (argc == 3 ? to_u64(argv[2]) : 1024) * 1024;
  if (bs == 0) usage();
  Buffer buf(bs);
  auto t0 = Clock::now();
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open", path);
  uint64_t total = 0;
  for (;;) {
    ssize_t r = ::read(fd, buf.p, bs);
    if (r < 0) {
      if (errno == EINTR) continue;
      die("read", path);
    }
    if (r == 0) break;
    total += static_cast<uint64_t>(r);
  }
  ::close(fd);
  double s = seconds_since(t0);
  std::printf("op=seqread bytes=%" PRIu64 " block=%zu seconds=%.6f rate=%.2f unit=MiB/s\n", total, bs, s,
              static_cast<double>(total) / 1048576.0 / s);
  if (expect && total != expect) {
    std::fprintf(stderr, "fsbench: seqread %s: read %" PRIu64 " bytes, expected %" PRIu64 "\n", path, total, expect);
    return 1;
  }
  return 0;
}

// create (+ write SIZE bytes) + close N files named <prefix>%07d in DIR.
double create_files(const char *dir, uint64_t n, std::size_t size, char prefix) {
  int dfd = open_dir(dir);
  std::vector<char> data(size ? size : 1);
  fill(data.data(), data.size(), 0x2545F4914F6CDD1DULL);
  char name[32];
  auto t0 = Clock::now();
  for (uint64_t i = 0; i < n; ++i) {
    name_of(name, prefix, i);
    int fd = ::openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) die("create", std::string(dir) + "/" + name);
    if (size) write_all(fd, data.data(), size, name);
    if (::close(fd) != 0) die("close", std::string(dir) + "/" + name);
  }
  double s = seconds_since(t0);
  ::close(dfd);
  return s;
}

int cmd_smallfiles(int argc, char **argv) {
  if (argc != 3) usage();
  uint64_t n = to_u64(argv[1]);
  std::size_t size = to_u64(argv[2]);
  double s = create_files(argv[0], n, size, 's');
  std::printf("op=smallfiles files=%" PRIu64 " size=%zu seconds=%.6f rate=%.2f unit=files/s\n", n, size, s,
              static_cast<double>(n) / s);
  return 0;
}

int cmd_syncfiles(int argc, char **argv) {
  if (argc != 4 && argc != 5) usage();
  uint64_t n = to_u64(argv[1]);
  std::size_t size = to_u64(argv[2]);
  bool fresh = std::string_view(argv[3]) == "new";
  if (!fresh && std::string_view(argv[3]) != "overwrite") usage();
  if (argc == 5 && std::string_view(argv[4]) != "nosync") usage();
  bool sync = argc == 4;
  int dfd = open_dir(argv[0]);
  std::size_t chunk = std::min<std::size_t>(size ? size : 1, 1 << 20);
  std::vector<char> data(chunk);
  fill(data.data(), data.size(), 0x9E3779B97F4A7C15ULL ^ (fresh ? 0 : 1));
  char name[32];
  auto t0 = Clock::now();
  for (uint64_t i = 0; i < n; ++i) {
    name_of(name, 's', i);
    int flags = O_WRONLY | O_CLOEXEC | (fresh ? O_CREAT | O_EXCL : O_TRUNC);
    int fd = ::openat(dfd, name, flags, 0644);
    if (fd < 0) die("open", std::string(argv[0]) + "/" + name);
    for (std::size_t done = 0; done < size; done += chunk) write_all(fd, data.data(), std::min(chunk, size - done), name);
    if (sync && ::fsync(fd) != 0) die("fsync", std::string(argv[0]) + "/" + name);
    if (::close(fd) != 0) die("close", std::string(argv[0]) + "/" + name);
  }
  double s = seconds_since(t0);
  ::close(dfd);
  std::printf("op=syncfiles files=%" PRIu64 " size=%zu fsync=%d seconds=%.6f rate=%.2f unit=files/s\n", n, size,
              sync ? 1 : 0, s, static_cast<double>(n) / s);
  return 0;
}

int cmd_mkfiles(int argc, char **argv) {
  if (argc != 2) usage();
  uint64_t n = to_u64(argv[1]);
  double s = create_files(argv[0], n, 0, 'f');
  std::printf("op=mkfiles files=%" PRIu64 " seconds=%.6f rate=%.2f unit=files/s\n", n, s,
              static_cast<double>(n) / s);
  return 0;
}

int cmd_stat(int argc, char **argv) {
  if (argc != 2) usage();
  const char *dir = argv[0];
  uint64_t n = to_u64(argv[1]);
  auto t0 = Clock::now();
  int dfd = open_dir(dir);
  char name[32];
  uint64_t bytes = 0;
  for (uint64_t i = 0; i < n; ++i) {
    name_of(name, 'f', i);
    struct stat st;
    if (::fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) die("stat", std::string(dir) + "/" + name);
    bytes += static_cast<uint64_t>(st.st_size);
  }
  ::close(dfd);
  double s = seconds_since(t0);
  std::printf("op=stat files=%" PRIu64 " total_size=%" PRIu64 " seconds=%.6f rate=%.2f unit=stats/s\n", n, bytes,
              s, static_cast<double>(n) / s);
  return 0;
}

int cmd_readdir(int argc, char **argv) {
  if (argc < 1 || argc > 2) usage();
  const char *dir = argv[0];
  auto t0 = Clock::now();
  DIR *d = ::opendir(dir);
  if (!d) die("opendir", dir);
  uint64_t n = 0;
  for (;;) {
    errno = 0;
    struct dirent *e = ::readdir(d);
    if (!e) {
      if (errno) die("readdir", dir);
      break;
    }
    if (e->d_name[0] == '.' && (e->d_name[1] == 0 || (e->d_name[1] == '.' && e->d_name[2] == 0))) continue;
    ++n;
  }
  ::closedir(d);
  double s = seconds_since(t0);
  std::printf("op=readdir entries=%" PRIu64 " seconds=%.6f rate=%.2f unit=entries/s\n", n, s,
              static_cast<double>(n) / s);
  if (argc == 2 && n != to_u64(argv[1])) {
    std::fprintf(stderr, "fsbench: readdir %s: %" PRIu64 " entries, expected %s\n", dir, n, argv[1]);
    return 1;
  }
  return 0;
}

// VmRSS / VmHWM of a process in KiB; -1 when the process is gone.
struct Mem {
  long rss = -1, hwm = -1;
};

Mem read_mem(pid_t pid) {
  Mem m;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/status", static_cast<int>(pid));
  FILE *f = std::fopen(path, "re");
  if (!f) return m;
  char line[256];
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, "VmRSS:", 6) == 0) m.rss = std::strtol(line + 6, nullptr, 10);
    else if (std::strncmp(line, "VmHWM:", 6) == 0) m.hwm = std::strtol(line + 6, nullptr, 10);
  }
  std::fclose(f);
  return m;
}

bool reset_hwm(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/clear_refs", static_cast<int>(pid));
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, "5", 1) == 1;
  ::close(fd);
  return ok;
}

int cmd_rsswatch(int argc, char **argv) {
  if (argc < 5 || std::string_view(argv[3]) != "--") usage();
  pid_t target = static_cast<pid_t>(to_u64(argv[0]));
  auto interval = std::chrono::milliseconds(std::max<uint64_t>(1, to_u64(argv[1])));
  double timeout_s = static_cast<double>(to_u64(argv[2]));
  char **cmd = argv + 4;

  Mem before = read_mem(target);
  if (before.rss < 0) {
    std::fprintf(stderr, "fsbench: rsswatch: no process %d\n", static_cast<int>(target));
    return 1;
  }
  bool hwm_reset = reset_hwm(target);
  if (hwm_reset) before = read_mem(target);  // VmHWM now equals the current RSS

  std::fflush(stdout);
  auto t0 = Clock::now();
  pid_t child = ::fork();
  if (child < 0) die("fork");
  if (child == 0) {
    ::setpgid(0, 0);
    ::execvp(cmd[0], cmd);
    std::fprintf(stderr, "fsbench: exec %s: %s\n", cmd[0], std::strerror(errno));
    ::_exit(127);
  }
  ::setpgid(child, child);

  long peak = before.rss, last = before.rss;
  uint64_t samples = 0;
  bool timed_out = false, target_gone = false;
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(child, &status, WNOHANG);
    if (r == child) break;
    if (r < 0 && errno != EINTR) die("waitpid");
    Mem m = read_mem(target);
    if (m.rss < 0) {
      target_gone = true;
    } else {
      ++samples;
      last = m.rss;
      peak = std::max(peak, m.rss);
    }
    if (timeout_s > 0 && !timed_out && seconds_since(t0) > timeout_s) {
      timed_out = true;
      ::kill(-child, SIGKILL);
    }
    std::this_thread::sleep_for(interval);
  }
  double s = seconds_since(t0);
  Mem after = read_mem(target);
  if (after.rss >= 0) {
    last = after.rss;
    peak = std::max(peak, after.rss);
  } else {
    target_gone = true;
  }
  long hwm = (hwm_reset && after.hwm >= 0) ? after.hwm : -1;
  long peak_all = std::max(peak, hwm);
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::printf("op=rsswatch pid=%d seconds=%.6f samples=%" PRIu64
              " rss_before_kib=%ld rss_peak_sampled_kib=%ld hwm_kib=%ld rss_peak_kib=%ld rss_after_kib=%ld"
              " growth_kib=%ld child_exit=%d timed_out=%d target_gone=%d\n",
              static_cast<int>(target), s, samples, before.rss, peak, hwm, peak_all, last,
              peak_all - before.rss, code, timed_out ? 1 : 0, target_gone ? 1 : 0);
  if (timed_out) return 124;
  if (target_gone) return 1;
  return code;
}

int cmd_stablewrites(int argc, char **argv) {
  if (argc != 4) usage();
  const std::string dir = argv[0];
  const unsigned threads = static_cast<unsigned>(to_u64(argv[1]));
  const double secs = static_cast<double>(to_u64(argv[2]));
  const std::string mode = argv[3];
  if (mode != "append" && mode != "overwrite" && mode != "dsync") usage();
  std::vector<uint64_t> count(threads, 0);
  std::vector<std::thread> ts;
  auto t0 = Clock::now();
  for (unsigned w = 0; w < threads; w++)
    ts.emplace_back([&, w] {
      char name[16];
      std::snprintf(name, sizeof name, "/w%02u", w);
      std::string path = dir + name;
      int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | (mode == "dsync" ? O_DSYNC : 0);
      int fd = ::open(path.c_str(), flags, 0644);
      if (fd < 0) die("open", path);
      std::string buf(4096, static_cast<char>('a' + w % 26));
      while (seconds_since(t0) < secs) {
        uint64_t i = count[w];
        off_t at = static_cast<off_t>(mode == "append" ? i * 4096 : (i % 64) * 4096);
        if (::pwrite(fd, buf.data(), buf.size(), at) != static_cast<ssize_t>(buf.size())) die("write", path);
        if (mode != "dsync" && ::fsync(fd) != 0) die("fsync", path);
        count[w]++;
      }
      ::close(fd);
    });
  for (auto &t : ts) t.join();
  double s = seconds_since(t0);
  uint64_t total = 0;
  for (uint64_t c : count) total += c;
  std::printf("op=stablewrites mode=%s threads=%u count=%" PRIu64 " seconds=%.6f rate=%.1f unit=writes/s\n",
              mode.c_str(), threads, total, s, static_cast<double>(total) / s);
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 2) usage();
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::string_view c = argv[1];
  int n = argc - 2;
  char **a = argv + 2;
  if (c == "seqwrite") return cmd_seqwrite(n, a);
  if (c == "seqread") return cmd_seqread(n, a);
  if (c == "smallfiles") return cmd_smallfiles(n, a);
  if (c == "mkfiles") return cmd_mkfiles(n, a);
  if (c == "syncfiles") return cmd_syncfiles(n, a);
  if (c == "stat") return cmd_stat(n, a);
  if (c == "stablewrites") return cmd_stablewrites(n, a);
  if (c == "readdir") return cmd_readdir(n, a);
  if (c == "rsswatch") return cmd_rsswatch(n, a);
  usage();
}
