// Unit tests for the wire module's typed messages (control/messages.h:
// the request envelope, hello, sync, status, maintain; progress) and its
// one op decoder (control/op_codec.h): round trips through MessagePack,
// exactly the fields protocol.h lists, and malformed input refused with
// EPROTO / EINVAL naming the field.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <sys/xattr.h>

#include <cstdio>
#include <functional>
#include <set>

#include "control/messages.h"
#include "control/op_codec.h"
#include "control/wire.h"

using namespace tcfs;
using namespace tcfs::control;

namespace {

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// j after a trip through MessagePack bytes, as the peer reads it.
Json trip(const Json& j) { return from_bytes(to_bytes(j)).value(); }

std::set<std::string> keys(const Json& j) {
  std::set<std::string> out;
  for (auto it = j.begin(); it != j.end(); ++it) out.insert(it.key());
  return out;
}

// The error of a Result: errno and message (0, "" when it holds a value).
template <typename T>
std::pair<int, std::string> error_of(const Result<T>& r) {
  if (r.is_ok()) return {0, ""};
  return {r.err(), r.status().what()};
}

Json hello_json() {
  return encode_hello({"tcfs 9", "/mnt/m", "/s/t", 7, 4096, 1 << 20, 3});
}

}  // namespace

TEST_CASE("the request envelope: a map of this version; its type, or \"\"") {
  CHECK(decode_request_type(Json::array()).err() == EPROTO);
  CHECK(has(error_of(decode_request_type(Json::array())).second, "not a MessagePack map"));
  auto v99 = decode_request_type({{"v", 99}, {"type", "hello"}});
  CHECK(v99.err() == EPROTO);
  CHECK(has(v99.status().what(), "unsupported protocol version 99 (this daemon speaks 1)"));
  CHECK(has(error_of(decode_request_type({{"type", "hello"}})).second, "unsupported protocol version none"));
  CHECK(decode_request_type({{"v", "1"}, {"type", "hello"}}).err() == EPROTO);
  CHECK(decode_request_type({{"v", 1}}).value() == "");
  // Invalid UTF-8 in the values a message shows is replaced, never thrown
  // (it once ended the daemon: the fuzz target found it).
  auto utf = decode_request_type({{"v", "\xff"}, {"type", "hello"}});
  CHECK(utf.err() == EPROTO);
  CHECK(has(utf.status().what(), "unsupported protocol version \"\xef\xbf\xbd\""));
  CHECK(decode_hello({{"v", 1}, {"type", "h\xe5llo"}}).err() == EPROTO);
  CHECK(decode_request_type({{"v", 1}, {"type", 5}}).value() == "");
  for (const Json& req : {encode_hello_request(), encode_status_request(), encode_sync_request({}),
                          encode_maintain_request({"gc"})})
    CHECK(decode_request_type(trip(req)).value() == req["type"].get<std::string>());
}

TEST_CASE("hello: the request and the reply carry exactly protocol.h's fields and round-trip") {
  CHECK(keys(encode_hello_request()) == std::set<std::string>{"v", "type"});
  Json j = hello_json();
  CHECK(keys(j) == std::set<std::string>{"v", "type", "server", "mount", "store", "limits"});
  CHECK(keys(j["limits"]) == std::set<std::string>{"max_ops", "max_inline_bytes", "max_frame_bytes", "max_fds"});
  CHECK(j["type"] == "hello");
  CHECK(j["v"] == protocol::kVersion);
  auto h = decode_hello(trip(j));
  REQUIRE(h.is_ok());
  CHECK(h->server == "tcfs 9");
  CHECK(h->mount == "/mnt/m");
  CHECK(h->store == "/s/t");
  CHECK(h->max_ops == 7);
  CHECK(h->max_inline_bytes == 4096);
  CHECK(h->max_frame_bytes == 1u << 20);
  CHECK(h->max_fds == 3);
  // An older daemon without max_fds and max_frame_bytes: 0.
  Json old = j;
  old["limits"].erase("max_fds");
  old["limits"].erase("max_frame_bytes");
  auto o = decode_hello(old);
  REQUIRE(o.is_ok());
  CHECK(o->max_fds == 0);
  CHECK(o->max_frame_bytes == 0);
}

