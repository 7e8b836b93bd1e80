// Unit tests for sync/: marks, records, record streams, journal chains, and
// whole sync rounds of a real directory tree to 2+1 dir blobbers, checked
// by reading the remote image back and comparing it with the tree.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "blob/blocks.h"
#include "sync/chain.h"
#include "sync/fetch.h"
#include "sync/restore.h"
#include "sync/records.h"
#include "sync/stream.h"
#include "sync/syncer.h"
#include "sync_fixture.h"
#include "test_util.h"
#include "util/fault.h"
#include "util/handle.h"

using namespace tcfs;
using namespace tcfs::sync;
using namespace tcfs::sync::testing;
namespace fs = std::filesystem;

namespace {

// The remote image, as a reader of the journal chain sees it.
struct Image {
  std::map<uint64_t, InodeRec> objs;
  std::map<std::pair<uint64_t, std::string>, uint64_t> ents;
  size_t journals = 0, drops = 0;
};

Image load_image(blob::ObjectStore& os) {
  Image img;
  auto ch = chain(os);
  REQUIRE(ch.is_ok());
  img.journals = ch->size();
  for (const auto& base : *ch) {
    auto r = StreamReader::open(os, base);
    REQUIRE(r.is_ok());
    for (;;) {
      auto rec = r->next();
      REQUIRE(rec.is_ok());
      if (!rec->has_value()) break;
      auto d = decode(**rec);
      REQUIRE(d.is_ok());
      if (auto* i = std::get_if<InodeRec>(&*d)) img.objs[i->id] = *i;
      if (auto* e = std::get_if<EntryRec>(&*d)) {
        if (e->child) img.ents[{e->parent, e->name}] = e->child;
        else img.ents.erase({e->parent, e->name});
      }
      if (auto* dr = std::get_if<DropRec>(&*d)) {
        img.objs.erase(dr->id);
        img.drops++;
      }
    }
  }
  return img;
}

// Compares the tree under dir (remote id `id`) with the image; ino_to_id
// checks that hard links are one object remotely too.
void compare(blob::ObjectStore& os, const Image& img, const std::string& dir, uint64_t id,
             std::map<ino_t, uint64_t>& ino_to_id) {
  std::set<std::string> local, remote;
  for (const auto& e : fs::directory_iterator(dir)) local.insert(e.path().filename());
  for (auto it = img.ents.lower_bound({id, ""}); it != img.ents.end() && it->first.first == id; ++it)
    remote.insert(it->first.second);
  CHECK_MESSAGE(local == remote, dir);
  for (const auto& name : local) {
    if (!remote.count(name)) continue;
    std::string p = dir + "/" + name;
    uint64_t cid = img.ents.at({id, name});
    REQUIRE_MESSAGE(img.objs.count(cid), p);
    const InodeRec& r = img.objs.at(cid);
    struct stat sb;
    REQUIRE(lstat(p.c_str(), &sb) == 0);
    CAPTURE(p);
    auto [it, fresh] = ino_to_id.emplace(sb.st_ino, cid);
    CHECK(it->second == cid);
    CHECK(r.mode == sb.st_mode);
    CHECK(r.uid == sb.st_uid);
    CHECK(r.gid == sb.st_gid);
    CHECK(r.mtime_sec == sb.st_mtim.tv_sec);
    CHECK(r.mtime_nsec == static_cast<uint32_t>(sb.st_mtim.tv_nsec));
    if (S_ISREG(sb.st_mode)) {
      CHECK(r.size == static_cast<uint64_t>(sb.st_size));
      std::string content;
      for (const auto& ref : r.blocks) content += blob::read_block(os, ref).value();
      CHECK(content == read_file(p));
      char v[256];
      ssize_t n = getxattr(p.c_str(), "user.tag", v, sizeof v);
      std::string want = n >= 0 ? std::string(v, static_cast<size_t>(n)) : "";
      std::string got;
      for (const auto& [xn, xv] : r.xattrs)
        if (xn == "user.tag") got = xv;
      CHECK(got == want);
    } else if (S_ISLNK(sb.st_mode)) {
      CHECK(r.target == fs::read_symlink(p).string());
    } else if (S_ISDIR(sb.st_mode) && fresh) {
      compare(os, img, p, cid, ino_to_id);
    }
  }
}

void compare_tree(blob::ObjectStore& os, const std::string& root) {
  Image img = load_image(os);
  REQUIRE(img.objs.count(kRootId));
  std::map<ino_t, uint64_t> seen;
  compare(os, img, root, kRootId, seen);
}

// A restore of a chain cut on purpose: walked once more (chain.h 3, the
// retry still runs) rather than kCutRetries times, kCutPauseMs apart.
RestoreOptions unsettled() {
  RestoreOptions o;
  o.settle = 1;
  return o;
}
}  // namespace

TEST_CASE("tracker: marks accumulate, take() empties, put_back() restores with the oldest time") {
  Tracker t;
  CHECK(t.pending() == 0);
  const ObjRef o5{5, "h5"}, o1{1, "h1"}, o9{9, "h9"};
  t.data(o5);
  t.name(o1, "a");
  t.name(o1, "a");
  t.data(ObjRef{5, "another object on number 5"});  // sync.h 4a: not the same mark
  CHECK(t.pending() == 4);  // data o5 and the other 5, name (o1,a), attr o1
  auto first = t.oldest();
  Marks m = t.take();
  CHECK(t.pending() == 0);
  CHECK(m.data.count(o5));
  CHECK(m.attr.count(o1));
  CHECK(m.names.size() == 1);
  t.attr(o9);
  t.put_back(std::move(m));
  CHECK(t.pending() == 5);
  CHECK(t.oldest() == first);
}

