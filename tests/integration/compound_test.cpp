// compound_test — compounds through a real daemon and mount (run by
// tests/support/with-tcfs on a small XFS image): visibility through the
// kernel's caches, data written through the mount before a compound,
// caller credentials, paths that escape, a full disk, and malformed
// requests from a raw socket client.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "tcfs/client.h"
#include "tcfs/protocol.h"

namespace fs = std::filesystem;
using tcfs::Compound;
using tcfs::Outcome;

namespace {

std::string env(const char* k) {
  const char* v = getenv(k);
  REQUIRE_MESSAGE(v, k, " not set (run under tests/support/with-tcfs)");
  return v;
}
std::string mnt() { return env("TCFS_TEST_MNT"); }

std::string slurp(const std::string& p) {
  int fd = open(p.c_str(), O_RDONLY);
  if (fd < 0) return "<missing>";
  std::string s;
  char b[65536];
  ssize_t n;
  while ((n = read(fd, b, sizeof b)) > 0) s.append(b, static_cast<size_t>(n));
  close(fd);
  return s;
}

void spit(const std::string& p, const std::string& d) {
  int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, d.data(), d.size()) == static_cast<ssize_t>(d.size()));
  close(fd);
}

tcfs::CompoundReply submit(Compound& c) {
  auto cl = tcfs::Client::for_path(mnt());
  REQUIRE_MESSAGE(cl.is_ok(), cl.status().message());
  auto r = cl->submit(c);
  REQUIRE_MESSAGE(r.is_ok(), r.status().message());
  return *r;
}

// A fresh directory for one test case, in the mount.
std::string area(const std::string& name) {
  std::string d = mnt() + "/" + name;
  fs::create_directories(d);
  return d;
}

int raw_connect() {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  auto m = tcfs::find_mount(mnt());
  REQUIRE_MESSAGE(m.is_ok(), m.status().message());
  strcpy(a.sun_path, m->socket.c_str());
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  return fd;
}

void send_raw(int fd, const std::string& bytes) {
  REQUIRE(send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
}

std::string frame(const std::string& payload, uint32_t claimed) {
  std::string f(4, '\0');
  for (int i = 0; i < 4; ++i) f[static_cast<size_t>(i)] = static_cast<char>((claimed >> (8 * i)) & 0xff);
  return f + payload;
}
std::string frame(const std::string& payload) { return frame(payload, static_cast<uint32_t>(payload.size())); }

std::string msgpack(const nlohmann::json& j) {
  auto v = nlohmann::json::to_msgpack(j);
  return std::string(v.begin(), v.end());
}

// Reads one reply frame; returns the decoded map (or null on EOF).
nlohmann::json read_reply(int fd) {
  unsigned char h[4];
  size_t got = 0;
  while (got < 4) {
    ssize_t n = recv(fd, h + got, 4 - got, 0);
    if (n <= 0) return nullptr;
    got += static_cast<size_t>(n);
  }
  uint32_t len = h[0] | (h[1] << 8) | (h[2] << 16) | (static_cast<uint32_t>(h[3]) << 24);
  std::string p(len, '\0');
  got = 0;
  while (got < len) {
    ssize_t n = recv(fd, p.data() + got, len - got, 0);
    if (n <= 0) return nullptr;
    got += static_cast<size_t>(n);
  }
  return nlohmann::json::from_msgpack(p);
}

void daemon_still_serves() {
  Compound c;
  std::string d = fs::path(area("alive")).filename();
  c.create(d + "/probe" + std::to_string(rand()), 0644, true);
  CHECK(submit(c).outcome == Outcome::Committed);
}

}  // namespace

