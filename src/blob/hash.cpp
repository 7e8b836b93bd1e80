// blob/hash.cpp — SHA-256 through OpenSSL's EVP interface (hash.h).
#include "blob/hash.h"

#include <openssl/evp.h>

#include <cstring>

namespace tcfs::blob {

struct Hasher::Ctx {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  ~Ctx() { EVP_MD_CTX_free(md); }
};

Hasher::Hasher() : ctx_(std::make_unique<Ctx>()) { EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr); }
Hasher::~Hasher() = default;
void Hasher::update(std::string_view data) { EVP_DigestUpdate(ctx_->md, data.data(), data.size()); }
Hash Hasher::final() {
  Hash h;
  unsigned n = 0;
  EVP_DigestFinal_ex(ctx_->md, h.b.data(), &n);
  EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr);
  return h;
}

Hash sha256(std::string_view data) {
  Hash h;
  unsigned n = 0;
  EVP_Digest(data.data(), data.size(), h.b.data(), &n, EVP_sha256(), nullptr);
  return h;
}

std::string Hash::hex() const {
  static const char* digits = "0123456789abcdef";
  std::string s(64, '0');
  for (size_t i = 0; i < 32; i++) {
    s[2 * i] = digits[b[i] >> 4];
    s[2 * i + 1] = digits[b[i] & 15];
  }
  return s;
}

Result<Hash> Hash::from_hex(std::string_view s) {
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  Hash h;
  if (s.size() != 64) return Status::error(EINVAL, "hash \"" + std::string(s) + "\": not 64 hex digits");
  for (size_t i = 0; i < 32; i++) {
    int hi = nib(s[2 * i]), lo = nib(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return Status::error(EINVAL, "hash \"" + std::string(s) + "\": not lower-case hex");
    h.b[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return h;
}

Hash Hash::from_bytes(std::string_view s) {
  Hash h;
  std::memcpy(h.b.data(), s.data(), std::min(s.size(), h.b.size()));
  return h;
}

}  // namespace tcfs::blob