TEST_CASE("records: every kind round-trips; malformed records are refused") {
  InodeRec i;
  i.id = 7;
  i.mode = S_IFREG | 0640;
  i.uid = 1000;
  i.gid = 100;
  i.size = 5;
  i.mtime_sec = 1700000000;
  i.mtime_nsec = 123;
  i.xattrs = {{"user.a", std::string("v\0x", 3)}};
  blob::BlockRef b;
  b.hash = blob::sha256("hello");
  b.len = 5;
  b.obj = b.hash;
  b.objlen = 5;
  i.blocks = {b};
  for (const Record& r : {Record(i), Record(EntryRec{1, "name with space", 7}), Record(EntryRec{1, "gone", 0}),
                          Record(DropRec{7})}) {
    auto d = decode(encode(r));
    REQUIRE(d.is_ok());
    CHECK(d.value() == r);
  }
  CHECK(decode("garbage").err() == EINVAL);
  CHECK(decode(encode(EntryRec{1, "..", 2})).err() == EINVAL);
  CHECK(decode(encode(EntryRec{1, "a/b", 2})).err() == EINVAL);
  InodeRec bad = i;
  bad.size = 6;  // blocks do not add up
  CHECK(decode(encode(bad)).err() == EINVAL);
}

TEST_CASE("streams: many chunks read back in order; a damaged chunk or a missing end is an error") {
  Blobbers b(2, 1);
  StreamWriter w(*b.os, "n/s/test", 10000);
  std::vector<std::string> recs;
  for (int i = 0; i < 3000; i++) {
    recs.push_back(random_bytes(static_cast<size_t>(i % 97), static_cast<uint32_t>(i)) + std::to_string(i));
    REQUIRE(w.add(recs.back()).is_ok());
  }
  REQUIRE(w.finish({{"hello", 1}}).is_ok());
  auto chunks = b.os->list("n/s/test/");
  REQUIRE(chunks.is_ok());
  CHECK(chunks->size() > 5);
  auto r = StreamReader::open(*b.os, "n/s/test");
  REQUIRE(r.is_ok());
  CHECK(r->info()["hello"] == 1);
  CHECK(r->records() == 3000);
  for (const auto& want : recs) {
    auto got = r->next();
    REQUIRE(got.is_ok());
    REQUIRE(got->has_value());
    CHECK(**got == want);
  }
  CHECK(!r->next().value().has_value());
  // Overwrite chunk 2 with another valid object: its hash no longer matches.
  REQUIRE(b.os->put(chunk_name("n/s/test", 2), "not the chunk").is_ok());
  auto r2 = StreamReader::open(*b.os, "n/s/test");
  REQUIRE(r2.is_ok());
  Status st;
  for (;;) {
    auto got = r2->next();
    if (!got) {
      st = got.status();
      break;
    }
    if (!got->has_value()) break;
  }
  CHECK(st.err() == EIO);
  // A stream without its end does not exist.
  StreamWriter w2(*b.os, "n/s/unfinished", 100);
  for (int i = 0; i < 50; i++) REQUIRE(w2.add(recs[static_cast<size_t>(i)]).is_ok());
  CHECK(!StreamReader::open(*b.os, "n/s/unfinished").is_ok());
}

TEST_CASE("sync: a tree goes out whole, then its changes, and the image matches the tree each time") {
  Blobbers b;
  Local l;
  std::string R = l.root();
  fs::create_directories(R + "/a/b/c");
  write_file(R + "/a/small", "small file");
  write_file(R + "/a/b/big", random_bytes(9 * 1024 * 1024 + 17, 1));  // three blocks
  write_file(R + "/empty", "");
  for (int i = 0; i < 200; i++) write_file(R + "/a/b/c/f" + std::to_string(i), random_bytes(4096, 100 + i));
  fs::create_symlink("../a/small", R + "/a/b/link");
  fs::create_hard_link(R + "/a/small", R + "/hard");
  REQUIRE(setxattr((R + "/a/small").c_str(), "user.tag", "v1", 2, 0) == 0);
  chmod((R + "/a/b").c_str(), 0711);

  auto s = l.syncer(*b.os);
  CHECK(!s->was_clean());
  REQUIRE(s->rescan().is_ok());
  CHECK(l.tracker.pending() > 0);
  REQUIRE(s->round().is_ok());
  CHECK(l.tracker.pending() == 0);
  CHECK(s->status().epoch == 1);
  compare_tree(*b.os, R);
  // 200 small files went into packs, not 200 objects.
  CHECK(b.os->list("p/").value().size() <= 2);
  CHECK(b.os->list("b/").value().size() == 3);
  // Nothing marked: an empty round writes nothing.
  REQUIRE(s->round().is_ok());
  CHECK(load_image(*b.os).journals == 1);

  // Changes, marked as the FUSE layer marks them.
  ObjRef root = l.obj(""), a = l.obj("a");
  fs::rename(R + "/a/b", R + "/moved");
  l.tracker.name(a, "b");
  l.tracker.name(root, "moved");
  fs::remove(R + "/hard");
  l.tracker.name(root, "hard");
  write_file(R + "/a/small", "rewritten");
  l.tracker.data(l.obj("a/small"));
  write_file(R + "/moved/c/new", "new file in a moved directory");
  l.tracker.name(l.obj("moved/c"), "new");
  chmod((R + "/moved/c/f7").c_str(), 0600);
  l.tracker.attr(l.obj("moved/c/f7"));
  REQUIRE(setxattr((R + "/a/small").c_str(), "user.tag", "v2", 2, 0) == 0);
  fs::create_directories(R + "/fresh/deep/er");
  write_file(R + "/fresh/deep/er/x", "x");
  l.tracker.name(root, "fresh");  // one mark: the new tree is walked whole
  // The same 4 MiB twice: stored once.
  std::string dup = random_bytes(4 * 1024 * 1024, 9);
  write_file(R + "/dup1", dup);
  write_file(R + "/dup2", dup);
  l.tracker.name(root, "dup1");
  l.tracker.name(root, "dup2");
  REQUIRE(s->round().is_ok());
  CHECK(s->status().epoch == 2);
  CHECK(s->status().blocks_deduplicated >= 1);
  compare_tree(*b.os, R);
  CHECK(load_image(*b.os).journals == 2);
}

TEST_CASE("sync: a failed round changes nothing, keeps its marks, and the next one catches up") {
  Blobbers b;
  Local l;
  std::string R = l.root();
  write_file(R + "/f", "one");
  auto s = l.syncer(*b.os);
  REQUIRE(s->rescan().is_ok());
  REQUIRE(s->round().is_ok());
  write_file(R + "/f", "two");
  write_file(R + "/g", random_bytes(2 << 20, 3));
  l.tracker.data(l.obj("f"));
  l.tracker.name(l.obj(""), "g");
  fault::arm("blob1.put", EIO, 1, 0);  // blobber 1 refuses everything
  auto st = s->round();
  CHECK(st.err() == EIO);
  CHECK(l.tracker.pending() > 0);
  CHECK(s->status().epoch == 1);
  CHECK(s->status().failures == 1);
  CHECK(!s->status().last_error.empty());
  CHECK(load_image(*b.os).journals == 1);  // the remote image is still epoch 1
  CHECK(fs::is_empty(l.tmp / "stage"));
  fault::reset();
  REQUIRE(s->round().is_ok());
  CHECK(s->status().epoch == 2);
  compare_tree(*b.os, R);
}

