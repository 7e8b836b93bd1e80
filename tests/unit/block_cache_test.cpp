// Unit tests for sync/block_cache.h: the follower's block cache over 2+1
// real dir:// blobbers (sync_fixture.h) and a real cache directory, both in
// temp dirs. Each case names the design note it checks.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <latch>
#include <thread>
#include <vector>

#include "blob/blocks.h"
#include "sync/block_cache.h"
#include "sync_fixture.h"
#include "test_util.h"
#include "util/fault.h"

using namespace tcfs;
using namespace tcfs::sync;
using namespace tcfs::sync::testing;
namespace fs = std::filesystem;

namespace {

// Blobbers, a cache directory, and helpers to write blocks and open caches.
struct Fix {
  Blobbers b;
  TempDir tmp;
  std::string dir() const { return tmp / "cache"; }
  // A standalone block (blocks.h 1), or one in a pack when packed.
  blob::BlockRef put(const std::string& data, bool packed = false) {
    blob::BlockWriterOptions o;
    if (!packed) o.pack_threshold = 1;
    blob::BlockWriter w(*b.os, o);
    auto r = w.put(data);
    REQUIRE(r.is_ok());
    REQUIRE(w.flush().is_ok());
    blob::BlockRef ref = r.value();
    REQUIRE(w.finish(ref).is_ok());
    REQUIRE(b.os->flush().is_ok());
    CHECK(ref.packed == packed);
    return ref;
  }
  std::unique_ptr<BlockCache> open(uint64_t limit) {
    auto c = BlockCache::open(dir(), limit, *b.os);
    REQUIRE_MESSAGE(c.is_ok(), c.status().message());
    return std::move(c.value());
  }
};

std::string must_read(BlockCache& c, const blob::BlockRef& ref, uint64_t off, uint64_t len) {
  auto r = c.read(ref, off, len);
  REQUIRE_MESSAGE(r.is_ok(), r.status().message());
  return r.value();
}

bool exists(const std::string& p) { return ::access(p.c_str(), F_OK) == 0; }

}  // namespace

TEST_CASE("block_cache.h 2, 3: a read returns the block's bytes and ranges; the second is a hit") {
  Fix f;
  std::string data = random_bytes(300000, 1);
  blob::BlockRef ref = f.put(data);
  auto c = f.open(8u << 20);
  CHECK(c->limit() == (8u << 20));

  CHECK(must_read(*c, ref, 0, data.size()) == data);
  CHECK(c->stats().misses == 1);
  CHECK(c->stats().hits == 0);
  CHECK(c->bytes() == data.size());
  // block_cache.h 1: the file is DIR/XX/HEX and holds exactly the block.
  std::string x = ref.hash.hex();
  CHECK(c->path_of(ref.hash) == f.dir() + "/" + x.substr(0, 2) + "/" + x);
  REQUIRE(exists(c->path_of(ref.hash)));
  CHECK(read_file(c->path_of(ref.hash)) == data);

  CHECK(must_read(*c, ref, 1000, 5000) == data.substr(1000, 5000));
  CHECK(must_read(*c, ref, data.size() - 10, 100) == data.substr(data.size() - 10));  // clipped
  CHECK(must_read(*c, ref, data.size(), 5).empty());
  CHECK(c->stats().misses == 1);
  CHECK(c->stats().hits == 2);

  // A block in a pack (off != 0 in its object) is cached the same way.
  std::string small = random_bytes(5000, 2);
  f.put(random_bytes(777, 3), true);  // so the next one is not first in its pack
  blob::BlockRef pref = f.put(small, true);
  CHECK(must_read(*c, pref, 100, 200) == small.substr(100, 200));
  CHECK(must_read(*c, pref, 0, small.size()) == small);
  CHECK(c->stats().misses == 2);
  CHECK(c->stats().hits == 3);
  CHECK(read_file(c->path_of(pref.hash)) == small);
  CHECK(c->bytes() == data.size() + small.size());
}

