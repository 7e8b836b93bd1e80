#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "fuse/inode_table.h"
#include "fuse/kernel_ctimes.h"
#include "util/handle.h"
#include "test_util.h"

using namespace tcfs;
using namespace tcfs::fusefs;

TEST_CASE("inode table: hard links share one inode, forget frees it") {
  TempDir t;
  int root = open(t.path.c_str(), O_RDONLY | O_DIRECTORY);
  REQUIRE(root >= 0);
  close(open((t / "a").c_str(), O_CREAT | O_WRONLY, 0644));
  REQUIRE(link((t / "a").c_str(), (t / "b").c_str()) == 0);
  auto table = InodeTable::create(root);
  REQUIRE(table.is_ok());
  InodeTable& tb = *table.value();
  struct stat st;
  auto a = tb.lookup(tb.root(), "a", &st);
  REQUIRE(a.is_ok());
  CHECK(st.st_nlink == 2);
  auto b = tb.lookup(tb.root(), "b", &st);
  REQUIRE(b.is_ok());
  CHECK(a.value() == b.value());
  CHECK(tb.size() == 1);
  fuse_ino_t id = tb.id_of(*a.value());
  CHECK(id != FUSE_ROOT_ID);
  CHECK(&tb.get(id) == a.value());
  tb.forget(id, 1);
  CHECK(tb.size() == 1);  // one reference left
  tb.forget(id, 1);
  CHECK(tb.size() == 0);
  CHECK(&tb.get(FUSE_ROOT_ID) == &tb.root());
  close(root);
}

TEST_CASE("inode table: a renamed object keeps its inode; missing names fail") {
  TempDir t;
  int root = open(t.path.c_str(), O_RDONLY | O_DIRECTORY);
  mkdir((t / "d").c_str(), 0755);
  auto table = InodeTable::create(root);
  REQUIRE(table.is_ok());
  InodeTable& tb = *table.value();
  struct stat st;
  auto d = tb.lookup(tb.root(), "d", &st);
  REQUIRE(d.is_ok());
  CHECK(S_ISDIR(st.st_mode));
  REQUIRE(rename((t / "d").c_str(), (t / "e").c_str()) == 0);
  auto e = tb.lookup(tb.root(), "e", &st);
  REQUIRE(e.is_ok());
  CHECK(e.value() == d.value());
  auto none = tb.lookup(tb.root(), "d", &st);
  CHECK(none.err() == ENOENT);
  // The inode's fd still reaches the directory under its new name.
  auto pin = tb.pin(*d.value());
  REQUIRE(pin.is_ok());
  CHECK(mkdirat(pin.value().fd(), "child", 0755) == 0);
  struct stat cs;
  CHECK(stat((t / "e/child").c_str(), &cs) == 0);
  close(root);
}

TEST_CASE("inode table: fds beyond the budget are closed and reopened from handles") {
  TempDir t;
  int root = open(t.path.c_str(), O_RDONLY | O_DIRECTORY);
  auto table = InodeTable::create(root, 2);
  REQUIRE(table.is_ok());
  InodeTable& tb = *table.value();
  std::vector<Inode*> inodes;
  for (int i = 0; i < 6; ++i) {
    std::string name = "f" + std::to_string(i);
    int fd = open((t / name).c_str(), O_CREAT | O_WRONLY, 0644);
    REQUIRE(write(fd, name.data(), name.size()) == static_cast<ssize_t>(name.size()));
    close(fd);
    struct stat st;
    auto in = tb.lookup(tb.root(), name.c_str(), &st);
    REQUIRE(in.is_ok());
    inodes.push_back(in.value());
  }
  // Each pin opens the object again through its handle when needed; the
  // table never keeps more than the budget of unpinned fds.
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 6; ++i) {
      auto p = tb.pin(*inodes[i]);
      REQUIRE_MESSAGE(p.is_ok(), p.status().message());
      struct stat st;
      REQUIRE(fstatat(p.value().fd(), "", &st, AT_EMPTY_PATH) == 0);
      CHECK(st.st_ino == inodes[i]->src_ino);
      CHECK(tb.open_fds() <= 3);  // budget + the one just pinned
    }
    CHECK(tb.open_fds() <= 2);
  }
  // An inode with an open file keeps its fd whatever the budget.
  tb.opened(*inodes[0]);
  for (int i = 1; i < 6; ++i) tb.pin(*inodes[i]);
  {
    auto p = tb.pin(*inodes[0]);
    REQUIRE(p.is_ok());
  }
  tb.released(*inodes[0]);
  CHECK(tb.open_fds() <= 2);
  close(root);
}

