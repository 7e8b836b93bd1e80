#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "store/store.h"
#include "test_util.h"
#include "util/fault.h"

using namespace tcfs;

static bool is_dir(const std::string& p, mode_t mode) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == mode;
}

TEST_CASE("first open creates the layout; reopen keeps the uuid") {
  TempDir t;
  std::string uuid;
  {
    auto s = store::Store::open(t / "s");
    REQUIRE_MESSAGE(s.is_ok(), s.status().message());
    CHECK(is_dir(t / "s/root", 0755));
    CHECK(is_dir(t / "s/txn", 0700));
    CHECK(is_dir(t / "s/meta", 0700));
    CHECK(is_dir(t / "s/journal", 0700));
    uuid = s.value()->uuid();
    CHECK(uuid.size() == 36);
    CHECK_FALSE(s.value()->fs_type().empty());
  }
  auto s = store::Store::open(t / "s");
  REQUIRE(s.is_ok());
  CHECK(s.value()->uuid() == uuid);
}

TEST_CASE("the store's lock file is the daemon's alone") {
  TempDir t;
  auto s = store::Store::open(t / "s");
  REQUIRE_MESSAGE(s.is_ok(), s.status().message());
  struct stat st;
  REQUIRE(stat((t / "s/lock").c_str(), &st) == 0);
  CHECK((st.st_mode & 077) == 0);
}

// As uid 65534, the errno of stat(path) (0: it succeeded).
static int stat_errno_as_nobody(const std::string& path) {
  pid_t pid = fork();
  if (pid == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(100);
    struct stat st;
    _exit(stat(path.c_str(), &st) == 0 ? 0 : errno);
  }
  int ws = 0;
  if (pid < 0 || waitpid(pid, &ws, 0) != pid || !WIFEXITED(ws)) return -1;
  return WEXITSTATUS(ws);
}

TEST_CASE("the store directory is 0700: made so when created, closed at open when an older store left it open") {
  TempDir t;
  REQUIRE(chmod(t.path.c_str(), 0755) == 0);  // the test's own directory does not close the way
  {
    auto s = store::Store::open(t / "new/s");
    REQUIRE_MESSAGE(s.is_ok(), s.status().message());
    CHECK(is_dir(t / "new/s", 0700));
  }
  std::filesystem::create_directories(t / "old/s/root");
  REQUIRE(chmod((t / "old").c_str(), 0755) == 0);
  REQUIRE(chmod((t / "old/s").c_str(), 04755) == 0);  // what an older tcfs left
  if (geteuid() == 0) CHECK(stat_errno_as_nobody(t / "old/s/root") == 0);
  {
    auto s = store::Store::open(t / "old/s");
    REQUIRE_MESSAGE(s.is_ok(), s.status().message());
    CHECK(is_dir(t / "old/s", 0700));
    if (geteuid() == 0) {
      // Another user cannot reach root/ (the tree with its set-ID bits) outside the mount.
      CHECK(stat_errno_as_nobody(t / "old/s/root") == EACCES);
      CHECK(stat_errno_as_nobody(t / "old/s/meta") == EACCES);
    }
  }
  auto again = store::Store::open(t / "old/s");
  REQUIRE(again.is_ok());
  CHECK(is_dir(t / "old/s", 0700));
}

TEST_CASE("a second process cannot open a store that is in use") {
  TempDir t;
  auto s = store::Store::open(t / "s");
  REQUIRE(s.is_ok());
  auto holder = store::lock_holder(t / "s");
  REQUIRE(holder.is_ok());
  CHECK(holder.value() == getpid());
  pid_t pid = fork();
  if (pid == 0) {
    auto s2 = store::Store::open(t / "s");
    bool ok = !s2.is_ok() && s2.err() == EBUSY &&
              s2.status().message().find("in use") != std::string::npos &&
              s2.status().message().find(std::to_string(getppid())) != std::string::npos;
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("the lock is released when the store closes") {
  TempDir t;
  { REQUIRE(store::Store::open(t / "s").is_ok()); }
  auto holder = store::lock_holder(t / "s");
  REQUIRE(holder.is_ok());
  CHECK(holder.value() == 0);
}

TEST_CASE("an injected lock failure is reported and nothing is held") {
  TempDir t;
  fault::reset();
  fault::arm("store.lock", EIO);
  auto s = store::Store::open(t / "s");
  fault::reset();
  REQUIRE_FALSE(s.is_ok());
  CHECK(s.err() == EIO);
  CHECK(store::Store::open(t / "s").is_ok());
}

TEST_CASE("open without create refuses a directory that is not a store") {
  TempDir t;
  mkdir((t / "plain").c_str(), 0755);
  store::OpenOptions o;
  o.create = false;
  auto s = store::Store::open(t / "plain", o);
  REQUIRE_FALSE(s.is_ok());
  CHECK(s.status().message().find("not a tcfs store") != std::string::npos);
}

TEST_CASE("filesystem probe names the type") {
  TempDir t;
  int fd = open(t.path.c_str(), O_RDONLY | O_DIRECTORY);
  std::string type = store::fs_type_name(fd);
  bool reflink = store::probe_reflink(fd);
  close(fd);
  CHECK_FALSE(type.empty());
  if (type == "ext4" || type == "tmpfs") CHECK_FALSE(reflink);
}
