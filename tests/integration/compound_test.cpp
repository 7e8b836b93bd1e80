// compound_test — compounds through a real daemon and mount (run by
// tests/support/with-tcfs on a small XFS image): visibility through the
// kernel's caches, data written through the mount before a compound,
// caller credentials, paths that escape, a full disk, and malformed
// requests from a raw socket client.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
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


// Last resort when the daemon stopped answering: abort this mount's FUSE
// connection (so the rest of the suite fails fast instead of hanging).
void abort_mount() {
  std::ifstream mi("/proc/self/mountinfo");
  std::string line, dev;
  while (std::getline(mi, line)) {
    std::istringstream ls(line);
    std::string id, parent, majmin, root, mp;
    if (ls >> id >> parent >> majmin >> root >> mp && mp == mnt()) dev = majmin;
  }
  if (dev.empty()) return;
  mkdir("/sys/fs/fuse/connections", 0755);
  if (system("mountpoint -q /sys/fs/fuse/connections || mount -t fusectl none /sys/fs/fuse/connections") != 0) return;
  std::ofstream("/sys/fs/fuse/connections/" + dev.substr(dev.find(':') + 1) + "/abort") << "1\n";
}

// Runs fn in a child process; its exit status, or -1 (after aborting the
// mount) when it has not finished within seconds: a hang is a failure.
int in_child_with_timeout(const std::function<int()>& fn, int seconds) {
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) _exit(fn());
  for (int i = 0; i < seconds * 10; ++i) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    usleep(100000);
  }
  abort_mount();
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return -1;
}

