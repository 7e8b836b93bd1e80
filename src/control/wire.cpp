// control/wire.cpp — protocol v1 codec: compounds, replies, progress
// (framing and the MessagePack structure check are in frame.cpp).
#include "control/wire.h"

#include <linux/limits.h>
#include <sys/xattr.h>

#include <algorithm>
#include <array>
#include <cstdio>  // RENAME_NOREPLACE, RENAME_EXCHANGE
#include <cstring>
#include <set>

namespace tcfs::control {
namespace {

struct Bad {
  int err;
  std::string msg;
};
[[noreturn]] void bad(int err, std::string msg) { throw Bad{err, std::move(msg)}; }

Json bin(const std::string& s) { return Json::binary(std::vector<uint8_t>(s.begin(), s.end())); }

// The fields each kind accepts besides "op" and "path" (compound.h).
const std::vector<std::string>& fields_of(OpKind k) {
  static const std::array<std::vector<std::string>, 12> table = {{
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

// Typed access to one op's map; every error names the op and the field.
class Fields {
 public:
  Fields(const Json& j, size_t index) : j_(j), where_("op " + std::to_string(index)) {}

  const std::string& where() const { return where_; }
  [[noreturn]] void fail(int err, const std::string& field, const std::string& why) const {
    bad(err, where_ + ": field \"" + field + "\" " + why);
  }
  const Json* get(const char* k) const {
    auto it = j_.find(k);
    return it == j_.end() ? nullptr : &*it;
  }
  bool has(const char* k) const { return get(k) != nullptr; }

  // Every key is "op", "path" or a field of kind k.
  void only_fields_of(OpKind k) const {
    const auto& allowed = fields_of(k);
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      const std::string& key = it.key();
      if (key == "op" || key == "path" || std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
      static const std::set<std::string> any = {"path2", "target", "mode", "exclusive", "truncate", "parents",
                                                "recursive", "offset", "append", "data", "fd_index", "src_offset",
                                                "length", "size", "uid", "gid", "atime", "mtime", "name", "value",
                                                "xattr_flags", "rename_flags"};
      if (any.count(key)) fail(EINVAL, key, std::string("does not apply to ") + op_kind_name(k));
      bad(EINVAL, where_ + ": unknown field \"" + key + "\"");
    }
  }

  std::string str(const char* k, bool required) const {
    const Json* v = get(k);
    if (!v) {
      if (required) bad(EINVAL, where_ + ": missing field \"" + k + "\"");
      return {};
    }
    if (!v->is_string()) fail(EINVAL, k, "must be a string");
    return v->get<std::string>();
  }
  std::string bytes(const char* k) const {
    const Json* v = get(k);
    if (!v) return {};
    if (v->is_binary()) return std::string(v->get_binary().begin(), v->get_binary().end());
    if (v->is_string()) return v->get<std::string>();
    fail(EINVAL, k, "must be bytes or a string");
  }
  template <typename T>
  T num(const char* k, T dflt, T lo = std::numeric_limits<T>::min(), T hi = std::numeric_limits<T>::max()) const {
    const Json* v = get(k);
    if (!v) return dflt;
    if (!v->is_number_integer()) fail(EINVAL, k, "must be an integer");
    const int64_t lo64 = static_cast<int64_t>(lo);  // lo >= INT64_MIN for every T used here
    const uint64_t hi64 = static_cast<uint64_t>(hi);  // hi >= 0 likewise
    bool ok;
    if (v->is_number_unsigned()) {
      uint64_t u = v->get<uint64_t>();
      ok = u <= hi64 && (lo64 <= 0 || u >= static_cast<uint64_t>(lo64));
    } else {
      int64_t s = v->get<int64_t>();
      ok = s >= lo64 && (s < 0 || static_cast<uint64_t>(s) <= hi64);
    }
    if (!ok) fail(EINVAL, k, "is out of range (" + std::to_string(lo) + ".." + std::to_string(hi) + ")");
    return v->is_number_unsigned() ? static_cast<T>(v->get<uint64_t>()) : static_cast<T>(v->get<int64_t>());
  }
  bool flag(const char* k) const {
    const Json* v = get(k);
    if (!v) return false;
    if (!v->is_boolean()) fail(EINVAL, k, "must be true or false");
    return v->get<bool>();
  }
  bool time(const char* k, Timestamp* t) const {
    const Json* v = get(k);
    if (!v) return false;
    *t = Timestamp{};
    if (v->is_string() && *v == "now") {
      t->now = true;
      return true;
    }
    const char* form = "must be \"now\" or {\"sec\":S,\"nsec\":N}";
    if (!v->is_object()) fail(EINVAL, k, form);
    for (auto it = v->begin(); it != v->end(); ++it)
      if (it.key() != "sec" && it.key() != "nsec") fail(EINVAL, k, form);
    auto sec = v->find("sec");
    if (sec == v->end() || !sec->is_number_integer()) fail(EINVAL, k, form);
    if (sec->is_number_unsigned() && sec->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      fail(EINVAL, k, "is out of range");
    t->sec = sec->get<int64_t>();
    auto ns = v->find("nsec");
    if (ns != v->end()) {
      if (!ns->is_number_unsigned() || ns->get<uint64_t>() > 999999999) fail(EINVAL, k, "nsec must be 0..999999999");
      t->nsec = ns->get<uint32_t>();
    }
    return true;
  }
  std::string path(const char* k, bool required) const {
    std::string p = str(k, required);
    if (!required && !has(k)) return p;
    Status st = check_path(p);
    if (!st) fail(st.err(), k, st.what());
    return p;
  }

 private:
  const Json& j_;
  std::string where_;
};

void decode_write(const Fields& f, Op& op, size_t nfds) {
  op.offset = f.num<int64_t>("offset", 0, 0);
  op.append = f.flag("append");
  op.truncate = f.flag("truncate");
  if (op.append && op.offset != 0) bad(EINVAL, f.where() + ": both \"append\" and \"offset\"");
  op.data = f.bytes("data");
  op.fd_index = f.num<int32_t>("fd_index", -1, -1);
  if (op.fd_index >= 0 && static_cast<size_t>(op.fd_index) >= nfds)
    bad(EBADF, f.where() + ": field \"fd_index\" is " + std::to_string(op.fd_index) + " but " + std::to_string(nfds) +
                   " descriptor(s) were passed");
  if (op.fd_index >= 0 && f.has("data")) bad(EINVAL, f.where() + ": both \"data\" and \"fd_index\"");
  if (op.fd_index < 0 && (f.has("src_offset") || f.has("length")))
    bad(EINVAL, f.where() + ": \"src_offset\" and \"length\" need \"fd_index\"");
  op.src_offset = f.num<int64_t>("src_offset", 0, 0);
  op.length = f.num<int64_t>("length", -1, -1);
}

void decode_setattr(const Fields& f, Op& op) {
  op.set_mode = f.has("mode");
  op.mode = f.num<uint32_t>("mode", 0, 0, 07777);
  op.set_uid = f.has("uid");
  op.uid = f.num<uint32_t>("uid", 0);
  op.set_gid = f.has("gid");
  op.gid = f.num<uint32_t>("gid", 0);
  op.set_atime = f.time("atime", &op.atime);
  op.set_mtime = f.time("mtime", &op.mtime);
  if (!op.set_mode && !op.set_uid && !op.set_gid && !op.set_atime && !op.set_mtime)
    bad(EINVAL, f.where() + ": setattr sets nothing (give mode, uid, gid, atime or mtime)");
}

void decode_xattr(const Fields& f, Op& op) {
  op.name = f.str("name", true);
  if (op.name.empty() || op.name.size() > XATTR_NAME_MAX || op.name.find('\0') != std::string::npos)
    f.fail(op.name.size() > XATTR_NAME_MAX ? ERANGE : EINVAL, "name", "is not a valid xattr name");
  if (op.kind == OpKind::Removexattr) return;
  op.value = f.bytes("value");
  if (op.value.size() > XATTR_SIZE_MAX) f.fail(E2BIG, "value", "is larger than XATTR_SIZE_MAX");
  op.xattr_flags = f.num<int32_t>("xattr_flags", 0, 0, XATTR_CREATE | XATTR_REPLACE);
  if (op.xattr_flags == (XATTR_CREATE | XATTR_REPLACE)) f.fail(EINVAL, "xattr_flags", "cannot be both create and replace");
}

void decode_kind(const Fields& f, Op& op, size_t nfds) {
  switch (op.kind) {
    case OpKind::Mkdir:
      op.mode = f.num<uint32_t>("mode", 0755, 0, 07777);
      op.parents = f.flag("parents");
      break;
    case OpKind::Create:
      op.mode = f.num<uint32_t>("mode", 0644, 0, 07777);
      op.exclusive = f.flag("exclusive");
      op.truncate = f.flag("truncate");
      break;
    case OpKind::Write: decode_write(f, op, nfds); break;
    case OpKind::Copy:
      op.path2 = f.path("path2", true);
      op.src_offset = f.num<int64_t>("src_offset", 0, 0);
      op.offset = f.num<int64_t>("offset", 0, 0);
      op.length = f.num<int64_t>("length", -1, -1);
      break;
    case OpKind::Truncate:
      if (!f.has("size")) bad(EINVAL, f.where() + ": missing field \"size\"");
      op.size = f.num<uint64_t>("size", 0, 0, static_cast<uint64_t>(INT64_MAX));
      break;
    case OpKind::Setattr: decode_setattr(f, op); break;
    case OpKind::Setxattr:
    case OpKind::Removexattr: decode_xattr(f, op); break;
    case OpKind::Symlink:
      op.target = f.str("target", true);
      if (op.target.empty() || op.target.size() >= PATH_MAX || op.target.find('\0') != std::string::npos)
        f.fail(op.target.size() >= PATH_MAX ? ENAMETOOLONG : EINVAL, "target", "must be 1..PATH_MAX-1 bytes, no NUL");
      break;
    case OpKind::Link: op.path2 = f.path("path2", true); break;
    case OpKind::Rename:
      op.path2 = f.path("path2", true);
      op.rename_flags = f.num<uint32_t>("rename_flags", 0, 0, RENAME_NOREPLACE | RENAME_EXCHANGE);
      if (op.rename_flags == (RENAME_NOREPLACE | RENAME_EXCHANGE))
        f.fail(EINVAL, "rename_flags", "cannot be both noreplace and exchange");
      break;
    case OpKind::Remove: op.recursive = f.flag("recursive"); break;
  }
}

Op decode_op(const Json& j, size_t i, size_t nfds) {
  if (!j.is_object()) bad(EINVAL, "op " + std::to_string(i) + ": not a map");
  Fields f(j, i);
  std::string kind = f.str("op", true);
  auto k = op_kind_from_name(kind);
  if (!k) bad(EINVAL, f.where() + ": unknown op \"" + kind + "\"");
  f.only_fields_of(*k);
  Op op;
  op.kind = *k;
  op.path = f.path("path", true);
  decode_kind(f, op, nfds);
  return op;
}

Json timestamp(const Timestamp& t) { return t.now ? Json("now") : Json{{"sec", t.sec}, {"nsec", t.nsec}}; }

void encode_write(const Op& o, Json& j) {
  if (o.offset) j["offset"] = o.offset;
  if (o.append) j["append"] = true;
  if (o.truncate) j["truncate"] = true;
  if (o.fd_index < 0) {
    j["data"] = bin(o.data);
    return;
  }
  j["fd_index"] = o.fd_index;
  if (o.src_offset) j["src_offset"] = o.src_offset;
  if (o.length >= 0) j["length"] = o.length;
}

Json encode_op(const Op& o) {
  Json j = {{"op", op_kind_name(o.kind)}, {"path", o.path}};
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
    case OpKind::Write: encode_write(o, j); break;
    case OpKind::Copy:
      j["path2"] = o.path2;
      if (o.src_offset) j["src_offset"] = o.src_offset;
      if (o.offset) j["offset"] = o.offset;
      if (o.length >= 0) j["length"] = o.length;
      break;
    case OpKind::Truncate: j["size"] = o.size; break;
    case OpKind::Setattr:
      if (o.set_mode) j["mode"] = o.mode;
      if (o.set_uid) j["uid"] = o.uid;
      if (o.set_gid) j["gid"] = o.gid;
      if (o.set_atime) j["atime"] = timestamp(o.atime);
      if (o.set_mtime) j["mtime"] = timestamp(o.mtime);
      break;
    case OpKind::Setxattr:
      j["name"] = o.name;
      j["value"] = bin(o.value);
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

bool request_flag(const Json& req, const char* k, bool dflt) {
  auto it = req.find(k);
  if (it == req.end()) return dflt;
  if (!it->is_boolean()) bad(EINVAL, std::string("request field \"") + k + "\" must be true or false");
  return it->get<bool>();
}

}  // namespace

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

uint64_t max_request_items(const Limits& lim) {
  // A request map, its ops array, and per op a map of at most 16 fields
  // (keys and values, a time map counting 5): 64 values per op is ample.
  uint64_t ops = std::min<uint64_t>(lim.max_ops, std::numeric_limits<uint64_t>::max() / 128);
  return 64 + ops * 64;
}

Json encode_compound(const Compound& c, bool progress) {
  Json ops = Json::array();
  for (const auto& o : c.ops) ops.push_back(encode_op(o));
  return {{"v", protocol::kVersion}, {"type", "compound"}, {"txn", c.options.txn},
          {"sync", c.options.sync},  {"progress", progress}, {"ops", std::move(ops)}};
}

Result<Compound> decode_compound(const Json& req, const Limits& lim, size_t nfds) {
  try {
    if (!req.is_object()) bad(EPROTO, "request is not a map");
    static const std::set<std::string> known = {"v", "type", "txn", "sync", "progress", "ops"};
    for (auto it = req.begin(); it != req.end(); ++it)
      if (!known.count(it.key())) bad(EINVAL, "unknown request field \"" + it.key() + "\"");
    Compound c;
    c.options.txn = request_flag(req, "txn", true);
    c.options.sync = request_flag(req, "sync", true);
    request_flag(req, "progress", false);
    auto ops = req.find("ops");
    if (ops == req.end() || !ops->is_array()) bad(EINVAL, "request has no \"ops\" array");
    if (ops->size() > lim.max_ops)
      bad(E2BIG, std::to_string(ops->size()) + " operations, more than the limit of " + std::to_string(lim.max_ops));
    if (nfds > lim.max_fds)
      bad(E2BIG, std::to_string(nfds) + " descriptors, more than the limit of " + std::to_string(lim.max_fds));
    uint64_t inline_bytes = 0;
    c.ops.reserve(ops->size());
    for (size_t i = 0; i < ops->size(); ++i) {
      c.ops.push_back(decode_op((*ops)[i], i, nfds));
      inline_bytes += c.ops.back().data.size() + c.ops.back().value.size();
      if (inline_bytes > lim.max_inline_bytes)
        bad(E2BIG, "op " + std::to_string(i) + ": inline data exceeds the limit of " +
                       std::to_string(lim.max_inline_bytes) + " bytes per compound");
    }
    return c;
  } catch (const Bad& b) {
    return Status::error(b.err, b.msg);
  } catch (const std::exception& e) {
    return Status::error(EINVAL, std::string("malformed request: ") + e.what());
  }
}

Json encode_reply(const CompoundReply& r) {
  Json results = Json::array();
  for (const auto& x : r.results) results.push_back({{"errno", x.err}, {"bytes", x.bytes}, {"ran", x.ran}});
  const char* ename = r.err ? strerrorname_np(r.err) : nullptr;
  return {{"v", protocol::kVersion},
          {"type", "reply"},
          {"outcome", outcome_name(r.outcome)},
          {"failed_op", r.failed_op},
          {"errno", r.err},
          {"error", ename ? ename : ""},
          {"message", r.message},
          {"txn", r.txn_id},
          {"results", std::move(results)}};
}

Result<CompoundReply> decode_reply(const Json& j) {
  try {
    if (j.value("type", "") != "reply") return Status::error(EPROTO, "expected a reply frame");
    CompoundReply r;
    std::string o = j.at("outcome");
    if (o == "committed") r.outcome = Outcome::Committed;
    else if (o == "rolled_back") r.outcome = Outcome::RolledBack;
    else if (o == "partial") r.outcome = Outcome::Partial;
    else if (o == "rejected") r.outcome = Outcome::Rejected;
    else return Status::error(EPROTO, "unknown outcome \"" + o + "\"");
    r.failed_op = j.value("failed_op", -1);
    r.err = j.value("errno", 0);
    r.message = j.value("message", "");
    r.txn_id = j.value("txn", uint64_t{0});
    if (j.contains("results"))
      for (const auto& x : j.at("results"))
        r.results.push_back({x.at("errno").get<int>(), x.at("bytes").get<int64_t>(), x.at("ran").get<bool>()});
    return r;
  } catch (const std::exception& e) {
    return Status::error(EPROTO, std::string("malformed reply: ") + e.what());
  }
}

Json encode_progress(size_t done, size_t total) {
  return {{"v", protocol::kVersion}, {"type", "progress"}, {"done", done}, {"total", total}};
}

Json rejection(int err, const std::string& message) {
  CompoundReply r;
  r.outcome = Outcome::Rejected;
  r.err = err;
  r.message = message;
  return encode_reply(r);
}

}  // namespace tcfs::control