TEST_CASE("hello: a malformed reply is EPROTO naming the field") {
  struct Case {
    std::function<void(Json&)> spoil;
    const char* says;
  };
  std::vector<Case> cases = {
      {[](Json& j) { j.erase("limits"); }, "missing field \"limits\""},
      {[](Json& j) { j.erase("server"); }, "missing field \"server\""},
      {[](Json& j) { j["mount"] = 5; }, "field \"mount\" must be a string"},
      {[](Json& j) { j["limits"] = "many"; }, "field \"limits\" must be a map"},
      {[](Json& j) { j["limits"].erase("max_ops"); }, "limits: missing field \"max_ops\""},
      {[](Json& j) { j["limits"].erase("max_inline_bytes"); }, "missing field \"max_inline_bytes\""},
      {[](Json& j) { j["limits"]["max_fds"] = -1; }, "field \"max_fds\" must be a non-negative integer"},
      {[](Json& j) { j["type"] = "status"; }, "expected a hello frame"},
  };
  for (const auto& c : cases) {
    Json j = hello_json();
    c.spoil(j);
    CAPTURE(j.dump());
    auto e = error_of(decode_hello(j));
    int err = e.first;
    std::string msg = e.second;
    CHECK(err == EPROTO);
    CHECK_MESSAGE(has(msg, c.says), msg);
  }
  CHECK(decode_hello(Json::array()).err() == EPROTO);
}

TEST_CASE("sync: the timeout is optional both ways; the reply carries errno and message") {
  Json plain = encode_sync_request({});
  CHECK(keys(plain) == std::set<std::string>{"v", "type"});
  CHECK(!decode_sync_request(trip(plain)).value().timeout_ms);
  Json timed = encode_sync_request({1234});
  CHECK(keys(timed) == std::set<std::string>{"v", "type", "timeout_ms"});
  CHECK(decode_sync_request(trip(timed)).value().timeout_ms == 1234u);
  CHECK(decode_sync_request(encode_sync_request({0})).value().timeout_ms == 0u);  // sent as given
  for (const Json& bad : {Json(-5), Json("soon"), Json(1.5)}) {
    Json j = plain;
    j["timeout_ms"] = bad;
    auto e = error_of(decode_sync_request(j));
    int err = e.first;
    std::string msg = e.second;
    CHECK(err == EINVAL);
    CHECK(has(msg, "sync: timeout_ms must be a number"));
  }
  CHECK(kDefaultSyncTimeoutMs == 86400000u);

  Json rep = encode_synced({ETIMEDOUT, "3 marks pending"});
  CHECK(keys(rep) == std::set<std::string>{"v", "type", "errno", "message"});
  CHECK(rep["type"] == "synced");
  auto r = decode_synced(trip(rep));
  REQUIRE(r.is_ok());
  CHECK(r->err == ETIMEDOUT);
  CHECK(r->message == "3 marks pending");
  auto ok = decode_synced({{"v", 1}, {"type", "synced"}});  // both optional
  REQUIRE(ok.is_ok());
  CHECK(ok->err == 0);
  CHECK(ok->message.empty());
  Json bad = rep;
  bad["errno"] = "ETIMEDOUT";
  CHECK(error_of(decode_synced(bad)) ==
        std::pair<int, std::string>{EPROTO, "malformed synced reply: field \"errno\" must be an integer"});
  bad = rep;
  bad["message"] = Json::array();
  CHECK(has(error_of(decode_synced(bad)).second, "field \"message\" must be a string"));
  CHECK(decode_synced(hello_json()).err() == EPROTO);
}

TEST_CASE("status: the reply's mount, store and figures round-trip; malformed is EPROTO") {
  CHECK(keys(encode_status_request()) == std::set<std::string>{"v", "type"});
  CHECK(encode_status_request(true)["quick"] == true);
  CHECK(decode_status_request(trip(encode_status_request())).value() == false);
  CHECK(decode_status_request(trip(encode_status_request(true))).value() == true);
  Json q = encode_status_request();
  q["quick"] = "yes";
  CHECK(decode_status_request(q).err() == EINVAL);
  Json j = encode_status({"/mnt/m", "/s", {{"sync", {{"epoch", 5}}}}});
  CHECK(keys(j) == std::set<std::string>{"v", "type", "mount", "store", "status"});
  auto s = decode_status(trip(j));
  REQUIRE(s.is_ok());
  CHECK(s->mount == "/mnt/m");
  CHECK(s->store == "/s");
  CHECK(s->status["sync"]["epoch"] == 5);
  CHECK(encode_status(*s) == j);
  auto bare = decode_status({{"v", 1}, {"type", "status"}});
  REQUIRE(bare.is_ok());
  CHECK(bare->status == Json::object());
  Json bad = j;
  bad["status"] = 3;
  CHECK(has(error_of(decode_status(bad)).second, "malformed status reply: field \"status\" must be a map"));
  bad = j;
  bad["store"] = false;
  CHECK(decode_status(bad).err() == EPROTO);
  CHECK(has(error_of(decode_status(rejection(EINVAL, "no"))).second, "expected a status frame, got \"reply\""));
}

