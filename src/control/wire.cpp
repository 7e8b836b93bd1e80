// control/wire.cpp — protocol v1 codec and framing.
#include "control/wire.h"

#include <linux/limits.h>
#include <sys/socket.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <set>

namespace tcfs::control {
namespace {

struct Bad {
  int err;
  std::string msg;
};
[[noreturn]] void bad(int err, std::string msg) { throw Bad{err, std::move(msg)}; }

std::string bin_or_str(const Json& j, const std::string& where) {
  if (j.is_binary()) return std::string(j.get_binary().begin(), j.get_binary().end());
  if (j.is_string()) return j.get<std::string>();
  bad(EINVAL, where + ": expected bytes or a string");
}

Json bin(const std::string& s) { return Json::binary(std::vector<uint8_t>(s.begin(), s.end())); }

// Typed getters that name the op and field on error.
class Fields {
 public:
  Fields(const Json& j, size_t index) : j_(j), where_("op " + std::to_string(index)) {}
  const Json* get(const char* k) {
    seen_.insert(k);
    auto it = j_.find(k);
    return it == j_.end() ? nullptr : &*it;
  }
  std::string str(const char* k, bool required) {
    const Json* v = get(k);
    if (!v) {
      if (required) bad(EINVAL, where_ + ": missing field \"" + k + "\"");
      return {};
    }
    if (!v->is_string()) bad(EINVAL, where_ + ": field \"" + k + "\" must be a string");
    return v->get<std::string>();
  }
  std::string bytes(const char* k) {
    const Json* v = get(k);
    return v ? bin_or_str(*v, where_ + ": field \"" + std::string(k) + "\"") : std::string();
  }
  template <typename T>
  T num(const char* k, T dflt) {
    const Json* v = get(k);
    if (!v) return dflt;
    if (!v->is_number_integer()) bad(EINVAL, where_ + ": field \"" + k + "\" must be an integer");
    if (v->is_number_unsigned()) {
      auto u = v->get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<T>::max()))
        bad(EINVAL, where_ + ": field \"" + k + "\" out of range");
      return static_cast<T>(u);
    }
    auto s = v->get<int64_t>();
    if (s < static_cast<int64_t>(std::numeric_limits<T>::min()) || (s > 0 && static_cast<uint64_t>(s) > static_cast<uint64_t>(std::numeric_limits<T>::max())))
      bad(EINVAL, where_ + ": field \"" + k + "\" out of range");
    return static_cast<T>(s);
  }
  bool flag(const char* k) {
    const Json* v = get(k);
    if (!v) return false;
    if (!v->is_boolean()) bad(EINVAL, where_ + ": field \"" + k + "\" must be true or false");
    return v->get<bool>();
  }
  std::optional<Timestamp> time(const char* k) {
    const Json* v = get(k);
    if (!v) return std::nullopt;
    Timestamp t;
    if (v->is_string() && *v == "now") {
      t.now = true;
      return t;
    }
    if (!v->is_object() || !v->contains("sec") || !(*v)["sec"].is_number_integer())
      bad(EINVAL, where_ + ": field \"" + k + "\" must be \"now\" or {\"sec\":S,\"nsec\":N}");
    t.sec = (*v)["sec"].get<int64_t>();
    if (v->contains("nsec")) {
      if (!(*v)["nsec"].is_number_unsigned() || (*v)["nsec"].get<uint64_t>() > 999999999)
        bad(EINVAL, where_ + ": field \"" + k + "\": nsec must be 0..999999999");
      t.nsec = (*v)["nsec"].get<uint32_t>();
    }
    return t;
  }
  void path(const char* k, std::string& out, bool required) {
    out = str(k, required);
    if (out.empty() && !required) return;
    Status st = check_path(out);
    if (!st) bad(st.err(), where_ + ": field \"" + k + "\": " + st.what());
  }
  void no_unknown() {
    for (auto it = j_.begin(); it != j_.end(); ++it)
      if (!seen_.count(it.key())) bad(EINVAL, where_ + ": unknown field \"" + it.key() + "\"");
  }
  const std::string& where() const { return where_; }

 private:
  const Json& j_;
  std::string where_;
  std::set<std::string> seen_;
};

