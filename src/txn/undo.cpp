// txn/undo.cpp — the undo executor.
//
// Every function here is a check-then-act that leaves the tree unchanged
// when its effect is already in place (DESIGN.md §5 invariant 5). Steps are
// undone last first, so when the step of operation k runs, the tree holds
// what operation k saw right after it ran (or less, if it never ran): the
// paths a step names are valid again, and nothing created by later
// operations is in the way.
#include "txn/undo.h"

#include <dirent.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <set>
#include <string_view>

#include "txn/fsops.h"
#include "util/fault.h"
#include "util/dir.h"
#include "util/metrics.h"

namespace tcfs::txn {
namespace {

constexpr const char* kProgress = "progress";

struct Marker {
  enum Kind { None, Ran, Undone } kind = None;
  uint32_t op = 0;
};

Marker read_marker(int txn_fd) {
  Marker m;
  struct stat st;
  if (txn_fd < 0 || fstatat(txn_fd, kProgress, &st, 0) != 0) return m;
  if (st.st_atim.tv_sec > 0) {
    m.kind = Marker::Undone;
    m.op = static_cast<uint32_t>(st.st_atim.tv_sec - 1);
  } else {
    m.kind = Marker::Ran;
    m.op = static_cast<uint32_t>(st.st_mtim.tv_sec);
  }
  return m;
}

class Undoer {
 public:
  Undoer(const UndoCtx& ctx, const RecoveryRecord& rr, UndoStats& stats) : ctx_(ctx), rr_(rr), stats_(stats) {
    txn_fd_ = openat(ctx.txn_root_fd, std::to_string(rr.id).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  }
  ~Undoer() {
    if (txn_fd_ >= 0) close(txn_fd_);
  }
  Status run(uint32_t upto);

 private:
  Status step(const Step& s);
  Status remove_created(const Step& s);
  Status image_back(const Step& s, bool tree);
  Status undo_rename(const Step& s);
  Status undo_exchange(const Step& s);
  Status restore_inode(const InodeRecord& r);
  Status restore_attrs(int fd, uint32_t type, const Attrs& a);
  bool exists(const std::string& path, struct stat* st = nullptr);
  void did(const std::string& what);
  int need_txn_dir();

  const UndoCtx& ctx_;
  const RecoveryRecord& rr_;
  UndoStats& stats_;
  int txn_fd_ = -1;
};

void Undoer::did(const std::string& what) {
  ++stats_.applied;
  if (ctx_.report) ctx_.report((ctx_.dry_run ? "would " : "") + what);
}

int Undoer::need_txn_dir() {
  if (txn_fd_ < 0 && !ctx_.dry_run) {
    mkdirat(ctx_.txn_root_fd, std::to_string(rr_.id).c_str(), 0700);
    txn_fd_ = openat(ctx_.txn_root_fd, std::to_string(rr_.id).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  }
  return txn_fd_;
}

bool Undoer::exists(const std::string& path, struct stat* st) {
  struct stat tmp;
  std::string name;
  auto dir = open_parent(ctx_.root_fd, path, &name);
  if (!dir) return false;
  return fstatat(dir->get(), name.c_str(), st ? st : &tmp, AT_SYMLINK_NOFOLLOW) == 0;
}

Status Undoer::remove_created(const Step& s) {
  std::string name;
  auto dir = open_parent(ctx_.root_fd, s.path, &name);
  if (!dir) return dir.err() == ENOENT ? Status() : dir.status();
  struct stat st;
  if (fstatat(dir->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    ++stats_.skipped;
    return {};
  }
  did("remove " + s.path + " (created by op " + std::to_string(s.op) + ")");
  if (ctx_.dry_run) return {};
  if (!S_ISDIR(st.st_mode)) {
    if (unlinkat(dir->get(), name.c_str(), 0) != 0 && errno != ENOENT) return Status::from_errno("unlink " + s.path);
    return {};
  }
  if (unlinkat(dir->get(), name.c_str(), AT_REMOVEDIR) == 0 || errno == ENOENT) return {};
  // Not empty: something we cannot account for is inside. Never destroy
  // data: park the directory in txn/<id>/ for a human to look at.
  if (errno != ENOTEMPTY && errno != EEXIST) return Status::from_errno("rmdir " + s.path);
  std::string park = "left-over-op" + std::to_string(s.op);
  if (need_txn_dir() < 0 || renameat(dir->get(), name.c_str(), txn_fd_, park.c_str()) != 0)
    return Status::from_errno("move non-empty " + s.path + " aside");
  spdlog::warn("undo: txn {}: {} was not empty; kept as txn/{}/{}", rr_.id, s.path, rr_.id, park);
  return {};
}

// RelinkVictim (the image linked back: it stays in txn/<id>/ too) and
// RestoreTree (the subtree moved back) put txn/<id>/<image> at s.path.
Status Undoer::image_back(const Step& s, bool tree) {
  if (exists(s.path)) {
    ++stats_.skipped;
    return {};
  }
  std::string image = "txn/" + std::to_string(rr_.id) + "/" + s.image;
  did(std::string(tree ? "restore subtree " : "restore ") + s.path + " from " + image);
  if (ctx_.dry_run) return {};
  std::string name;
  auto dir = open_parent(ctx_.root_fd, s.path, &name);
  if (!dir) return dir.status();
  if (txn_fd_ < 0) return Status::error(ENOENT, "undo image directory txn/" + std::to_string(rr_.id));
  int r = tree ? renameat2(txn_fd_, s.image.c_str(), dir->get(), name.c_str(), RENAME_NOREPLACE)
               : linkat(txn_fd_, s.image.c_str(), dir->get(), name.c_str(), 0);
  if (r != 0) return Status::from_errno(std::string(tree ? "move " : "link ") + image + " back to " + s.path);
  return {};
}

Status Undoer::undo_rename(const Step& s) {
  if (exists(s.path) || !exists(s.path2)) {
    ++stats_.skipped;
    return {};
  }
  did("rename " + s.path2 + " back to " + s.path);
  if (ctx_.dry_run) return {};
  std::string from, to;
  auto dfrom = open_parent(ctx_.root_fd, s.path2, &from);
  if (!dfrom) return dfrom.status();
  auto dto = open_parent(ctx_.root_fd, s.path, &to);
  if (!dto) return dto.status();
  if (renameat2(dfrom->get(), from.c_str(), dto->get(), to.c_str(), RENAME_NOREPLACE) != 0)
    return Status::from_errno("rename " + s.path2 + " back to " + s.path);
  return {};
}

Status Undoer::undo_exchange(const Step& s) {
  struct stat st;
  // id unset: the exchange never ran (its identity is recorded before it).
  if (s.id.ino == 0 || !exists(s.path, &st) || Identity{st.st_dev, st.st_ino} != s.id) {
    ++stats_.skipped;
    return {};
  }
  did("exchange " + s.path + " and " + s.path2 + " back");
  if (ctx_.dry_run) return {};
  std::string a, b;
  auto da = open_parent(ctx_.root_fd, s.path, &a);
  if (!da) return da.status();
  auto db = open_parent(ctx_.root_fd, s.path2, &b);
  if (!db) return db.status();
  if (renameat2(da->get(), a.c_str(), db->get(), b.c_str(), RENAME_EXCHANGE) != 0)
    return Status::from_errno("exchange " + s.path + " and " + s.path2 + " back");
  return {};
}

Status Undoer::step(const Step& s) {
  switch (s.kind) {
    case StepKind::RemoveCreated: return remove_created(s);
    case StepKind::RelinkVictim: return image_back(s, false);
    case StepKind::RestoreTree: return image_back(s, true);
    case StepKind::UndoRename: return undo_rename(s);
    case StepKind::UndoExchange: return undo_exchange(s);
  }
  return Status::error(EINVAL, "unknown undo step");
}

Status Undoer::restore_attrs(int fd, uint32_t type, const Attrs& a) {
  std::string p = fd_path(fd);
  Status st;
  auto keep = [&](bool ok, const char* what) {
    if (!ok && st) st = Status::from_errno(what);
  };
  for (const auto& x : a.xattrs) {
    if (x.present) keep(setxattr(p.c_str(), x.name.c_str(), x.value.data(), x.value.size(), 0) == 0, "setxattr");
    else if (removexattr(p.c_str(), x.name.c_str()) != 0 && errno != ENODATA) keep(false, "removexattr");
  }
  keep(fchownat(fd, "", a.uid, a.gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0, "chown");
  if (type != S_IFLNK) keep(fchmodat(AT_FDCWD, p.c_str(), a.mode, 0) == 0, "chmod");
  struct timespec ts[2] = {{a.atime_sec, a.atime_nsec}, {a.mtime_sec, a.mtime_nsec}};
  keep(utimensat(fd, "", ts, AT_EMPTY_PATH) == 0, "utimensat");
  return st;
}

Status Undoer::restore_inode(const InodeRecord& r) {
  if (r.handle.size() < sizeof(struct file_handle)) return Status::error(ESTALE, "no file handle for " + r.path);
  std::string h = r.handle;  // open_by_handle_at wants a mutable handle
  auto* fh = reinterpret_cast<struct file_handle*>(h.data());
  int flags = r.has_data ? O_RDWR : (r.type == S_IFDIR ? O_RDONLY | O_DIRECTORY : O_PATH);
  Fd fd(open_by_handle_at(ctx_.root_fd, fh, flags | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    if (errno == ESTALE) return Status::error(ESTALE, r.path + " (inode " + std::to_string(r.id.ino) + ") no longer exists");
    return Status::from_errno("open " + r.path + " by handle");
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0 || st.st_ino != r.id.ino) return Status::error(ESTALE, r.path + ": handle names another inode");
  did("restore " + std::string(r.has_data ? "data and " : "") + "attributes of " + r.path);
  if (ctx_.dry_run) return {};
  if (r.has_data) {
    if (txn_fd_ < 0) return Status::error(ENOENT, "undo image directory txn/" + std::to_string(rr_.id));
    Fd img(openat(txn_fd_, r.image.c_str(), O_RDONLY | O_CLOEXEC));
    if (!img) return Status::from_errno("open undo image txn/" + std::to_string(rr_.id) + "/" + r.image);
    Status st = restore_from_pack(img.get(), r.image_off, r.size, fd.get());
    if (!st) return st.wrap("restore data of " + r.path);
  }
  if (r.has_attrs) return restore_attrs(fd.get(), r.type, r.attrs);
  return {};
}

Status Undoer::run(uint32_t upto) {
  // How far did the compound get?
  Marker m = read_marker(txn_fd_);
  int64_t last;  // highest op whose steps must be undone; -1: none ran
  if (m.kind == Marker::None) last = -1;
  else if (m.kind == Marker::Ran && markless(rr_)) last = rr_.steps.empty() ? 0 : rr_.steps.back().op;  // undo.h: never marked
  else if (m.kind == Marker::Ran) last = m.op;
  else last = static_cast<int64_t>(m.op) - 1;
  if (upto != kAllOps) last = std::min<int64_t>(last, upto);
  auto mark_undone = [&](uint32_t op) {
    if (ctx_.dry_run || txn_fd_ < 0 || m.kind == Marker::None) return;
    struct timespec ts[2] = {{static_cast<time_t>(op) + 1, 0}, {0, UTIME_OMIT}};
    utimensat(txn_fd_, kProgress, ts, 0);
  };
  Status first;
  auto note = [&](Status s, const std::string& what) {
    if (s) return;
    ++stats_.failed;
    spdlog::error("undo: txn {}: {}: {}", rr_.id, what, s.message());
    if (ctx_.report) ctx_.report("FAILED " + what + ": " + s.message());
    if (first) first = s;
  };
  int64_t cur = last;  // op whose steps are being undone
  for (auto it = rr_.steps.rbegin(); it != rr_.steps.rend(); ++it) {
    if (static_cast<int64_t>(it->op) > last) continue;
    for (; cur > static_cast<int64_t>(it->op); --cur) mark_undone(static_cast<uint32_t>(cur));
    TCFS_CRASH_POINT("undo.before_step");
    note(step(*it), std::string(step_kind_name(it->kind)) + " " + it->path);
    TCFS_CRASH_POINT("undo.after_step");
  }
  if (m.kind == Marker::None) return first;  // nothing ran: nothing to restore
  for (; cur >= 0; --cur) mark_undone(static_cast<uint32_t>(cur));
  // Data before attributes: writing data changes mtime.
  for (const auto& r : rr_.inodes) note(restore_inode(r), "restore " + r.path);
  TCFS_CRASH_POINT("undo.after_inodes");
  return first;
}

}  // namespace

bool markless(const RecoveryRecord& rr) {
  std::set<std::string_view> paths;
  for (const auto& s : rr.steps)
    if (s.kind != StepKind::RemoveCreated || !paths.insert(s.path).second) return false;
  return true;
}

Result<int> create_progress(int txn_fd, uid_t owner_uid, gid_t owner_gid) {
  int fd = openat(txn_fd, kProgress, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::from_errno("create progress marker");
  struct timespec ts[2] = {{0, 0}, {0, 0}};
  if (fchown(fd, owner_uid, owner_gid) != 0 || futimens(fd, ts) != 0) {
    Status st = Status::from_errno("set up progress marker");
    close(fd);
    return st;
  }
  return fd;
}

Status mark_ran(int progress_fd, uint32_t k) {
  struct timespec ts[2] = {{0, UTIME_OMIT}, {static_cast<time_t>(k), 0}};
  if (futimens(progress_fd, ts) != 0) return Status::from_errno("advance progress marker");
  return {};
}

Status undo(const UndoCtx& ctx, const RecoveryRecord& rr, uint32_t upto, UndoStats& stats) {
  return Undoer(ctx, rr, stats).run(upto);
}

Status remove_txn_dir(int txn_root_fd, uint64_t id) { return remove_tree(txn_root_fd, std::to_string(id)); }

std::vector<uint64_t> list_txn_dirs(int txn_root_fd) {
  std::vector<uint64_t> out;
  (void)for_each_entry(txn_root_fd, ".", [&](const char* name, unsigned char) {
    char* end = nullptr;
    unsigned long long v = strtoull(name, &end, 10);
    if (end && *end == '\0' && name[0] != '\0' && v > 0) out.push_back(v);
    return true;
  });
  return out;
}

namespace {
prometheus::Counter& recovered_counter() {
  static prometheus::Counter& c = metrics::counter("tcfs_compounds_recovered_total",
                                                   "Compounds found cut short (crash, power cut) and rolled back by "
                                                   "recovery.")
                                      .Add({});
  return c;
}
}  // namespace

Status recover_all(const UndoCtx& ctx, meta::Env& env) {
  (void)recovered_counter();  // shown from the start, at 0
  auto rrs = list_rrs(env);
  if (!rrs) return rrs.status();
  for (auto it = rrs->rbegin(); it != rrs->rend(); ++it) {
    UndoStats st;
    if (ctx.report) ctx.report("compound " + std::to_string(it->id) + " (" + it->summary + "):");
    Status s = undo(ctx, *it, kAllOps, st);
    if (s) s = finish_undo(ctx, env, it->id);
    if (!s) return s.wrap("undo of compound " + std::to_string(it->id));
    if (!ctx.dry_run) recovered_counter().Increment();
    if (!ctx.dry_run)
      spdlog::warn("recovery: compound {} ({}) rolled back: {} steps applied, {} already undone", it->id,
                   it->summary, st.applied, st.skipped);
  }
  if (ctx.dry_run) return {};
  for (uint64_t id : list_txn_dirs(ctx.txn_root_fd)) TCFS_TRY(remove_txn_dir(ctx.txn_root_fd, id));
  return {};
}

Status finish_undo(const UndoCtx& ctx, meta::Env& env, uint64_t id) {
  if (ctx.dry_run) return {};
  if (syncfs(ctx.root_fd) != 0) return Status::from_errno("syncfs after undo");
  TCFS_CRASH_POINT("undo.after_sync");
  TCFS_TRY(delete_rrs(env, {id}));
  TCFS_CRASH_POINT("undo.after_delete");
  return remove_txn_dir(ctx.txn_root_fd, id);
}

}  // namespace tcfs::txn