TEST_CASE("maintain: only gc and scrub are asked; the reply's report is a map") {
  for (const char* what : {"gc", "scrub"}) {
    Json req = encode_maintain_request({what});
    CHECK(keys(req) == std::set<std::string>{"v", "type", "what"});
    CHECK(decode_maintain_request(trip(req)).value().what == what);
  }
  for (const Json& what : {Json("fsck"), Json(1), Json()}) {
    Json req = encode_maintain_request({"gc"});
    if (what.is_null()) req.erase("what");
    else req["what"] = what;
    auto e = error_of(decode_maintain_request(req));
    int err = e.first;
    std::string msg = e.second;
    CHECK(err == EINVAL);
    CHECK(msg == "maintain: what must be \"gc\", \"scrub\" or \"log\"");
  }
  Json rep = encode_maintained({0, "", {{"deleted", 2}}});
  CHECK(keys(rep) == std::set<std::string>{"v", "type", "errno", "message", "report"});
  auto m = decode_maintained(trip(rep));
  REQUIRE(m.is_ok());
  CHECK(m->err == 0);
  CHECK(m->report["deleted"] == 2);
  auto failed = decode_maintained(trip(encode_maintained({EPERM, "gc is for root", Json::object()})));
  REQUIRE(failed.is_ok());
  CHECK(failed->err == EPERM);
  CHECK(failed->message == "gc is for root");
  auto bare = decode_maintained({{"v", 1}, {"type", "maintained"}, {"errno", 0}});
  REQUIRE(bare.is_ok());
  CHECK(bare->report == Json::object());  // never null: callers read it with value()
  Json bad = rep;
  bad["report"] = "done";
  CHECK(has(error_of(decode_maintained(bad)).second, "malformed maintained reply: field \"report\" must be a map"));
  bad = rep;
  bad["errno"] = -3;
  CHECK(has(error_of(decode_maintained(bad)).second, "field \"errno\" is out of range"));
}

TEST_CASE("progress frames round-trip; frame_type never throws") {
  auto p = decode_progress(trip(encode_progress(3, 9)));
  REQUIRE(p.is_ok());
  CHECK(p->done == 3);
  CHECK(p->total == 9);
  Json bad = encode_progress(1, 2);
  bad.erase("total");
  CHECK(error_of(decode_progress(bad)) ==
        std::pair<int, std::string>{EPROTO, "malformed progress frame: missing field \"total\""});
  bad = encode_progress(1, 2);
  bad["done"] = "one";
  CHECK(has(error_of(decode_progress(bad)).second, "field \"done\""));
  CHECK(decode_progress(hello_json()).err() == EPROTO);
  CHECK(frame_type(Json::array({1})) == "");
  CHECK(frame_type(Json(7)) == "");
  CHECK(frame_type({{"type", 3}}) == "");
  CHECK(frame_type(hello_json()) == "hello");
}

// ------------------------------------------------------------ the op decoder

namespace {
std::pair<int, std::string> op_error(const Json& j, const FieldStyle& style, size_t nfds = 1) {
  return error_of(decode_op(j, WireSyntax(nfds), style));
}
}  // namespace

TEST_CASE("decode_op: what encode_op writes comes back the same, for every kind") {
  Compound c;
  c.mkdir("d", 0700, true).create("d/f", 0600, true, true).write("d/f", std::string("bin\0ary", 7), 3);
  c.append("d/f", "more").write_fd("d/f", 0, 5, 6, 7).copy("d/f", "d/g", 1, 2, 3).truncate("d/g", 9);
  c.chmod("d/g", 04755).chown("d/g", 7, std::nullopt).utimes("d/g", Timestamp{1, 2, false}, Timestamp{0, 0, true});
  c.setxattr("d/g", "user.k", std::string("v\0v", 3), XATTR_CREATE).removexattr("d/g", "user.k");
  c.symlink("../t", "d/s").link("d/f", "d/h").rename("d/h", "d/i", RENAME_NOREPLACE).remove("d", true);
  for (size_t i = 0; i < c.ops.size(); ++i) {
    Json j = trip(encode_op(c.ops[i]));
    auto back = decode_op(j, WireSyntax(1), wire_style(i));
    REQUIRE_MESSAGE(back.is_ok(), back.status().what());
    CHECK(encode_op(*back) == encode_op(c.ops[i]));
    CHECK(back->kind == c.ops[i].kind);
  }
}

