#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
// Unit tests for the txn layer: compounds run in-process by a TxnManager
// on a real store (a temp directory), every operation kind alone and mixed,
// failures injected at every position, the tree compared exactly with its
// state before the compound.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>

#include "store/store.h"
#include "txn/locks.h"
#include "txn/plan.h"
#include "txn/rr.h"
#include "txn/txn.h"
#include "txn/undo.h"
#include "util/fault.h"
#include "util/fd.h"

namespace fs = std::filesystem;
using namespace tcfs;

namespace {

struct TempStore {
  std::string dir;
  std::unique_ptr<store::Store> store;
  txn::LockManager locks;
  std::unique_ptr<txn::TxnManager> tm;
  TempStore() {
    char tmpl[] = "/var/tmp/tcfs-txn-test.XXXXXX";
    dir = mkdtemp(tmpl);
    auto s = store::Store::open(dir + "/store");
    REQUIRE(s.is_ok());
    store = std::move(s.value());
    tm = std::make_unique<txn::TxnManager>(*store, locks, nullptr);
  }
  ~TempStore() {
    tm.reset();
    store.reset();
    fs::remove_all(dir);
  }
  std::string root() const { return dir + "/store/root/"; }
};

void put_file(const std::string& p, const std::string& data, mode_t mode = 0644) {
  int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
  close(fd);
  chmod(p.c_str(), mode);
}

std::string read_file(const std::string& p) {
  std::string out;
  int fd = open(p.c_str(), O_RDONLY);
  if (fd < 0) return "<missing>";
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

// Everything "exactly as before" means: names, types, inode numbers (undo
// restores into the original inode), modes, owners, sizes, link counts,
// contents, symlink targets, xattrs and mtimes.
std::map<std::string, std::string> snapshot(const std::string& root) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    std::string p = it->path().string();
    struct stat st;
    REQUIRE(lstat(p.c_str(), &st) == 0);
    std::string v = std::to_string(st.st_mode) + " ino=" + std::to_string(st.st_ino) + " u=" +
                    std::to_string(st.st_uid) + " g=" + std::to_string(st.st_gid) + " n=" +
                    std::to_string(st.st_nlink) + " mtime=" + std::to_string(st.st_mtim.tv_sec) + "." +
                    std::to_string(st.st_mtim.tv_nsec);
    if (S_ISREG(st.st_mode)) v += " size=" + std::to_string(st.st_size) + " data=" + read_file(p);
    if (S_ISLNK(st.st_mode)) v += " -> " + fs::read_symlink(p).string();
    if (!S_ISLNK(st.st_mode)) {
      char names[4096];
      ssize_t n = listxattr(p.c_str(), names, sizeof names);
      for (ssize_t i = 0; n > 0 && i < n;) {
        std::string nm(names + i);
        i += static_cast<ssize_t>(nm.size()) + 1;
        char val[1024];
        ssize_t len = getxattr(p.c_str(), nm.c_str(), val, sizeof val);
        v += " x:" + nm + "=" + std::string(val, len > 0 ? static_cast<size_t>(len) : 0);
      }
    }
    out[p.substr(root.size())] = v;
  }
  // The root directory itself (its mtime changes when names do).
  struct stat st;
  REQUIRE(lstat(root.c_str(), &st) == 0);
  out["."] = std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
  return out;
}

void check_same(const std::map<std::string, std::string>& a, const std::map<std::string, std::string>& b) {
  for (const auto& kv : a) {  // plain names: clang 14 cannot capture a structured binding
    const std::string &k = kv.first, &v = kv.second;
    auto it = b.find(k);
    if (it == b.end()) FAIL_CHECK("missing after undo: ", k, " ", v);
    else CHECK_MESSAGE(it->second == v, k, "\n   before: ", v, "\n   after:  ", it->second);
  }
  for (const auto& [k, v] : b)
    if (!a.count(k)) FAIL_CHECK("left over after undo: ", k, " ", v);
}