TEST_CASE("sync: rescan after an unclean stop finds what changed, and only that") {
  Blobbers b;
  Local l;
  std::string R = l.root();
  fs::create_directories(R + "/d");
  write_file(R + "/d/keep", "keep");
  write_file(R + "/d/change", "before");
  write_file(R + "/gone", "gone");
  {
    auto s = l.syncer(*b.os);
    REQUIRE(s->rescan().is_ok());
    REQUIRE(s->round().is_ok());
  }
  // Changes made while nobody marked them (a crash lost the marks).
  write_file(R + "/d/change", "after!");
  fs::remove(R + "/gone");
  write_file(R + "/added", "added");
  auto s = l.syncer(*b.os);
  CHECK(!s->was_clean());
  REQUIRE(s->rescan().is_ok());
  Marks m = l.tracker.take();
  CHECK(m.data.count(l.obj("d/change")));
  CHECK(!m.data.count(l.obj("d/keep")));
  CHECK(m.names.count({l.obj(""), "gone"}));
  CHECK(m.names.count({l.obj(""), "added"}));
  l.tracker.put_back(std::move(m));
  REQUIRE(s->round().is_ok());
  compare_tree(*b.os, R);
}

TEST_CASE("sync: background rounds, wait_synced, and a clean stop") {
  Blobbers b;
  Local l;
  std::string R = l.root();
  {
    SyncOptions o;
    o.interval_ms = 60000;  // only wait_synced() starts a round here
    auto s = l.syncer(*b.os, o);
    REQUIRE(s->rescan().is_ok());
    s->start();
    write_file(R + "/x", "x");
    l.tracker.name(l.obj(""), "x");
    REQUIRE(s->wait_synced(std::chrono::seconds(30)).is_ok());
    compare_tree(*b.os, R);
    fault::arm("blob.put", EIO, 1, 0);
    write_file(R + "/y", "y");
    l.tracker.name(l.obj(""), "y");
    auto st = s->wait_synced(std::chrono::milliseconds(300));
    CHECK(st.err() == ETIMEDOUT);
    CHECK(st.what().find("not on the blobbers") != std::string::npos);
    fault::reset();
    REQUIRE(s->wait_synced(std::chrono::seconds(30)).is_ok());
    compare_tree(*b.os, R);
    s->stop();
  }
  auto s2 = l.syncer(*b.os);
  CHECK(s2->was_clean());
}

TEST_CASE("chain: the highest (boot, attempt) with the right prev wins; strays are ignored") {
  Blobbers b;
  auto journal = [&](const std::string& base, const std::string& prev, uint64_t epoch) {
    StreamWriter w(*b.os, base);
    REQUIRE(w.add(encode(EntryRec{1, base.substr(4), 2})).is_ok());
    REQUIRE(w.finish({{"epoch", epoch}, {"prev", prev}}).is_ok());
  };
  journal("n/j/0000000000000001-00000001-0000", "", 1);
  journal("n/j/0000000000000002-00000001-0000", "n/j/0000000000000001-00000001-0000", 2);  // orphan of a crash
  journal("n/j/0000000000000002-00000002-0000", "n/j/0000000000000001-00000001-0000", 2);  // after restart
  journal("n/j/0000000000000002-00000003-0000", "n/j/0000000000000009-00000001-0000", 2);  // wrong prev
  journal("n/j/0000000000000003-00000002-0001", "n/j/0000000000000002-00000002-0000", 3);
  journal("n/j/0000000000000005-00000002-0000", "n/j/0000000000000004-00000002-0000", 5);  // after a gap
  StreamWriter unfinished(*b.os, "n/j/0000000000000004-00000002-0000");
  REQUIRE(unfinished.add("x").is_ok());
  auto c = chain(*b.os);
  REQUIRE(c.is_ok());
  CHECK(*c == std::vector<std::string>{"n/j/0000000000000001-00000001-0000", "n/j/0000000000000002-00000002-0000",
                                       "n/j/0000000000000003-00000002-0001"});
  auto from2 = chain(*b.os, "n/j/0000000000000002-00000002-0000");
  CHECK(from2.value() == std::vector<std::string>{"n/j/0000000000000003-00000002-0001"});
}

namespace {

// Two trees are the same: names, types, modes, owners, mtimes, sizes,
// symlink targets, user xattrs, hard links, and contents (read_content
// brings a file's bytes local first, e.g. a stub fetch).
void same_tree(const std::string& a, const std::string& b, const std::function<void(const std::string&)>& fetch,
               std::map<ino_t, ino_t>& links) {
  std::set<std::string> na, nb;
  for (const auto& e : fs::directory_iterator(a)) na.insert(e.path().filename());
  for (const auto& e : fs::directory_iterator(b)) nb.insert(e.path().filename());
  REQUIRE_MESSAGE(na == nb, a);
  for (const auto& n : na) {
    std::string pa = a + "/" + n, pb = b + "/" + n;
    CAPTURE(pa);
    struct stat sa, sb;
    REQUIRE(lstat(pa.c_str(), &sa) == 0);
    REQUIRE(lstat(pb.c_str(), &sb) == 0);
    CHECK(sa.st_mode == sb.st_mode);
    CHECK(sa.st_uid == sb.st_uid);
    CHECK(sa.st_gid == sb.st_gid);
    CHECK(sa.st_nlink == sb.st_nlink);
    if (!S_ISDIR(sa.st_mode)) {
      CHECK(sa.st_mtim.tv_sec == sb.st_mtim.tv_sec);
      CHECK(sa.st_mtim.tv_nsec == sb.st_mtim.tv_nsec);
    }
    auto [it, fresh] = links.emplace(sa.st_ino, sb.st_ino);
    CHECK(it->second == sb.st_ino);  // hard links stay one object
    if (S_ISREG(sa.st_mode)) {
      CHECK(sa.st_size == sb.st_size);
      fetch(pb);
      CHECK(read_file(pa) == read_file(pb));
      char va[64], vb[64];
      ssize_t xa = getxattr(pa.c_str(), "user.tag", va, sizeof va), xb = getxattr(pb.c_str(), "user.tag", vb, sizeof vb);
      CHECK(xa == xb);
      if (xa > 0 && xa == xb) CHECK(std::string(va, static_cast<size_t>(xa)) == std::string(vb, static_cast<size_t>(xb)));
    } else if (S_ISLNK(sa.st_mode)) {
      CHECK(fs::read_symlink(pa) == fs::read_symlink(pb));
    } else if (S_ISDIR(sa.st_mode) && fresh) {
      same_tree(pa, pb, fetch, links);
      CHECK(sa.st_mtim.tv_sec == sb.st_mtim.tv_sec);  // after its entries were made
      CHECK(sa.st_mtim.tv_nsec == sb.st_mtim.tv_nsec);
    }
  }
}

}  // namespace