Op decode_op(const Json& j, size_t i, size_t nfds, uint64_t& inline_bytes) {
  if (!j.is_object()) bad(EINVAL, "op " + std::to_string(i) + ": not a map");
  Fields f(j, i);
  std::string kind = f.str("op", true);
  auto k = op_kind_from_name(kind);
  if (!k) bad(EINVAL, f.where() + ": unknown op \"" + kind + "\"");
  Op op;
  op.kind = *k;
  f.path("path", op.path, true);
  bool two = op.kind == OpKind::Copy || op.kind == OpKind::Link || op.kind == OpKind::Rename;
  f.path("path2", op.path2, two);
  op.target = f.str("target", op.kind == OpKind::Symlink);
  if (op.target.size() >= PATH_MAX) bad(ENAMETOOLONG, f.where() + ": symlink target too long");
  if (op.target.find('\0') != std::string::npos) bad(EINVAL, f.where() + ": NUL in symlink target");
  op.mode = f.num<uint32_t>("mode", op.kind == OpKind::Mkdir ? 0755u : 0644u);
  if (op.mode > 07777) bad(EINVAL, f.where() + ": mode must be at most 07777");
  op.exclusive = f.flag("exclusive");
  op.truncate = f.flag("truncate");
  op.parents = f.flag("parents");
  op.recursive = f.flag("recursive");
  op.offset = f.num<int64_t>("offset", 0);
  op.append = f.flag("append");
  op.data = f.bytes("data");
  inline_bytes += op.data.size();
  op.fd_index = f.num<int32_t>("fd_index", -1);
  if (op.fd_index >= 0 && static_cast<size_t>(op.fd_index) >= nfds)
    bad(EBADF, f.where() + ": fd_index " + std::to_string(op.fd_index) + " but " + std::to_string(nfds) +
                   " descriptors were passed");
  if (op.fd_index >= 0 && !op.data.empty()) bad(EINVAL, f.where() + ": both data and fd_index");
  op.src_offset = f.num<int64_t>("src_offset", 0);
  op.length = f.num<int64_t>("length", -1);
  op.size = f.num<uint64_t>("size", 0);
  if (op.offset < 0 || op.src_offset < 0) bad(EINVAL, f.where() + ": negative offset");
  if (op.kind == OpKind::Truncate && !f.get("size")) bad(EINVAL, f.where() + ": missing field \"size\"");
  if (op.kind == OpKind::Setattr) {
    op.set_mode = f.get("mode") != nullptr;
    if (const Json* u = f.get("uid")) op.set_uid = u != nullptr;
    if (const Json* g = f.get("gid")) op.set_gid = g != nullptr;
    op.uid = f.num<uint32_t>("uid", 0);
    op.gid = f.num<uint32_t>("gid", 0);
    if (auto t = f.time("atime")) op.set_atime = true, op.atime = *t;
    if (auto t = f.time("mtime")) op.set_mtime = true, op.mtime = *t;
    if (!op.set_mode && !op.set_uid && !op.set_gid && !op.set_atime && !op.set_mtime)
      bad(EINVAL, f.where() + ": setattr sets nothing (give mode, uid, gid, atime or mtime)");
  }
  bool xa = op.kind == OpKind::Setxattr || op.kind == OpKind::Removexattr;
  op.name = f.str("name", xa);
  if (xa && (op.name.empty() || op.name.size() > XATTR_NAME_MAX)) bad(EINVAL, f.where() + ": bad xattr name");
  op.value = f.bytes("value");
  if (op.value.size() > XATTR_SIZE_MAX) bad(E2BIG, f.where() + ": xattr value too large");
  inline_bytes += op.value.size();
  op.xattr_flags = f.num<int32_t>("xattr_flags", 0);
  if (op.xattr_flags & ~(XATTR_CREATE | XATTR_REPLACE)) bad(EINVAL, f.where() + ": bad xattr_flags");
  op.rename_flags = f.num<uint32_t>("rename_flags", 0);
  f.no_unknown();
  return op;
}