void base_tree(const std::string& r) {
  fs::create_directories(r + "a/b");
  put_file(r + "a/f1", "original-f1");
  put_file(r + "a/b/f2", "original-f2-longer");
  put_file(r + "top", "top-file");
  REQUIRE(link((r + "a/f1").c_str(), (r + "a/h").c_str()) == 0);
  REQUIRE(symlink("f1", (r + "a/s").c_str()) == 0);
  REQUIRE(setxattr((r + "a/f1").c_str(), "user.x", "old", 3, 0) == 0);
  REQUIRE(setxattr((r + "a/f1").c_str(), "user.y", "why", 3, 0) == 0);
  fs::create_directories(r + "d/e");
  put_file(r + "d/e/g", "deep");
  fs::create_directories(r + "empty");
  // Distinct, old mtimes so any change shows.
  struct timespec ts[2] = {{1000000, 5}, {1000000, 7}};
  for (const char* p : {"a/b/f2", "a/b", "a/f1", "a", "d/e/g", "d/e", "d", "empty", "top", "."})
    utimensat(AT_FDCWD, (r + p).c_str(), ts, 0);
}

// A compound with every operation kind, mixed, each depending on earlier ones.
Compound mixed() {
  Compound c;
  c.mkdir("n", 0755);
  c.create("n/new", 0640, true);
  c.write("n/new", "hello");
  c.write("a/f1", "XX", 3);
  c.copy("a/f1", "n/copy");
  c.truncate("a/b/f2", 4);
  c.chmod("a/b/f2", 0600);
  c.utimes("a/b/f2", Timestamp{5, 0, false}, Timestamp{6, 0, false});
  c.setxattr("a/f1", "user.x", "new");
  c.removexattr("a/f1", "user.y");
  c.symlink("../a", "n/sl");
  c.link("a/b/f2", "n/hl");
  c.rename("a/b", "n/b2");
  c.remove("a/s");
  c.rename("n/new", "top");  // overwrites an existing file
  c.remove("d", true);       // a whole subtree
  c.rename("a/h", "n/copy", RENAME_EXCHANGE);
  c.remove("empty");
  c.mkdir("p/q/r", 0700, true);
  c.append("n/copy", "-tail");
  return c;
}

}  // namespace

