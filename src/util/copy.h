// util/copy.h — copying a byte range between descriptors.
//
// Contract: copy_range() copies len bytes (-1: to EOF) from in@in_off to
// out@out_off with copy_file_range (reflinks or server-side copies where
// the filesystem can), falling back to read/write when it cannot (pipes,
// two filesystems). Returns the bytes copied (fewer at EOF); an error
// names the syscall that failed.
//
// Thread-safety: a plain function; the descriptors are the caller's.
#pragma once

#include <cstdint>

#include "tcfs/status.h"

namespace tcfs {

Result<int64_t> copy_range(int in, int64_t in_off, int out, int64_t out_off, int64_t len);

}  // namespace tcfs