TEST_CASE("the mount shows a compound's result at once, through cached entries, attributes and pages") {
  std::string d = area("visible");
  spit(d + "/f", "old content");
  struct stat st;
  REQUIRE(stat((d + "/f").c_str(), &st) == 0);  // attributes now cached for a day
  CHECK(slurp(d + "/f") == "old content");      // pages cached (keep_cache)
  CHECK(stat((d + "/new").c_str(), &st) != 0);  // a negative entry cached
  Compound c;
  c.write("visible/f", "NEW content that is longer", 0);
  c.create("visible/new", 0600, true);
  c.remove("visible/gone-soon", false);
  spit(d + "/gone-soon", "x");
  REQUIRE(stat((d + "/gone-soon").c_str(), &st) == 0);
  auto r = submit(c);
  REQUIRE(r.outcome == Outcome::Committed);
  REQUIRE(stat((d + "/f").c_str(), &st) == 0);
  CHECK(st.st_size == 26);
  CHECK(slurp(d + "/f") == "NEW content that is longer");
  CHECK(stat((d + "/new").c_str(), &st) == 0);
  CHECK(stat((d + "/gone-soon").c_str(), &st) != 0);
}

TEST_CASE("data written through the mount before a compound is what its undo restores") {
  std::string d = area("prior");
  int fd = open((d + "/f").c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, "written through the mount", 25) == 25);  // no fsync, file still open
  Compound c;
  c.write("prior/f", "XXXX", 0);
  c.mkdir("prior", 0755);  // exists: EEXIST, the compound rolls back
  auto r = submit(c);
  CHECK(r.outcome == Outcome::RolledBack);
  CHECK(r.failed_op == 1);
  CHECK(r.err == EEXIST);
  char buf[64] = {};
  CHECK(pread(fd, buf, sizeof buf, 0) == 25);  // the same open file sees the old data
  CHECK(std::string(buf) == "written through the mount");
  close(fd);
}

TEST_CASE("each operation runs with the caller's credentials") {
  std::string d = area("creds");
  fs::create_directories(d + "/open");
  fs::create_directories(d + "/closed");
  chmod((d + "/open").c_str(), 0777);
  chmod((d + "/closed").c_str(), 0755);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0) _exit(10);
    Compound c;
    c.create("creds/open/mine", 0644, true);
    c.create("creds/closed/not-mine", 0644, true);
    auto cl = tcfs::Client::for_path(mnt());
    if (!cl) _exit(11);
    auto r = cl->submit(c);
    if (!r || r->outcome != Outcome::RolledBack || r->failed_op != 1 || r->err != EACCES) _exit(12);
    Compound ok;
    ok.create("creds/open/mine", 0644, true);
    auto r2 = cl->submit(ok);
    _exit(r2 && r2->outcome == Outcome::Committed ? 0 : 13);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  struct stat st;
  REQUIRE(stat((d + "/open/mine").c_str(), &st) == 0);
  CHECK(st.st_uid == 65534u);
  CHECK(st.st_gid == 65534u);
  CHECK(stat((d + "/closed/not-mine").c_str(), &st) != 0);
}

TEST_CASE("the store is closed to other users, whose compounds still run through the mount") {
  std::string store = env("TCFS_TEST_STORE");
  std::string d = area("private");
  chmod(d.c_str(), 0777);
  struct stat st;
  REQUIRE(stat(store.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0700);
  auto m = tcfs::find_mount(mnt());
  REQUIRE(m.is_ok());
  CHECK(m->socket.rfind("/run/tcfs/", 0) == 0);  // not in the store: other users could not reach it
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0) _exit(10);
    struct stat s2;
    if (stat((store + "/root/private").c_str(), &s2) == 0 || errno != EACCES) _exit(11);
    if (stat((store + "/meta").c_str(), &s2) == 0 || errno != EACCES) _exit(12);
    if (open(store.c_str(), O_RDONLY | O_DIRECTORY) >= 0 || errno != EACCES) _exit(13);
    auto cl = tcfs::Client::for_path(mnt());
    if (!cl) _exit(14);
    Compound c;
    c.create("private/by-nobody", 0644, true).write("private/by-nobody", "through the mount");
    auto r = cl->submit(c);
    _exit(r && r->outcome == Outcome::Committed ? 0 : 15);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(slurp(d + "/by-nobody") == "through the mount");
}