TEST_CASE("restore: the tree comes back as stubs, fetches verify, and the new store carries the image on") {
  Blobbers b;
  Local src;
  std::string R = src.root();
  fs::create_directories(R + "/a/b");
  write_file(R + "/a/small", "small file");
  std::string big = random_bytes(9 * 1024 * 1024 + 17, 1);
  write_file(R + "/a/b/big", big);
  write_file(R + "/empty", "");
  for (int i = 0; i < 50; i++) write_file(R + "/a/f" + std::to_string(i), random_bytes(3000, 200 + i));
  fs::create_symlink("../a/small", R + "/a/b/link");
  fs::create_hard_link(R + "/a/small", R + "/hard");
  REQUIRE(mkfifo((R + "/fifo").c_str(), 0640) == 0);
  REQUIRE(setxattr((R + "/a/small").c_str(), "user.tag", "v1", 2, 0) == 0);
  chmod((R + "/a/b").c_str(), 0750);
  REQUIRE(chown((R + "/a/f3").c_str(), 1234, 5678) == 0);
  {
    auto s = src.syncer(*b.os);
    REQUIRE(s->rescan().is_ok());
    REQUIRE(s->round().is_ok());
  }
  Local dst;
  State st(*dst.env);
  auto rep = restore(*b.os, dst.root_fd, st);
  REQUIRE(rep.is_ok());
  CHECK(rep->journals == 1);
  CHECK(rep->links == 1);
  CHECK(rep->files == 53);
  // Stubs: the right size, no data blocks yet.
  struct stat sb;
  REQUIRE(stat((dst.root() + "/a/b/big").c_str(), &sb) == 0);
  CHECK(sb.st_size == static_cast<off_t>(big.size()));
  CHECK(sb.st_blocks == 0);
  Fetcher f(dst.root_fd, *dst.env, *b.os);
  REQUIRE(f.load().is_ok());
  CHECK(f.stubs() == 52);  // every non-empty file
  // The first bytes arrive without the whole file.
  REQUIRE(f.ensure(dst.obj("a/b/big"), 0, 100).is_ok());
  CHECK(read_file(dst.root() + "/a/b/big").substr(0, 100) == big.substr(0, 100));
  std::map<ino_t, ino_t> links;
  same_tree(R, dst.root(), [&](const std::string& p) {
    struct stat x;
    REQUIRE(lstat(p.c_str(), &x) == 0);
    REQUIRE(f.ensure_all(ObjRef{x.st_ino, make_handle(AT_FDCWD, p.c_str())}).is_ok());
  }, links);
  CHECK(f.bytes_fetched() >= big.size());
  for (int i = 0; i < 200 && f.stubs() > 0; i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(f.stubs() == 0);

  // The restored store syncs on: its journal continues the chain and outranks the old writer.
  auto s2 = dst.syncer(*b.os);
  CHECK(s2->was_clean());
  write_file(dst.root() + "/after-restore", "new");
  dst.tracker.name(dst.obj(""), "after-restore");
  REQUIRE(s2->round().is_ok());
  CHECK(s2->status().epoch == 2);
  CHECK(s2->status().head.find("-00000002-") != std::string::npos);
  Local third;
  State st3(*third.env);
  REQUIRE(restore(*b.os, third.root_fd, st3).is_ok());
  Fetcher f3(third.root_fd, *third.env, *b.os);
  REQUIRE(f3.load().is_ok());
  std::map<ino_t, ino_t> links3;
  same_tree(dst.root(), third.root(), [&](const std::string& p) {
    struct stat x;
    REQUIRE(lstat(p.c_str(), &x) == 0);
    REQUIRE(f3.ensure_all(ObjRef{x.st_ino, make_handle(AT_FDCWD, p.c_str())}).is_ok());
  }, links3);
  // Restoring into a tree that is not empty is refused.
  State st4(*third.env);
  CHECK(restore(*b.os, third.root_fd, st4).err() == ENOTEMPTY);
}

// Whether any file under dir holds needle (in its bytes or its name).
bool tree_holds(const std::string& dir, const std::string& needle) {
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.path().string().find(needle) != std::string::npos) return true;
    if (e.is_regular_file() && read_file(e.path()).find(needle) != std::string::npos) return true;
  }
  return false;
}

