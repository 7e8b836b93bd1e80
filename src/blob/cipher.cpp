// blob/cipher.cpp — sealed objects, keyed hashes and key files (cipher.h;
// the numbered notes there are cited as "cipher.h N").
#include "blob/cipher.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>

namespace tcfs::blob {
namespace {

constexpr char kMagic[8] = {'T', 'C', 'F', 'S', 'E', 'N', 'C', '1'};

const unsigned char* u8(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

Result<std::string> hkdf(std::string_view master, std::string_view info) {
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> c(EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr),
                                                               EVP_PKEY_CTX_free);
  std::string out(kKeyBytes, '\0');
  size_t n = out.size();
  std::string_view salt = "tcfs";
  if (!c || EVP_PKEY_derive_init(c.get()) <= 0 || EVP_PKEY_CTX_set_hkdf_md(c.get(), EVP_sha256()) <= 0 ||
      EVP_PKEY_CTX_set1_hkdf_salt(c.get(), u8(salt), static_cast<int>(salt.size())) <= 0 ||
      EVP_PKEY_CTX_set1_hkdf_key(c.get(), u8(master), static_cast<int>(master.size())) <= 0 ||
      EVP_PKEY_CTX_add1_hkdf_info(c.get(), u8(info), static_cast<int>(info.size())) <= 0 ||
      EVP_PKEY_derive(c.get(), reinterpret_cast<unsigned char*>(out.data()), &n) <= 0 || n != kKeyBytes)
    return Status::error(EIO, "HKDF key derivation failed");
  return out;
}

std::string hmac(std::string_view key, std::string_view a, std::string_view b = {}) {
  std::string msg(a);
  msg += b;
  std::string out(32, '\0');
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), u8(msg), msg.size(),
       reinterpret_cast<unsigned char*>(out.data()), &n);
  return out;
}

uint64_t segments(uint64_t plain) { return plain == 0 ? 1 : (plain + kSegment - 1) / kSegment; }

// cipher.h 3: be64(index) || 00 00 00 || last.
std::array<unsigned char, 12> nonce(uint64_t i, bool last) {
  std::array<unsigned char, 12> n{};
  for (int j = 0; j < 8; j++) n[j] = static_cast<unsigned char>(i >> (56 - 8 * j));
  n[11] = last ? 1 : 0;
  return n;
}

using Ctx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

// One segment, sealed (enc) or opened; out receives the bytes (and, sealing, the tag).
bool segment(EVP_CIPHER_CTX* c, bool enc, const std::string& key, uint64_t i, bool last, std::string_view aad,
             std::string_view in, std::string& out) {
  auto n = nonce(i, last);
  int len = 0;
  if (EVP_CipherInit_ex(c, EVP_aes_256_gcm(), nullptr, u8(key), n.data(), enc ? 1 : 0) != 1) return false;
  if (EVP_CipherUpdate(c, nullptr, &len, u8(aad), static_cast<int>(aad.size())) != 1) return false;
  std::string_view body = enc ? in : in.substr(0, in.size() - kTag);
  size_t at = out.size();
  out.resize(at + body.size());
  auto* dst = reinterpret_cast<unsigned char*>(out.data() + at);
  if (!body.empty() && EVP_CipherUpdate(c, dst, &len, u8(body), static_cast<int>(body.size())) != 1) return false;
  if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, kTag,
                                  const_cast<char*>(in.data() + body.size())) != 1)
    return false;
  if (EVP_CipherFinal_ex(c, dst + body.size(), &len) != 1) return false;  // cipher.h 5: a failed tag
  if (!enc) return true;
  char tag[kTag];
  if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, kTag, tag) != 1) return false;
  out.append(tag, kTag);
  return true;
}

// Not logged here: ObjectStore logs the read that finally fails (a failed
// fast-path open is only a degraded read, objects.h 7).
Status refused(const std::string& name, const std::string& why) {
  return Status::error(EIO, "object " + name + ": " + why);
}

}  // namespace

Result<std::shared_ptr<const Cipher>> Cipher::make(std::string_view master) {
  if (master.size() != kKeyBytes) return Status::error(EINVAL, "an encryption key is 32 bytes");
  std::shared_ptr<Cipher> c(new Cipher());
  auto enc = hkdf(master, "tcfs enc v1");
  auto name = hkdf(master, "tcfs name v1");
  auto id = hkdf(master, "tcfs key id v1");
  if (!enc || !name || !id) return Status::error(EIO, "HKDF key derivation failed");
  c->enc_ = std::move(*enc);
  c->name_ = std::move(*name);
  c->id_ = std::move(*id);
  return std::shared_ptr<const Cipher>(std::move(c));
}

uint64_t Cipher::sealed_len(uint64_t plain) { return kSealHeader + plain + kTag * segments(plain); }

Result<uint64_t> Cipher::plain_len(uint64_t sealed) {
  if (sealed < kSealHeader + kTag) return Status::error(EIO, "shorter than a sealed object");
  uint64_t body = sealed - kSealHeader, n = (body + kSegment + kTag - 1) / (kSegment + kTag);
  uint64_t plain = body - kTag * n;
  if (sealed_len(plain) != sealed) return Status::error(EIO, "not the length of a sealed object");
  return plain;
}

