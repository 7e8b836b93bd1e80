// sync_fixture.h — the store the sync layer's unit tests (sync_test,
// evict_test) run against: dir:// blobbers in a temp dir, and a local
// store-like layout (root/, stage/, meta/ in another).
//
// Contract: Blobbers(k, m[, cipher]) makes k + m dir:// blobbers b0, b1, ...
// and an object store over them (open() again replaces it, the folders kept).
// Local makes the three folders, opens root/ and stage/ (closed by its
// destructor) and the LMDB environment with every database of the sync
// layer; syncer(os) opens a syncer over it. Helpers REQUIRE what they need,
// so a broken fixture fails the test case that uses it.
//
// Thread-safety: none of their own; a test builds and tears one down on
// its thread. What the tests run on other threads (syncers, fetchers,
// evictors) keeps to the rules of those classes.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "blob/blobber.h"
#include "blob/cipher.h"
#include "blob/objects.h"
#include "meta/env.h"
#include "sync/syncer.h"
#include "test_util.h"
#include "util/handle.h"

namespace tcfs::sync::testing {

struct Blobbers {
  TempDir tmp;
  std::unique_ptr<blob::ObjectStore> os;
  explicit Blobbers(unsigned k = 2, unsigned m = 1, std::shared_ptr<const blob::Cipher> c = nullptr) { open(k, m, c); }
  void open(unsigned k, unsigned m, std::shared_ptr<const blob::Cipher> c) {
    std::vector<std::unique_ptr<blob::Blobber>> bl;
    for (unsigned i = 0; i < k + m; i++) {
      std::string d = tmp / ("b" + std::to_string(i));
      std::filesystem::create_directories(d);
      blob::BlobberOptions o;
      o.index = static_cast<int>(i);
      bl.push_back(std::move(blob::open_blobber("dir://" + d, o).value()));
    }
    os = std::move(blob::ObjectStore::make(std::move(bl), k, m, std::move(c)).value());
  }
};

// A local store-like layout: root/, stage/, meta/ in one temp dir.
struct Local {
  TempDir tmp;
  int root_fd = -1, stage_fd = -1;
  std::unique_ptr<meta::Env> env;
  Tracker tracker;
  Local() {
    std::filesystem::create_directories(tmp / "root");
    std::filesystem::create_directories(tmp / "stage");
    std::filesystem::create_directories(tmp / "meta");
    root_fd = open((tmp / "root").c_str(), O_RDONLY | O_DIRECTORY);
    stage_fd = open((tmp / "stage").c_str(), O_RDONLY | O_DIRECTORY);
    env = std::move(meta::Env::open(tmp / "meta", {kFilesDb, kIdsDb, kEntriesDb, kBlocksDb, kSyncDb, kRestoreDb}).value());
  }
  ~Local() {
    close(root_fd);
    close(stage_fd);
  }
  Local(const Local&) = delete;
  Local& operator=(const Local&) = delete;
  std::string root() { return tmp / "root"; }
  std::string path(const std::string& rel) { return root() + "/" + rel; }
  struct stat st(const std::string& rel) {
    struct stat sb;
    REQUIRE(lstat(path(rel).c_str(), &sb) == 0);
    return sb;
  }
  uint64_t ino(const std::string& rel) { return st(rel).st_ino; }
  // The sync layer's identity of an object (sync.h 4a): number and handle.
  ObjRef obj(const std::string& rel) {
    std::string h = make_handle(AT_FDCWD, path(rel).c_str());
    REQUIRE(!h.empty());
    return ObjRef{ino(rel), h};
  }
  std::unique_ptr<Syncer> syncer(blob::ObjectStore& os, SyncOptions opt = {}) {
    SyncEnv e;
    e.fs = {root_fd, stage_fd, false};
    e.meta = env.get();
    e.objects = &os;
    e.tracker = &tracker;
    auto s = Syncer::open(e, opt);
    REQUIRE(s.is_ok());
    return std::move(s.value());
  }
};

}  // namespace tcfs::sync::testing
