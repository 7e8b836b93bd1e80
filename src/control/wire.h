// control/wire.h — protocol v1 encoding (tcfs/protocol.h): frames, and
// MessagePack maps <-> compounds, replies and progress.
//
// Contract: decode_compound() accepts exactly the documented request and
// rejects anything else — unknown keys, mistyped fields, unknown ops, bad
// paths, descriptors not passed, limits exceeded — with EINVAL / EPROTO /
// E2BIG / EMSGSIZE and a message naming the op index and field. Frames are
// a 4-byte little-endian length and the payload; read_frame() never reads
// or allocates more than max_bytes, and collects every SCM_RIGHTS
// descriptor that arrives with the frame (the caller owns them).
//
// Thread-safety: stateless functions.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "tcfs/compound.h"
#include "tcfs/protocol.h"
#include "tcfs/status.h"

namespace tcfs::control {

using Json = nlohmann::json;

struct Limits {
  uint64_t max_ops = protocol::kDefaultMaxOps;
  uint64_t max_inline_bytes = protocol::kDefaultMaxInlineBytes;
  uint64_t max_frame_bytes = protocol::kDefaultMaxFrameBytes;
  uint64_t max_fds = 1024;
};

std::string to_bytes(const Json& j);
Result<Json> from_bytes(std::string_view bytes);

Json encode_compound(const Compound& c, bool progress);
// nfds: descriptors that arrived with the request.
Result<Compound> decode_compound(const Json& req, const Limits& lim, size_t nfds);
Json encode_reply(const CompoundReply& r);
Result<CompoundReply> decode_reply(const Json& j);
Json encode_progress(size_t done, size_t total);
Json rejection(int err, const std::string& message);

// Path rules of compound.h: relative, no empty / "." / ".." components, no
// NUL, each name <= NAME_MAX and the whole <= PATH_MAX.
Status check_path(const std::string& p);

// Frames. write_frame sends fds (at most kMaxFds per sendmsg, spread over
// the first bytes of the frame). read_frame returns ENODATA at a clean
// end of stream before a frame starts, EMSGSIZE for a frame over max_bytes
// (its payload is not read), EPROTO for a stream cut inside a frame.
Status write_frame(int sock, const std::string& payload, const std::vector<int>& fds = {});
Result<std::string> read_frame(int sock, uint64_t max_bytes, std::vector<int>* fds);

}  // namespace tcfs::control