TEST_CASE("encryption: a sealed image reads back with the key only; no content, name or SHA-256 on the blobbers") {
  auto key = blob::Cipher::make(random_bytes(32, 77)).value();
  Blobbers b(2, 1, key);
  Local src;
  const std::string marker = "sealed-marker-5b1d", name = "name-visible-only-locally";
  std::string big = random_bytes(2 * 1024 * 1024, 78) + marker;
  write_file(src.root() + "/" + name, marker + " small");
  write_file(src.root() + "/big", big);
  write_file(src.root() + "/big-copy", big);  // deduplicated under the keyed hash too
  {
    auto s = src.syncer(*b.os);
    REQUIRE(s->rescan().is_ok());
    REQUIRE(s->round().is_ok());
    CHECK(s->status().blocks_deduplicated >= 1);
  }
  compare_tree(*b.os, src.root());
  CHECK_FALSE(tree_holds(b.tmp.path, marker));
  CHECK_FALSE(tree_holds(b.tmp.path, name));
  CHECK_FALSE(tree_holds(b.tmp.path, blob::sha256(big).hex().substr(0, 32)));
  CHECK(tree_holds(b.tmp.path, "/b/"));  // the big block is a standalone object, keyed name
  Local dst;
  State st(*dst.env);
  REQUIRE(restore(*b.os, dst.root_fd, st).is_ok());
  Fetcher f(dst.root_fd, *dst.env, *b.os);
  REQUIRE(f.load().is_ok());
  REQUIRE(f.ensure_all(dst.obj("big")).is_ok());
  CHECK(read_file(dst.root() + "/big") == big);
  // Another key, or none: the same blobbers give nothing back.
  for (auto other : {blob::Cipher::make(random_bytes(32, 79)).value(), std::shared_ptr<const blob::Cipher>()}) {
    b.open(2, 1, other);
    Local x;
    State sx(*x.env);
    auto r = restore(*b.os, x.root_fd, sx, unsettled());
    CHECK_FALSE(r.is_ok());
    CHECK_FALSE(fs::exists(x.root() + "/big"));
  }
}

TEST_CASE("fetch: a damaged shard is repaired on the way; too many lost shards give EIO, never wrong data") {
  Blobbers b;
  Local src;
  std::string data = random_bytes(6 * 1024 * 1024, 5);
  write_file(src.root() + "/f", data);
  {
    auto s = src.syncer(*b.os);
    REQUIRE(s->rescan().is_ok());
    REQUIRE(s->round().is_ok());
  }
  Local dst;
  State st(*dst.env);
  REQUIRE(restore(*b.os, dst.root_fd, st).is_ok());
  // Lose every shard on blobber 0, then every shard on blobber 1 as well.
  fs::remove_all(b.tmp / "b0/b");
  fs::create_directories(b.tmp / "b0/b");
  {
    Fetcher f(dst.root_fd, *dst.env, *b.os);
    REQUIRE(f.load().is_ok());
    ObjRef ino = dst.obj("f");
    REQUIRE(f.ensure_all(ino).is_ok());
    CHECK(read_file(dst.root() + "/f") == data);
  }
  Local again;
  State st2(*again.env);
  REQUIRE(restore(*b.os, again.root_fd, st2).is_ok());
  fs::remove_all(b.tmp / "b1/b");
  fs::remove_all(b.tmp / "b2/b");
  Fetcher f(again.root_fd, *again.env, *b.os);
  REQUIRE(f.load().is_ok());
  auto e = f.ensure_all(again.obj("f"));
  CHECK(e.err() == EIO);
  CHECK(e.what().find("shards usable") != std::string::npos);
  CHECK(f.is_stub(again.obj("f")));  // still a stub: the next use tries again
}

TEST_CASE("snapshots: restore starts from the newest whole one; a damaged one falls back; removed objects are dropped") {
  Blobbers b;
  Local src;
  std::string R = src.root();
  SyncOptions o;
  o.snapshot_every = 2;
  auto s = src.syncer(*b.os, o);
  fs::create_directories(R + "/d");
  write_file(R + "/d/one", "one");
  write_file(R + "/gone", random_bytes(5000, 1));
  REQUIRE(s->rescan().is_ok());
  REQUIRE(s->round().is_ok());  // epoch 1
  uint64_t gone_id = 0;
  {
    auto t = meta::Txn::begin(*src.env, false);
    State st(*src.env);
    gone_id = st.file(*t, src.ino("gone")).value()->id;
  }
  fs::remove(R + "/gone");
  src.tracker.name(src.obj(""), "gone");
  write_file(R + "/d/two", "two");
  src.tracker.name(src.obj("d"), "two");
  REQUIRE(s->round().is_ok());  // epoch 2: a snapshot follows
  CHECK(load_image(*b.os).drops == 1);
  {
    auto t = meta::Txn::begin(*src.env, false);
    State st(*src.env);
    CHECK(!st.ino_of(*t, gone_id).value().has_value());  // (its inode number may be reused already)
  }
  auto snaps = snapshots(*b.os);
  REQUIRE(snaps.is_ok());
  REQUIRE(snaps->size() == 1);
  CHECK(snaps->front().epoch == 2);
  write_file(R + "/three", "three");
  src.tracker.name(src.obj(""), "three");
  REQUIRE(s->round().is_ok());  // epoch 3, after the snapshot
  auto check = [&](bool want_snapshot) {
    Local dst;
    State st(*dst.env);
    auto rep = restore(*b.os, dst.root_fd, st);
    REQUIRE(rep.is_ok());
    CHECK(rep->epoch == 3);
    if (want_snapshot) {
      CHECK(rep->snapshot == snaps->front().base);
      CHECK(rep->journals == 1);
    } else {
      CHECK(rep->snapshot.empty());
      CHECK(rep->journals == 3);
    }
    Fetcher f(dst.root_fd, *dst.env, *b.os);
    REQUIRE(f.load().is_ok());
    std::map<ino_t, ino_t> links;
    same_tree(R, dst.root(), [&](const std::string& p) {
      struct stat x;
      REQUIRE(lstat(p.c_str(), &x) == 0);
      REQUIRE(f.ensure_all(ObjRef{x.st_ino, make_handle(AT_FDCWD, p.c_str())}).is_ok());
    }, links);
  };
  check(true);
  // Damage the snapshot's only chunk: restore falls back to the whole chain.
  REQUIRE(b.os->put(chunk_name(snaps->front().base, 0), "not a chunk").is_ok());
  check(false);
}