TEST_CASE("block_cache.h 5: bytes() stays under the limit; the least recently used go") {
  Fix f;
  constexpr size_t kBlock = 100000;
  std::vector<std::string> data;
  std::vector<blob::BlockRef> refs;
  for (uint32_t i = 0; i < 5; i++) {
    data.push_back(random_bytes(kBlock, 10 + i));
    refs.push_back(f.put(data.back()));
  }
  auto c = f.open(kBlock * 5 / 2);
  for (size_t i = 0; i < 5; i++) {
    CHECK(must_read(*c, refs[i], 0, kBlock) == data[i]);
    CHECK(c->bytes() <= c->limit());
  }
  CHECK(c->stats().misses == 5);
  CHECK(c->stats().evicted == 3);
  CHECK(c->blocks() == 2);
  for (size_t i = 0; i < 3; i++) CHECK_FALSE(exists(c->path_of(refs[i].hash)));
  for (size_t i = 3; i < 5; i++) CHECK(exists(c->path_of(refs[i].hash)));

  // The most recent are hits; a hit makes block 3 more recent than 4, so
  // bringing back block 0 evicts 4, not 3.
  CHECK(must_read(*c, refs[4], 0, 10) == data[4].substr(0, 10));
  CHECK(must_read(*c, refs[3], 0, 10) == data[3].substr(0, 10));
  CHECK(c->stats().hits == 2);
  CHECK(must_read(*c, refs[0], 5, 10) == data[0].substr(5, 10));
  CHECK(c->stats().misses == 6);
  CHECK(c->stats().evicted == 4);
  CHECK_FALSE(exists(c->path_of(refs[4].hash)));
  CHECK(exists(c->path_of(refs[3].hash)));
  CHECK(exists(c->path_of(refs[0].hash)));
  CHECK(must_read(*c, refs[3], 0, kBlock) == data[3]);
  CHECK(c->stats().hits == 3);
  CHECK(c->bytes() == 2 * kBlock);
}

TEST_CASE("block_cache.h 1, 2: reopening after a clean close indexes the blocks kept and removes temp files") {
  Fix f;
  std::string a = random_bytes(70000, 20), b = random_bytes(80000, 21);
  blob::BlockRef ra = f.put(a), rb = f.put(b);
  const std::string clean = f.dir() + "/clean";
  {
    auto c = f.open(1u << 20);
    CHECK_FALSE(c->was_clean());  // first use
    CHECK(must_read(*c, ra, 0, a.size()) == a);
    CHECK(must_read(*c, rb, 0, b.size()) == b);
    // One cache per directory.
    auto again = BlockCache::open(f.dir(), 1u << 20, *f.b.os);
    CHECK(again.err() == EBUSY);
    CHECK_FALSE(exists(clean));  // open: not clean until closed
  }  // the destructor: a clean close
  CHECK(exists(clean));
  std::string leftover = f.dir() + "/tmp/" + ra.hash.hex() + ".7";
  write_file(leftover, "partial");
  write_file(f.dir() + "/README", "not a block");  // other names are left alone
  {
    auto c = f.open(1u << 20);
    CHECK(c->was_clean());
    CHECK_FALSE(exists(clean));
    CHECK_FALSE(exists(leftover));
    CHECK(exists(f.dir() + "/README"));
    CHECK(c->blocks() == 2);
    CHECK(c->bytes() == a.size() + b.size());
    CHECK(must_read(*c, ra, 10, 20) == a.substr(10, 20));
    CHECK(must_read(*c, rb, 0, b.size()) == b);
    CHECK(c->stats().hits == 2);
    CHECK(c->stats().misses == 0);
  }
  // Reopened under a smaller limit, the oldest (by modification time) goes.
  struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
  REQUIRE(::utimensat(AT_FDCWD, (f.dir() + "/" + ra.hash.hex().substr(0, 2) + "/" + ra.hash.hex()).c_str(), old, 0) ==
          0);
  auto c = f.open(100000);
  CHECK(c->blocks() == 1);
  CHECK(c->stats().evicted == 1);
  CHECK_FALSE(exists(c->path_of(ra.hash)));
  CHECK(exists(c->path_of(rb.hash)));
  CHECK(must_read(*c, rb, 0, 5) == b.substr(0, 5));
  CHECK(c->stats().hits == 1);
}

