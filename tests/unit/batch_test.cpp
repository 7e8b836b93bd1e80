// Unit tests for tcfs-batch's NDJSON parser: valid lines of every kind, and
// every error class reported with its line number, nothing accepted then.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <cstdio>
#include <sstream>

#include "control/op_codec.h"
#include "ndjson.h"

using tcfs::OpKind;
using tcfs::batch::parse_ndjson;

namespace {
tcfs::batch::ParseResult parse(const std::string& s) {
  std::istringstream in(s);
  return parse_ndjson(in);
}
}  // namespace

TEST_CASE("valid operations of every kind") {
  auto r = parse(R"(# a comment, then a blank line

{"op":"mkdir","path":"d","mode":"0700","parents":true}
{"op":"create","path":"d/f","exclusive":true}
{"op":"write","path":"d/f","data":"hi","offset":3}
{"op":"write","path":"d/f","data_base64":"aGVsbG8=","append":true}
{"op":"write","path":"d/f","from":"/etc/hostname"}
{"op":"copy","path":"d/f","to":"d/g"}
{"op":"truncate","path":"d/g","size":0}
{"op":"setattr","path":"d/g","mode":420,"uid":1,"mtime":"now","atime":{"sec":5,"nsec":6}}
{"op":"setxattr","path":"d/g","name":"user.a","value":"b","xattr_flags":"create"}
{"op":"removexattr","path":"d/g","name":"user.a"}
{"op":"symlink","path":"d/s","target":"g"}
{"op":"link","path":"d/g","path2":"d/h"}
{"op":"rename","path":"d/h","to":"d/i","flags":["noreplace"]}
{"op":"remove","path":"d","recursive":true}
)");
  REQUIRE(r.errors.empty());
  REQUIRE(r.ops.size() == 14);
  CHECK(r.ops[0].op.kind == OpKind::Mkdir);
  CHECK(r.ops[0].op.mode == 0700);
  CHECK(r.ops[0].line == 3);
  CHECK(r.ops[2].op.offset == 3);
  CHECK(r.ops[3].op.data == "hello");
  CHECK(r.ops[4].from == "/etc/hostname");
  CHECK(r.ops[5].op.path2 == "d/g");
  CHECK(r.ops[7].op.set_mode);
  CHECK(r.ops[7].op.mode == 0644);
  CHECK(r.ops[7].op.set_uid);
  CHECK(!r.ops[7].op.set_gid);
  CHECK(r.ops[7].op.mtime.now);
  CHECK(r.ops[7].op.atime.nsec == 6);
  CHECK(r.ops[8].op.xattr_flags == XATTR_CREATE);
  CHECK(r.ops[12].op.rename_flags == RENAME_NOREPLACE);
  CHECK(r.ops[13].op.recursive);
}

TEST_CASE("every error is reported with its line, and none is accepted") {
  auto r = parse(R"({"op":"mkdir","path":"ok"}
not json
{"op":"fly","path":"x"}
{"op":"mkdir"}
{"op":"mkdir","path":"x","colour":"red"}
{"op":"mkdir","path":"x","mode":"9"}
{"op":"rename","path":"x"}
{"op":"write","path":"x","data":"a","from":"/etc/hostname"}
{"op":"setattr","path":"x"}
{"op":"rename","path":"x","to":"y","flags":["sideways"]}
{"op":"truncate","path":"x"}
["op","mkdir"]
)");
  CHECK(r.errors.size() == 11);
  for (int line = 2; line <= 12; ++line) {
    bool found = false;
    for (const auto& e : r.errors) found = found || e.rfind(std::to_string(line) + ": ", 0) == 0;
    CHECK_MESSAGE(found, "no error for line ", line);
  }
  CHECK(r.errors[1].find("unknown op") != std::string::npos);
  CHECK(r.errors[3].find("unknown key \"colour\"") != std::string::npos);
}