Json encode_op(const Op& o) {
  Json j = {{"op", op_kind_name(o.kind)}, {"path", o.path}};
  if (!o.path2.empty()) j["path2"] = o.path2;
  if (!o.target.empty()) j["target"] = o.target;
  switch (o.kind) {
    case OpKind::Mkdir: j["mode"] = o.mode; if (o.parents) j["parents"] = true; break;
    case OpKind::Create:
      j["mode"] = o.mode;
      if (o.exclusive) j["exclusive"] = true;
      if (o.truncate) j["truncate"] = true;
      break;
    case OpKind::Write:
      if (o.offset) j["offset"] = o.offset;
      if (o.append) j["append"] = true;
      if (o.truncate) j["truncate"] = true;
      if (o.fd_index >= 0) {
        j["fd_index"] = o.fd_index;
        if (o.src_offset) j["src_offset"] = o.src_offset;
        if (o.length >= 0) j["length"] = o.length;
      } else {
        j["data"] = bin(o.data);
      }
      break;
    case OpKind::Copy:
      if (o.src_offset) j["src_offset"] = o.src_offset;
      if (o.offset) j["offset"] = o.offset;
      if (o.length >= 0) j["length"] = o.length;
      break;
    case OpKind::Truncate: j["size"] = o.size; break;
    case OpKind::Setattr: {
      auto ts = [](const Timestamp& t) { return t.now ? Json("now") : Json{{"sec", t.sec}, {"nsec", t.nsec}}; };
      if (o.set_mode) j["mode"] = o.mode;
      if (o.set_uid) j["uid"] = o.uid;
      if (o.set_gid) j["gid"] = o.gid;
      if (o.set_atime) j["atime"] = ts(o.atime);
      if (o.set_mtime) j["mtime"] = ts(o.mtime);
      break;
    }
    case OpKind::Setxattr:
      j["name"] = o.name;
      j["value"] = bin(o.value);
      if (o.xattr_flags) j["xattr_flags"] = o.xattr_flags;
      break;
    case OpKind::Removexattr: j["name"] = o.name; break;
    case OpKind::Rename: if (o.rename_flags) j["rename_flags"] = o.rename_flags; break;
    case OpKind::Remove: if (o.recursive) j["recursive"] = true; break;
    default: break;
  }
  return j;
}

}  // namespace

std::string to_bytes(const Json& j) {
  auto v = Json::to_msgpack(j);
  return std::string(v.begin(), v.end());
}

Result<Json> from_bytes(std::string_view bytes) {
  try {
    return Json::from_msgpack(bytes.begin(), bytes.end());
  } catch (const std::exception& e) {
    return Status::error(EPROTO, std::string("not a MessagePack message: ") + e.what());
  }
}

Status check_path(const std::string& p) {
  if (p.empty()) return Status::error(EINVAL, "empty path");
  if (p.size() >= PATH_MAX) return Status::error(ENAMETOOLONG, "path too long");
  if (p.find('\0') != std::string::npos) return Status::error(EINVAL, "NUL in path");
  if (p[0] == '/') return Status::error(EINVAL, "\"" + p + "\" is absolute (paths are relative to the mount)");
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string::npos) j = p.size();
    std::string c = p.substr(i, j - i);
    if (c.empty() || c == ".")
      return Status::error(EINVAL, "\"" + p + "\" has an empty or \".\" component");
    if (c == "..") return Status::error(EXDEV, "\"" + p + "\" leads outside the mount (\"..\")");
    if (c.size() > NAME_MAX) return Status::error(ENAMETOOLONG, "\"" + p + "\": a name is too long");
    i = j + 1;
  }
  return {};
}

Json encode_compound(const Compound& c, bool progress) {
  Json ops = Json::array();
  for (const auto& o : c.ops) ops.push_back(encode_op(o));
  return {{"v", protocol::kVersion}, {"type", "compound"}, {"txn", c.options.txn},
          {"sync", c.options.sync}, {"progress", progress}, {"ops", ops}};
}

