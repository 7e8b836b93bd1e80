#include "fuse/creds.h"

#include <grp.h>
#include <sched.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "util/creds.h"

namespace tcfs::fusefs {
namespace {

void set_ids(uid_t uid, gid_t gid) {
  syscall(SYS_setfsgid, gid);
  syscall(SYS_setfsuid, uid);
}

int set_groups(const gid_t* g, size_t n) { return static_cast<int>(syscall(SYS_setgroups, n, g)); }

class Switch {
 public:
  Switch(const fuse_ctx* ctx, bool with_groups, fuse_req_t req) {
    if (with_groups) {
      std::vector<gid_t> groups(64);
      int n = fuse_req_getgroups(req, static_cast<int>(groups.size()), groups.data());
      if (n > static_cast<int>(groups.size())) {
        groups.resize(static_cast<size_t>(n));
        n = fuse_req_getgroups(req, n, groups.data());
      }
      if (n >= 0) {
        set_groups(groups.data(), static_cast<size_t>(n));
        groups_set_ = true;
      }
    }
    set_ids(ctx->uid, ctx->gid);
  }
  ~Switch() {
    set_ids(0, 0);
    if (groups_set_) set_groups(nullptr, 0);
  }

 private:
  bool groups_set_ = false;
};

}  // namespace

int with_caller_creds(fuse_req_t req, mode_t mode, const std::function<int()>& fn) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  if (thread_fs_private()) umask(ctx->umask);
  if (!process_is_root()) return fn();
  // Caller is root: nothing to switch (root's fsuid keeps its capabilities).
  if (ctx->uid == 0 && ctx->gid == 0) return fn();
  bool want_groups = (mode & S_ISGID) != 0;
  int err;
  {
    Switch s(ctx, want_groups, req);
    err = fn();
  }
  if ((err == EACCES || err == EPERM) && !want_groups) {
    Switch s(ctx, true, req);
    err = fn();
  }
  return err;
}

}  // namespace tcfs::fusefs
