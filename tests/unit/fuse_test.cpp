#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "fuse/inode_table.h"
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
