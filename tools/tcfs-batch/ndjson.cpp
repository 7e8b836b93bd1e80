// tcfs-batch/ndjson.cpp — NDJSON lines -> operations, with line-numbered errors.
#include "ndjson.h"

#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

namespace tcfs::batch {
namespace {

using nlohmann::json;

struct LineError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] void bad(const std::string& msg) { throw LineError(msg); }

std::string base64(const std::string& s, const char* field) {
  std::string clean;
  for (char c : s)
    if (!isspace(static_cast<unsigned char>(c))) clean += c;
  if (clean.size() % 4) bad(std::string(field) + ": not valid base64");
  std::string out(clean.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(clean.data()), static_cast<int>(clean.size()));
  if (n < 0) bad(std::string(field) + ": not valid base64");
  size_t pad = 0;
  if (!clean.empty() && clean.back() == '=') ++pad;
  if (clean.size() > 1 && clean[clean.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

// Keys each kind accepts besides "op" and "path" (aliases included).
const std::vector<std::string>& keys_of(OpKind k) {
  static const std::array<std::vector<std::string>, 12> table = {{
      {"mode", "parents"},                                                                    // mkdir
      {"mode", "exclusive", "truncate"},                                                      // create
      {"offset", "append", "truncate", "data", "data_base64", "from", "src_offset", "length"},  // write
      {"path2", "to", "src_offset", "offset", "length"},                                      // copy
      {"size"},                                                                               // truncate
      {"mode", "uid", "gid", "atime", "mtime"},                                               // setattr
      {"name", "value", "value_base64", "xattr_flags"},                                       // setxattr
      {"name"},                                                                               // removexattr
      {"target"},                                                                             // symlink
      {"path2", "to"},                                                                        // link
      {"path2", "to", "flags"},                                                               // rename
      {"recursive"},                                                                          // remove
  }};
  return table[static_cast<size_t>(k)];
}

class Line {
 public:
  explicit Line(const json& j) : j_(j) {}
  const json* get(const char* k) const {
    auto it = j_.find(k);
    return it == j_.end() ? nullptr : &*it;
  }
  bool has(const char* k) const { return get(k) != nullptr; }
  // Every key is "op", "path" or one of kind k's.
  void only_keys_of(OpKind k) const {
    const auto& ok = keys_of(k);
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (it.key() == "op" || it.key() == "path" || std::find(ok.begin(), ok.end(), it.key()) != ok.end()) continue;
      for (size_t i = 0; i < 12; ++i) {
        const auto& other = keys_of(static_cast<OpKind>(i));
        if (std::find(other.begin(), other.end(), it.key()) != other.end())
          bad("key \"" + it.key() + "\" does not apply to " + op_kind_name(k));
      }
      bad("unknown key \"" + it.key() + "\"");
    }
  }
  std::string str(const char* k, bool required = false) const {
    const json* v = get(k);
    if (!v) {
      if (required) bad(std::string("missing \"") + k + "\"");
      return {};
    }
    if (!v->is_string()) bad(std::string("\"") + k + "\" must be a string");
    std::string out = v->get<std::string>();
    if (names_a_file(k) && out.find('\0') != std::string::npos) bad(std::string("\"") + k + "\" contains a NUL byte");
    return out;
  }
  // Keys whose value is a path, a symlink target or an xattr name: a C
  // string for the kernel, so a NUL would cut it short.
  static bool names_a_file(const char* k) {
    for (const char* n : {"path", "path2", "to", "from", "target", "name"})
      if (!strcmp(k, n)) return true;
    return false;
  }
  bool flag(const char* k) const {
    const json* v = get(k);
    if (!v) return false;
    if (!v->is_boolean()) bad(std::string("\"") + k + "\" must be true or false");
    return v->get<bool>();
  }
  int64_t integer(const char* k, int64_t dflt, int64_t lo, int64_t hi) const {
    const json* v = get(k);
    if (!v) return dflt;
    if (!v->is_number_integer()) bad(std::string("\"") + k + "\" must be an integer");
    bool in = v->is_number_unsigned() ? v->get<uint64_t>() <= static_cast<uint64_t>(hi) && (lo <= 0 || v->get<uint64_t>() >= static_cast<uint64_t>(lo))
                                      : v->get<int64_t>() >= lo && v->get<int64_t>() <= hi;
    if (!in) bad(std::string("\"") + k + "\" must be in " + std::to_string(lo) + ".." + std::to_string(hi));
    return v->get<int64_t>();
  }
  std::optional<uint32_t> mode(const char* k) const {
    const json* v = get(k);
    if (!v) return std::nullopt;
    uint64_t m = 0;
    if (v->is_number_unsigned()) {
      m = v->get<uint64_t>();
    } else if (v->is_string()) {
      const std::string s = v->get<std::string>();
      bool octal = !s.empty() && s.size() <= 6 && s.find_first_not_of("01234567") == std::string::npos;
      if (!octal) bad(std::string("\"") + k + "\" must be an octal string like \"0644\"");
      m = std::stoull(s, nullptr, 8);
    } else {
      bad(std::string("\"") + k + "\" must be a number or an octal string like \"0644\"");
    }
    if (m > 07777) bad(std::string("\"") + k + "\" must be at most 07777");
    return static_cast<uint32_t>(m);
  }
  std::optional<Timestamp> time(const char* k) const {
    const json* v = get(k);
    if (!v) return std::nullopt;
    Timestamp t;
    if (v->is_string() && *v == "now") {
      t.now = true;
    } else if (v->is_number()) {
      double d = v->get<double>();
      if (!std::isfinite(d) || std::fabs(d) > 9.2e18) bad(std::string("\"") + k + "\" is out of range");
      t.sec = static_cast<int64_t>(std::floor(d));
      long ns = std::lround((d - std::floor(d)) * 1e9);
      if (ns >= 1000000000L) ++t.sec, ns = 0;
      t.nsec = static_cast<uint32_t>(ns);
    } else if (v->is_object() && v->size() <= 2 && v->contains("sec") && (*v)["sec"].is_number_integer() &&
               (v->size() == 1 || v->contains("nsec"))) {
      t.sec = (*v)["sec"].get<int64_t>();
      if (v->contains("nsec")) {
        if (!(*v)["nsec"].is_number_unsigned() || (*v)["nsec"].get<uint64_t>() > 999999999)
          bad(std::string("\"") + k + "\": nsec must be 0..999999999");
        t.nsec = (*v)["nsec"].get<uint32_t>();
      }
    } else {
      bad(std::string("\"") + k + "\" must be \"now\", seconds, or {\"sec\":S,\"nsec\":N}");
    }
    return t;
  }

 private:
  const json& j_;
};

// "path2", or its alias "to" (required for copy, link and rename).
std::string second_path(const Line& l) {
  if (l.has("path2") && l.has("to")) bad("both \"path2\" and \"to\"");
  std::string p2 = l.has("to") ? l.str("to", true) : l.str("path2", true);
  if (p2.empty()) bad(std::string("empty \"") + (l.has("to") ? "to" : "path2") + "\"");
  return p2;
}

// One of text / base64 (the second key), or "" if neither.
std::string bytes(const Line& l, const char* text, const char* b64) {
  if (l.has(text) && l.has(b64)) bad(std::string("give one of \"") + text + "\", \"" + b64 + "\"");
  return l.has(b64) ? base64(l.str(b64), b64) : l.str(text);
}

void parse_write(const Line& l, ParsedOp& p) {
  Op& o = p.op;
  o.append = l.flag("append");
  o.truncate = l.flag("truncate");
  o.offset = l.integer("offset", 0, 0, INT64_MAX);
  if (o.append && l.has("offset")) bad("give one of \"offset\", \"append\"");
  if (l.has("from") && (l.has("data") || l.has("data_base64")))
    bad("give one of \"data\", \"data_base64\", \"from\"");
  o.data = bytes(l, "data", "data_base64");
  p.from = l.str("from");
  if (l.has("from") && p.from.empty()) bad("empty \"from\"");
  if (!l.has("from") && (l.has("src_offset") || l.has("length"))) bad("\"src_offset\" and \"length\" need \"from\"");
  o.src_offset = l.integer("src_offset", 0, 0, INT64_MAX);
  o.length = l.integer("length", -1, -1, INT64_MAX);
}

void parse_setattr(const Line& l, Op& o) {
  if (auto m = l.mode("mode")) o.set_mode = true, o.mode = *m;
  o.set_uid = l.has("uid");
  o.uid = static_cast<uint32_t>(l.integer("uid", 0, 0, UINT32_MAX));
  o.set_gid = l.has("gid");
  o.gid = static_cast<uint32_t>(l.integer("gid", 0, 0, UINT32_MAX));
  if (auto t = l.time("atime")) o.set_atime = true, o.atime = *t;
  if (auto t = l.time("mtime")) o.set_mtime = true, o.mtime = *t;
  if (!o.set_mode && !o.set_uid && !o.set_gid && !o.set_atime && !o.set_mtime)
    bad("setattr needs at least one of \"mode\", \"uid\", \"gid\", \"atime\", \"mtime\"");
}

void parse_setxattr(const Line& l, Op& o) {
  o.name = l.str("name", true);
  if (o.name.empty()) bad("empty \"name\"");
  if (o.kind == OpKind::Removexattr) return;
  o.value = bytes(l, "value", "value_base64");
  std::string xf = l.str("xattr_flags");
  if (xf == "create") o.xattr_flags = XATTR_CREATE;
  else if (xf == "replace") o.xattr_flags = XATTR_REPLACE;
  else if (l.has("xattr_flags")) bad("\"xattr_flags\" must be \"create\" or \"replace\"");
}

void parse_rename_flags(const Line& l, Op& o) {
  const json* f = l.get("flags");
  if (!f) return;
  if (!f->is_array()) bad("\"flags\" must be a list, e.g. [\"noreplace\"]");
  for (const auto& x : *f) {
    // Not x.dump() in the message: a value nested a million deep overflows the serializer's recursion.
    if (!x.is_string()) bad("\"flags\" must list names, e.g. [\"noreplace\"]");
    if (x == "noreplace") o.rename_flags |= RENAME_NOREPLACE;
    else if (x == "exchange") o.rename_flags |= RENAME_EXCHANGE;
    else bad("unknown rename flag \"" + x.get<std::string>() + "\" (noreplace, exchange)");
  }
  if (o.rename_flags == (RENAME_NOREPLACE | RENAME_EXCHANGE)) bad("\"noreplace\" and \"exchange\" exclude each other");
}

void parse_kind(const Line& l, ParsedOp& p) {
  Op& o = p.op;
  switch (o.kind) {
    case OpKind::Mkdir:
      o.mode = l.mode("mode").value_or(0777) & ~caller_umask();
      o.parents = l.flag("parents");
      break;
    case OpKind::Create:
      o.mode = l.mode("mode").value_or(0666) & ~caller_umask();
      o.exclusive = l.flag("exclusive");
      o.truncate = l.flag("truncate");
      break;
    case OpKind::Write: parse_write(l, p); break;
    case OpKind::Copy:
      o.path2 = second_path(l);
      o.src_offset = l.integer("src_offset", 0, 0, INT64_MAX);
      o.offset = l.integer("offset", 0, 0, INT64_MAX);
      o.length = l.integer("length", -1, -1, INT64_MAX);
      break;
    case OpKind::Truncate:
      if (!l.has("size")) bad("missing \"size\"");
      o.size = static_cast<uint64_t>(l.integer("size", 0, 0, INT64_MAX));
      break;
    case OpKind::Setattr: parse_setattr(l, o); break;
    case OpKind::Setxattr:
    case OpKind::Removexattr: parse_setxattr(l, o); break;
    case OpKind::Symlink:
      o.target = l.str("target", true);
      if (o.target.empty()) bad("empty \"target\"");
      break;
    case OpKind::Link: o.path2 = second_path(l); break;
    case OpKind::Rename:
      o.path2 = second_path(l);
      parse_rename_flags(l, o);
      break;
    case OpKind::Remove: o.recursive = l.flag("recursive"); break;
  }
}

ParsedOp parse_line(const json& j) {
  if (!j.is_object()) bad("each line must be a JSON object");
  Line l(j);
  ParsedOp p;
  std::string kind = l.str("op", true);
  auto k = op_kind_from_name(kind);
  if (!k) bad("unknown op \"" + kind + "\" (mkdir, create, write, copy, truncate, setattr, setxattr, removexattr, "
              "symlink, link, rename, remove)");
  p.op.kind = *k;
  l.only_keys_of(*k);
  p.op.path = l.str("path", true);
  if (p.op.path.empty()) bad("empty \"path\"");
  parse_kind(l, p);
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