TEST_CASE("block_cache.h 2: without the clean marker at open, every cached block is removed and fetched again") {
  Fix f;
  std::string a = random_bytes(70000, 25), b = random_bytes(90000, 26);
  blob::BlockRef ra = f.put(a), rb = f.put(b);
  std::string pa, pb;
  {
    auto c = f.open(1u << 20);
    CHECK(must_read(*c, ra, 0, a.size()) == a);
    CHECK(must_read(*c, rb, 0, b.size()) == b);
    pa = c->path_of(ra.hash), pb = c->path_of(rb.hash);
  }
  // A crash (no clean close): the marker is missing, and a block file may
  // be torn: here of the right size but zeros, as a lost write leaves it.
  REQUIRE(::unlink((f.dir() + "/clean").c_str()) == 0);
  write_file(pa, std::string(a.size(), '\0'));
  write_file(f.dir() + "/README", "not a block");
  {
    auto c = f.open(1u << 20);
    CHECK_FALSE(c->was_clean());
    CHECK(c->blocks() == 0);
    CHECK(c->bytes() == 0);
    CHECK_FALSE(exists(pa));
    CHECK_FALSE(exists(pb));
    CHECK(exists(f.dir() + "/README"));  // other names are left alone
    CHECK(must_read(*c, ra, 0, a.size()) == a);  // not the zeros
    CHECK(must_read(*c, rb, 100, 1000) == b.substr(100, 1000));
    CHECK(c->stats().misses == 2);
    CHECK(c->stats().hits == 0);
    CHECK(read_file(pa) == a);
  }
  // Closed cleanly this time: kept.
  auto c = f.open(1u << 20);
  CHECK(c->was_clean());
  CHECK(c->blocks() == 2);
  CHECK(must_read(*c, ra, 0, a.size()) == a);
  CHECK(c->stats().hits == 1);
  CHECK(c->stats().misses == 0);
}

TEST_CASE("block_cache.h 3: a truncated cache file is dropped and the block fetched again") {
  Fix f;
  std::string data = random_bytes(200000, 30);
  blob::BlockRef ref = f.put(data);
  auto c = f.open(1u << 20);
  CHECK(must_read(*c, ref, 0, data.size()) == data);
  REQUIRE(::truncate(c->path_of(ref.hash).c_str(), 1000) == 0);

  CHECK(must_read(*c, ref, 500, 100000) == data.substr(500, 100000));
  CHECK(c->stats().misses == 2);
  CHECK(c->stats().hits == 0);
  CHECK(read_file(c->path_of(ref.hash)) == data);
  CHECK(c->bytes() == data.size());
  CHECK(must_read(*c, ref, 0, data.size()) == data);
  CHECK(c->stats().hits == 1);

  // A cache file removed by hand: fetched again too.
  REQUIRE(::unlink(c->path_of(ref.hash).c_str()) == 0);
  CHECK(must_read(*c, ref, 0, data.size()) == data);
  CHECK(c->stats().misses == 3);
  CHECK(exists(c->path_of(ref.hash)));
  CHECK(c->bytes() == data.size());
}

// The whole content of fd, read with pread from offset 0 (not its file offset).
std::string fd_content(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t r = ::pread(fd, buf, sizeof buf, static_cast<off_t>(out.size()));
    REQUIRE(r >= 0);
    if (r == 0) return out;
    out.append(buf, static_cast<size_t>(r));
  }
}

TEST_CASE("block_cache.h 3, 8: open_block gives a hit's file; a miss is ENOENT; an evicted block's fd still reads") {
  Fix f;
  constexpr size_t kBlock = 100000;
  std::string a = random_bytes(kBlock, 35), b = random_bytes(kBlock, 36);
  blob::BlockRef ra = f.put(a), rb = f.put(b);
  auto c = f.open(kBlock * 3 / 2);  // room for one block

  // A miss: not fetched, not counted, nothing stored.
  auto miss = c->open_block(ra);
  REQUIRE_FALSE(miss.is_ok());
  CHECK(miss.status().err() == ENOENT);
  CHECK(c->stats().misses == 0);
  CHECK(c->stats().hits == 0);
  CHECK(c->blocks() == 0);
  CHECK_FALSE(exists(c->path_of(ra.hash)));

  // A hit: an fd of the block's bytes, read-only, counted.
  CHECK(must_read(*c, ra, 0, 10) == a.substr(0, 10));
  auto hit = c->open_block(ra);
  REQUIRE_MESSAGE(hit.is_ok(), hit.status().message());
  Fd fa = std::move(hit.value());
  REQUIRE(fa);
  CHECK(fd_content(fa.get()) == a);
  CHECK((::fcntl(fa.get(), F_GETFL) & O_ACCMODE) == O_RDONLY);
  CHECK(c->stats().hits == 1);

  // Evicted (block b takes its place): the name goes, the fd still reads it whole.
  CHECK(must_read(*c, rb, 0, kBlock) == b);
  CHECK(c->stats().evicted == 1);
  CHECK_FALSE(exists(c->path_of(ra.hash)));
  CHECK(c->open_block(ra).status().err() == ENOENT);
  CHECK(fd_content(fa.get()) == a);

  // A file of the wrong size is not handed out: dropped, ENOENT, and read() fetches again.
  REQUIRE(::truncate(c->path_of(rb.hash).c_str(), 1000) == 0);
  auto bad = c->open_block(rb);
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.status().err() == ENOENT);
  CHECK(c->blocks() == 0);
  CHECK(c->bytes() == 0);
  CHECK_FALSE(exists(c->path_of(rb.hash)));
  CHECK(must_read(*c, rb, 0, kBlock) == b);
  CHECK(c->stats().misses == 3);
  auto again = c->open_block(rb);
  REQUIRE(again.is_ok());
  CHECK(fd_content(again.value().get()) == b);
}

