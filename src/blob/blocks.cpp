// blob/blocks.cpp — blocks and packs (blocks.h; notes cited as "blocks.h N").
#include "blob/blocks.h"

#include <openssl/rand.h>

#include <cassert>
#include <cstring>

namespace tcfs::blob {
namespace {

void put_le(std::string& s, uint64_t v, int n) {
  for (int i = 0; i < n; i++) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t get_le(const char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v |= uint64_t{static_cast<uint8_t>(p[i])} << (8 * i);
  return v;
}

}  // namespace

Hash random_id() {
  Hash h;
  if (RAND_bytes(h.b.data(), static_cast<int>(h.b.size())) != 1) {
    // OpenSSL's generator failing is not recoverable here; fall back to the hash of time and address.
    std::string seed = std::to_string(reinterpret_cast<uintptr_t>(&h)) + std::to_string(time(nullptr));
    h = sha256(seed);
  }
  return h;
}

std::string block_object_name(const Hash& h) {
  std::string x = h.hex();
  return "b/" + x.substr(0, 2) + "/" + x;
}
std::string pack_object_name(const Hash& id) {
  std::string x = id.hex();
  return "p/" + x.substr(0, 2) + "/" + x;
}

std::string BlockRef::object_name() const { return packed ? pack_object_name(obj) : block_object_name(obj); }

// Layout: version(1) hash(32) len(4) packed(1) obj(32) objlen(4) off(4).
std::string BlockRef::encode() const {
  std::string s;
  s.reserve(kEncoded);
  s.push_back(1);
  s.append(hash.bytes());
  put_le(s, len, 4);
  s.push_back(packed ? 1 : 0);
  s.append(obj.bytes());
  put_le(s, objlen, 4);
  put_le(s, off, 4);
  assert(s.size() == kEncoded);
  return s;
}

Result<BlockRef> BlockRef::decode(std::string_view s) {
  if (s.size() != kEncoded || s[0] != 1) return Status::error(EINVAL, "block reference: bad encoding");
  BlockRef r;
  r.hash = Hash::from_bytes(s.substr(1, 32));
  r.len = static_cast<uint32_t>(get_le(s.data() + 33, 4));
  r.packed = s[37] != 0;
  r.obj = Hash::from_bytes(s.substr(38, 32));
  r.objlen = static_cast<uint32_t>(get_le(s.data() + 70, 4));
  r.off = static_cast<uint32_t>(get_le(s.data() + 74, 4));
  if (r.len > kMaxBlock || uint64_t{r.off} + r.len > r.objlen || (!r.packed && (r.off != 0 || r.objlen != r.len)))
    return Status::error(EINVAL, "block reference: inconsistent fields");
  return r;
}

Result<BlockRef> BlockWriter::put(std::string_view data, const Hash& hash) {
  if (data.size() > kMaxBlock)
    return Status::error(EINVAL, "block of " + std::to_string(data.size()) + " bytes: larger than 4 MiB");
  BlockRef r;
  r.hash = hash;
  r.len = static_cast<uint32_t>(data.size());
  if (data.size() >= opt_.pack_threshold) {  // blocks.h 1: its own object
    r.obj = r.hash;
    r.objlen = r.len;
    TCFS_TRY(os_.put(block_object_name(r.hash), data, Durability::batched));  // blocks.h 3
    return r;
  }
  Pack full;
  bool seal = false;
  {
    MutexLock g(mu_);
    if (!have_open_) {
      open_ = Pack{random_id(), {}};
      open_.bytes.reserve(opt_.pack_target);
      have_open_ = true;
    }
    r.packed = true;
    r.obj = open_.id;
    r.off = static_cast<uint32_t>(open_.bytes.size());
    open_.bytes.append(data);
    if (open_.bytes.size() >= opt_.pack_target) {
      full = std::move(open_);
      have_open_ = false;
      seal = true;
    }
  }
  if (seal) TCFS_TRY(write_pack(std::move(full)));
  return r;  // objlen is set by finish() once the pack is sealed (blocks.h 3)
}

Status BlockWriter::write_pack(Pack p) {
  Status st = os_.put(pack_object_name(p.id), p.bytes, Durability::batched);  // blocks.h 3
  MutexLock g(mu_);
  if (st) {
    packs_written_++;
    sealed_[p.id] = static_cast<uint32_t>(p.bytes.size());
  } else if (failed_) {
    failed_ = st;
  }
  return st;
}

Status BlockWriter::finish(BlockRef& r) const {
  if (!r.packed) return {};
  MutexLock g(mu_);
  auto it = sealed_.find(r.obj);
  if (it == sealed_.end()) return Status::error(EAGAIN, "block " + r.hash.hex() + ": its pack is not written yet");
  r.objlen = it->second;
  return {};
}

Status BlockWriter::flush() {
  Pack p;
  bool have = false;
  {
    MutexLock g(mu_);
    if (have_open_) {
      p = std::move(open_);
      have_open_ = false;
      have = true;
    }
  }
  Status st = have ? write_pack(std::move(p)) : Status{};
  MutexLock g(mu_);
  Status f = failed_;
  failed_ = Status{};
  return f ? st : f;
}

Result<std::string> read_block(ObjectStore& os, const BlockRef& ref) {
  Verify v = [&](std::string_view bytes) { return os.content_hash(bytes) == ref.hash; };  // blocks.h 1, 4
  return os.read(ref.object_name(), ref.objlen, ref.off, ref.len, v);
}

}  // namespace tcfs::blob
