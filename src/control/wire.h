// control/wire.h — protocol v1 encoding (tcfs/protocol.h): frames, and
// MessagePack maps <-> compounds, replies and progress. One op's codec is
// control/op_codec.h (shared with tcfs-batch's NDJSON reader); hello, sync,
// status and maintain are control/messages.h.
//
// Contract:
//  * decode_compound() accepts exactly the documented request and rejects
//    anything else — unknown keys, fields that do not apply to the op's
//    kind, mistyped or out-of-range fields, unknown ops, bad paths,
//    descriptors not passed, limits exceeded — with EINVAL / EXDEV /
//    ENAMETOOLONG / EBADF / E2BIG and a message naming the op index and the
//    field ("op 3: field \"mode\" must be an integer").
//  * from_bytes() checks the MessagePack structure before building anything
//    (nesting at most kMaxDepth, at most max_items values, no trailing
//    bytes unless the caller takes them as attached bytes), so a hostile frame cannot exhaust the stack or memory; EPROTO
//    or E2BIG otherwise.
//  * Frames are a 4-byte little-endian length and the payload. read_frame()
//    never reads or allocates more than max_bytes, keeps at most max_fds of
//    the SCM_RIGHTS descriptors that arrive with the frame (closing the
//    rest), and closes every descriptor itself when it returns an error.
//  * F1: read_frame() grows a frame's buffer only as its bytes arrive (the
//    first 64 KiB, then at most doubling what has arrived), never to the
//    declared length up front, and charges each growth and each descriptor
//    to FrameLimits::budget before taking it.
//
// Thread-safety: stateless functions; no shared state.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "control/op_codec.h"  // one op's codec, check_path
#include "tcfs/compound.h"
#include "tcfs/protocol.h"
#include "tcfs/status.h"

namespace tcfs::control {

using Json = nlohmann::json;

// The daemon's per-request limits (tcfs mount -o max_ops=... etc.).
struct Limits {
  uint64_t max_ops = protocol::kDefaultMaxOps;
  uint64_t max_inline_bytes = protocol::kDefaultMaxInlineBytes;
  uint64_t max_frame_bytes = protocol::kDefaultMaxFrameBytes;
  uint64_t max_fds = protocol::kDefaultMaxFds;
  // A client that stops sending in the middle of a frame, or stops reading
  // a reply, for this long is disconnected.
  int frame_stall_ms = 60000;
  // A connection with no request started for this long is closed (-1: never).
  int idle_ms = 300000;
  // What each user may hold of the server (control/quota.h): connections
  // of one uid other than root, connections kept for root, request bytes
  // in flight of one non-root uid (0: max_frame_bytes) and of all of them,
  // passed descriptors in flight of one non-root uid.
  uint64_t user_conns = 16;
  uint64_t root_conns = 16;
  uint64_t user_bytes = 0;
  uint64_t users_bytes = 1ull << 30;
  uint64_t user_fds = 4096;
};

constexpr unsigned kMaxDepth = 16;  // MessagePack nesting accepted by from_bytes

std::string to_bytes(const Json& j);
// rest: when given, bytes after the first value are returned there (a
// compound's attached bytes) instead of being refused.
Result<Json> from_bytes(std::string_view bytes, uint64_t max_items = std::numeric_limits<uint64_t>::max(),
                        std::string_view* rest = nullptr);
// Values a request may hold under `lim` (the max_items for from_bytes).
uint64_t max_request_items(const Limits& lim);

// attached: when given, collects the values to attach after the map
// (protocol.h "attached"; encode_op) and the map says how many bytes.
// columns: ask for the results as columns (protocol.h; a daemon older than
// the field refuses it: Client::submit then asks again without).
Json encode_compound(const Compound& c, bool progress, Attached* attached = nullptr, bool columns = true);
// A compound request's whole payload in one string: its map, then its
// attached bytes (tests, seeds; the client sends the parts as they lie).
std::string compound_frame(const Compound& c, bool progress);
// nfds: descriptors that arrived with the request; *progress (if given):
// whether the client asked for progress frames; attached: the bytes that
// followed the map in the frame (from_bytes' rest): exactly as many as the
// request's "attached" says (EPROTO otherwise); *columns (if given):
// whether it asked for the results as columns (protocol.h).
Result<Compound> decode_compound(const Json& req, const Limits& lim, size_t nfds, bool* progress = nullptr,
                                 std::string_view attached = {}, bool* columns = nullptr);
// columns: the results as columns (protocol.h) where they fit them (the
// operations that ran are a prefix); else as one map per operation.
// decode_reply() reads either.
Json encode_reply(const CompoundReply& r, bool columns = false);
Result<CompoundReply> decode_reply(const Json& j);
Json encode_progress(size_t done, size_t total);
struct Progress {
  size_t done = 0, total = 0;
};
Result<Progress> decode_progress(const Json& j);  // EPROTO naming the field when malformed
// A frame's "type" ("" for a frame that is not a map or has none).
std::string frame_type(const Json& j);
Json rejection(int err, const std::string& message);

// Sends one frame. fds go as SCM_RIGHTS, at most kMaxFds per sendmsg, on
// the first bytes of the frame (one byte per message while more than one
// batch remains); E2BIG when they cannot all ride on the frame's bytes.
// nonblocking: EAGAIN instead of waiting for room (use it for frames small
// enough to go in one piece, such as progress, so a client that does not
// read cannot stall the sender).
Status write_frame(int sock, const std::string& payload, const std::vector<int>& fds = {},
                   bool nonblocking = false);
// The same with the payload in parts, sent as they lie (no copy).
Status write_frame(int sock, const std::vector<std::string_view>& payload, const std::vector<int>& fds = {},
                   bool nonblocking = false);

// Memory and descriptors a frame takes while it is read, charged before
// they are taken: the buffer as it grows, each descriptor as it arrives.
// An error refuses the frame (control/quota.h is the server's).
class FrameBudget {
 public:
  virtual ~FrameBudget() = default;
  virtual Status charge(uint64_t bytes, uint64_t fds) = 0;
};

struct FrameLimits {
  uint64_t max_bytes = protocol::kDefaultMaxFrameBytes;
  uint64_t max_fds = 0;  // descriptors beyond this are closed and the frame is refused
  int stall_ms = -1;     // give up when a started frame makes no progress this long (-1: never)
  FrameBudget* budget = nullptr;  // none: nothing is charged
};

struct Frame {
  std::string payload;
  std::vector<int> fds;  // owned by the caller
  // Set when the frame was read whole (the stream is still in step) but
  // must be refused: too many descriptors (E2BIG), more than kMaxFds in
  // one message or more than the budget allows (ETOOMANYREFS). fds is
  // then empty.
  Status refused;
};

// Errors (the stream cannot be used further): ENODATA at a clean end of
// stream before a frame starts; EMSGSIZE for a frame over max_bytes (its
// payload is not read); EPROTO for a stream cut inside a frame; ETIMEDOUT
// for a stalled frame; the budget's error when it refuses more bytes
// (ENOBUFS for the server's); the recvmsg errno otherwise. A descriptor
// the budget refuses is closed and sets Frame::refused (the stream stays
// in step).
Result<Frame> read_frame(int sock, const FrameLimits& lim);

}  // namespace tcfs::control
