// sync/stream.cpp — chunked, compressed, hash-checked record streams (stream.h).
#include "sync/stream.h"

#include <zstd.h>

#include <cstdio>

#include "sync/msgpack.h"
#include "util/check.h"
#include "util/fault.h"

namespace tcfs::sync {
namespace {

using json = nlohmann::json;
constexpr size_t kMaxRecord = 64u << 20;

void put_u32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; i++) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint32_t get_u32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v |= uint32_t{static_cast<uint8_t>(p[i])} << (8 * i);
  return v;
}

// The info fields readers take (restore, chain, gc: with json::value(),
// which throws on a type mismatch) have the types the writers give them.
bool info_well_typed(const json& info) {
  if (!info.is_object()) return false;
  for (const char* k : {"head", "prev", "kind"})
    if (auto it = info.find(k); it != info.end() && !it->is_string()) return false;
  for (const char* k : {"epoch", "boot"})
    if (auto it = info.find(k); it != info.end() && !it->is_number_unsigned()) return false;
  return true;
}

}  // namespace

std::string chunk_name(const std::string& base, size_t i) {
  char b[16];
  snprintf(b, sizeof b, "c%06zu", i);
  return base + "/" + b;
}

Status StreamWriter::add(std::string_view record) {
  if (record.size() > kMaxRecord) return Status::error(E2BIG, "stream " + base_ + ": record too large");
  put_u32(buf_, static_cast<uint32_t>(record.size()));
  buf_.append(record);
  records_++;
  if (buf_.size() >= target_) return flush_chunk();
  return {};
}

Status StreamWriter::flush_chunk() {
  if (buf_.empty()) return {};
  std::string z(ZSTD_compressBound(buf_.size()), '\0');
  size_t n = ZSTD_compress(z.data(), z.size(), buf_.data(), buf_.size(), 3);
  if (ZSTD_isError(n)) return Status::error(EIO, std::string("stream ") + base_ + ": zstd: " + ZSTD_getErrorName(n));
  z.resize(n);
  // A batched put: finish() runs the barrier before the end names it (stream.h).
  TCFS_TRY(os_.put(chunk_name(base_, chunks_.size()), z, blob::Durability::batched));
  chunks_.push_back(blob::sha256(z));
  written_ += z.size();
  buf_.clear();
  return {};
}

Status StreamWriter::finish(const json& info) {
  TCFS_TRY(flush_chunk());
  json hashes = json::array();
  for (const auto& h : chunks_) hashes.push_back(h.hex());
  json end = {{"v", 1}, {"chunks", hashes}, {"records", records_}, {"info", info}};
  auto bytes = json::to_msgpack(end);
  std::string body(bytes.begin(), bytes.end());
  body.append(blob::sha256(body).bytes());
  // The barrier, then the end: nothing the end names, directly or through
  // the records, can be lost once the end is there (sync.h 5).
  TCFS_TRY(os_.flush());
  TCFS_CHECK(os_.unflushed() == 0, "sync 5: the end object only once every block and chunk it names is durable");
  TCFS_CRASH_POINT("sync.after_barrier");
  return os_.put(base_ + "/end", body, blob::Durability::now);  // the stream exists from here on (stream.h; sync.h 7)
}

Result<StreamReader> StreamReader::open(blob::ObjectStore& os, const std::string& base) {
  auto verify = [](std::string_view b) {
    return b.size() > 32 && blob::sha256(b.substr(0, b.size() - 32)).bytes() == b.substr(b.size() - 32);
  };
  auto end = os.read_all(base + "/end", verify);
  if (!end) return end.status();
  std::string_view body(end->data(), end->size() - 32);
  json j = read_msgpack(body);  // nesting bounded (msgpack.h)
  auto bad = [&] { return Status::error(EIO, "stream " + base + ": malformed end object"); };
  if (j.is_discarded() || !j.is_object() || !j.contains("chunks") || !j["chunks"].is_array() ||
      !j.contains("records") || !j["records"].is_number_unsigned())
    return bad();
  StreamReader r(os, base);
  for (const auto& h : j["chunks"]) {
    if (!h.is_string()) return bad();
    auto hash = blob::Hash::from_hex(h.get<std::string>());
    if (!hash) return bad();
    r.chunks_.push_back(*hash);
  }
  r.total_ = j["records"].get<uint64_t>();
  r.info_ = j.value("info", json::object());
  if (!info_well_typed(r.info_)) return bad();
  return r;
}

Status StreamReader::load_chunk() {
  const blob::Hash want = chunks_[next_chunk_];
  std::string name = chunk_name(base_, next_chunk_);
  auto z = os_->read_all(name, [&](std::string_view b) { return blob::sha256(b) == want; });
  if (!z) return z.status();
  unsigned long long raw = ZSTD_getFrameContentSize(z->data(), z->size());
  if (raw == ZSTD_CONTENTSIZE_ERROR || raw == ZSTD_CONTENTSIZE_UNKNOWN || raw > (256ull << 20))
    return Status::error(EIO, "stream chunk " + name + ": not a zstd frame of known size");
  buf_.assign(raw, '\0');
  size_t n = ZSTD_decompress(buf_.data(), buf_.size(), z->data(), z->size());
  if (ZSTD_isError(n) || n != raw) return Status::error(EIO, "stream chunk " + name + ": does not decompress");
  pos_ = 0;
  next_chunk_++;
  return {};
}

Result<std::optional<std::string>> StreamReader::next() {
  while (pos_ >= buf_.size()) {
    if (next_chunk_ >= chunks_.size()) {
      if (seen_ != total_)
        return Status::error(EIO, "stream " + base_ + ": " + std::to_string(seen_) + " records, end says " +
                                      std::to_string(total_));
      return std::optional<std::string>();
    }
    TCFS_TRY(load_chunk());
  }
  if (buf_.size() - pos_ < 4) return Status::error(EIO, "stream " + base_ + ": cut record");
  uint32_t n = get_u32(buf_.data() + pos_);
  if (buf_.size() - pos_ - 4 < n) return Status::error(EIO, "stream " + base_ + ": cut record");
  std::string rec = buf_.substr(pos_ + 4, n);
  pos_ += 4 + n;
  seen_++;
  return std::optional<std::string>(std::move(rec));
}

}  // namespace tcfs::sync
