// Unit tests for the control layer: the protocol codec (every op kind, every
// rejection class, hostile MessagePack), framing with descriptors over real
// socket pairs, the server with a test executor over a real unix socket
// (descriptor passing beyond one message, peer credentials of a child
// running as another user, concurrent connections, bad and vanishing
// clients, limits, stop), and the client library's mount lookup.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "client/mountinfo.h"
#include "control/server.h"
#include "control/wire.h"
#include "tcfs/client.h"
#include "test_util.h"
#include "util/fault.h"

using namespace tcfs;
using namespace tcfs::control;
using namespace std::chrono_literals;

namespace {

Compound every_kind() {
  Compound c;
  c.mkdir("d", 0700, true).create("d/f", 0600, true, true).write("d/f", std::string("bin\0ary", 7), 3);
  c.append("d/f", "more").write_fd("d/f", 0, 5, 6, 7).copy("d/f", "d/g", 1, 2, 3).truncate("d/g", 9);
  c.chmod("d/g", 04755).chown("d/g", 7, std::nullopt).chown("d/g", std::nullopt, 8);
  c.utimes("d/g", Timestamp{1, 2, false}, Timestamp{0, 0, true}).utimes("d/g", std::nullopt, Timestamp{-5, 9, false});
  c.setxattr("d/g", "user.k", std::string("v\0v", 3), XATTR_CREATE).removexattr("d/g", "user.k");
  c.symlink("../t", "d/s").link("d/f", "d/h").rename("d/h", "d/i", RENAME_NOREPLACE).remove("d", true);
  return c;
}

void check_same(const Op& a, const Op& b) {
  CHECK(a.kind == b.kind);
  CHECK(a.path == b.path);
  CHECK(a.path2 == b.path2);
  CHECK(a.target == b.target);
  CHECK(a.mode == b.mode);
  CHECK(a.exclusive == b.exclusive);
  CHECK(a.truncate == b.truncate);
  CHECK(a.parents == b.parents);
  CHECK(a.recursive == b.recursive);
  CHECK(a.offset == b.offset);
  CHECK(a.append == b.append);
  CHECK(a.data == b.data);
  CHECK(a.fd_index == b.fd_index);
  CHECK(a.src_offset == b.src_offset);
  CHECK(a.length == b.length);
  CHECK(a.size == b.size);
  CHECK(a.set_mode == b.set_mode);
  CHECK(a.set_uid == b.set_uid);
  CHECK(a.set_gid == b.set_gid);
  CHECK(a.set_atime == b.set_atime);
  CHECK(a.set_mtime == b.set_mtime);
  CHECK(a.uid == b.uid);
  CHECK(a.gid == b.gid);
  for (auto [x, y] : {std::pair{a.atime, b.atime}, std::pair{a.mtime, b.mtime}}) {
    CHECK(x.sec == y.sec);
    CHECK(x.nsec == y.nsec);
    CHECK(x.now == y.now);
  }
  CHECK(a.name == b.name);
  CHECK(a.value == b.value);
  CHECK(a.xattr_flags == b.xattr_flags);
  CHECK(a.rename_flags == b.rename_flags);
}

Json one_op(Json op) { return {{"v", 1}, {"type", "compound"}, {"ops", Json::array({std::move(op)})}}; }

// The rejection of req: its errno and message (0, "" when accepted).
std::pair<int, std::string> rejects(const Json& req, size_t nfds = 0, Limits lim = {}) {
  auto r = decode_compound(req, lim, nfds);
  if (r.is_ok()) return {0, ""};
  return {r.err(), r.status().what()};
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string frame_bytes(const std::string& payload, uint32_t claimed) {
  std::string f(4, '\0');
  for (size_t i = 0; i < 4; ++i) f[i] = static_cast<char>((claimed >> (8 * i)) & 0xff);
  return f + payload;
}
std::string frame_bytes(const std::string& payload) {
  return frame_bytes(payload, static_cast<uint32_t>(payload.size()));
}

size_t open_fd_count() {
  size_t n = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

void raise_nofile() {
  rlimit rl{};
  REQUIRE(getrlimit(RLIMIT_NOFILE, &rl) == 0);
  rl.rlim_cur = rl.rlim_max;
  REQUIRE(setrlimit(RLIMIT_NOFILE, &rl) == 0);
}

// A test executor: records who called and what came, writes "<i>" into
// every passed descriptor, reports progress once per op, and can hold runs
// until `gate` of them are in flight at once.
struct TestExec : Executor {
  std::mutex mu;
  std::condition_variable cv;
  Caller last;
  std::atomic<size_t> runs{0};
  size_t last_nfds = 0;
  unsigned gate = 0, in_flight = 0, max_in_flight = 0;
  bool gate_timed_out = false;
  size_t progress_calls = 0;  // extra progress calls per run (0: one per op)
  std::chrono::milliseconds delay{0};
  std::atomic<bool> finished{false};

  CompoundReply run(const Compound& c, const Caller& who, const ProgressFn& progress) override {
    {
      std::unique_lock g(mu);
      last = who;
      ++runs;
      last_nfds = c.fds.size();
      max_in_flight = std::max(max_in_flight, ++in_flight);
      cv.notify_all();
      if (gate && !cv.wait_for(g, 10s, [&] { return in_flight >= gate || max_in_flight >= gate; }))
        gate_timed_out = true;
    }
    for (size_t i = 0; i < c.fds.size(); ++i) {
      std::string s = std::to_string(i);
      if (write(c.fds[i], s.data(), s.size()) != static_cast<ssize_t>(s.size())) { /* the test sees the content */ }
    }
    for (size_t i = 0; i < c.ops.size(); ++i) progress(i + 1, c.ops.size());
    for (size_t i = 0; i < progress_calls; ++i) progress(i % 50 + 1, 50);
    std::this_thread::sleep_for(delay);
    CompoundReply r;
    r.outcome = Outcome::Committed;
    r.txn_id = c.ops.size();
    r.results.resize(c.ops.size());
    for (size_t i = 0; i < c.ops.size(); ++i) r.results[i] = {0, static_cast<int64_t>(c.ops[i].data.size()), true};
    {
      std::lock_guard g(mu);
      --in_flight;
    }
    finished = true;
    return r;
  }
};

// A server on a socket in a private directory (world-searchable, so a child
// running as another user can reach it).
struct TestServer {
  TempDir dir;
  std::string sock = dir / "control.sock";
  std::shared_ptr<TestExec> exec = std::make_shared<TestExec>();
  std::unique_ptr<ControlServer> srv;
  MountInfo mi;

  explicit TestServer(Limits lim = {}, unsigned max_conns = 64) {
    chmod(dir.path.c_str(), 0755);
    auto s = ControlServer::start(sock, exec, lim, ServerInfo{"tcfs-test 1", "/mnt/t", dir.path}, max_conns);
    REQUIRE(s.is_ok());
    srv = std::move(s.value());
    mi = MountInfo{"/mnt/t", dir.path, sock};
  }
  Client client() const {
    auto c = Client::connect(mi);
    REQUIRE(c.is_ok());
    return std::move(c.value());
  }
  int raw() const {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    strcpy(a.sun_path, sock.c_str());
    REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    return fd;
  }
  // A fresh client still gets a compound through.
  void still_serves() const {
    auto c = client();
    Compound one;
    one.mkdir("alive");
    auto r = c.submit(one);
    REQUIRE(r.is_ok());
    CHECK(r->outcome == Outcome::Committed);
  }
};

void send_all(int fd, const std::string& bytes) {
  REQUIRE(send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
}

// The next frame on a raw connection, decoded; null at end of stream.
Json next(int fd) {
  FrameLimits fl;
  fl.stall_ms = 10000;
  auto f = read_frame(fd, fl);
  if (!f) return nullptr;
  auto j = from_bytes(f->payload);
  REQUIRE(j.is_ok());
  return *j;
}

bool at_eof(int fd) {
  char c;
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, 10000) != 1) return false;
  return recv(fd, &c, 1, 0) <= 0;
}

Json hello_req() { return {{"v", 1}, {"type", "hello"}}; }

}  // namespace

// ---------------------------------------------------------------- codec

TEST_CASE("names of op kinds and outcomes round-trip") {
  for (int i = 0; i < 12; ++i) {
    auto k = static_cast<OpKind>(i);
    auto back = op_kind_from_name(op_kind_name(k));
    REQUIRE(back.has_value());
    CHECK(*back == k);
  }
  CHECK(std::string(op_kind_name(OpKind::Removexattr)) == "removexattr");
  CHECK(!op_kind_from_name("Mkdir").has_value());
  CHECK(!op_kind_from_name("").has_value());
  CHECK(std::string(outcome_name(Outcome::RolledBack)) == "rolled_back");
  CHECK(std::string(outcome_name(Outcome::Rejected)) == "rejected");
}

TEST_CASE("the builder fills exactly the fields of each operation") {
  Compound c;
  int fds[2] = {11, 12};
  c.write_fd("a", fds[0]).write_fd("b", fds[1], 1, 2, 3).chown("c", std::nullopt, 5).utimes("d", std::nullopt, Timestamp{0, 0, true});
  REQUIRE(c.ops.size() == 4);
  CHECK(c.fds == std::vector<int>{11, 12});
  CHECK(c.ops[0].fd_index == 0);
  CHECK(c.ops[1].fd_index == 1);
  CHECK(c.ops[1].offset == 1);
  CHECK(c.ops[1].src_offset == 2);
  CHECK(c.ops[1].length == 3);
  CHECK(c.ops[2].kind == OpKind::Setattr);
  CHECK(!c.ops[2].set_uid);
  CHECK(c.ops[2].set_gid);
  CHECK(c.ops[2].gid == 5);
  CHECK(!c.ops[3].set_atime);
  CHECK(c.ops[3].set_mtime);
  CHECK(c.ops[3].mtime.now);
}

TEST_CASE("every operation kind survives the codec unchanged") {
  Compound c = every_kind();
  c.options.txn = false;
  c.options.sync = false;
  auto j = from_bytes(to_bytes(encode_compound(c, true)));
  REQUIRE(j.is_ok());
  CHECK((*j)["progress"] == true);
  auto d = decode_compound(*j, Limits{}, 1);
  REQUIRE(d.is_ok());
  CHECK(!d->options.txn);
  CHECK(!d->options.sync);
  REQUIRE(d->ops.size() == c.ops.size());
  std::set<OpKind> kinds;
  for (size_t i = 0; i < c.ops.size(); ++i) {
    CAPTURE(i);
    check_same(c.ops[i], d->ops[i]);
    kinds.insert(c.ops[i].kind);
  }
  CHECK(kinds.size() == 12);
}

TEST_CASE("replies and progress survive the codec") {
  CompoundReply r;
  r.outcome = Outcome::RolledBack;
  r.failed_op = 2;
  r.err = ENOSPC;
  r.message = "op 2: write big: No space left on device";
  r.txn_id = 1ull << 40;
  r.results = {{0, 5, true}, {0, 0, true}, {ENOSPC, 0, true}, {0, 0, false}};
  Json j = from_bytes(to_bytes(encode_reply(r))).value();
  CHECK(j["error"] == "ENOSPC");
  auto d = decode_reply(j);
  REQUIRE(d.is_ok());
  CHECK(d->outcome == Outcome::RolledBack);
  CHECK(d->failed_op == 2);
  CHECK(d->err == ENOSPC);
  CHECK(d->message == r.message);
  CHECK(d->txn_id == r.txn_id);
  REQUIRE(d->results.size() == 4);
  CHECK(d->results[0].bytes == 5);
  CHECK(d->results[2].err == ENOSPC);
  CHECK(!d->results[3].ran);
  CHECK(decode_reply(encode_progress(3, 4)).err() == EPROTO);  // not a reply
  Json bad = j;
  bad["outcome"] = "maybe";
  CHECK(decode_reply(bad).err() == EPROTO);
  bad = j;
  bad["results"][0]["bytes"] = "five";
  CHECK(decode_reply(bad).err() == EPROTO);

  // As columns (protocol.h): the same results, far smaller for many ops.
  Json c = from_bytes(to_bytes(encode_reply(r, true))).value();
  REQUIRE(c["results"].is_object());
  CHECK(c["results"]["ran"] == 3);
  CHECK(c["results"]["errno"] == Json::array({Json::array({2, ENOSPC})}));
  auto dc = decode_reply(c);
  REQUIRE(dc.is_ok());
  REQUIRE(dc->results.size() == 4);
  for (size_t i = 0; i < 4; ++i) {
    CAPTURE(i);
    CHECK(dc->results[i].err == r.results[i].err);
    CHECK(dc->results[i].bytes == r.results[i].bytes);
    CHECK(dc->results[i].ran == r.results[i].ran);
  }
  CompoundReply odd = r;  // ran not a prefix: maps, whatever was asked
  odd.results[1].ran = false;
  CHECK(encode_reply(odd, true)["results"].is_array());
  for (const auto& fv : {std::pair<const char*, Json>{"ran", 9}, {"ran", "three"}, {"bytes", 4},
                          {"errno", Json::array({Json::array({7, 5})})}}) {
    const char* field = fv.first;  // not a structured binding: clang 14 cannot capture one (CAPTURE)
    CAPTURE(field);
    Json badc = c;
    badc["results"][field] = fv.second;
    CHECK(decode_reply(badc).err() == EPROTO);
  }
}

TEST_CASE("the request's results form: maps by default, columns when asked, anything else refused") {
  Json req = encode_compound(Compound().mkdir("a"), false);
  CHECK(req["results"] == "columns");  // what this client asks for
  bool columns = false;
  REQUIRE(decode_compound(req, Limits{}, 0, nullptr, {}, &columns).is_ok());
  CHECK(columns);
  req.erase("results");
  REQUIRE(decode_compound(req, Limits{}, 0, nullptr, {}, &columns).is_ok());
  CHECK(!columns);
  req["results"] = "rows";
  auto d = decode_compound(req, Limits{}, 0, nullptr, {}, &columns);
  CHECK(d.err() == EINVAL);
  CHECK(d.status().message().find("\"results\"") != std::string::npos);
}

TEST_CASE("every class of bad request is rejected with its errno, naming the op and field") {
  struct Case {
    Json op;
    int err;
    const char* says;
  };
  const std::string long_name(NAME_MAX + 1, 'n');
  std::string long_path;
  while (long_path.size() < PATH_MAX) long_path += "abcdefghij/";
  long_path += "x";
  std::vector<Case> cases = {
      {{{"op", "explode"}, {"path", "a"}}, EINVAL, "op 0: unknown op \"explode\""},
      {{{"op", 3}, {"path", "a"}}, EINVAL, "field \"op\" must be a string"},
      {{{"path", "a"}}, EINVAL, "missing field \"op\""},
      {{{"op", "mkdir"}}, EINVAL, "missing field \"path\""},
      {{{"op", "mkdir"}, {"path", 5}}, EINVAL, "field \"path\" must be a string"},
      {{{"op", "mkdir"}, {"path", "a"}, {"colour", "red"}}, EINVAL, "unknown field \"colour\""},
      {{{"op", "mkdir"}, {"path", "a"}, {"size", 3}}, EINVAL, "field \"size\" does not apply to mkdir"},
      {{{"op", "remove"}, {"path", "a"}, {"data", "x"}}, EINVAL, "does not apply to remove"},
      {{{"op", "mkdir"}, {"path", "/abs"}}, EINVAL, "is absolute"},
      {{{"op", "mkdir"}, {"path", "a/../../b"}}, EXDEV, "leads outside the mount"},
      {{{"op", "mkdir"}, {"path", ".."}}, EXDEV, "field \"path\""},
      {{{"op", "mkdir"}, {"path", "a//b"}}, EINVAL, "empty or \".\" component"},
      {{{"op", "mkdir"}, {"path", "a/./b"}}, EINVAL, "empty or \".\" component"},
      {{{"op", "mkdir"}, {"path", "a/"}}, EINVAL, "empty or \".\" component"},
      {{{"op", "mkdir"}, {"path", ""}}, EINVAL, "empty path"},
      {{{"op", "mkdir"}, {"path", std::string("a\0b", 3)}}, EINVAL, "NUL in path"},
      {{{"op", "mkdir"}, {"path", long_name}}, ENAMETOOLONG, "longer than NAME_MAX"},
      {{{"op", "mkdir"}, {"path", long_path}}, ENAMETOOLONG, "too long"},
      {{{"op", "rename"}, {"path", "a"}}, EINVAL, "missing field \"path2\""},
      {{{"op", "link"}, {"path", "a"}, {"path2", "../b"}}, EXDEV, "field \"path2\""},
      {{{"op", "copy"}, {"path", "a"}, {"path2", "/b"}}, EINVAL, "field \"path2\""},
      {{{"op", "write"}, {"path", "a"}, {"fd_index", 2}}, EBADF, "field \"fd_index\" is 2 but 1 descriptor"},
      {{{"op", "write"}, {"path", "a"}, {"fd_index", 0}, {"data", "x"}}, EINVAL, "both \"data\" and \"fd_index\""},
      {{{"op", "write"}, {"path", "a"}, {"src_offset", 4}}, EINVAL, "need \"fd_index\""},
      {{{"op", "write"}, {"path", "a"}, {"offset", -1}}, EINVAL, "field \"offset\" is out of range"},
      {{{"op", "write"}, {"path", "a"}, {"offset", 4}, {"append", true}}, EINVAL, "both \"append\" and \"offset\""},
      {{{"op", "write"}, {"path", "a"}, {"append", 1}}, EINVAL, "field \"append\" must be true or false"},
      {{{"op", "write"}, {"path", "a"}, {"data", 17}}, EINVAL, "field \"data\" must be bytes or a string"},
      {{{"op", "copy"}, {"path", "a"}, {"path2", "b"}, {"length", -2}}, EINVAL, "field \"length\" is out of range"},
      {{{"op", "setattr"}, {"path", "a"}}, EINVAL, "setattr sets nothing"},
      {{{"op", "mkdir"}, {"path", "a"}, {"mode", 010000}}, EINVAL, "field \"mode\" is out of range"},
      {{{"op", "mkdir"}, {"path", "a"}, {"mode", "0755"}}, EINVAL, "field \"mode\" must be an integer"},
      {{{"op", "setattr"}, {"path", "a"}, {"uid", -1}}, EINVAL, "field \"uid\" is out of range"},
      {{{"op", "setattr"}, {"path", "a"}, {"uid", 1ull << 32}}, EINVAL, "field \"uid\" is out of range"},
      {{{"op", "setattr"}, {"path", "a"}, {"mtime", "later"}}, EINVAL, "field \"mtime\" must be \"now\""},
      {{{"op", "setattr"}, {"path", "a"}, {"mtime", {{"sec", 1}, {"nsec", 1000000000}}}}, EINVAL, "nsec"},
      {{{"op", "setattr"}, {"path", "a"}, {"atime", {{"sec", 1}, {"when", 2}}}}, EINVAL, "field \"atime\""},
      {{{"op", "truncate"}, {"path", "a"}}, EINVAL, "missing field \"size\""},
      {{{"op", "truncate"}, {"path", "a"}, {"size", -4}}, EINVAL, "field \"size\" is out of range"},
      {{{"op", "setxattr"}, {"path", "a"}, {"value", "v"}}, EINVAL, "missing field \"name\""},
      {{{"op", "setxattr"}, {"path", "a"}, {"name", "user.a"}, {"xattr_flags", 3}}, EINVAL, "xattr_flags"},
      {{{"op", "setxattr"}, {"path", "a"}, {"name", "user.a"}, {"xattr_flags", 8}}, EINVAL, "xattr_flags"},
      {{{"op", "removexattr"}, {"path", "a"}, {"name", ""}}, EINVAL, "not a valid xattr name"},
      {{{"op", "symlink"}, {"path", "a"}}, EINVAL, "missing field \"target\""},
      {{{"op", "symlink"}, {"path", "a"}, {"target", ""}}, EINVAL, "field \"target\""},
      {{{"op", "rename"}, {"path", "a"}, {"path2", "b"}, {"rename_flags", 3}}, EINVAL, "rename_flags"},
      {{{"op", "rename"}, {"path", "a"}, {"path2", "b"}, {"rename_flags", 4}}, EINVAL, "rename_flags"},
      {{{"op", "remove"}, {"path", "a"}, {"recursive", "yes"}}, EINVAL, "field \"recursive\" must be true or false"},
      {Json(5), EINVAL, "op 0: not a map"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.op.dump());
    auto [err, said] = rejects(one_op(c.op), 1);
    const std::string& msg = said;  // a plain name: clang 14 cannot capture a structured binding
    CHECK(err == c.err);
    CHECK_MESSAGE(has(msg, c.says), msg);
    CHECK_MESSAGE(has(msg, "op 0"), msg);
  }
  // The index is the failing op's.
  Json two = {{"v", 1}, {"type", "compound"}, {"ops", {{{"op", "mkdir"}, {"path", "ok"}}, {{"op", "mkdir"}}}}};
  CHECK(has(rejects(two).second, "op 1: missing field \"path\""));
  // The request itself.
  CHECK(rejects({{"v", 1}, {"type", "compound"}}).first == EINVAL);
  CHECK(rejects({{"v", 1}, {"type", "compound"}, {"ops", {{"op", "mkdir"}}}}).first == EINVAL);
  CHECK(has(rejects({{"v", 1}, {"type", "compound"}, {"ops", Json::array()}, {"user", 0}}).second,
            "unknown request field \"user\""));
  CHECK(has(rejects({{"v", 1}, {"type", "compound"}, {"ops", Json::array()}, {"txn", "yes"}}).second, "\"txn\""));
  CHECK(rejects(Json::array()).first == EPROTO);
  // Limits.
  Limits small;
  small.max_ops = 2;
  small.max_inline_bytes = 4;
  small.max_fds = 3;
  Json three = {{"v", 1}, {"type", "compound"},
                {"ops", {{{"op", "mkdir"}, {"path", "a"}}, {{"op", "mkdir"}, {"path", "b"}},
                         {{"op", "mkdir"}, {"path", "c"}}}}};
  CHECK(rejects(three, 0, small) == std::pair<int, std::string>{E2BIG, "3 operations, more than the limit of 2"});
  CHECK(rejects(one_op({{"op", "write"}, {"path", "a"}, {"data", "12345"}}), 0, small).first == E2BIG);
  CHECK(rejects(one_op({{"op", "setxattr"}, {"path", "a"}, {"name", "user.x"}, {"value", "12345"}}), 0, small).first ==
        E2BIG);
  CHECK(rejects(one_op({{"op", "mkdir"}, {"path", "a"}}), 4, small).first == E2BIG);
  CHECK(rejects(one_op({{"op", "mkdir"}, {"path", "a"}}), 3, small).first == 0);
  // Accepted edge values.
  CHECK(rejects(one_op({{"op", "mkdir"}, {"path", std::string(NAME_MAX, 'n')}})).first == 0);
  CHECK(rejects(one_op({{"op", "setattr"}, {"path", "a"}, {"uid", 4294967295u}})).first == 0);
  CHECK(rejects(one_op({{"op", "write"}, {"path", "a"}, {"data", Json::binary({0, 1, 2})}})).first == 0);
  CHECK(rejects(one_op({{"op", "a"}, {"path", "..."}})).first == EINVAL);  // unknown op checked first
  CHECK(rejects(one_op({{"op", "mkdir"}, {"path", "..."}})).first == 0);   // "..." is a name
}

TEST_CASE("hostile MessagePack is refused before it can exhaust the stack or memory") {
  CHECK(from_bytes("\xc1").err() == EPROTO);
  CHECK(from_bytes("").err() == EPROTO);
  CHECK(from_bytes("\xa5" "ab").err() == EPROTO);      // a str cut short
  CHECK(from_bytes("\xc6\xff\xff\xff\xff").err() == EPROTO);  // a bin claiming 4 GiB
  CHECK(from_bytes("\xdd\xff\xff\xff\xff").err() == EPROTO);  // an array claiming 4 G values
  CHECK(from_bytes("\xc0\xc0").err() == EPROTO);       // trailing bytes
  // Nesting: kMaxDepth levels are fine, one more is not, a million does not crash.
  auto nested = [](size_t n) { return std::string(n, '\x91') + "\xc0"; };
  CHECK(from_bytes(nested(kMaxDepth)).is_ok());
  auto deep = from_bytes(nested(kMaxDepth + 1));
  CHECK(deep.err() == EPROTO);
  CHECK(has(deep.status().what(), "nested deeper"));
  CHECK(from_bytes(nested(1000000)).err() == EPROTO);
  // Value count.
  std::string many = "\xdc\x03\xe8" + std::string(1000, '\xc0');  // array16 of 1000 nils
  CHECK(from_bytes(many, 1001).is_ok());
  CHECK(from_bytes(many, 1000).err() == E2BIG);
  // Every MessagePack type the checker walks parses the same as nlohmann.
  Json all = {{"i", -5}, {"u", 1ull << 40}, {"f", 1.5}, {"s", std::string(300, 's')}, {"b", Json::binary({1, 2})},
              {"n", nullptr}, {"t", true}, {"a", Json::array({1, "x", Json::object()})},
              {"e", Json::binary({1, 2, 3, 4}, 7)}, {"big", Json::binary(std::vector<uint8_t>(70000, 9))}};
  auto back = from_bytes(to_bytes(all));
  REQUIRE(back.is_ok());
  CHECK(*back == all);
}

TEST_CASE("random and mutated requests never crash the decoder") {
  std::mt19937 rng(42);
  Compound c = every_kind();
  std::string good = to_bytes(encode_compound(c, false));
  size_t accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string b = good;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) b[rng() % b.size()] = static_cast<char>(rng());
    if (i % 4 == 0) b.resize(rng() % b.size());
    auto j = from_bytes(b, 10000);
    if (!j) continue;
    auto d = decode_compound(*j, Limits{}, 1);
    if (d) ++accepted;
  }
  for (int i = 0; i < 2000; ++i) {
    std::string b(rng() % 64, '\0');
    for (auto& ch : b) ch = static_cast<char>(rng());
    auto j = from_bytes(b, 10000);
    if (j) (void)decode_compound(*j, Limits{}, 0);
  }
  MESSAGE("mutated requests still accepted: ", accepted);
  CHECK(accepted < 20000);
}

