// posix_dir.cpp — directory listing (readdir, telldir/seekdir, listing
// while unlinking, large directories) and extended attributes.
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <algorithm>
#include <map>
#include <set>

#include "posix_util.h"

using namespace pt;

namespace {

struct Entry {
  std::string name;
  ino_t ino;
  unsigned char type;
  long pos;  // telldir() right after this entry was returned
};

// Read the rest of a DIR stream.
std::vector<Entry> read_rest(DIR* d) {
  std::vector<Entry> out;
  errno = 0;
  while (struct dirent* de = readdir(d)) {
    out.push_back({de->d_name, de->d_ino, de->d_type, telldir(d)});
    errno = 0;
  }
  int e = errno;
  if (e != 0) FAIL_CHECK("readdir failed: ", errname(e));
  return out;
}

std::vector<std::string> names_of(const std::vector<Entry>& v) {
  std::vector<std::string> n;
  for (const auto& e : v) n.push_back(e.name);
  return n;
}

std::vector<std::string> xattr_names(const std::string& path, bool follow = true) {
  std::vector<char> buf(65536);
  ssize_t n = follow ? listxattr(path.c_str(), buf.data(), buf.size())
                     : llistxattr(path.c_str(), buf.data(), buf.size());
  int e = errno;
  REQUIRE_MESSAGE(n >= 0, "listxattr(", path, "): ", errname(e));
  std::vector<std::string> names;
  for (ssize_t i = 0; i < n;) {
    std::string s(buf.data() + i);
    i += static_cast<ssize_t>(s.size()) + 1;
    names.push_back(s);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string get_x(const std::string& path, const char* name) {
  std::vector<char> buf(65536);
  ssize_t n = getxattr(path.c_str(), name, buf.data(), buf.size());
  if (n < 0) return "<" + errname(errno) + ">";
  return std::string(buf.data(), static_cast<size_t>(n));
}

int set_x(const std::string& path, const char* name, std::string_view v, int flags = 0) {
  return setxattr(path.c_str(), name, v.data(), v.size(), flags);
}

}  // namespace

TEST_SUITE("readdir") {

TEST_CASE("readdir lists every name once, with . and ..") {
  TestDir t;
  std::map<std::string, unsigned char> want;
  for (int i = 0; i < 50; ++i) {
    write_file(t / ("file" + std::to_string(i)), "x");
    want["file" + std::to_string(i)] = DT_REG;
  }
  REQUIRE_SYS(mkdir((t / "sub").c_str(), 0755));
  want["sub"] = DT_DIR;
  REQUIRE_SYS(symlink("file0", (t / "link").c_str()));
  want["link"] = DT_LNK;
  REQUIRE_SYS(mkfifo((t / "fifo").c_str(), 0644));
  want["fifo"] = DT_FIFO;
  REQUIRE_SYS(mknod((t / "sock").c_str(), S_IFSOCK | 0644, 0));
  want["sock"] = DT_SOCK;
  REQUIRE_SYS(mknod((t / "chr").c_str(), S_IFCHR | 0644, makedev(1, 3)));
  want["chr"] = DT_CHR;
  REQUIRE_SYS(mknod((t / "blk").c_str(), S_IFBLK | 0644, makedev(7, 0)));
  want["blk"] = DT_BLK;

  DIR* d = opendir(t.path().c_str());
  REQUIRE(d != nullptr);
  std::vector<Entry> all = read_rest(d);
  closedir(d);
  std::map<std::string, int> count;
  for (const auto& e : all) count[e.name]++;
  CHECK(count["."] == 1);
  CHECK(count[".."] == 1);
  CHECK(all.size() == want.size() + 2);
  for (const auto& w : want) {
    const std::string& name = w.first;  // a plain name: clang 14 cannot capture a structured binding
    CAPTURE(name);
    CHECK(count[name] == 1);
  }
  for (const auto& e : all) {
    CAPTURE(e.name);
    struct stat st = must_lstat(t / e.name);
    CHECK_MESSAGE(e.ino == st.st_ino, "d_ino ", e.ino, " but st_ino ", st.st_ino);
    if (want.count(e.name))
      CHECK_MESSAGE((e.type == want[e.name] || e.type == DT_UNKNOWN), "d_type ", int(e.type));
    else
      CHECK((e.type == DT_DIR || e.type == DT_UNKNOWN));
  }
  // A new entry shows up after rewinddir.
  d = opendir(t.path().c_str());
  REQUIRE(d != nullptr);
  CHECK(read_rest(d).size() == all.size());
  write_file(t / "late", "x");
  rewinddir(d);
  std::vector<std::string> again = names_of(read_rest(d));
  closedir(d);
  CHECK(again.size() == all.size() + 1);
  CHECK(std::count(again.begin(), again.end(), "late") == 1);
}

TEST_CASE("readdir of an empty directory and errors") {
  TestDir t;
  REQUIRE_SYS(mkdir((t / "e").c_str(), 0755));
  write_file(t / "f", "x");
  DIR* d = opendir((t / "e").c_str());
  REQUIRE(d != nullptr);
  std::vector<std::string> n = names_of(read_rest(d));
  closedir(d);
  std::sort(n.begin(), n.end());
  CHECK(n == std::vector<std::string>{".", ".."});
  errno = 0;
  CHECK(opendir((t / "f").c_str()) == nullptr);
  CHECK(errno == ENOTDIR);
  errno = 0;
  CHECK(opendir((t / "nope").c_str()) == nullptr);
  CHECK(errno == ENOENT);
  // A directory removed while open lists nothing.
  d = opendir((t / "e").c_str());
  REQUIRE(d != nullptr);
  REQUIRE_SYS(rmdir((t / "e").c_str()));
  errno = 0;
  CHECK(readdir(d) == nullptr);
  CHECK_MESSAGE((errno == 0 || errno == ENOENT), "errno ", errname(errno));
  closedir(d);
}

TEST_CASE("telldir/seekdir resume mid-stream") {
  TestDir t;
  for (int i = 0; i < 300; ++i) write_file(t / ("entry-with-a-longish-name-" + std::to_string(i)), "");
  DIR* d = opendir(t.path().c_str());
  REQUIRE(d != nullptr);
  std::vector<Entry> all = read_rest(d);
  REQUIRE(all.size() == 302);
  // Every recorded position resumes at the entry that followed it.
  for (size_t i : {size_t{0}, size_t{1}, size_t{57}, size_t{150}, size_t{299}, size_t{300}}) {
    CAPTURE(i);
    seekdir(d, all[i].pos);
    std::vector<Entry> rest = read_rest(d);
    std::vector<std::string> want;
    for (size_t j = i + 1; j < all.size(); ++j) want.push_back(all[j].name);
    CHECK(names_of(rest) == want);
  }
  // Stop half way, remember the spot, finish, go back.
  rewinddir(d);
  for (int i = 0; i < 120; ++i) REQUIRE(readdir(d) != nullptr);
  long pos = telldir(d);
  std::vector<std::string> r1 = names_of(read_rest(d));
  seekdir(d, pos);
  std::vector<std::string> r2 = names_of(read_rest(d));
  CHECK(r1.size() == 182);
  CHECK(r1 == r2);
  rewinddir(d);
  CHECK(names_of(read_rest(d)) == names_of(all));
  closedir(d);
  // A second stream seeking to positions from the first one.
  DIR* d2 = opendir(t.path().c_str());
  REQUIRE(d2 != nullptr);
  seekdir(d2, all[200].pos);
  struct dirent* de = readdir(d2);
  REQUIRE(de != nullptr);
  CHECK(std::string(de->d_name) == all[201].name);
  closedir(d2);
}

TEST_CASE("listing while unlinking, as rm -r does") {
  TestDir t;
  constexpr int kFiles = 1000;
  REQUIRE_SYS(mkdir((t / "d").c_str(), 0755));
  for (int i = 0; i < kFiles; ++i) write_file(t / ("d/f" + std::to_string(i)), "x");
  Fd dfd = must_open(t / "d", O_RDONLY | O_DIRECTORY);
  DIR* d = fdopendir(dup(dfd));
  REQUIRE(d != nullptr);
  std::set<std::string> seen;
  int dups = 0, fails = 0;
  errno = 0;
  while (struct dirent* de = readdir(d)) {
    std::string n = de->d_name;
    if (n == "." || n == "..") continue;
    if (!seen.insert(n).second) ++dups;
    if (unlinkat(dfd, n.c_str(), 0) != 0) ++fails;
    errno = 0;
  }
  CHECK(errno == 0);
  closedir(d);
  CHECK(dups == 0);
  CHECK(fails == 0);
  CHECK(seen.size() == kFiles);
  CHECK(list_names(t / "d").empty());
  CHECK_SYS(rmdir((t / "d").c_str()));
}

TEST_CASE("a directory of 5000 entries") {
  TestDir t;
  constexpr int kFiles = 5000;
  REQUIRE_SYS(mkdir((t / "big").c_str(), 0755));
  Fd dfd = must_open(t / "big", O_RDONLY | O_DIRECTORY);
  int create_failures = 0;
  for (int i = 0; i < kFiles; ++i) {
    std::string n = "n" + std::to_string(i * 7919 % 100003);
    int fd = openat(dfd, n.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0 && create_failures++ == 0) MESSAGE("create ", n, ": ", errname(errno));
    if (fd >= 0) close(fd);
  }
  REQUIRE(create_failures == 0);
  DIR* d = opendir((t / "big").c_str());
  REQUIRE(d != nullptr);
  std::vector<Entry> all = read_rest(d);
  closedir(d);
  std::map<std::string, int> count;
  for (const auto& e : all) count[e.name]++;
  CHECK(all.size() == kFiles + 2);
  CHECK(count.size() == kFiles + 2);
  int missing = 0;
  for (int i = 0; i < kFiles; ++i)
    if (count["n" + std::to_string(i * 7919 % 100003)] != 1) ++missing;
  CHECK(missing == 0);
  // Lookups of every name work, and a few names removed disappear.
  for (int i = 0; i < kFiles; i += 97) {
    struct stat st{};
    CHECK_SYS(fstatat(dfd, ("n" + std::to_string(i * 7919 % 100003)).c_str(), &st, 0));
  }
  for (int i = 0; i < 10; ++i)
    CHECK_SYS(unlinkat(dfd, ("n" + std::to_string(i * 7919 % 100003)).c_str(), 0));
  CHECK(list_names(t / "big").size() == kFiles - 10);
}

}  // TEST_SUITE readdir

TEST_SUITE("xattr") {

TEST_CASE("user xattrs: set, get, list, remove") {
  TestDir t;
  write_file(t / "f", "x");
  CHECK(xattr_names(t / "f").empty());
  const std::string bin("a\0b\0\xff", 5);
  CHECK_SYS(set_x(t / "f", "user.one", "1"));
  CHECK_SYS(set_x(t / "f", "user.bin", bin));
  CHECK_SYS(set_x(t / "f", "user.empty", ""));
  CHECK(get_x(t / "f", "user.one") == "1");
  CHECK(get_x(t / "f", "user.bin") == bin);
  CHECK(get_x(t / "f", "user.empty").empty());
  CHECK(xattr_names(t / "f") == std::vector<std::string>{"user.bin", "user.empty", "user.one"});
  // Replace a value (longer, then shorter).
  CHECK_SYS(set_x(t / "f", "user.one", std::string(300, 'L')));
  CHECK(get_x(t / "f", "user.one") == std::string(300, 'L'));
  CHECK_SYS(set_x(t / "f", "user.one", "s"));
  CHECK(get_x(t / "f", "user.one") == "s");
  CHECK_SYS(removexattr((t / "f").c_str(), "user.one"));
  CHECK(get_x(t / "f", "user.one") == "<" + errname(ENODATA) + ">");
  CHECK(xattr_names(t / "f") == std::vector<std::string>{"user.bin", "user.empty"});
  // A bigger value and many names.
  const std::string big = pattern(2000, 18);
  CHECK_SYS(set_x(t / "f", "user.big", big));
  CHECK(get_x(t / "f", "user.big") == big);
  for (int i = 0; i < 20; ++i)
    CHECK_SYS(set_x(t / "f", ("user.many" + std::to_string(i)).c_str(), std::to_string(i)));
  CHECK(xattr_names(t / "f").size() == 23);
  CHECK(get_x(t / "f", "user.many17") == "17");
  // Through descriptors.
  Fd fd = must_open(t / "f", O_RDONLY);
  CHECK_SYS(fsetxattr(fd, "user.fd", "fdval", 5, 0));
  char buf[64];
  CHECK(fgetxattr(fd, "user.fd", buf, sizeof buf) == 5);
  CHECK(std::string(buf, 5) == "fdval");
  std::vector<char> lb(4096);
  ssize_t ln = flistxattr(fd, lb.data(), lb.size());
  CHECK(ln > 0);
  CHECK(std::string(lb.data(), static_cast<size_t>(std::max<ssize_t>(ln, 0))).find("user.fd") !=
        std::string::npos);
  CHECK_SYS(fremovexattr(fd, "user.fd"));
  CHECK_ERR(fgetxattr(fd, "user.fd", buf, sizeof buf), ENODATA);
  // Xattrs follow the inode: rename and hard links.
  CHECK_SYS(rename((t / "f").c_str(), (t / "g").c_str()));
  CHECK(get_x(t / "g", "user.bin") == bin);
  CHECK_SYS(link((t / "g").c_str(), (t / "h").c_str()));
  CHECK_SYS(set_x(t / "h", "user.vialink", "v"));
  CHECK(get_x(t / "g", "user.vialink") == "v");
}

TEST_CASE("xattrs on directories and through symlinks") {
  TestDir t;
  REQUIRE_SYS(mkdir((t / "d").c_str(), 0755));
  write_file(t / "f", "x");
  REQUIRE_SYS(symlink("f", (t / "l").c_str()));
  CHECK(xattr_names(t / "d").empty());
  CHECK_SYS(set_x(t / "d", "user.dir", "dv"));
  CHECK(get_x(t / "d", "user.dir") == "dv");
  CHECK(xattr_names(t / "d") == std::vector<std::string>{"user.dir"});
  // Path calls follow the link; l* calls act on the link, where user.* is
  // not allowed.
  CHECK_SYS(set_x(t / "l", "user.via", "link"));
  CHECK(get_x(t / "f", "user.via") == "link");
  CHECK_ERR(lsetxattr((t / "l").c_str(), "user.on", "x", 1, 0), EPERM);
  char buf[16];
  CHECK_ERR(lgetxattr((t / "l").c_str(), "user.via", buf, sizeof buf), ENODATA);
  CHECK(xattr_names(t / "l", false).empty());
  CHECK(xattr_names(t / "l", true) == std::vector<std::string>{"user.via"});
  // trusted.* as root.
  CHECK_SYS(set_x(t / "f", "trusted.tcfs_test", "root only"));
  CHECK(get_x(t / "f", "trusted.tcfs_test") == "root only");
  CHECK(xattr_names(t / "f") == std::vector<std::string>{"trusted.tcfs_test", "user.via"});
  CHECK_SYS(removexattr((t / "f").c_str(), "trusted.tcfs_test"));
}

TEST_CASE("xattr flags, sizes and errors") {
  TestDir t;
  write_file(t / "f", "x");
  CHECK_SYS(set_x(t / "f", "user.a", "value-a"));
  CHECK_ERR(set_x(t / "f", "user.a", "again", XATTR_CREATE), EEXIST);
  CHECK(get_x(t / "f", "user.a") == "value-a");
  CHECK_ERR(set_x(t / "f", "user.b", "b", XATTR_REPLACE), ENODATA);
  CHECK(get_x(t / "f", "user.b") == "<" + errname(ENODATA) + ">");
  CHECK_SYS(set_x(t / "f", "user.a", "replaced", XATTR_REPLACE));
  CHECK(get_x(t / "f", "user.a") == "replaced");
  CHECK_SYS(set_x(t / "f", "user.c", "created", XATTR_CREATE));
  CHECK(get_x(t / "f", "user.c") == "created");
  // Size queries and short buffers.
  CHECK(getxattr((t / "f").c_str(), "user.a", nullptr, 0) == 8);
  char small[4];
  CHECK_ERR(getxattr((t / "f").c_str(), "user.a", small, sizeof small), ERANGE);
  ssize_t need = listxattr((t / "f").c_str(), nullptr, 0);
  CHECK(need == static_cast<ssize_t>(sizeof "user.a" + sizeof "user.c"));
  CHECK_ERR(listxattr((t / "f").c_str(), small, sizeof small), ERANGE);
  CHECK_SYS(set_x(t / "f", "user.zero", ""));
  CHECK(getxattr((t / "f").c_str(), "user.zero", nullptr, 0) == 0);
  // Missing names and files.
  char buf[64];
  CHECK_ERR(getxattr((t / "f").c_str(), "user.missing", buf, sizeof buf), ENODATA);
  CHECK_ERR(getxattr((t / "f").c_str(), "user.missing", nullptr, 0), ENODATA);
  CHECK_ERR(removexattr((t / "f").c_str(), "user.missing"), ENODATA);
  CHECK_ERR(getxattr((t / "nope").c_str(), "user.a", buf, sizeof buf), ENOENT);
  CHECK_ERR(set_x(t / "nope", "user.a", "x"), ENOENT);
  // Bad names and flags.
  CHECK_ERR(set_x(t / "f", "nonamespace", "x"), EOPNOTSUPP);
  CHECK_ERR(set_x(t / "f", ("user." + rep(251, 'n')).c_str(), "x"), ERANGE);
  CHECK_ERR(set_x(t / "f", "", "x"), ERANGE);
  CHECK_ERR(set_x(t / "f", "user.a", "x", XATTR_CREATE | XATTR_REPLACE | 0x100), EINVAL);
  CHECK_ERR(set_x(t / "f", "user.huge", std::string(70000, 'h')), E2BIG);
  CHECK(xattr_names(t / "f") == std::vector<std::string>{"user.a", "user.c", "user.zero"});
}

}  // TEST_SUITE xattr
