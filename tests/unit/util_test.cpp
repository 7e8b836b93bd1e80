#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fcntl.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <csignal>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <string>
#include <vector>

#include "tcfs/status.h"
#include "util/check.h"
#include "util/dir.h"
#include "util/parallel.h"
#include "util/fault.h"

using tcfs::Result;
using tcfs::Status;

TEST_CASE("Status carries errno and context") {
  Status ok;
  CHECK(ok.is_ok());
  CHECK(ok.message() == "success");
  Status e = Status::error(ENOENT, "open /x");
  CHECK_FALSE(e.is_ok());
  CHECK(e.err() == ENOENT);
  CHECK(e.message() == std::string("open /x: ") + strerror(ENOENT));
  CHECK(Status::error(0).err() == EIO);  // an error is never success
}

TEST_CASE("Result holds a value or a status") {
  Result<int> r = 42;
  REQUIRE(r.is_ok());
  CHECK(r.value() == 42);
  Result<int> bad = Status::error(EACCES);
  CHECK_FALSE(bad.is_ok());
  CHECK(bad.err() == EACCES);
  Result<int> from_ok = Status();  // success Status cannot make a Result
  CHECK(from_ok.err() == EIO);
}

static Status tries(bool fail) {
  auto inner = [&]() -> Result<int> { return fail ? Result<int>(Status::error(EBUSY)) : Result<int>(1); };
  TCFS_TRY(inner());
  return Status::error(EALREADY);
}

TEST_CASE("TCFS_TRY propagates failures only") {
  CHECK(tries(true).err() == EBUSY);
  CHECK(tries(false).err() == EALREADY);
}

TEST_CASE("fault injection fires on the nth call for count calls") {
  tcfs::fault::reset();
  tcfs::fault::arm("unit.site", ENOSPC, 2, 2);
  CHECK(tcfs::fault::check("unit.site") == 0);
  CHECK(tcfs::fault::check("unit.site") == ENOSPC);
  CHECK(tcfs::fault::check("unit.site") == ENOSPC);
  CHECK(tcfs::fault::check("unit.site") == 0);
  CHECK(tcfs::fault::check("other.site") == 0);
  tcfs::fault::arm("unit.forever", EIO, 1, 0);
  for (int i = 0; i < 5; ++i) CHECK(tcfs::fault::check("unit.forever") == EIO);
  tcfs::fault::reset();
  CHECK(tcfs::fault::check("unit.forever") == 0);
}

TEST_CASE("errno names") {
  CHECK(tcfs::fault::errno_from_name("ENOSPC") == ENOSPC);
  CHECK(tcfs::fault::errno_from_name("EIO") == EIO);
  CHECK(tcfs::fault::errno_from_name("NOPE") == 0);
}

TEST_CASE("for_each_entry lists a directory once, without . and .., and closes it on every way out") {
  char tmpl[] = "/tmp/tcfs-dir-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  std::string dir = tmpl;
  for (const char* n : {"a", "b", "c"}) {
    FILE* f = fopen((dir + "/" + n).c_str(), "w");
    REQUIRE(f != nullptr);
    fclose(f);
  }
  REQUIRE(mkdir((dir + "/sub").c_str(), 0755) == 0);
  auto open_fds = [] {
    int n = 0;
    tcfs::for_each_entry(AT_FDCWD, "/proc/self/fd", [&](const char*, unsigned char) { return ++n, true; });
    return n;
  };
  int before = open_fds();
  auto names = tcfs::list_names(AT_FDCWD, dir.c_str());
  REQUIRE(names.is_ok());
  std::sort(names->begin(), names->end());
  CHECK(*names == std::vector<std::string>{"a", "b", "c", "sub"});
  int seen = 0;
  CHECK(tcfs::for_each_entry(AT_FDCWD, dir.c_str(), [&](const char*, unsigned char) { return ++seen < 2; }).is_ok());
  CHECK(seen == 2);  // stopped when fn said so
  CHECK_THROWS(tcfs::for_each_entry(AT_FDCWD, dir.c_str(), [](const char*, unsigned char) -> bool { throw 1; }));
  auto missing = tcfs::for_each_entry(AT_FDCWD, (dir + "/none").c_str(), [](const char*, unsigned char) { return true; },
                                      "list none");
  CHECK(missing.err() == ENOENT);
  CHECK(missing.message().find("list none") != std::string::npos);
  CHECK(open_fds() == before);  // nothing left open, the exception's way out included
  for (const char* n : {"a", "b", "c"}) unlink((dir + "/" + n).c_str());
  rmdir((dir + "/sub").c_str());
  rmdir(dir.c_str());
}

TEST_CASE("parallel_for runs every index once, all at once") {
  std::vector<std::atomic<int>> hits(5);
  std::atomic<int> inside{0}, most{0};
  tcfs::parallel_for(hits.size(), [&](size_t i) {
    int now = ++inside;
    for (int m = most.load(); now > m && !most.compare_exchange_weak(m, now);) {
    }
    hits[i]++;
    while (most.load() < static_cast<int>(hits.size()) && inside.load() < static_cast<int>(hits.size())) std::this_thread::yield();
    --inside;
  });
  for (auto& h : hits) CHECK(h.load() == 1);
  CHECK(most.load() == 5);  // every call was running at the same time
  tcfs::parallel_for(0, [](size_t) { FAIL("called for n = 0"); });
}

TEST_CASE("TCFS_CHECK aborts naming the invariant; a check that holds does nothing") {
  TCFS_CHECK(1 + 1 == 2, "test 1");  // holds: nothing happens
  int p[2];
  REQUIRE(pipe(p) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    signal(SIGABRT, SIG_DFL);  // not doctest's crash report: the parent checks the signal
    dup2(p[1], 2);
    spdlog::set_default_logger(spdlog::stderr_logger_st("check-child"));
    int answer = 41;
    TCFS_CHECK(answer == 42, "test 7: the answer");
    _exit(0);  // not reached
  }
  close(p[1]);
  std::string out;
  char buf[512];
  for (ssize_t n; (n = read(p[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  close(p[0]);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGABRT);
  CHECK(out.find("invariant test 7: the answer broken: answer == 42") != std::string::npos);
}
