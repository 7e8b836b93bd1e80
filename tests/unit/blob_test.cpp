// Unit tests for blob/: object keys, the dir:// backend, SHA-256, erasure
// coding (every erasure pattern up to M), sharded objects (degraded reads,
// corruption, repair, scrub) and blocks/packs. Real files in temp dirs.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "blob/blobber.h"
#include "blob/blocks.h"
#include "blob/ec.h"
#include "blob/hash.h"
#include "blob/metered.h"
#include "blob/objects.h"
#include "blob_create_only.h"
#include "test_util.h"
#include "util/fault.h"
#include "util/metrics.h"

using namespace tcfs;
using namespace tcfs::blob;
namespace fs = std::filesystem;

namespace {

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

std::unique_ptr<Blobber> dir_blobber(const std::string& path, int index = -1) {
  fs::create_directories(path);
  BlobberOptions o;
  o.index = index;
  auto b = open_blobber("dir://" + path, o);
  REQUIRE(b.is_ok());
  return std::move(b.value());
}

// k+m dir blobbers under one temp dir: <tmp>/b0 .. b<n-1>.
struct Set {
  TempDir tmp;
  std::unique_ptr<ObjectStore> os;
  Set(unsigned k, unsigned m) {
    std::vector<std::unique_ptr<Blobber>> bl;
    for (unsigned i = 0; i < k + m; i++) bl.push_back(dir_blobber(tmp / ("b" + std::to_string(i)), static_cast<int>(i)));
    auto r = ObjectStore::make(std::move(bl), k, m);
    REQUIRE(r.is_ok());
    os = std::move(r.value());
  }
  // The file that holds shard i of name.
  std::string shard_file(const std::string& name, unsigned i) {
    return tmp / ("b" + std::to_string(os->place(name, i))) + "/" + name + "." + std::to_string(i);
  }
};

}  // namespace

TEST_CASE("object keys: the alphabet and the components are checked") {
  CHECK(check_key("b/ab/abcdef.0").is_ok());
  CHECK(check_key("n/j/0000000000000001").is_ok());
  for (const std::string& bad : std::vector<std::string>{"", "/abs", "a//b", "a/./b", "../x", "a/..", "sp ace", "a\\b", "x/", std::string(513, 'a')}) {
    auto st = check_key(bad);
    CHECK_MESSAGE(st.err() == EINVAL, bad);
  }
  CHECK(contains(check_key("a/../b").what(), "a/../b"));
}

TEST_CASE("dir blobber: put, get, ranges, head, delete, list with pages") {
  TempDir tmp;
  auto b = dir_blobber(tmp / "blob");
  CHECK(b->url() == "dir://" + tmp.path + "/blob");
  std::string data = random_bytes(700000, 1);
  REQUIRE(b->put_bytes("x/y/obj", data).is_ok());
  CHECK(read_file(tmp / "blob/x/y/obj") == data);
  CHECK(b->get_bytes("x/y/obj").value() == data);
  CHECK(b->get_bytes("x/y/obj", 1000, 5000).value() == data.substr(1000, 5000));
  CHECK(b->get_bytes("x/y/obj", 699990, 100).value() == data.substr(699990));  // past the end: what exists
  CHECK(b->get_bytes("x/y/obj", 800000, 10).value().empty());
  CHECK(b->head("x/y/obj").value().size == data.size());
  CHECK(b->head("nope").err() == ENOENT);
  auto miss = b->get_bytes("nope");
  CHECK(miss.err() == ENOENT);
  CHECK(contains(miss.status().what(), "nope"));
  CHECK(contains(miss.status().what(), b->url()));

  // A streamed get arrives in several chunks, never the whole object at once.
  size_t chunks = 0, biggest = 0;
  REQUIRE(b->get("x/y/obj", 0, kToEnd, [&](std::string_view c) {
             chunks++;
             biggest = std::max(biggest, c.size());
             return Status{};
           }).is_ok());
  CHECK(chunks >= 3);
  CHECK(biggest < data.size());

  // Overwrite replaces; delete removes; deleting again is fine.
  REQUIRE(b->put_bytes("x/y/obj", "short").is_ok());
  CHECK(b->get_bytes("x/y/obj").value() == "short");
  CHECK(b->del("x/y/obj").is_ok());
  CHECK(b->del("x/y/obj").is_ok());
  CHECK(b->head("x/y/obj").err() == ENOENT);

  // Listing: key order across directories, prefixes, pages.
  std::vector<std::string> keys;
  for (int i = 0; i < 57; i++) keys.push_back("p/" + std::to_string(i % 5) + "/k" + std::to_string(1000 + i));
  keys.push_back("p.z");
  keys.push_back("q");
  for (auto& k : keys) REQUIRE(b->put_bytes(k, k).is_ok());
  std::sort(keys.begin(), keys.end());
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    auto page = b->list("", token, 10);
    REQUIRE(page.is_ok());
    CHECK(page->items.size() <= 10);
    for (auto& it : page->items) {
      seen.push_back(it.key);
      CHECK(it.size == it.key.size());
    }
    token = page->next;
    pages++;
  } while (!token.empty());
  CHECK(seen == keys);
  CHECK(pages == 6);
  auto p3 = b->list_all("p/3/");
  REQUIRE(p3.is_ok());
  CHECK(p3->size() == 11);
  for (auto& it : *p3) CHECK(it.key.rfind("p/3/", 0) == 0);
  CHECK(b->list_all("p/3/k1003").value().size() == 1);
  CHECK(b->list_all("zzz").value().empty());
}