TEST_CASE("block_cache.h 4: a blobber read error names the block and changes nothing") {
  Fix f;
  std::string data = random_bytes(150000, 40);
  blob::BlockRef ref = f.put(data);
  REQUIRE(f.b.os->remove(ref.object_name()).is_ok());  // every shard gone
  auto c = f.open(1u << 20);

  auto r = c->read(ref, 0, data.size());
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message().find(ref.hash.hex().substr(0, 16)) != std::string::npos);
  CHECK_FALSE(exists(c->path_of(ref.hash)));
  CHECK(c->bytes() == 0);
  CHECK(c->blocks() == 0);
  CHECK(fs::is_empty(f.dir() + "/tmp"));
  // The next read tries the blobbers again (and fails again).
  CHECK_FALSE(c->read(ref, 0, 10).is_ok());
  CHECK(c->stats().misses == 2);
}

TEST_CASE("block_cache.h 2: a block that cannot be stored is still returned") {
  Fix f;
  std::string data = random_bytes(60000, 50);
  blob::BlockRef ref = f.put(data);
  auto c = f.open(1u << 20);
  fault::arm("block_cache.store", ENOSPC);
  CHECK(must_read(*c, ref, 0, data.size()) == data);
  fault::reset();
  CHECK_FALSE(exists(c->path_of(ref.hash)));
  CHECK(c->blocks() == 0);
  CHECK(fs::is_empty(f.dir() + "/tmp"));
  CHECK(must_read(*c, ref, 0, data.size()) == data);
  CHECK(c->stats().misses == 2);
  CHECK(exists(c->path_of(ref.hash)));
}