TEST_CASE("sync: the barrier runs before the end object; a failed barrier is a failed round, and the retry rewrites shards a crash left bad") {
  Blobbers b;
  Local l;
  std::string R = l.root();
  write_file(R + "/f", "one");
  auto s = l.syncer(*b.os);
  REQUIRE(s->rescan().is_ok());
  REQUIRE(s->round().is_ok());
  auto committed = b.os->list("");  // flushed by round 1's barrier: a power cut cannot touch them
  REQUIRE(committed.is_ok());
  std::set<std::string> old(committed->begin(), committed->end());
  std::string big = random_bytes(9 << 20, 21);  // three standalone blocks
  write_file(R + "/big", big);
  for (int i = 0; i < 50; i++) write_file(R + "/s" + std::to_string(i), random_bytes(3000, 300 + i));  // a pack
  l.tracker.name(l.obj(""), "big");
  for (int i = 0; i < 50; i++) l.tracker.name(l.obj(""), "s" + std::to_string(i));
  // The barrier fails: blocks, pack and chunks were put, the end was not
  // (it comes after the barrier, sync.h 5), so the round never happened.
  fault::arm("blob.flush", EIO);
  CHECK(s->round().err() == EIO);
  fault::reset();
  CHECK(s->status().epoch == 1);
  CHECK(l.tracker.pending() > 0);
  CHECK(load_image(*b.os).journals == 1);
  auto js = journals(*b.os);
  REQUIRE(js.is_ok());
  CHECK(js->size() == 1);
  auto blocks = b.os->list("b/");
  auto packs = b.os->list("p/");
  REQUIRE(blocks.is_ok());
  REQUIRE(packs.is_ok());
  CHECK(blocks->size() == 3);
  CHECK(packs->size() == 2);  // round 1's and this one's
  // A power cut now may leave any unflushed shard empty or short: do that
  // to every shard of every block and pack put by the failed round.
  size_t damaged = 0;
  for (const auto& dir : {b.tmp / "b0", b.tmp / "b1", b.tmp / "b2"}) {
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      std::string p = e.path().string();
      std::string key = fs::relative(e.path(), dir).string();
      std::string object = key.substr(0, key.rfind('.'));
      if (!e.is_regular_file() || old.count(object) || (key.rfind("b/", 0) != 0 && key.rfind("p/", 0) != 0)) continue;
      fs::resize_file(p, damaged % 2 ? 0 : fs::file_size(p) / 3);
      damaged++;
    }
  }
  CHECK(damaged == 3 * 4);
  // The retry puts every block again (nothing committed names them, so
  // nothing is deduplicated against them) and the image reads back right.
  REQUIRE(s->round().is_ok());
  CHECK(s->status().epoch == 2);
  compare_tree(*b.os, R);
  for (const auto& name : *blocks) {
    auto rep = b.os->scrub(name, {});
    REQUIRE(rep.is_ok());
    CHECK(rep->good == 3);
  }
}

TEST_CASE("capture: small files are read into memory, larger ones cloned to the stage") {
  Local l;
  std::string R = l.root();
  std::string small = random_bytes(4096, 31), edge = random_bytes(kMemoryFile, 32),
              large = random_bytes(kMemoryFile + 1, 33);
  write_file(R + "/small", small);
  write_file(R + "/edge", edge);
  write_file(R + "/large", large);
  write_file(R + "/empty", "");
  State st(*l.env);
  REQUIRE(rescan({l.root_fd, l.stage_fd, false}, st, l.tracker).is_ok());
  Capture cap;
  cap.marks = l.tracker.take();
  cap.next_id = kRootId + 1;
  REQUIRE(capture({l.root_fd, l.stage_fd, false}, st, cap).is_ok());
  std::map<uint64_t, const CapturedObject*> by_ino;
  for (const auto& o : cap.objects) by_ino[o.ino] = &o;
  auto obj = [&](const char* n) {
    REQUIRE(by_ino.count(l.ino(n)));
    return by_ino.at(l.ino(n));
  };
  CHECK(obj("small")->has_data);
  CHECK(obj("small")->stage.empty());
  CHECK(obj("small")->bytes == small);
  CHECK(obj("edge")->bytes == edge);
  CHECK(obj("empty")->has_data);
  CHECK(obj("empty")->bytes.empty());
  CHECK(obj("large")->bytes.empty());
  REQUIRE(!obj("large")->stage.empty());
  CHECK(read_file(l.tmp / ("stage/" + obj("large")->stage)) == large);
  CHECK(cap.memory_bytes == small.size() + edge.size());
  CHECK(cap.data_bytes == small.size() + edge.size() + large.size());
  clear_stage(l.stage_fd);
}

TEST_CASE("sync: the local durability step runs before the end object, and its failure fails the round") {
  Blobbers b;
  Local l;
  std::string R = l.root();
  write_file(R + "/f", random_bytes(5 << 20, 41));
  SyncEnv e;
  e.fs = {l.root_fd, l.stage_fd, false};
  e.meta = l.env.get();
  e.objects = b.os.get();
  e.tracker = &l.tracker;
  std::atomic<int> calls{0};
  std::atomic<bool> fail{false};
  std::atomic<size_t> ends_seen{99};
  e.make_durable = [&]() -> Status {
    calls++;
    ends_seen = journals(*b.os).value().size();  // this round's end is not there yet (sync.h 3)
    return fail ? Status::error(EIO, "syncfs (test)") : Status{};
  };
  auto s = Syncer::open(e, {});
  REQUIRE(s.is_ok());
  REQUIRE((*s)->rescan().is_ok());
  fail = true;
  CHECK((*s)->round().err() == EIO);
  CHECK(calls == 1);
  CHECK(ends_seen == 0);
  CHECK(journals(*b.os).value().empty());  // no end: the round never happened
  CHECK(l.tracker.pending() > 0);
  fail = false;
  REQUIRE((*s)->round().is_ok());
  CHECK(calls == 2);
  CHECK(ends_seen == 0);
  CHECK(journals(*b.os).value().size() == 1);
  compare_tree(*b.os, R);
}

namespace {

bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// Loses `n` shards of an object for good (shards 0..n-1: more than M of them
// leaves it unreadable).
void lose_shards(Blobbers& b, const std::string& name, unsigned n) {
  for (unsigned i = 0; i < n; i++)
    REQUIRE(fs::remove(b.tmp / ("b" + std::to_string(b.os->place(name, i))) + "/" + name + "." + std::to_string(i)));
}

// One round that adds the file `name` at the root.
void add_round(Local& l, Syncer& s, const std::string& name) {
  write_file(l.root() + "/" + name, name);
  l.tracker.name(l.obj(""), name);
  REQUIRE(s.round().is_ok());
}

// The names at the root of a restored tree.
std::set<std::string> names_in(const std::string& dir) {
  std::set<std::string> n;
  for (const auto& e : fs::directory_iterator(dir)) n.insert(e.path().filename());
  return n;
}

}  // namespace

