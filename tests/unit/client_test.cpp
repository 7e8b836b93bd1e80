// Unit tests for the client library (tcfs/client.h, client/mountinfo.h):
// the Compound builder and the validation its output meets, mount lookup
// from made-up mountinfo tables (escapes, nesting, stacking), path_under,
// Client::for_path outside any tcfs mount, and a Client talking to a fake
// daemon: a thread in this test serving a unix socket with protocol v1
// frames, scripted per connection (hello, compounds with progress,
// refusals, a daemon that closes mid-reply, an oversized reply frame, an
// idle close and reconnection).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>
#include <functional>
#include <mutex>
#include <sstream>
#include <thread>

#include "client/mountinfo.h"
#include "control/wire.h"
#include "tcfs/client.h"
#include "tcfs/protocol.h"
#include "test_util.h"

using namespace tcfs;
using namespace tcfs::control;
using client_detail::locate;
using client_detail::parse_mountinfo;
using client_detail::path_under;

namespace {

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::vector<client_detail::MountEntry> table_of(const std::string& text) {
  std::istringstream in(text);
  return parse_mountinfo(in);
}

// A fake daemon: a listening unix socket and a thread that accepts one
// connection per script step and runs that step's handler on it, then
// closes it. What the handlers saw is kept for the test to check.
struct FakeDaemon {
  using Handler = std::function<void(int conn)>;
  TempDir dir;
  std::string sock = dir / "control.sock";
  int lfd = -1;
  std::vector<Handler> script;
  std::atomic<size_t> served{0};
  std::atomic<bool> stop{false};
  std::thread th;
  std::mutex mu;
  std::vector<Json> requests;  // every request frame, decoded
  std::vector<size_t> nfds;    // descriptors that came with each

