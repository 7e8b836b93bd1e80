// txn/fsops.h — small filesystem helpers shared by the executor and undo.
//
// Contract: paths are relative to a root directory fd and are resolved with
// openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), so nothing escapes the
// root; with `no_symlinks` any symlink on the way is an error (ELOOP):
// canonical paths from the planner never contain one. Every function returns
// an owned fd (Fd closes it) or a Status naming the path.
//
// Thread-safety: stateless; permission checks use the calling thread's
// credentials (util/creds.h).
#pragma once

#include <unistd.h>

#include <string>
#include <utility>

#include "tcfs/status.h"
#include "util/copy.h"
#include "util/fd.h"

namespace tcfs::txn {

using tcfs::Fd;  // util/fd.h

Result<Fd> open_beneath(int root_fd, const std::string& path, int flags, unsigned mode = 0, bool no_symlinks = true);
// "a/b/c" -> ("a/b", "c"); "c" -> ("", "c").
std::pair<std::string, std::string> split_parent(const std::string& path);
// The parent directory of path as an O_PATH fd, and the final name.
Result<Fd> open_parent(int root_fd, const std::string& path, std::string* name, bool no_symlinks = true);
// "/proc/self/fd/N".
std::string fd_path(int fd);
// Undo images of one compound live in one pack file. add_to_pack()
// appends all of src at the next block boundary at or after *pack_end
// (FICLONERANGE when reflink is true and it works, else a copy), sets
// *off and *size to where it went and how long it is, and advances
// *pack_end; *copied becomes true when it copied (page-cache bytes that a
// log force does not make durable) instead of cloning. restore_from_pack() puts `size` bytes at `off` of the pack
// back into dst (cloning the block-aligned part where possible) and
// truncates dst to `size`.
Status add_to_pack(int src, int pack, bool reflink, uint64_t* pack_end, uint64_t* off, uint64_t* size, bool* copied);
Status restore_from_pack(int pack, uint64_t off, uint64_t size, int dst);
// Removes dirfd/name and everything below it.
Status remove_tree(int dirfd, const std::string& name);

}  // namespace tcfs::txn