// chattr on the store's own copy of a mount path (not through the mount):
// adds `add` and clears `clear` among the inode flags; true on success.
std::string store_path(const std::string& rel) { return env("TCFS_TEST_STORE") + "/root/" + rel; }
bool chattr(const std::string& rel, unsigned add, unsigned clear = 0) {
  int fd = open(store_path(rel).c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return false;
  unsigned v = 0;
  bool ok = ioctl(fd, FS_IOC_GETFLAGS, &v) == 0;
  v = (v | add) & ~clear;
  ok = ok && ioctl(fd, FS_IOC_SETFLAGS, &v) == 0;
  close(fd);
  return ok;
}
// Clears +i / +a of its paths on every exit path (the store could not be
// cleaned up otherwise).
struct Unflag {
  std::vector<std::string> rels;
  ~Unflag() {
    for (const auto& r : rels) chattr(r, 0, FS_IMMUTABLE_FL | FS_APPEND_FL);
  }
};
// The compound was refused by its plan: rolled back at op `op` with EPERM,
// the message naming `path` and the flag, and no operation ran.
void check_refused(const tcfs::CompoundReply& r, int op, const std::string& path, const char* flag) {
  CHECK(r.outcome == Outcome::RolledBack);
  CHECK(r.failed_op == op);
  CHECK(r.err == EPERM);
  CHECK_MESSAGE(r.message.find(path) != std::string::npos, r.message);
  CHECK_MESSAGE(r.message.find(flag) != std::string::npos, r.message);
  for (const auto& res : r.results) CHECK(!res.ran);
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

TEST_CASE("a descriptor of a file on the mount itself is refused, never read through the mount") {
  std::string d = area("ownmount");
  spit(d + "/a", std::string(300000, 'a'));
  spit(d + "/b", std::string(5000, 'b'));
  // The same file the compound writes (its lock is held) and another one:
  // both would make the daemon wait on a request it serves itself.
  for (const char* src : {"a", "b"}) {
    CAPTURE(src);
    int rc = in_child_with_timeout([&] {
      int fd = open((d + "/" + src).c_str(), O_RDONLY);
      if (fd < 0) return 20;
      Compound c;
      c.write_fd("ownmount/a", fd, 200000);
      auto cl = tcfs::Client::for_path(mnt());
      if (!cl) return 21;
      auto r = cl->submit(c);
      if (!r) return 22;
      if (r->outcome != Outcome::Rejected) return 23;
      if (r->err != EDEADLK) return 24;
      if (r->message.find("own mount") == std::string::npos) return 25;
      if (r->message.find("ownmount/a") == std::string::npos) return 26;
      return 0;
    }, 60);
    REQUIRE_MESSAGE(rc != -1, "the compound hung: the daemon read through its own mount");
    CHECK(rc == 0);
  }
  CHECK(slurp(d + "/a") == std::string(300000, 'a'));  // nothing ran
  daemon_still_serves();
}

TEST_CASE("on a full store, a compound that only frees space still runs") {
  std::string d = area("fullrm");
  for (int i = 0; i < 3; ++i) spit(d + "/small" + std::to_string(i), "x");
  // Fill the store through the mount until the filesystem says ENOSPC.
  int fd = open((d + "/filler").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  std::string chunk(1 << 20, 'f');
  int err = 0;
  for (int i = 0; i < 4096 && !err; ++i)
    if (write(fd, chunk.data(), chunk.size()) < 0) err = errno;
  if (!err && fsync(fd) != 0) err = errno;
  close(fd);
  REQUIRE(err == ENOSPC);
  // Top it up with small files until not even those fit.
  for (int i = 0; i < 10000; ++i) {
    int f = open((d + "/top" + std::to_string(i)).c_str(), O_WRONLY | O_CREAT, 0644);
    if (f < 0) break;
    bool full = write(f, chunk.data(), 4096) < 0 || fsync(f) != 0;
    close(f);
    if (full) break;
  }
  Compound grow;
  grow.create("fullrm/new", 0644, true);
  grow.write("fullrm/new", std::string(1 << 20, 'n'));
  auto g = submit(grow);
  CHECK(g.outcome != Outcome::Committed);
  CHECK(g.err == ENOSPC);
  Compound rm;
  rm.remove("fullrm/filler");
  rm.rename("fullrm/small0", "fullrm/renamed");
  rm.truncate("fullrm/small1", 0);
  auto r = submit(rm);
  CHECK_MESSAGE(r.outcome == Outcome::Committed, r.message);
  CHECK(!fs::exists(d + "/filler"));
  CHECK(fs::exists(d + "/renamed"));
  CHECK(fs::file_size(d + "/small1") == 0);
  fs::remove_all(d);
  daemon_still_serves();
}

TEST_CASE("in a directory the caller cannot search, a compound learns EACCES and nothing else") {
  std::string d = area("hidden");
  fs::create_directories(d + "/closed/sub");
  spit(d + "/closed/f", "secret");
  REQUIRE(symlink("/very/secret/target", (d + "/closed/l").c_str()) == 0);
  chmod((d + "/closed").c_str(), 0700);
  chmod(d.c_str(), 0777);
  // Each compound names something that exists and something that does not:
  // both must look the same to a caller who may not look.
  std::vector<std::function<void(Compound&)>> cases = {
      [](Compound& c) { c.create("hidden/closed/f", 0644, true); },
      [](Compound& c) { c.create("hidden/closed/nope", 0644, true); },
      [](Compound& c) { c.mkdir("hidden/closed/sub", 0755); },
      [](Compound& c) { c.remove("hidden/closed/f"); },
      [](Compound& c) { c.remove("hidden/closed/nope"); },
      [](Compound& c) { c.remove("hidden/closed/sub"); },
      [](Compound& c) { c.rename("hidden/closed/l", "hidden/mine"); },
      [](Compound& c) { c.rename("hidden/closed/nope", "hidden/mine"); },
      [](Compound& c) { c.link("hidden/closed/f", "hidden/mine"); },
      [](Compound& c) { c.copy("hidden/closed/l", "hidden/mine"); },
      [](Compound& c) { c.write("hidden/closed/sub", "x"); },
      [](Compound& c) { c.truncate("hidden/closed/l/x", 0); },
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    CAPTURE(i);
    int rc = in_child_with_timeout([&] {
      if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0) return 10;
      Compound c;
      cases[i](c);
      auto cl = tcfs::Client::for_path(mnt());
      if (!cl) return 11;
      auto r = cl->submit(c);
      if (!r || r->outcome == Outcome::Committed) return 12;
      if (r->err != EACCES) return 100 + r->err;
      for (const char* leak : {"exist", "No such", "directory", "secret/target", "symlink"})
        if (r->message.find(leak) != std::string::npos) return 13;
      return 0;
    }, 60);
    CHECK(rc == 0);
  }
  CHECK(slurp(d + "/closed/f") == "secret");
  CHECK(!fs::exists(d + "/mine"));
}

// What an unprivileged caller may do to a file is the same through the
// mount (POSIX) and through a compound: each privileged case runs both
// ways on twin files, and both must give the same errno and leave the
// same state.
TEST_CASE("privileged cases: a compound as an unprivileged user gets what POSIX on the mount gets") {
  std::string d = area("privmatrix");
  chmod(d.c_str(), 0777);
  struct Case {
    const char* name;
    uid_t owner;
    gid_t group;
    mode_t mode;
    std::function<int(const std::string&)> posix;     // errno, run as the user on the mount
    std::function<void(Compound&, const std::string&)> compound;  // the same, mount-relative path
  };
  const std::string cap = std::string("\x01\x00\x00\x02\xc0\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20);
  auto err = [](int rc) { return rc == 0 ? 0 : errno; };
  std::vector<Case> cases = {
      {"security.capability on own file", 65534, 65534, 0755,
       [&](const std::string& p) { return err(setxattr(p.c_str(), "security.capability", cap.data(), cap.size(), 0)); },
       [&](Compound& c, const std::string& p) { c.setxattr(p, "security.capability", cap); }},
      {"trusted.* on own file", 65534, 65534, 0644,
       [&](const std::string& p) { return err(setxattr(p.c_str(), "trusted.x", "v", 1, 0)); },
       [&](Compound& c, const std::string& p) { c.setxattr(p, "trusted.x", "v"); }},
      {"user.* on another's file", 0, 0, 0644,
       [&](const std::string& p) { return err(setxattr(p.c_str(), "user.x", "v", 1, 0)); },
       [&](Compound& c, const std::string& p) { c.setxattr(p, "user.x", "v"); }},
      {"chown own file to root", 65534, 65534, 0644,
       [&](const std::string& p) { return err(chown(p.c_str(), 0, static_cast<gid_t>(-1))); },
       [&](Compound& c, const std::string& p) { c.chown(p, 0u, std::nullopt); }},
      {"chgrp own file to a group one is not in", 65534, 65534, 0644,
       [&](const std::string& p) { return err(chown(p.c_str(), static_cast<uid_t>(-1), 0)); },
       [&](Compound& c, const std::string& p) { c.chown(p, std::nullopt, 0u); }},
      {"chmod another's file", 0, 0, 0644,
       [&](const std::string& p) { return err(chmod(p.c_str(), 0666)); },
       [&](Compound& c, const std::string& p) { c.chmod(p, 0666); }},
      {"setgid on own file of a group one is not in", 65534, 0, 0644,
       [&](const std::string& p) { return err(chmod(p.c_str(), 02755)); },
       [&](Compound& c, const std::string& p) { c.chmod(p, 02755); }},
      {"setuid on own file", 65534, 65534, 0644,
       [&](const std::string& p) { return err(chmod(p.c_str(), 04755)); },
       [&](Compound& c, const std::string& p) { c.chmod(p, 04755); }},
      {"explicit times of another's writable file", 0, 0, 0666,
       [&](const std::string& p) {
         struct timespec ts[2] = {{1000, 0}, {2000, 0}};
         return err(utimensat(AT_FDCWD, p.c_str(), ts, 0));
       },
       [&](Compound& c, const std::string& p) { c.utimes(p, tcfs::Timestamp{1000, 0, false}, tcfs::Timestamp{2000, 0, false}); }},
      {"times 'now' of another's writable file", 0, 0, 0666,
       [&](const std::string& p) { return err(utimensat(AT_FDCWD, p.c_str(), nullptr, 0)); },
       [&](Compound& c, const std::string& p) { c.utimes(p, tcfs::Timestamp{0, 0, true}, tcfs::Timestamp{0, 0, true}); }},
      {"times 'now' of another's read-only file", 0, 0, 0644,
       [&](const std::string& p) { return err(utimensat(AT_FDCWD, p.c_str(), nullptr, 0)); },
       [&](Compound& c, const std::string& p) { c.utimes(p, tcfs::Timestamp{0, 0, true}, tcfs::Timestamp{0, 0, true}); }},
      {"write into another's read-only file", 0, 0, 0644,
       [&](const std::string& p) {
         int fd = open(p.c_str(), O_WRONLY);
         if (fd < 0) return errno;
         close(fd);
         return 0;
       },
       [&](Compound& c, const std::string& p) { c.write(p, "x"); }},
      {"remove xattr of another's file", 0, 0, 0644,
       [&](const std::string& p) { return err(removexattr(p.c_str(), "user.keep")); },
       [&](Compound& c, const std::string& p) { c.removexattr(p, "user.keep"); }},
  };
  auto state = [](const std::string& p) {
    struct stat st {};
    if (lstat(p.c_str(), &st) != 0) return std::string("gone");
    char x[256];
    ssize_t cap_n = getxattr(p.c_str(), "security.capability", x, sizeof x);
    ssize_t tr_n = getxattr(p.c_str(), "trusted.x", x, sizeof x);
    ssize_t us_n = getxattr(p.c_str(), "user.x", x, sizeof x);
    ssize_t keep_n = getxattr(p.c_str(), "user.keep", x, sizeof x);
    return std::to_string(st.st_mode) + " " + std::to_string(st.st_uid) + ":" + std::to_string(st.st_gid) + " size " +
           std::to_string(st.st_size) + " mtime " + std::to_string(st.st_mtim.tv_sec == 2000) + " xattrs " +
           std::to_string(cap_n > 0) + std::to_string(tr_n > 0) + std::to_string(us_n > 0) + std::to_string(keep_n > 0);
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& k = cases[i];
    std::string name = k.name;
    CAPTURE(name);
    std::string a = d + "/posix" + std::to_string(i), b = d + "/compound" + std::to_string(i);
    for (const auto& f : {a, b}) {
      spit(f, "content");
      REQUIRE(setxattr(f.c_str(), "user.keep", "k", 1, 0) == 0);
      REQUIRE(chown(f.c_str(), k.owner, k.group) == 0);
      REQUIRE(chmod(f.c_str(), k.mode) == 0);
    }
    int rc = in_child_with_timeout([&] {
      if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0) return 250;
      int pe = k.posix(a);
      Compound c;
      k.compound(c, "privmatrix/compound" + std::to_string(i));
      auto cl = tcfs::Client::for_path(mnt());
      if (!cl) return 251;
      auto r = cl->submit(c);
      if (!r) return 252;
      int ce = r->outcome == Outcome::Committed ? 0 : r->err;
      return pe == ce ? 0 : 1 + (pe & 0xf) * 16 + (ce & 0xf);
    }, 60);
    CHECK_MESSAGE(rc == 0, "POSIX and compound results differ (", rc, ")");
    CHECK(state(a) == state(b));
  }
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

TEST_CASE("a compound that would change an immutable file is refused before anything changes") {
  std::string d = area("immut");
  spit(d + "/other", "other");
  spit(d + "/frozen", "frozen");
  Unflag guard{{"immut/frozen"}};
  REQUIRE(chattr("immut/frozen", FS_IMMUTABLE_FL));
  struct Case {
    const char* what;
    std::function<void(Compound&)> add;
  };
  for (const Case& k : {
           Case{"write", [](Compound& c) { c.write("immut/frozen", "X", 0); }},
           Case{"truncate", [](Compound& c) { c.truncate("immut/frozen", 0); }},
           Case{"chmod", [](Compound& c) { c.chmod("immut/frozen", 0600); }},
           Case{"setxattr", [](Compound& c) { c.setxattr("immut/frozen", "user.k", "v"); }},
           Case{"link", [](Compound& c) { c.link("immut/frozen", "immut/second"); }},
           Case{"rename", [](Compound& c) { c.rename("immut/frozen", "immut/moved"); }},
           Case{"rename onto", [](Compound& c) { c.rename("immut/other", "immut/frozen"); }},
           Case{"remove", [](Compound& c) { c.remove("immut/frozen"); }},
           Case{"copy onto", [](Compound& c) { c.copy("immut/other", "immut/frozen"); }},
       }) {
    CAPTURE(k.what);
    Compound c;
    c.write("immut/other", "CHANGED", 0);
    c.create("immut/new", 0644, true);
    k.add(c);
    check_refused(submit(c), 2, "immut/frozen", "immutable");
    CHECK(slurp(d + "/other") == "other");
    CHECK(!fs::exists(d + "/new"));
    CHECK(slurp(d + "/frozen") == "frozen");
  }
  CHECK(!fs::exists(d + "/second"));
  CHECK(!fs::exists(d + "/moved"));
  // Reading it is no change: a copy from it commits.
  Compound ok;
  ok.copy("immut/frozen", "immut/copy");
  CHECK(submit(ok).outcome == Outcome::Committed);
  CHECK(slurp(d + "/copy") == "frozen");
}

TEST_CASE("a compound cannot append to an append-only file: its undo could not shorten it") {
  std::string d = area("appendonly");
  spit(d + "/log", "line1\n");
  Unflag guard{{"appendonly/log"}};
  REQUIRE(chattr("appendonly/log", FS_APPEND_FL));
  Compound c;
  c.append("appendonly/log", "line2\n");
  c.mkdir("appendonly", 0755);  // exists: the compound would roll back, and need a truncate
  check_refused(submit(c), 0, "appendonly/log", "append-only");
  CHECK(slurp(d + "/log") == "line1\n");
  Compound t;
  t.truncate("appendonly/log", 0);
  check_refused(submit(t), 0, "appendonly/log", "append-only");
  CHECK(slurp(d + "/log") == "line1\n");
  daemon_still_serves();
}

TEST_CASE("a compound cannot add to or remove from a protected directory") {
  std::string d = area("protdir");
  fs::create_directories(d + "/ad");
  spit(d + "/ad/old", "old");
  Unflag guard{{"protdir/ad"}};
  REQUIRE(chattr("protdir/ad", FS_APPEND_FL));
  // A create there is allowed by the kernel, but its undo would have to
  // remove the entry again, which an append-only directory refuses.
  Compound c;
  c.create("protdir/ad/new", 0644, true);
  c.mkdir("protdir", 0755);  // fails: rolls back
  check_refused(submit(c), 0, "protdir/ad", "append-only");
  CHECK(!fs::exists(d + "/ad/new"));
  Compound r;
  r.remove("protdir/ad/old");
  check_refused(submit(r), 0, "protdir/ad", "append-only");
  CHECK(slurp(d + "/ad/old") == "old");
}

TEST_CASE("a recursive remove of a tree holding an immutable file is refused, and the tree stays") {
  std::string d = area("rmtree");
  fs::create_directories(d + "/top/mid/low");
  spit(d + "/top/a", "a");
  spit(d + "/top/mid/low/pinned", "pinned");
  Unflag guard{{"rmtree/top/mid/low/pinned"}};
  REQUIRE(chattr("rmtree/top/mid/low/pinned", FS_IMMUTABLE_FL));
  Compound c;
  c.remove("rmtree/top", true);
  check_refused(submit(c), 0, "rmtree/top/mid/low/pinned", "immutable");
  CHECK(slurp(d + "/top/a") == "a");
  CHECK(slurp(d + "/top/mid/low/pinned") == "pinned");
  // Cleared, the same compound removes the tree.
  REQUIRE(chattr("rmtree/top/mid/low/pinned", 0, FS_IMMUTABLE_FL));
  CHECK(submit(c).outcome == Outcome::Committed);
  CHECK(!fs::exists(d + "/top"));
}
