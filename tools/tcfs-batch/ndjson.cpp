// tcfs-batch/ndjson.cpp — NDJSON lines -> operations, with line-numbered errors.
#include "ndjson.h"

#include <openssl/evp.h>
#include <sys/xattr.h>

#include <cmath>
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

class Line {
 public:
  explicit Line(const json& j) : j_(j) {}
  const json* get(const char* k) {
    seen_.insert(k);
    auto it = j_.find(k);
    return it == j_.end() ? nullptr : &*it;
  }
  std::string str(const char* k, bool required = false) {
    const json* v = get(k);
    if (!v) {
      if (required) bad(std::string("missing \"") + k + "\"");
      return {};
    }
    if (!v->is_string()) bad(std::string("\"") + k + "\" must be a string");
    return v->get<std::string>();
  }
  bool flag(const char* k) {
    const json* v = get(k);
    if (!v) return false;
    if (!v->is_boolean()) bad(std::string("\"") + k + "\" must be true or false");
    return v->get<bool>();
  }
  int64_t integer(const char* k, int64_t dflt, bool required = false) {
    const json* v = get(k);
    if (!v) {
      if (required) bad(std::string("missing \"") + k + "\"");
      return dflt;
    }
    if (!v->is_number_integer()) bad(std::string("\"") + k + "\" must be an integer");
    return v->get<int64_t>();
  }
  std::optional<uint32_t> mode(const char* k) {
    const json* v = get(k);
    if (!v) return std::nullopt;
    uint64_t m = 0;
    if (v->is_number_unsigned()) m = v->get<uint64_t>();
    else if (v->is_string()) {
      const std::string s = v->get<std::string>();
      size_t used = 0;
      try {
        m = std::stoull(s, &used, 8);
      } catch (const std::exception&) {
        used = 0;
      }
      if (s.empty() || used != s.size()) bad(std::string("\"") + k + "\" must be an octal string like \"0644\"");
    } else {
      bad(std::string("\"") + k + "\" must be a number or an octal string");
    }
    if (m > 07777) bad(std::string("\"") + k + "\" must be at most 07777");
    return static_cast<uint32_t>(m);
  }
  std::optional<Timestamp> time(const char* k) {
    const json* v = get(k);
    if (!v) return std::nullopt;
    Timestamp t;
    if (v->is_string() && *v == "now") t.now = true;
    else if (v->is_number()) {
      double d = v->get<double>();
      t.sec = static_cast<int64_t>(std::floor(d));
      t.nsec = static_cast<uint32_t>(std::llround((d - std::floor(d)) * 1e9)) % 1000000000u;
    } else if (v->is_object() && v->contains("sec") && (*v)["sec"].is_number_integer()) {
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
  void no_unknown() {
    for (auto it = j_.begin(); it != j_.end(); ++it)
      if (!seen_.count(it.key())) bad("unknown key \"" + it.key() + "\"");
  }

 private:
  const json& j_;
  std::set<std::string> seen_;
};

// "path2", or its per-kind alias.
std::string second_path(Line& l, OpKind k) {
  std::string p2 = l.str("path2");
  std::string to = l.str("to");
  if (!p2.empty() && !to.empty()) bad("both \"path2\" and \"to\"");
  if (p2.empty()) p2 = to;
  bool needed = k == OpKind::Copy || k == OpKind::Link || k == OpKind::Rename;
  if (needed && p2.empty()) bad(std::string("missing \"path2\" (or \"to\") for ") + op_kind_name(k));
  return p2;
}

ParsedOp parse_line(const json& j) {
  if (!j.is_object()) bad("each line must be a JSON object");
  Line l(j);
  ParsedOp p;
  Op& o = p.op;
  std::string kind = l.str("op", true);
  auto k = op_kind_from_name(kind);
  if (!k) bad("unknown op \"" + kind + "\"");
  o.kind = *k;
  o.path = l.str("path", true);
  if (o.path.empty()) bad("empty \"path\"");
  o.path2 = second_path(l, o.kind);
  o.target = l.str("target", o.kind == OpKind::Symlink);
  if (auto m = l.mode("mode")) {
    o.mode = *m;
    o.set_mode = o.kind == OpKind::Setattr;
  } else {
    o.mode = o.kind == OpKind::Mkdir ? 0755 : 0644;
  }
  o.exclusive = l.flag("exclusive");
  o.truncate = l.flag("truncate");
  o.parents = l.flag("parents");
  o.recursive = l.flag("recursive");
  o.append = l.flag("append");
  o.offset = l.integer("offset", 0);
  o.src_offset = l.integer("src_offset", 0);
  o.length = l.integer("length", -1);
  if (o.offset < 0 || o.src_offset < 0) bad("offsets must not be negative");
  if (o.kind == OpKind::Truncate) {
    int64_t s = l.integer("size", 0, true);
    if (s < 0) bad("\"size\" must not be negative");
    o.size = static_cast<uint64_t>(s);
  }
  std::string data = l.str("data"), data64 = l.str("data_base64");
  p.from = l.str("from");
  if ((!data.empty()) + (!data64.empty()) + (!p.from.empty()) > 1) bad("give one of \"data\", \"data_base64\", \"from\"");
  o.data = data64.empty() ? data : base64(data64, "data_base64");
  if (o.kind == OpKind::Setattr) {
    if (const json* u = l.get("uid")) o.set_uid = u != nullptr, o.uid = static_cast<uint32_t>(l.integer("uid", 0));
    if (const json* g = l.get("gid")) o.set_gid = g != nullptr, o.gid = static_cast<uint32_t>(l.integer("gid", 0));
    if (auto t = l.time("atime")) o.set_atime = true, o.atime = *t;
    if (auto t = l.time("mtime")) o.set_mtime = true, o.mtime = *t;
    if (!o.set_mode && !o.set_uid && !o.set_gid && !o.set_atime && !o.set_mtime)
      bad("setattr needs at least one of \"mode\", \"uid\", \"gid\", \"atime\", \"mtime\"");
  }
  bool xa = o.kind == OpKind::Setxattr || o.kind == OpKind::Removexattr;
  o.name = l.str("name", xa);
  std::string v = l.str("value"), v64 = l.str("value_base64");
  if (!v.empty() && !v64.empty()) bad("give one of \"value\", \"value_base64\"");
  o.value = v64.empty() ? v : base64(v64, "value_base64");
  std::string xf = l.str("xattr_flags");
  if (xf == "create") o.xattr_flags = XATTR_CREATE;
  else if (xf == "replace") o.xattr_flags = XATTR_REPLACE;
  else if (!xf.empty()) bad("\"xattr_flags\" must be \"create\" or \"replace\"");
  if (const json* f = l.get("flags")) {
    if (!f->is_array()) bad("\"flags\" must be a list, e.g. [\"noreplace\"]");
    for (const auto& x : *f) {
      if (x == "noreplace") o.rename_flags |= RENAME_NOREPLACE;
      else if (x == "exchange") o.rename_flags |= RENAME_EXCHANGE;
      else bad("unknown rename flag " + x.dump() + " (noreplace, exchange)");
    }
  }
  l.no_unknown();
  return p;
}

}  // namespace

ParseResult parse_ndjson(std::istream& in) {
  ParseResult r;
  std::string text;
  int n = 0;
  while (std::getline(in, text)) {
    ++n;
    size_t first = text.find_first_not_of(" \t\r");
    if (first == std::string::npos || text[first] == '#') continue;
    try {
      ParsedOp p = parse_line(json::parse(text));
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