Cipher::Span Cipher::span(uint64_t plain_len, uint64_t off, uint64_t len) {
  Span s;
  s.first = off / kSegment;
  s.last = len == 0 ? s.first : (off + len - 1) / kSegment;
  s.last = std::min(s.last, segments(plain_len) - 1);
  s.first = std::min(s.first, s.last);
  s.p_off = s.first * kSegment;
  s.c_off = kSealHeader + s.first * (kSegment + kTag);
  uint64_t end = std::min(kSealHeader + (s.last + 1) * (kSegment + kTag), sealed_len(plain_len));
  s.c_len = end - s.c_off;
  return s;
}

Result<std::string> Cipher::object_key(const std::string& name, std::string_view header) const {
  if (header.size() < kSealHeader || std::memcmp(header.data(), kMagic, 8) != 0)
    return refused(name, "not a sealed object (no TCFSENC1 header): written without encryption?");
  return hmac(enc_, "tcfs object", header.substr(8, kSealHeader - 8));  // cipher.h 3
}

Result<std::string> Cipher::seal(const std::string& name, std::string_view plain) const {
  std::string out(kMagic, 8);
  out.resize(kSealHeader);
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data() + 8), kSealHeader - 8) != 1)
    return Status::error(EIO, "seal " + name + ": RAND_bytes failed");
  auto key = object_key(name, out);
  if (!key) return key.status();
  const std::string aad = std::string(kMagic, 8) + name;  // cipher.h 4
  out.reserve(sealed_len(plain.size()));
  Ctx c(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  const uint64_t n = segments(plain.size());
  for (uint64_t i = 0; i < n; i++)
    if (!c || !segment(c.get(), true, *key, i, i + 1 == n, aad, plain.substr(i * kSegment, kSegment), out))
      return Status::error(EIO, "seal " + name + ": AES-256-GCM failed");
  return out;
}

Result<std::string> Cipher::open_span(const std::string& name, uint64_t plain_len, std::string_view header,
                                      const Span& sp, std::string_view segs) const {
  auto key = object_key(name, header);
  if (!key) return key.status();
  if (segs.size() != sp.c_len) return refused(name, "sealed range has the wrong length");
  const std::string aad = std::string(kMagic, 8) + name;
  const uint64_t n = segments(plain_len);
  std::string out;
  out.reserve(segs.size());
  Ctx c(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  for (uint64_t i = sp.first, at = 0; i <= sp.last; i++) {
    uint64_t take = std::min<uint64_t>(kSegment + kTag, segs.size() - at);
    if (take < kTag) return refused(name, "a segment is cut short");
    if (!c || !segment(c.get(), false, *key, i, i + 1 == n, aad, segs.substr(at, take), out))
      return refused(name, "authentication failed (tampered, truncated, renamed, or another key)");  // cipher.h 5
    at += take;
  }
  return out;
}

Result<std::string> Cipher::open(const std::string& name, std::string_view sealed) const {
  auto plain = plain_len(sealed.size());
  if (!plain) return refused(name, plain.status().message());
  Span sp = span(*plain, 0, *plain);
  return open_span(name, *plain, sealed.substr(0, kSealHeader), sp, sealed.substr(sp.c_off));
}

Hash Cipher::content_hash(std::string_view data) const { return Hash::from_bytes(hmac(name_, data)); }

std::string Cipher::key_id() const { return Hash::from_bytes(hmac(id_, "tcfs key id")).hex(); }

Result<std::string> load_key_file(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return Status::from_errno("key file " + path);
  struct stat st {};
  std::string buf(200, '\0');
  ssize_t n = fstat(fd, &st) == 0 ? read(fd, buf.data(), buf.size()) : -1;
  int err = errno;
  close(fd);
  if (n < 0) return Status::error(err, "key file " + path + ": " + strerror(err));
  if (!S_ISREG(st.st_mode)) return Status::error(EINVAL, "key file " + path + ": not a regular file");
  if (st.st_mode & 077)  // cipher.h 7
    return Status::error(EPERM, "key file " + path + " is accessible by group or others (mode " +
                                    fmt::format("{:04o}", st.st_mode & 07777) + "): chmod 600 it first");
  buf.resize(static_cast<size_t>(n));
  if (buf.size() == kKeyBytes) return buf;
  while (!buf.empty() && (buf.back() == '\n' || buf.back() == '\r')) buf.pop_back();
  if (buf.size() == 2 * kKeyBytes) {
    auto h = Hash::from_hex(buf);
    if (h) return std::string(h->bytes());
  }
  return Status::error(EINVAL, "key file " + path + ": expected exactly 32 bytes or 64 hex digits, found " +
                                   std::to_string(n) + " bytes");
}

Result<std::string> create_key_file(const std::string& path) {
  std::string key(kKeyBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), kKeyBytes) != 1)
    return Status::error(EIO, "RAND_bytes failed");
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Status::from_errno("create key file " + path);
  bool ok = fchmod(fd, 0600) == 0 && write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size()) &&
            fsync(fd) == 0;
  int err = errno;
  close(fd);
  if (!ok) {
    unlink(path.c_str());
    return Status::error(err, "write key file " + path + ": " + strerror(err));
  }
  return key;
}

}  // namespace tcfs::blob