  explicit FakeDaemon(std::vector<Handler> s) : script(std::move(s)) {
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(lfd >= 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    REQUIRE(sock.size() < sizeof a.sun_path);
    strcpy(a.sun_path, sock.c_str());
    REQUIRE(bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(listen(lfd, 8) == 0);
    th = std::thread([this] { run(); });
  }
  ~FakeDaemon() {
    stop = true;
    th.join();
    close(lfd);
  }
  void run() {
    for (size_t i = 0; i < script.size() && !stop;) {
      pollfd p{lfd, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int c = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      script[i++](c);
      close(c);
      served++;
    }
  }
  MountInfo mount() const { return MountInfo{"/mnt/fake", dir.path, sock}; }
  Client client() const {
    auto c = Client::connect(mount());
    REQUIRE(c.is_ok());
    return std::move(c.value());
  }
  // Reads one request frame (closing the descriptors it carries).
  Json read_request(int conn) {
    FrameLimits fl;
    fl.max_fds = 1024;
    fl.stall_ms = 10000;
    auto f = read_frame(conn, fl);
    if (!f) return nullptr;
    for (int fd : f->fds) close(fd);
    auto j = from_bytes(f->payload);
    if (!j) return nullptr;
    std::lock_guard g(mu);
    requests.push_back(*j);
    nfds.push_back(f->fds.size());
    return *j;
  }
  Json request(size_t i) {
    std::lock_guard g(mu);
    REQUIRE(i < requests.size());
    return requests[i];
  }
};

void reply(int conn, const Json& j) { REQUIRE(write_frame(conn, to_bytes(j)).is_ok()); }

Json hello_reply() {
  return {{"v", 1},
          {"type", "hello"},
          {"server", "tcfs-fake 9.9"},
          {"mount", "/mnt/fake"},
          {"store", "/stores/fake"},
          {"limits", {{"max_ops", 7}, {"max_inline_bytes", 4096}, {"max_fds", 3}, {"max_frame_bytes", 65536}}}};
}

// Raw bytes on the connection (a frame header and part of a payload).
void send_raw(int conn, const std::string& bytes) {
  REQUIRE(send(conn, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
}

std::string le32(uint32_t n) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; i++) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

}  // namespace

// ---------------------------------------------------------------- builder

TEST_CASE("builder: each helper appends one op with its own fields, defaults elsewhere") {
  Compound c;
  CHECK(c.options.txn);
  CHECK(c.options.sync);
  Compound& same = c.mkdir("d").create("d/f").write("d/f", "abc", 5).append("d/f", "zz");
  CHECK(&same == &c);  // chaining returns the compound itself
  c.truncate("d/f", 2).chmod("d/f", 0600).symlink("t", "d/l").link("d/f", "d/g");
  c.rename("d/g", "d/h", RENAME_NOREPLACE).remove("d", true).setxattr("d/f", "user.a", "v", XATTR_REPLACE);
  c.removexattr("d/f", "user.a").copy("d/f", "d/c", 1, 2, 3);
  REQUIRE(c.ops.size() == 13);
  CHECK(c.ops[0].kind == OpKind::Mkdir);
  CHECK(c.ops[0].mode == 0755);
  CHECK(!c.ops[0].parents);
  CHECK(c.ops[1].kind == OpKind::Create);
  CHECK(c.ops[1].mode == 0644);
  CHECK(!c.ops[1].exclusive);
  CHECK(!c.ops[1].truncate);
  CHECK(c.ops[2].kind == OpKind::Write);
  CHECK(c.ops[2].data == "abc");
  CHECK(c.ops[2].offset == 5);
  CHECK(!c.ops[2].append);
  CHECK(c.ops[2].fd_index == -1);
  CHECK(c.ops[3].append);
  CHECK(c.ops[3].offset == 0);
  CHECK(c.ops[4].kind == OpKind::Truncate);
  CHECK(c.ops[4].size == 2);
  CHECK(c.ops[5].kind == OpKind::Setattr);
  CHECK(c.ops[5].set_mode);
  CHECK(!c.ops[5].set_uid);
  CHECK(!c.ops[5].set_atime);
  CHECK(c.ops[5].mode == 0600);
  CHECK(c.ops[6].kind == OpKind::Symlink);
  CHECK(c.ops[6].target == "t");
  CHECK(c.ops[6].path == "d/l");
  CHECK(c.ops[7].kind == OpKind::Link);
  CHECK(c.ops[7].path == "d/f");
  CHECK(c.ops[7].path2 == "d/g");
  CHECK(c.ops[8].rename_flags == RENAME_NOREPLACE);
  CHECK(c.ops[9].recursive);
  CHECK(c.ops[10].xattr_flags == XATTR_REPLACE);
  CHECK(c.ops[11].kind == OpKind::Removexattr);
  CHECK(c.ops[11].name == "user.a");
  CHECK(c.ops[12].kind == OpKind::Copy);
  CHECK(c.ops[12].path2 == "d/c");
  CHECK(c.ops[12].src_offset == 1);
  CHECK(c.ops[12].offset == 2);
  CHECK(c.ops[12].length == 3);
  CHECK(c.fds.empty());
}

TEST_CASE("builder: what it builds passes the daemon's validation; bad paths and limits are refused by it") {
  Compound c;
  c.mkdir("a/b", 0700, true).write_fd("a/b/f", 9).write_fd("a/b/g", 8, 0, 4, 10).utimes("a/b/f", Timestamp{1, 2}, std::nullopt);
  REQUIRE(c.fds == std::vector<int>{9, 8});
  CHECK(c.ops[2].fd_index == 1);
  Json req = encode_compound(c, true);
  CHECK(req["progress"] == true);
  auto back = decode_compound(from_bytes(to_bytes(req)).value(), Limits{}, c.fds.size());
  REQUIRE(back.is_ok());
  REQUIRE(back->ops.size() == 4);
  CHECK(back->ops[2].src_offset == 4);
  CHECK(back->ops[2].length == 10);
  CHECK(back->ops[3].set_atime);
  CHECK(!back->ops[3].set_mtime);
  CHECK(back->ops[3].atime.sec == 1);
  CHECK(back->ops[3].atime.nsec == 2);

  // Descriptors the builder named but that did not arrive.
  auto nofd = decode_compound(req, Limits{}, 1);
  CHECK(nofd.err() == EBADF);

  struct Case {
    Compound c;
    int err;
    std::string says;
  };
  std::vector<Case> cases;
  cases.push_back({Compound().mkdir("/abs"), EINVAL, "is absolute"});
  cases.push_back({Compound().create("a/../../etc/passwd"), EXDEV, "leads outside the mount"});
  cases.push_back({Compound().write("a//b", "x"), EINVAL, "empty or \".\" component"});
  cases.push_back({Compound().remove(""), EINVAL, "empty path"});
  cases.push_back({Compound().rename("a", std::string(NAME_MAX + 1, 'n')), ENAMETOOLONG, "NAME_MAX"});
  for (auto& k : cases) {
    auto r = decode_compound(from_bytes(to_bytes(encode_compound(k.c, false))).value(), Limits{}, 0);
    CAPTURE(k.says);
    CHECK(r.err() == k.err);
    CHECK(has(r.status().what(), k.says));
    CHECK(has(r.status().what(), "op 0"));
  }
  Limits small;
  small.max_ops = 2;
  auto many = decode_compound(encode_compound(Compound().mkdir("a").mkdir("b").mkdir("c"), false), small, 0);
  CHECK(many.err() == E2BIG);
  CHECK(check_path("ok/path").is_ok());
}

// ---------------------------------------------------------------- mountinfo

TEST_CASE("mountinfo: \\040 \\011 \\134 escapes are decoded in mountpoints and sources") {
  auto t = table_of(
      "20 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
      "30 20 0:40 / /mnt/a\\040b\\011c\\134d rw shared:1 master:2 - fuse.tcfs /st/x\\040y rw,user_id=1000\n"
      "31 20 0:41 / /mnt/tail\\040 rw - fuse.tcfs /st/end\\134 rw,user_id=1000\n"
      "32 20 0:42 / /mnt/not\\09x rw - tmpfs tmpfs rw\n");
  REQUIRE(t.size() == 4);
  CHECK(t[1].mountpoint == "/mnt/a b\tc\\d");
  CHECK(t[1].source == "/st/x y");
  CHECK(t[1].fstype == "fuse.tcfs");
  CHECK(t[1].id == 30);
  CHECK(t[1].parent == 20);
  CHECK(t[1].superopts == "rw,user_id=1000");
  CHECK(t[2].mountpoint == "/mnt/tail ");  // an escape at the very end
  CHECK(t[2].source == "/st/end\\");
  CHECK(t[3].mountpoint == "/mnt/not\\09x");  // not an octal escape: kept as written
  auto l = locate(t, "/mnt/a b\tc\\d/file");
  REQUIRE(l.is_ok());
  CHECK(l->mount.mountpoint == "/mnt/a b\tc\\d");
  CHECK(l->mount.store == "/st/x y");
  CHECK(l->mount.socket == "/st/x y/control.sock");  // user_id=1000: in the store
  CHECK(locate(t, "/mnt/tail /f")->mount.store == "/st/end\\");
}

TEST_CASE("mountinfo: lines without the separator or fields are skipped") {
  auto t = table_of(
      "\n"
      "garbage\n"
      "21 1 8:1 / /x rw shared:1\n"                     // no " - "
      "22 1 8:1 / /y rw - ext4\n"                       // no source
      "x 1 8:1 / /z rw - ext4 /dev/z rw\n"              // id not a number
      "23 1 8:1 / /ok rw - fuse.tcfs /s\n");            // no superopts: still a mount
  REQUIRE(t.size() == 1);
  CHECK(t[0].mountpoint == "/ok");
  CHECK(t[0].superopts.empty());
  // No user_id=: root's daemon, socket under /run/tcfs.
  auto l = locate(t, "/ok/f");
  REQUIRE(l.is_ok());
  CHECK(has(l->mount.socket, "/run/tcfs/"));
  CHECK(has(l->mount.socket, ".sock"));
}

TEST_CASE("mountinfo: nested mounts: the deepest wins; mounts below a tcfs mount are listed as nested") {
  auto t = table_of(
      "20 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
      "30 20 0:40 / /m rw - fuse.tcfs /s/outer rw,user_id=1000\n"
      "31 30 0:41 / /m/in rw - fuse.tcfs /s/inner rw,user_id=1000\n"
      "32 31 0:42 / /m/in/tmp rw - tmpfs tmpfs rw\n"
      "33 20 0:43 / /other rw - tmpfs tmpfs rw\n"
      "34 30 0:44 / /m/proc rw - proc proc rw\n");
  CHECK(locate(t, "/m/x")->mount.store == "/s/outer");
  CHECK(locate(t, "/m/in")->mount.store == "/s/inner");
  CHECK(locate(t, "/m/in/x/y")->mount.store == "/s/inner");
  CHECK(locate(t, "/m/inner")->mount.store == "/s/outer");  // a sibling sharing the prefix
  auto tmp = locate(t, "/m/in/tmp/f");
  CHECK(tmp.err() == ENOENT);
  CHECK(has(tmp.status().what(), "/m/in/tmp/f is not inside a tcfs mount (it is on a tmpfs mount at /m/in/tmp)"));
  auto outer = locate(t, "/m");
  REQUIRE(outer.is_ok());
  std::sort(outer->nested.begin(), outer->nested.end());
  CHECK(outer->nested == std::vector<std::string>{"/m/in", "/m/in/tmp", "/m/proc"});
  auto inner = locate(t, "/m/in/a");
  REQUIRE(inner.is_ok());
  CHECK(inner->nested == std::vector<std::string>{"/m/in/tmp"});
  CHECK(client_detail::nested_mounts(t, "/other").empty());  // not tcfs
}

TEST_CASE("mountinfo: of stacked mounts at one mountpoint the newest wins; a tcfs mount hidden by a later one is not used") {
  SUBCASE("two tcfs mounts stacked: the later one") {
    auto t = table_of(
        "20 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
        "30 20 0:40 / /m rw - fuse.tcfs /s/old rw,user_id=1000\n"
        "35 30 0:45 / /m rw - fuse.tcfs /s/new rw,user_id=1000\n");
    auto l = locate(t, "/m/f");
    REQUIRE(l.is_ok());
    CHECK(l->mount.store == "/s/new");
    CHECK(l->mount.socket == "/s/new/control.sock");
    CHECK(l->nested.empty());
  }
  SUBCASE("a tmpfs mounted over the tcfs mount hides it") {
    auto t = table_of(
        "20 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
        "30 20 0:40 / /m rw - fuse.tcfs /s/old rw,user_id=1000\n"
        "35 30 0:45 / /m rw - tmpfs tmpfs rw\n");
    auto l = locate(t, "/m/f");
    CHECK(l.err() == ENOENT);
    CHECK(has(l.status().what(), "/m/f is not inside a tcfs mount (it is on a tmpfs mount at /m)"));
    CHECK(locate(t, "/m").err() == ENOENT);
  }
  SUBCASE("a tcfs mount over a tmpfs at the same place is used") {
    auto t = table_of(
        "20 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
        "30 20 0:40 / /m rw - tmpfs tmpfs rw\n"
        "35 30 0:45 / /m rw - fuse.tcfs /s/top rw,user_id=1000\n");
    CHECK(locate(t, "/m/f")->mount.store == "/s/top");
  }
}

TEST_CASE("path_under: equal, below, prefix siblings, the root") {
  CHECK(path_under("/a", "/a"));
  CHECK(path_under("/a/b", "/a"));
  CHECK(path_under("/a/b/c", "/a/b"));
  CHECK(!path_under("/ab", "/a"));
  CHECK(!path_under("/a", "/a/b"));
  CHECK(!path_under("/b/a", "/a"));
  CHECK(!path_under("/", "/a"));
  CHECK(path_under("/", "/"));
  CHECK(path_under("/anything/at/all", "/"));
  CHECK(!path_under("", "/"));
  CHECK(!path_under("relative", "/"));
  CHECK(path_under("/a b/c", "/a b"));
  CHECK(!path_under("/a bc", "/a b"));
}

TEST_CASE("absolute_path: lexical normalisation, relative to the current directory") {
  CHECK(absolute_path("/") == "/");
  CHECK(absolute_path("//a///b/") == "/a/b");
  CHECK(absolute_path("/a/./b/../../..") == "/");
  CHECK(absolute_path("/a/b/../c/./d") == "/a/c/d");
  TempDir d;
  char cwd[PATH_MAX];
  REQUIRE(getcwd(cwd, sizeof cwd));
  REQUIRE(chdir(d.path.c_str()) == 0);
  CHECK(absolute_path("x/../y/") == d.path + "/y");
  CHECK(absolute_path("") == d.path);
  CHECK(absolute_path("..") == d.path.substr(0, d.path.rfind('/')));
  REQUIRE(chdir(cwd) == 0);
}

// ---------------------------------------------------------------- for_path

TEST_CASE("Client::for_path outside any tcfs mount: ENOENT naming the path") {
  TempDir d;
  std::string p = d / "some/file";
  auto m = find_mount(p);
  REQUIRE(!m.is_ok());
  CHECK(m.err() == ENOENT);
  CHECK(has(m.status().what(), p + " is not inside a tcfs mount"));
  CHECK(has(m.status().what(), "(it is on a "));

  auto c = Client::for_path(p);
  REQUIRE(!c.is_ok());
  CHECK(c.err() == ENOENT);
  CHECK(has(c.status().what(), p));

  // A relative path is named in its absolute form.
  char cwd[PATH_MAX];
  REQUIRE(getcwd(cwd, sizeof cwd));
  REQUIRE(chdir(d.path.c_str()) == 0);
  auto r = Client::for_path("rel/../x");
  REQUIRE(chdir(cwd) == 0);
  CHECK(r.err() == ENOENT);
  CHECK(has(r.status().what(), d.path + "/x is not inside a tcfs mount"));
}

TEST_CASE("Client::connect to a socket nobody serves: an error naming the mount and the socket") {
  TempDir d;
  MountInfo m{"/mnt/nowhere", d.path, d / "control.sock"};
  auto c = Client::connect(m);
  REQUIRE(!c.is_ok());
  CHECK(c.err() == ENOENT);
  CHECK(has(c.status().what(), "cannot reach the tcfs daemon of /mnt/nowhere at " + m.socket));
  MountInfo longp{"/mnt/x", d.path, "/" + std::string(200, 's')};
  CHECK(Client::connect(longp).err() == ENAMETOOLONG);
}

// ---------------------------------------------------------------- fake daemon

TEST_CASE("fake daemon: hello handshake sends {v:1,type:hello} and reads the server's limits") {
  FakeDaemon fd({[&](int c) {
    Json req = fd.read_request(c);
    if (req.is_null()) return;
    reply(c, hello_reply());
  }});
  auto cl = fd.client();
  auto h = cl.hello();
  REQUIRE(h.is_ok());
  CHECK(h->server == "tcfs-fake 9.9");
  CHECK(h->mount == "/mnt/fake");
  CHECK(h->store == "/stores/fake");
  CHECK(h->max_ops == 7);
  CHECK(h->max_inline_bytes == 4096);
  CHECK(h->max_fds == 3);
  CHECK(h->max_frame_bytes == 65536);
  Json req = fd.request(0);
  CHECK(req["v"] == protocol::kVersion);
  CHECK(req["type"] == "hello");
  CHECK(req.size() == 2);
}

TEST_CASE("fake daemon: a malformed hello reply is EPROTO; a refusal is the daemon's errno naming hello") {
  SUBCASE("malformed") {
    FakeDaemon fd({[&](int c) {
      fd.read_request(c);
      Json j = hello_reply();
      j.erase("limits");
      reply(c, j);
    }});
    auto cl = fd.client();
    auto h = cl.hello();
    CHECK(h.err() == EPROTO);
    CHECK(has(h.status().what(), "malformed hello reply"));
  }
  SUBCASE("refused") {
    FakeDaemon fd({[&](int c) {
      reply(c, rejection(EBUSY, "too many connections of uid 0 (limit 16)"));  // unasked, at once
      fd.read_request(c);
    }});
    auto cl = fd.client();
    auto h = cl.hello();
    CHECK(h.err() == EBUSY);
    CHECK(has(h.status().what(), "the tcfs daemon refused hello: too many connections of uid 0 (limit 16)"));
  }
}

TEST_CASE("fake daemon: a submit is sent as the builder made it (with its descriptors) and gets its committed reply") {
  FakeDaemon fd({[&](int c) {
    Json req = fd.read_request(c);
    if (req.is_null()) return;
    size_t nfds;
    {
      std::lock_guard g(fd.mu);
      nfds = fd.nfds.back();
    }
    auto comp = decode_compound(req, Limits{}, nfds);
    if (!comp) {
      reply(c, rejection(comp.err(), comp.status().what()));
      return;
    }
    size_t n = comp->ops.size();
    for (size_t i = 1; i <= n; i++) reply(c, encode_progress(i, n));
    CompoundReply r;
    r.outcome = Outcome::Committed;
    r.txn_id = 4242;
    for (size_t i = 0; i < n; i++) r.results.push_back(OpResult{0, static_cast<int64_t>(10 * i), true});
    reply(c, encode_reply(r));
  }});
  TempDir d;
  write_file(d / "src", "from a descriptor");
  int src = open((d / "src").c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(src >= 0);
  Compound c;
  c.options.sync = false;
  c.mkdir("dir").write("dir/f", std::string("bin\0ary", 7)).write_fd("dir/g", src);
  auto cl = fd.client();
  std::vector<std::pair<size_t, size_t>> seen;
  auto r = cl.submit(c, [&](size_t done, size_t total) { seen.emplace_back(done, total); });
  REQUIRE(r.is_ok());
  CHECK(r->outcome == Outcome::Committed);
  CHECK(r->txn_id == 4242);
  REQUIRE(r->results.size() == 3);
  CHECK(r->results[2].bytes == 20);
  CHECK(r->results[1].ran);
  CHECK(seen == std::vector<std::pair<size_t, size_t>>{{1, 3}, {2, 3}, {3, 3}});
  CHECK(fcntl(src, F_GETFD) >= 0);  // the caller's descriptor stays open
  close(src);
  Json req = fd.request(0);
  CHECK(req["type"] == "compound");
  CHECK(req["v"] == 1);
  CHECK(req["txn"] == true);
  CHECK(req["sync"] == false);
  CHECK(req["progress"] == true);
  CHECK(req["ops"].size() == 3);
  CHECK(fd.nfds[0] == 1);
}

TEST_CASE("fake daemon: a rejected compound is a reply, not an error; without a progress callback none is asked") {
  FakeDaemon fd({[&](int c) {
    Json req = fd.read_request(c);
    if (req.is_null()) return;
    reply(c, rejection(E2BIG, "3 operations, more than the limit of 2"));
  }});
  auto cl = fd.client();
  auto r = cl.submit(Compound().mkdir("a").mkdir("b").mkdir("c"));
  REQUIRE(r.is_ok());
  CHECK(r->outcome == Outcome::Rejected);
  CHECK(r->err == E2BIG);
  CHECK(has(r->message, "more than the limit of 2"));
  CHECK(fd.request(0)["progress"] == false);
}

TEST_CASE("fake daemon: a daemon that closes mid-reply or without a reply: ECONNRESET saying it closed the connection") {
  std::string payload = to_bytes(hello_reply());
  SUBCASE("cut inside the payload") {
    FakeDaemon fd({[&](int c) {
      fd.read_request(c);
      send_raw(c, le32(static_cast<uint32_t>(payload.size())) + payload.substr(0, payload.size() / 2));
    }});
    auto cl = fd.client();
    auto h = cl.hello();
    CHECK(h.err() == ECONNRESET);
    CHECK(has(h.status().what(), "the tcfs daemon of /mnt/fake closed the connection without a reply"));
  }
  SUBCASE("cut inside the length") {
    FakeDaemon fd({[&](int c) {
      fd.read_request(c);
      send_raw(c, le32(100).substr(0, 2));
    }});
    auto cl = fd.client();
    auto r = cl.submit(Compound().mkdir("a"));
    CHECK(r.err() == ECONNRESET);
    CHECK(has(r.status().what(), "closed the connection without a reply"));
  }
  SUBCASE("closed after progress, before the reply") {
    FakeDaemon fd({[&](int c) {
      fd.read_request(c);
      reply(c, encode_progress(1, 2));
    }});
    auto cl = fd.client();
    int calls = 0;
    auto r = cl.submit(Compound().mkdir("a").mkdir("b"), [&](size_t, size_t) { calls++; });
    CHECK(r.err() == ECONNRESET);
    CHECK(has(r.status().what(), "closed the connection without a reply"));
    CHECK(calls == 1);
  }
  SUBCASE("closed at once, no reply at all") {
    FakeDaemon fd({[&](int c) { fd.read_request(c); }});
    auto cl = fd.client();
    auto r = cl.sync();
    CHECK(r.err() == ECONNRESET);
    CHECK(has(r.what(), "the tcfs daemon of /mnt/fake closed the connection"));
  }
}

TEST_CASE("fake daemon: a reply frame over the frame limit is EMSGSIZE and nothing of it is read") {
  std::atomic<bool> done{false};
  FakeDaemon fd({[&](int c) {
    fd.read_request(c);
    // Declares one byte more than the client's limit; sends only a little.
    send_raw(c, le32(static_cast<uint32_t>(protocol::kDefaultMaxFrameBytes + 1)) + std::string(16, 'x'));
    pollfd p{c, POLLIN, 0};
    for (int i = 0; i < 1000 && !done; i++) poll(&p, 1, 10);  // keep it open until the client gave up
  }});
  auto cl = fd.client();
  auto h = cl.hello();
  done = true;
  CHECK(h.err() == EMSGSIZE);
  CHECK(has(h.status().what(), "exceeds the limit of " + std::to_string(protocol::kDefaultMaxFrameBytes)));
}

TEST_CASE("fake daemon: after the daemon closes an idle connection the next call reconnects by itself") {
  FakeDaemon fd({[&](int c) {
                   fd.read_request(c);
                   reply(c, hello_reply());
                 },  // then closed: as the daemon does to idle connections
                 [&](int c) {
                   Json req = fd.read_request(c);
                   if (req.is_null()) return;
                   reply(c, {{"v", 1}, {"type", "synced"}, {"errno", ETIMEDOUT}, {"message", "3 marks pending"}});
                 }});
  auto cl = fd.client();
  REQUIRE(cl.hello().is_ok());
  // Wait until the daemon has closed the first connection (an event, not a time).
  for (int i = 0; i < 1000 && fd.served < 1; i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(fd.served == 1);
  Status st = cl.sync(1234);
  CHECK(st.err() == ETIMEDOUT);
  CHECK(st.what() == "3 marks pending");
  Json req = fd.request(1);
  CHECK(req["type"] == "sync");
  CHECK(req["timeout_ms"] == 1234);
}

TEST_CASE("fake daemon: status and maintain return the daemon's JSON; errors carry its errno") {
  FakeDaemon fd({[&](int c) {
    fd.read_request(c);
    reply(c, {{"v", 1}, {"type", "status"}, {"mount", "/mnt/fake"}, {"status", {{"epoch", 5}}}});
    fd.read_request(c);
    reply(c, {{"v", 1}, {"type", "maintained"}, {"errno", 0}, {"report", {{"removed", 2}}}});
    fd.read_request(c);
    reply(c, {{"v", 1}, {"type", "maintained"}, {"errno", EPERM}, {"message", "gc is for root"}});
  }});
  auto cl = fd.client();
  auto s = cl.status_json();
  REQUIRE(s.is_ok());
  CHECK(Json::parse(*s)["status"]["epoch"] == 5);
  auto m = cl.maintain("gc");
  REQUIRE(m.is_ok());
  CHECK(Json::parse(*m)["removed"] == 2);
  auto e = cl.maintain("scrub");
  CHECK(e.err() == EPERM);
  CHECK(has(e.status().what(), "gc is for root"));
  CHECK(fd.request(1)["what"] == "gc");
  CHECK(fd.request(2)["what"] == "scrub");
}

TEST_CASE("fake daemon: status and maintain texts survive bytes that are not UTF-8 (replaced, never thrown)") {
  FakeDaemon fd({[&](int c) {
    fd.read_request(c);
    reply(c, {{"v", 1}, {"type", "status"}, {"mount", "/mnt/\xff"}, {"status", {{"url", "dir:///b\xe5"}}}});
    fd.read_request(c);
    reply(c, {{"v", 1}, {"type", "maintained"}, {"errno", 0}, {"report", {{"problems", {"chunk \xfe"}}}}});
  }});
  auto cl = fd.client();
  auto s = cl.status_json();
  REQUIRE(s.is_ok());
  CHECK(Json::parse(*s)["mount"] == "/mnt/\xef\xbf\xbd");
  auto m = cl.maintain("scrub");
  REQUIRE(m.is_ok());
  CHECK(Json::parse(*m)["problems"][0] == "chunk \xef\xbf\xbd");
}

TEST_CASE("fake daemon: one older than the \"results\" field refuses it; the client asks again with maps") {
  FakeDaemon fd({[&](int c) {
    Json req = fd.read_request(c);
    if (req.is_null()) return;
    reply(c, rejection(EINVAL, "unknown request field \"results\""));  // what such a daemon says
    fd.read_request(c);
    reply(c, {{"v", 1}, {"type", "reply"}, {"outcome", "committed"}, {"failed_op", -1}, {"errno", 0},
              {"message", ""}, {"txn", 7}, {"results", Json::array({{{"errno", 0}, {"bytes", 0}, {"ran", true}}})}});
  }});
  auto cl = fd.client();
  auto r = cl.submit(Compound().mkdir("a"));
  REQUIRE(r.is_ok());
  CHECK(r->outcome == Outcome::Committed);
  CHECK(r->txn_id == 7);
  REQUIRE(r->results.size() == 1);
  CHECK(r->results[0].ran);
  CHECK(fd.request(0)["results"] == "columns");
  CHECK(!fd.request(1).contains("results"));
  CHECK(fd.request(1)["ops"] == fd.request(0)["ops"]);
}