namespace {

// struct file_handle bytes of type `type` with payload `p`.
std::string fake_handle(int type, const std::vector<uint8_t>& p) {
  file_handle fh{};
  fh.handle_bytes = static_cast<unsigned>(p.size());
  fh.handle_type = type;
  std::string h(reinterpret_cast<const char*>(&fh), sizeof fh);
  h.append(p.begin(), p.end());
  return h;
}

template <typename T>
void put(std::vector<uint8_t>& v, T x) {
  const auto* b = reinterpret_cast<const uint8_t*>(&x);
  v.insert(v.end(), b, b + sizeof x);
}

}  // namespace

TEST_CASE("export: handle layouts are learned from the root and rebuilt exactly") {
  std::vector<uint8_t> xfs;
  put<uint64_t>(xfs, 128);
  put<uint32_t>(xfs, 77);
  auto l = HandleLayout::learn(fake_handle(0x81, xfs), 128);
  REQUIRE(l.has_value());
  CHECK(l->kind() == HandleLayout::Kind::Xfs64);
  uint64_t ino;
  uint32_t gen;
  std::string h = l->build(5000000000ull, 9);
  REQUIRE(l->split(h, &ino, &gen));
  CHECK(ino == 5000000000ull);
  CHECK(gen == 9);
  CHECK_FALSE(HandleLayout::learn(fake_handle(0x81, xfs), 129).has_value());  // not the root's number
  CHECK_FALSE(HandleLayout::learn(fake_handle(0x99, xfs), 128).has_value());  // unknown type

  std::vector<uint8_t> ext4;
  put<uint32_t>(ext4, 2);
  put<uint32_t>(ext4, 0);
  l = HandleLayout::learn(fake_handle(1, ext4), 2);
  REQUIRE(l.has_value());
  CHECK(l->kind() == HandleLayout::Kind::Ino32Gen);
  CHECK_FALSE(l->split(xfs.empty() ? "" : fake_handle(0x81, xfs), &ino, &gen));  // another layout

  std::vector<uint8_t> tmpfs;
  put<uint32_t>(tmpfs, 0xabcdef);  // gen
  put<uint32_t>(tmpfs, 7);         // ino low
  put<uint32_t>(tmpfs, 1);         // ino high
  l = HandleLayout::learn(fake_handle(1, tmpfs), 7 + (uint64_t{1} << 32));
  REQUIRE(l.has_value());
  CHECK(l->kind() == HandleLayout::Kind::Tmpfs);

  std::vector<uint8_t> btrfs;
  put<uint64_t>(btrfs, 256);
  put<uint64_t>(btrfs, 5);  // subvolume
  put<uint32_t>(btrfs, 3);
  l = HandleLayout::learn(fake_handle(0x4d, btrfs), 256);
  REQUIRE(l.has_value());
  std::vector<uint8_t> other = btrfs;
  other[8] = 6;  // another subvolume: not this layout's object
  CHECK_FALSE(l->split(fake_handle(0x4d, other), &ino, &gen));
  REQUIRE(l->split(l->build(300, 4), &ino, &gen));
  CHECK(ino == 300);
}

