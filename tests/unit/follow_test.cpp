// follow_test.cpp — a follower's image (sync/follow.h): rounds applied whole,
// a damaged journal or a missing marker stops it at the last good round,
// time travel's stop_at, and promote's build_from_image.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <filesystem>

#include "sync/follow.h"
#include "sync/restore.h"
#include "sync_fixture.h"
#include "util/fault.h"

using namespace tcfs;
using namespace tcfs::sync;
using namespace tcfs::sync::testing;
namespace fs = std::filesystem;

namespace {

// The content of rel in the image as of txn t ("" and false when absent).
bool image_file(Image& img, meta::Txn& t, blob::ObjectStore& os, const std::string& rel, std::string* out) {
  uint64_t id = kRootId;
  size_t at = 0;
  while (at < rel.size()) {
    size_t slash = rel.find('/', at);
    std::string name = rel.substr(at, slash == std::string::npos ? std::string::npos : slash - at);
    auto c = img.child(t, id, name);
    REQUIRE(c.is_ok());
    if (!c->has_value()) return false;
    id = **c;
    at = slash == std::string::npos ? rel.size() : slash + 1;
  }
  auto r = img.object(t, id);
  REQUIRE(r.is_ok());
  REQUIRE(r->has_value());
  out->clear();
  for (const auto& b : (*r)->blocks) {
    auto bytes = blob::read_block(os, b);
    REQUIRE(bytes.is_ok());
    *out += *bytes;
  }
  return true;
}

std::string read_now(Image& img, blob::ObjectStore& os, const std::string& rel) {
  auto t = meta::Txn::begin(img.env(), false);
  REQUIRE(t.is_ok());
  std::string s;
  if (!image_file(img, *t, os, rel, &s)) return "<absent>";
  return s;
}

uint64_t epoch_of(Image& img) {
  auto t = meta::Txn::begin(img.env(), false);
  REQUIRE(t.is_ok());
  auto r = img.round(*t);
  REQUIRE(r.is_ok());
  return r->epoch;
}

struct World {
  Blobbers b;
  Local w;  // the writer
  Local f;  // the follower
  std::unique_ptr<Syncer> s;
  State fst{*f.env};
  Image img{fst};
  World() { s = w.syncer(*b.os); }
  std::string R() { return w.root(); }
  void round_with(const std::string& rel, const std::string& data) {
    bool fresh = !fs::exists(R() + "/" + rel);
    write_file(R() + "/" + rel, data);
    if (fresh) w.tracker.name(w.obj(""), rel);
    else w.tracker.data(w.obj(rel));
    REQUIRE(s->round().is_ok());
  }
  void init_follower() {
    RestoreOptions o;
    o.image_only = true;
    auto r = restore(*b.os, f.root_fd, fst, o);
    REQUIRE_MESSAGE(r.is_ok(), r.status().message());
  }
};

}  // namespace

TEST_CASE("follow.h 2-3: each poll applies whole rounds; a reader's transaction keeps its round") {
  World x;
  x.round_with("a", "a1");
  x.round_with("b", "b1");
  x.init_follower();
  CHECK(epoch_of(x.img) == 2);
  CHECK(read_now(x.img, *x.b.os, "a") == "a1");
  CHECK(fs::is_empty(x.f.root()));  // follow.h 5: no tree, only the image
  x.round_with("a", "a2");
  x.round_with("b", random_bytes(5 * 1024 * 1024, 3));  // two blocks
  auto old = meta::Txn::begin(x.img.env(), false);  // a reader in round 2
  REQUIRE(old.is_ok());
  PollReport p = poll(*x.b.os, x.img);
  CHECK(p.error.is_ok());
  CHECK(p.applied == 2);
  CHECK(p.newest == 4);
  CHECK(epoch_of(x.img) == 4);
  std::string s;
  REQUIRE(image_file(x.img, *old, *x.b.os, "a", &s));
  CHECK(s == "a1");  // the old reader still sees round 2 whole
  REQUIRE(image_file(x.img, *old, *x.b.os, "b", &s));
  CHECK(s == "b1");
  CHECK(read_now(x.img, *x.b.os, "a") == "a2");
  CHECK(read_now(x.img, *x.b.os, "b") == random_bytes(5 * 1024 * 1024, 3));
  // A removal is a round too.
  fs::remove(x.R() + "/a");
  x.w.tracker.name(x.w.obj(""), "a");
  REQUIRE(x.s->round().is_ok());
  CHECK(poll(*x.b.os, x.img).applied == 1);
  CHECK(read_now(x.img, *x.b.os, "a") == "<absent>");
  CHECK(poll(*x.b.os, x.img).applied == 0);  // nothing new: nothing changes
}

