// fuse/fs_journal.cpp — fsync through the endurant log (journal/log.h).
//
// Design note (numbered; cited as "fs_journal.cpp N"):
//  1. A WRITE request that succeeded records its range on the inode
//     (note_write) before its reply, so every write acknowledged before an
//     fsync is among the ranges that fsync finds. Any other change of the
//     file (mark_data, mark_attr: truncate, fallocate, setattr, a copy)
//     sets jother: the log does not carry it; a setattr of the mtime (and
//     ctime) alone does not, since every record carries the file's mtime
//     as the fsync reads it (the writeback cache sends the kernel's times
//     so, just before its fsync); it sets jtimes, so an fsync with no
//     range still writes a record (no data: the size and mtime). So do
//     more than kMaxLogged bytes or kMaxRanges ranges, and so does a new Inode (its history
//     before it was made is not known: its first fsync is the file's own).
//  2. fsync with only WRITE ranges: their bytes are read back from the
//     backing file, with its size and mtime, into records appended to the
//     log as one group; the fsync is acknowledged once they are durable
//     (log.h 3). The data is in the backing file already; a checkpoint
//     makes it durable there later (log.h 4).
//  3. fsync with jother (or a file without a handle): the backing file's
//     own fsync/fdatasync, then, if the file has records the log has not
//     retired, a Drop record (log.h 7), so no replay puts back older data
//     over what this fsync made durable. Whether it has is the log's
//     answer (log.h 8), which also knows the records a compound committed
//     through the log wrote (txn.h 14). A failed fsync or append puts the
//     ranges back: the next fsync tries again.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <spdlog/spdlog.h>

#include "fuse/fs.h"

namespace tcfs::fusefs {
namespace {

constexpr uint64_t kMaxLogged = 512 << 10;  // fs_journal.cpp 1
constexpr size_t kMaxRanges = 64;

using Ranges = std::vector<std::pair<uint64_t, uint64_t>>;

// Merges a range into the list (an extension of the last one in place).
void add_range(Ranges& r, uint64_t off, uint64_t end) {
  if (!r.empty() && off <= r.back().second && end >= r.back().first) {
    r.back().first = std::min(r.back().first, off);
    r.back().second = std::max(r.back().second, end);
    return;
  }
  r.emplace_back(off, end);
}

void put_back(Inode& in, const Ranges& ranges, bool other) {
  MutexLock g(in.jmu);
  for (const auto& [a, b] : ranges) add_range(in.jranges, a, b), in.jbytes += b - a;
  in.jother = in.jother || other;
}

// fs_journal.cpp 2: the records of ranges, read back now.
// times: the mtime changed alone: a record with no data if no range gives
// one (every record carries the mtime, so one with data is enough).
Result<std::vector<journal::Record>> records_of(const Inode& in, int fd, const Ranges& ranges, bool times) {
  struct stat sb;
  if (fstat(fd, &sb) != 0) return Status::from_errno("fsync: stat");
  std::vector<journal::Record> recs;
  for (const auto& [a, b] : ranges) {
    const uint64_t size = static_cast<uint64_t>(sb.st_size);
    if (a >= size) continue;  // cut since (a truncate also set jother)
    journal::Record r;
    r.handle = in.handle;
    r.off = a;
    r.data.resize(static_cast<size_t>(std::min(b, size) - a));
    size_t got = 0;
    while (got < r.data.size()) {
      ssize_t n = pread(fd, r.data.data() + got, r.data.size() - got, static_cast<off_t>(a + got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::from_errno("fsync: read back");
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    r.data.resize(got);
    recs.push_back(std::move(r));
  }
  if (times && recs.empty()) {  // no data to carry the mtime: a record of its own
    journal::Record r;
    r.handle = in.handle;
    recs.push_back(std::move(r));
  }
  if (fstat(fd, &sb) != 0) return Status::from_errno("fsync: stat");  // the size and mtime after the reads
  for (auto& r : recs) {
    r.size = static_cast<uint64_t>(sb.st_size);
    r.mtime_sec = sb.st_mtim.tv_sec;
    r.mtime_nsec = static_cast<uint32_t>(sb.st_mtim.tv_nsec);
  }
  return recs;
}

}  // namespace

void Fs::note_write(fuse_ino_t ino, uint64_t off, uint64_t n) {  // fs_journal.cpp 1
  if (!hooks_.log || n == 0) return;
  Inode& in = table_->get(ino);
  MutexLock g(in.jmu);
  if (in.jother) return;
  add_range(in.jranges, off, off + n);
  in.jbytes += n;
  if (in.jbytes > kMaxLogged || in.jranges.size() > kMaxRanges) {
    in.jother = true;
    in.jranges.clear();
    in.jbytes = 0;
  }
}

void Fs::note_times(fuse_ino_t ino) {  // fs_journal.cpp 1
  if (!hooks_.log) return;
  Inode& in = table_->get(ino);
  MutexLock g(in.jmu);
  in.jtimes = true;
}

void Fs::note_other(fuse_ino_t ino) {  // fs_journal.cpp 1
  if (!hooks_.log) return;
  Inode& in = table_->get(ino);
  MutexLock g(in.jmu);
  in.jother = true;
  in.jranges.clear();
  in.jbytes = 0;
}

Status Fs::fsync_file(fuse_ino_t ino, int fd, bool datasync) {
  auto own = [&] { return (datasync ? fdatasync(fd) : fsync(fd)) == 0 ? Status() : Status::error(errno); };
  if (!hooks_.log) return own();
  Inode& in = table_->get(ino);
  Ranges ranges;
  bool other, times;
  {
    MutexLock g(in.jmu);
    ranges.swap(in.jranges);
    other = in.jother || in.handle.empty();
    times = in.jtimes;
    in.jother = in.jtimes = false;
    in.jbytes = 0;
  }
  if (other) {  // fs_journal.cpp 3
    Status st = own();
    if (st && hooks_.log->live(in.handle)) {  // log.h 8 (a compound's records count too)
      journal::Record d;
      d.kind = journal::Kind::Drop;
      d.handle = in.handle;
      auto r = hooks_.log->append({std::move(d)});
      st = r ? Status() : r.status();
    }
    if (!st) put_back(in, ranges, true);
    return st;
  }
  if (ranges.empty() && !times) return {};  // nothing since it was last made durable
  auto recs = records_of(in, fd, ranges, times);
  Result<uint64_t> seq = recs ? hooks_.log->append(std::move(*recs)) : Result<uint64_t>(recs.status());  // log.h 8: live
  if (!seq) {  // the file's own fsync instead (3)
    spdlog::warn("fsync: node {}: the endurant log failed ({}); the file's own fsync instead", ino,
                 seq.status().message());
    put_back(in, ranges, true);
    return fsync_file(ino, fd, datasync);
  }
  return {};
}

}  // namespace tcfs::fusefs
