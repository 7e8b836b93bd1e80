// control/op_codec.cpp — the one op decoder (Fields, decode_op), the wire's
// syntax of the fields sources spell differently, and encode_op.
#include "control/op_codec.h"

#include <linux/limits.h>
#include <sys/xattr.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>  // RENAME_NOREPLACE, RENAME_EXCHANGE
#include <cstring>

namespace tcfs::control {
namespace {

// Keys whose value names a file, a symlink target or an xattr: a C string
// for the kernel, so a NUL would cut it short (FieldStyle::nul_checked).
bool names_a_file(const char* k) {
  for (const char* n : {"path", "path2", "to", "from", "target", "name"})
    if (!strcmp(k, n)) return true;
  return false;
}

void only_keys(const Fields& f, OpKind k, const OpSyntax& syntax) {
  const auto& ok = syntax.keys_of(k);
  const char* word = f.style().key_word;
  for (auto it = f.json().begin(); it != f.json().end(); ++it) {
    const std::string& key = it.key();
    if (key == "op" || key == "path" || std::find(ok.begin(), ok.end(), key) != ok.end()) continue;
    for (size_t i = 0; i < kOpKinds; ++i) {
      const auto& other = syntax.keys_of(static_cast<OpKind>(i));
      if (std::find(other.begin(), other.end(), key) != other.end())
        f.bad(EINVAL, std::string(word) + " \"" + key + "\" does not apply to " + op_kind_name(k));
    }
    f.bad(EINVAL, std::string("unknown ") + word + " \"" + key + "\"");
  }
}

void decode_write(const Fields& f, const OpSyntax& syntax, Op& op) {
  op.offset = f.integer("offset", 0, 0, INT64_MAX);
  op.append = f.flag("append");
  op.truncate = f.flag("truncate");
  syntax.write_source(f, op);
  op.src_offset = f.integer("src_offset", 0, 0, INT64_MAX);
  op.length = f.integer("length", -1, -1, INT64_MAX);
}

void decode_setattr(const Fields& f, const OpSyntax& syntax, Op& op) {
  auto mode = syntax.mode(f);
  op.set_mode = mode.has_value();
  op.mode = mode.value_or(0);
  op.set_uid = f.has("uid");
  op.uid = static_cast<uint32_t>(f.integer("uid", 0, 0, UINT32_MAX));
  op.set_gid = f.has("gid");
  op.gid = static_cast<uint32_t>(f.integer("gid", 0, 0, UINT32_MAX));
  if (auto t = f.time("atime")) op.set_atime = true, op.atime = *t;
  if (auto t = f.time("mtime")) op.set_mtime = true, op.mtime = *t;
  if (!op.set_mode && !op.set_uid && !op.set_gid && !op.set_atime && !op.set_mtime)
    f.bad(EINVAL, "setattr sets nothing: give at least one of \"mode\", \"uid\", \"gid\", \"atime\", \"mtime\"");
}

void decode_xattr(const Fields& f, const OpSyntax& syntax, Op& op) {
  op.name = f.str("name", true);
  if (op.name.empty()) f.bad(EINVAL, "empty " + f.name("name") + ", not a valid xattr name");
  if (op.name.size() > XATTR_NAME_MAX || op.name.find('\0') != std::string::npos)
    f.fail(op.name.size() > XATTR_NAME_MAX ? ERANGE : EINVAL, "name", "is not a valid xattr name");
  if (op.kind == OpKind::Removexattr) return;
  op.value = syntax.xattr_value(f);
  if (op.value.size() > XATTR_SIZE_MAX) f.fail(E2BIG, "value", "is larger than XATTR_SIZE_MAX");
  op.xattr_flags = syntax.xattr_flags(f);
}

void decode_kind(const Fields& f, const OpSyntax& syntax, Op& op) {
  switch (op.kind) {
    case OpKind::Mkdir:
    case OpKind::Create:
      op.mode = syntax.new_mode(op.kind, syntax.mode(f));
      if (op.kind == OpKind::Mkdir) {
        op.parents = f.flag("parents");
      } else {
        op.exclusive = f.flag("exclusive");
        op.truncate = f.flag("truncate");
      }
      break;
    case OpKind::Write: decode_write(f, syntax, op); break;
    case OpKind::Copy:
      op.path2 = syntax.path(f, true);
      op.src_offset = f.integer("src_offset", 0, 0, INT64_MAX);
      op.offset = f.integer("offset", 0, 0, INT64_MAX);
      op.length = f.integer("length", -1, -1, INT64_MAX);
      break;
    case OpKind::Truncate:
      if (!f.has("size")) f.bad(EINVAL, "missing " + f.name("size"));
      op.size = static_cast<uint64_t>(f.integer("size", 0, 0, INT64_MAX));
      break;
    case OpKind::Setattr: decode_setattr(f, syntax, op); break;
    case OpKind::Setxattr:
    case OpKind::Removexattr: decode_xattr(f, syntax, op); break;
    case OpKind::Symlink:
      op.target = f.str("target", true);
      if (op.target.empty()) f.bad(EINVAL, "empty " + f.name("target"));
      if (op.target.size() >= PATH_MAX || op.target.find('\0') != std::string::npos)
        f.fail(op.target.size() >= PATH_MAX ? ENAMETOOLONG : EINVAL, "target", "must be 1..PATH_MAX-1 bytes, no NUL");
      break;
    case OpKind::Link: op.path2 = syntax.path(f, true); break;
    case OpKind::Rename:
      op.path2 = syntax.path(f, true);
      op.rename_flags = syntax.rename_flags(f);
      break;
    case OpKind::Remove: op.recursive = f.flag("recursive"); break;
  }
}

// Inline bytes of the wire: MessagePack bin, a str, or a reference to the
// frame's attached bytes (protocol.h: ext type kAttachedRef, 8 bytes).
std::string wire_bytes(const Fields& f, const char* k, std::string_view attached) {
  const Json* v = f.get(k);
  if (!v) return {};
  if (v->is_string()) return v->get<std::string>();
  if (!v->is_binary()) f.fail(EINVAL, k, "must be bytes or a string");
  const auto& b = v->get_binary();
  if (!b.has_subtype()) return std::string(b.begin(), b.end());
  if (b.subtype() != protocol::kAttachedRef || b.size() != 8)
    f.fail(EINVAL, k, "is an extension value of type " + std::to_string(b.subtype()) + " and " +
                          std::to_string(b.size()) + " bytes, not a reference to attached bytes (type " +
                          std::to_string(protocol::kAttachedRef) + ", 8 bytes)");
  uint64_t off = 0, len = 0;
  for (int i = 3; i >= 0; --i) off = (off << 8) | b[static_cast<size_t>(i)];
  for (int i = 7; i >= 4; --i) len = (len << 8) | b[static_cast<size_t>(i)];
  if (off > attached.size() || len > attached.size() - off)
    f.fail(EINVAL, k, "refers to attached bytes " + std::to_string(off) + ".." + std::to_string(off + len) +
                          " but the frame attaches " + std::to_string(attached.size()));
  return std::string(attached.substr(off, len));
}

// Bytes as a MessagePack bin, or, with an attachment to collect them and
// at least kMinAttached of them, attached (by reference) and referred to.
Json bin(const std::string& s, Attached* attached) {
  if (!attached || s.size() < protocol::kMinAttached || attached->size > UINT32_MAX - s.size())
    return Json::binary(std::vector<uint8_t>(s.begin(), s.end()));
  std::vector<uint8_t> ref(8);
  const uint64_t off = attached->size, len = s.size();
  for (size_t i = 0; i < 4; ++i) ref[i] = static_cast<uint8_t>(off >> (8 * i)), ref[4 + i] = static_cast<uint8_t>(len >> (8 * i));
  attached->parts.emplace_back(s);
  attached->size += len;
  return Json::binary(std::move(ref), protocol::kAttachedRef);
}
Json timestamp(const Timestamp& t) { return t.now ? Json("now") : Json{{"sec", t.sec}, {"nsec", t.nsec}}; }

void encode_write(const Op& o, Json& j, Attached* attached) {
  if (o.offset) j["offset"] = o.offset;
  if (o.append) j["append"] = true;
  if (o.truncate) j["truncate"] = true;
  if (o.fd_index < 0) {
    j["data"] = bin(o.data, attached);
    return;
  }
  j["fd_index"] = o.fd_index;
  if (o.src_offset) j["src_offset"] = o.src_offset;
  if (o.length >= 0) j["length"] = o.length;
}

void encode_setattr(const Op& o, Json& j) {
  if (o.set_mode) j["mode"] = o.mode;
  if (o.set_uid) j["uid"] = o.uid;
  if (o.set_gid) j["gid"] = o.gid;
  if (o.set_atime) j["atime"] = timestamp(o.atime);
  if (o.set_mtime) j["mtime"] = timestamp(o.mtime);
}

}  // namespace

// ------------------------------------------------------------------ Fields

std::string Fields::name(const std::string& k) const {
  return s_.bare_names ? "\"" + k + "\"" : std::string(s_.key_word) + " \"" + k + "\"";
}

void Fields::bad(int err, const std::string& msg) const {
  throw FieldError{err, s_.where.empty() ? msg : s_.where + ": " + msg};
}

std::string Fields::str(const char* k, bool required) const {
  const Json* v = get(k);
  if (!v) {
    if (required) bad(EINVAL, "missing " + name(k));
    return {};
  }
  if (!v->is_string()) fail(EINVAL, k, "must be a string");
  std::string out = v->get<std::string>();
  if (s_.nul_checked && names_a_file(k) && out.find('\0') != std::string::npos) fail(EINVAL, k, "contains a NUL byte");
  return out;
}

bool Fields::flag(const char* k) const {
  const Json* v = get(k);
  if (!v) return false;
  if (!v->is_boolean()) fail(EINVAL, k, "must be true or false");
  return v->get<bool>();
}

int64_t Fields::integer(const char* k, int64_t dflt, int64_t lo, int64_t hi) const {
  const Json* v = get(k);
  if (!v) return dflt;
  if (!v->is_number_integer()) fail(EINVAL, k, "must be an integer");
  bool in = v->is_number_unsigned()
                ? v->get<uint64_t>() <= static_cast<uint64_t>(hi) && (lo <= 0 || v->get<uint64_t>() >= static_cast<uint64_t>(lo))
                : v->get<int64_t>() >= lo && v->get<int64_t>() <= hi;
  if (!in) {
    std::string range = std::to_string(lo) + ".." + std::to_string(hi);
    fail(EINVAL, k, s_.range_must_be_in ? "must be in " + range : "is out of range (" + range + ")");
  }
  return v->get<int64_t>();
}

uint64_t Fields::count(const char* k, uint64_t dflt) const {
  const Json* v = get(k);
  if (!v) return dflt;
  if (!v->is_number_unsigned()) fail(EINVAL, k, "must be a non-negative integer");
  return v->get<uint64_t>();
}

std::optional<Timestamp> Fields::time(const char* k) const {
  const Json* v = get(k);
  if (!v) return std::nullopt;
  Timestamp t;
  if (v->is_string() && *v == "now") {
    t.now = true;
    return t;
  }
  if (s_.time_seconds && v->is_number()) {
    double d = v->get<double>();
    if (!std::isfinite(d) || std::fabs(d) > 9.2e18) fail(EINVAL, k, "is out of range");
    t.sec = static_cast<int64_t>(std::floor(d));
    long ns = std::lround((d - std::floor(d)) * 1e9);
    if (ns >= 1000000000L) ++t.sec, ns = 0;
    t.nsec = static_cast<uint32_t>(ns);
    return t;
  }
  std::string form = std::string("must be \"now\"") + (s_.time_seconds ? ", seconds, or " : " or ") +
                     "{\"sec\":S,\"nsec\":N}";
  if (!v->is_object()) fail(EINVAL, k, form);
  for (auto it = v->begin(); it != v->end(); ++it)
    if (it.key() != "sec" && it.key() != "nsec") fail(EINVAL, k, form);
  auto sec = v->find("sec");
  if (sec == v->end() || !sec->is_number_integer()) fail(EINVAL, k, form);
  if (sec->is_number_unsigned() && sec->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    fail(EINVAL, k, "is out of range");
  t.sec = sec->get<int64_t>();
  auto ns = v->find("nsec");
  if (ns != v->end()) {
    if (!ns->is_number_unsigned() || ns->get<uint64_t>() > 999999999) bad(EINVAL, name(k) + ": nsec must be 0..999999999");
    t.nsec = ns->get<uint32_t>();
  }
  return t;
}

// ------------------------------------------------------------ the decoder

Result<Op> decode_op(const Json& j, const OpSyntax& syntax, const FieldStyle& style) {
  try {
    Fields f(j, style);
    std::string kind = f.str("op", true);
    auto k = op_kind_from_name(kind);
    if (!k)
      f.bad(EINVAL, "unknown op \"" + kind + "\" (mkdir, create, write, copy, truncate, setattr, setxattr, "
                    "removexattr, symlink, link, rename, remove)");
    only_keys(f, *k, syntax);
    Op op;
    op.kind = *k;
    op.path = syntax.path(f, false);
    decode_kind(f, syntax, op);
    return op;
  } catch (const FieldError& e) {
    return Status::error(e.err, e.msg);
  }
}

// ------------------------------------------------------------ the wire's syntax

FieldStyle wire_style(size_t index) {
  FieldStyle s;
  s.where = "op " + std::to_string(index);
  return s;
}

FieldStyle text_style() {
  FieldStyle s;
  s.key_word = "key";
  s.bare_names = true;
  s.range_must_be_in = true;
  s.nul_checked = true;
  s.time_seconds = true;
  return s;
}

const std::vector<std::string>& WireSyntax::keys_of(OpKind k) const {
  static const std::array<std::vector<std::string>, kOpKinds> table = {{
      {"mode", "parents"},                                                           // mkdir
      {"mode", "exclusive", "truncate"},                                             // create
      {"offset", "append", "truncate", "data", "fd_index", "src_offset", "length"},  // write
      {"path2", "src_offset", "offset", "length"},                                   // copy
      {"size"},                                                                      // truncate
      {"mode", "uid", "gid", "atime", "mtime"},                                      // setattr
      {"name", "value", "xattr_flags"},                                              // setxattr
      {"name"},                                                                      // removexattr
      {"target"},                                                                    // symlink
      {"path2"},                                                                     // link
      {"path2", "rename_flags"},                                                     // rename
      {"recursive"},                                                                 // remove
  }};
  return table[static_cast<size_t>(k)];
}

std::string WireSyntax::path(const Fields& f, bool second) const {
  const char* k = second ? "path2" : "path";
  std::string p = f.str(k, true);
  Status st = check_path(p);
  if (!st) f.fail(st.err(), k, st.what());
  return p;
}

std::optional<uint32_t> WireSyntax::mode(const Fields& f) const {
  if (!f.has("mode")) return std::nullopt;
  return static_cast<uint32_t>(f.integer("mode", 0, 0, 07777));
}

uint32_t WireSyntax::new_mode(OpKind k, std::optional<uint32_t> given) const {
  return given.value_or(k == OpKind::Mkdir ? 0755 : 0644);
}

void WireSyntax::write_source(const Fields& f, Op& op) const {
  if (op.append && op.offset != 0) f.bad(EINVAL, "both \"append\" and \"offset\"");
  op.data = wire_bytes(f, "data", attached_);
  op.fd_index = static_cast<int32_t>(f.integer("fd_index", -1, -1, INT32_MAX));
  if (op.fd_index >= 0 && static_cast<size_t>(op.fd_index) >= nfds_)
    f.fail(EBADF, "fd_index",
           "is " + std::to_string(op.fd_index) + " but " + std::to_string(nfds_) + " descriptor(s) were passed");
  if (op.fd_index >= 0 && f.has("data")) f.bad(EINVAL, "both \"data\" and \"fd_index\"");
  if (op.fd_index < 0 && (f.has("src_offset") || f.has("length")))
    f.bad(EINVAL, "\"src_offset\" and \"length\" need \"fd_index\"");
}

std::string WireSyntax::xattr_value(const Fields& f) const { return wire_bytes(f, "value", attached_); }

int32_t WireSyntax::xattr_flags(const Fields& f) const {
  auto fl = static_cast<int32_t>(f.integer("xattr_flags", 0, 0, XATTR_CREATE | XATTR_REPLACE));
  if (fl == (XATTR_CREATE | XATTR_REPLACE)) f.fail(EINVAL, "xattr_flags", "cannot be both create and replace");
  return fl;
}

uint32_t WireSyntax::rename_flags(const Fields& f) const {
  auto fl = static_cast<uint32_t>(f.integer("rename_flags", 0, 0, RENAME_NOREPLACE | RENAME_EXCHANGE));
  if (fl == (RENAME_NOREPLACE | RENAME_EXCHANGE)) f.fail(EINVAL, "rename_flags", "cannot be both noreplace and exchange");
  return fl;
}

// ------------------------------------------------------------ paths, encoder

Status check_path(const std::string& p) {
  if (p.empty()) return Status::error(EINVAL, "empty path");
  if (p.size() >= PATH_MAX) return Status::error(ENAMETOOLONG, "path of " + std::to_string(p.size()) + " bytes is too long");
  if (p.find('\0') != std::string::npos) return Status::error(EINVAL, "NUL in path");
  if (p[0] == '/') return Status::error(EINVAL, "\"" + p + "\" is absolute (paths are relative to the mount)");
  for (size_t i = 0; i <= p.size();) {
    size_t j = p.find('/', i);
    if (j == std::string::npos) j = p.size();
    std::string_view c(p.data() + i, j - i);
    if (c.empty() || c == ".") return Status::error(EINVAL, "\"" + p + "\" has an empty or \".\" component");
    if (c == "..") return Status::error(EXDEV, "\"" + p + "\" leads outside the mount (\"..\")");
    if (c.size() > NAME_MAX) return Status::error(ENAMETOOLONG, "\"" + p + "\": a name is longer than NAME_MAX");
    i = j + 1;
  }
  return {};
}

Json encode_op(const Op& o, Attached* attached) {
  Json j = Json::object();  // by assignment: cheaper than an initializer list, the same bytes
  j["op"] = op_kind_name(o.kind);
  j["path"] = o.path;
  switch (o.kind) {
    case OpKind::Mkdir:
      j["mode"] = o.mode;
      if (o.parents) j["parents"] = true;
      break;
    case OpKind::Create:
      j["mode"] = o.mode;
      if (o.exclusive) j["exclusive"] = true;
      if (o.truncate) j["truncate"] = true;
      break;
    case OpKind::Write: encode_write(o, j, attached); break;
    case OpKind::Copy:
      j["path2"] = o.path2;
      if (o.src_offset) j["src_offset"] = o.src_offset;
      if (o.offset) j["offset"] = o.offset;
      if (o.length >= 0) j["length"] = o.length;
      break;
    case OpKind::Truncate: j["size"] = o.size; break;
    case OpKind::Setattr: encode_setattr(o, j); break;
    case OpKind::Setxattr:
      j["name"] = o.name;
      j["value"] = bin(o.value, attached);
      if (o.xattr_flags) j["xattr_flags"] = o.xattr_flags;
      break;
    case OpKind::Removexattr: j["name"] = o.name; break;
    case OpKind::Symlink: j["target"] = o.target; break;
    case OpKind::Link: j["path2"] = o.path2; break;
    case OpKind::Rename:
      j["path2"] = o.path2;
      if (o.rename_flags) j["rename_flags"] = o.rename_flags;
      break;
    case OpKind::Remove:
      if (o.recursive) j["recursive"] = true;
      break;
  }
  return j;
}

}  // namespace tcfs::control
