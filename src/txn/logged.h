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
//    landed) and each size or mtime change without data (truncate, create
//    with truncate, a whole-file reflink over it, a setattr), each with the
//    file's size and mtime just after it: every operation that changes a
//    regular file's size or mtime adds a piece, so its last piece carries
//    its final ones. A change whose bytes it does not hold — a write from a
//    passed descriptor, a copy that is not a whole-file reflink — or more
//    than `limit` bytes in all makes it unusable (ok false, its pieces
//    dropped): the compound commits with syncfs.
//  * Feed turns the pieces into log records of at most kPiece bytes
//    of data, in order, each with its piece's size and mtime; a replay
//    applies them in order, so the file ends with its final ones (a
//    record of a file removed since is skipped by the replay: its handle
//    is stale, or names the victim kept in txn/<id>/). A file the log already holds
//    records of (live, log.h 8) gets none either: older records replayed
//    before ours could put back bytes the compound removed (a truncate, a
//    reflink over it) where ours do not cover them. It is made durable by
//    its own fdatasync instead, and gets a Drop record (log.h 7) — unless
//    its first piece leaves it empty (a truncate to 0, a write with
//    truncate): then its records define it whole, and older ones replayed
//    first are cut away. More than kMaxOwn such files: EAGAIN (the
//    compound commits with syncfs, which is cheaper than their fsyncs).
//  * force_metadata(dir_fd) makes XFS's log durable up to now: a
//    timestamp change of dir_fd (always a logged transaction), then its
//    fsync, then still_up() (util/durable.h).
//
// Thread-safety: a Logged and its Feed belong to one compound (one
// thread); the functions are stateless.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "journal/log.h"
#include "tcfs/status.h"

namespace tcfs::txn {

struct Logged {
  static constexpr uint64_t kPiece = 256 << 10;  // data bytes per record at most
  static constexpr unsigned kMaxOwn = 16;          // files made durable on their own, at most (records())

  struct Piece {
    std::string handle;
    uint64_t off = 0;
    const std::string* data = nullptr;  // the op's inline bytes (null: a size or time change only)
    uint64_t size = 0;                  // the file's size and mtime just after this change
    int64_t mtime_sec = 0;
    uint32_t mtime_nsec = 0;
  };
  bool ok = true;
  uint64_t limit = 0;  // bytes of data at most
  uint64_t bytes = 0;
  std::vector<Piece> pieces;

  void wrote(int fd, uint64_t off, const std::string& data);  // inline bytes written at off
  void resized(int fd);  // a size or mtime change without data (of a regular file; others are ignored)
  void cannot();         // a change the log cannot carry
 private:
  void add(int fd, uint64_t off, const std::string* data);
};

// Feeds one compound's pieces to the log while its operations run: once
// the pieces not yet sent hold kFeed bytes of data, pump() turns them into
// records (as described above) and submits them, so the log writes them
// while the next operations run; finish() sends the rest, makes the files
// carried on their own durable (only then: a later operation may change
// them again) with their Drops, and waits until all are durable. An error stops the feed and finish() returns it (EAGAIN
// for more than kMaxOwn files, or when the Logged is no longer ok): the
// compound then commits with syncfs, which retires what was sent. Records
// sent for a compound that is then rolled back must be retired before its
// RR goes (txn.h invariant 14): wait(), then syncfs and a checkpoint.
class Feed {
 public:
  // Data bytes per submission. A quarter of a batch: what is still in
  // flight at the commit, for it to wait for, is small (1,000 new 4 KiB
  // files: the commit's append 1.3 ms with 1 MiB, 0.5 ms with 256 KiB).
  static constexpr uint64_t kFeed = 256 << 10;
  Feed(int mount_fd, journal::Log& log, uint64_t limit) : mount_fd_(mount_fd), log_(log) { lg.limit = limit; }
  Logged lg;  // what the operations changed
  void pump(bool all = false);
  Status finish();
  Status wait();  // what was sent is durable (or the feed's error)
  bool sent() const { return next_ > 0; }

 private:
  Status convert(std::vector<journal::Record>& out);
  Status own_durable(std::vector<journal::Record>& out);
  int mount_fd_;
  journal::Log& log_;
  std::unordered_map<std::string, bool> own_;  // per file: made durable on its own (log.h 8)
  unsigned owned_ = 0;
  size_t next_ = 0;           // the first piece not yet sent
  uint64_t sent_bytes_ = 0;   // Logged::bytes when pieces were last sent
  std::vector<journal::Log::Ticket> tickets_;
  Status st_;
};

// True when fd lies on a filesystem whose log force orders all metadata (XFS).
bool orders_all_metadata(int fd);
Status force_metadata(int dir_fd);

}  // namespace tcfs::txn