TEST_CASE("export: node ids code (ino, gen), the root's code swapped with 1") {
  NodeCode c;
  c.root_code = (uint64_t{5} << 32) | 128;
  CHECK(c.encode(128, 5) == FUSE_ROOT_ID);
  CHECK(c.encode(1, 0) == c.root_code);
  CHECK(c.encode(200, 3) == ((uint64_t{3} << 32) | 200));
  CHECK(c.encode(uint64_t{1} << 32, 3) == 0);  // does not fit
  uint64_t ino;
  uint32_t gen;
  REQUIRE(c.decode(FUSE_ROOT_ID, &ino, &gen));
  CHECK((ino == 128 && gen == 5));
  REQUIRE(c.decode(c.root_code, &ino, &gen));
  CHECK((ino == 1 && gen == 0));
  REQUIRE(c.decode((uint64_t{3} << 32) | 200, &ino, &gen));
  CHECK((ino == 200 && gen == 3));
  CHECK_FALSE(c.decode(uint64_t{7} << 32, &ino, &gen));  // a session id
  CHECK(NodeCode::is_session_id(uint64_t{7} << 32));
}

TEST_CASE("export: forgotten node ids resolve again, inside root/ only") {
  TempDir t;
  mkdir((t / "root").c_str(), 0755);
  mkdir((t / "meta").c_str(), 0700);
  mkdir((t / "root/d").c_str(), 0755);
  close(open((t / "root/d/f").c_str(), O_CREAT | O_WRONLY, 0644));
  close(open((t / "meta/data.mdb").c_str(), O_CREAT | O_WRONLY, 0600));
  int root = open((t / "root").c_str(), O_RDONLY | O_DIRECTORY);
  REQUIRE(root >= 0);
  auto table = InodeTable::create(root);
  REQUIRE(table.is_ok());
  InodeTable& tb = *table.value();
  if (!tb.exportable()) {
    MESSAGE("no known handle layout on /tmp's filesystem: skipped");
    close(root);
    return;
  }
  struct stat st, fst;
  auto d = tb.lookup(tb.root(), "d", &st);
  REQUIRE(d.is_ok());
  auto f = tb.lookup(*d.value(), "f", &fst);
  REQUIRE(f.is_ok());
  fuse_ino_t did = tb.id_of(*d.value()), fid = tb.id_of(*f.value());
  uint32_t fgen = f.value()->gen;
  CHECK_FALSE(NodeCode::is_session_id(fid));
  tb.forget(fid, 1);
  tb.forget(did, 1);
  CHECK(tb.size() == 0);
  // Decoded again (a new Inode, the same id and generation).
  auto again = tb.resolve(fid, &st);
  REQUIRE_MESSAGE(again.is_ok(), again.status().message());
  CHECK(tb.id_of(*again.value()) == fid);
  CHECK(again.value()->gen == fgen);
  CHECK(st.st_ino == fst.st_ino);
  auto dir = tb.resolve(did, &st);
  REQUIRE(dir.is_ok());
  auto up = tb.parent(*dir.value(), &st);
  REQUIRE(up.is_ok());
  CHECK(up.value() == &tb.root());
  auto top = tb.parent(tb.root(), &st);  // never above root/
  REQUIRE(top.is_ok());
  CHECK(top.value() == &tb.root());
  // The store's own objects: refused.
  for (const char* p : {"meta/data.mdb", "meta"}) {
    CAPTURE(p);
    std::string h = make_handle(AT_FDCWD, (t / p).c_str());
    uint64_t ino;
    uint32_t gen;
    REQUIRE(tb.layout()->split(h, &ino, &gen));
    CHECK(tb.resolve((uint64_t{gen} << 32) | ino, &st).err() == ESTALE);
  }
  // A deleted object: stale once the kernel let go.
  tb.forget(fid, 1);
  REQUIRE(unlink((t / "root/d/f").c_str()) == 0);
  CHECK(tb.resolve(fid, &st).err() == ESTALE);
  CHECK(tb.resolve(uint64_t{12345} << 32, &st).err() == ESTALE);  // unknown session id
  tb.forget(uint64_t{999} << 32, 1);  // unknown: ignored
  close(root);
}

