// Unit tests for tcfs-batch's NDJSON parser: valid lines of every kind, and
// every error class reported with its line number, nothing accepted then.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <sys/xattr.h>

#include <sstream>

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
