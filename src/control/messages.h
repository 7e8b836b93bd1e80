// control/messages.h — the control messages other than compounds
// (tcfs/protocol.h): the request envelope, hello, sync, status and
// maintain, each request and reply a typed struct with its encoder and
// decoder. The daemon (control/server.cpp) and the client library
// (client/client.cpp) use only these; compounds, replies and progress are
// in control/wire.h.
//
// Contract:
//  * encode_*() writes "v" (protocol::kVersion), "type" and exactly the
//    message's own fields as protocol.h lists them.
//  * decode_request_type() (daemon side) refuses a request that is not a
//    map or not of this protocol version (EPROTO, "unsupported protocol
//    version 99 (this daemon speaks 1)") and returns its "type" ("" when
//    absent or not a string: an unknown type).
//  * Request decoders (daemon side) refuse a mistyped or invalid field with
//    EINVAL and a message naming the request and the field.
//  * Reply decoders (client side) refuse a frame of another type, and a
//    missing required or mistyped field, with EPROTO: "malformed <type>
//    reply: field \"x\" ...". Optional fields take the defaults below;
//    fields they do not know are ignored (a newer daemon may add some).
//
// Thread-safety: stateless functions; the structs are plain values.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>

#include "tcfs/status.h"

namespace tcfs::control {

using Json = nlohmann::json;

// The request's "type" after its envelope is checked (see above).
Result<std::string> decode_request_type(const Json& req);

// {"type":"hello"} -> {"type":"hello","server","mount","store","limits":{...}}.
// limits.max_ops and max_inline_bytes are required; max_fds and
// max_frame_bytes are 0 when absent (an older daemon).
struct HelloReply {
  std::string server, mount, store;
  uint64_t max_ops = 0, max_inline_bytes = 0, max_frame_bytes = 0, max_fds = 0;
};
Json encode_hello_request();
Json encode_hello(const HelloReply& h);
Result<HelloReply> decode_hello(const Json& j);

// {"type":"sync","timeout_ms":N} -> {"type":"synced","errno":E,"message":".."}.
constexpr uint64_t kDefaultSyncTimeoutMs = uint64_t{24} * 3600 * 1000;  // a day
struct SyncRequest {
  std::optional<uint64_t> timeout_ms;  // absent: kDefaultSyncTimeoutMs
};
Json encode_sync_request(const SyncRequest& r);
Result<SyncRequest> decode_sync_request(const Json& j);
struct SyncReply {
  int err = 0;          // 0: everything committed before the request is on the blobbers
  std::string message;  // what is pending or failed
};
Json encode_synced(const SyncReply& r);
Result<SyncReply> decode_synced(const Json& j);

// {"type":"status"} -> {"type":"status","mount","store","status":{...}}.
struct StatusReply {
  std::string mount, store;
  Json status = Json::object();  // figures for `tcfs status` (tcfs(8))
};
Json encode_status_request(bool quick = false);
// The request's "quick" (false when absent); EINVAL when not a boolean.
Result<bool> decode_status_request(const Json& j);
Json encode_status(const StatusReply& r);
Result<StatusReply> decode_status(const Json& j);

// "metrics": the Prometheus text exposition (util/metrics.h), any user.
Json encode_metrics_request();
Json encode_metrics(const std::string& text);
Result<std::string> decode_metrics(const Json& j);

// {"type":"maintain","what":"gc"|"scrub"} ->
// {"type":"maintained","errno":E,"message":"..","report":{...}}.
struct MaintainRequest {
  std::string what;  // "gc" or "scrub"
};
Json encode_maintain_request(const MaintainRequest& r);
Result<MaintainRequest> decode_maintain_request(const Json& j);  // EINVAL unless gc or scrub
struct MaintainReply {
  int err = 0;
  std::string message;
  Json report = Json::object();  // a map (the maintenance's figures)
};
Json encode_maintained(const MaintainReply& r);
Result<MaintainReply> decode_maintained(const Json& j);

}  // namespace tcfs::control
