// posix_mount.cpp — properties of the mount as a whole: the store's own
// files stay hidden, the mount root's ".." is the kernel's, the tree in
// <store>/root is what the mount shows, and inode numbers survive the
// kernel forgetting its inodes.
#include <libgen.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <algorithm>
#include <fstream>

#include "posix_util.h"

using namespace pt;

namespace {

const char* const kStoreInternals[] = {"txn", "meta", "journal", "lock", "control.sock", "root"};

std::string parent_of(const std::string& p) {
  std::string copy = p;
  return dirname(copy.data());
}

// Path of `p` (below top_dir()) inside <store>/root.
std::string in_store(const std::string& p) {
  REQUIRE(p.compare(0, top_dir().size(), top_dir()) == 0);
  return store_dir() + "/root" + p.substr(top_dir().size());
}

bool drop_caches() {
  ::sync();
  std::ofstream f("/proc/sys/vm/drop_caches");
  f << "2\n";
  f.flush();
  return static_cast<bool>(f);
}

}  // namespace

TEST_SUITE("mount") {

TEST_CASE("the store's internals are not reachable through the mount") {
  if (store_dir().empty()) {
    MESSAGE("not a tcfs mount (TCFS_TEST_STORE unset): skipped");
    return;
  }
  const std::string& mnt = top_dir();
  struct stat st{};
  for (const char* n : kStoreInternals) {
    CAPTURE(n);
    CHECK_ERR(lstat((mnt + "/" + n).c_str(), &st), ENOENT);
    CHECK_ERR(lstat((mnt + "/" + n + "/").c_str(), &st), ENOENT);
  }
  std::vector<std::string> top = list_names(mnt);
  for (const char* n : kStoreInternals) {
    CAPTURE(n);
    CHECK(std::count(top.begin(), top.end(), n) == 0);
  }
  // ".." of the mount root is the mountpoint's parent, as the kernel sees it.
  struct stat up = must_stat(mnt + "/..");
  struct stat parent = must_stat(parent_of(mnt));
  CHECK(up.st_ino == parent.st_ino);
  CHECK(up.st_dev == parent.st_dev);
  Fd root = must_open(mnt, O_RDONLY | O_DIRECTORY);
  struct stat viafd{};
  REQUIRE_SYS(fstatat(root, "..", &viafd, 0));
  CHECK(viafd.st_ino == parent.st_ino);
  CHECK(viafd.st_dev == parent.st_dev);
  CHECK(must_stat(base_dir() + "/../..").st_ino == parent.st_ino);
  // The root's "." and ".." entries exist once each.
  DIR* d = opendir(mnt.c_str());
  REQUIRE(d != nullptr);
  int dots = 0, dotdots = 0;
  while (struct dirent* de = readdir(d)) {
    std::string n = de->d_name;
    dots += n == ".";
    dotdots += n == "..";
    for (const char* in : kStoreInternals) CHECK_MESSAGE(n != in, "listing shows ", n);
  }
  closedir(d);
  CHECK(dots == 1);
  CHECK(dotdots == 1);
  // The mount's device differs from the store's.
  CHECK(must_stat(mnt).st_dev != must_stat(store_dir()).st_dev);
}

TEST_CASE("names like the store's internals are ordinary names inside the tree") {
  if (store_dir().empty()) {
    MESSAGE("not a tcfs mount (TCFS_TEST_STORE unset): skipped");
    return;
  }
  TestDir t;
  const std::string mnt_txn = top_dir() + "/txn";
  // At the mount root and below: they land in <store>/root, not next to it.
  write_file(mnt_txn, "mine");
  CHECK(read_file(mnt_txn) == "mine");
  CHECK(read_file(store_dir() + "/root/txn") == "mine");
  CHECK(S_ISDIR(must_stat(store_dir() + "/txn").st_mode));
  CHECK_SYS(unlink(mnt_txn.c_str()));
  CHECK_FALSE(exists(store_dir() + "/root/txn"));
  CHECK(S_ISDIR(must_stat(store_dir() + "/txn").st_mode));
  REQUIRE_SYS(mkdir((t / "meta").c_str(), 0755));
  write_file(t / "meta/x", "x");
  CHECK(read_file(in_store(t / "meta/x")) == "x");
  // Symlinks pointing upwards are resolved by the kernel from the mount,
  // never inside the store.
  REQUIRE_SYS(symlink("../../meta", (t / "up").c_str()));
  char buf[64];
  CHECK(readlink((t / "up").c_str(), buf, sizeof buf) == 10);
  struct stat st{};
  CHECK_ERR(stat((top_dir() + "/../meta").c_str(), &st), ENOENT);
  REQUIRE_SYS(symlink((store_dir() + "/meta").c_str(), (t / "abs").c_str()));
  CHECK(S_ISLNK(must_lstat(t / "abs").st_mode));
}

TEST_CASE("what is written through the mount is in the store's root") {
  if (store_dir().empty()) {
    MESSAGE("not a tcfs mount (TCFS_TEST_STORE unset): skipped");
    return;
  }
  TestDir t;
  const std::string data = pattern(200000, 19);
  write_file(t / "f", data, 0640);
  REQUIRE_SYS(chown((t / "f").c_str(), 12345, 4242));
  const timespec ts[2] = {{1111, 1}, {2222, 2}};
  REQUIRE_SYS(utimensat(AT_FDCWD, (t / "f").c_str(), ts, 0));
  REQUIRE_SYS(setxattr((t / "f").c_str(), "user.k", "v", 1, 0));
  REQUIRE_SYS(mkdir((t / "d").c_str(), 0750));
  write_file(t / "d/g", "nested");
  REQUIRE_SYS(symlink("d/g", (t / "l").c_str()));
  REQUIRE_SYS(link((t / "f").c_str(), (t / "hard").c_str()));
  REQUIRE_SYS(mkfifo((t / "p").c_str(), 0600));
  {
    Fd fd = must_open(t / "f", O_RDONLY);
    REQUIRE_SYS(fsync(fd));
  }

  CHECK(read_file(in_store(t / "f")) == data);
  struct stat m = must_stat(t / "f"), s = must_stat(in_store(t / "f"));
  CHECK(s.st_size == m.st_size);
  CHECK(s.st_mode == m.st_mode);
  CHECK(s.st_uid == 12345);
  CHECK(s.st_gid == 4242);
  CHECK(s.st_nlink == 2);
  CHECK(s.st_mtim.tv_sec == 2222);
  CHECK(s.st_mtim.tv_nsec == 2);
  char v[4];
  CHECK(getxattr(in_store(t / "f").c_str(), "user.k", v, sizeof v) == 1);
  CHECK(must_stat(in_store(t / "hard")).st_ino == s.st_ino);
  CHECK(S_ISDIR(must_lstat(in_store(t / "d")).st_mode));
  CHECK((must_lstat(in_store(t / "d")).st_mode & 07777) == 0750);
  CHECK(read_file(in_store(t / "d/g")) == "nested");
  char buf[16];
  CHECK(readlink(in_store(t / "l").c_str(), buf, sizeof buf) == 3);
  CHECK(std::string(buf, 3) == "d/g");
  CHECK(S_ISFIFO(must_lstat(in_store(t / "p")).st_mode));
  // The store's listing matches the mount's.
  CHECK(list_names(in_store(t.path())) == list_names(t.path()));
  // Renames and removals are reflected too.
  REQUIRE_SYS(rename((t / "d/g").c_str(), (t / "moved").c_str()));
  REQUIRE_SYS(unlink((t / "hard").c_str()));
  CHECK_FALSE(exists(in_store(t / "d/g")));
  CHECK_FALSE(exists(in_store(t / "hard")));
  CHECK(read_file(in_store(t / "moved")) == "nested");
  CHECK(must_stat(in_store(t / "f")).st_nlink == 1);
}

}  // TEST_SUITE mount