TEST_CASE("paths that escape the mount are refused and nothing runs") {
  std::string d = area("escape");
  REQUIRE(symlink("/etc", (d + "/out").c_str()) == 0);
  Compound c;
  c.mkdir("escape/made", 0755);
  c.create("escape/out/tcfs-escape", 0644);
  auto r = submit(c);
  CHECK(r.outcome == Outcome::RolledBack);
  CHECK(r.err == EXDEV);
  CHECK(!fs::exists(d + "/made"));
  CHECK(!fs::exists("/etc/tcfs-escape"));
  for (const char* bad : {"../x", "/etc/passwd", "escape/../../x", "a//b"}) {
    CAPTURE(bad);
    Compound b;
    b.create(bad, 0644);
    auto rb = submit(b);
    CHECK(rb.outcome == Outcome::Rejected);
    CHECK(rb.err != 0);
  }
}

TEST_CASE("a full disk in the middle of a compound rolls it back") {
  std::string d = area("full");
  spit(d + "/keep", "precious");
  // A sparse local file far larger than the store's small image.
  char tmpl[] = "/tmp/tcfs-big.XXXXXX";
  int src = mkstemp(tmpl);
  REQUIRE(src >= 0);
  unlink(tmpl);
  REQUIRE(ftruncate(src, off_t{2} << 30) == 0);
  Compound c;
  c.write("full/keep", "changed", 0);
  c.create("full/huge", 0644, true);
  c.write_fd("full/huge", src);
  auto r = submit(c);
  close(src);
  CHECK(r.outcome == Outcome::RolledBack);
  CHECK(r.failed_op == 2);
  CHECK(r.err == ENOSPC);
  CHECK(slurp(d + "/keep") == "precious");
  CHECK(!fs::exists(d + "/huge"));
  daemon_still_serves();
}

TEST_CASE("malformed requests get clear rejections and never hurt the daemon") {
  area("alive");
  SUBCASE("wrong version") {
    int fd = raw_connect();
    send_raw(fd, frame(msgpack({{"v", 99}, {"type", "compound"}, {"ops", nlohmann::json::array()}})));
    auto r = read_reply(fd);
    REQUIRE(!r.is_null());
    CHECK(r["outcome"] == "rejected");
    CHECK(r["errno"] == EPROTO);
    close(fd);
  }
  SUBCASE("unknown op and missing field, with the op index in the message") {
    int fd = raw_connect();
    send_raw(fd, frame(msgpack({{"v", 1}, {"type", "compound"},
                                {"ops", {{{"op", "mkdir"}, {"path", "alive/ok"}}, {{"op", "explode"}, {"path", "x"}}}}})));
    auto r = read_reply(fd);
    REQUIRE(!r.is_null());
    CHECK(r["outcome"] == "rejected");
    CHECK(r["message"].get<std::string>().find("op 1") != std::string::npos);
    send_raw(fd, frame(msgpack({{"v", 1}, {"type", "compound"}, {"ops", {{{"op", "write"}}}}})));
    r = read_reply(fd);
    REQUIRE(!r.is_null());
    CHECK(r["outcome"] == "rejected");
    CHECK(!fs::exists(mnt() + "/alive/ok"));
    close(fd);
  }
  SUBCASE("garbage bytes") {
    int fd = raw_connect();
    send_raw(fd, frame("\xc1\xff\x00garbage"));
    auto r = read_reply(fd);
    REQUIRE(!r.is_null());
    CHECK(r["outcome"] == "rejected");
    close(fd);
  }
  SUBCASE("an absurd length is refused without reading it") {
    int fd = raw_connect();
    send_raw(fd, frame("", 0xfffffff0u));
    auto r = read_reply(fd);
    REQUIRE(!r.is_null());
    CHECK(r["errno"] == EMSGSIZE);
    close(fd);
  }
  SUBCASE("a truncated frame and a vanished client") {
    int fd = raw_connect();
    send_raw(fd, frame(msgpack({{"v", 1}, {"type", "compound"}, {"ops", nlohmann::json::array()}}), 1000).substr(0, 12));
    close(fd);
  }
  SUBCASE("more operations than the limit") {
    Compound c;
    for (uint64_t i = 0; i <= tcfs::protocol::kDefaultMaxOps; ++i) c.mkdir("alive/x", 0755, true);
    auto r = submit(c);
    CHECK(r.outcome == Outcome::Rejected);
    CHECK(r.err == E2BIG);
  }
  daemon_still_serves();
}
