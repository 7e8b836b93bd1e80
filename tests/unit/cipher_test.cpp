// Unit tests for blob/cipher.h and sealed objects (objects.h 7): round
// trips, ranged reads across segment and shard boundaries, the wrong key,
// tampered, truncated, extended, reordered and renamed objects, keyed
// content hashes, repair under encryption, and key files.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <isa-l/crc.h>
#include <sys/stat.h>

#include <filesystem>
#include <thread>

#include "blob/blobber.h"
#include "blob/blocks.h"
#include "blob/cipher.h"
#include "blob/objects.h"
#include "test_util.h"

using namespace tcfs;
using namespace tcfs::blob;
namespace fs = std::filesystem;

namespace {

std::shared_ptr<const Cipher> cipher(uint32_t seed) {
  auto c = Cipher::make(random_bytes(kKeyBytes, seed));
  REQUIRE(c.is_ok());
  return *c;
}

uint32_t crc32c(std::string_view s) {
  return crc32_iscsi(reinterpret_cast<unsigned char*>(const_cast<char*>(s.data())), static_cast<int>(s.size()), 0);
}
void put_le32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; i++) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// Flips a payload byte of a shard file and recomputes both of its CRCs
// (objects.cpp: 12 header crc, 32 payload crc), as a forger would.
void forge(const std::string& file, size_t at) {
  std::string s = read_file(file);
  s[kShardHeader + at] ^= 0x20;
  put_le32(s, 32, crc32c(std::string_view(s).substr(kShardHeader)));
  put_le32(s, 12, 0);
  put_le32(s, 12, crc32c(std::string_view(s).substr(0, kShardHeader)));
  write_file(file, s);
}

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// k+m dir blobbers under one temp dir, objects sealed with key `seed`.
struct Set {
  TempDir tmp;
  std::unique_ptr<ObjectStore> os;
  Set(unsigned k, unsigned m, uint32_t seed) { reopen(k, m, seed); }
  void reopen(unsigned k, unsigned m, uint32_t seed) {
    std::vector<std::unique_ptr<Blobber>> bl;
    for (unsigned i = 0; i < k + m; i++) {
      fs::create_directories(tmp / ("b" + std::to_string(i)));
      auto b = open_blobber("dir://" + tmp / ("b" + std::to_string(i)), {});
      REQUIRE(b.is_ok());
      bl.push_back(std::move(*b));
    }
    auto r = ObjectStore::make(std::move(bl), k, m, seed ? cipher(seed) : nullptr);
    REQUIRE(r.is_ok());
    os = std::move(*r);
  }
  std::string shard_file(const std::string& name, unsigned i) {
    return tmp / ("b" + std::to_string(os->place(name, i))) + "/" + name + "." + std::to_string(i);
  }
};

}  // namespace

TEST_CASE("cipher: sealed lengths, round trips at segment edges, every seal different") {
  auto c = cipher(1);
  for (uint64_t n : std::vector<uint64_t>{0, 1, kSegment - 1, kSegment, kSegment + 1, 3 * kSegment + 17}) {
    CAPTURE(n);
    std::string p = random_bytes(n, 7);
    auto s = c->seal("b/aa/x", p);
    REQUIRE(s.is_ok());
    CHECK(s->size() == Cipher::sealed_len(n));
    CHECK(Cipher::plain_len(s->size()).value() == n);
    CHECK(c->open("b/aa/x", *s).value() == p);
    CHECK(c->seal("b/aa/x", p).value() != *s);  // a fresh salt each time (cipher.h 3)
    if (n >= 16) CHECK_FALSE(contains(*s, p.substr(0, 16)));
  }
  // Lengths no seal produces are refused.
  CHECK(Cipher::plain_len(kSealHeader + kTag - 1).err() == EIO);
  CHECK(Cipher::plain_len(kSealHeader + kSegment + kTag + 5).err() == EIO);
}