// ---------------------------------------------------------------- framing

TEST_CASE("frames carry more descriptors than one message can, in order") {
  raise_nofile();
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  std::vector<int> fds;  // descriptor i: a memfd of i bytes, so order is visible
  for (int i = 0; i < 400; ++i) {
    fds.push_back(memfd_create("tcfs-test", MFD_CLOEXEC));
    REQUIRE(fds.back() >= 0);
    REQUIRE(ftruncate(fds.back(), i) == 0);
  }
  std::thread t([&] { CHECK(write_frame(sv[0], std::string(100000, 'x'), fds).is_ok()); });
  FrameLimits fl;
  fl.max_bytes = 1 << 20;
  fl.max_fds = 1000;
  auto f = read_frame(sv[1], fl);
  t.join();
  REQUIRE(f.is_ok());
  CHECK(f->refused.is_ok());
  CHECK(f->payload == std::string(100000, 'x'));
  REQUIRE(f->fds.size() == 400);
  int misplaced = 0, inheritable = 0;
  for (size_t i = 0; i < 400; ++i) {
    struct stat st;
    REQUIRE(fstat(f->fds[i], &st) == 0);
    if (st.st_size != static_cast<off_t>(i)) ++misplaced;
    if (!(fcntl(f->fds[i], F_GETFD) & FD_CLOEXEC)) ++inheritable;
  }
  CHECK(misplaced == 0);
  CHECK(inheritable == 0);
  for (int fd : f->fds) close(fd);
  for (int fd : fds) close(fd);
  close(sv[0]);
  close(sv[1]);
}