TEST_CASE("decode_op: the same field errors, named the wire's way or NDJSON's") {
  struct Case {
    Json op;
    int err;
    const char* wire;  // with "op 4: " before it
    const char* bare;
  };
  std::vector<Case> cases = {
      {{{"path", "a"}}, EINVAL, "missing field \"op\"", "missing \"op\""},
      {{{"op", "mkdir"}, {"path", "a"}, {"size", 1}}, EINVAL, "field \"size\" does not apply to mkdir",
       "key \"size\" does not apply to mkdir"},
      {{{"op", "mkdir"}, {"path", "a"}, {"hue", 1}}, EINVAL, "unknown field \"hue\"", "unknown key \"hue\""},
      {{{"op", "remove"}, {"path", "a"}, {"recursive", 1}}, EINVAL, "field \"recursive\" must be true or false",
       "\"recursive\" must be true or false"},
      {{{"op", "truncate"}, {"path", "a"}, {"size", -1}}, EINVAL, "field \"size\" is out of range (0..",
       "\"size\" must be in 0.."},
      {{{"op", "truncate"}, {"path", "a"}, {"size", "9"}}, EINVAL, "field \"size\" must be an integer",
       "\"size\" must be an integer"},
      {{{"op", "truncate"}, {"path", "a"}}, EINVAL, "missing field \"size\"", "missing \"size\""},
      {{{"op", "setattr"}, {"path", "a"}, {"uid", 1ull << 32}}, EINVAL, "field \"uid\" is out of range (0..4294967295)",
       "\"uid\" must be in 0..4294967295"},
      {{{"op", "setattr"}, {"path", "a"}}, EINVAL, "setattr sets nothing", "give at least one of \"mode\""},
      {{{"op", "setattr"}, {"path", "a"}, {"atime", "soon"}}, EINVAL, "field \"atime\" must be \"now\" or {",
       "\"atime\" must be \"now\", seconds, or {"},
      {{{"op", "setattr"}, {"path", "a"}, {"atime", {{"sec", 1}, {"nsec", -1}}}}, EINVAL,
       "field \"atime\": nsec must be 0..999999999", "\"atime\": nsec must be 0..999999999"},
      {{{"op", "setattr"}, {"path", "a"}, {"mtime", {{"sec", 1ull << 63}}}}, EINVAL, "field \"mtime\" is out of range",
       "\"mtime\" is out of range"},
      {{{"op", "removexattr"}, {"path", "a"}, {"name", ""}}, EINVAL, "empty field \"name\", not a valid xattr name",
       "empty \"name\""},
      {{{"op", "removexattr"}, {"path", "a"}, {"name", std::string(XATTR_NAME_MAX + 1, 'n')}}, ERANGE,
       "field \"name\" is not a valid xattr name", "\"name\" is not a valid xattr name"},
      {{{"op", "symlink"}, {"path", "a"}, {"target", ""}}, EINVAL, "empty field \"target\"", "empty \"target\""},
      {{{"op", "symlink"}, {"path", "a"}, {"target", std::string("t\0", 2)}}, EINVAL,
       "field \"target\" must be 1..PATH_MAX-1 bytes", "\"target\" contains a NUL byte"},
      {{{"op", "fly"}, {"path", "a"}}, EINVAL, "unknown op \"fly\" (mkdir, create", "unknown op \"fly\" (mkdir"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.op.dump());
    auto w = op_error(c.op, wire_style(4));
    int werr = w.first;
    std::string wmsg = w.second;
    CHECK(werr == c.err);
    CHECK_MESSAGE(has(wmsg, std::string("op 4: ") + c.wire), wmsg);
    auto b = op_error(c.op, text_style());
    int berr = b.first;
    std::string bmsg = b.second;
    CHECK(berr == c.err);
    CHECK_MESSAGE(has(bmsg, c.bare), bmsg);
    CHECK_MESSAGE(!has(bmsg, "op 4"), bmsg);
  }
}

