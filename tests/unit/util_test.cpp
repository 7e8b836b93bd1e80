#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "tcfs/status.h"
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