namespace {
// The single error reported for a one-line file (empty if accepted).
std::string error_of(const std::string& line) {
  auto r = parse(line + "\n");
  if (r.errors.size() != 1) return r.errors.empty() ? "" : "several: " + r.errors[0];
  return r.errors[0];
}
bool says(const std::string& line, const std::string& part) {
  std::string e = error_of(line);
  bool ok = e.rfind("1: ", 0) == 0 && e.find(part) != std::string::npos;
  if (!ok) MESSAGE(line, " -> \"", e, "\" (expected \"", part, "\")");
  return ok;
}
}  // namespace

TEST_CASE("each error class names its cause") {
  CHECK(says(R"({"op":"mkdir","path":"x","size":3})", "key \"size\" does not apply to mkdir"));
  CHECK(says(R"({"op":"remove","path":"x","mode":"0644"})", "key \"mode\" does not apply to remove"));
  CHECK(says(R"({"op":"mkdir","path":"x","fd_index":0})", "unknown key \"fd_index\""));
  CHECK(says(R"({"op":"mkdir","path":""})", "empty \"path\""));
  CHECK(says(R"({"op":"mkdir","path":7})", "\"path\" must be a string"));
  CHECK(says(R"({"op":"mkdir","path":"x","mode":"0999"})", "octal string"));
  CHECK(says(R"({"op":"mkdir","path":"x","mode":4096})", "at most 07777"));
  CHECK(says(R"({"op":"mkdir","path":"x","mode":-1})", "must be a number or an octal string"));
  CHECK(says(R"({"op":"mkdir","path":"x","parents":"yes"})", "\"parents\" must be true or false"));
  CHECK(says(R"({"op":"write","path":"x","offset":-1})", "\"offset\" must be in 0.."));
  CHECK(says(R"({"op":"write","path":"x","offset":2,"append":true})", "one of \"offset\", \"append\""));
  CHECK(says(R"({"op":"write","path":"x","data":"a","data_base64":"YQ=="})", "one of \"data\", \"data_base64\""));
  CHECK(says(R"({"op":"write","path":"x","data_base64":"###"})", "data_base64: not valid base64"));
  CHECK(says(R"({"op":"write","path":"x","length":5})", "need \"from\""));
  CHECK(says(R"({"op":"write","path":"x","from":""})", "empty \"from\""));
  CHECK(says(R"({"op":"copy","path":"x","path2":"y","to":"z"})", "both \"path2\" and \"to\""));
  CHECK(says(R"({"op":"link","path":"x"})", "missing \"path2\""));
  CHECK(says(R"({"op":"copy","path":"x","to":"y","length":-2})", "\"length\" must be in -1.."));
  CHECK(says(R"({"op":"truncate","path":"x","size":-1})", "\"size\" must be in 0.."));
  CHECK(says(R"({"op":"truncate","path":"x","size":"big"})", "\"size\" must be an integer"));
  CHECK(says(R"({"op":"setattr","path":"x","uid":-1})", "\"uid\" must be in 0..4294967295"));
  CHECK(says(R"({"op":"setattr","path":"x","mtime":"yesterday"})", "\"mtime\" must be \"now\", seconds"));
  CHECK(says(R"({"op":"setattr","path":"x","atime":{"sec":1,"nsec":1000000000}})", "nsec must be 0..999999999"));
  CHECK(says(R"({"op":"setattr","path":"x","atime":{"sec":1,"usec":3}})", "\"atime\" must be"));
  CHECK(says(R"({"op":"setxattr","path":"x","value":"v"})", "missing \"name\""));
  CHECK(says(R"({"op":"setxattr","path":"x","name":"user.a","xattr_flags":"both"})", "\"create\" or \"replace\""));
  CHECK(says(R"({"op":"setxattr","path":"x","name":"user.a","value":"a","value_base64":"YQ=="})", "one of \"value\""));
  CHECK(says(R"({"op":"removexattr","path":"x","name":"user.a","value":"v"})", "key \"value\" does not apply"));
  CHECK(says(R"({"op":"symlink","path":"x","target":""})", "empty \"target\""));
  CHECK(says(R"({"op":"rename","path":"x","to":"y","flags":"noreplace"})", "\"flags\" must be a list"));
  CHECK(says(R"({"op":"rename","path":"x","to":"y","flags":["noreplace","exchange"]})", "exclude each other"));
  CHECK(says(R"({"op":"Mkdir","path":"x"})", "unknown op \"Mkdir\""));
  CHECK(says(R"({"path":"x"})", "missing \"op\""));
  CHECK(says(R"("mkdir x")", "each line must be a JSON object"));
  CHECK(says(R"({"op":"mkdir","path":"x"} trailing)", "bad JSON"));
  CHECK(says(R"({"op":"mkdir","path":"x")", "bad JSON"));
}

TEST_CASE("a key given twice and a NUL in a name are refused, naming the line") {
  auto r = parse("{\"op\":\"mkdir\",\"path\":\"a\"}\n{\"op\":\"mkdir\",\"path\":\"x\",\"path\":\"y\"}\n");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].rfind("2: ", 0) == 0);
  CHECK(r.errors[0].find("key \"path\" appears twice") != std::string::npos);
  CHECK(says(R"({"op":"mkdir","path":"x","mode":"0700","mode":"0777"})", "key \"mode\" appears twice"));
  CHECK(says(R"({"op":"setattr","path":"x","atime":{"sec":1,"sec":2}})", "key \"sec\" appears twice"));
  // The same key in two different objects is fine.
  CHECK(parse(R"({"op":"setattr","path":"x","atime":{"sec":1},"mtime":{"sec":2}})").errors.empty());
  auto n = parse("{\"op\":\"mkdir\",\"path\":\"a\"}\n\n{\"op\":\"create\",\"path\":\"x\\u0000y\"}\n");
  REQUIRE(n.errors.size() == 1);
  CHECK(n.errors[0].rfind("3: ", 0) == 0);
  CHECK(n.errors[0].find("\"path\" contains a NUL byte") != std::string::npos);
  CHECK(says(R"({"op":"rename","path":"x","to":"a\u0000b"})", "\"to\" contains a NUL byte"));
  CHECK(says(R"({"op":"symlink","path":"x","target":"t\u0000"})", "\"target\" contains a NUL byte"));
  CHECK(says(R"({"op":"setxattr","path":"x","name":"user.\u0000a","value":"v"})", "\"name\" contains a NUL byte"));
  CHECK(says(R"({"op":"write","path":"x","from":"/tmp/\u0000"})", "\"from\" contains a NUL byte"));
  // Data may hold any byte.
  CHECK(parse(R"({"op":"write","path":"x","data":"a\u0000b"})").errors.empty());
}