TEST_CASE("follow.h 2: a damaged journal stops the follower at the last good round, naming it; repaired, it moves on") {
  World x;
  x.round_with("a", "a1");
  x.init_follower();
  x.round_with("a", "a2");
  // Every shard of round 2's chunk goes (a 2+1 set cannot rebuild it).
  std::vector<std::pair<fs::path, fs::path>> moved;
  for (const auto& e : fs::recursive_directory_iterator(x.b.tmp.path)) {
    std::string p = e.path().string();
    if (p.find("/n/j/0000000000000002-") != std::string::npos && p.find("/c000000.") != std::string::npos) {
      fs::path to = p + ".away";
      fs::rename(e.path(), to);
      moved.emplace_back(e.path(), to);
    }
  }
  REQUIRE(moved.size() == 3);
  PollReport p = poll(*x.b.os, x.img);
  CHECK(!p.error.is_ok());
  CHECK(p.error.message().find("n/j/0000000000000002-") != std::string::npos);
  CHECK(epoch_of(x.img) == 1);
  CHECK(read_now(x.img, *x.b.os, "a") == "a1");
  for (const auto& [from, to] : moved) fs::rename(to, from);  // the repair
  p = poll(*x.b.os, x.img);
  CHECK(p.error.is_ok());
  CHECK(epoch_of(x.img) == 2);
  CHECK(read_now(x.img, *x.b.os, "a") == "a2");
}

TEST_CASE("follow.h 4: a missing marker stops the follower; stop_at is never passed; a failed commit changes nothing") {
  World x;
  x.round_with("a", "a1");
  x.init_follower();
  x.round_with("a", "a2");
  x.round_with("a", "a3");
  x.round_with("a", "a4");
  // stop_at: round 3 and no further.
  PollReport p = poll(*x.b.os, x.img, 3);
  CHECK(p.applied == 2);
  CHECK(epoch_of(x.img) == 3);
  CHECK(read_now(x.img, *x.b.os, "a") == "a3");
  // The apply fails before its commit: the image stays at round 3.
  fault::reset();
  fault::arm("follow.apply", EIO);
  p = poll(*x.b.os, x.img);
  CHECK(p.error.err() == EIO);
  CHECK(epoch_of(x.img) == 3);
  CHECK(read_now(x.img, *x.b.os, "a") == "a3");
  fault::reset();
  // Round 5 marked, round 4's marker gone from every blobber: a gap.
  x.round_with("a", "a5");
  for (int i = 0; i < 3; i++) fs::remove(x.b.tmp / ("b" + std::to_string(i) + "/n/r/0000000000000004"));
  p = poll(*x.b.os, x.img);
  CHECK(!p.error.is_ok());
  CHECK(p.error.message().find("has no marker") != std::string::npos);
  CHECK(epoch_of(x.img) == 3);
}

