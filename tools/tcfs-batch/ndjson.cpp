// tcfs-batch/ndjson.cpp — NDJSON lines -> operations, with line-numbered
// errors: NDJSON's own spellings here (NdjsonSyntax), every field through
// the wire's one op decoder (control/op_codec.h decode_op).
#include "ndjson.h"

#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <array>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "control/op_codec.h"

namespace tcfs::batch {
namespace {

using nlohmann::json;

struct LineError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] void bad(const std::string& msg) { throw LineError(msg); }

std::string base64(const control::Fields& f, const std::string& s, const char* field) {
  std::string clean;
  for (char c : s)
    if (!isspace(static_cast<unsigned char>(c))) clean += c;
  if (clean.size() % 4) f.bad(EINVAL, std::string(field) + ": not valid base64");
  std::string out(clean.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(clean.data()), static_cast<int>(clean.size()));
  if (n < 0) f.bad(EINVAL, std::string(field) + ": not valid base64");
  size_t pad = 0;
  if (!clean.empty() && clean.back() == '=') ++pad;
  if (clean.size() > 1 && clean[clean.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

// One of text / base64 (the second key), or "" if neither.
std::string bytes(const control::Fields& f, const char* text, const char* b64) {
  if (f.has(text) && f.has(b64)) f.bad(EINVAL, std::string("give one of \"") + text + "\", \"" + b64 + "\"");
  return f.has(b64) ? base64(f, f.str(b64, false), b64) : f.str(text, false);
}

// How NDJSON spells what the wire spells otherwise (man/tcfs-batch.1):
// paths as written (made mount-relative later), "to" for "path2", octal
// mode strings and the caller's umask, "data_base64" / "value_base64",
// "from" files, xattr and rename flags by name. The rest is the wire's
// decoder (control/op_codec.h).
class NdjsonSyntax final : public control::OpSyntax {
 public:
  explicit NdjsonSyntax(std::string* from) : from_(from) {}

  const std::vector<std::string>& keys_of(OpKind k) const override {
    static const std::array<std::vector<std::string>, control::kOpKinds> table = {{
        {"mode", "parents"},                                                                     // mkdir
        {"mode", "exclusive", "truncate"},                                                       // create
        {"offset", "append", "truncate", "data", "data_base64", "from", "src_offset", "length"},  // write
        {"path2", "to", "src_offset", "offset", "length"},                                       // copy
        {"size"},                                                                                // truncate
        {"mode", "uid", "gid", "atime", "mtime"},                                                // setattr
        {"name", "value", "value_base64", "xattr_flags"},                                        // setxattr
        {"name"},                                                                                // removexattr
        {"target"},                                                                              // symlink
        {"path2", "to"},                                                                         // link
        {"path2", "to", "flags"},                                                                // rename
        {"recursive"},                                                                           // remove
    }};
    return table[static_cast<size_t>(k)];
  }

  // "path"; the second path is "path2" or its alias "to".
  std::string path(const control::Fields& f, bool second) const override {
    if (second && f.has("path2") && f.has("to")) f.bad(EINVAL, "both \"path2\" and \"to\"");
    const char* k = !second ? "path" : f.has("to") ? "to" : "path2";
    std::string p = f.str(k, true);
    if (p.empty()) f.bad(EINVAL, std::string("empty \"") + k + "\"");
    return p;
  }

  std::optional<uint32_t> mode(const control::Fields& f) const override {
    const json* v = f.get("mode");
    if (!v) return std::nullopt;
    uint64_t m = 0;
    if (v->is_number_unsigned()) {
      m = v->get<uint64_t>();
    } else if (v->is_string()) {
      const std::string s = v->get<std::string>();
      bool octal = !s.empty() && s.size() <= 6 && s.find_first_not_of("01234567") == std::string::npos;
      if (!octal) f.fail(EINVAL, "mode", "must be an octal string like \"0644\"");
      m = std::stoull(s, nullptr, 8);
    } else {
      f.fail(EINVAL, "mode", "must be a number or an octal string like \"0644\"");
    }
    if (m > 07777) f.fail(EINVAL, "mode", "must be at most 07777");
    return static_cast<uint32_t>(m);
  }

  // As mkdir(2) and open(2) do: the caller's umask, on the mode given or 0777 / 0666.
  uint32_t new_mode(OpKind k, std::optional<uint32_t> given) const override {
    return given.value_or(k == OpKind::Mkdir ? 0777 : 0666) & ~caller_umask();
  }

  void write_source(const control::Fields& f, Op& op) const override {
    if (op.append && f.has("offset")) f.bad(EINVAL, "give one of \"offset\", \"append\"");
    if (f.has("from") && (f.has("data") || f.has("data_base64")))
      f.bad(EINVAL, "give one of \"data\", \"data_base64\", \"from\"");
    op.data = bytes(f, "data", "data_base64");
    *from_ = f.str("from", false);
    if (f.has("from") && from_->empty()) f.bad(EINVAL, "empty \"from\"");
    if (!f.has("from") && (f.has("src_offset") || f.has("length")))
      f.bad(EINVAL, "\"src_offset\" and \"length\" need \"from\"");
  }

  std::string xattr_value(const control::Fields& f) const override { return bytes(f, "value", "value_base64"); }

  int32_t xattr_flags(const control::Fields& f) const override {
    std::string xf = f.str("xattr_flags", false);
    if (xf == "create") return XATTR_CREATE;
    if (xf == "replace") return XATTR_REPLACE;
    if (f.has("xattr_flags")) f.bad(EINVAL, "\"xattr_flags\" must be \"create\" or \"replace\"");
    return 0;
  }

  uint32_t rename_flags(const control::Fields& f) const override {
    const json* v = f.get("flags");
    if (!v) return 0;
    if (!v->is_array()) f.bad(EINVAL, "\"flags\" must be a list, e.g. [\"noreplace\"]");
    uint32_t flags = 0;
    for (const auto& x : *v) {
      // Not x.dump() in the message: a value nested a million deep overflows the serializer's recursion.
      if (!x.is_string()) f.bad(EINVAL, "\"flags\" must list names, e.g. [\"noreplace\"]");
      if (x == "noreplace") flags |= RENAME_NOREPLACE;
      else if (x == "exchange") flags |= RENAME_EXCHANGE;
      else f.bad(EINVAL, "unknown rename flag \"" + x.get<std::string>() + "\" (noreplace, exchange)");
    }
    if (flags == (RENAME_NOREPLACE | RENAME_EXCHANGE)) f.bad(EINVAL, "\"noreplace\" and \"exchange\" exclude each other");
    return flags;
  }

 private:
  std::string* from_;  // the op's ParsedOp::from
};

ParsedOp parse_line(const json& j) {
  if (!j.is_object()) bad("each line must be a JSON object");
  ParsedOp p;
  NdjsonSyntax syntax(&p.from);
  auto op = control::decode_op(j, syntax, control::text_style());
  if (!op) bad(op.status().what());
  p.op = std::move(*op);
  return p;
}

// json::parse, refusing a key that appears twice in one object (the
// parser alone would keep the last one silently).
json parse_strict(const std::string& text) {
  std::vector<std::set<std::string>> keys;  // one set per open object
  return json::parse(text, [&](int, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::object_start) keys.emplace_back();
    if (ev == json::parse_event_t::object_end && !keys.empty()) keys.pop_back();
    if (ev == json::parse_event_t::key && !keys.empty() && !keys.back().insert(parsed.get<std::string>()).second)
      bad("key \"" + parsed.get<std::string>() + "\" appears twice");
    return true;
  });
}

}  // namespace

mode_t caller_umask() {
  mode_t u = umask(0);
  umask(u);
  return u;
}

ParseResult parse_ndjson(std::istream& in) {
  ParseResult r;
  std::string text;
  int n = 0;
  while (std::getline(in, text)) {
    ++n;
    size_t first = text.find_first_not_of(" \t\r");
    if (first == std::string::npos || text[first] == '#') continue;
    try {
      ParsedOp p = parse_line(parse_strict(text));
      p.line = n;
      r.ops.push_back(std::move(p));
    } catch (const json::parse_error& e) {
      std::string what = e.what();
      size_t i = what.find("parse error");
      r.errors.push_back(std::to_string(n) + ": bad JSON (" + (i == std::string::npos ? what : what.substr(i)) + ")");
    } catch (const std::exception& e) {
      r.errors.push_back(std::to_string(n) + ": " + e.what());
    }
  }
  return r;
}

}  // namespace tcfs::batch