TEST_CASE("dir blobber: a failing or short source leaves nothing; bad keys and URLs are refused") {
  TempDir tmp;
  auto b = dir_blobber(tmp / "blob");
  int calls = 0;
  auto st = b->put("k", 1 << 20, [&](char* buf, size_t n) -> Result<size_t> {
    if (++calls == 3) return Status::error(ENOSPC, "source");
    std::memset(buf, 'a', n);
    return n;
  });
  CHECK(st.err() == ENOSPC);
  CHECK(b->head("k").err() == ENOENT);
  st = b->put("k", 100, [&](char*, size_t) -> Result<size_t> { return size_t{0}; });
  CHECK(st.err() == EIO);
  CHECK(contains(st.what(), "source ended"));
  CHECK(b->head("k").err() == ENOENT);
  CHECK(fs::is_empty(tmp / "blob/~tmp"));
  CHECK(b->put_bytes("../escape", "x").err() == EINVAL);
  CHECK(b->get_bytes("a/../../etc/passwd").err() == EINVAL);
  CHECK(!fs::exists(tmp / "escape"));
  CHECK(open_blobber("dir://relative/path").err() == EINVAL);
  CHECK(open_blobber("ftp://x").err() == EINVAL);
  CHECK(open_blobber("s3://").err() == EINVAL);
}

TEST_CASE("dir blobber: the directory, its folders and its objects are private to the daemon") {
  TempDir tmp;
  fs::create_directories(tmp / "blob");
  REQUIRE(chmod((tmp / "blob").c_str(), 0755) == 0);
  auto b = dir_blobber(tmp / "blob");
  REQUIRE(b->probe().is_ok());
  REQUIRE(b->put_bytes("x/y/obj", "secret").is_ok());
  REQUIRE(b->put_bytes("x/y/obj2", "secret", blob::Durability::batched).is_ok());
  REQUIRE(b->flush().is_ok());
  auto mode = [](const std::string& p) {
    struct stat st;
    REQUIRE(stat(p.c_str(), &st) == 0);
    return st.st_mode & 07777;
  };
  CHECK(mode(tmp / "blob") == 0700);
  CHECK(mode(tmp / "blob/x") == 0700);
  CHECK(mode(tmp / "blob/x/y") == 0700);
  CHECK(mode(tmp / "blob/x/y/obj") == 0600);
  CHECK(mode(tmp / "blob/x/y/obj2") == 0600);
}

