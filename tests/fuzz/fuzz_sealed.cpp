// fuzz_sealed — sealed objects as hostile blobbers (or a stolen disk put
// back) serve them (blob/cipher.cpp: the seal header, sealed lengths,
// segment spans, AES-256-GCM tags), opened whole and by range with a fixed
// key, and a seal/open round trip of fuzzer-chosen plain bytes.
// Input: a mode byte, the range's plain_len, off, len (u32 each, as a
// BlockRef gives them), the sealed object (a length-prefixed piece), then
// the rest: plain bytes for the round trip.
// Checks: no crash, leak or hang; an open that succeeds gives exactly
// plain_len(size) bytes (a range: the whole segments it asked for); the
// round trip gives the bytes back, and with any byte flipped it fails.
#include <spdlog/spdlog.h>

#include "blob/cipher.h"
#include "fuzz_input.h"

using namespace tcfs;

namespace {

const blob::Cipher& cipher() {
  static std::shared_ptr<const blob::Cipher> c = [] {
    spdlog::set_level(spdlog::level::off);
    return blob::Cipher::make(std::string(blob::kKeyBytes, '\x5e')).value();
  }();
  return *c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  const std::string name = "p/5e/5eed";
  const uint8_t mode = in.u8();
  const uint64_t plain_len = in.le(4), off = in.le(4), len = in.le(4);
  const std::string sealed = in.piece(), plain = in.rest();
  const blob::Cipher& c = cipher();
  if (auto o = c.open(name, sealed); o) FUZZ_CHECK(o->size() == blob::Cipher::plain_len(sealed.size()).value());
  if (off <= plain_len && len <= plain_len - off && len > 0) {  // what ObjectStore::read admits
    blob::Cipher::Span sp = blob::Cipher::span(plain_len, off, len);
    FUZZ_CHECK(sp.p_off <= off && sp.c_off + sp.c_len <= blob::Cipher::sealed_len(plain_len));
    std::string_view s(sealed);
    auto o = c.open_span(name, plain_len, s.substr(0, blob::kSealHeader), sp,
                         s.substr(std::min<size_t>(s.size(), sp.c_off), sp.c_len));
    if (o) FUZZ_CHECK(o->size() >= off - sp.p_off + len);
  }
  auto s = c.seal(name, plain);
  FUZZ_CHECK(s && c.open(name, *s).value() == plain);
  std::string t = *s;
  t[(size_t{mode} * 131) % t.size()] ^= static_cast<char>(1 + (mode >> 4));
  FUZZ_CHECK(!c.open(name, t));
  return 0;
}