TEST_CASE("too many descriptors are closed and refused, and the stream stays in step") {
  raise_nofile();
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  std::vector<int> fds;
  for (int i = 0; i < 300; ++i) fds.push_back(open("/dev/null", O_RDONLY | O_CLOEXEC));
  size_t before = open_fd_count();
  std::thread t([&] {
    CHECK(write_frame(sv[0], "first", fds).is_ok());
    CHECK(write_frame(sv[0], "second").is_ok());
  });
  FrameLimits fl;
  fl.max_bytes = 4096;
  fl.max_fds = 10;
  auto f = read_frame(sv[1], fl);
  REQUIRE(f.is_ok());
  CHECK(f->refused.err() == E2BIG);
  CHECK(f->fds.empty());
  CHECK(f->payload == "first");
  auto g = read_frame(sv[1], fl);
  t.join();
  REQUIRE(g.is_ok());
  CHECK(g->payload == "second");
  CHECK(open_fd_count() == before);  // every received copy was closed
  for (int fd : fds) close(fd);
  close(sv[0]);
  close(sv[1]);
}

TEST_CASE("bad frames: oversized, cut short, stalled; descriptors that cannot fit") {
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  FrameLimits fl;
  fl.max_bytes = 4096;
  REQUIRE(write_frame(sv[0], std::string(5000, 'y')).is_ok());
  CHECK(read_frame(sv[1], fl).err() == EMSGSIZE);
  close(sv[0]);
  close(sv[1]);

  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  send_all(sv[0], frame_bytes("abc", 16));
  close(sv[0]);
  CHECK(read_frame(sv[1], fl).err() == EPROTO);
  close(sv[1]);

  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  send_all(sv[0], "\x10\x00");
  close(sv[0]);
  CHECK(read_frame(sv[1], fl).err() == EPROTO);  // cut inside the header
  close(sv[1]);

  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  close(sv[0]);
  CHECK(read_frame(sv[1], fl).err() == ENODATA);  // clean end between frames
  close(sv[1]);

  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  send_all(sv[0], frame_bytes("abc", 16));
  fl.stall_ms = 100;
  auto t0 = std::chrono::steady_clock::now();
  CHECK(read_frame(sv[1], fl).err() == ETIMEDOUT);
  CHECK(std::chrono::steady_clock::now() - t0 >= 100ms);
  // 2000 descriptors need 8 messages, more than a 5-byte frame has bytes.
  CHECK(write_frame(sv[0], "x", std::vector<int>(2000, 0)).err() == E2BIG);
  // A full socket buffer: a nonblocking frame is refused whole, not sent in part.
  int small = 4096;
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  Status st;
  for (int i = 0; i < 100000 && st.is_ok(); ++i) st = write_frame(sv[0], std::string(100, 'z'), {}, true);
  CHECK(st.err() == EAGAIN);
  close(sv[0]);
  close(sv[1]);
}