TEST_CASE("follow.h 6: a follower's image becomes a store's tree and synced state (promote)") {
  World x;
  fs::create_directories(x.R() + "/d");
  write_file(x.R() + "/d/f", "content of f");
  x.w.tracker.name(x.w.obj(""), "d");
  REQUIRE(x.s->round().is_ok());
  x.init_follower();
  x.round_with("g", "g1");
  REQUIRE(poll(*x.b.os, x.img).applied == 1);
  auto rep = build_from_image(x.f.root_fd, x.fst);
  REQUIRE_MESSAGE(rep.is_ok(), rep.status().message());
  CHECK(rep->epoch == 2);
  CHECK(fs::is_directory(x.f.root() + "/d"));
  CHECK(fs::file_size(x.f.root() + "/d/f") == 12);  // a stub of the right size
  CHECK(fs::exists(x.f.root() + "/g"));
  // It continues the chain: a syncer over it takes round 3.
  Local& f = x.f;
  auto s2 = f.syncer(*x.b.os);
  CHECK(s2->status().epoch == 2);
  write_file(f.root() + "/h", "from the promoted store");
  f.tracker.name(f.obj(""), "h");
  REQUIRE(s2->round().is_ok());
  CHECK(s2->status().epoch == 3);
  // The old writer's next round is fenced (sync.h 10).
  write_file(x.R() + "/late", "late");
  x.w.tracker.name(x.w.obj(""), "late");
  Status st = x.s->round();
  CHECK(st.err() == EROFS);
}

TEST_CASE("follow.h 9: an image whose next journal is gone is stranded; rebuilt from a snapshot; a cut rebuild is pending") {
  World x;
  SyncOptions so;
  so.snapshot_every = 3;  // a snapshot of round 3
  x.s = x.w.syncer(*x.b.os, so);
  x.round_with("a", "a1");
  x.init_follower();
  CHECK(epoch_of(x.img) == 1);
  auto none = stranded(*x.b.os, x.img);
  REQUIRE(none.is_ok());
  CHECK(!none->has_value());  // nothing new yet
  x.round_with("a", "a2");
  x.round_with("b", "b3");
  x.round_with("a", "a4");
  none = stranded(*x.b.os, x.img);
  REQUIRE(none.is_ok());
  CHECK(!none->has_value());  // round 2's journal is there
  // gc's work, by hand: round 2's journal goes from every blobber.
  size_t removed = 0;
  for (const auto& e : fs::recursive_directory_iterator(x.b.tmp.path))
    if (e.path().string().find("/n/j/0000000000000002-") != std::string::npos && e.is_regular_file()) removed++;
  for (int i = 0; i < 3; i++)
    for (const auto& e : fs::directory_iterator(x.b.tmp / ("b" + std::to_string(i) + "/n/j")))
      if (e.path().filename().string().rfind("0000000000000002-", 0) == 0) fs::remove_all(e.path());
  REQUIRE(removed > 0);
  auto gone = stranded(*x.b.os, x.img);
  REQUIRE(gone.is_ok());
  REQUIRE(gone->has_value());
  CHECK((*gone)->find("round 2") != std::string::npos);
  CHECK(!poll(*x.b.os, x.img).error.is_ok());  // polling cannot move it
  CHECK(epoch_of(x.img) == 1);
  // A rebuild cut short after clearing the image stays pending ...
  fault::reset();
  fault::arm("follow.rebuild", EIO);
  CHECK(!rebuild_image(*x.b.os, x.f.root_fd, x.fst, RestoreOptions{}).is_ok());
  fault::reset();
  auto pending = rebuild_pending(x.fst);
  REQUIRE(pending.is_ok());
  CHECK(*pending);
  // ... and the next one finishes it: round 4 from the snapshot of round 3.
  auto r = rebuild_image(*x.b.os, x.f.root_fd, x.fst, RestoreOptions{});
  REQUIRE_MESSAGE(r.is_ok(), r.status().message());
  CHECK(!r->snapshot.empty());
  pending = rebuild_pending(x.fst);
  REQUIRE(pending.is_ok());
  CHECK(!*pending);
  CHECK(epoch_of(x.img) == 4);
  CHECK(read_now(x.img, *x.b.os, "a") == "a4");
  CHECK(read_now(x.img, *x.b.os, "b") == "b3");
  x.round_with("a", "a5");
  CHECK(poll(*x.b.os, x.img).applied == 1);  // and it follows on
  CHECK(read_now(x.img, *x.b.os, "a") == "a5");
}
