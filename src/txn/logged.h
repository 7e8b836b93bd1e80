// txn/logged.h — a compound made durable through the endurant log instead
// of a syncfs of the whole store (txn.h invariant 14, journal/log.h 8).
//
// Why it is enough, on XFS: the filesystem's log is one ordered sequence,
// so forcing it up to a transaction made after the compound's last
// operation makes every metadata change of the compound durable (creates,
// names, modes, xattrs, sizes set by truncate, reflink remaps). What the
// log force does not cover is file data still in the page cache (and the
// on-disk size that follows it): those bytes go into the endurant log as
// records, with each file's final size and mtime, and a replay after a
// crash puts them back (journal/store_log.h). Other filesystems do not
// order their logs so (btrfs logs per inode at fsync), so only a store on
// XFS commits this way; elsewhere, and for data the log cannot carry, the
// compound commits with syncfs as before.
//
// Contract:
//  * Logged collects, while the operations run, the inline bytes each
//    write put in a regular file (by file handle, at the offset they
//    landed) and each size change without data (truncate, create with
//    truncate). A change whose bytes it does not hold — a write from a
//    passed descriptor, a copy that is not a whole-file reflink — or more
//    than `limit` bytes in all makes it unusable (ok false, its pieces
//    dropped): the compound commits with syncfs.
//  * records() turns the pieces into log records of at most kPiece bytes
//    of data, each carrying its file's size and mtime as they are now
//    (after every operation), reading them through the handle; a file gone
//    since (its handle stale) has no records. A file the log already holds
//    records of (live, log.h 8) gets none either: older records replayed
//    before ours could put back bytes the compound removed (a truncate, a
//    reflink over it) where ours do not cover them. It is made durable by
//    its own fdatasync instead, and gets a Drop record (log.h 7).
//  * force_metadata(dir_fd) makes XFS's log durable up to now: a
//    timestamp change of dir_fd (always a logged transaction), then its
//    fsync, then still_up() (util/durable.h).
//
// Thread-safety: a Logged belongs to one compound (one thread); the
// functions are stateless.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "journal/log.h"
#include "tcfs/status.h"

namespace tcfs::txn {

struct Logged {
  static constexpr uint64_t kPiece = 256 << 10;  // data bytes per record at most

  struct Piece {
    std::string handle;
    uint64_t off = 0;
    const std::string* data = nullptr;  // the op's inline bytes (null: a size change only)
  };
  bool ok = true;
  uint64_t limit = 0;  // bytes of data at most
  uint64_t bytes = 0;
  std::vector<Piece> pieces;

  void wrote(int fd, uint64_t off, const std::string& data);  // inline bytes written at off
  void resized(int fd);                                         // a size change without data
  void cannot();                                                // a change the log cannot carry
};

Result<std::vector<journal::Record>> records(int mount_fd, const journal::Log& log, const Logged& lg);

// True when fd lies on a filesystem whose log force orders all metadata (XFS).
bool orders_all_metadata(int fd);
Status force_metadata(int dir_fd);

}  // namespace tcfs::txn