TEST_CASE("decode_op: seconds are a time only where the style allows them") {
  Json j = {{"op", "setattr"}, {"path", "a"}, {"mtime", 2.25}};
  CHECK(op_error(j, wire_style(0)).first == EINVAL);
  auto op = decode_op(j, WireSyntax(0), text_style());
  REQUIRE(op.is_ok());
  CHECK(op->set_mtime);
  CHECK(op->mtime.sec == 2);
  CHECK(op->mtime.nsec == 250000000u);
  CHECK(op_error({{"op", "setattr"}, {"path", "a"}, {"mtime", 1e300}}, text_style()).second == "\"mtime\" is out of range");
}

TEST_CASE("Fields: count takes any non-negative integer; the prefix is the style's where") {
  Json j = {{"big", UINT64_MAX}, {"neg", -1}, {"s", "x"}};
  FieldStyle st;
  st.where = "malformed thing";
  Fields f(j, st);
  CHECK(f.count("big", 0) == UINT64_MAX);
  CHECK(f.count("absent", 42) == 42);
  try {
    f.count("neg", 0);
    FAIL("accepted -1");
  } catch (const FieldError& e) {
    CHECK(e.err == EINVAL);
    CHECK(e.msg == "malformed thing: field \"neg\" must be a non-negative integer");
  }
  CHECK(f.str("s", true) == "x");
  CHECK(f.name("s") == "field \"s\"");
  CHECK(Fields(j, text_style()).name("s") == "\"s\"");
}

TEST_CASE("attached bytes: data and values ride after the map, referred to by ext type 1, and come back the same") {
  Compound c;
  Op w;
  w.kind = OpKind::Write;
  w.path = "big";
  w.data = std::string(5000, 'x') + std::string("\0y", 2);
  Op small = w;
  small.path = "small";
  small.data = "tiny";  // under kMinAttached: stays a bin
  Op x;
  x.kind = OpKind::Setxattr;
  x.path = "big";
  x.name = "user.v";
  x.value = std::string(100, 'v');
  c.ops = {w, small, x};
  const std::string frame = compound_frame(c, false);
  std::string_view rest;
  auto req = from_bytes(frame, UINT64_MAX, &rest);
  REQUIRE(req.is_ok());
  CHECK(rest.size() == 5002 + 100);
  CHECK((*req)["attached"] == 5102);
  CHECK((*req)["ops"][0]["data"].get_binary().subtype() == protocol::kAttachedRef);
  CHECK(!(*req)["ops"][1]["data"].get_binary().has_subtype());
  auto back = decode_compound(*req, Limits{}, 0, nullptr, rest);
  REQUIRE(back.is_ok());
  CHECK(back->ops[0].data == w.data);
  CHECK(back->ops[1].data == "tiny");
  CHECK(back->ops[2].value == x.value);
  // Without somewhere to take them, trailing bytes are refused.
  CHECK(from_bytes(frame).err() == EPROTO);
  // The count must match what follows the map, both ways.
  auto less = decode_compound(*req, Limits{}, 0, nullptr, rest.substr(1));
  CHECK(less.err() == EPROTO);
  CHECK(has(less.status().what(), "attaches 5101 bytes after the request map but \"attached\" says 5102"));
  Json noatt = *req;
  noatt.erase("attached");
  CHECK(decode_compound(noatt, Limits{}, 0, nullptr, rest).err() == EPROTO);
  Json wrongtype = *req;
  wrongtype["attached"] = "5102";
  CHECK(decode_compound(wrongtype, Limits{}, 0, nullptr, rest).err() == EINVAL);
  // A reference outside the attached bytes, or of another shape, names the op and field.
  Json out = *req;
  out["ops"][0]["data"] = Json::binary({0, 0, 0, 0, 0xff, 0xff, 0, 0}, protocol::kAttachedRef);
  auto r = decode_compound(out, Limits{}, 0, nullptr, rest);
  CHECK(r.err() == EINVAL);
  CHECK(has(r.status().what(), "op 0: field \"data\" refers to attached bytes 0..65535 but the frame attaches 5102"));
  Json other = *req;
  other["ops"][2]["value"] = Json::binary({1, 2, 3}, 7);
  auto r2 = decode_compound(other, Limits{}, 0, nullptr, rest);
  CHECK(r2.err() == EINVAL);
  CHECK(has(r2.status().what(), "op 2: field \"value\" is an extension value of type 7"));
  // The inline-bytes limit counts attached data as it counts bins.
  Limits lim;
  lim.max_inline_bytes = 5001;
  CHECK(decode_compound(*req, lim, 0, nullptr, rest).err() == E2BIG);
}