// ---------------------------------------------------------------- server

TEST_CASE("hello names the server, mount, store and limits; the socket is 0666") {
  Limits lim;
  lim.max_ops = 77;
  lim.max_fds = 5;
  TestServer ts(lim);
  struct stat st;
  REQUIRE(stat(ts.sock.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 0777) == 0666);
  auto c = ts.client();
  auto h = c.hello();
  REQUIRE(h.is_ok());
  CHECK(h->server == "tcfs-test 1");
  CHECK(h->mount == "/mnt/t");
  CHECK(h->store == ts.dir.path);
  CHECK(h->max_ops == 77);
  CHECK(h->max_fds == 5);
  CHECK(h->max_inline_bytes == protocol::kDefaultMaxInlineBytes);
  CHECK(h->max_frame_bytes == protocol::kDefaultMaxFrameBytes);
  // Several requests on one connection.
  Compound two;
  two.mkdir("a").write("a/f", "hello");
  size_t progress = 0;
  auto r = c.submit(two, [&](size_t done, size_t total) {
    ++progress;
    CHECK(total == 2);
    CHECK(done <= total);
  });
  REQUIRE(r.is_ok());
  CHECK(r->outcome == Outcome::Committed);
  CHECK(r->txn_id == 2);
  CHECK(r->results.at(1).bytes == 5);
  CHECK(progress == 2);
  CHECK(ts.exec->last.pid == getpid());
  CHECK(ts.exec->last.uid == getuid());
  CHECK(ts.exec->last.gid == getgid());
  CHECK(c.hello().is_ok());
}