TEST_CASE("every operation kind commits, with the expected result") {
  TempStore t;
  std::string r = t.root();
  base_tree(r);
  auto reply = t.tm->run(mixed(), {});
  INFO(reply.message);
  REQUIRE(reply.outcome == Outcome::Committed);
  CHECK(read_file(r + "top") == "hello");
  CHECK(read_file(r + "n/copy") == "oriXXnal-f1-tail");  // the old a/h (= a/f1's inode), exchanged in
  CHECK(read_file(r + "a/h") == "oriXXnal-f1");          // the copy
  CHECK(read_file(r + "n/b2/f2") == "orig");
  CHECK(read_file(r + "n/hl") == "orig");
  CHECK(fs::read_symlink(r + "n/sl") == "../a");
  CHECK(!fs::exists(r + "a/s"));
  CHECK(!fs::exists(r + "d"));
  CHECK(!fs::exists(r + "empty"));
  CHECK(fs::is_directory(r + "p/q/r"));
  char v[16];
  CHECK(getxattr((r + "n/copy").c_str(), "user.x", v, sizeof v) == 3);
  CHECK(getxattr((r + "n/copy").c_str(), "user.y", v, sizeof v) < 0);
  struct stat st;
  REQUIRE(stat((r + "n/hl").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
  CHECK(st.st_mtim.tv_sec == 6);
  CHECK(st.st_nlink == 2);
  // Committed: no recovery record, and the undo images get reclaimed.
  auto rrs = txn::list_rrs(t.store->meta());
  REQUIRE(rrs.is_ok());
  CHECK(rrs->empty());
}

TEST_CASE("a predicted failure at every position rolls everything back") {
  Compound all = mixed();
  for (size_t k = 0; k <= all.ops.size(); ++k) {
    CAPTURE(k);
    TempStore t;
    std::string r = t.root();
    base_tree(r);
    auto before = snapshot(r);
    Compound c;
    c.ops.assign(all.ops.begin(), all.ops.begin() + static_cast<long>(k));
    c.mkdir("a", 0755);  // a exists (or, late in the compound, still exists): EEXIST
    auto reply = t.tm->run(c, {});
    CHECK(reply.outcome == Outcome::RolledBack);
    CHECK(reply.failed_op == static_cast<int>(k));
    CHECK(reply.err == EEXIST);
    check_same(before, snapshot(r));
    auto rrs = txn::list_rrs(t.store->meta());
    REQUIRE(rrs.is_ok());
    CHECK(rrs->empty());
  }
}

TEST_CASE("each operation kind alone, followed by a failing one, is undone") {
  std::vector<Compound> alone(13);
  alone[0].mkdir("n", 0700);
  alone[1].create("a/new", 0600, true);
  alone[2].write("a/f1", "ZZ", 1);
  alone[3].copy("a/f1", "a/b/f2");
  alone[4].truncate("a/b/f2", 2);
  alone[5].chmod("a/b/f2", 0600);
  alone[6].setxattr("a/f1", "user.x", "changed");
  alone[7].removexattr("a/f1", "user.y");
  alone[8].symlink("f1", "a/sym2");
  alone[9].link("a/f1", "a/b/hard");
  alone[10].rename("a/b", "b2");
  alone[11].remove("top");
  alone[12].remove("d", true);
  for (size_t k = 0; k < alone.size(); ++k) {
    CAPTURE(k);
    TempStore t;
    std::string r = t.root();
    base_tree(r);
    auto before = snapshot(r);
    Compound c = alone[k];
    c.mkdir("a", 0755);
    auto reply = t.tm->run(c, {});
    CHECK(reply.outcome == Outcome::RolledBack);
    CHECK(reply.failed_op == 1);
    CHECK(reply.results[0].ran);
    check_same(before, snapshot(r));
  }
}

TEST_CASE("a syscall failing at run time at every position rolls everything back") {
  Compound all = mixed();
  // Each injection site fails the nth call of its kind.
  for (const char* site : {"txn.open", "txn.rename"}) {
    for (unsigned nth = 1; nth <= 12; ++nth) {
      CAPTURE(site);
      CAPTURE(nth);
      TempStore t;
      std::string r = t.root();
      base_tree(r);
      auto before = snapshot(r);
      fault::reset();
      fault::arm(site, EIO, nth);
      auto reply = t.tm->run(all, {});
      fault::reset();
      if (reply.outcome == Outcome::Committed) break;  // fewer than nth calls: done with this site
      CHECK(reply.outcome == Outcome::RolledBack);
      CHECK(reply.err == EIO);
      check_same(before, snapshot(r));
    }
  }
}

TEST_CASE("an unprivileged caller gets exactly its own permissions, and a failure undoes its earlier ops") {
  TempStore t;
  std::string r = t.root();
  fs::create_directories(r + "pub");
  chmod((r + "pub").c_str(), 0777);
  fs::create_directories(r + "priv");
  chmod((r + "priv").c_str(), 0755);
  auto before = snapshot(r);
  txn::Caller nobody{0, {65534, 65534, {}}};
  Compound c;
  c.create("pub/mine", 0644, true);
  c.write("pub/mine", "data");
  c.create("priv/not-mine", 0644, true);  // root's 0755 directory: EACCES
  auto reply = t.tm->run(c, nobody);
  CHECK(reply.outcome == Outcome::RolledBack);
  CHECK(reply.failed_op == 2);
  CHECK(reply.err == EACCES);
  check_same(before, snapshot(r));

  Compound ok;
  ok.create("pub/mine", 0644, true);
  REQUIRE(t.tm->run(ok, nobody).outcome == Outcome::Committed);
  struct stat st;
  REQUIRE(stat((r + "pub/mine").c_str(), &st) == 0);
  CHECK(st.st_uid == 65534);
  CHECK(st.st_gid == 65534);
}

TEST_CASE("an unprivileged caller cannot use the daemon's capabilities: security.capability and trusted.* are refused") {
  TempStore t;
  std::string r = t.root();
  fs::create_directories(r + "pub");
  chmod((r + "pub").c_str(), 0777);
  txn::Caller nobody{0, {65534, 65534, {}}};
  // A well-formed v2 file capability granting cap_setuid (what a user would
  // need to turn a binary of its own into a root shell).
  uint32_t cap[5] = {0x02000000u | 1u /* VFS_CAP_REVISION_2 | effective */, 1u << 7 /* CAP_SETUID */, 0, 0, 0};
  std::string capval(reinterpret_cast<const char*>(cap), sizeof cap);
  for (std::string name : {"security.capability", "trusted.tcfs-test"}) {
    CAPTURE(name);
    std::string bin = "pub/bin-" + name;
    auto before = snapshot(r);
    Compound c;
    c.create(bin, 0755, true);
    c.write(bin, "#!/bin/sh\n");
    c.setxattr(bin, name, name == "security.capability" ? capval : "v");
    auto reply = t.tm->run(c, nobody);
    CHECK(reply.outcome == Outcome::RolledBack);
    CHECK(reply.failed_op == 2);
    CHECK(reply.err == EPERM);
    check_same(before, snapshot(r));
  }
  // Root may (the same compound as uid 0 commits and the xattr is there).
  Compound c;
  c.create("pub/rootbin", 0755, true);
  c.setxattr("pub/rootbin", "trusted.tcfs-test", "v");
  REQUIRE(t.tm->run(c, txn::Caller{}).outcome == Outcome::Committed);
  char v[8];
  CHECK(getxattr((r + "pub/rootbin").c_str(), "trusted.tcfs-test", v, sizeof v) == 1);
  // A chown to another user is refused to the caller and, on the same
  // thread right after, allowed to root: the daemon's capabilities are back.
  Compound own;
  own.create("pub/after", 0644, true);
  own.chown("pub/after", 4242u, 4242u);
  auto reply = t.tm->run(own, nobody);
  CHECK(reply.outcome == Outcome::RolledBack);
  CHECK(reply.err == EPERM);
  REQUIRE(t.tm->run(own, txn::Caller{}).outcome == Outcome::Committed);
  struct stat st;
  REQUIRE(stat((r + "pub/after").c_str(), &st) == 0);
  CHECK(st.st_uid == 4242u);
}

TEST_CASE("a compound's modes are applied as given, whatever the daemon's umask") {
  TempStore t;
  std::string r = t.root();
  mode_t old = umask(022);
  Compound c;
  c.mkdir("open", 0777);
  c.create("open/f", 0666, true);
  c.mkdir("open/a/b", 0770, true);
  auto reply = t.tm->run(c, txn::Caller{});
  umask(old);
  REQUIRE(reply.outcome == Outcome::Committed);
  auto mode = [&](const std::string& p) {
    struct stat st;
    REQUIRE(stat((r + p).c_str(), &st) == 0);
    return st.st_mode & 07777;
  };
  CHECK(mode("open") == 0777);
  CHECK(mode("open/f") == 0666);
  CHECK(mode("open/a/b") == 0770);
}

TEST_CASE("paths that escape the mount are refused before anything runs") {
  TempStore t;
  std::string r = t.root();
  fs::create_directories(r + "a");
  REQUIRE(symlink("/etc", (r + "a/out").c_str()) == 0);
  REQUIRE(symlink("../../..", (r + "a/up").c_str()) == 0);
  auto before = snapshot(r);
  for (const char* bad : {"a/out/passwd", "a/up/x"}) {
    CAPTURE(bad);
    Compound c;
    c.mkdir("a/made", 0755);
    c.create(bad, 0644);
    auto reply = t.tm->run(c, {});
    CHECK(reply.outcome == Outcome::RolledBack);
    CHECK(reply.failed_op == 1);
    CHECK(reply.err == EXDEV);
    check_same(before, snapshot(r));
  }
}

TEST_CASE("a new name is not looked up by the first plan, and an existing one still fails the compound with EEXIST") {
  TempStore t;
  std::string r = t.root();
  fs::create_directories(r + "d/sub");
  put_file(r + "d/f", "old");
  REQUIRE(symlink("f", (r + "d/l").c_str()) == 0);
  Fd root(open(r.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  REQUIRE(root);
  for (int kind = 0; kind < 4; kind++) {
    CAPTURE(kind);
    Compound c;
    c.create("d/new", 0644, true);
    if (kind == 0) c.create("d/f", 0644, true);  // exclusive
    if (kind == 1) c.mkdir("d/sub", 0755);
    if (kind == 2) c.symlink("x", "d/l");
    if (kind == 3) c.link("d/f", "d/sub");
    c.write("d/new", "data", 0);
    // The first plan takes the name as free (no lookup): no failure yet,
    // and the parent directory is among its exclusive locks.
    txn::Plan first = txn::plan(root.get(), c, /*keys_only=*/true);
    CHECK(first.failed_op == -1);
    struct stat st;
    REQUIRE(stat((r + "d").c_str(), &st) == 0);
    const txn::LockKey dk{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
    CHECK(std::find(first.exclusive.begin(), first.exclusive.end(), dk) != first.exclusive.end());
    // The real plan looks it up and predicts the failure.
    txn::Plan real = txn::plan(root.get(), c);
    CHECK(real.failed_op == 1);
    CHECK(real.err == EEXIST);
    auto before = snapshot(r);
    auto reply = t.tm->run(c, {});
    CHECK(reply.outcome == Outcome::RolledBack);
    CHECK(reply.failed_op == 1);
    CHECK(reply.err == EEXIST);
    check_same(before, snapshot(r));
  }
}

TEST_CASE("txn off stops at the first error and keeps what ran") {
  TempStore t;
  std::string r = t.root();
  Compound c;
  c.options.txn = false;
  c.mkdir("x", 0755);
  c.mkdir("x", 0755);
  c.mkdir("y", 0755);
  auto reply = t.tm->run(c, {});
  CHECK(reply.outcome == Outcome::Partial);
  CHECK(reply.failed_op == 1);
  CHECK(reply.err == EEXIST);
  CHECK(fs::is_directory(r + "x"));
  CHECK(!fs::exists(r + "y"));
}

// A temp directory removed however the test case ends.
struct TempDir {
  std::string dir;
  TempDir() {
    char tmpl[] = "/var/tmp/tcfs-crash-test.XXXXXX";
    dir = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(dir); }
};

// Logical view for "exactly the post-compound state" across two stores:
// inode numbers and times differ between runs, the rest must not.
std::map<std::string, std::string> logical(const std::string& root) {
  auto snap = snapshot(root);
  std::map<std::string, std::string> out;
  for (auto& [k, v] : snap) {
    if (k == ".") continue;
    std::string x = v;
    for (const char* field : {" ino=", " mtime="}) {
      size_t i = x.find(field);
      if (i != std::string::npos) x.erase(i, x.find(' ', i + 1) - i);
    }
    out[k] = x;
  }
  return out;
}

// Runs `c` in a child process that dies (SIGKILL) at crash point
// point:nth. Returns false if the child finished without reaching it.
bool run_and_crash(const std::string& store_dir, const Compound& c, const char* point, unsigned nth) {
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto s = store::Store::open(store_dir);
    if (!s) _exit(3);
    txn::LockManager locks;
    txn::TxnManager tm(**s, locks, nullptr);
    fault::reset();
    fault::arm_crash(point, nth);
    auto reply = tm.run(c, {});
    _exit(reply.outcome == Outcome::Committed ? 0 : 4);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  if (WIFSIGNALED(status)) {
    REQUIRE(WTERMSIG(status) == SIGKILL);
    return true;
  }
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  return false;
}

TEST_CASE("crash sweep: a kill -9 at every step of the protocol, then recovery, gives the pre- or post-state") {
  // The post-state, from an uninterrupted run in a separate store.
  std::map<std::string, std::string> post;
  {
    TempStore ref;
    base_tree(ref.root());
    REQUIRE(ref.tm->run(mixed(), {}).outcome == Outcome::Committed);
    post = logical(ref.root());
  }
  struct Point {
    const char* name;
    bool committed;  // crash after the commit point
  };
  const Point points[] = {{"txn.after_lock", false}, {"txn.after_images", false}, {"txn.after_rr", false},
                          {"txn.before_op", false},  {"txn.after_op", false},     {"txn.after_exec", false},
                          {"txn.after_sync", false}, {"txn.after_commit", true}};
  unsigned runs = 0;
  for (const auto& pt : points) {
    for (unsigned nth = 1; nth < 100; ++nth) {
      std::string point_name = pt.name;
      CAPTURE(point_name);
      CAPTURE(nth);
      TempDir td;
      const std::string& dir = td.dir;
      std::string sdir = dir + "/store", r = sdir + "/root/";
      { REQUIRE(store::Store::open(sdir).is_ok()); }
      base_tree(r);
      auto before = snapshot(r);
      bool crashed = run_and_crash(sdir, mixed(), pt.name, nth);
      if (crashed) {
        ++runs;
        // Recovery, as the daemon runs it at start-up.
        auto s = store::Store::open(sdir);
        REQUIRE(s.is_ok());
        txn::UndoCtx ctx{(*s)->root_fd(), (*s)->txn_fd(), false, {}};
        auto rst = txn::recover_all(ctx, (*s)->meta());
        INFO(rst.message());
        REQUIRE(rst.is_ok());
        if (pt.committed) CHECK(logical(r) == post);
        else check_same(before, snapshot(r));
        auto rrs = txn::list_rrs((*s)->meta());
        REQUIRE(rrs.is_ok());
        CHECK(rrs->empty());
        CHECK(txn::list_txn_dirs((*s)->txn_fd()).empty());
      }
      if (!crashed) break;  // the point is hit fewer than nth times
    }
  }
  CHECK(runs > 40);
}

TEST_CASE("a crash inside recovery itself, then recovery again, still gives the pre-state") {
  for (const char* point : {"undo.before_step", "undo.after_step", "undo.after_inodes", "undo.after_sync"}) {
    for (unsigned nth = 1; nth < 60; ++nth) {
      std::string point_name = point;
      CAPTURE(point_name);
      CAPTURE(nth);
      TempDir td;
      const std::string& dir = td.dir;
      std::string sdir = dir + "/store", r = sdir + "/root/";
      { REQUIRE(store::Store::open(sdir).is_ok()); }
      base_tree(r);
      auto before = snapshot(r);
      REQUIRE(run_and_crash(sdir, mixed(), "txn.after_exec", 1));
      // First recovery dies at point:nth ...
      pid_t pid = fork();
      REQUIRE(pid >= 0);
      if (pid == 0) {
        auto s = store::Store::open(sdir);
        if (!s) _exit(3);
        fault::reset();
        fault::arm_crash(point, nth);
        txn::UndoCtx ctx{(*s)->root_fd(), (*s)->txn_fd(), false, {}};
        _exit(txn::recover_all(ctx, (*s)->meta()).is_ok() ? 0 : 4);
      }
      int status = 0;
      REQUIRE(waitpid(pid, &status, 0) == pid);
      bool crashed = WIFSIGNALED(status);
      if (!crashed) REQUIRE(WEXITSTATUS(status) == 0);
      // ... the second one finishes the job.
      {
        auto s = store::Store::open(sdir);
        REQUIRE(s.is_ok());
        txn::UndoCtx ctx{(*s)->root_fd(), (*s)->txn_fd(), false, {}};
        auto rst = txn::recover_all(ctx, (*s)->meta());
        INFO(rst.message());
        REQUIRE(rst.is_ok());
      }
      check_same(before, snapshot(r));
      if (!crashed) break;
    }
  }
}

TEST_CASE("markless (undo.h): only removals of names the compound made, each path once") {
  using tcfs::txn::markless;
  using tcfs::txn::RecoveryRecord;
  using tcfs::txn::Step;
  using tcfs::txn::StepKind;
  auto step = [](StepKind k, uint32_t op, std::string path) {
    Step s;
    s.kind = k, s.op = op, s.path = std::move(path);
    return s;
  };
  RecoveryRecord rr;
  CHECK(markless(rr));  // data and attribute changes only
  rr.steps = {step(StepKind::RemoveCreated, 0, "d"), step(StepKind::RemoveCreated, 1, "d/f"),
              step(StepKind::RemoveCreated, 3, "g")};
  CHECK(markless(rr));
  rr.steps.push_back(step(StepKind::RemoveCreated, 5, "d/f"));  // made, removed, made again
  CHECK(!markless(rr));
  rr.steps.pop_back();
  for (StepKind k : {StepKind::RelinkVictim, StepKind::RestoreTree, StepKind::UndoRename, StepKind::UndoExchange}) {
    rr.steps.push_back(step(k, 4, "h"));
    CHECK(!markless(rr));
    rr.steps.pop_back();
  }
}
