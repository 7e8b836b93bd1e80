// util/path.h — lexical path relations.
//
// Contract: path_under(path, dir) is true when the absolute, lexically
// normalised `path` is `dir` or lies below it ("/" holds every absolute
// path). Nothing is resolved on disk: callers pass realpath()'d paths.
//
// Thread-safety: pure functions.
#pragma once

#include <string>

namespace tcfs {

inline bool path_under(const std::string& path, const std::string& dir) {
  if (dir == "/") return !path.empty() && path[0] == '/';
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/');
}

}  // namespace tcfs