TEST_CASE("more than 253 descriptors reach the executor in order and are closed after the request") {
  raise_nofile();
  TestServer ts;
  auto c = ts.client();
  const int n = 300;
  std::vector<std::array<int, 2>> pipes(n);
  Compound comp;
  for (int i = 0; i < n; ++i) {
    REQUIRE(pipe2(pipes[i].data(), O_CLOEXEC | O_NONBLOCK) == 0);
    comp.write_fd("f" + std::to_string(i), pipes[i][1]);
  }
  auto r = c.submit(comp);
  REQUIRE(r.is_ok());
  CHECK(r->outcome == Outcome::Committed);
  CHECK(ts.exec->last_nfds == n);
  int wrong = 0, held = 0;
  for (int i = 0; i < n; ++i) {
    close(pipes[i][1]);  // ours; the server must have closed its copy already
    char buf[16];
    ssize_t k = read(pipes[i][0], buf, sizeof buf);
    if (k <= 0 || std::string(buf, static_cast<size_t>(k)) != std::to_string(i)) ++wrong;
    if (read(pipes[i][0], buf, sizeof buf) != 0) ++held;  // EOF only if no copy is left open
    close(pipes[i][0]);
  }
  CHECK(wrong == 0);
  CHECK(held == 0);
}

TEST_CASE("descriptors of refused requests are closed at once; the connection goes on") {
  raise_nofile();
  Limits lim;
  lim.max_fds = 10;
  TestServer ts(lim);
  auto c = ts.client();
  for (int n : {11, 3}) {
    CAPTURE(n);
    std::vector<std::array<int, 2>> pipes(static_cast<size_t>(n));
    Compound comp;
    for (auto& p : pipes) {
      REQUIRE(pipe2(p.data(), O_CLOEXEC | O_NONBLOCK) == 0);
      comp.write_fd("f", p[1]);
    }
    if (n == 3) comp.ops[1].path = "../escape";  // refused by the decoder instead
    auto r = c.submit(comp);
    REQUIRE(r.is_ok());
    CHECK(r->outcome == Outcome::Rejected);
    CHECK(r->err == (n == 11 ? E2BIG : EXDEV));
    CHECK(r->results.empty());
    for (auto& p : pipes) {
      close(p[1]);
      char b;
      CHECK(read(p[0], &b, 1) == 0);
      close(p[0]);
    }
  }
  CHECK(ts.exec->runs == 0);
  CHECK(c.hello().is_ok());
}

