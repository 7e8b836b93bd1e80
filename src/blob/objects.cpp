// blob/objects.cpp — erasure-coded objects over a blobber set (objects.h;
// the numbered notes there are cited as "objects.h N").
#include "blob/objects.h"

#include <isa-l/crc.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <optional>
#include <set>
#include <thread>

#include "blob/hash.h"
#include "util/parallel.h"

namespace tcfs::blob {
namespace {

constexpr char kMagic[8] = {'T', 'C', 'F', 'S', 'S', 'H', 'D', '1'};

uint32_t crc32c(std::string_view s) {
  return crc32_iscsi(reinterpret_cast<unsigned char*>(const_cast<char*>(s.data())), static_cast<int>(s.size()), 0);
}

void put_le(char* p, uint64_t v, int n) {
  for (int i = 0; i < n; i++) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint64_t get_le(const char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v |= uint64_t{static_cast<uint8_t>(p[i])} << (8 * i);
  return v;
}

struct Header {
  unsigned k = 0, m = 0, index = 0;
  uint64_t objlen = 0, shardlen = 0;
  uint32_t crc = 0;
};

// Header layout (objects.h 2): 0 magic[8] | 8 version,k,m,index | 12 header
// crc | 16 objlen | 24 shardlen | 32 payload crc | 36 reserved | 40 id[24].
std::string encode_header(const std::string& name, const Header& h) {
  std::string s(kShardHeader, '\0');
  std::memcpy(s.data(), kMagic, 8);
  s[8] = 1;
  s[9] = static_cast<char>(h.k);
  s[10] = static_cast<char>(h.m);
  s[11] = static_cast<char>(h.index);
  put_le(&s[16], h.objlen, 8);
  put_le(&s[24], h.shardlen, 8);
  put_le(&s[32], h.crc, 4);
  Hash id = sha256(name);
  std::memcpy(&s[40], id.b.data(), 24);
  put_le(&s[12], crc32c(s), 4);
  return s;
}

// Why the header is bad, or "" when it is right for (name, index, code).
std::string check_header(const std::string& name, std::string_view s, unsigned k, unsigned m, unsigned index,
                         Header& h) {
  if (s.size() < kShardHeader) return "shorter than its header";
  if (std::memcmp(s.data(), kMagic, 8) != 0 || s[8] != 1) return "not a tcfs shard";
  std::string copy(s.substr(0, kShardHeader));
  uint32_t want = static_cast<uint32_t>(get_le(&copy[12], 4));
  put_le(&copy[12], 0, 4);
  if (crc32c(copy) != want) return "header checksum mismatch";
  h.k = static_cast<uint8_t>(s[9]);
  h.m = static_cast<uint8_t>(s[10]);
  h.index = static_cast<uint8_t>(s[11]);
  h.objlen = get_le(&s[16], 8);
  h.shardlen = get_le(&s[24], 8);
  h.crc = static_cast<uint32_t>(get_le(&s[32], 4));
  Hash id = sha256(name);
  if (std::memcmp(&s[40], id.b.data(), 24) != 0) return "belongs to another object";
  if (h.k != k || h.m != m || h.index != index) return "wrong code or shard index";
  // ceil(objlen / k) without overflow: a header claiming ~2^64 bytes must not wrap to a small shard.
  if (h.shardlen != h.objlen / k + (h.objlen % k != 0)) return "shard length does not fit the object length";
  return "";
}

std::string shard_key(const std::string& name, unsigned i) { return name + "." + std::to_string(i); }

}  // namespace

enum class Shard { Unread, Good, Bad, Missing };

struct ObjectStore::Whole {
  uint64_t objlen = 0, shardlen = 0;
  std::vector<std::string> payload;  // by shard index; valid where state == Good
  std::vector<Shard> state;
  std::vector<std::string> why;  // for Bad/Missing: what was wrong
  std::string data;              // the object, once rebuilt
};

Result<std::unique_ptr<ObjectStore>> ObjectStore::make(std::vector<std::unique_ptr<Blobber>> blobbers, unsigned k,
                                                       unsigned m, std::shared_ptr<const Cipher> cipher) {
  auto codec = Codec::make(k, m);
  if (!codec) return codec.status();
  if (blobbers.size() != size_t{k} + m)
    return Status::error(EINVAL, "erasure code " + std::to_string(k) + "+" + std::to_string(m) + " needs " +
                                     std::to_string(k + m) + " blobbers, " + std::to_string(blobbers.size()) +
                                     " given");
  return std::unique_ptr<ObjectStore>(new ObjectStore(std::move(blobbers), std::move(*codec), std::move(cipher)));
}

size_t ObjectStore::place(const std::string& name, unsigned i) const {
  Hash h = sha256(name);
  return (i + h.b[0]) % bl_.size();
}

Status ObjectStore::put_shards(const std::string& name, uint64_t len, const std::vector<std::string_view>& payloads,
                               const std::vector<unsigned>& which, Durability d) {
  if (d == Durability::batched) unflushed_++;
  std::vector<Status> st(which.size());
  parallel_for(which.size(), [&](size_t j) {
    unsigned i = which[j];
    Header h{k(), m(), i, len, payloads[i].size(), crc32c(payloads[i])};
    std::string head = encode_header(name, h);
    std::string_view body = payloads[i];
    uint64_t total = head.size() + body.size(), pos = 0;
    auto src = [&](char* buf, size_t n) -> Result<size_t> {
      size_t done = 0;
      while (done < n && pos < total) {
        std::string_view part = pos < head.size() ? std::string_view(head) : body;
        uint64_t at = pos < head.size() ? pos : pos - head.size();
        size_t take = static_cast<size_t>(std::min<uint64_t>(n - done, part.size() - at));
        std::memcpy(buf + done, part.data() + at, take);
        done += take;
        pos += take;
      }
      return done;
    };
    st[j] = bl_[place(name, i)]->put(shard_key(name, i), total, src, d);
  });
  std::string failed;
  int err = 0;
  for (size_t j = 0; j < which.size(); j++) {
    if (st[j]) continue;
    err = err ? err : st[j].err();
    failed += (failed.empty() ? "" : "; ") + st[j].message();
  }
  if (err) return Status::error(err, "object " + name + ": " + failed);
  stats_.bytes_put += len;
  return {};
}

Status ObjectStore::put(const std::string& name, std::string_view data, Durability d) {
  TCFS_TRY(check_key(name));
  std::string sealed;
  if (cipher_) {  // objects.h 7: every shard is ciphertext
    auto s = cipher_->seal(name, data);
    if (!s) return s.status();
    sealed = std::move(*s);
    data = sealed;
  }
  const uint64_t len = data.size();
  const size_t S = static_cast<size_t>((len + k() - 1) / k());
  std::vector<std::string> own;  // padded data shards and parity; views point into data or here
  return put_shards(name, len, encode(data, S, own), all_shards(), d);  // objects.h 3: every shard or an error
}

std::vector<unsigned> ObjectStore::all_shards() const {
  std::vector<unsigned> all(width());
  for (unsigned i = 0; i < width(); i++) all[i] = i;
  return all;
}

// The k data shards of S bytes (views into data where it holds a whole
// shard, zero-padded copies in own where not) and the m parity shards (in own).
std::vector<std::string_view> ObjectStore::encode(std::string_view data, size_t S, std::vector<std::string>& own) {
  const unsigned n = k() + m();
  own.reserve(n);  // views into own stay valid
  std::vector<std::string_view> shards(n);
  for (unsigned i = 0; i < k(); i++) {
    size_t at = std::min<size_t>(size_t{i} * S, data.size());
    std::string_view part = data.substr(at, S);
    if (part.size() < S) {
      own.emplace_back(part);
      own.back().resize(S, '\0');
      part = own.back();
    }
    shards[i] = part;
  }
  std::vector<const uint8_t*> dp(k());
  std::vector<uint8_t*> pp(m());
  for (unsigned i = 0; i < k(); i++) dp[i] = reinterpret_cast<const uint8_t*>(shards[i].data());
  for (unsigned i = 0; i < m(); i++) {
    own.emplace_back(S, '\0');
    pp[i] = reinterpret_cast<uint8_t*>(own.back().data());
    shards[k() + i] = own.back();
  }
  codec_.encode(S, dp.data(), pp.data());
  return shards;
}

Status ObjectStore::flush() {
  uint64_t before = unflushed_.load();  // what this flush covers: puts that began before it
  std::vector<Status> st(width());
  parallel_for(width(), [&](size_t i) { st[i] = bl_[i]->flush(); });
  for (auto& s : st) TCFS_TRY(s);  // objects.h 3: durable only if every blobber says so
  unflushed_ -= before;
  return {};
}

Result<std::pair<unsigned, unsigned>> ObjectStore::code_of(const std::string& name) {
  TCFS_TRY(check_key(name));
  for (size_t i = 0; i < width() * width(); i++) {  // shards rotate over the blobbers: try each on each
    auto got = bl_[i / width()]->get_bytes(shard_key(name, static_cast<unsigned>(i % width())), 0, kShardHeader);
    if (!got) continue;
    Header h;
    // No code is ~0u: a header that is whole stops at the code check, its code read.
    if (check_header(name, *got, ~0u, 0, 0, h) == "wrong code or shard index" && h.k)
      return std::pair<unsigned, unsigned>{h.k, h.m};
  }
  return Status::error(ENOENT, name + ": no shard header reads back");
}

Result<ObjectStore::Whole> ObjectStore::read_whole(const std::string& name, uint64_t objlen_hint) {
  const unsigned n = k() + m();
  Whole w;
  w.payload.resize(n);
  w.state.assign(n, Shard::Unread);
  w.why.resize(n);
  std::vector<Header> hdr(n);
  auto fetch = [&](unsigned from, unsigned to) {
    parallel_for(to - from, [&](size_t j) {
      unsigned i = from + static_cast<unsigned>(j);
      Blobber& b = *bl_[place(name, i)];
      auto got = b.get_bytes(shard_key(name, i));
      if (!got) {
        w.state[i] = got.err() == ENOENT ? Shard::Missing : Shard::Bad;
        w.why[i] = got.status().message();
        return;
      }
      std::string why = check_header(name, *got, k(), m(), i, hdr[i]);
      if (why.empty() && got->size() != kShardHeader + hdr[i].shardlen) why = "wrong size";
      if (why.empty() && objlen_hint != kToEnd && hdr[i].objlen != objlen_hint) why = "wrong object length";
      std::string_view body = std::string_view(*got).substr(std::min(got->size(), kShardHeader));
      if (why.empty() && crc32c(body) != hdr[i].crc) why = "payload checksum mismatch";
      if (!why.empty()) {
        w.state[i] = Shard::Bad;
        w.why[i] = b.url() + ": " + shard_key(name, i) + ": " + why;
        return;
      }
      w.payload[i] = std::string(body);
      w.state[i] = Shard::Good;
    });
  };
  fetch(0, k());
  auto good = [&] { return std::count(w.state.begin(), w.state.end(), Shard::Good); };
  if (good() < k()) fetch(k(), n);  // objects.h 4: parity only when data is not enough
  std::vector<unsigned> have;
  for (unsigned i = 0; i < n; i++)
    if (w.state[i] == Shard::Good) have.push_back(i);
  // Shards of one object must agree on its length; a disagreeing minority is bad.
  if (!have.empty()) {
    uint64_t len = hdr[have[0]].objlen;
    for (unsigned i : have)
      if (hdr[i].objlen != len) return Status::error(EIO, "object " + name + ": shards disagree on its length");
    w.objlen = len;
    w.shardlen = hdr[have[0]].shardlen;
  }
  if (have.size() < k()) {
    std::string failed;
    for (unsigned i = 0; i < n; i++)
      if (w.state[i] == Shard::Bad || w.state[i] == Shard::Missing) failed += (failed.empty() ? "" : "; ") + w.why[i];
    spdlog::error("read {}: {} of {} shards usable, {} needed: {}", name, have.size(), n, k(), failed);
    return Status::error(EIO, "object " + name + ": only " + std::to_string(have.size()) + " of " +
                                  std::to_string(n) + " shards usable (" + std::to_string(k()) +
                                  " needed): " + failed);
  }
  have.resize(k());  // missing data shards are rebuilt from the first k good ones
  auto data = assemble(w, have);
  if (!data) return data.status();
  w.data = std::move(*data);
  return w;
}

// The object from the k good shards `have` (ascending): data shards not
// among them are rebuilt.
Result<std::string> ObjectStore::assemble(const Whole& w, const std::vector<unsigned>& have) const {
  std::vector<unsigned> want;
  for (unsigned i = 0; i < k(); i++)
    if (std::find(have.begin(), have.end(), i) == have.end()) want.push_back(i);
  std::vector<std::string> out(want.size(), std::string(w.shardlen, '\0'));
  if (!want.empty()) {
    std::vector<const uint8_t*> hp;
    for (unsigned i : have) hp.push_back(reinterpret_cast<const uint8_t*>(w.payload[i].data()));
    std::vector<uint8_t*> op;
    for (auto& o : out) op.push_back(reinterpret_cast<uint8_t*>(o.data()));
    TCFS_TRY(codec_.rebuild(w.shardlen, have, hp.data(), want, op.data()));
  }
  std::string data;
  data.reserve(w.shardlen * k());
  for (unsigned i = 0, j = 0; i < k(); i++) data += j < want.size() && want[j] == i ? out[j++] : w.payload[i];
  data.resize(w.objlen);
  return data;
}

// Reads the shards read_whole did not (parity, when the data shards were
// good), keeping the good ones' payloads: scrub checks them, and a sealed
// object that does not open is tried with them (open_sealed).
void ObjectStore::read_rest(const std::string& name, Whole& w) {
  for (unsigned i = 0; i < width(); i++) {
    if (w.state[i] != Shard::Unread) continue;
    Blobber& b = *bl_[place(name, i)];
    auto got = b.get_bytes(shard_key(name, i));
    Header h;
    std::string why = got ? check_header(name, *got, k(), m(), i, h) : got.status().message();
    if (got && why.empty() && (got->size() != kShardHeader + h.shardlen || h.objlen != w.objlen)) why = "wrong size";
    if (got && why.empty() && crc32c(std::string_view(*got).substr(kShardHeader)) != h.crc)
      why = "payload checksum mismatch";
    w.state[i] = why.empty() ? Shard::Good : (!got && got.err() == ENOENT ? Shard::Missing : Shard::Bad);
    w.why[i] = why.empty() ? "" : b.url() + ": " + shard_key(name, i) + ": " + why;
    if (why.empty()) w.payload[i] = got->substr(kShardHeader);
  }
}

// objects.h 7: the sealed object opened. When the shards that built it pass
// their checksums but it does not open (a shard altered with its CRC
// recomputed), every other set of K good shards is tried; with one that
// opens, the good shards that disagree with it are marked bad (repair
// rewrites them). Else EIO naming the object.
Result<std::string> ObjectStore::open_sealed(const std::string& name, Whole& w) {
  auto o = cipher_->open(name, w.data);
  if (o && std::find(w.state.begin(), w.state.end(), Shard::Unread) == w.state.end())
    mark_altered(name, w);  // every shard read (scrub): parity must fit the opened object too
  if (o || m() == 0) return log_sealed(name, o);
  read_rest(name, w);
  std::vector<unsigned> good;
  for (unsigned i = 0; i < width(); i++)
    if (w.state[i] == Shard::Good) good.push_back(i);
  std::vector<bool> pick(good.size(), false);
  std::fill(pick.begin(), pick.begin() + std::min<size_t>(k(), pick.size()), true);
  do {
    std::vector<unsigned> have;
    for (size_t j = 0; j < good.size(); j++)
      if (pick[j]) have.push_back(good[j]);
    auto data = assemble(w, have);
    auto p = data ? cipher_->open(name, *data) : Result<std::string>(data.status());
    if (!p) continue;
    w.data = std::move(*data);
    mark_altered(name, w);
    return p;
  } while (std::prev_permutation(pick.begin(), pick.end()));
  return log_sealed(name, o);
}

Result<std::string> ObjectStore::log_sealed(const std::string& name, Result<std::string>& o) const {
  if (!o) spdlog::error("read {}: does not open with the store's key: {}", name, o.status().message());
  return std::move(o);
}

// Good shards whose payload differs from what the opened object encodes to.
void ObjectStore::mark_altered(const std::string& name, Whole& w) {
  std::vector<std::string> own;
  std::vector<std::string_view> want = encode(w.data, w.shardlen, own);
  for (unsigned i = 0; i < width(); i++) {
    if (w.state[i] != Shard::Good || w.payload[i] == want[i]) continue;
    w.state[i] = Shard::Bad;
    w.why[i] = bl_[place(name, i)]->url() + ": " + shard_key(name, i) + ": altered (its checksum fits, the seal does not)";
    spdlog::warn("read {}: shard {} {}", name, i, w.why[i]);
  }
}

void ObjectStore::repair(const std::string& name, Whole& w) {
  const unsigned n = k() + m();
  std::vector<unsigned> fix;
  for (unsigned i = 0; i < n; i++)
    if (w.state[i] == Shard::Bad || w.state[i] == Shard::Missing) fix.push_back(i);
  if (fix.empty()) return;
  // Every payload from the rebuilt data: data shards are slices, parity is re-encoded.
  std::vector<std::string> own;
  std::vector<std::string_view> payloads = encode(w.data, w.shardlen, own);
  for (unsigned i : fix) {
    Status st = put_shards(name, w.objlen, payloads, {i}, Durability::now);  // objects.h 3
    if (st) {
      stats_.shards_repaired++;
      w.state[i] = Shard::Good;
      spdlog::warn("repair {}: rewrote shard {} on {} ({})", name, i, bl_[place(name, i)]->url(), w.why[i]);
    } else {
      stats_.repair_failures++;
      spdlog::warn("repair {}: shard {} could not be rewritten: {}", name, i, st.message());
    }
  }
}

// Bytes [off, off+len) of the stored (maybe sealed) object straight from
// the data shards that hold them (objects.h 4), unchecked.
Result<std::string> ObjectStore::read_fast(const std::string& name, uint64_t objlen, uint64_t off, uint64_t len) {
  const uint64_t S = (objlen + k() - 1) / k();
  const unsigned first = static_cast<unsigned>(off / S), last = static_cast<unsigned>((off + len - 1) / S);
  std::vector<Result<std::string>> piece(last - first + 1, Status::error(EIO));
  parallel_for(piece.size(), [&](size_t j) {
    unsigned i = first + static_cast<unsigned>(j);
    uint64_t a = std::max<uint64_t>(off, i * S) - i * S, b = std::min<uint64_t>(off + len, (i + 1) * S) - i * S;
    piece[j] = bl_[place(name, i)]->get_bytes(shard_key(name, i), kShardHeader + a, b - a);
    if (piece[j] && piece[j]->size() != b - a)
      piece[j] = Status::error(EIO, bl_[place(name, i)]->url() + ": " + shard_key(name, i) + ": short read");
  });
  for (auto& p : piece)
    if (!p) return p.status();
  if (piece.size() == 1) return std::move(piece[0]);  // the common case: no copy
  std::string out;
  out.reserve(static_cast<size_t>(len));
  for (auto& p : piece) out += *p;
  return out;
}

Result<std::string> ObjectStore::read(const std::string& name, uint64_t objlen, uint64_t off, uint64_t len,
                                      const Verify& verify) {
  TCFS_TRY(check_key(name));
  if (off > objlen || len > objlen - off)
    return Status::error(EINVAL, "object " + name + ": range " + std::to_string(off) + "+" + std::to_string(len) +
                                     " outside its " + std::to_string(objlen) + " bytes");
  if (len == 0) return std::string();
  if (cipher_) return read_sealed(name, objlen, off, len, verify);
  auto out = read_fast(name, objlen, off, len);
  if (out && (!verify || verify(*out))) {
    stats_.bytes_got += len;
    return out;
  }
  stats_.degraded_reads++;
  auto w = read_whole(name, objlen);  // objects.h 4: the fallback
  if (!w) return w.status();
  return rebuilt_range(name, *w, w->data, off, len, verify);
}

// objects.h 4: the range of an object rebuilt from good shards (`all`),
// checked by the verifier; then the bad shards are rewritten.
Result<std::string> ObjectStore::rebuilt_range(const std::string& name, Whole& w, const std::string& all,
                                               uint64_t off, uint64_t len, const Verify& verify) {
  std::string range = all.substr(off, len);
  if (verify && !verify(range)) {
    spdlog::error("read {}: content does not match its hash even rebuilt from good shards", name);
    return Status::error(EIO, "object " + name + ": content does not match its hash");
  }
  repair(name, w);
  stats_.bytes_got += len;
  return range;
}

// objects.h 7: the seal header and the segments holding the range, opened.
Result<std::string> ObjectStore::read_sealed(const std::string& name, uint64_t objlen, uint64_t off, uint64_t len,
                                             const Verify& verify) {
  const uint64_t clen = Cipher::sealed_len(objlen);
  const Cipher::Span sp = Cipher::span(objlen, off, len);
  // The header and the segments; one read when the range starts in segment 0.
  Result<std::string> head = read_fast(name, clen, 0, sp.first == 0 ? sp.c_off + sp.c_len : kSealHeader);
  Result<std::string> segs = Status::error(EIO);
  if (head && sp.first == 0) segs = head->substr(sp.c_off), head->resize(kSealHeader);
  else if (head) segs = read_fast(name, clen, sp.c_off, sp.c_len);
  auto opened = segs ? cipher_->open_span(name, objlen, *head, sp, *segs) : segs;
  if (opened) {
    std::string range = opened->substr(off - sp.p_off, len);
    if (!verify || verify(range)) {
      stats_.bytes_got += len;
      return range;
    }
  }
  stats_.degraded_reads++;
  auto w = read_whole(name, clen);  // objects.h 4: the fallback
  if (!w) return w.status();
  auto all = open_sealed(name, *w);
  if (!all) return all.status();  // cipher.h 5: never a byte that failed its tag
  return rebuilt_range(name, *w, *all, off, len, verify);
}

Result<std::string> ObjectStore::read_all(const std::string& name, const Verify& verify) {
  TCFS_TRY(check_key(name));
  auto w = read_whole(name, kToEnd);
  if (!w) return w.status();
  std::string opened;
  if (cipher_) {  // objects.h 7
    auto o = open_sealed(name, *w);
    if (!o) return o.status();
    opened = std::move(*o);
  }
  std::string_view p = cipher_ ? std::string_view(opened) : std::string_view(w->data);
  if (verify && !verify(p)) return Status::error(EIO, "object " + name + ": content does not match its hash");
  repair(name, *w);
  stats_.bytes_got += p.size();
  return cipher_ ? std::move(opened) : std::move(w->data);
}

Status ObjectStore::remove(const std::string& name) {
  TCFS_TRY(check_key(name));
  std::vector<Status> st(width());
  parallel_for(width(), [&](size_t i) {
    st[i] = bl_[place(name, static_cast<unsigned>(i))]->del(shard_key(name, static_cast<unsigned>(i)));
  });
  for (auto& s : st) TCFS_TRY(s);
  return {};
}

Result<ScrubReport> ObjectStore::scrub(const std::string& name, const Verify& verify, bool repair_shards) {
  TCFS_TRY(check_key(name));
  ScrubReport rep;
  auto w = read_whole(name, kToEnd);
  // read_whole stops after the data shards when they are good: scrub checks
  // parity too, by reading the object again through every shard.
  if (!w) return w.status();  // fewer than K good shards: nothing to repair from
  read_rest(name, *w);
  std::optional<Result<std::string>> opened;  // objects.h 7: before counting, it may find altered shards
  if (cipher_) opened = open_sealed(name, *w);
  for (auto s : w->state) {
    rep.good += s == Shard::Good;
    rep.bad += s == Shard::Bad;
    rep.missing += s == Shard::Missing;
  }
  if (opened) {
    rep.readable = *opened && (!verify || verify(**opened));
  } else {
    rep.readable = !verify || verify(w->data);
  }
  if (!rep.readable || !repair_shards) return rep;  // repair_shards false: tcfs fsck --remote without --repair
  uint64_t before = stats_.shards_repaired;
  repair(name, *w);
  rep.repaired = static_cast<unsigned>(stats_.shards_repaired - before);
  return rep;
}

Result<std::vector<std::string>> ObjectStore::list(const std::string& prefix, std::vector<std::string>* unreachable) {
  std::vector<Result<std::vector<ObjectInfo>>> per(width(), Status::error(EIO));
  parallel_for(width(), [&](size_t i) { per[i] = bl_[i]->list_all(prefix); });
  std::set<std::string> names;
  std::vector<std::string> failed;
  int err = 0;
  for (auto& r : per) {
    if (!r) {
      err = err ? err : r.err();
      failed.push_back(r.status().message());
      continue;
    }
    for (auto& o : *r) {
      auto dot = o.key.rfind('.');
      if (dot == std::string::npos) continue;  // not a shard
      names.insert(o.key.substr(0, dot));
    }
  }
  std::string all;
  for (const auto& f : failed) all += (all.empty() ? "" : "; ") + f;
  if (failed.size() > m())  // objects.h 6: beyond M the listing may miss objects
    return Status::error(err, "list " + prefix + ": " + std::to_string(failed.size()) + " of " +
                                  std::to_string(width()) + " blobbers do not answer (at most " +
                                  std::to_string(m()) + " may be missing): " + all);
  for (const auto& f : failed) {
    spdlog::warn("list {}: blobber missing, listing from the others: {}", prefix, f);
    if (unreachable) unreachable->push_back(f);
  }
  return std::vector<std::string>(names.begin(), names.end());
}

}  // namespace tcfs::blob