TEST_CASE("line numbers count every line; CRLF, blanks and comments are fine") {
  auto r = parse("# header\r\n\r\n   \n{\"op\":\"mkdir\",\"path\":\"a\"}\r\n  # indented comment\n{\"op\":\"mkdir\"}\n");
  REQUIRE(r.ops.size() == 1);
  CHECK(r.ops[0].line == 4);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].rfind("6: ", 0) == 0);
}

TEST_CASE("values are converted as documented") {
  auto r = parse(R"({"op":"setattr","path":"a","atime":1.5,"mtime":{"sec":-3},"gid":4294967295}
{"op":"write","path":"a","from":"big.bin","src_offset":4,"length":8,"truncate":true}
{"op":"write","path":"a","data_base64":"AAEC/w==","append":true}
{"op":"create","path":"b","mode":"755"}
{"op":"copy","path":"a","path2":"c","offset":1,"src_offset":2,"length":3}
{"op":"rename","path":"a","to":"b","flags":["exchange"]}
{"op":"setxattr","path":"a","name":"user.k","value_base64":"AA==","xattr_flags":"replace"}
{"op":"mkdir","path":"m"}
)");
  REQUIRE(r.errors.empty());
  REQUIRE(r.ops.size() == 8);
  const auto& s = r.ops[0].op;
  CHECK(s.set_atime);
  CHECK(s.atime.sec == 1);
  CHECK(s.atime.nsec == 500000000u);
  CHECK(s.mtime.sec == -3);
  CHECK(s.set_gid);
  CHECK(s.gid == 4294967295u);
  CHECK(!s.set_mode);
  CHECK(!s.set_uid);
  CHECK(r.ops[1].from == "big.bin");
  CHECK(r.ops[1].op.src_offset == 4);
  CHECK(r.ops[1].op.length == 8);
  CHECK(r.ops[1].op.truncate);
  CHECK(r.ops[1].op.fd_index == -1);  // assigned when the file is opened
  CHECK(r.ops[2].op.data == std::string("\0\1\2\xff", 4));
  CHECK(r.ops[2].op.append);
  CHECK(r.ops[3].op.mode == 0755);
  CHECK(r.ops[4].op.offset == 1);
  CHECK(r.ops[4].op.src_offset == 2);
  CHECK(r.ops[4].op.length == 3);
  CHECK(r.ops[5].op.rename_flags == RENAME_EXCHANGE);
  CHECK(r.ops[6].op.value == std::string("\0", 1));
  CHECK(r.ops[6].op.xattr_flags == XATTR_REPLACE);
  CHECK(r.ops[7].op.mode == 0755);  // mkdir's default
}