TEST_CASE("the executor sees the caller the kernel names: a child running as uid 65534") {
  if (geteuid() != 0) {
    MESSAGE("skipped: needs root to become uid 65534");
    return;
  }
  TestServer ts;
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    gid_t groups[] = {65534, 4242};
    if (setgroups(2, groups) != 0 || setgid(65533) != 0 || setuid(65534) != 0) _exit(10);
    auto c = Client::connect(ts.mi);
    if (!c) _exit(11);
    Compound one;
    one.mkdir("x");
    auto r = c->submit(one);
    _exit(r && r->outcome == Outcome::Committed ? 0 : 12);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  std::lock_guard g(ts.exec->mu);
  CHECK(ts.exec->last.pid == pid);
  CHECK(ts.exec->last.uid == 65534u);
  CHECK(ts.exec->last.gid == 65533u);
  auto groups = ts.exec->last.groups;
  std::sort(groups.begin(), groups.end());
  CHECK(groups == std::vector<gid_t>{4242, 65534});
}

TEST_CASE("connections are served concurrently, and a stalled one holds up no other") {
  TestServer ts;
  int stalled = ts.raw();
  send_all(stalled, frame_bytes("\x82", 100));  // a frame that never completes
  ts.exec->gate = 4;
  std::vector<std::thread> threads;
  std::atomic<int> committed{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      auto c = ts.client();
      Compound comp;
      for (int i = 0; i <= t; ++i) comp.mkdir("d" + std::to_string(i));
      auto r = c.submit(comp);
      if (r && r->outcome == Outcome::Committed && r->txn_id == static_cast<uint64_t>(t + 1)) ++committed;
    });
  for (auto& t : threads) t.join();
  CHECK(committed == 4);
  CHECK(!ts.exec->gate_timed_out);
  CHECK(ts.exec->max_in_flight == 4);
  close(stalled);
  ts.exec->gate = 0;
  ts.still_serves();
}