TEST_CASE("dir blobber: probe, a vanished directory, and the fault seam") {
  TempDir tmp;
  auto b = dir_blobber(tmp / "blob", 2);
  CHECK(b->probe().is_ok());
  CHECK(fs::is_empty(tmp / "blob/~tmp"));
  REQUIRE(b->put_bytes("a/b", "1").is_ok());
  fs::remove_all(tmp / "blob");
  auto st = b->put_bytes("a/b", "2");
  CHECK(st.err() == ENOENT);
  CHECK(!fs::exists(tmp / "blob"));  // the blobber's own directory is never recreated
  auto pr = b->probe();
  CHECK(pr.err() == ENOENT);
  CHECK(contains(pr.what(), tmp.path + "/blob"));
  auto missing = open_blobber("dir://" + tmp.path + "/never");
  REQUIRE(missing.is_ok());
  CHECK(missing.value()->probe().err() == ENOENT);

  auto c = dir_blobber(tmp / "c", 2);
  fault::arm("blob2.get", EIO, 2, 1);
  REQUIRE(c->put_bytes("k", "v").is_ok());
  CHECK(c->get_bytes("k").is_ok());
  auto inj = c->get_bytes("k");
  CHECK(inj.err() == EIO);
  CHECK(contains(inj.status().what(), "blob2.get"));
  CHECK(c->get_bytes("k").is_ok());
  fault::arm("blob.put", ETIMEDOUT);
  CHECK(c->put_bytes("k2", "v").err() == ETIMEDOUT);
  CHECK(c->head("k2").err() == ENOENT);
  fault::reset();
}

