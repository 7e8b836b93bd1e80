// txn/logged.cpp — a compound's commit through the endurant log (logged.h).
#include "txn/logged.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <unordered_map>

#include "util/durable.h"
#include "util/fd.h"
#include "util/handle.h"

namespace tcfs::txn {

void Logged::add(int fd, uint64_t off, const std::string* data) {
  struct stat sb;
  if (fstat(fd, &sb) != 0) return cannot();
  if (!S_ISREG(sb.st_mode)) return;  // only a regular file's bytes and size are the log's
  std::string h = make_handle(fd, "");
  if (h.empty()) return cannot();
  pieces.push_back({std::move(h), off, data, static_cast<uint64_t>(sb.st_size), sb.st_mtim.tv_sec,
                    static_cast<uint32_t>(sb.st_mtim.tv_nsec)});
}

void Logged::wrote(int fd, uint64_t off, const std::string& data) {
  if (!ok) return;
  bytes += data.size();
  if (bytes > limit) return cannot();
  add(fd, off, &data);
}

void Logged::resized(int fd) {
  if (ok) add(fd, 0, nullptr);
}

void Logged::cannot() {
  ok = false;
  std::vector<Piece>().swap(pieces);
}

namespace {

// log.h 8: a file the log holds records of is made durable by its own
// fdatasync; false when it is gone (nothing to make durable, no Drop).
Result<bool> own_fdatasync(int mount_fd, const std::string& h) {
  Fd fd(open_handle(mount_fd, h, O_RDONLY | O_NOFOLLOW));
  if (!fd) {
    if (errno == ESTALE || errno == ENOENT) return false;  // removed since
    return Status::from_errno("compound commit: reopen a file the endurant log holds");
  }
  if (fdatasync(fd.get()) != 0) return Status::from_errno("compound commit: fdatasync a file the endurant log holds");
  return true;
}

void add_records(const Logged::Piece& p, std::vector<journal::Record>& out) {
  static const std::string none;
  const std::string& d = p.data ? *p.data : none;
  uint64_t at = 0;
  do {  // a size or time change alone is one record with no data
    journal::Record r;
    r.handle = p.handle;
    r.off = p.off + at;
    const uint64_t n = std::min<uint64_t>(Logged::kPiece, d.size() - at);
    r.ref = std::string_view(d).substr(at, n);  // the op's bytes, alive until the commit ends
    r.size = p.size;
    r.mtime_sec = p.mtime_sec;
    r.mtime_nsec = p.mtime_nsec;
    out.push_back(std::move(r));
    at += n;
  } while (at < d.size());
}

}  // namespace

// The pieces from next_ on, as records (logged.h): each file's first piece
// decides whether it is carried by records or made durable on its own.
Status Feed::convert(std::vector<journal::Record>& out) {
  for (; next_ < lg.pieces.size(); ++next_) {
    const auto& p = lg.pieces[next_];
    auto [it, fresh] = own_.try_emplace(p.handle, false);
    // A file whose first change here left it empty is defined whole by
    // its records: older ones replayed first are cut away by them.
    if (fresh && p.size != 0 && log_.live(p.handle)) {
      if (++owned_ > Logged::kMaxOwn)
        return Status::error(EAGAIN, "more than " + std::to_string(Logged::kMaxOwn) + " files the endurant log holds");
      it->second = true;  // its fdatasync and Drop come at the commit (own_durable)
    }
    if (!it->second) add_records(p, out);
  }
  return {};
}

// log.h 8: each file made durable on its own, after the compound's last
// change of it (so at the commit, never when earlier records are sent),
// then its Drop (log.h 7: its older records are void).
Status Feed::own_durable(std::vector<journal::Record>& out) {
  for (const auto& [handle, own] : own_) {
    if (!own) continue;
    auto done = own_fdatasync(mount_fd_, handle);
    if (!done) return done.status();
    if (!*done) continue;  // removed since: nothing to make durable, no Drop
    journal::Record d;
    d.kind = journal::Kind::Drop;
    d.handle = handle;
    out.push_back(std::move(d));
  }
  return {};
}

void Feed::pump(bool all) {
  if (!st_ || !lg.ok || lg.pieces.size() <= next_) return;
  if (!all && lg.bytes - sent_bytes_ < kFeed) return;
  std::vector<journal::Record> recs;
  if ((st_ = convert(recs)) && !recs.empty()) {
    auto t = log_.submit_all(std::move(recs));
    if (t) tickets_.push_back(std::move(*t));
    else st_ = t.status();
  }
  sent_bytes_ = lg.bytes;
}

Status Feed::wait() {
  for (auto& t : tickets_)
    if (auto r = t.wait(); !r && st_) st_ = r.status();
  tickets_.clear();
  return st_;
}

Status Feed::finish() {
  if (!lg.ok) {
    (void)wait();
    return Status::error(EAGAIN, "the compound changed data the endurant log does not carry");
  }
  pump(true);
  std::vector<journal::Record> drops;
  if (st_ && (st_ = own_durable(drops)) && !drops.empty()) {
    auto t = log_.submit_all(std::move(drops));
    if (t) tickets_.push_back(std::move(*t));
    else st_ = t.status();
  }
  return wait();
}

bool orders_all_metadata(int fd) {
  struct statfs sf;
  return fstatfs(fd, &sf) == 0 && sf.f_type == XFS_SUPER_MAGIC;
}

Status force_metadata(int dir_fd) {
  // A timestamp change is always a logged transaction; fsync of the
  // directory forces XFS's log up to it, and so over everything before.
  if (futimens(dir_fd, nullptr) != 0) return Status::from_errno("compound commit: touch txn directory");
  if (fsync(dir_fd) != 0) return Status::from_errno("compound commit: force the store's log");
  return still_up(dir_fd, ".", "compound commit");  // util/durable.h
}

}  // namespace tcfs::txn