TEST_CASE("bad clients get clear rejections and never hurt the server") {
  TestServer ts;
  auto ring = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64);
  auto old = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", ring));
  std::string me = "pid " + std::to_string(getpid());

  SUBCASE("garbage payload: rejected, the connection goes on") {
    int fd = ts.raw();
    send_all(fd, frame_bytes("\xc1\xff\x00garbage"));
    Json r = next(fd);
    CHECK(r["outcome"] == "rejected");
    CHECK(r["errno"] == EPROTO);
    send_all(fd, frame_bytes(to_bytes(hello_req())));
    CHECK(next(fd)["type"] == "hello");
    close(fd);
    auto lines = ring->last_formatted();
    bool logged = false;
    for (const auto& l : lines) logged = logged || (has(l, me) && has(l, "not a MessagePack message"));
    CHECK(logged);
  }
  SUBCASE("wrong or missing version") {
    int fd = ts.raw();
    send_all(fd, frame_bytes(to_bytes({{"v", 99}, {"type", "hello"}})));
    Json r = next(fd);
    CHECK(r["outcome"] == "rejected");
    CHECK(r["errno"] == EPROTO);
    CHECK(has(r["message"], "unsupported protocol version 99"));
    send_all(fd, frame_bytes(to_bytes({{"type", "hello"}})));
    CHECK(next(fd)["errno"] == EPROTO);
    send_all(fd, frame_bytes(to_bytes(Json::array({1, 2}))));
    CHECK(next(fd)["errno"] == EPROTO);
    close(fd);
  }
  SUBCASE("unknown type and unknown op") {
    int fd = ts.raw();
    send_all(fd, frame_bytes(to_bytes({{"v", 1}, {"type", "format-disk"}})));
    Json r = next(fd);
    CHECK(r["errno"] == EINVAL);
    CHECK(has(r["message"], "unknown request type \"format-disk\""));
    send_all(fd, frame_bytes(to_bytes({{"v", 1}, {"type", "compound"},
                                       {"ops", {{{"op", "mkdir"}, {"path", "a"}}, {{"op", "fly"}, {"path", "b"}}}}})));
    r = next(fd);
    CHECK(r["outcome"] == "rejected");
    CHECK(has(r["message"], "op 1: unknown op \"fly\""));
    close(fd);
    CHECK(ts.exec->runs == 0);
  }
  SUBCASE("an absurd length is answered without reading it, then the connection closes") {
    int fd = ts.raw();
    send_all(fd, frame_bytes("", 0xfffffff0u));
    Json r = next(fd);
    CHECK(r["errno"] == EMSGSIZE);
    CHECK(at_eof(fd));
    close(fd);
  }
  SUBCASE("a truncated frame from a half-closed client is answered") {
    int fd = ts.raw();
    send_all(fd, frame_bytes(to_bytes(hello_req()), 1000));
    shutdown(fd, SHUT_WR);
    Json r = next(fd);
    CHECK(r["errno"] == EPROTO);
    CHECK(has(r["message"], "truncated"));
    CHECK(at_eof(fd));
    close(fd);
  }
  SUBCASE("a client that vanishes mid-frame") {
    int fd = ts.raw();
    send_all(fd, frame_bytes(to_bytes(hello_req()), 1000).substr(0, 9));
    close(fd);
  }
  SUBCASE("a client that vanishes before its reply") {
    ts.exec->delay = 200ms;
    int fd = ts.raw();
    send_all(fd, frame_bytes(to_bytes(encode_compound(Compound().mkdir("a"), false))));
    close(fd);
    for (int i = 0; i < 1000 && !ts.exec->finished; ++i) std::this_thread::sleep_for(20ms);
    CHECK(ts.exec->finished);
    ts.exec->delay = 0ms;
  }
  SUBCASE("deeply nested MessagePack") {
    int fd = ts.raw();
    send_all(fd, frame_bytes(std::string(4 << 20, '\x91') + "\xc0"));
    Json r = next(fd);
    CHECK(r["errno"] == EPROTO);
    close(fd);
  }
  SUBCASE("a client that never reads its progress frames does not stall the executor") {
    ts.exec->progress_calls = 200000;  // ~8 MB of progress frames, far more than a socket buffer
    int fd = ts.raw();
    send_all(fd, frame_bytes(to_bytes(encode_compound(Compound().mkdir("a"), true))));
    // A bound against a hang, not a timing assertion: 200,000 frames take
    // a few seconds, longer in an unoptimised sanitizer build.
    for (int i = 0; i < 6000 && !ts.exec->finished; ++i) std::this_thread::sleep_for(20ms);
    CHECK(ts.exec->finished);
    Json r;
    int frames = 0;
    do {
      r = next(fd);
      ++frames;
    } while (!r.is_null() && r["type"] == "progress");
    REQUIRE(!r.is_null());
    CHECK(r["outcome"] == "committed");
    CHECK(frames > 1);
    close(fd);
  }
  ts.still_serves();
  ts.srv->stop();  // no thread logs any more: the logger can be swapped back
  spdlog::set_default_logger(old);
}

TEST_CASE("a frame stalled mid-way is given up after frame_stall_ms") {
  Limits lim;
  lim.frame_stall_ms = 200;
  TestServer ts(lim);
  int fd = ts.raw();
  send_all(fd, frame_bytes("\x82", 50));
  Json r = next(fd);
  CHECK(r["outcome"] == "rejected");
  CHECK(has(r["message"], "stalled"));
  CHECK(at_eof(fd));
  close(fd);
  // Idle between frames is fine.
  int idle = ts.raw();
  std::this_thread::sleep_for(400ms);
  send_all(idle, frame_bytes(to_bytes(hello_req())));
  CHECK(next(idle)["type"] == "hello");
  close(idle);
}

TEST_CASE("connections beyond the limit are refused with EBUSY") {
  TestServer ts(Limits{}, 2);
  int a = ts.raw(), b = ts.raw();
  for (int fd : {a, b}) {
    send_all(fd, frame_bytes(to_bytes(hello_req())));
    REQUIRE(next(fd)["type"] == "hello");
  }
  int c = ts.raw();
  Json r = next(c);
  CHECK(r["outcome"] == "rejected");
  CHECK(r["errno"] == EBUSY);
  CHECK(has(r["message"], "too many connections"));
  CHECK(at_eof(c));
  close(c);
  close(a);
  // A slot frees up once a connection ends.
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) {
    int d = ts.raw();
    std::string req = frame_bytes(to_bytes(hello_req()));
    // A refused connection may be closed before the request is even sent.
    if (send(d, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      Json r = next(d);
      served = r.is_object() && r["type"] == "hello";
    }
    close(d);
    if (!served) std::this_thread::sleep_for(20ms);
  }
  CHECK(served);
  close(b);
}

