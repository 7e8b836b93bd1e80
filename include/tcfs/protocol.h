// tcfs/protocol.h — the control-socket protocol, version 1.
//
// Transport: a SOCK_STREAM unix socket (mode 0666): /run/tcfs/<id>.sock
// for a daemon running as root, <id> the first 32 hex digits of the
// SHA-256 of the store directory's path; <store>/control.sock for a daemon
// running as another user (tcfs/client.h finds it from the mount). The
// daemon checks every request against the peer's credentials taken from
// SO_PEERCRED and SO_PEERGROUPS, never from the request. Each message is a
// frame: a 4-byte little-endian payload length, then the payload, a MessagePack
// map (nlohmann::json::to_msgpack / from_msgpack) nested at most 16 deep.
// A compound request may attach bytes after its map: the map's field
// "attached" gives their count, which must be exactly what follows the map
// in the frame (no field: nothing may follow). A "data" or "value" field
// may then be a reference to them instead of a bin: MessagePack ext type
// kAttachedRef (1) of 8 bytes, the offset and the length as 32-bit
// little-endian numbers, within the attached bytes. The client library
// attaches every value of kMinAttached bytes or more, so the daemon
// copies file data once instead of parsing it byte by byte.
// Descriptors for Write-from-fd operations travel as SCM_RIGHTS ancillary
// data on the first bytes of the request's frame, at most kMaxFds per
// sendmsg() (one byte per message while more than one batch remains); they
// are numbered 0.. in arrival order. Any number of requests, one at a time,
// may follow each other on one connection.
//
// Request maps carry "v" (protocol version, = kVersion) and "type":
//   {"v":1,"type":"hello"}
//       -> {"v":1,"type":"hello","server":"tcfs 0.1.0","mount":"/mnt/x",
//           "store":"/var/lib/tcfs/default","limits":{"max_ops":N,"max_inline_bytes":N,
//           "max_frame_bytes":N,"max_fds":N}}
//   {"v":1,"type":"compound","txn":true,"sync":true,"progress":false,"attached":N,
//    "results":"maps"|"columns",
//    "ops":[{"op":"write","path":"a/b","data":<bin|ref>,"offset":0}, ...]} [N bytes]
//       -> zero or more {"v":1,"type":"progress","done":N,"total":N} frames
//          (only when "progress" is true; a client that does not read them
//          misses some rather than stalling the compound), then
//          {"v":1,"type":"reply","outcome":"committed"|"rolled_back"|"partial"|"rejected",
//           "failed_op":-1|i,"errno":0|E,"error":"EACCES","message":"...","txn":id,
//           "results":[{"errno":0,"bytes":N,"ran":true}, ...]}
//          or, when the request asked for "columns" (a map per operation
//          costs time in the thousands), "results":{"ran":N (operations
//          0..N-1 ran),"bytes":[N0, N1, ...] (one per operation),
//          "errno":[[i,E], ...] (the operations that failed)}
//   {"v":1,"type":"sync","timeout_ms":N}      (timeout optional: a day)
//       -> {"v":1,"type":"synced","errno":0|E,"message":"..."}: 0 once everything
//          committed before the request is on the blobbers; ETIMEDOUT (what is
//          pending), ENOTSUP (no blobbers) or the sync layer's error otherwise
//   {"v":1,"type":"maintain","what":"gc"|"scrub"}   (root only: EPERM otherwise)
//       -> {"v":1,"type":"maintained","errno":0|E,"message":"...","report":{...}}
//   {"v":1,"type":"status"[,"quick":true]}
//       -> {"v":1,"type":"status","mount":..,"store":..,"status":{...}} figures for
//          `tcfs status` (see tcfs(8)); quick: without what costs requests to
//          the blobbers (no "blobbers" health, sync's chain_problem as last
//          checked), for what polls (progress bars, tcfs stats)
//   {"v":1,"type":"metrics"}
//       -> {"v":1,"type":"metrics","text":"..."} the Prometheus text exposition
//          (tcfs(8) METRICS); any user
// Operation maps use the field names of tcfs::Op (compound.h) with "op" the
// kind's name (op_kind_name); absent fields take Op's defaults. Each kind
// takes only its own fields ("path" always):
//   mkdir: mode parents              create: mode exclusive truncate
//   write: offset|append truncate, data | fd_index [src_offset length]
//   copy: path2 src_offset offset length        truncate: size (required)
//   setattr: any of mode uid gid atime mtime (at least one; presence = set_*)
//   setxattr: name value xattr_flags            removexattr: name
//   symlink: target                             link: path2
//   rename: path2 rename_flags (RENAME_NOREPLACE or RENAME_EXCHANGE)
//   remove: recursive
// "data" and "value" are MessagePack bin, a reference to attached bytes (a
// str is accepted too); times are
// {"sec":S,"nsec":N} or "now"; modes are at most 07777; offsets >= 0;
// length >= -1 (-1: to the source's end).
//
// Errors: a frame the daemon cannot parse, a wrong version, an unknown type
// or op, a missing, mistyped or misplaced field, or a limit exceeded gets a
// "reply" with outcome "rejected", errno EPROTO (framing, MessagePack,
// version), EINVAL (fields, unknown type or op), EXDEV (".." in a path),
// ENAMETOOLONG, EBADF (fd_index not passed), E2BIG (max_ops,
// max_inline_bytes, max_fds, too many values), ETOOMANYREFS (more than
// kMaxFds descriptors in one message), EMSGSIZE (frame over
// max_frame_bytes), EBUSY (too many connections: in all, of this user, or
// none left but those kept for root; sent as the connection's first frame,
// unasked), ENOBUFS (the user's request bytes in flight) or ETOOMANYREFS
// (the user's passed descriptors in flight), and a message naming the
// problem and the limit (and "op <index>" and the field, when there is
// one); nothing runs, and every passed descriptor is closed. After a frame
// over max_frame_bytes or over the user's bytes in flight, a frame cut
// short or one stalled mid-way (60 s), the daemon answers if it can and
// closes the connection; it closes without a word a connection idle
// between requests (5 minutes) or one that does not read its reply (60 s).
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
constexpr uint64_t kDefaultMaxFds = 1024;  // descriptors per compound
constexpr unsigned kMaxFds = 253;  // SCM_RIGHTS limit per message (SCM_MAX_FD)
constexpr uint8_t kAttachedRef = 1;       // MessagePack ext type: a reference to attached bytes
constexpr uint64_t kMinAttached = 64;     // the client library attaches values of this size or more

}  // namespace tcfs::protocol
