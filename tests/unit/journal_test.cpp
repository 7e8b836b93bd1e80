// journal_test.cpp — the endurant log (journal/log.h): group commit from
// many threads, recovery in seq order after the newest checkpoint, a full
// log waiting for a checkpoint, a torn tail dropped, damage in the middle
// and another store's segment refused, an injected write failure.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "journal/log.h"
#include "util/fault.h"

using namespace tcfs;
using namespace tcfs::journal;
namespace fs = std::filesystem;

namespace {

struct TmpDir {
  fs::path path;
  TmpDir() {
    char t[] = "/tmp/tcfs-journal-XXXXXX";
    REQUIRE(mkdtemp(t) != nullptr);
    path = t;
  }
  ~TmpDir() { fs::remove_all(path); }
};

Options opts(const fs::path& d, unsigned segments = 3) {
  Options o;
  o.dir = (d / "journal").string();
  o.store_id = "store-a";
  o.segment_bytes = 3ull << 20;
  o.segments = segments;
  return o;
}

Record rec(const std::string& file, uint64_t off, const std::string& data) {
  Record r;
  r.handle = "h:" + file;
  r.off = off;
  r.data = data;
  r.size = off + data.size();
  r.mtime_sec = 1700000000;
  r.mtime_nsec = 42;
  return r;
}

// Everything recovery hands over, in order.
Result<Recovered> replay(const Options& o, std::vector<Record>* out) {
  return recover(o, [&](const Record& r) {
    out->push_back(r);
    return Status();
  });
}

std::unique_ptr<Log> open_log(const Options& o, Recovered* r = nullptr) {
  std::vector<Record> ignored;
  auto rec = replay(o, &ignored);
  REQUIRE_MESSAGE(rec.is_ok(), rec.status().message());
  auto l = Log::open(o, *rec);
  REQUIRE_MESSAGE(l.is_ok(), l.status().message());
  if (r) *r = *rec;
  return std::move(*l);
}

// The batches of a segment file: (offset, length).
std::vector<std::pair<uint64_t, uint32_t>> batches_of(const fs::path& seg) {
  std::vector<std::pair<uint64_t, uint32_t>> out;
  int fd = ::open(seg.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  uint64_t gen = 0;
  REQUIRE(pread(fd, &gen, 8, 16) == 8);
  for (uint64_t off = kBlock;; ) {
    char h[32];
    if (pread(fd, h, 32, static_cast<off_t>(off)) != 32) break;
    uint32_t magic, len;
    uint64_t g;
    std::memcpy(&magic, h, 4);
    std::memcpy(&g, h + 8, 8);
    std::memcpy(&len, h + 28, 4);
    if (magic != 0x314A4354 || g != gen || len == 0) break;
    out.emplace_back(off, len);
    off += len;
  }
  ::close(fd);
  return out;
}

void flip_byte(const fs::path& f, uint64_t off) {
  int fd = ::open(f.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  char c;
  REQUIRE(pread(fd, &c, 1, static_cast<off_t>(off)) == 1);
  c ^= 0x5a;
  REQUIRE(pwrite(fd, &c, 1, static_cast<off_t>(off)) == 1);
  ::close(fd);
}

// The segment file holding the newest batches (the highest generation).
fs::path newest_segment(const Options& o) {
  fs::path best;
  uint64_t top = 0;
  for (const auto& e : fs::directory_iterator(o.dir)) {
    int fd = ::open(e.path().c_str(), O_RDONLY);
    uint64_t gen = 0;
    if (pread(fd, &gen, 8, 16) == 8 && gen > top) top = gen, best = e.path();
    ::close(fd);
  }
  return best;
}

}  // namespace

TEST_CASE("log.h 3, 6: eight writers; every acknowledged record comes back once, in seq order, as written") {
  TmpDir d;
  Options o = opts(d.path);
  std::map<uint64_t, std::string> acked;  // seq -> "writer:i"
  {
    auto log = open_log(o);
    std::mutex m;
    std::vector<std::thread> ts;
    for (int w = 0; w < 8; w++)
      ts.emplace_back([&, w] {
        for (int i = 0; i < 150; i++) {
          std::string tag = std::to_string(w) + ":" + std::to_string(i);
          auto s = log->append({rec("f" + std::to_string(w), static_cast<uint64_t>(i) * 4096, tag + std::string(4000, 'x'))});
          REQUIRE(s.is_ok());
          std::lock_guard<std::mutex> g(m);
          acked[*s] = tag;
        }
      });
    for (auto& t : ts) t.join();
    Stats st = log->stats();
    CHECK(st.records == 1200);
    CHECK(st.batches >= 1);
    CHECK(st.batches <= 1200);
    CHECK(st.durable_seq == 1200);
    MESSAGE("1200 appends from 8 threads in " << st.batches << " batches (io_uring: " << st.uring << ")");
  }
  CHECK(acked.size() == 1200);
  std::vector<Record> got;
  auto r = replay(o, &got);
  REQUIRE_MESSAGE(r.is_ok(), r.status().message());
  CHECK(r->last_seq == 1200);
  CHECK(r->replayed == 1200);
  REQUIRE(got.size() == 1200);
  for (size_t i = 0; i < got.size(); i++) {
    CHECK(got[i].seq == i + 1);
    const std::string& tag = acked[got[i].seq];
    CHECK(got[i].data.compare(0, tag.size(), tag) == 0);
    CHECK(got[i].data.size() == tag.size() + 4000);
    CHECK(got[i].handle == "h:f" + tag.substr(0, tag.find(':')));
    CHECK(got[i].off == std::stoull(tag.substr(tag.find(':') + 1)) * 4096);
    CHECK(got[i].size == got[i].off + got[i].data.size());
    CHECK(got[i].mtime_sec == 1700000000);
    CHECK(got[i].mtime_nsec == 42);
  }
}

TEST_CASE("log.h 4, 6: records up to a checkpoint are retired; seqs go on across a reopen") {
  TmpDir d;
  Options o = opts(d.path);
  {
    auto log = open_log(o);
    for (int i = 0; i < 10; i++) REQUIRE(log->append({rec("a", 0, "old" + std::to_string(i))}).is_ok());
    CHECK(log->dirty());
    REQUIRE(log->checkpointed(log->durable_seq()).is_ok());
    CHECK(!log->dirty());
    for (int i = 0; i < 5; i++) REQUIRE(log->append({rec("a", 0, "new" + std::to_string(i))}).is_ok());
    CHECK(log->checkpointed(1000).err() == EINVAL);  // past what is durable
  }
  std::vector<Record> got;
  auto r = replay(o, &got);
  REQUIRE(r.is_ok());
  CHECK(r->ckpt == 10);
  REQUIRE(got.size() == 5);
  CHECK(got[0].data == "new0");
  CHECK(got[0].seq == 12);  // 11 is the checkpoint
  {
    auto log = open_log(o);
    auto s = log->append({rec("a", 0, "after reopen")});
    REQUIRE(s.is_ok());
    CHECK(*s == 17);
  }
  got.clear();
  r = replay(o, &got);
  REQUIRE(r.is_ok());
  REQUIRE(got.size() == 6);
  CHECK(got.back().data == "after reopen");
}

TEST_CASE("log.h 8: append_all takes more than a batch, in order; a file is live until a checkpoint retires it") {
  TmpDir d;
  Options o = opts(d.path);
  {
    auto log = open_log(o);
    REQUIRE(log->append({rec("x", 0, "x0")}).is_ok());
    CHECK(log->live("h:x"));
    CHECK(!log->live("h:y"));
    std::vector<Record> big;  // 12 records of 256 KiB: three batches at least
    for (int i = 0; i < 12; i++) big.push_back(rec("y", uint64_t(i) << 18, std::string(256 << 10, char('a' + i))));
    CHECK(log->append(big).err() == EFBIG);  // append() is one batch at most
    auto last = log->append_all(big);
    REQUIRE(last.is_ok());
    CHECK(*last == 13);
    CHECK(log->live("h:y"));
    CHECK(log->stats().batches >= 4);
    REQUIRE(log->checkpointed(*last).is_ok());
    CHECK(!log->live("h:x"));
    CHECK(!log->live("h:y"));
    REQUIRE(log->append_all({rec("y", 0, "after")}).is_ok());
    CHECK(log->live("h:y"));
    CHECK(!log->live("h:x"));
    CHECK(log->append_all({rec("z", 0, std::string(kMaxBatch, 'z'))}).err() == EFBIG);  // one record over a batch
  }
  std::vector<Record> got;
  REQUIRE(replay(o, &got).is_ok());
  REQUIRE(got.size() == 1);
  CHECK(got[0].data == "after");
  // Before the checkpoint, the twelve come back whole and in order.
  TmpDir d2;
  Options o2 = opts(d2.path);
  {
    auto log = open_log(o2);
    std::vector<Record> big;
    for (int i = 0; i < 12; i++) big.push_back(rec("y", uint64_t(i) << 18, std::string(256 << 10, char('a' + i))));
    REQUIRE(log->append_all(big).is_ok());
  }
  got.clear();
  REQUIRE(replay(o2, &got).is_ok());
  REQUIRE(got.size() == 12);
  for (int i = 0; i < 12; i++) {
    CHECK(got[size_t(i)].off == uint64_t(i) << 18);
    CHECK(got[size_t(i)].data == std::string(256 << 10, char('a' + i)));
  }
}

TEST_CASE("log.h 5: a full log waits for a checkpoint, never fails, never drops a record") {
  TmpDir d;
  Options o = opts(d.path, 2);  // 6 MiB of log for 16 MiB of records
  std::mutex m;
  std::condition_variable cv;
  bool kicked = false, stop = false;
  o.on_full = [&] {
    std::lock_guard<std::mutex> g(m);
    kicked = true;
    cv.notify_all();
  };
  Recovered rr;
  auto log = open_log(o, &rr);
  std::atomic<int> ckpts{0};
  std::thread checkpointer([&] {  // the owner's checkpoint: (syncfs), then checkpointed()
    std::unique_lock<std::mutex> g(m);
    for (;;) {
      cv.wait(g, [&] { return kicked || stop; });
      if (stop) return;
      kicked = false;
      g.unlock();
      // A slow syncfs: the log is asked early (half full), and fills meanwhile.
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      REQUIRE(log->checkpointed(log->durable_seq()).is_ok());
      ckpts++;
      g.lock();
    }
  });
  std::vector<std::thread> ts;
  for (int w = 0; w < 4; w++)
    ts.emplace_back([&, w] {
      for (int i = 0; i < 1000; i++) REQUIRE(log->append({rec("w" + std::to_string(w), 0, std::string(4096, 'a' + w))}).is_ok());
    });
  for (auto& t : ts) t.join();
  {
    std::lock_guard<std::mutex> g(m);
    stop = true;
    cv.notify_all();
  }
  checkpointer.join();
  Stats st = log->stats();
  CHECK(st.records == 4000);
  CHECK(st.full_waits > 0);
  CHECK(ckpts > 0);
  CHECK(st.used_bytes <= st.limit_bytes);
  uint64_t last = log->durable_seq();
  log.reset();
  std::vector<Record> got;
  auto r = replay(o, &got);
  REQUIRE_MESSAGE(r.is_ok(), r.status().message());
  CHECK(r->last_seq == last);
  for (const auto& x : got) CHECK(x.seq > r->ckpt);
  CHECK(got.size() <= 4000);
}

TEST_CASE("log.h 6: a torn tail is dropped; the reopened log zeroes it and goes on") {
  TmpDir d;
  Options o = opts(d.path);
  {
    auto log = open_log(o);
    for (int i = 0; i < 6; i++) REQUIRE(log->append({rec("t", 0, "r" + std::to_string(i))}).is_ok());
  }
  fs::path seg = newest_segment(o);
  auto bs = batches_of(seg);
  REQUIRE(bs.size() == 6);
  flip_byte(seg, bs.back().first + 100);  // the last batch: a write the crash cut
  std::vector<Record> got;
  auto r = replay(o, &got);
  REQUIRE_MESSAGE(r.is_ok(), r.status().message());
  CHECK(got.size() == 5);
  CHECK(r->last_seq == 5);
  CHECK(r->torn_bytes > 0);
  {
    auto log = open_log(o);
    auto s = log->append({rec("t", 0, "after the tear")});
    REQUIRE(s.is_ok());
    CHECK(*s == 6);  // the torn batch's seq, never acknowledged, is taken again
  }
  got.clear();
  r = replay(o, &got);
  REQUIRE(r.is_ok());
  REQUIRE(got.size() == 6);
  CHECK(got.back().data == "after the tear");
  CHECK(r->torn_bytes == 0);
}

TEST_CASE("log.h 6: damage before valid batches, a seq gap, another store's segment: refused, naming segment and offset") {
  TmpDir d;
  Options o = opts(d.path);
  {
    auto log = open_log(o);
    for (int i = 0; i < 6; i++) REQUIRE(log->append({rec("m", 0, "r" + std::to_string(i))}).is_ok());
  }
  fs::path seg = newest_segment(o);
  auto bs = batches_of(seg);
  REQUIRE(bs.size() == 6);
  size_t applied = 0;
  SUBCASE("a bad checksum in the middle") {
    flip_byte(seg, bs[2].first + 60);
    auto r = recover(o, [&](const Record&) { return applied++, Status(); });
    REQUIRE(!r.is_ok());
    CHECK(r.err() == EIO);
    CHECK(r.status().message().find(seg.filename().string()) != std::string::npos);
    CHECK(r.status().message().find("offset " + std::to_string(bs[2].first)) != std::string::npos);
    CHECK(applied == 0);  // nothing applied from a log that cannot be trusted
  }
  SUBCASE("another store's log") {
    Options other = o;
    other.store_id = "store-b";
    auto r = recover(other, [&](const Record&) { return applied++, Status(); });
    REQUIRE(!r.is_ok());
    CHECK(r.status().message().find("belongs to store store-a") != std::string::npos);
    CHECK(applied == 0);
  }
  SUBCASE("a damaged segment header") {
    flip_byte(seg, 20);
    auto r = recover(o, [&](const Record&) { return applied++, Status(); });
    REQUIRE(!r.is_ok());
    CHECK(r.status().message().find("header checksum") != std::string::npos);
  }
}

TEST_CASE("log.h 3: a failed write answers EIO to its appends and acknowledges nothing; the next one works") {
  TmpDir d;
  Options o = opts(d.path);
  {
    auto log = open_log(o);
    REQUIRE(log->append({rec("f", 0, "one")}).is_ok());
    fault::reset();
    fault::arm("journal.write", EIO);
    auto bad = log->append({rec("f", 0, "lost")});
    fault::reset();
    CHECK(bad.err() == EIO);
    auto s = log->append({rec("f", 0, "two")});
    REQUIRE(s.is_ok());
    CHECK(*s == 2);
    CHECK(log->append({rec("f", 0, std::string(kMaxBatch, 'z'))}).err() == EFBIG);
  }
  std::vector<Record> got;
  auto r = replay(o, &got);
  REQUIRE(r.is_ok());
  REQUIRE(got.size() == 2);
  CHECK(got[0].data == "one");
  CHECK(got[1].data == "two");
}

TEST_CASE("log.h 8: submit_all queues at once and its ticket waits; a ticket not waited for waits when destroyed") {
  TmpDir d;
  Options o = opts(d.path);
  {
    auto log = open_log(o);
    std::vector<Record> a, b;  // a: three batches at least; b: one record
    for (int i = 0; i < 8; i++) a.push_back(rec("a", uint64_t(i) << 18, std::string(256 << 10, char('a' + i))));
    b.push_back(rec("b", 0, "b0"));
    auto ta = log->submit_all(std::move(a));
    REQUIRE(ta.is_ok());
    auto tb = log->submit_all(std::move(b));
    REQUIRE(tb.is_ok());
    auto lb = tb->wait();  // submitted in turn: durable in seq order
    REQUIRE(lb.is_ok());
    CHECK(*lb == 9);
    auto la = ta->wait();
    REQUIRE(la.is_ok());
    CHECK(*la == 8);
    CHECK(log->durable_seq() == 9);
    CHECK(log->live("h:a"));
    CHECK(log->submit_all({rec("z", 0, std::string(kMaxBatch, 'z'))}).err() == EFBIG);
    {
      auto tc = log->submit_all({rec("c", 0, "c0")});
      REQUIRE(tc.is_ok());
    }  // destroyed unwaited: the committer may no longer hold it, so it waited
    CHECK(log->durable_seq() == 10);
    auto empty = log->submit_all({});
    REQUIRE(empty.is_ok());
    auto le = empty->wait();
    REQUIRE(le.is_ok());
    CHECK(*le == 10);
  }
  std::vector<Record> got;
  REQUIRE(replay(o, &got).is_ok());
  REQUIRE(got.size() == 10);
  for (size_t i = 0; i < 10; i++) CHECK(got[i].seq == i + 1);
  CHECK(got[8].data == "b0");
  CHECK(got[9].data == "c0");
}
