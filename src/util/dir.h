// util/dir.h — the one way the daemon lists a directory.
//
// Contract:
//  * for_each_entry(dirfd, path, fn) opens `path` relative to dirfd (".":
//    dirfd's own directory; dirfd may be an O_PATH fd or AT_FDCWD) as a new
//    descriptor, so the caller's fd and its offset are never touched, and
//    calls fn(name, d_type) for every entry but "." and "..", in readdir
//    order, until fn returns false. The stream is closed on every way out,
//    an exception thrown by fn included.
//  * Errors carry the errno of opening the directory or of readdir; the
//    message is the caller's (`what`), e.g. "open directory a/b".
//  * list_names(): every name, unsorted.
//
// Thread-safety: plain functions; no shared state.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "tcfs/status.h"

namespace tcfs {

using EntryFn = std::function<bool(const char* name, unsigned char type)>;  // type: DT_*

Status for_each_entry(int dirfd, const char* path, const EntryFn& fn, const std::string& what = "list directory");
Result<std::vector<std::string>> list_names(int dirfd, const char* path = ".",
                                            const std::string& what = "list directory");

}  // namespace tcfs
