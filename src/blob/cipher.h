// blob/cipher.h — what a store sends to its blobbers, sealed: authenticated
// encryption of whole objects (AES-256-GCM through OpenSSL EVP) in fixed
// segments, keyed content hashes, and the key file.
//
// Contract: Cipher::make() takes the 32-byte master key. seal(name, plain)
// gives the sealed object that ObjectStore erasure-codes in place of the
// plain bytes (objects.h 7); open() / open_span() give the plain bytes back
// or EIO, never wrong bytes. content_hash() names and checks blocks of an
// encrypted store in place of SHA-256 (blocks.h 1).
//
// Design note (numbered; code cites them as "cipher.h N"):
//  1. Keys. Three subkeys come from the master key by HKDF-SHA256 (salt
//     "tcfs", info "tcfs enc v1" / "tcfs name v1" / "tcfs key id v1"): the
//     encryption key, the naming key and the key-id key. The master key is
//     used for nothing else.
//  2. Sealed object = header (40 bytes: magic "TCFSENC1", a random 256-bit
//     salt) then the segments. Segment i holds plain bytes
//     [i*kSegment, (i+1)*kSegment) encrypted, then its 16-byte GCM tag.
//     An empty object has one empty segment (so it is never 0 bytes long).
//     The sealed length is a function of the plain length (sealed_len) and
//     back (plain_len), so a range read knows where segments lie.
//  3. Each object has its own AES key: HMAC-SHA256(encryption key,
//     "tcfs object" || salt). The GCM nonce is be64(i) || 00 00 00 || L,
//     L = 1 on the last segment and 0 before it. A fresh random salt per
//     seal means (key, nonce) never repeats; the index and L in the nonce
//     mean reordered, dropped, truncated or extended segments fail their tag.
//  4. Every tag also covers (AAD) the magic and the object's NAME: a sealed
//     object copied under another name fails to open.
//  5. Any failure to open (wrong key, a tampered byte, a wrong length,
//     another name) is EIO naming the object; no plain byte of a segment
//     whose tag fails is ever returned.
//  6. content_hash(x) = HMAC-SHA256(naming key, x): equal content still has
//     equal names (deduplication) but a name says nothing about the content
//     to whoever lacks the key. key_id() = HMAC-SHA256(key-id key, "tcfs
//     key id") in hex identifies the key without revealing it.
//  7. Key file: exactly 32 raw bytes, or 64 hex digits (a trailing newline
//     allowed). It must be a regular file not readable or writable by
//     group or others; else load_key_file refuses, naming the path.
//     create_key_file() writes 32 bytes from RAND_bytes, mode 0600,
//     O_EXCL (never over an existing file).
//
// Thread-safety: a Cipher is immutable after make(); every member may be
// called from many threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "blob/hash.h"
#include "tcfs/status.h"

namespace tcfs::blob {

constexpr size_t kKeyBytes = 32;
constexpr uint64_t kSegment = 64u << 10;
constexpr size_t kSealHeader = 40;
constexpr size_t kTag = 16;

class Cipher {
 public:
  static Result<std::shared_ptr<const Cipher>> make(std::string_view master);

  // Lengths (cipher.h 2).
  static uint64_t sealed_len(uint64_t plain);
  static Result<uint64_t> plain_len(uint64_t sealed);

  Result<std::string> seal(const std::string& name, std::string_view plain) const;
  Result<std::string> open(const std::string& name, std::string_view sealed) const;

  // The segments holding plain bytes [off, off+len) of an object of
  // plain_len bytes: sealed bytes [c_off, c_off + c_len), whose plain form
  // starts at plain byte p_off.
  struct Span {
    uint64_t first = 0, last = 0;  // segment indices
    uint64_t c_off = 0, c_len = 0, p_off = 0;
  };
  static Span span(uint64_t plain_len, uint64_t off, uint64_t len);
  // Opens the segments of sp given the object's header and those sealed bytes.
  Result<std::string> open_span(const std::string& name, uint64_t plain_len, std::string_view header,
                                const Span& sp, std::string_view segs) const;

  Hash content_hash(std::string_view data) const;  // cipher.h 6
  std::string key_id() const;                      // cipher.h 6

 private:
  Cipher() = default;
  Result<std::string> object_key(const std::string& name, std::string_view header) const;
  std::string enc_, name_, id_;  // subkeys (cipher.h 1)
};

// cipher.h 7.
Result<std::string> load_key_file(const std::string& path);
Result<std::string> create_key_file(const std::string& path);

}  // namespace tcfs::blob