TEST_CASE("restore: a newest round that cannot be read fails the restore, naming it; accept_older restores the round before and says so") {
  Blobbers b;
  Local src;
  auto s = src.syncer(*b.os);
  write_file(src.root() + "/one", "one");
  REQUIRE(s->rescan().is_ok());
  REQUIRE(s->round().is_ok());
  std::string first = s->status().head;
  add_round(src, *s, "two");
  std::string head = s->status().head;
  bool some_left = true;
  SUBCASE("2 of 3 shards of its end gone: beyond what 2+1 can spare") { lose_shards(b, head + "/end", 2); }
  SUBCASE("every shard of its end gone, its chunks there") {
    lose_shards(b, head + "/end", 3);
    some_left = false;
  }
  Local dst;
  State st(*dst.env);
  auto rep = restore(*b.os, dst.root_fd, st, unsettled());
  REQUIRE(!rep.is_ok());
  CHECK(rep.err() == EIO);
  std::string msg = rep.status().message();
  CAPTURE(msg);
  CHECK(has(msg, "epoch 1 (" + first + ")"));  // the round it reached
  CHECK(has(msg, head + " (epoch 2)"));        // the round it could not read
  CHECK(has(msg, some_left ? "shards usable" : "its chunks are on the blobbers but not its end object"));  // and why
  CHECK(has(msg, "--accept-older"));
  CHECK(names_in(dst.root()).empty());  // nothing built: the same store can be used again
  State st2(*dst.env);
  RestoreOptions o = unsettled();
  o.accept_older = true;
  auto old = restore(*b.os, dst.root_fd, st2, o);
  REQUIRE_MESSAGE(old.is_ok(), old.status().message());
  CHECK(old->epoch == 1);
  CHECK(old->head == first);
  CHECK(old->older);
  REQUIRE(old->unreadable.size() == 1);
  CHECK(has(old->unreadable[0], head));
  CHECK(names_in(dst.root()) == std::set<std::string>{"one"});
}

TEST_CASE("restore: a damaged middle round does not silently drop the later intact rounds; the writer's scrub rewrites its state") {
  Blobbers b;
  Local src;
  auto s = src.syncer(*b.os);
  write_file(src.root() + "/one", "one");
  REQUIRE(s->rescan().is_ok());
  REQUIRE(s->round().is_ok());
  add_round(src, *s, "two");
  std::string middle = s->status().head;
  add_round(src, *s, "three");
  add_round(src, *s, "four");
  SUBCASE("some shards of its end left") { lose_shards(b, middle + "/end", 2); }
  SUBCASE("every shard of its end gone") { lose_shards(b, middle + "/end", 3); }
  {
    Local dst;
    State st(*dst.env);
    auto rep = restore(*b.os, dst.root_fd, st, unsettled());
    REQUIRE(!rep.is_ok());
    std::string msg = rep.status().message();
    CAPTURE(msg);
    CHECK(has(msg, "epoch 1 ("));
    CHECK(has(msg, middle + " (epoch 2)"));
  }
  // The writer notices at scrub and rewrites its synced state (epoch 4).
  CHECK(has(s->chain_problem(), middle));
  auto sc = s->scrub();
  REQUIRE_MESSAGE(sc.is_ok(), sc.status().message());
  CHECK(has(sc->chain_rewritten, middle));
  CHECK(sc->unrecoverable == 0);
  CHECK(s->chain_problem().empty());
  CHECK(s->status().chain_rewrites == 1);
  Local dst;
  State st(*dst.env);
  auto rep = restore(*b.os, dst.root_fd, st);
  REQUIRE_MESSAGE(rep.is_ok(), rep.status().message());
  CHECK(rep->epoch == 4);
  CHECK(!rep->older);
  CHECK(names_in(dst.root()) == std::set<std::string>{"one", "two", "three", "four"});
  // gc now collects the damaged journal's leftovers and keeps what restores.
  REQUIRE(s->gc().is_ok());
  CHECK(b.os->list(middle).value().empty());
}

TEST_CASE("sync: the next round notices that its head cannot be read and rewrites the state before extending the chain") {
  Blobbers b;
  Local src;
  auto s = src.syncer(*b.os);
  write_file(src.root() + "/one", "one");
  REQUIRE(s->rescan().is_ok());
  REQUIRE(s->round().is_ok());
  add_round(src, *s, "two");
  std::string head = s->status().head;
  lose_shards(b, head + "/end", 2);
  // Until the writer rewrites it, it does not claim what the blobbers cannot give back.
  std::string problem = s->chain_problem();
  CAPTURE(problem);
  CHECK(has(problem, "cannot give back epoch 2 (" + head + ")"));
  CHECK(s->status().chain_problem == problem);
  add_round(src, *s, "three");  // the round's check: the head it follows must read back
  CHECK(s->status().chain_rewrites == 1);
  CHECK(s->chain_problem().empty());
  Local dst;
  State st(*dst.env);
  auto rep = restore(*b.os, dst.root_fd, st);
  REQUIRE_MESSAGE(rep.is_ok(), rep.status().message());
  CHECK(rep->epoch == 3);
  CHECK(names_in(dst.root()) == std::set<std::string>{"one", "two", "three"});
  // tcfs sync's check (ensure_restorable) does the same when no round has anything to send.
  lose_shards(b, s->status().head + "/end", 3);
  CHECK(!s->chain_problem().empty());
  REQUIRE(s->ensure_restorable().is_ok());
  CHECK(s->status().chain_rewrites == 2);
  Local dst2;
  State st2(*dst2.env);
  auto rep2 = restore(*b.os, dst2.root_fd, st2);
  REQUIRE_MESSAGE(rep2.is_ok(), rep2.status().message());
  CHECK(rep2->epoch == 3);
  CHECK(names_in(dst2.root()) == std::set<std::string>{"one", "two", "three"});
}

