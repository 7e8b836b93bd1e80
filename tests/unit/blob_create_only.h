// blob_create_only.h — the create-only put (blobber.h put_new) checked the
// same way against every backend: blob_test.cpp (dir://) and
// blob_s3_test.cpp (a real Ceph RGW).
#pragma once

#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "blob/blobber.h"

namespace tcfs::blob::testing {

inline void check_put_new_semantics(Blobber& b, const std::string& dir) {
  const std::string key = dir + "/marker";
  REQUIRE(b.put_new(key, "writer A, round 7").is_ok());
  CHECK(b.get_bytes(key).value() == "writer A, round 7");
  // The same bytes again: our own create retried after a lost reply.
  CHECK(b.put_new(key, "writer A, round 7").is_ok());
  // Other bytes: the key is taken; the object keeps the first writer's.
  Status st = b.put_new(key, "writer B, round 7");
  CHECK(st.err() == EEXIST);
  CHECK(st.message().find(key) != std::string::npos);
  CHECK(st.message().find(b.url()) != std::string::npos);
  CHECK(b.get_bytes(key).value() == "writer A, round 7");
  // An ordinary put still replaces; put_new over it is still refused.
  REQUIRE(b.put_bytes(key, "replaced").is_ok());
  CHECK(b.put_new(key, "writer B, round 7").err() == EEXIST);
  CHECK(b.put_new("bad//key", "x").err() == EINVAL);
  REQUIRE(b.del(key).is_ok());
}

// kThreads creators race on each of kKeys keys: exactly one wins each key,
// every other one gets EEXIST, and the object holds the winner's bytes.
inline void check_put_new_race(Blobber& b, const std::string& dir, int kThreads = 8, int kKeys = 20) {
  std::vector<std::vector<int>> won(kKeys);
  std::vector<std::thread> ts;
  std::atomic<int> other_errors{0};
  std::vector<std::vector<char>> ok(kKeys, std::vector<char>(kThreads, 0));
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      for (int k = 0; k < kKeys; ++k) {
        Status st = b.put_new(dir + "/race/" + std::to_string(k), "creator " + std::to_string(t));
        if (st.is_ok()) ok[k][t] = 1;
        else if (st.err() != EEXIST) ++other_errors;
      }
    });
  for (auto& t : ts) t.join();
  CHECK(other_errors == 0);
  for (int k = 0; k < kKeys; ++k) {
    int winners = 0, winner = -1;
    for (int t = 0; t < kThreads; ++t)
      if (ok[k][t]) winners++, winner = t;
    CHECK_MESSAGE(winners == 1, "key " << k << ": " << winners << " creators succeeded");
    if (winner >= 0) CHECK(b.get_bytes(dir + "/race/" + std::to_string(k)).value() == "creator " + std::to_string(winner));
  }
}

}  // namespace tcfs::blob::testing
