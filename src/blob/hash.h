// blob/hash.h — SHA-256 digests (OpenSSL EVP) that name blocks and packs.
//
// Contract: sha256() of a byte range; Hasher for streamed input; hex()
// and from_hex() round-trip the 64-character lower-case form.
//
// Thread-safety: plain values; a Hasher belongs to one thread at a time.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "tcfs/status.h"

namespace tcfs::blob {

struct Hash {
  std::array<uint8_t, 32> b{};
  std::string hex() const;
  static Result<Hash> from_hex(std::string_view s);
  std::string_view bytes() const { return {reinterpret_cast<const char*>(b.data()), b.size()}; }
  static Hash from_bytes(std::string_view s);  // s.size() must be 32
  auto operator<=>(const Hash&) const = default;
};

Hash sha256(std::string_view data);

class Hasher {
 public:
  Hasher();
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  void update(std::string_view data);
  Hash final();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

}  // namespace tcfs::blob