TEST_CASE("chain: a half-written end of a failed attempt is no cut once a later attempt follows; a later journal naming a lost one is") {
  Blobbers b;
  auto journal = [&](const std::string& base, const std::string& prev, uint64_t epoch) {
    StreamWriter w(*b.os, base);
    REQUIRE(w.add(encode(EntryRec{1, base.substr(4), 2})).is_ok());
    REQUIRE(w.finish({{"epoch", epoch}, {"prev", prev}}).is_ok());
  };
  const std::string j1 = "n/j/0000000000000001-00000001-0000", j2a = "n/j/0000000000000002-00000001-0000",
                    j2b = "n/j/0000000000000002-00000001-0001", j3 = "n/j/0000000000000003-00000001-0000";
  journal(j1, "", 1);
  journal(j2a, j1, 2);
  lose_shards(b, j2a + "/end", 2);  // its put failed after one shard
  journal(j2b, j1, 2);              // the retry
  auto w = follow(*b.os);
  REQUIRE(w.is_ok());
  CHECK(w->journals == std::vector<std::string>{j1, j2b});
  CHECK(w->whole());
  journal(j3, j2b, 3);
  lose_shards(b, j2b + "/end", 3);  // the whole round the next one follows: end and chunk
  lose_shards(b, chunk_name(j2b, 0), 3);
  w = follow(*b.os);
  REQUIRE(w.is_ok());
  CHECK(w->epoch == 1);
  REQUIRE(w->unreadable.size() == 2);  // j2a, and j2b as j3's prev
  CHECK(has(w->unreadable[0] + w->unreadable[1], j2b + " (epoch 2): named as prev by " + j3 + ", but not on the blobbers"));
}

TEST_CASE("sync.h 10: two writers on one chain: the one that marks the epoch wins, the other is fenced for good") {
  Blobbers b;
  Local src;
  write_file(src.root() + "/base", "base");
  auto s1 = src.syncer(*b.os);
  REQUIRE(s1->rescan().is_ok());
  REQUIRE(s1->round().is_ok());
  // A second writer of the same chain: a restore of it that goes on syncing.
  Local dst;
  State st(*dst.env);
  REQUIRE(restore(*b.os, dst.root_fd, st).is_ok());
  auto s2 = dst.syncer(*b.os);
  CHECK(s2->writer_id() != s1->writer_id());
  write_file(src.root() + "/from-src", "src");
  src.tracker.name(src.obj(""), "from-src");
  REQUIRE(s1->round().is_ok());
  write_file(dst.root() + "/from-dst", "dst");
  dst.tracker.name(dst.obj(""), "from-dst");
  Status fenced = s2->round();
  CHECK(fenced.err() == EROFS);
  CHECK(fenced.message().find("another store") != std::string::npos);
  CHECK(fenced.message().find(s1->writer_id().substr(0, 12)) != std::string::npos);
  CHECK(s2->status().fenced == fenced.what());
  CHECK(s2->status().epoch == 1);             // nothing committed
  CHECK(s2->round().err() == EROFS);          // and no round ever again
  CHECK(s2->wait_synced(std::chrono::milliseconds(100)).err() == EROFS);
  CHECK(dst.tracker.pending() > 0);           // its change stays marked, local
  // Its journal of epoch 2 outranks src's by (boot, attempt), yet the chain
  // follows the marker: the image is src's tree.
  auto ch = chain(*b.os);
  REQUIRE(ch.is_ok());
  REQUIRE(ch->size() == 2);
  CHECK((*ch)[1] == s1->status().head);
  compare_tree(*b.os, src.root());
  // The winner goes on.
  write_file(src.root() + "/later", "later");
  src.tracker.name(src.obj(""), "later");
  REQUIRE(s1->round().is_ok());
  CHECK(s1->status().epoch == 3);
  compare_tree(*b.os, src.root());
}

TEST_CASE("sync.h 10: a marked round the store did not record is adopted, and what it touched goes out again") {
  Blobbers b;
  Local l;
  std::string R = l.root();
  write_file(R + "/f", "one");
  write_file(R + "/keep", "keep");
  auto s = l.syncer(*b.os);
  REQUIRE(s->rescan().is_ok());
  REQUIRE(s->round().is_ok());
  write_file(R + "/f", "two, longer");
  write_file(R + "/g", "new in epoch 2");
  l.tracker.data(l.obj("f"));
  l.tracker.name(l.obj(""), "g");
  fault::arm("meta.commit", EIO, 1, 1);  // the local commit after the marker fails: as a crash would leave it
  CHECK(s->round().err() == EIO);
  fault::reset();
  CHECK(s->status().epoch == 1);
  auto marks = b.os->list_markers("n/r/");
  REQUIRE(marks.is_ok());
  CHECK(marks->size() == 2);  // epoch 2 is marked: committed on the blobbers
  CHECK(load_image(*b.os).journals == 2);
  // What a crash loses: the marks. And f goes back to its epoch-1 bytes.
  (void)l.tracker.take();
  write_file(R + "/f", "one");
  // The next round finds epoch 2 marked by this store: adopts it, and
  // sends what it touched as it is now, as epoch 3.
  REQUIRE(s->round().is_ok());
  CHECK(s->fenced().empty());
  CHECK(s->status().epoch == 3);
  CHECK(load_image(*b.os).journals == 3);
  compare_tree(*b.os, R);  // f is "one" again on the blobbers, g is there
}

TEST_CASE("sync.h 10: a marker whose reply was lost is the store's own: the retry adopts it instead of being fenced") {
  Blobbers b;
  Local l;
  std::string R = l.root();
  write_file(R + "/f", "one");
  auto s = l.syncer(*b.os);
  REQUIRE(s->rescan().is_ok());
  REQUIRE(s->round().is_ok());
  write_file(R + "/f", "two");
  l.tracker.data(l.obj("f"));
  // The marker is created, then the local commit fails: the retry must
  // take the marker for its own, not for another writer's.
  fault::arm("meta.commit", EIO, 1, 1);
  CHECK(s->round().err() == EIO);
  fault::reset();
  write_file(R + "/f", "three");
  l.tracker.data(l.obj("f"));
  REQUIRE(s->round().is_ok());  // probes, adopts epoch 2, sends f as epoch 3
  CHECK(s->status().epoch == 3);
  CHECK(s->fenced().empty());
  compare_tree(*b.os, R);
  // A fresh syncer over the same store (as after a restart) finds nothing more to adopt.
  s.reset();
  auto s2 = l.syncer(*b.os);
  write_file(R + "/g", "g");
  l.tracker.name(l.obj(""), "g");
  REQUIRE(s2->round().is_ok());
  CHECK(s2->status().epoch == 4);
  compare_tree(*b.os, R);
}
