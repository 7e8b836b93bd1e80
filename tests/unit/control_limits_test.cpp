// Unit tests for the control server's resource limits (control/quota.h Q1-Q4,
// control/server.h S1-S4, control/wire.h F1) with a real server on a real
// unix socket and clients that are children running as other users: one
// user holding its share of connections and of big declared frames while
// the server's memory stays bounded and other users and root are served;
// the per-user byte and descriptor shares; idle, stalled and non-reading
// connections dropped after their timeouts.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <optional>
#include <thread>

#include "control/server.h"
#include "control/wire.h"
#include "tcfs/client.h"
#include "test_util.h"

using namespace tcfs;
using namespace tcfs::control;
using namespace std::chrono_literals;

namespace {

constexpr uid_t kUserA = 65534, kUserB = 65533;

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

struct OkExec : Executor {
  CompoundReply run(const Compound& c, const Caller&, const ProgressFn&) override {
    CompoundReply r;
    r.outcome = Outcome::Committed;
    r.results.resize(c.ops.size());
    return r;
  }
};

struct Server {
  TempDir dir;
  std::string sock = dir / "control.sock";
  std::unique_ptr<ControlServer> srv;
  MountInfo mi;

  Server(Limits lim, unsigned max_conns) {
    chmod(dir.path.c_str(), 0755);  // children running as other users reach the socket
    auto s = ControlServer::start(sock, std::make_shared<OkExec>(), lim, ServerInfo{"t", "/mnt/t", dir.path},
                                  max_conns);
    REQUIRE(s.is_ok());
    srv = std::move(s.value());
    mi = MountInfo{"/mnt/t", dir.path, sock};
  }
  // Waits (at most 20 s) until pred holds of the server's accounting.
  bool until(const std::function<bool()>& pred) const {
    for (int i = 0; i < 2000; ++i) {
      if (pred()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return pred();
  }
};

// A raw connection whose reads and writes give up after 10 s.
int dial(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  strcpy(a.sun_path, path.c_str());
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

std::string header(uint32_t claimed) {
  std::string f(4, '\0');
  for (size_t i = 0; i < 4; ++i) f[i] = static_cast<char>((claimed >> (8 * i)) & 0xff);
  return f;
}

bool send_all(int fd, const std::string& b) {
  return send(fd, b.data(), b.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(b.size());
}

// The next frame, decoded; null when there is none (end of stream, timeout).
Json next(int fd) {
  FrameLimits fl;
  fl.stall_ms = 10000;
  auto f = read_frame(fd, fl);
  if (!f) return nullptr;
  auto j = from_bytes(f->payload);
  return j ? *j : Json(nullptr);
}

// A rejection naming `part`, with errno err.
bool refused(const Json& r, int err, const std::string& part) {
  return r.is_object() && r.value("outcome", "") == "rejected" && r.value("errno", 0) == err &&
         has(r.value("message", ""), part);
}

std::string frame_of(const Json& j) {
  std::string b = to_bytes(j);
  return header(static_cast<uint32_t>(b.size())) + b;
}

// A hello on fd is answered.
bool hello_ok(int fd) {
  if (!send_all(fd, frame_of({{"v", 1}, {"type", "hello"}}))) return false;
  Json h = next(fd);
  return h.is_object() && h.value("type", "") == "hello";
}

// The server closed fd (at most 10 s to wait).
bool at_eof(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, 10000) != 1) return false;
  char c;
  return recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

size_t rss_bytes() {
  std::string s = read_file("/proc/self/statm");
  size_t size = 0, resident = 0;
  sscanf(s.c_str(), "%zu %zu", &size, &resident);
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

// A child running as uid (its gid the same): runs `work`, reports its
// result (0: as expected), then holds what it opened until release().
struct AsUser {
  pid_t pid = -1;
  int report = -1, go = -1;

  AsUser(uid_t uid, const std::function<int()>& work) {
    int r[2], g[2];
    REQUIRE(pipe2(r, O_CLOEXEC) == 0);
    REQUIRE(pipe2(g, O_CLOEXEC) == 0);
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // Only its own two pipe ends: a descriptor inherited from the test
      // (the go pipe of an earlier child, above all) would keep that child
      // from seeing its release.
      for (int fd = 3; fd < 1024; ++fd)
        if (fd != r[1] && fd != g[0]) close(fd);
      int code = setgroups(0, nullptr) != 0 || setgid(uid) != 0 || setuid(uid) != 0 ? 100 : work();
      char c = static_cast<char>(code);
      if (write(r[1], &c, 1) != 1) _exit(101);
      if (read(g[0], &c, 1) < 0) { /* the parent is done with us: EOF */ }
      _exit(code);
    }
    close(r[1]);
    close(g[0]);
    report = r[0];
    go = g[1];
  }
  // The child's report (-1: none within 30 s).
  int result() const {
    pollfd p{report, POLLIN, 0};
    char c = 0;
    if (poll(&p, 1, 30000) != 1 || read(report, &c, 1) != 1) return -1;
    return static_cast<unsigned char>(c);
  }
  void release() {
    if (pid <= 0) return;
    close(go);
    close(report);
    int st = 0;
    // The child exits once go is closed; kill it if it does not (it is ours).
    for (int i = 0; i < 1000 && waitpid(pid, &st, WNOHANG) == 0; ++i) std::this_thread::sleep_for(10ms);
    if (waitpid(pid, &st, WNOHANG) == 0) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
    }
    pid = -1;
  }
  ~AsUser() { release(); }
};

bool root() {
  if (geteuid() == 0) return true;
  MESSAGE("skipped: needs root to run clients as other users");
  return false;
}

Status compound_as_me(const MountInfo& mi, const std::string& data = "") {
  auto c = Client::connect(mi);
  if (!c) return c.status();
  Compound one;
  one.mkdir("alive");
  if (!data.empty()) one.write("alive/f", data);
  auto r = c->submit(one);
  if (!r) return r.status();
  if (r->outcome != Outcome::Committed) return Status::error(r->err ? r->err : EIO, r->message);
  return {};
}

}  // namespace

TEST_CASE("a user holding its share of stalled big frames leaves memory bounded; others and root are served") {
  if (!root()) return;
  Limits lim;
  lim.max_frame_bytes = 64u << 20;
  lim.user_bytes = 1u << 30;  // only the connection share holds this user back here
  lim.users_bytes = 1u << 30;
  lim.user_conns = 8;
  lim.root_conns = 2;
  Server ts(lim, 12);  // 10 connections for users other than root, 2 kept for root
  size_t rss0 = rss_bytes();

  // User A: 8 connections, each declaring a 64 MiB frame and sending 1000 bytes of it, then stalling.
  std::string sock = ts.sock;
  AsUser a(kUserA, [sock, mi = ts.mi] {
    for (int i = 0; i < 8; ++i) {
      int fd = dial(sock);
      if (fd < 0 || !send_all(fd, header((64u << 20) - 1) + std::string(1000, '\x91'))) return 1;
    }
    int ninth = dial(sock);  // S1: over the per-user share
    if (ninth < 0) return 2;
    if (!refused(next(ninth), EBUSY, "limit per user: 8")) return 3;
    // The client library says so too, whether or not its request went out before the refusal.
    auto c = Client::connect(mi);
    if (!c) return 4;
    auto h = c->hello();
    return h.err() == EBUSY && has(h.status().message(), "limit per user: 8") ? 0 : 5;
  });
  REQUIRE(a.result() == 0);
  // Every stalled frame has been started (charged), none taken whole.
  CHECK(ts.until([&] {
    Usage u = ts.srv->usage(kUserA);
    return u.conns == 8 && u.bytes >= 8 * 1000;
  }));
  Usage ua = ts.srv->usage(kUserA);
  MESSAGE("user A holds " << ua.conns << " connections and " << ua.bytes << " bytes in flight (512 MiB declared)");
  CHECK(ua.bytes <= 8 * (64u << 10));  // F1: the first 64 KiB each, not 64 MiB

  // User B: served, and may hold what is left for users other than root (2 connections), no more.
  AsUser b(kUserB, [mi = ts.mi, sock] {
    auto c = Client::connect(mi);
    if (!c) return 1;
    auto r = c->submit(Compound().mkdir("b"));
    if (!r || r->outcome != Outcome::Committed) return 2;
    int two = dial(sock), three = dial(sock);
    if (two < 0 || three < 0) return 3;
    if (!refused(next(three), EBUSY, "kept for root")) return 4;
    if (!hello_ok(two) || !c->hello()) return 5;
    static std::optional<Client> held;  // B holds both connections until released
    held.emplace(std::move(*c));
    return 0;
  });
  CHECK(b.result() == 0);
  CHECK(ts.until([&] { return ts.srv->others_usage().conns == 10; }));
  size_t rss = rss_bytes(), grown = rss - std::min(rss, rss0);
  MESSAGE("with user A's 8 stalled frames of 64 MiB and user B's 2 connections, RSS grew by " << (grown >> 10)
                                                                                           << " KiB");
  CHECK(grown < (48u << 20));
  // Root: every slot open to other users is taken; root's compounds still run, on both reserved slots.
  Status st = compound_as_me(ts.mi, std::string(32u << 20, 'r'));
  CHECK_MESSAGE(st.is_ok(), st.message());
  CHECK(ts.until([&] { return ts.srv->usage(0).conns == 0; }));
  auto held = Client::connect(ts.mi);
  REQUIRE(held.is_ok());
  CHECK(held->hello().is_ok());
  st = compound_as_me(ts.mi);
  CHECK_MESSAGE(st.is_ok(), st.message());

  a.release();
  b.release();
  CHECK(ts.until([&] {
    Usage o = ts.srv->others_usage();
    return o.conns == 0 && o.bytes == 0 && o.fds == 0;
  }));
  AsUser again(kUserA, [mi = ts.mi] { return compound_as_me(mi) ? 0 : 1; });
  CHECK(again.result() == 0);
}

TEST_CASE("a user's bytes in flight are capped: the frame over its share is refused with ENOBUFS; root's never are") {
  if (!root()) return;
  Limits lim;
  lim.max_frame_bytes = 16u << 20;
  lim.user_bytes = 4u << 20;
  Server ts(lim, 32);
  std::string sock = ts.sock;
  AsUser a(kUserA, [sock] {
    int held = dial(sock);  // 3 MiB declared, all but its last byte sent: ~3 MiB in flight
    if (held < 0 || !send_all(held, header(3u << 20) + std::string((3u << 20) - 1, '\x91'))) return 1;
    int over = dial(sock);  // 3 MiB more do not fit in 4 MiB
    if (over < 0) return 2;
    std::string big = header(3u << 20) + std::string(3u << 20, '\x91');
    if (send(over, big.data(), big.size(), MSG_NOSIGNAL) < 0) { /* the server gave up on it: EPIPE */ }
    if (!refused(next(over), ENOBUFS, "limit per user: 4 MiB") || !at_eof(over)) return 3;
    int small = dial(sock);  // what fits is still served
    return small >= 0 && hello_ok(small) ? 0 : 4;
  });
  CHECK(a.result() == 0);
  CHECK(ts.srv->usage(kUserA).bytes >= (3u << 20));
  // Root is not held to a user's share: 6 MiB while user A holds 3 MiB of its 4.
  Status st = compound_as_me(ts.mi, std::string(6u << 20, 'r'));
  CHECK_MESSAGE(st.is_ok(), st.message());
  AsUser b(kUserB, [mi = ts.mi] { return compound_as_me(mi, std::string(2u << 20, 'b')) ? 0 : 1; });
  CHECK(b.result() == 0);
  a.release();
  CHECK(ts.until([&] { return ts.srv->usage(kUserA).bytes == 0 && ts.srv->others_usage().bytes == 0; }));
}

TEST_CASE("a user's passed descriptors in flight are capped: refused with ETOOMANYREFS, all closed, the connection goes on") {
  if (!root()) return;
  Limits lim;
  lim.user_fds = 8;
  Server ts(lim, 32);
  AsUser a(kUserA, [mi = ts.mi] {
    auto c = Client::connect(mi);
    if (!c) return 1;
    int pipes[10][2];
    Compound comp;
    for (auto& p : pipes) {
      if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return 2;
      comp.write_fd("f", p[1]);
    }
    auto r = c->submit(comp);
    if (!r || r->outcome != Outcome::Rejected || r->err != ETOOMANYREFS || !has(r->message, "limit per user: 8"))
      return 3;
    for (auto& p : pipes) {
      close(p[1]);
      char x;
      if (read(p[0], &x, 1) != 0) return 4;  // EOF: the server kept no copy
      close(p[0]);
    }
    return c->hello() ? 0 : 5;
  });
  CHECK(a.result() == 0);
  // Root passes as many as one compound may.
  int p[2];
  REQUIRE(pipe2(p, O_CLOEXEC) == 0);
  Compound comp;
  for (int i = 0; i < 20; ++i) comp.write_fd("f", p[1]);
  auto c = Client::connect(ts.mi);
  REQUIRE(c.is_ok());
  auto r = c->submit(comp);
  REQUIRE(r.is_ok());
  CHECK(r->outcome == Outcome::Committed);
  close(p[0]);
  close(p[1]);
}

TEST_CASE("idle and stalled connections are dropped after their timeouts, freeing the user's share") {
  if (!root()) return;
  Limits lim;
  lim.idle_ms = 1000;
  lim.frame_stall_ms = 1000;
  lim.user_conns = 2;
  Server ts(lim, 32);
  std::string sock = ts.sock;
  AsUser a(kUserA, [sock] {
    int idle = dial(sock), stalled = dial(sock);
    if (idle < 0 || stalled < 0 || !send_all(stalled, header(100) + "\x82")) return 1;
    int third = dial(sock);
    if (third < 0 || !refused(next(third), EBUSY, "limit per user: 2")) return 2;
    if (!at_eof(idle)) return 3;  // S3: closed without a word
    if (!refused(next(stalled), EPROTO, "stalled") || !at_eof(stalled)) return 4;
    int fresh = dial(sock);  // the share is free again
    return fresh >= 0 && hello_ok(fresh) ? 0 : 5;
  });
  CHECK(a.result() == 0);
  // A client left idle reconnects by itself on its next call.
  auto c = Client::connect(ts.mi);
  REQUIRE(c.is_ok());
  REQUIRE(c->hello().is_ok());
  CHECK(ts.until([&] { return ts.srv->usage(0).conns == 0; }));
  auto h = c->hello();
  CHECK_MESSAGE(h.is_ok(), h.status().message());
}

TEST_CASE("a client that never reads its reply loses the connection after frame_stall_ms, not the server") {
  Limits lim;
  lim.frame_stall_ms = 300;
  Server ts(lim, 32);
  int fd = dial(ts.sock);
  REQUIRE(fd >= 0);
  Compound many;  // a reply of ~1 MB as maps: more than the socket holds
  for (int i = 0; i < 50000; ++i) many.mkdir("d");
  Json req = encode_compound(many, false);
  req.erase("results");  // maps (protocol.h), the form whose size grows with the ops
  REQUIRE(send_all(fd, frame_of(req)));
  CHECK(ts.until([&] { return ts.srv->usage(getuid()).conns == 0; }));
  close(fd);
  Status st = compound_as_me(ts.mi);
  CHECK_MESSAGE(st.is_ok(), st.message());
}
