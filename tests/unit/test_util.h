// Shared helpers for the unit tests: a private temp directory that is
// removed when the test case ends, pass or fail.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/tcfs-unit.XXXXXX";
    char* p = mkdtemp(tmpl);
    path = p ? p : "";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string operator/(const std::string& s) const { return path + "/" + s; }
};