TEST_CASE("export: a reused inode number gets another node id; FORGETs stay with their object") {
  TempDir t;
  int root = open(t.path.c_str(), O_RDONLY | O_DIRECTORY);
  REQUIRE(root >= 0);
  auto table = InodeTable::create(root);
  REQUIRE(table.is_ok());
  InodeTable& tb = *table.value();
  struct stat st;
  close(open((t / "a").c_str(), O_CREAT | O_WRONLY, 0644));
  auto a = tb.lookup(tb.root(), "a", &st);
  REQUIRE(a.is_ok());
  fuse_ino_t aid = tb.id_of(*a.value());
  ino_t a_ino = st.st_ino;
  REQUIRE(unlink((t / "a").c_str()) == 0);
  // Make objects until one takes a's number (ext4, XFS reuse at once).
  std::string name;
  for (int i = 0; i < 64 && name.empty(); ++i) {
    std::string n = "b" + std::to_string(i);
    close(open((t / n).c_str(), O_CREAT | O_WRONLY, 0644));
    REQUIRE(stat((t / n).c_str(), &st) == 0);
    if (st.st_ino == a_ino) name = n;
  }
  if (name.empty()) {
    MESSAGE("the filesystem did not reuse the inode number: skipped");
    close(root);
    return;
  }
  auto b = tb.lookup(tb.root(), name.c_str(), &st);
  REQUIRE(b.is_ok());
  fuse_ino_t bid = tb.id_of(*b.value());
  CHECK(b.value() != a.value());
  CHECK(bid != aid);
  CHECK(&tb.get(aid) == a.value());  // the kernel may still use the old one
  CHECK(tb.size() == 2);
  tb.forget(aid, 1);  // the old object's FORGET, after the new lookup
  CHECK(tb.size() == 1);
  CHECK(&tb.get(bid) == b.value());
  CHECK(tb.find_id(st.st_dev, st.st_ino) == bid);
  tb.forget(bid, 1);
  CHECK(tb.size() == 0);
  close(root);
}

namespace {
struct stat st_of(ino_t ino, time_t sec, long nsec) {
  struct stat st{};
  st.st_ino = ino;
  st.st_ctim = {sec, nsec};
  return st;
}
// The ctime an attribute reply shows for backing (ino, sec.nsec).
std::pair<time_t, long> shown(KernelCtimes& k, ino_t ino, time_t sec, long nsec) {
  struct stat s = st_of(ino, sec, nsec);
  k.apply(s);
  return {s.st_ctim.tv_sec, s.st_ctim.tv_nsec};
}
using T = std::pair<time_t, long>;
}  // namespace

TEST_CASE("kernel ctimes: shown while the backing ctime is the recorded one; carried over page writes; bounded") {
  KernelCtimes k;
  k.record(st_of(7, 100, 500), {100, 200});  // the kernel said 100.000000200
  CHECK(shown(k, 7, 100, 500) == T{100, 200});
  // Another file, or the same number with another backing ctime: as it is.
  CHECK(shown(k, 8, 100, 500) == T{100, 500});
  // A page write moved the backing ctime: the kernel's is carried over.
  k.carry({100, 500}, st_of(7, 100, 900));
  CHECK(shown(k, 7, 100, 900) == T{100, 200});
  // A page write of a file without a pair: the ctime before it is kept.
  k.carry({50, 1}, st_of(9, 50, 7));
  CHECK(shown(k, 9, 50, 7) == T{50, 1});
  // Any other change moves the backing ctime: the pair is dropped for good.
  CHECK(shown(k, 7, 101, 0) == T{101, 0});
  CHECK(k.size() == 1);
  CHECK(shown(k, 7, 100, 900) == T{100, 900});  // even if an old value came back
  // At most kMax pairs, the oldest recorded dropped first.
  for (ino_t i = 1000; i < 1000 + KernelCtimes::kMax + 10; ++i) k.record(st_of(i, 1, 1), {0, 1});
  CHECK(k.size() == KernelCtimes::kMax);
  CHECK(shown(k, 1000, 1, 1) == T{1, 1});  // dropped: as it is
  CHECK(shown(k, 1000 + KernelCtimes::kMax + 9, 1, 1) == T{0, 1});  // kept
  // Recorded again: the newest, so the next overflow drops the one after it.
  k.record(st_of(1010, 1, 1), {0, 2});
  k.record(st_of(5, 1, 1), {0, 1});
  CHECK(k.size() == KernelCtimes::kMax);
  CHECK(shown(k, 1010, 1, 1) == T{0, 2});
  CHECK(shown(k, 1011, 1, 1) == T{1, 1});
}
