// fuzz_control_msgpack — a control request's payload, as the server takes
// it (server.cpp: from_bytes with the request's item limit, then
// decode_request_type and decode_compound / decode_sync_request /
// decode_maintain_request), and the same bytes as a reply, as the client
// library takes it (client.cpp: from_bytes, then decode_reply,
// decode_progress, decode_hello, decode_synced, decode_status,
// decode_maintained).
// Checks: nothing crashes, leaks or hangs; a request that decodes encodes
// back to bytes that decode to the same compound (the client and the
// server agree on every request the server accepts); every message that
// decodes encodes back to one that decodes.
#include <cstdio>

#include "control/messages.h"
#include "control/wire.h"
#include "fuzz_input.h"

using namespace tcfs;
using namespace tcfs::control;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  Limits lim;  // small limits, so that inputs of a few KB reach the E2BIG paths too
  lim.max_ops = 64;
  lim.max_inline_bytes = 1 << 16;
  std::string_view attached;  // as the server takes a compound (server.cpp handle)
  auto req = from_bytes(bytes, max_request_items(lim), &attached);
  if (req) {
    // A small number of descriptors, as if passed with the frame.
    const size_t nfds = size % 3;
    auto c = decode_compound(*req, lim, nfds, nullptr, attached);
    if (c) {
      Json once = encode_compound(*c, false);
      auto again = from_bytes(to_bytes(once), max_request_items(lim));
      FUZZ_CHECK(again.is_ok());
      auto c2 = decode_compound(*again, lim, nfds);
      FUZZ_CHECK(c2.is_ok());
      FUZZ_CHECK(encode_compound(*c2, false) == once);
      // The client library's form (attached bytes) decodes to the same compound.
      const std::string frame = compound_frame(*c2, false);
      std::string_view rest;
      auto third = from_bytes(frame, max_request_items(lim), &rest);
      FUZZ_CHECK(third.is_ok());
      auto c3 = decode_compound(*third, lim, nfds, nullptr, rest);
      FUZZ_CHECK(c3.is_ok());
      FUZZ_CHECK(encode_compound(*c3, false) == once);
    }
  }
  if (req && decode_request_type(*req)) {
    if (auto s = decode_sync_request(*req)) FUZZ_CHECK(decode_sync_request(encode_sync_request(*s)).is_ok());
    if (auto m = decode_maintain_request(*req)) FUZZ_CHECK(decode_maintain_request(encode_maintain_request(*m)).is_ok());
  }
  auto reply = from_bytes(bytes);
  if (reply) {
    auto r = decode_reply(*reply);
    if (r) FUZZ_CHECK(decode_reply(encode_reply(*r)).is_ok());
    if (auto p = decode_progress(*reply)) FUZZ_CHECK(decode_progress(encode_progress(p->done, p->total)).is_ok());
    if (auto h = decode_hello(*reply)) FUZZ_CHECK(decode_hello(encode_hello(*h)).is_ok());
    if (auto s = decode_synced(*reply)) FUZZ_CHECK(decode_synced(encode_synced(*s)).is_ok());
    if (auto s = decode_status(*reply)) FUZZ_CHECK(decode_status(encode_status(*s)).is_ok());
    if (auto m = decode_maintained(*reply)) FUZZ_CHECK(decode_maintained(encode_maintained(*m)).is_ok());
  }
  return 0;
}
