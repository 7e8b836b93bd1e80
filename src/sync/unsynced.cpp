// sync/unsynced.cpp — the changes after the last round, copied out
// (unsynced.h).
#include "sync/unsynced.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "util/copy.h"
#include "util/dir.h"
#include "util/fd.h"
#include "util/handle.h"

namespace tcfs::sync {
namespace {

class Exporter {
 public:
  Exporter(int root, State& st, meta::Txn& t, int out) : root_(root), st_(st), t_(t), out_(out) {}

  Status run(UnsyncedReport* rep) {
    if (mkdirat(out_, "tree", 0755) != 0) return Status::from_errno("create tree/ in the export directory");
    tree_ = Fd(openat(out_, "tree", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    manifest_ = fdopen(openat(out_, "manifest.txt", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644), "w");
    if (!tree_ || !manifest_) return Status::from_errno("create the export directory's files");
    Status s = walk_local(root_, "");
    if (s) s = walk_synced(kRootId, "");
    if (fclose(manifest_) != 0 && s) s = Status::from_errno("write manifest.txt");
    manifest_ = nullptr;
    *rep = rep_;
    return s;
  }

 private:
  // What the tree holds that the last round did not capture.
  Status walk_local(int dfd, const std::string& rel) {
    std::vector<std::pair<std::string, unsigned char>> names;
    TCFS_TRY(for_each_entry(dfd, ".", [&](const char* n, unsigned char ty) {
      names.emplace_back(n, ty);
      return true;
    }, "list " + (rel.empty() ? std::string("/") : rel)));
    for (const auto& [name, ty] : names) {
      std::string path = rel.empty() ? name : rel + "/" + name;
      struct stat sb;
      if (fstatat(dfd, name.c_str(), &sb, AT_SYMLINK_NOFOLLOW) != 0) return Status::from_errno("stat " + path);
      auto f = st_.file_of(t_, ObjRef{sb.st_ino, make_handle(dfd, name.c_str())});
      if (!f) return f.status();
      bool fresh = !f->has_value();
      bool changed = !fresh && ((*f)->ctime_sec != sb.st_ctim.tv_sec ||
                                (*f)->ctime_nsec != static_cast<uint32_t>(sb.st_ctim.tv_nsec));
      if (S_ISDIR(sb.st_mode)) {
        Fd sub(openat(dfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!sub) return Status::from_errno("open " + path);
        uint64_t before = rep_.added + rep_.changed;
        TCFS_TRY(walk_local(sub.get(), path));
        if (fresh && rep_.added + rep_.changed == before) {  // an empty new directory
          TCFS_TRY(make_dirs(path, sb.st_mode & 07777));
          line("new", path + "/");
          rep_.added++;
        }
        continue;
      }
      if (!fresh && !changed) continue;
      TCFS_TRY(copy_out(dfd, name, path, sb));
      line(fresh ? "new" : "changed", path);
      (fresh ? rep_.added : rep_.changed)++;
    }
    return {};
  }

  // Synced names the tree no longer has.
  Status walk_synced(uint64_t id, const std::string& rel) {
    auto ents = st_.entries(t_, id);
    if (!ents) return ents.status();
    for (const auto& [name, child] : *ents) {
      std::string path = rel.empty() ? name : rel + "/" + name;
      struct stat sb;
      if (fstatat(root_, path.c_str(), &sb, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT && errno != ENOTDIR) return Status::from_errno("stat " + path);
        line("removed", path);
        rep_.removed++;
        continue;
      }
      if (S_ISDIR(sb.st_mode)) TCFS_TRY(walk_synced(child, path));
    }
    return {};
  }

  Status make_dirs(const std::string& path, mode_t mode) {
    size_t at = 0;
    for (;;) {
      size_t slash = path.find('/', at);
      std::string part = path.substr(0, slash);
      if (mkdirat(tree_.get(), part.c_str(), slash == std::string::npos ? mode | 0700 : 0755) != 0 && errno != EEXIST)
        return Status::from_errno("create " + part + " in the export");
      if (slash == std::string::npos) return {};
      at = slash + 1;
    }
  }

  Status copy_out(int dfd, const std::string& name, const std::string& path, const struct stat& sb) {
    if (auto slash = path.rfind('/'); slash != std::string::npos) TCFS_TRY(make_dirs(path.substr(0, slash), 0755));
    if (S_ISLNK(sb.st_mode)) {
      std::string target(static_cast<size_t>(sb.st_size) + 1, '\0');
      ssize_t n = readlinkat(dfd, name.c_str(), target.data(), target.size());
      if (n < 0) return Status::from_errno("read link " + path);
      target.resize(static_cast<size_t>(n));
      if (symlinkat(target.c_str(), tree_.get(), path.c_str()) != 0) return Status::from_errno("copy link " + path);
      return {};
    }
    if (!S_ISREG(sb.st_mode)) return {};  // devices, fifos, sockets: listed, nothing to copy
    Fd in(openat(dfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    Fd out(openat(tree_.get(), path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, sb.st_mode & 07777));
    if (!in || !out) return Status::from_errno("copy " + path);
    auto n = copy_range(in.get(), 0, out.get(), 0, -1);  // across filesystems too
    if (!n) return n.status().wrap("copy " + path);
    rep_.bytes += static_cast<uint64_t>(*n);
    struct timespec ts[2] = {sb.st_atim, sb.st_mtim};
    futimens(out.get(), ts);
    return {};
  }

  void line(const char* what, const std::string& path) { fprintf(manifest_, "%s %s\n", what, path.c_str()); }

  int root_;
  State& st_;
  meta::Txn& t_;
  int out_;
  Fd tree_;
  FILE* manifest_ = nullptr;
  UnsyncedReport rep_;
};

}  // namespace

Result<UnsyncedReport> export_unsynced(int root_fd, State& st, int out_fd) {
  auto t = meta::Txn::begin(st.env(), false);
  if (!t) return t.status();
  UnsyncedReport rep;
  auto e = st.get_u64(*t, "epoch", 0);
  if (!e) return e.status();
  Exporter x(root_fd, st, *t, out_fd);
  TCFS_TRY(x.run(&rep));
  rep.epoch = *e;
  return rep;
}

}  // namespace tcfs::sync
