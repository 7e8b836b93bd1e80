// Unit tests for the control layer: the protocol codec (every op kind, every
// rejection class), framing with descriptors over a real socket pair, and
// the server with a test executor over a real unix socket (peer
// credentials of a child running as another user, bad frames).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/un.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <filesystem>

#include "control/server.h"
#include "control/wire.h"
#include "tcfs/client.h"

using namespace tcfs;
using namespace tcfs::control;

namespace {

Compound every_kind() {
  Compound c;
  c.mkdir("d", 0700, true).create("d/f", 0600, true, true).write("d/f", std::string("bin\0ary", 7), 3);
  c.append("d/f", "more").copy("d/f", "d/g", 1, 2, 3).truncate("d/g", 9).chmod("d/g", 04755);
  c.chown("d/g", 7, std::nullopt).utimes("d/g", Timestamp{1, 2, false}, Timestamp{0, 0, true});
  c.setxattr("d/g", "user.k", std::string("v\0v", 3), 1).removexattr("d/g", "user.k");
  c.symlink("../t", "d/s").link("d/f", "d/h").rename("d/h", "d/i", 1).remove("d", true);
  return c;
}

Result<Compound> roundtrip(const Compound& c, const Limits& lim = {}, size_t nfds = 0) {
  auto j = from_bytes(to_bytes(encode_compound(c, false)));
  REQUIRE(j.is_ok());
  return decode_compound(*j, lim, nfds);
}

int rejects(Json req, size_t nfds = 0, Limits lim = {}) {
  auto r = decode_compound(req, lim, nfds);
  return r.is_ok() ? 0 : r.err();
}

Json one_op(Json op) { return {{"v", 1}, {"type", "compound"}, {"ops", Json::array({op})}}; }

}  // namespace

TEST_CASE("every operation kind survives the codec unchanged") {
  Compound c = every_kind();
  auto d = roundtrip(c);
  REQUIRE(d.is_ok());
  REQUIRE(d->ops.size() == c.ops.size());
  for (size_t i = 0; i < c.ops.size(); ++i) {
    CAPTURE(i);
    const Op &a = c.ops[i], &b = d->ops[i];
    CHECK(a.kind == b.kind);
    CHECK(a.path == b.path);
    CHECK(a.path2 == b.path2);
    CHECK(a.target == b.target);
    CHECK(a.data == b.data);
    CHECK(a.value == b.value);
    CHECK(a.offset == b.offset);
    CHECK(a.append == b.append);
    CHECK(a.exclusive == b.exclusive);
    CHECK(a.truncate == b.truncate);
    CHECK(a.recursive == b.recursive);
    CHECK(a.rename_flags == b.rename_flags);
    CHECK(a.set_mode == b.set_mode);
    CHECK(a.set_uid == b.set_uid);
    CHECK(a.set_gid == b.set_gid);
    CHECK(a.uid == b.uid);
    CHECK(a.set_mtime == b.set_mtime);
    CHECK(a.mtime.now == b.mtime.now);
    CHECK(a.atime.sec == b.atime.sec);
    CHECK(a.atime.nsec == b.atime.nsec);
    CHECK(a.xattr_flags == b.xattr_flags);
    if (a.kind == OpKind::Mkdir || a.kind == OpKind::Create || a.set_mode) CHECK(a.mode == b.mode);
  }
}

TEST_CASE("every class of bad request is rejected with its errno") {
  CHECK(rejects(one_op({{"op", "explode"}, {"path", "a"}})) == EINVAL);
  CHECK(rejects(one_op({{"op", "mkdir"}})) == EINVAL);
  CHECK(rejects(one_op({{"op", "mkdir"}, {"path", 5}})) == EINVAL);
  CHECK(rejects(one_op({{"op", "mkdir"}, {"path", "a"}, {"colour", "red"}})) == EINVAL);
  CHECK(rejects(one_op({{"op", "mkdir"}, {"path", "/abs"}})) == EINVAL);
  CHECK(rejects(one_op({{"op", "mkdir"}, {"path", "a/../../b"}})) == EXDEV);
  CHECK(rejects(one_op({{"op", "mkdir"}, {"path", "a//b"}})) == EINVAL);
  CHECK(rejects(one_op({{"op", "mkdir"}, {"path", std::string(300, 'n')}})) == ENAMETOOLONG);
  CHECK(rejects(one_op({{"op", "rename"}, {"path", "a"}})) == EINVAL);  // no path2
  CHECK(rejects(one_op({{"op", "write"}, {"path", "a"}, {"fd_index", 2}}), 1) == EBADF);
  CHECK(rejects(one_op({{"op", "setattr"}, {"path", "a"}})) == EINVAL);  // sets nothing
  CHECK(rejects(one_op({{"op", "mkdir"}, {"path", "a"}, {"mode", 070000}})) == EINVAL);
  CHECK(rejects(one_op({{"op", "write"}, {"path", "a"}, {"offset", -1}})) == EINVAL);
  CHECK(rejects({{"v", 1}, {"type", "compound"}}) == EINVAL);  // no ops
  Limits small;
  small.max_ops = 2;
  small.max_inline_bytes = 4;
  Json three = {{"v", 1}, {"type", "compound"},
                {"ops", Json::array({{{"op", "mkdir"}, {"path", "a"}}, {{"op", "mkdir"}, {"path", "b"}},
                                     {{"op", "mkdir"}, {"path", "c"}}})}};
  CHECK(rejects(three, 0, small) == E2BIG);
  CHECK(rejects(one_op({{"op", "write"}, {"path", "a"}, {"data", "12345"}}), 0, small) == E2BIG);
  CHECK(rejects(one_op({{"op", "mkdir"}, {"path", "a"}}), 2000, Limits{}) == E2BIG);  // descriptors
  auto bad = decode_compound(one_op({{"op", "mkdir"}, {"path", "a"}, {"colour", "red"}}), {}, 0);
  CHECK(bad.status().what().find("op 0") != std::string::npos);
  CHECK(from_bytes("\xc1").err() == EPROTO);
}

