// control/messages.cpp — hello, sync, status and maintain (control/messages.h).
#include "control/messages.h"

#include "control/op_codec.h"
#include "tcfs/protocol.h"

namespace tcfs::control {
namespace {

Json envelope(const char* type) { return {{"v", protocol::kVersion}, {"type", type}}; }

// A peer's value in a message, as JSON text. Invalid UTF-8 is replaced:
// plain dump() throws on it, and one such byte from a client must not end
// the connection's thread (and the daemon) with an exception.
std::string shown(const Json& v) { return v.dump(-1, ' ', false, Json::error_handler_t::replace); }

// Fields of a reply of `type`, its errors prefixed "malformed <type> reply".
FieldStyle reply_style(const std::string& type) {
  FieldStyle s;
  s.where = "malformed " + type + " reply";
  return s;
}

// Runs decode over j's fields once j is a map of `type`; every error is EPROTO.
template <typename T, typename Fn>
Result<T> decode_reply_of(const Json& j, const std::string& type, Fn decode) {
  if (!j.is_object()) return Status::error(EPROTO, "expected a " + type + " frame, got no map");
  auto t = j.find("type");
  if (t == j.end() || !t->is_string() || *t != type)
    return Status::error(EPROTO, "expected a " + type + " frame, got " + (t == j.end() ? "none" : shown(*t)));
  try {
    Fields f(j, reply_style(type));
    return decode(f);
  } catch (const FieldError& e) {
    return Status::error(EPROTO, e.msg);
  }
}

int errno_of(const Fields& f) {
  int64_t e = f.integer("errno", 0, 0, 4095);
  return static_cast<int>(e);
}

// A map field (default: an empty map).
Json map_of(const Fields& f, const char* k) {
  const Json* v = f.get(k);
  if (!v) return Json::object();
  if (!v->is_object()) f.fail(EINVAL, k, "must be a map");
  return *v;
}

}  // namespace

Result<std::string> decode_request_type(const Json& req) {
  if (!req.is_object()) return Status::error(EPROTO, "the request is not a MessagePack map");
  auto v = req.find("v");
  if (v == req.end() || !v->is_number_integer() || *v != protocol::kVersion) {
    std::string got = v == req.end() ? "none" : shown(*v);
    return Status::error(EPROTO, "unsupported protocol version " + got + " (this daemon speaks " +
                                     std::to_string(protocol::kVersion) + ")");
  }
  auto t = req.find("type");
  return t != req.end() && t->is_string() ? t->get<std::string>() : std::string();
}

// ------------------------------------------------------------------ hello

Json encode_hello_request() { return envelope("hello"); }

Json encode_hello(const HelloReply& h) {
  Json j = envelope("hello");
  j["server"] = h.server;
  j["mount"] = h.mount;
  j["store"] = h.store;
  j["limits"] = {{"max_ops", h.max_ops},
                 {"max_inline_bytes", h.max_inline_bytes},
                 {"max_frame_bytes", h.max_frame_bytes},
                 {"max_fds", h.max_fds}};
  return j;
}

Result<HelloReply> decode_hello(const Json& j) {
  return decode_reply_of<HelloReply>(j, "hello", [](const Fields& f) {
    HelloReply h;
    h.server = f.str("server", true);
    h.mount = f.str("mount", true);
    h.store = f.str("store", true);
    if (!f.has("limits")) f.bad(EPROTO, "missing " + f.name("limits"));
    Json lim = map_of(f, "limits");
    FieldStyle s = reply_style("hello");
    s.where += ": limits";
    Fields l(lim, s);
    if (!l.has("max_ops") || !l.has("max_inline_bytes"))
      l.bad(EPROTO, "missing " + l.name(l.has("max_ops") ? "max_inline_bytes" : "max_ops"));
    h.max_ops = l.count("max_ops", 0);
    h.max_inline_bytes = l.count("max_inline_bytes", 0);
    h.max_frame_bytes = l.count("max_frame_bytes", 0);
    h.max_fds = l.count("max_fds", 0);
    return h;
  });
}

// ------------------------------------------------------------------ sync

Json encode_sync_request(const SyncRequest& r) {
  Json j = envelope("sync");
  if (r.timeout_ms) j["timeout_ms"] = *r.timeout_ms;
  return j;
}

Result<SyncRequest> decode_sync_request(const Json& j) {
  SyncRequest r;
  auto t = j.find("timeout_ms");
  if (t == j.end()) return r;
  if (!t->is_number_unsigned()) return Status::error(EINVAL, "sync: timeout_ms must be a number");
  r.timeout_ms = t->get<uint64_t>();
  return r;
}

Json encode_synced(const SyncReply& r) {
  Json j = envelope("synced");
  j["errno"] = r.err;
  j["message"] = r.message;
  return j;
}

Result<SyncReply> decode_synced(const Json& j) {
  return decode_reply_of<SyncReply>(j, "synced", [](const Fields& f) {
    return SyncReply{errno_of(f), f.str("message", false)};
  });
}

// ------------------------------------------------------------------ status

Json encode_status_request(bool quick) {
  Json j = envelope("status");
  if (quick) j["quick"] = true;
  return j;
}

Result<bool> decode_status_request(const Json& j) {
  auto q = j.find("quick");
  if (q == j.end()) return false;
  if (!q->is_boolean()) return Status::error(EINVAL, "status: quick must be true or false");
  return q->get<bool>();
}

Json encode_status(const StatusReply& r) {
  Json j = envelope("status");
  j["mount"] = r.mount;
  j["store"] = r.store;
  j["status"] = r.status;
  return j;
}

Result<StatusReply> decode_status(const Json& j) {
  return decode_reply_of<StatusReply>(j, "status", [](const Fields& f) {
    return StatusReply{f.str("mount", false), f.str("store", false), map_of(f, "status")};
  });
}

// ------------------------------------------------------------------ metrics

Json encode_metrics_request() { return envelope("metrics"); }

Json encode_metrics(const std::string& text) {
  Json j = envelope("metrics");
  j["text"] = text;
  return j;
}

Result<std::string> decode_metrics(const Json& j) {
  return decode_reply_of<std::string>(j, "metrics", [](const Fields& f) { return f.str("text", true); });
}

// ------------------------------------------------------------------ maintain

Json encode_maintain_request(const MaintainRequest& r) {
  Json j = envelope("maintain");
  j["what"] = r.what;
  return j;
}

Result<MaintainRequest> decode_maintain_request(const Json& j) {
  auto w = j.find("what");
  std::string what = w != j.end() && w->is_string() ? w->get<std::string>() : "";
  if (what != "gc" && what != "scrub" && what != "log")
    return Status::error(EINVAL, "maintain: what must be \"gc\", \"scrub\" or \"log\"");
  return MaintainRequest{what};
}

Json encode_maintained(const MaintainReply& r) {
  Json j = envelope("maintained");
  j["errno"] = r.err;
  j["message"] = r.message;
  j["report"] = r.report;
  return j;
}

Result<MaintainReply> decode_maintained(const Json& j) {
  return decode_reply_of<MaintainReply>(j, "maintained", [](const Fields& f) {
    return MaintainReply{errno_of(f), f.str("message", false), map_of(f, "report")};
  });
}

}  // namespace tcfs::control