TEST_CASE("cipher: ranged opens across segment boundaries give exactly the range") {
  auto c = cipher(2);
  const std::string p = random_bytes(5 * kSegment + 999, 3), name = "p/ab/pack";
  std::string s = c->seal(name, p).value();
  struct R {
    uint64_t off, len;
  };
  for (R r : {R{0, 1}, R{kSegment - 3, 6}, R{kSegment, kSegment}, R{100, 3 * kSegment}, R{5 * kSegment, 999},
              R{5 * kSegment + 998, 1}, R{0, 5 * kSegment + 999}}) {
    CAPTURE(r.off);
    CAPTURE(r.len);
    auto sp = Cipher::span(p.size(), r.off, r.len);
    auto o = c->open_span(name, p.size(), s.substr(0, kSealHeader), sp, s.substr(sp.c_off, sp.c_len));
    REQUIRE(o.is_ok());
    CHECK(o->substr(r.off - sp.p_off, r.len) == p.substr(r.off, r.len));
  }
}

TEST_CASE("cipher: the wrong key, a tampered byte, truncation, extension, reordering and renaming all fail") {
  auto c = cipher(4);
  const std::string name = "n/j/0001/c/0", p = random_bytes(3 * kSegment + 10, 5);
  const std::string s = c->seal(name, p).value();
  CHECK(cipher(5)->open(name, s).err() == EIO);
  auto o = c->open("n/j/0001/c/1", s);  // the same object under another name (cipher.h 4)
  CHECK(o.err() == EIO);
  CHECK(contains(o.status().message(), "n/j/0001/c/1"));
  for (size_t at : {size_t{0}, size_t{9}, kSealHeader, kSealHeader + kSegment + 3, s.size() - 1}) {
    CAPTURE(at);
    std::string t = s;
    t[at] ^= 1;
    CHECK(c->open(name, t).err() == EIO);
  }
  // Cut after whole segments: a length that fits, but the last tag is missing.
  CHECK(c->open(name, s.substr(0, kSealHeader + 2 * (kSegment + kTag))).err() == EIO);
  CHECK(c->open(name, s.substr(0, s.size() - 1)).err() == EIO);
  // Extended with a segment of another object sealed under the same name.
  std::string other = c->seal(name, p).value();
  CHECK(c->open(name, s + other.substr(kSealHeader, kSegment + kTag)).err() == EIO);
  // Two whole segments swapped.
  std::string sw = s;
  const size_t L = kSegment + kTag;
  sw.replace(kSealHeader, L, s.substr(kSealHeader + L, L));
  sw.replace(kSealHeader + L, L, s.substr(kSealHeader, L));
  CHECK(c->open(name, sw).err() == EIO);
  // Plain bytes are not a sealed object.
  CHECK(c->open(name, std::string(200, 'x')).err() == EIO);
}

TEST_CASE("cipher: keyed content hashes deduplicate without being SHA-256; key ids tell keys apart") {
  auto a = cipher(6), b = cipher(7);
  const std::string x = "hello, blobbers";
  CHECK(a->content_hash(x) == a->content_hash(x));
  CHECK(a->content_hash(x) != sha256(x));
  CHECK(a->content_hash(x) != b->content_hash(x));
  CHECK(a->key_id() != b->key_id());
  CHECK(a->key_id() == cipher(6)->key_id());
  CHECK(Cipher::make("short").err() == EINVAL);
}

TEST_CASE("sealed objects: ranges across shards and segments, no plain bytes on the blobbers, keyed block names") {
  Set s(2, 1, 8);
  const std::string name = "p/cd/pack", marker = "MARKER-in-the-plain-bytes";
  std::string data = random_bytes(300000, 9);
  data.replace(70000, marker.size(), marker);
  REQUIRE(s.os->put(name, data).is_ok());
  for (unsigned i = 0; i < 3; i++) {
    std::string f = read_file(s.shard_file(name, i));
    CHECK(f.size() == kShardHeader + (Cipher::sealed_len(data.size()) + 1) / 2);
    CHECK_FALSE(contains(f, marker));
  }
  for (uint64_t off : std::vector<uint64_t>{0, kSegment - 5, 150000 - 7, 299990}) {
    CAPTURE(off);
    uint64_t len = std::min<uint64_t>(20, data.size() - off);
    CHECK(s.os->read(name, data.size(), off, len, {}).value() == data.substr(off, len));
  }
  CHECK(s.os->read_all(name, {}).value() == data);
  CHECK(s.os->stats().degraded_reads == 0);
  // Blocks are named by the keyed hash, and read back verified by it.
  BlockWriter w(*s.os, BlockWriterOptions{16, 1 << 20});
  std::string block = random_bytes(1000, 10);
  auto ref = w.put(block);
  REQUIRE(ref.is_ok());
  CHECK(ref->hash == s.os->content_hash(block));
  CHECK_FALSE(contains(ref->object_name(), sha256(block).hex()));
  CHECK(read_block(*s.os, *ref).value() == block);
}

