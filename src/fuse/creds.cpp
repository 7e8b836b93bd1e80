#include "fuse/creds.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "util/creds.h"

namespace tcfs::fusefs {
namespace {

// The caller's supplementary groups into g; false if unknown.
using GroupsOf = std::function<bool(std::vector<gid_t>& g)>;

// fn as the caller: its fsuid/fsgid, and its groups when asked for and
// known (else the thread keeps its own). The effective capability set is
// left to setfsuid (util/creds.h EffectiveCaps::kFsuid): the kernel has
// already checked the request on the FUSE inode as the caller.
int as_caller(const CallerIds& who, const GroupsOf* groups_of, const std::function<int()>& fn) {
  std::vector<gid_t> groups;
  bool known = groups_of && (*groups_of)(groups);
  CredsSwitch s(who.uid, who.gid, known ? &groups : nullptr, EffectiveCaps::kFsuid);
  return fn();
}

int run_as_caller(const CallerIds& who, mode_t mode, const GroupsOf& groups_of, const std::function<int()>& fn) {
  if (thread_fs_private()) umask(who.umask);
  if (!process_is_root()) return fn();
  // Caller is root: nothing to switch (root's fsuid keeps its capabilities).
  if (who.uid == 0 && who.gid == 0) return fn();
  bool want_groups = (mode & S_ISGID) != 0;
  int err = as_caller(who, want_groups ? &groups_of : nullptr, fn);
  if ((err == EACCES || err == EPERM) && !want_groups) err = as_caller(who, &groups_of, fn);
  return err;
}

// The "Groups:" line of /proc/<pid>/status (what fuse_req_getgroups reads).
bool proc_groups(pid_t pid, std::vector<gid_t>& out) {
  std::string path = "/proc/" + std::to_string(pid) + "/status";
  FILE* f = fopen(path.c_str(), "re");
  if (!f) return false;
  char line[4096];
  bool found = false;
  while (!found && fgets(line, sizeof line, f)) {
    if (strncmp(line, "Groups:", 7) != 0) continue;
    found = true;
    char* p = line + 7;
    for (;;) {
      char* end = nullptr;
      unsigned long g = strtoul(p, &end, 10);
      if (end == p) break;
      out.push_back(static_cast<gid_t>(g));
      p = end;
    }
  }
  fclose(f);
  return found;
}

}  // namespace

int with_caller_creds(fuse_req_t req, mode_t mode, const std::function<int()>& fn) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  GroupsOf groups = [req](std::vector<gid_t>& g) {
    g.resize(64);
    int n = fuse_req_getgroups(req, static_cast<int>(g.size()), g.data());
    if (n > static_cast<int>(g.size())) {
      g.resize(static_cast<size_t>(n));
      n = fuse_req_getgroups(req, n, g.data());
    }
    if (n < 0) return false;
    g.resize(static_cast<size_t>(n));
    return true;
  };
  return run_as_caller(CallerIds{ctx->uid, ctx->gid, ctx->pid, ctx->umask}, mode, groups, fn);
}

int with_caller_creds(const CallerIds& who, mode_t mode, const std::function<int()>& fn) {
  GroupsOf groups = [&who](std::vector<gid_t>& g) { return proc_groups(who.pid, g); };
  return run_as_caller(who, mode, groups, fn);
}

}  // namespace tcfs::fusefs