Result<Compound> decode_compound(const Json& req, const Limits& lim, size_t nfds) {
  try {
    Compound c;
    for (auto it = req.begin(); it != req.end(); ++it) {
      static const std::set<std::string> known = {"v", "type", "txn", "sync", "progress", "ops"};
      if (!known.count(it.key())) bad(EINVAL, "unknown request field \"" + it.key() + "\"");
    }
    auto flag = [&](const char* k, bool dflt) {
      if (!req.contains(k)) return dflt;
      if (!req[k].is_boolean()) bad(EINVAL, std::string("request field \"") + k + "\" must be true or false");
      return req[k].get<bool>();
    };
    c.options.txn = flag("txn", true);
    c.options.sync = flag("sync", true);
    if (!req.contains("ops") || !req["ops"].is_array()) bad(EINVAL, "request has no \"ops\" array");
    const Json& ops = req["ops"];
    if (ops.size() > lim.max_ops)
      bad(E2BIG, std::to_string(ops.size()) + " operations, more than the limit of " + std::to_string(lim.max_ops));
    if (nfds > lim.max_fds)
      bad(E2BIG, std::to_string(nfds) + " descriptors, more than the limit of " + std::to_string(lim.max_fds));
    uint64_t inline_bytes = 0;
    c.ops.reserve(ops.size());
    for (size_t i = 0; i < ops.size(); ++i) {
      c.ops.push_back(decode_op(ops[i], i, nfds, inline_bytes));
      if (inline_bytes > lim.max_inline_bytes)
        bad(E2BIG, "inline data exceeds the limit of " + std::to_string(lim.max_inline_bytes) + " bytes at op " +
                       std::to_string(i));
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
  return {{"v", protocol::kVersion},
          {"type", "reply"},
          {"outcome", outcome_name(r.outcome)},
          {"failed_op", r.failed_op},
          {"errno", r.err},
          {"error", r.err ? strerrorname_np(r.err) ? strerrorname_np(r.err) : "" : ""},
          {"message", r.message},
          {"txn", r.txn_id},
          {"results", results}};
}

Result<CompoundReply> decode_reply(const Json& j) {
  try {
    CompoundReply r;
    std::string o = j.at("outcome");
    if (o == "committed") r.outcome = Outcome::Committed;
    else if (o == "rolled_back") r.outcome = Outcome::RolledBack;
    else if (o == "partial") r.outcome = Outcome::Partial;
    else if (o == "rejected") r.outcome = Outcome::Rejected;
    else return Status::error(EPROTO, "unknown outcome " + o);
    r.failed_op = j.value("failed_op", -1);
    r.err = j.value("errno", 0);
    r.message = j.value("message", "");
    r.txn_id = j.value("txn", uint64_t{0});
    if (j.contains("results"))
      for (const auto& x : j["results"]) r.results.push_back({x.at("errno"), x.at("bytes"), x.at("ran")});
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

Status write_frame(int sock, const std::string& payload, const std::vector<int>& fds) {
  std::string buf(4, '\0');
  uint32_t n = static_cast<uint32_t>(payload.size());
  for (int i = 0; i < 4; ++i) buf[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  buf += payload;
  size_t off = 0, fd_off = 0;
  while (off < buf.size()) {
    size_t nfd = std::min<size_t>(protocol::kMaxFds, fds.size() - fd_off);
    // While descriptors remain, send one byte per message so each carries a batch.
    size_t len = fd_off + nfd < fds.size() ? 1 : buf.size() - off;
    iovec iov{buf.data() + off, len};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    std::vector<char> ctl;
    if (nfd) {
      ctl.resize(CMSG_SPACE(nfd * sizeof(int)));
      msg.msg_control = ctl.data();
      msg.msg_controllen = ctl.size();
      cmsghdr* cm = CMSG_FIRSTHDR(&msg);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN(nfd * sizeof(int));
      memcpy(CMSG_DATA(cm), fds.data() + fd_off, nfd * sizeof(int));
    }
    ssize_t w = sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::from_errno("send to the control socket");
    }
    off += static_cast<size_t>(w);
    fd_off += nfd;
  }
  return {};
}

namespace {

// Reads exactly len bytes, collecting descriptors. 0 = ok, else errno
// (ENODATA: clean EOF before the first byte).
int read_exact(int sock, char* p, size_t len, std::vector<int>* fds, bool first) {
  size_t got = 0;
  while (got < len) {
    iovec iov{p + got, len - got};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char ctl[CMSG_SPACE(protocol::kMaxFds * sizeof(int))];
    msg.msg_control = ctl;
    msg.msg_controllen = sizeof ctl;
    ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
      if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
      size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      const int* fdp = reinterpret_cast<const int*>(CMSG_DATA(cm));
      for (size_t i = 0; i < k; ++i) {
        if (fds) fds->push_back(fdp[i]);
        else close(fdp[i]);
      }
    }
    if (msg.msg_flags & MSG_CTRUNC) return EMSGSIZE;
    if (n == 0) return (first && got == 0) ? ENODATA : EPROTO;
    got += static_cast<size_t>(n);
  }
  return 0;
}

}  // namespace

Result<std::string> read_frame(int sock, uint64_t max_bytes, std::vector<int>* fds) {
  char hdr[4];
  if (int e = read_exact(sock, hdr, 4, fds, true)) {
    if (e == ENODATA) return Status::error(ENODATA, "end of stream");
    if (e == EPROTO) return Status::error(EPROTO, "stream ended inside a frame header");
    return Status::error(e, "read a frame");
  }
  uint32_t n = 0;
  for (int i = 3; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(hdr[i]);
  if (n > max_bytes)
    return Status::error(EMSGSIZE, "frame of " + std::to_string(n) + " bytes exceeds the limit of " +
                                       std::to_string(max_bytes));
  std::string payload(n, '\0');
  if (int e = read_exact(sock, payload.data(), n, fds, false)) {
    if (e == EPROTO) return Status::error(EPROTO, "stream ended inside a frame (truncated)");
    return Status::error(e, "read a frame");
  }
  return payload;
}

}  // namespace tcfs::control