TEST_CASE("sealed objects: a damaged shard is repaired; beyond M, or with another key, reads are EIO") {
  Set s(2, 1, 11);
  const std::string name = "b/ef/block";
  std::string data = random_bytes(200000, 12);
  REQUIRE(s.os->put(name, data).is_ok());
  Verify whole = [&](std::string_view b) { return b == data; };
  // One flipped ciphertext byte in a data shard: the CRC catches it, parity rebuilds it.
  std::string f0 = s.shard_file(name, 0), before = read_file(f0);
  std::string b = before;
  b[kShardHeader + 5000] ^= 0x40;
  write_file(f0, b);
  CHECK(s.os->read(name, data.size(), 4990, 30, {}).value() == data.substr(4990, 30));
  CHECK(s.os->stats().degraded_reads == 1);
  CHECK(read_file(f0) == before);  // repaired exactly
  // Two of three shards flipped: more than M, an error naming the object, never bytes.
  for (unsigned i : {0u, 1u}) {
    std::string f = s.shard_file(name, i), t = read_file(f);
    t[kShardHeader + 100] ^= 0x01;
    write_file(f, t);
  }
  auto r = s.os->read(name, data.size(), 0, 1000, whole);
  CHECK(r.err() == EIO);
  CHECK(contains(r.status().message(), name));
  CHECK(s.os->read_all(name, whole).err() == EIO);
  // A whole, CRC-good object read with another key: shards are fine, the seal is not.
  REQUIRE(s.os->put("b/ef/other", data).is_ok());
  s.reopen(2, 1, 99);
  auto o = s.os->read("b/ef/other", data.size(), 0, 10, {});
  CHECK(o.err() == EIO);
  CHECK(contains(o.status().message(), "b/ef/other"));
  auto rep = s.os->scrub("b/ef/other", {});
  REQUIRE(rep.is_ok());
  CHECK_FALSE(rep->readable);
  // The same blobbers without a cipher: sealed bytes come back sealed, never "plain".
  s.reopen(2, 1, 0);
  CHECK(s.os->read_all("b/ef/other", whole).err() == EIO);
}

TEST_CASE("sealed objects: shards altered with their CRCs recomputed are routed around up to M, refused beyond") {
  Set s(2, 1, 13);
  const std::string name = "p/aa/pack";
  std::string data = random_bytes(150000, 14);
  REQUIRE(s.os->put(name, data).is_ok());
  for (unsigned i = 0; i < 3; i++) {
    CAPTURE(i);
    std::string f = s.shard_file(name, i), before = read_file(f);
    forge(f, 1000);
    if (i < 2) {  // a data shard: the read notices, finds the K shards that open, rewrites the forged one
      CHECK(s.os->read(name, data.size(), 0, data.size(), {}).value() == data);
      CHECK(read_file(f) == before);
    } else {  // parity: reads never need it; scrub finds it disagrees and rewrites it
      auto rep = s.os->scrub(name, {});
      REQUIRE(rep.is_ok());
      CHECK(rep->readable);
      CHECK(rep->bad == 1);
      CHECK(rep->repaired == 1);
      CHECK(read_file(f) == before);
    }
  }
  forge(s.shard_file(name, 0), 10);
  forge(s.shard_file(name, 1), 10);
  auto r = s.os->read_all(name, {});
  CHECK(r.err() == EIO);
  CHECK(contains(r.status().message(), name));
  auto rep = s.os->scrub(name, {});
  CHECK((!rep.is_ok() || !rep->readable));
}

