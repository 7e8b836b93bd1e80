// tcfs/protocol.h — the control-socket protocol, version 1.
//
// Transport: a SOCK_STREAM unix socket, <store>/control.sock (mode 0666;
// the daemon checks every request against the peer's credentials taken from
// SO_PEERCRED and SO_PEERGROUPS, never from the request). Each message is a
// frame: a 4-byte little-endian payload length, then the payload, a MessagePack
// map (nlohmann::json::to_msgpack / from_msgpack). Descriptors for Write-from-fd
// operations travel as SCM_RIGHTS ancillary data on the sendmsg() that carries
// the frame's first byte; they are numbered 0.. in arrival order.
//
// Request maps carry "v" (protocol version, = kVersion) and "type":
//   {"v":1,"type":"hello"}
//       -> {"v":1,"type":"hello","server":"tcfs 0.1.0","mount":"/mnt/x",
//           "store":"/var/lib/tcfs/default","limits":{"max_ops":N,"max_inline_bytes":N,
//           "max_frame_bytes":N}}
//   {"v":1,"type":"compound","txn":true,"sync":true,"progress":false,
//    "ops":[{"op":"write","path":"a/b","data":<bin>,"offset":0}, ...]}
//       -> zero or more {"v":1,"type":"progress","done":N,"total":N} frames
//          (only when "progress" is true), then
//          {"v":1,"type":"reply","outcome":"committed"|"rolled_back"|"partial"|"rejected",
//           "failed_op":-1|i,"errno":0|E,"error":"EACCES","message":"...","txn":id,
//           "results":[{"errno":0,"bytes":N,"ran":true}, ...]}
// Operation maps use the field names of tcfs::Op (compound.h) with "op" the
// kind's name (op_kind_name); absent fields take Op's defaults; "data" and
// "value" are MessagePack bin (a str is accepted too); times are
// {"sec":S,"nsec":N} or "now".
//
// Errors: a frame the daemon cannot parse, a wrong version, an unknown type
// or op, a missing or mistyped field, or a limit exceeded gets a "reply"
// with outcome "rejected", errno EPROTO / EINVAL / E2BIG / EMSGSIZE and a
// message naming the problem (and the op index, when there is one); nothing
// runs. A frame longer than max_frame_bytes is answered and the connection
// closed. One connection may carry any number of requests, one at a time.
//
// Thread-safety: constants only.
#pragma once

#include <cstdint>

namespace tcfs::protocol {

constexpr int kVersion = 1;
constexpr const char* kSocketName = "control.sock";

// Defaults for the daemon's configurable limits (tcfs mount -o ...).
constexpr uint64_t kDefaultMaxOps = 100000;
constexpr uint64_t kDefaultMaxInlineBytes = 256ull << 20;  // sum of inline data per compound
constexpr uint64_t kDefaultMaxFrameBytes = 320ull << 20;
constexpr unsigned kMaxFds = 253;  // SCM_RIGHTS limit per message (SCM_MAX_FD)

}  // namespace tcfs::protocol