TEST_CASE("block_cache.h 4: concurrent reads of one missing block fetch it once") {
  Fix f;
  constexpr int kThreads = 8;
  std::string data = random_bytes(1u << 20, 60);
  blob::BlockRef ref = f.put(data);
  auto c = f.open(8u << 20);
  // The fetch starts only once the other seven wait for it (or after 10 s,
  // when they fetched on their own: then the counts below fail).
  std::atomic<int> fetches{0};
  c->set_fetch_hook([&](const blob::BlockRef&) {
    fetches++;
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (c->waiting() < kThreads - 1 && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  std::latch start(kThreads);
  std::vector<std::string> got(kThreads);
  std::vector<int> errs(kThreads, 0);
  std::vector<std::thread> ts;
  for (int i = 0; i < kThreads; i++)
    ts.emplace_back([&, i] {
      start.arrive_and_wait();
      uint64_t off = static_cast<uint64_t>(i) * 1000;
      auto r = c->read(ref, off, 50000);
      if (r.is_ok()) got[i] = r.value() == data.substr(off, 50000) ? "ok" : "wrong bytes";
      errs[i] = r.err();
    });
  for (auto& t : ts) t.join();
  for (int i = 0; i < kThreads; i++) {
    CHECK(errs[i] == 0);
    CHECK(got[i] == "ok");
  }
  CHECK(fetches == 1);
  CHECK(c->stats().misses == 1);
  CHECK(c->stats().hits == kThreads - 1);
  CHECK(c->waiting() == 0);
  CHECK(read_file(c->path_of(ref.hash)) == data);
}

TEST_CASE("block_cache.h 7: a prefetched block makes the next read a hit") {
  Fix f;
  std::string data = random_bytes(500000, 70);
  blob::BlockRef ref = f.put(data);
  auto c = f.open(8u << 20);
  c->prefetch(ref);
  c->drain();
  CHECK(c->stats().prefetched == 1);
  CHECK(c->stats().misses == 0);
  CHECK(c->blocks() == 1);
  REQUIRE(exists(c->path_of(ref.hash)));
  CHECK(read_file(c->path_of(ref.hash)) == data);
  CHECK(must_read(*c, ref, 1000, 200000) == data.substr(1000, 200000));
  CHECK(c->stats().hits == 1);
  CHECK(c->stats().misses == 0);
  // A cached block is not fetched again.
  c->prefetch(ref);
  c->drain();
  CHECK(c->stats().prefetched == 1);
}

TEST_CASE("block_cache.h 4, 7: a read arriving during a prefetch waits for it instead of fetching") {
  Fix f;
  std::string data = random_bytes(1u << 20, 71);
  blob::BlockRef ref = f.put(data);
  auto c = f.open(8u << 20);
  // The prefetch's blobber read starts only once the read waits for it (or
  // after 10 s, when the read fetched on its own: then the counts fail).
  std::atomic<int> fetches{0};
  c->set_fetch_hook([&](const blob::BlockRef&) {
    fetches++;
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (c->waiting() < 1 && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  c->prefetch(ref);
  // The read must find the flight: wait until the worker has started it.
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (fetches.load() == 0 && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK(must_read(*c, ref, 4096, 300000) == data.substr(4096, 300000));
  c->drain();
  CHECK(fetches == 1);
  CHECK(c->stats().prefetched == 1);
  CHECK(c->stats().misses == 0);
  CHECK(c->stats().hits == 1);
  CHECK(c->waiting() == 0);
  CHECK(read_file(c->path_of(ref.hash)) == data);
}

TEST_CASE("block_cache.h 7: a failed prefetch leaves nothing; the read reports the error") {
  Fix f;
  std::string data = random_bytes(150000, 72);
  blob::BlockRef ref = f.put(data);
  REQUIRE(f.b.os->remove(ref.object_name()).is_ok());  // every shard gone
  auto c = f.open(1u << 20);
  c->prefetch(ref);
  c->drain();
  CHECK(c->stats().prefetched == 1);
  CHECK_FALSE(exists(c->path_of(ref.hash)));
  CHECK(c->blocks() == 0);
  CHECK(c->bytes() == 0);
  CHECK(fs::is_empty(f.dir() + "/tmp"));
  auto r = c->read(ref, 0, data.size());
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message().find(ref.hash.hex().substr(0, 16)) != std::string::npos);
  CHECK(c->stats().misses == 1);

  // A read that waited for a failing prefetch tries itself, and reports
  // its own error.
  std::atomic<int> fetches{0};
  c->set_fetch_hook([&](const blob::BlockRef&) {
    if (fetches++ > 0) return;
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (c->waiting() < 1 && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  c->prefetch(ref);
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (fetches.load() == 0 && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto r2 = c->read(ref, 0, 10);
  c->drain();
  REQUIRE_FALSE(r2.is_ok());
  CHECK(r2.status().message().find(ref.hash.hex().substr(0, 16)) != std::string::npos);
  CHECK(fetches == 2);
  CHECK(c->stats().prefetched == 2);
  CHECK(c->stats().misses == 2);
  CHECK_FALSE(exists(c->path_of(ref.hash)));
  CHECK(fs::is_empty(f.dir() + "/tmp"));
}

TEST_CASE("block_cache.h 6, 7: prefetches beyond the workers and the queue are dropped") {
  Fix f;
  constexpr size_t kW = BlockCache::kPrefetchWorkers, kQ = BlockCache::kPrefetchQueue, kN = kW + kQ + 5;
  std::vector<blob::BlockRef> refs;
  std::vector<std::string> data;
  for (uint32_t i = 0; i < kN; i++) {
    data.push_back(random_bytes(3000, 100 + i));
    refs.push_back(f.put(data.back()));
  }
  auto c = f.open(8u << 20);
  // Every worker holds its first fetch until released.
  std::atomic<size_t> entered{0};
  std::atomic<bool> go{false};
  c->set_fetch_hook([&](const blob::BlockRef&) {
    entered++;
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!go.load() && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  for (size_t i = 0; i < kW; i++) c->prefetch(refs[i]);
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (entered.load() < kW && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  REQUIRE(entered.load() == kW);
  for (size_t i = kW; i < kN; i++) c->prefetch(refs[i]);  // the last 5 find the queue full
  go = true;
  c->drain();
  CHECK(c->stats().prefetched == kW + kQ);
  CHECK(c->blocks() == kW + kQ);
  for (size_t i = 0; i < kN; i++) CHECK(exists(c->path_of(refs[i].hash)) == (i < kW + kQ));
  CHECK(must_read(*c, refs[kN - 1], 0, 3000) == data[kN - 1]);
  CHECK(c->stats().misses == 1);
  // Queued prefetches do not hold up the destructor.
  go = false;
  std::vector<blob::BlockRef> more;
  for (uint32_t i = 0; i < 6; i++) more.push_back(f.put(random_bytes(2000, 200 + i)));
  for (const auto& r : more) c->prefetch(r);
  go = true;
  c.reset();
  CHECK(exists(f.dir() + "/clean"));
}