TEST_CASE("key files: created private, read raw or hex, refused when readable by others or malformed") {
  TempDir tmp;
  const std::string p = tmp / "key";
  auto k = create_key_file(p);
  REQUIRE(k.is_ok());
  CHECK(k->size() == kKeyBytes);
  struct stat st {};
  REQUIRE(stat(p.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(load_key_file(p).value() == *k);
  CHECK(create_key_file(p).err() == EEXIST);  // never over an existing key
  const std::string hex = tmp / "hex";
  write_file(hex, Hash::from_bytes(*k).hex() + "\n");
  chmod(hex.c_str(), 0600);
  CHECK(load_key_file(hex).value() == *k);
  chmod(hex.c_str(), 0640);
  auto r = load_key_file(hex);
  CHECK(r.err() == EPERM);
  CHECK(contains(r.status().message(), hex));
  const std::string bad = tmp / "bad";
  write_file(bad, "too short");
  chmod(bad.c_str(), 0600);
  CHECK(load_key_file(bad).err() == EINVAL);
  CHECK(load_key_file(tmp / "absent").err() == ENOENT);
}

namespace {

// Another ObjectStore over the same blobber directories (another host).
std::unique_ptr<ObjectStore> second_store(Set& s, unsigned n, uint32_t seed) {
  std::vector<std::unique_ptr<Blobber>> bl;
  for (unsigned i = 0; i < n; i++) bl.push_back(std::move(open_blobber("dir://" + s.tmp / ("b" + std::to_string(i)), {}).value()));
  return std::move(ObjectStore::make(std::move(bl), n - 1, 1, seed ? cipher(seed) : nullptr).value());
}

}  // namespace

TEST_CASE("objects.h 8: a marker is created once (the arbiter decides), copied, read and listed without the arbiter") {
  for (uint32_t seed : {0u, 5u}) {
    CAPTURE(seed);
    Set a(2, 1, seed);
    auto b = second_store(a, 3, seed);
    REQUIRE(a.os->create_marker("n/r/0000000000000001", "writer A, journal x").is_ok());
    for (int i = 0; i < 3; i++) {
      std::string f = a.tmp / ("b" + std::to_string(i)) + "/n/r/0000000000000001";
      REQUIRE_MESSAGE(fs::exists(f), f);
      CHECK(contains(read_file(f), "writer A") == (seed == 0));  // sealed with a key: no plaintext on the blobbers
    }
    std::string holder;
    Status st = b->create_marker("n/r/0000000000000001", "writer B, journal y", &holder);
    CHECK(st.err() == EEXIST);
    CHECK(contains(st.message(), "n/r/0000000000000001"));
    CHECK(holder == "writer A, journal x");
    CHECK(a.os->create_marker("n/r/0000000000000001", "writer A, journal x").is_ok());  // retried create
    CHECK(b->read_marker("n/r/0000000000000001").value() == "writer A, journal x");
    REQUIRE(b->create_marker("n/r/0000000000000002", "writer B, journal z").is_ok());
    CHECK(a.os->list_markers("n/r/").value() == std::vector<std::string>{"n/r/0000000000000001", "n/r/0000000000000002"});
    CHECK(a.os->list_markers("n/r/", "n/r/0000000000000001").value() == std::vector<std::string>{"n/r/0000000000000002"});
    REQUIRE(a.os->put("n/j/x/end", "an ordinary object").is_ok());
    CHECK(a.os->list("n/").value() == std::vector<std::string>{"n/j/x/end"});  // markers are not objects
    // The arbiter gone: reads and listings come from the copies; no create succeeds.
    fs::rename(a.tmp / "b0", a.tmp / "b0.away");
    CHECK(b->read_marker("n/r/0000000000000002").value() == "writer B, journal z");
    CHECK(b->list_markers("n/r/").value().size() == 2);
    CHECK(!a.os->create_marker("n/r/0000000000000003", "writer A").is_ok());
    CHECK(b->read_marker("n/r/0000000000000003").err() == ENOENT);
  }
}

TEST_CASE("objects.h 8: two stores racing on the same markers: exactly one creates each") {
  Set a(2, 1, 9);
  auto b = second_store(a, 3, 9);
  constexpr int kNames = 30;
  std::vector<int> won_a(kNames), won_b(kNames);
  auto run = [&](ObjectStore& os, std::vector<int>& won, const char* who) {
    for (int i = 0; i < kNames; i++) won[i] = os.create_marker("n/r/" + std::to_string(1000 + i), who).is_ok();
  };
  std::thread ta([&] { run(*a.os, won_a, "A"); }), tb([&] { run(*b, won_b, "B"); });
  ta.join();
  tb.join();
  for (int i = 0; i < kNames; i++) {
    CHECK_MESSAGE(won_a[i] + won_b[i] == 1, "marker " << i);
    CHECK(a.os->read_marker("n/r/" + std::to_string(1000 + i)).value() == (won_a[i] ? "A" : "B"));
  }
}
