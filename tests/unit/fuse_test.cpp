#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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
  CHECK(mkdirat(d.value()->fd, "child", 0755) == 0);
  struct stat cs;
  CHECK(stat((t / "e/child").c_str(), &cs) == 0);
  close(root);
}