TEST_CASE("sha256: known vectors, streaming equals one-shot, hex round trip") {
  CHECK(sha256("abc").hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256("").hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  std::string big = random_bytes(1 << 20, 7);
  Hasher h;
  for (size_t i = 0; i < big.size(); i += 4099) h.update(std::string_view(big).substr(i, 4099));
  Hash a = h.final();
  CHECK(a == sha256(big));
  CHECK(Hash::from_hex(a.hex()).value() == a);
  CHECK(Hash::from_hex("xyz").err() == EINVAL);
  CHECK(Hash::from_hex(std::string(64, 'G')).err() == EINVAL);
}

TEST_CASE("erasure coding: every pattern of up to M erasures is rebuilt, whole and by range") {
  CHECK(Codec::make(0, 1).err() == EINVAL);
  CHECK(Codec::make(20, 13).err() == EINVAL);
  struct KM {
    unsigned k, m;
  };
  for (KM km : {KM{1, 0}, KM{1, 1}, KM{1, 2}, KM{2, 1}, KM{3, 2}, KM{4, 2}, KM{6, 3}, KM{10, 4}}) {
    auto c = Codec::make(km.k, km.m);
    REQUIRE(c.is_ok());
    const unsigned n = km.k + km.m;
    const size_t len = 4096 + 13;
    std::vector<std::string> shard(n);
    for (unsigned i = 0; i < km.k; i++) shard[i] = random_bytes(len, 100 + i + 17 * km.k);
    for (unsigned i = km.k; i < n; i++) shard[i].assign(len, '\0');
    std::vector<const uint8_t*> dp;
    std::vector<uint8_t*> pp;
    for (unsigned i = 0; i < km.k; i++) dp.push_back(reinterpret_cast<const uint8_t*>(shard[i].data()));
    for (unsigned i = km.k; i < n; i++) pp.push_back(reinterpret_cast<uint8_t*>(shard[i].data()));
    c->encode(len, dp.data(), pp.data());
    if (km.m > 0) CHECK(shard[km.k] != std::string(len, '\0'));
    unsigned patterns = 0;
    // Every subset of erased shards with at most m members.
    for (unsigned mask = 0; mask < (1u << n); mask++) {
      if (static_cast<unsigned>(__builtin_popcount(mask)) > km.m) continue;
      std::vector<unsigned> have, want;
      for (unsigned i = 0; i < n; i++) (mask & (1u << i) ? want : have).push_back(i);
      have.resize(km.k);
      for (size_t a : {size_t{0}, size_t{1000}}) {  // whole shards, then the range [1000, 3000)
        size_t l = a == 0 ? len : 2000;
        std::vector<const uint8_t*> hp;
        for (unsigned i : have) hp.push_back(reinterpret_cast<const uint8_t*>(shard[i].data() + a));
        std::vector<std::string> out(want.size(), std::string(l, '\0'));
        std::vector<uint8_t*> op;
        for (auto& o : out) op.push_back(reinterpret_cast<uint8_t*>(o.data()));
        REQUIRE(c->rebuild(l, have, hp.data(), want, op.data()).is_ok());
        for (size_t j = 0; j < want.size(); j++) CHECK(out[j] == shard[want[j]].substr(a, l));
      }
      patterns++;
    }
    unsigned expect = 0;
    for (unsigned mask = 0; mask < (1u << n); mask++) expect += static_cast<unsigned>(__builtin_popcount(mask)) <= km.m;
    CHECK(patterns == expect);
    // Fewer than k shards, or a duplicate, is refused.
    if (km.k > 1) {
      std::vector<unsigned> dup(km.k, 0);
      std::vector<const uint8_t*> hp(km.k, dp[0]);
      std::vector<uint8_t*> op{pp.empty() ? nullptr : pp[0]};
      CHECK(c->rebuild(len, dup, hp.data(), {1}, op.data()).err() == EINVAL);
    }
  }
}

TEST_CASE("objects: a 2+1 object survives a missing, corrupt, truncated or misplaced shard, and is repaired") {
  Set s(2, 1);
  const std::string name = "b/aa/object";
  std::string data = random_bytes(3 * 1000 * 1000 + 7, 3);
  REQUIRE(s.os->put(name, data).is_ok());
  for (unsigned i = 0; i < 3; i++) CHECK(fs::file_size(s.shard_file(name, i)) == kShardHeader + (data.size() + 1) / 2);
  // Shards spread over three distinct blobbers.
  CHECK(s.os->place(name, 0) != s.os->place(name, 1));
  CHECK(s.os->place(name, 1) != s.os->place(name, 2));
  Verify whole = [&](std::string_view b) { return b == data; };
  CHECK(s.os->read(name, data.size(), 0, data.size(), whole).value() == data);
  CHECK(s.os->read_all(name, whole).value() == data);
  // A range inside shard 1 only, and one across shards 0 and 1.
  CHECK(s.os->read(name, data.size(), 2000000, 1000, {}).value() == data.substr(2000000, 1000));
  CHECK(s.os->read(name, data.size(), 1499990, 40, {}).value() == data.substr(1499990, 40));
  CHECK(s.os->stats().degraded_reads == 0);
  CHECK(s.os->read(name, data.size(), data.size() - 1, 2, {}).err() == EINVAL);

  // Damage the payload bytes a read needs: the read notices, rebuilds and
  // rewrites the shard. Damage a read does not need (extra bytes, the
  // header): the data read is still right, and scrub finds and mends it.
  auto check_heals = [&](unsigned shard, const std::function<void(const std::string&)>& damage, const char* what,
                         bool by_scrub) {
    CAPTURE(what);
    CAPTURE(shard);
    std::string f = s.shard_file(name, shard);
    std::string before = read_file(f);
    damage(f);
    uint64_t degraded = s.os->stats().degraded_reads, repaired = s.os->stats().shards_repaired;
    auto r = s.os->read(name, data.size(), 0, data.size(), whole);
    REQUIRE(r.is_ok());
    CHECK(r.value() == data);
    if (by_scrub) {
      CHECK(s.os->stats().degraded_reads == degraded);
      CHECK(read_file(f) != before);
      auto rep = s.os->scrub(name, whole);
      REQUIRE(rep.is_ok());
      CHECK(rep->good == 2);
      CHECK(rep->bad + rep->missing == 1);
      CHECK(rep->repaired == 1);
    } else {
      CHECK(s.os->stats().degraded_reads == degraded + 1);
    }
    CHECK(s.os->stats().shards_repaired == repaired + 1);
    CHECK(read_file(f) == before);  // rewritten exactly
  };
  for (unsigned i = 0; i < 3; i++) {
    bool parity = i == 2;  // plain reads never look at the parity shard
    check_heals(i, [](const std::string& f) { fs::remove(f); }, "missing", parity);
    check_heals(i, [](const std::string& f) {
      std::string b = read_file(f);
      b[kShardHeader + 12345] ^= 0x40;
      write_file(f, b);
    }, "one flipped payload byte", parity);
    check_heals(i, [](const std::string& f) { fs::resize_file(f, fs::file_size(f) / 2); }, "truncated", parity);
    check_heals(i, [](const std::string& f) {
      std::string b = read_file(f);
      write_file(f, b + "extra");
    }, "too long", true);
    check_heals(i, [](const std::string& f) {
      std::string b = read_file(f);
      b[20] ^= 1;  // object length in the header
      write_file(f, b);
    }, "header damage", true);
  }
  // A shard of another object copied over this one's is refused.
  REQUIRE(s.os->put("b/aa/other", random_bytes(data.size(), 9)).is_ok());
  fs::copy_file(s.shard_file("b/aa/other", 0), s.shard_file(name, 0), fs::copy_options::overwrite_existing);
  CHECK(s.os->read(name, data.size(), 0, data.size(), whole).value() == data);
  auto misplaced = s.os->scrub(name, whole);
  CHECK(misplaced->good == 3);  // the read above already put the right shard back
  // A small range read whose data shard is corrupt is caught by the verifier and healed.
  {
    std::string f = s.shard_file(name, 1);
    std::string b = read_file(f);
    b[kShardHeader + 160] ^= 0x01;  // inside the range read below
    write_file(f, b);
    std::string want = data.substr(data.size() / 2 + 150, 64);
    auto r = s.os->read(name, data.size(), data.size() / 2 + 150, 64,
                        [&](std::string_view got) { return got == want; });
    CHECK(r.value() == want);
    CHECK(read_file(f) != b);
  }
  // Two of three shards gone: EIO naming the object and what failed; never wrong data.
  fs::remove(s.shard_file(name, 0));
  fs::remove(s.shard_file(name, 2));
  auto r = s.os->read(name, data.size(), 0, data.size(), whole);
  CHECK(r.err() == EIO);
  CHECK(contains(r.status().what(), name));
  CHECK(contains(r.status().what(), "1 of 3 shards usable"));
}

TEST_CASE("objects: a blobber down fails puts, but reads and repairs of old objects go on") {
  Set s(2, 1);
  std::string data = random_bytes(100000, 4);
  REQUIRE(s.os->put("n/one", data).is_ok());
  fs::path gone = s.tmp / ("b" + std::to_string(s.os->place("n/one", 2)));
  fs::rename(gone, gone.string() + ".away");
  auto st = s.os->put("n/two", data);
  CHECK(st.err() == ENOENT);
  CHECK(contains(st.what(), gone.string()));
  // Reads of n/one need shards 0 and 1 only (data shards); shard 2's blobber is away.
  CHECK(s.os->read_all("n/one", {}).value() == data);
  // With a data shard's blobber away too... only one left: EIO.
  fs::path gone2 = s.tmp / ("b" + std::to_string(s.os->place("n/one", 0)));
  fs::rename(gone2, gone2.string() + ".away");
  CHECK(s.os->read_all("n/one", {}).err() == EIO);
  fs::rename(gone2.string() + ".away", gone2);
  fs::rename(gone.string() + ".away", gone);
  CHECK(s.os->put("n/two", data).is_ok());
  // remove() takes every shard; list() sees each object once.
  auto names = s.os->list("n/");
  REQUIRE(names.is_ok());
  CHECK(names.value() == std::vector<std::string>{"n/one", "n/two"});
  REQUIRE(s.os->remove("n/one").is_ok());
  CHECK(s.os->list("n/").value() == std::vector<std::string>{"n/two"});
  CHECK(s.os->read_all("n/one", {}).err() == EIO);
  CHECK(ObjectStore::make({}, 2, 1).err() == EINVAL);
}

TEST_CASE("objects: a listing answers with up to M blobbers missing and names them; beyond M it fails naming them") {
  Set s(2, 1);
  std::string data = random_bytes(5000, 7);
  REQUIRE(s.os->put("n/one", data).is_ok());
  REQUIRE(s.os->put("n/two", data).is_ok());
  // A lost disk: blobber 1's directory is gone altogether (not just empty).
  fs::path gone = s.tmp / "b1";
  fs::rename(gone, gone.string() + ".away");
  std::vector<std::string> missing;
  auto names = s.os->list("n/", &missing);
  REQUIRE_MESSAGE(names.is_ok(), names.status().message());
  CHECK(names.value() == std::vector<std::string>{"n/one", "n/two"});
  REQUIRE(missing.size() == 1);
  CHECK(contains(missing[0], gone.string()));
  CHECK(s.os->read_all("n/two", {}).value() == data);
  // Two of three gone: more than M, the listing could miss objects.
  fs::path gone2 = s.tmp / "b2";
  fs::rename(gone2, gone2.string() + ".away");
  auto none = s.os->list("n/");
  CHECK(none.err() == ENOENT);
  CHECK(contains(none.status().message(), gone.string()));
  CHECK(contains(none.status().message(), gone2.string()));
  CHECK(contains(none.status().message(), "at most 1 may be missing"));
  fs::rename(gone2.string() + ".away", gone2);
  fs::rename(gone.string() + ".away", gone);
  missing.clear();
  CHECK(s.os->list("n/", &missing).value().size() == 2);
  CHECK(missing.empty());
}

TEST_CASE("objects: scrub checks parity too and rewrites what is bad") {
  Set s(3, 2);
  std::string data = random_bytes(50000, 5);
  REQUIRE(s.os->put("p/x", data).is_ok());
  Verify v = [&](std::string_view b) { return b == data; };
  auto clean = s.os->scrub("p/x", v);
  REQUIRE(clean.is_ok());
  CHECK(clean->good == 5);
  CHECK(clean->repaired == 0);
  fs::remove(s.shard_file("p/x", 4));  // a parity shard: plain reads never notice
  std::string f = s.shard_file("p/x", 3);
  std::string b = read_file(f);
  b.back() ^= 0x10;
  write_file(f, b);
  CHECK(s.os->read_all("p/x", v).is_ok());
  CHECK(!fs::exists(s.shard_file("p/x", 4)));
  auto rep = s.os->scrub("p/x", v);
  REQUIRE(rep.is_ok());
  CHECK(rep->good == 3);
  CHECK(rep->bad == 1);
  CHECK(rep->missing == 1);
  CHECK(rep->repaired == 2);
  CHECK(rep->readable);
  CHECK(s.os->scrub("p/x", v)->good == 5);
  // Empty objects work too.
  REQUIRE(s.os->put("p/empty", "").is_ok());
  CHECK(s.os->read_all("p/empty", {}).value().empty());
}

TEST_CASE("blocks: refs round-trip; small blocks share packs; every read is verified") {
  Set s(2, 1);
  BlockWriter w(*s.os, BlockWriterOptions{1 << 16, 1 << 20});
  std::vector<std::string> small;
  std::vector<BlockRef> refs;
  for (int i = 0; i < 1000; i++) {
    small.push_back(random_bytes(4096, 1000 + i));
    auto r = w.put(small.back());
    REQUIRE(r.is_ok());
    CHECK(r->packed);
    refs.push_back(*r);
  }
  std::string big = random_bytes(kMaxBlock, 77);
  auto rb = w.put(big);
  REQUIRE(rb.is_ok());
  CHECK(!rb->packed);
  CHECK(rb->obj == sha256(big));
  CHECK(w.put(std::string(kMaxBlock + 1, 'x')).err() == EINVAL);
  // Before flush the last pack is not written: finish() says so.
  BlockRef last = refs.back();
  CHECK(w.finish(last).err() == EAGAIN);
  REQUIRE(w.flush().is_ok());
  CHECK(w.packs_written() == 4);  // 4 MB of small blocks in 1 MiB packs
  for (auto& r : refs) REQUIRE(w.finish(r).is_ok());
  for (size_t i = 0; i < refs.size(); i++) {
    auto d = BlockRef::decode(refs[i].encode());
    REQUIRE(d.is_ok());
    CHECK(d.value() == refs[i]);
    CHECK(read_block(*s.os, d.value()).value() == small[i]);
  }
  CHECK(read_block(*s.os, *rb).value() == big);
  // Objects on each blobber: 4 packs + 1 block, one shard each.
  CHECK(s.os->list("p/").value().size() == 4);
  CHECK(s.os->list("b/").value().size() == 1);
  // A ref whose hash does not match the bytes is an error, never data.
  BlockRef bad = refs[5];
  bad.hash = sha256("something else");
  auto r = read_block(*s.os, bad);
  CHECK(r.err() == EIO);
  // Malformed encodings are refused.
  std::string enc = refs[0].encode();
  CHECK(BlockRef::decode(enc.substr(1)).err() == EINVAL);
  enc[0] = 9;
  CHECK(BlockRef::decode(enc).err() == EINVAL);
  BlockRef incons = *rb;
  incons.off = 5;
  CHECK(BlockRef::decode(incons.encode()).err() == EINVAL);
}

TEST_CASE("blocks: a failed pack write is reported by flush") {
  Set s(2, 1);
  BlockWriter w(*s.os, BlockWriterOptions{1 << 16, 1 << 20});
  REQUIRE(w.put("abc").is_ok());
  fault::arm("blob1.put", EIO);
  auto st = w.flush();
  CHECK(st.err() == EIO);
  fault::reset();
  CHECK(w.flush().is_ok());  // the error was reported once; nothing is pending
  CHECK(s.os->list("p/").value().size() == 1);  // the other shards stay behind: garbage for gc
}

TEST_CASE("dir blobber: batched puts are readable at once, flush is the barrier, and its faults are reported") {
  TempDir tmp;
  auto b = dir_blobber(tmp / "blob", 3);
  CHECK(b->flush().is_ok());  // nothing batched yet: nothing to do
  REQUIRE(b->put_bytes("x/y/z", "batched", Durability::batched).is_ok());
  REQUIRE(b->put_bytes("x/w", "also", Durability::batched).is_ok());
  CHECK(b->get_bytes("x/y/z").value() == "batched");
  CHECK(fs::is_empty(tmp / "blob/~tmp"));  // renamed into place, no temp file left
  // A durable put under a directory a batched put created (its path is
  // made durable too, dir.cpp 2), then the barrier.
  REQUIRE(b->put_bytes("x/y/durable", "now").is_ok());
  CHECK(b->flush().is_ok());
  CHECK(b->get_bytes("x/w").value() == "also");
  // A failed flush is an error naming the blobber; the next one runs again.
  REQUIRE(b->put_bytes("x/v", "more", Durability::batched).is_ok());
  fault::arm("blob3.flush", EIO);
  auto st = b->flush();
  CHECK(st.err() == EIO);
  CHECK(contains(st.what(), "dir://" + tmp.path + "/blob"));
  CHECK(b->flush().is_ok());
  fault::reset();
  // A batched put into a vanished blobber directory fails like a durable one.
  fs::remove_all(tmp / "blob");
  CHECK(b->put_bytes("a", "b", Durability::batched).err() == ENOENT);
}

TEST_CASE("objects: the barrier flushes every blobber; a shard a power cut left empty or short is never used and a put again rewrites it") {
  Set s(2, 1);
  const std::string name = "b/cc/batched";
  std::string data = random_bytes(2 * 1000 * 1000 + 3, 11);
  Verify whole = [&](std::string_view b) { return b == data; };
  REQUIRE(s.os->put(name, data, Durability::batched).is_ok());
  CHECK(s.os->read_all(name, whole).value() == data);
  fault::arm("blob2.flush", EIO);
  CHECK(s.os->flush().err() == EIO);  // one blobber failing fails the barrier (objects.h 3)
  fault::reset();
  REQUIRE(s.os->flush().is_ok());

  // What a power cut before the barrier may leave: shard 0 renamed but
  // empty, shard 1 short. Neither is used: with one good shard left the
  // object is unreadable (EIO), never wrong.
  const size_t full = kShardHeader + (data.size() + 1) / 2;
  fs::resize_file(s.shard_file(name, 0), 0);
  fs::resize_file(s.shard_file(name, 1), full / 2);
  CHECK(s.os->read(name, data.size(), 0, data.size(), whole).err() == EIO);
  CHECK(s.os->read_all(name, whole).err() == EIO);
  // The writer's retry puts the object again: every shard is whole.
  REQUIRE(s.os->put(name, data, Durability::batched).is_ok());
  REQUIRE(s.os->flush().is_ok());
  for (unsigned i = 0; i < 3; i++) CHECK(fs::file_size(s.shard_file(name, i)) == full);
  auto rep = s.os->scrub(name, whole);
  REQUIRE(rep.is_ok());
  CHECK(rep->good == 3);
  CHECK(rep->repaired == 0);

  // One shard short: the read rebuilds from the other two and repairs it
  // with a durable put.
  fs::resize_file(s.shard_file(name, 1), 10);
  CHECK(s.os->read(name, data.size(), 0, data.size(), whole).value() == data);
  CHECK(fs::file_size(s.shard_file(name, 1)) == full);
}

TEST_CASE("blocks: blocks and packs are batched puts, made durable by the store's barrier") {
  Set s(2, 1);
  BlockWriter w(*s.os, BlockWriterOptions{1 << 16, 1 << 20});
  std::string big = random_bytes(100000, 4), small = "small block";
  auto rb = w.put(big, sha256(big));
  auto rs = w.put(small);
  REQUIRE(rb.is_ok());
  REQUIRE(rs.is_ok());
  CHECK(rb->hash == sha256(big));
  REQUIRE(w.flush().is_ok());
  BlockRef ref = *rs;
  REQUIRE(w.finish(ref).is_ok());
  fault::arm("blob.flush", EIO);
  CHECK(s.os->flush().err() == EIO);
  fault::reset();
  REQUIRE(s.os->flush().is_ok());
  CHECK(read_block(*s.os, *rb).value() == big);
  CHECK(read_block(*s.os, ref).value() == small);
}

TEST_CASE("dir blobber: put_new creates only once; racing creators, exactly one wins (link(2))") {
  TempDir tmp;
  auto b = dir_blobber(tmp / "blob");
  tcfs::blob::testing::check_put_new_semantics(*b, "n/r");
  tcfs::blob::testing::check_put_new_race(*b, "n/r");
  // The temporary files are gone; a fault at the put site fails before any I/O.
  CHECK(std::filesystem::is_empty(tmp / "blob/~tmp"));
  tcfs::fault::arm("blob.put", EIO);
  CHECK(b->put_new("n/r/faulted", "x").err() == EIO);
  tcfs::fault::reset();
  CHECK(b->head("n/r/faulted").err() == ENOENT);
}

namespace {

// The value of the sample `series` (`name{label="v",...}`, labels sorted by
// name as prometheus-cpp writes them) in metrics::text(); 0 if absent.
double sample(const std::string& series) {
  std::istringstream in(metrics::text());
  for (std::string line; std::getline(in, line);)
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 && line[series.size()] == ' ')
      return std::stod(line.substr(series.size() + 1));
  return 0;
}

double requests(const std::string& op) {
  return sample("tcfs_blobber_request_duration_seconds_count{blobber=\"7\",op=\"" + op + "\"}");
}
double errors(const std::string& op) { return sample("tcfs_blobber_errors_total{blobber=\"7\",op=\"" + op + "\"}"); }

}  // namespace