TEST_CASE("a live server keeps its socket; a stale socket file is replaced; stop removes it") {
  TestServer ts;
  auto second = ControlServer::start(ts.sock, ts.exec, Limits{}, ServerInfo{});
  CHECK(second.err() == EADDRINUSE);
  ts.still_serves();  // the failed start left the live socket alone

  TempDir d;
  std::string stale = d / "control.sock";
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  strcpy(a.sun_path, stale.c_str());
  REQUIRE(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  close(s);  // bound, never listening: what a killed daemon leaves
  auto fresh = ControlServer::start(stale, ts.exec, Limits{}, ServerInfo{});
  REQUIRE(fresh.is_ok());
  auto c = Client::connect(MountInfo{"/m", d.path, stale});
  REQUIRE(c.is_ok());
  CHECK(c->hello().is_ok());
  (*fresh)->stop();
  CHECK(access(stale.c_str(), F_OK) != 0);
  CHECK(!Client::connect(MountInfo{"/m", d.path, stale}).is_ok());
}

TEST_CASE("stop returns with idle, stalled and waiting clients connected") {
  TestServer ts;
  auto idle = ts.client();
  int stalled = ts.raw();
  send_all(stalled, frame_bytes("\x82", 100));
  ts.exec->delay = 300ms;
  std::thread busy([&] {
    auto c = ts.client();
    auto r = c.submit(Compound().mkdir("slow"));
    CHECK((!r.is_ok() || r->outcome == Outcome::Committed));
  });
  for (int i = 0; i < 100 && ts.exec->runs == 0; ++i) std::this_thread::sleep_for(10ms);
  auto t0 = std::chrono::steady_clock::now();
  ts.srv->stop();
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  busy.join();
  CHECK(ts.exec->finished);  // the running compound finished first
  CHECK(!idle.hello().is_ok());
  CHECK(at_eof(stalled));
  close(stalled);
}

TEST_CASE("fault injection at accept and receive closes that connection only") {
  TestServer ts;
  fault::arm("control.accept", ECONNABORTED);
  int fd = ts.raw();
  CHECK(at_eof(fd));
  close(fd);
  ts.still_serves();
  fault::arm("control.recv", EIO);
  size_t runs_before = ts.exec->runs;
  auto c = ts.client();
  auto r = c.submit(Compound().mkdir("x"));
  REQUIRE(r.is_ok());
  CHECK(r->outcome == Outcome::Rejected);
  CHECK(has(r->message, "injected"));
  CHECK(ts.exec->runs == runs_before);
  // That connection is closed (the server holds none of ours now); the
  // client's next call opens a new one by itself.
  for (int i = 0; i < 1000 && ts.srv->usage(getuid()).conns != 0; ++i) std::this_thread::sleep_for(10ms);
  CHECK(ts.srv->usage(getuid()).conns == 0);
  CHECK(c.hello().is_ok());
  fault::reset();
  ts.still_serves();
}

TEST_CASE("a request whose version or type is not UTF-8 is rejected; the daemon lives on") {
  TestServer ts;
  int fd = ts.raw();
  send_all(fd, frame_bytes(to_bytes({{"v", "\xff\xfe"}, {"type", "hello"}})));
  Json r = next(fd);
  CHECK(r["errno"] == EPROTO);
  CHECK(has(r["message"], "unsupported protocol version"));
  send_all(fd, frame_bytes(to_bytes({{"v", 1}, {"type", "h\xe5llo"}})));
  CHECK(next(fd)["errno"] == EINVAL);
  close(fd);
  ts.still_serves();
}

// ---------------------------------------------------------------- client

TEST_CASE("mountinfo: the deepest mount that shows the path must be tcfs") {
  std::istringstream in(
      "20 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
      "30 20 0:40 / /srv/data rw shared:5 - fuse.tcfs /var/lib/tcfs/my\\040store rw,user_id=0\n"
      "31 30 0:41 / /srv/data/tmp rw - tmpfs tmpfs rw\n"
      "32 30 0:42 / /srv/data/inner rw - fuse.tcfs /var/lib/tcfs/inner rw\n"
      "33 32 0:43 / /srv/data/inner/deeper rw - tmpfs tmpfs rw\n"
      "40 20 0:44 / /srv/data\\040two rw - fuse.tcfs /stores/two rw,user_id=1000,group_id=1000\n"
      "garbage line\n");
  auto table = client_detail::parse_mountinfo(in);
  REQUIRE(table.size() == 6);
  CHECK(table[1].majmin == "0:40");
  CHECK(table[1].opts == "rw");
  CHECK(table[1].superopts == "rw,user_id=0");
  auto l = client_detail::locate(table, "/srv/data/a/b");
  REQUIRE(l.is_ok());
  CHECK(l->mount.mountpoint == "/srv/data");
  CHECK(l->mount.store == "/var/lib/tcfs/my store");
  // Root's daemon serves on /run/tcfs/<the store path's SHA-256, 32 digits>.sock; another user's in its store.
  CHECK(l->mount.socket == "/run/tcfs/f407b0a967377e95d5a8cf74813e08b3.sock");
  CHECK(client_detail::locate(table, "/srv/data/inner/x")->mount.socket ==
        "/run/tcfs/58b5e49f733782a41f80e4e7ca8b6911.sock");
  CHECK(client_detail::locate(table, "/srv/data two/x")->mount.socket == "/stores/two/control.sock");
  std::sort(l->nested.begin(), l->nested.end());
  CHECK(l->nested == std::vector<std::string>{"/srv/data/inner", "/srv/data/inner/deeper", "/srv/data/tmp"});
  CHECK(client_detail::locate(table, "/srv/data")->mount.mountpoint == "/srv/data");
  CHECK(client_detail::locate(table, "/srv/data/inner/x")->mount.store == "/var/lib/tcfs/inner");
  CHECK(client_detail::locate(table, "/srv/data two/x")->mount.store == "/stores/two");
  auto hidden = client_detail::locate(table, "/srv/data/tmp/x");
  CHECK(hidden.err() == ENOENT);
  CHECK(has(hidden.status().what(), "/srv/data/tmp/x is not inside a tcfs mount (it is on a tmpfs mount"));
  CHECK(client_detail::locate(table, "/srv/database").err() == ENOENT);
  CHECK(client_detail::locate(table, "/etc").err() == ENOENT);
  CHECK(client_detail::path_under("/a/b", "/a"));
  CHECK(!client_detail::path_under("/ab", "/a"));
  CHECK(client_detail::path_under("/x", "/"));
}

TEST_CASE("paths are normalised lexically and made mount-relative, refusing other mounts") {
  CHECK(absolute_path("/a/./b//c/../d/") == "/a/b/d");
  CHECK(absolute_path("/../..") == "/");
  char cwd[PATH_MAX];
  REQUIRE(getcwd(cwd, sizeof cwd));
  CHECK(absolute_path("x/../y") == std::string(cwd == std::string("/") ? "" : cwd) + "/y");

  TestServer ts;
  MountInfo mi{ts.dir.path, ts.dir.path, ts.sock};
  auto c = Client::connect(mi);
  REQUIRE(c.is_ok());
  CHECK(c->relative(ts.dir / "a/b").value() == "a/b");
  CHECK(c->relative(ts.dir / "a/../b/./c").value() == "b/c");
  CHECK(c->relative(ts.dir.path).value() == "");
  auto out = c->relative(ts.dir / "../elsewhere");
  CHECK(out.err() == EXDEV);
  CHECK(has(out.status().what(), "../elsewhere is not inside the tcfs mount " + ts.dir.path));
  CHECK(c->relative(ts.dir.path + "x/y").err() == EXDEV);  // a sibling sharing the prefix
  REQUIRE(chdir(ts.dir.path.c_str()) == 0);
  CHECK(c->relative("rel/f").value() == "rel/f");
  CHECK(c->relative("..").err() == EXDEV);
  REQUIRE(chdir(cwd) == 0);
}
