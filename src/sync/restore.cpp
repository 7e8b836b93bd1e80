// sync/restore.cpp — rebuild a tree from the remote image (restore.h).
#include "sync/restore.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <optional>
#include <set>
#include <spdlog/spdlog.h>

#include "sync/chain.h"
#include "sync/follow.h"
#include "sync/stream.h"
#include "util/fault.h"
#include "util/fd.h"
#include "util/handle.h"
#include "util/dir.h"

namespace tcfs::sync {
namespace {

constexpr size_t kBatch = 20000;  // records per LMDB transaction while loading

class Restorer {
 public:
  Restorer(blob::ObjectStore* os, int root_fd, State& st, const RestoreOptions& opt)
      : os_(os), root_(root_fd), st_(st), opt_(opt) {}

  // follow.h 6: a follower's image (already in kRestoreDb and kEntriesDb)
  // becomes the store's tree and synced state, as a restore would leave it.
  Result<RestoreReport> build_image() {
    TCFS_TRY(check_empty());
    auto t = meta::Txn::begin(st_.env(), true);
    if (!t) return t.status();
    auto e = st_.get_u64(*t, "epoch", 0);
    auto h = st_.get(*t, "head");
    if (!e || !h) return !e ? e.status() : h.status();
    rep_.epoch = *e;
    rep_.head = h->value_or("");
    max_boot_ = boot_of(rep_.head);  // the next mount outranks the head's writer
    TCFS_TRY(t->scan(st_.env().db(kRestoreDb), "", [&](std::string_view k, std::string_view) {
      max_id_ = std::max(max_id_, from_be64(k));
      return true;
    }));
    TCFS_TRY(build(*t));
    TCFS_TRY(finish(*t));
    TCFS_TRY(t->commit());
    return rep_;
  }

  Result<RestoreReport> run() {
    TCFS_TRY(check_empty());
    // The newest snapshot that reads back whole, then the journals after it (chain.h 4).
    std::string from;
    std::vector<Skipped> skipped;
    auto snaps = snapshots(*os_);
    if (!snaps) return snaps.status();
    for (const auto& snap : *snaps) {
      if (opt_.stop_at && snap.epoch > opt_.stop_at) continue;  // follow.h 7: a snapshot after the round asked
      std::string head;
      Status st = load(snap.base, &head);
      if (st) st = flush();
      if (st) {
        from = head;
        rep_.snapshot = snap.base;
        break;
      }
      spdlog::warn("restore: snapshot {} unusable ({}); trying an older one", snap.base, st.message());
      TCFS_TRY(reset());
      skipped.push_back({snap.base, snap.epoch, st.what()});
    }
    auto ch = follow(*os_, from, skipped, opt_.settle);  // chain.h 3: a writer may be mid-round
    if (!ch) return ch.status();
    if (opt_.stop_at) TCFS_TRY(stop_at(*ch, from));
    TCFS_TRY(judge(*ch));
    if (from.empty() && ch->journals.empty())
      return Status::error(ENOENT, "the blobbers hold no tcfs tree (no journal)");
    for (size_t i = 0; i < ch->journals.size(); i++) {
      TCFS_TRY(load(ch->journals[i]));
      if (opt_.progress) opt_.progress("journals", i + 1, ch->journals.size());
    }
    TCFS_TRY(flush());
    rep_.journals = ch->journals.size();
    rep_.head = ch->head;
    auto t = meta::Txn::begin(st_.env(), true);
    if (!t) return t.status();
    if (opt_.image_only) {  // follow.h 5: the image is what was loaded; no tree
      TCFS_TRY(st_.put(*t, "epoch", std::to_string(rep_.epoch)));
      TCFS_TRY(st_.put(*t, "head", rep_.head));
      TCFS_TRY(t->commit());
      return rep_;
    }
    TCFS_TRY(build(*t));
    TCFS_TRY(finish(*t));
    TCFS_TRY(t->commit());
    return rep_;
  }

 private:
  // follow.h 7: the walk up to the round asked; what comes after it (a cut
  // included) does not matter then.
  Status stop_at(ChainWalk& ch, const std::string& from) {
    uint64_t start = rep_.epoch;  // a snapshot's epoch, or 0
    if (ch.epoch < opt_.stop_at)
      return Status::error(ENOENT, "round " + std::to_string(opt_.stop_at) + " is not on the blobbers (the chain "
                                       "reaches round " + std::to_string(ch.epoch) + ")");
    if (start > opt_.stop_at) return Status::error(ENOENT, "no snapshot before round " + std::to_string(opt_.stop_at));
    size_t keep = static_cast<size_t>(opt_.stop_at - start);
    if (keep > ch.journals.size()) return Status::error(EIO, "the chain has fewer journals than rounds");
    ch.journals.resize(keep);
    ch.head = keep ? ch.journals.back() : from;
    ch.epoch = opt_.stop_at;
    ch.unreadable.clear();
    return {};
  }