TEST_CASE("metered blobber: every call is timed by blobber and op; failures counted, ENOENT is not one") {
  TempDir tmp;
  auto b = metered(dir_blobber(tmp / "blob", 7), 7);
  CHECK(b->url() == "dir://" + tmp.path + "/blob");
  std::map<std::string, double> req0, err0;
  for (const char* op : {"put", "get_bytes", "del", "list"}) req0[op] = requests(op), err0[op] = errors(op);

  REQUIRE(b->put_bytes("m/k", "value").is_ok());
  CHECK(b->get_bytes("m/k").value() == "value");
  CHECK(b->get_bytes("m/missing").err() == ENOENT);
  fault::arm("blob7.del", EIO);
  CHECK(b->del("m/k").err() == EIO);
  fault::reset();
  CHECK(b->list_all("m/").value().size() == 1);  // list (list_after counts as list too)

  CHECK(requests("put") - req0["put"] == 1);
  CHECK(requests("get_bytes") - req0["get_bytes"] == 2);
  CHECK(requests("del") - req0["del"] == 1);
  CHECK(requests("list") - req0["list"] == 1);
  CHECK(errors("put") - err0["put"] == 0);
  CHECK(errors("get_bytes") - err0["get_bytes"] == 0);  // the ENOENT
  CHECK(errors("del") - err0["del"] == 1);              // the injected EIO
  CHECK(errors("list") - err0["list"] == 0);
}