TEST_SUITE("identity") {

TEST_CASE("inode numbers survive the kernel forgetting inodes") {
  TestDir t;
  write_file(t / "f", "content");
  REQUIRE_SYS(link((t / "f").c_str(), (t / "f2").c_str()));
  REQUIRE_SYS(mkdir((t / "d").c_str(), 0755));
  write_file(t / "d/inner", "inner");
  REQUIRE_SYS(symlink("f", (t / "l").c_str()));
  struct stat f = must_stat(t / "f"), d = must_stat(t / "d"), in = must_stat(t / "d/inner"),
              l = must_lstat(t / "l");
  Fd keep = must_open(t / "d/inner", O_RDONLY);
  if (!drop_caches()) {
    MESSAGE("cannot write /proc/sys/vm/drop_caches: skipped");
    return;
  }
  CHECK(must_stat(t / "f").st_ino == f.st_ino);
  CHECK(must_stat(t / "f2").st_ino == f.st_ino);
  CHECK(must_stat(t / "f").st_nlink == 2);
  CHECK(must_stat(t / "d").st_ino == d.st_ino);
  CHECK(must_stat(t / "d/inner").st_ino == in.st_ino);
  CHECK(must_lstat(t / "l").st_ino == l.st_ino);
  CHECK(read_file(t / "f2") == "content");
  struct stat k{};
  REQUIRE_SYS(fstat(keep, &k));
  CHECK(k.st_ino == in.st_ino);
  CHECK(pread_all(keep, 100, 0) == "inner");
  // After a rename and another round of forgetting.
  REQUIRE_SYS(rename((t / "d").c_str(), (t / "e").c_str()));
  REQUIRE(drop_caches());
  CHECK(must_stat(t / "e").st_ino == d.st_ino);
  CHECK(must_stat(t / "e/inner").st_ino == in.st_ino);
  CHECK(read_file(t / "e/inner") == "inner");
  CHECK(list_names(t / "e") == std::vector<std::string>{"inner"});
}

// An unchanged file keeps its times when the kernel drops its inode, as on
// a local filesystem (tcfs with the writeback cache: the kernel's own
// ctime, fuse/kernel_ctimes.h). git compares ctimes: a moved one makes it
// read every file of a work tree again.
TEST_CASE("times of unchanged files survive the kernel forgetting inodes") {
  TestDir t;
  write_file(t / "written", std::string(10000, 'w'));  // pages written back later
  write_file(t / "chmodded", "x");
  REQUIRE_SYS(chmod((t / "chmodded").c_str(), 0600));  // the kernel's ctime in a SETATTR
  {
    Fd f = must_open(t / "synced", O_WRONLY | O_CREAT, 0644);
    REQUIRE(write(f, "abc", 3) == 3);
    REQUIRE_SYS(fsync(f));
    REQUIRE(pwrite(f, "d", 1, 3) == 1);  // dirty again at close
  }
  REQUIRE_SYS(mkdir((t / "dir").c_str(), 0755));
  const char* names[] = {"written", "chmodded", "synced", "dir"};
  ::sync();  // every page and time written back: nothing left for the drop to change
  std::vector<struct stat> before;
  for (const char* n : names) before.push_back(must_stat(t / n));
  if (!drop_caches()) {
    MESSAGE("cannot write /proc/sys/vm/drop_caches: skipped");
    return;
  }
  for (size_t i = 0; i < std::size(names); ++i) {
    std::string name = names[i];
    CAPTURE(name);
    struct stat now = must_stat(t / names[i]);
    CHECK(now.st_mtim.tv_sec == before[i].st_mtim.tv_sec);
    CHECK(now.st_mtim.tv_nsec == before[i].st_mtim.tv_nsec);
    CHECK(now.st_ctim.tv_sec == before[i].st_ctim.tv_sec);
    CHECK(now.st_ctim.tv_nsec == before[i].st_ctim.tv_nsec);
    CHECK(now.st_size == before[i].st_size);
  }
  // A change after the drop still moves the ctime, and it stays moved.
  struct stat c0 = must_stat(t / "chmodded");
  REQUIRE_SYS(chmod((t / "chmodded").c_str(), 0640));
  struct stat c1 = must_stat(t / "chmodded");
  CHECK((c1.st_ctim.tv_sec > c0.st_ctim.tv_sec ||
         (c1.st_ctim.tv_sec == c0.st_ctim.tv_sec && c1.st_ctim.tv_nsec >= c0.st_ctim.tv_nsec)));
  CHECK((c1.st_mode & 07777) == 0640);
  ::sync();
  c1 = must_stat(t / "chmodded");
  REQUIRE(drop_caches());
  struct stat c2 = must_stat(t / "chmodded");
  CHECK(c2.st_ctim.tv_sec == c1.st_ctim.tv_sec);
  CHECK(c2.st_ctim.tv_nsec == c1.st_ctim.tv_nsec);
  CHECK((c2.st_mode & 07777) == 0640);
}

}  // TEST_SUITE identity