TEST_CASE("mkdir and create modes get the caller's umask, explicit or default, as mkdir(2) and open(2) do") {
  const char* text = R"({"op":"mkdir","path":"d"}
{"op":"create","path":"f"}
{"op":"mkdir","path":"d2","mode":"0777"}
{"op":"create","path":"f2","mode":"04777"}
)";
  mode_t old = umask(077);
  auto r = parse(text);
  umask(0);
  auto z = parse(text);
  umask(old);
  REQUIRE(r.errors.empty());
  REQUIRE(z.errors.empty());
  REQUIRE(r.ops.size() == 4);
  CHECK(r.ops[0].op.mode == 0700);
  CHECK(r.ops[1].op.mode == 0600);
  CHECK(r.ops[2].op.mode == 0700);
  CHECK(r.ops[3].op.mode == 04700);
  CHECK(z.ops[0].op.mode == 0777);
  CHECK(z.ops[1].op.mode == 0666);
  CHECK(z.ops[2].op.mode == 0777);
  CHECK(z.ops[3].op.mode == 04777);
}

TEST_CASE("a line spelled as the wire spells it decodes to the op the wire's decoder gives (one op decoder)") {
  const char* lines[] = {
      R"({"op":"copy","path":"a","path2":"b","offset":1,"src_offset":2,"length":3})",
      R"({"op":"truncate","path":"a","size":7})",
      R"({"op":"setattr","path":"a","uid":5,"gid":6,"atime":{"sec":1,"nsec":2},"mtime":"now"})",
      R"({"op":"removexattr","path":"a","name":"user.k"})",
      R"({"op":"symlink","path":"a","target":"../t"})",
      R"({"op":"link","path":"a","path2":"b"})",
      R"({"op":"rename","path":"a","path2":"b"})",
      R"({"op":"remove","path":"a","recursive":true})",
      R"({"op":"write","path":"a","data":"xy","offset":9,"truncate":true})",
  };
  for (const char* line : lines) {
    CAPTURE(line);
    auto r = parse(std::string(line) + "\n");
    REQUIRE(r.errors.empty());
    REQUIRE(r.ops.size() == 1);
    auto wire = tcfs::control::decode_op(nlohmann::json::parse(line), tcfs::control::WireSyntax(0),
                                         tcfs::control::wire_style(0));
    REQUIRE_MESSAGE(wire.is_ok(), wire.status().what());
    CHECK(tcfs::control::encode_op(r.ops[0].op) == tcfs::control::encode_op(*wire));
  }
  // The same mistake, the same field named, each in its own words.
  auto e = parse(R"({"op":"truncate","path":"a","size":-1})" "\n");
  REQUIRE(e.errors.size() == 1);
  CHECK(e.errors[0] == "1: \"size\" must be in 0..9223372036854775807");
  auto w = tcfs::control::decode_op(nlohmann::json::parse(R"({"op":"truncate","path":"a","size":-1})"),
                                    tcfs::control::WireSyntax(0), tcfs::control::wire_style(0));
  CHECK(w.status().what() == "op 0: field \"size\" is out of range (0..9223372036854775807)");
  CHECK(says(R"({"op":"removexattr","path":"x","name":""})", "empty \"name\""));
}
