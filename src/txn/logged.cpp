// txn/logged.cpp — a compound's commit through the endurant log (logged.h).
#include "txn/logged.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <map>

#include "util/durable.h"
#include "util/fd.h"
#include "util/handle.h"

namespace tcfs::txn {

void Logged::wrote(int fd, uint64_t off, const std::string& data) {
  if (!ok || data.empty()) return;
  std::string h = make_handle(fd, "");
  bytes += data.size();
  if (h.empty() || bytes > limit) return cannot();
  pieces.push_back({std::move(h), off, &data});
}

void Logged::resized(int fd) {
  if (!ok) return;
  std::string h = make_handle(fd, "");
  if (h.empty()) return cannot();
  pieces.push_back({std::move(h), 0, nullptr});
}

void Logged::cannot() {
  ok = false;
  std::vector<Piece>().swap(pieces);
}

namespace {

struct Now {
  bool gone = false;  // its handle is stale: nothing to put back
  bool own = false;   // live in the log (log.h 8): its own fdatasync and a Drop
  struct stat sb {};
};

// The file's size and mtime after every operation, or its own fdatasync.
Result<Now> now_of(int mount_fd, const journal::Log& log, const std::string& h) {
  Now n;
  n.own = log.live(h);
  Fd fd(open_handle(mount_fd, h, (n.own ? O_RDONLY : O_PATH) | O_NOFOLLOW));
  if (!fd) {
    if (errno == ESTALE || errno == ENOENT) return n.gone = true, n;  // removed since
    return Status::from_errno("compound commit: reopen a written file");
  }
  if (n.own && fdatasync(fd.get()) != 0) return Status::from_errno("compound commit: fdatasync a file the log holds");
  if (fstat(fd.get(), &n.sb) != 0) return Status::from_errno("compound commit: stat a written file");
  return n;
}

void add_pieces(const Logged::Piece& p, const struct stat& sb, std::vector<journal::Record>& out) {
  static const std::string none;
  const std::string& d = p.data ? *p.data : none;
  uint64_t at = 0;
  do {  // a size change alone is one record with no data
    journal::Record r;
    r.handle = p.handle;
    r.off = p.off + at;
    const uint64_t n = std::min<uint64_t>(Logged::kPiece, d.size() - at);
    r.data.assign(d, at, n);
    r.size = static_cast<uint64_t>(sb.st_size);
    r.mtime_sec = sb.st_mtim.tv_sec;
    r.mtime_nsec = static_cast<uint32_t>(sb.st_mtim.tv_nsec);
    out.push_back(std::move(r));
    at += n;
  } while (at < d.size());
}

}  // namespace

Result<std::vector<journal::Record>> records(int mount_fd, const journal::Log& log, const Logged& lg) {
  std::map<std::string, Now> now;
  std::vector<journal::Record> out;
  for (const auto& p : lg.pieces) {
    auto it = now.find(p.handle);
    if (it == now.end()) {
      auto n = now_of(mount_fd, log, p.handle);
      if (!n) return n.status();
      it = now.emplace(p.handle, *n).first;
      if (n->own && !n->gone) {  // log.h 7: its older records are void, it is durable on its own
        journal::Record d;
        d.kind = journal::Kind::Drop;
        d.handle = p.handle;
        out.push_back(std::move(d));
      }
    }
    if (!it->second.gone && !it->second.own) add_pieces(p, it->second.sb, out);
  }
  return out;
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
