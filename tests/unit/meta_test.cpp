#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "meta/env.h"
#include "test_util.h"
#include "util/durable.h"
#include "util/fault.h"

using namespace tcfs;

TEST_CASE("LMDB values survive reopen; aborted transactions leave nothing") {
  TempDir t;
  {
    auto env = meta::Env::open(t.path, {"a", "b"});
    REQUIRE(env.is_ok());
    auto txn = meta::Txn::begin(*env.value(), true);
    REQUIRE(txn.is_ok());
    CHECK(txn->put(env.value()->db("a"), "k1", "v1").is_ok());
    CHECK(txn->put(env.value()->db("b"), "k1", "other").is_ok());
    REQUIRE(txn->commit().is_ok());
    auto t2 = meta::Txn::begin(*env.value(), true);
    CHECK(t2->put(env.value()->db("a"), "k2", "lost").is_ok());
    // destroyed without commit: aborted
  }
  auto env = meta::Env::open(t.path, {"a", "b"});
  REQUIRE(env.is_ok());
  auto txn = meta::Txn::begin(*env.value(), false);
  auto v = txn->get(env.value()->db("a"), "k1");
  REQUIRE(v.is_ok());
  REQUIRE(v.value().has_value());
  CHECK(*v.value() == "v1");
  CHECK_FALSE(txn->get(env.value()->db("a"), "k2").value().has_value());
  CHECK(*txn->get(env.value()->db("b"), "k1").value() == "other");
}

TEST_CASE("scan walks a prefix in key order; del is idempotent") {
  TempDir t;
  auto env = meta::Env::open(t.path, {"s"});
  REQUIRE(env.is_ok());
  MDB_dbi db = env.value()->db("s");
  auto txn = meta::Txn::begin(*env.value(), true);
  for (const char* k : {"p/2", "p/1", "q/1", "p/3", "o/9"}) CHECK(txn->put(db, k, k).is_ok());
  std::string seen;
  CHECK(txn->scan(db, "p/", [&](std::string_view k, std::string_view) {
               seen += std::string(k) + ";";
               return true;
             }).is_ok());
  CHECK(seen == "p/1;p/2;p/3;");
  CHECK(txn->del(db, "p/2").is_ok());
  CHECK(txn->del(db, "p/2").is_ok());
  CHECK_FALSE(txn->get(db, "p/2").value().has_value());
}

TEST_CASE("an injected commit failure leaves the old state") {
  TempDir t;
  auto env = meta::Env::open(t.path, {"s"});
  REQUIRE(env.is_ok());
  MDB_dbi db = env.value()->db("s");
  fault::reset();
  fault::arm("meta.commit", EIO);
  {
    auto txn = meta::Txn::begin(*env.value(), true);
    CHECK(txn->put(db, "k", "v").is_ok());
    Status st = txn->commit();
    CHECK(st.err() == EIO);
  }
  fault::reset();
  auto txn = meta::Txn::begin(*env.value(), false);
  CHECK_FALSE(txn->get(db, "k").value().has_value());
}

TEST_CASE("a commit is not acknowledged when the filesystem shut down during its sync (util/durable.h)") {
  TempDir t;
  auto env = meta::Env::open(t.path, {"s"});
  REQUIRE(env.is_ok());
  MDB_dbi db = env.value()->db("s");
  fault::reset();
  fault::arm("fs.still_up", EIO);  // the open after the sync fails as on a shut-down XFS
  {
    auto txn = meta::Txn::begin(*env.value(), true);
    CHECK(txn->put(db, "k", "v").is_ok());
    Status st = txn->commit();
    CHECK(st.err() == EIO);
    CHECK(st.message().find("shut down") != std::string::npos);
  }
  fault::arm("fs.still_up", EMFILE);  // not a sign of a shutdown: acknowledged
  {
    auto txn = meta::Txn::begin(*env.value(), true);
    CHECK(txn->put(db, "k2", "v").is_ok());
    CHECK(txn->commit().is_ok());
  }
  fault::reset();
  {
    auto r = meta::Txn::begin(*env.value(), false);  // a read commit checks nothing
    CHECK(r->commit().is_ok());
  }
  CHECK(still_up(AT_FDCWD, t.path.c_str(), "x").is_ok());
  Status gone = still_up(AT_FDCWD, (t.path + "/absent").c_str(), "x");
  CHECK(gone.is_ok());  // ENOENT is not EIO: only a shutdown refuses
}

TEST_CASE("opening a missing directory fails with a clear error") {
  auto env = meta::Env::open("/nonexistent/tcfs/meta", {"s"});
  REQUIRE_FALSE(env.is_ok());
  CHECK(env.err() == ENOENT);
  CHECK(env.status().message().find("/nonexistent/tcfs/meta") != std::string::npos);
}