  // restore.h 1 and 2: a cut chain fails the restore, or is accepted out loud.
  Status judge(const ChainWalk& ch) {
    if (ch.whole()) return {};
    std::string what;
    for (const auto& u : ch.unreadable) what += (what.empty() ? "" : "; ") + u;
    std::string reached = ch.head.empty() ? std::string("no round at all")
                                          : "epoch " + std::to_string(ch.epoch) + " (" + ch.head + ")";
    if (!opt_.accept_older) {
      TCFS_TRY(reset());
      spdlog::error("restore: the newest round the blobbers give back is {}, but a later round cannot be read: {}",
                    reached, what);
      return Status::error(EIO, "the newest round the blobbers give back is " + reached +
                                    ", but a later round cannot be read: " + what +
                                    " (the store that wrote it repairs it at its next round or tcfs scrub; "
                                    "--accept-older restores the older round)");
    }
    spdlog::warn("restore: restoring {} as asked (accept older): a later round cannot be read: {}", reached, what);
    rep_.older = true;
    rep_.unreadable = ch.unreadable;
    return {};
  }

  Status check_empty() {
    bool empty = true;
    TCFS_TRY(for_each_entry(root_, ".", [&](const char*, unsigned char) { return empty = false; }, "open store root"));
    if (!empty) return Status::error(ENOTEMPTY, "the store's tree is not empty: restore needs a new store");
    return {};
  }

  // Journal records go into LMDB: objects into the restore db, entries into
  // the entries db (sync.h: the entries db ends up as on the blobbers).
  Status load(const std::string& base, std::string* snapshot_head = nullptr) {
    auto r = StreamReader::open(*os_, base);
    if (!r) return r.status();
    if (snapshot_head) *snapshot_head = r->info().value("head", std::string());
    if (uint64_t b = r->info().value("boot", uint64_t{0}); b > max_boot_) max_boot_ = b;
    rep_.epoch = r->info().value("epoch", rep_.epoch + 1);
    for (;;) {
      auto rec = r->next();
      if (!rec) return rec.status();
      if (!rec->has_value()) break;
      auto d = decode(**rec);
      if (!d) return Status::error(EIO, "journal " + base + ": " + d.status().message());
      TCFS_TRY(apply(*d));
      rep_.records++;
    }
    return {};
  }

  Status apply(const Record& rec) {
    if (!batch_) {
      auto t = meta::Txn::begin(st_.env(), true);
      if (!t) return t.status();
      batch_.emplace(std::move(*t));
    }
    TCFS_TRY(apply_record(st_, *batch_, rec, &max_id_));  // the rules a follower's rounds follow
    if (++in_batch_ >= kBatch) return flush();
    return {};
  }

  // Forgets what a failed snapshot load left.
  Status reset() {
    batch_.reset();
    in_batch_ = 0;
    auto t = meta::Txn::begin(st_.env(), true);
    if (!t) return t.status();
    TCFS_TRY(t->clear(st_.env().db(kRestoreDb)));
    TCFS_TRY(t->clear(st_.env().db(kEntriesDb)));
    max_id_ = kRootId;
    rep_ = RestoreReport{};
    return t->commit();
  }

  Status flush() {
    in_batch_ = 0;
    if (!batch_) return {};
    Status s = batch_->commit();
    batch_.reset();
    return s;
  }

  Result<InodeRec> record(meta::Txn& t, uint64_t id) {
    auto v = t.get(st_.env().db(kRestoreDb), be64(id));
    if (!v) return v.status();
    if (!v->has_value()) return Status::error(EIO, "the remote image names object " + std::to_string(id) +
                                                       " but holds no record of it");
    return decode_inode(**v);
  }

