// util/durable.h — is the filesystem still up after a sync reported success?
//
// Contract: a caller about to acknowledge durability — after fsync,
// fdatasync, syncfs or an LMDB commit returned OK — calls
// still_up(dirfd, path). It opens `path` (relative to dirfd; "." for dirfd
// itself, which must then be a real descriptor, not O_PATH) as a directory
// and closes it. An open failing with EIO means the filesystem shut down:
// the result is EIO, "<what>: the store's filesystem has shut down", and
// the caller must not acknowledge. Any other failure of the open (EMFILE,
// ENOMEM) says nothing about durability and gives OK.
//
// Why: XFS can report success for an fsync that raced with a forced
// shutdown (`xfs_io -x -c shutdown`, or a metadata I/O error): the shutdown
// aborts the log and unpins the inode's log items, and an fsync that then
// finds its inode unpinned forces nothing and returns 0, though its
// changes never reached the log. The shutdown flag is set before that
// abort, and XFS checks it on every open, so a shutdown that began before
// the sync returned is always seen here. Elsewhere the check costs one
// open of a cached directory.
//
// Thread-safety: a plain function; no shared state.
#pragma once

#include <string>

#include "tcfs/status.h"

namespace tcfs {

Status still_up(int dirfd, const char* path, const std::string& what);

}  // namespace tcfs