TEST_CASE("frames carry more descriptors than one message can, and bad frames are refused") {
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  std::vector<int> fds;
  for (int i = 0; i < 300; ++i) fds.push_back(open("/dev/null", O_RDONLY | O_CLOEXEC));
  std::thread t([&] { REQUIRE(write_frame(sv[0], std::string(100000, 'x'), fds).is_ok()); });
  std::vector<int> got;
  auto f = read_frame(sv[1], 1 << 20, &got);
  t.join();
  REQUIRE(f.is_ok());
  CHECK(f->size() == 100000);
  CHECK(got.size() == 300);
  for (int fd : got) CHECK(fcntl(fd, F_GETFD) >= 0);
  for (int fd : got) close(fd);
  for (int fd : fds) close(fd);
  // Oversized: refused before reading.
  REQUIRE(write_frame(sv[0], std::string(5000, 'y')).is_ok());
  CHECK(read_frame(sv[1], 4096, nullptr).err() == EMSGSIZE);
  close(sv[0]);
  close(sv[1]);
  // Cut short.
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  REQUIRE(write(sv[0], "\x10\x00\x00\x00" "abc", 7) == 7);
  close(sv[0]);
  CHECK(read_frame(sv[1], 4096, nullptr).err() == EPROTO);
  close(sv[1]);
}

TEST_CASE("the server runs compounds as the peer the kernel names, and survives bad clients") {
  std::string dir = std::filesystem::temp_directory_path() / ("tcfs-ctl-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::string sock = dir + "/control.sock";
  std::atomic<uint32_t> seen_uid{12345};
  Executor exec = [&](const Compound& c, const txn::Caller& who, const txn::Progress& p) {
    seen_uid = who.creds.uid;
    for (size_t i = 0; i < c.ops.size(); ++i) p(i + 1, c.ops.size());
    CompoundReply r;
    r.outcome = Outcome::Committed;
    r.txn_id = c.ops.size();
    r.results.resize(c.ops.size());
    return r;
  };
  auto srv = ControlServer::start(sock, exec, Limits{}, ServerInfo{"test", "/mnt", dir});
  REQUIRE(srv.is_ok());
  MountInfo mi{"/mnt", dir, sock};
  {
    // Garbage, then a well-behaved client on another connection.
    auto bad = Client::connect(mi);
    REQUIRE(bad.is_ok());
    int raw = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    strcpy(a.sun_path, sock.c_str());
    REQUIRE(connect(raw, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(write(raw, "\xff\xff\xff\x7f" "garbage", 11) == 11);
    close(raw);
  }
  auto cl = Client::connect(mi);
  REQUIRE(cl.is_ok());
  Compound c;
  c.mkdir("a").mkdir("b");
  size_t progress_calls = 0;
  auto r = cl->submit(c, [&](size_t, size_t) { ++progress_calls; });
  REQUIRE(r.is_ok());
  CHECK(r->outcome == Outcome::Committed);
  CHECK(r->txn_id == 2);
  CHECK(progress_calls == 2);
  CHECK(seen_uid == getuid());
  auto h = cl->hello();
  REQUIRE(h.is_ok());
  CHECK(h->mount == "/mnt");
  // A child as uid 65534: the executor sees 65534, whatever the request says.
  chmod(dir.c_str(), 0755);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0) _exit(10);
    auto c2 = Client::connect(mi);
    if (!c2) _exit(11);
    Compound one;
    one.mkdir("x");
    auto r2 = c2->submit(one);
    _exit(r2 && r2->outcome == Outcome::Committed ? 0 : 12);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(seen_uid == 65534u);
  (*srv)->stop();
  std::filesystem::remove_all(dir);
}