  Status set_attrs(int dirfd, const std::string& name, const InodeRec& r) {
    const char* n = name.empty() ? "" : name.c_str();
    int fl = AT_SYMLINK_NOFOLLOW | (name.empty() ? AT_EMPTY_PATH : 0);
    if (::fchownat(dirfd, n, r.uid, r.gid, fl) != 0) return Status::from_errno("chown " + name);
    if (!S_ISLNK(r.mode)) {
      if (::fchmodat(dirfd, name.empty() ? "." : n, r.mode & 07777, 0) != 0) return Status::from_errno("chmod " + name);
      Fd f(::openat(dirfd, name.empty() ? "." : n, O_PATH | O_NOFOLLOW | O_CLOEXEC));
      std::string p = "/proc/self/fd/" + std::to_string(f.get());
      for (const auto& [xn, xv] : r.xattrs)
        if (::setxattr(p.c_str(), xn.c_str(), xv.data(), xv.size(), 0) != 0)
          spdlog::warn("restore: setxattr {} on {}: {}", xn, name, std::strerror(errno));
    }
    return {};
  }

  Status set_times(int dirfd, const std::string& name, const InodeRec& r) {
    struct timespec ts[2] = {{r.atime_sec, r.atime_nsec}, {r.mtime_sec, r.mtime_nsec}};
    int rc = name.empty() ? ::futimens(dirfd, ts) : ::utimensat(dirfd, name.c_str(), ts, AT_SYMLINK_NOFOLLOW);
    if (rc != 0) return Status::from_errno("set times of " + name);
    return {};
  }

