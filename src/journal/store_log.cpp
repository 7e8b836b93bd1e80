// journal/store_log.cpp — recovery into the backing files (store_log.h).
#include "journal/store_log.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "util/durable.h"
#include "util/fault.h"
#include "util/fd.h"
#include "util/handle.h"

namespace tcfs::journal {
namespace {

Status apply_one(int mount_fd, const Record& r, Replayed& rep) {
  Fd fd(open_handle(mount_fd, r.handle, O_WRONLY | O_NOFOLLOW));
  if (!fd) {
    if (errno == ESTALE || errno == ENOENT) return rep.skipped++, Status();  // removed since
    return Status::from_errno("endurant log: replay seq " + std::to_string(r.seq) + ": open the file");
  }
  size_t done = 0;
  while (done < r.data.size()) {
    ssize_t n = ::pwrite(fd.get(), r.data.data() + done, r.data.size() - done, static_cast<off_t>(r.off + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::from_errno("endurant log: replay seq " + std::to_string(r.seq) + ": write");
    done += static_cast<size_t>(n);
  }
  struct stat sb;
  if (::fstat(fd.get(), &sb) != 0) return Status::from_errno("endurant log: replay: stat");
  if (static_cast<uint64_t>(sb.st_size) != r.size && ::ftruncate(fd.get(), static_cast<off_t>(r.size)) != 0)
    return Status::from_errno("endurant log: replay seq " + std::to_string(r.seq) + ": set the size");
  timespec ts[2] = {{0, UTIME_OMIT}, {r.mtime_sec, static_cast<long>(r.mtime_nsec)}};
  if (::futimens(fd.get(), ts) != 0) return Status::from_errno("endurant log: replay: set the mtime");
  rep.applied++;
  return {};
}

}  // namespace

Options store_options(const std::string& store_path, const std::string& store_id, uint64_t total_bytes) {
  Options o;
  o.dir = store_path + "/journal";
  o.store_id = store_id;
  o.segments = 4;
  o.segment_bytes = std::max<uint64_t>(total_bytes / 4 / kBlock * kBlock, kMinSegment);
  struct stat sb;
  if (::stat((o.dir + "/seg-0").c_str(), &sb) == 0 && sb.st_size % kBlock == 0 &&
      static_cast<uint64_t>(sb.st_size) >= kMinSegment)
    o.segment_bytes = static_cast<uint64_t>(sb.st_size);
  return o;
}

bool has_log(const std::string& store_path) {
  struct stat sb;
  return ::stat((store_path + "/journal/seg-0").c_str(), &sb) == 0;
}

Result<std::unique_ptr<Log>> open_store_log(const Options& o, int mount_fd, Replayed* report) {
  Replayed rep;
  auto rec = recover(o, [&](const Record& r) {
    Status st = apply_one(mount_fd, r, rep);
    TCFS_CRASH_POINT("journal.replay_record");
    return st;
  });
  if (!rec) return rec.status();
  rep.log = *rec;
  if (rep.applied || rep.skipped) {
    if (::syncfs(mount_fd) != 0) return Status::from_errno("endurant log: syncfs after replay");
    TCFS_TRY(still_up(mount_fd, ".", "endurant log replay"));
    spdlog::warn("endurant log {}: {} records replayed into the store, {} of removed files skipped{}", o.dir,
                 rep.applied, rep.skipped,
                 rec->torn_bytes ? ", a torn tail of " + std::to_string(rec->torn_bytes) + " bytes dropped" : "");
    TCFS_CRASH_POINT("journal.after_replay");
  }
  auto log = Log::open(o, *rec);
  if (!log) {  // what the log held is in the store and synced: retired by removing its segments (log.h 6)
    for (unsigned i = 0; i < o.segments; i++) ::unlink((o.dir + "/" + seg_name(i)).c_str());
    Fd dir(::open(o.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir) ::fsync(dir.get());
    rep.cannot_keep = true;
    if (report) *report = rep;
    return log.status().wrap("endurant log " + o.dir + ": cannot make its segments");
  }
  if (rec->last_seq > rec->ckpt) TCFS_TRY((*log)->checkpointed(rec->last_seq));  // log.h 4: nothing live left
  if (report) *report = rep;
  return log;
}

}  // namespace tcfs::journal