  // Creates (dirfd, name) as object r; false if it already exists elsewhere (a hard link: linked).
  Status create(meta::Txn& t, int dirfd, const std::string& name, const InodeRec& r) {
    auto have = st_.ino_of(t, r.id);
    if (!have) return have.status();
    if (have->has_value()) {  // another name of an object made already
      auto f = st_.file(t, **have);
      if (!f) return f.status();
      Fd o(open_handle(root_, (*f)->handle, O_PATH));
      if (o.get() < 0 || ::linkat(o.get(), "", dirfd, name.c_str(), AT_EMPTY_PATH) != 0)
        return Status::from_errno("link " + name);
      rep_.links++;
      return {};
    }
    const char* n = name.c_str();
    mode_t type = r.mode & S_IFMT;
    int rc = 0;
    if (type == S_IFDIR) {
      rc = ::mkdirat(dirfd, n, 0700);
      rep_.dirs++;
    } else if (type == S_IFREG) {
      int fd = ::openat(dirfd, n, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      rc = fd < 0 ? -1 : ::ftruncate(fd, static_cast<off_t>(r.size));  // a stub: holes of the right size
      if (fd >= 0) ::close(fd);
      rep_.files++;
      rep_.stub_bytes += r.size;
    } else if (type == S_IFLNK) {
      rc = ::symlinkat(r.target.c_str(), dirfd, n);
      rep_.symlinks++;
    } else {
      rc = ::mknodat(dirfd, n, r.mode, static_cast<dev_t>(r.rdev));
      rep_.others++;
    }
    if (rc != 0) return Status::from_errno("create " + name);
    TCFS_TRY(set_attrs(dirfd, name, r));
    FileState f;
    f.id = r.id;
    f.handle = make_handle(dirfd, n);
    if (f.handle.empty()) return Status::error(ENOTSUP, "file handle of " + name + ": not supported here");
    f.rec = r;
    f.stub = type == S_IFREG && r.size > 0;
    struct stat sb;
    if (::fstatat(dirfd, n, &sb, AT_SYMLINK_NOFOLLOW) != 0) return Status::from_errno("stat " + name);
    inos_.emplace_back(sb.st_ino);
    return st_.put_file(t, sb.st_ino, f);
  }

  // Depth first; a directory's times are set after its entries exist.
  Status walk(meta::Txn& t, int dirfd, uint64_t id, int depth) {
    if (depth > 4096) return Status::error(ELOOP, "the remote image nests deeper than 4096 directories");
    auto ents = st_.entries(t, id);
    if (!ents) return ents.status();
    for (const auto& [name, child] : *ents) {
      auto r = record(t, child);
      if (!r) return r.status();
      TCFS_TRY(create(t, dirfd, name, *r));
      if (opt_.progress && ++made_ % 256 == 0) opt_.progress("files", made_, 0);
      if (S_ISDIR(r->mode) && !walked_.count(child)) {
        walked_.insert(child);
        Fd sub(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (sub.get() < 0) return Status::from_errno("open " + name);
        TCFS_TRY(walk(t, sub.get(), child, depth + 1));
      }
      TCFS_TRY(set_times(dirfd, name, *r));  // a directory's after its entries
    }
    return {};
  }

  Status build(meta::Txn& t) {
    auto root = record(t, kRootId);
    if (!root) return root.status();
    walked_.insert(kRootId);
    TCFS_TRY(walk(t, root_, kRootId, 0));
    TCFS_TRY(set_attrs(root_, "", *root));
    TCFS_TRY(set_times(root_, "", *root));
    FileState f;
    f.id = kRootId;
    f.handle = make_handle(root_, "");
    f.rec = *root;
    struct stat sb;
    if (::fstat(root_, &sb) != 0) return Status::from_errno("stat store root");
    inos_.emplace_back(sb.st_ino);
    return st_.put_file(t, sb.st_ino, f);
  }

  // Final ctimes (links and children changed them while building), the
  // block index, and where the chain stands.
  Status finish(meta::Txn& t) {
    for (uint64_t ino : inos_) {
      auto f = st_.file(t, ino);
      if (!f) return f.status();
      if (!f->has_value()) continue;
      Fd o(ino == inos_.back() ? ::dup(root_) : open_handle(root_, (*f)->handle, O_PATH));
      struct stat sb;
      if (o.get() < 0 || ::fstat(o.get(), &sb) != 0) return Status::from_errno("stat restored object");
      (*f)->ctime_sec = sb.st_ctim.tv_sec;
      (*f)->ctime_nsec = static_cast<uint32_t>(sb.st_ctim.tv_nsec);
      for (const auto& b : (*f)->rec.blocks) TCFS_TRY(st_.put_block(t, b));
      TCFS_TRY(st_.put_file(t, ino, **f));
    }
    TCFS_TRY(st_.put(t, "epoch", std::to_string(rep_.epoch)));
    TCFS_TRY(st_.put(t, "head", rep_.head));
    TCFS_TRY(st_.put(t, "next_id", std::to_string(max_id_ + 1)));
    TCFS_TRY(st_.put(t, "boot", std::to_string(max_boot_)));  // the next mount outranks every earlier writer
    TCFS_TRY(st_.put(t, "clean", "1"));
    return t.clear(st_.env().db(kRestoreDb));
  }

  blob::ObjectStore* os_;  // null: building from an image (build_from_image)
  int root_;
  State& st_;
  RestoreOptions opt_;
  RestoreReport rep_;
  std::optional<meta::Txn> batch_;
  size_t in_batch_ = 0;
  uint64_t max_id_ = kRootId, max_boot_ = 0;
  std::set<uint64_t> walked_;
  std::vector<uint64_t> inos_;  // restored objects (the root last)
  uint64_t made_ = 0;           // names made in the tree, for progress
};

}  // namespace

Result<RestoreReport> build_from_image(int root_fd, State& st) {
  Restorer r(nullptr, root_fd, st, RestoreOptions{});  // builds from LMDB alone
  return r.build_image();
}

Result<RestoreReport> restore(blob::ObjectStore& os, int root_fd, State& st, const RestoreOptions& opt) {
  Restorer r(&os, root_fd, st, opt);
  return r.run();
}

Result<bool> rebuild_pending(State& st) {
  auto t = meta::Txn::begin(st.env(), false);
  if (!t) return t.status();
  auto v = st.get(*t, "rebuilding");
  if (!v) return v.status();
  return v->has_value();
}

// follow.h 9.
Result<RestoreReport> rebuild_image(blob::ObjectStore& os, int root_fd, State& st, RestoreOptions opt) {
  opt.image_only = true;
  {
    auto t = meta::Txn::begin(st.env(), true);
    if (!t) return t.status();
    TCFS_TRY(t->clear(st.env().db(kRestoreDb)));
    TCFS_TRY(t->clear(st.env().db(kEntriesDb)));
    TCFS_TRY(st.put(*t, "rebuilding", "1"));
    TCFS_TRY(t->commit());
  }
  if (int f = fault::check("follow.rebuild")) return Status::error(f, "rebuild the image (injected)");
  auto rep = restore(os, root_fd, st, opt);
  if (!rep) return rep.status();
  auto t = meta::Txn::begin(st.env(), true);
  if (!t) return t.status();
  Image img(st);
  TCFS_TRY(record_round(os, img, *t, rep->epoch, rep->head));
  TCFS_TRY(t->del(st.env().db(kSyncDb), "rebuilding"));
  TCFS_TRY(t->commit());  // COMMIT POINT of a rebuild: the image is whole again
  return rep;
}

}  // namespace tcfs::sync
