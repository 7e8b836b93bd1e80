// fuse/creds.h — run a creating syscall with the calling process's
// credentials, so new objects get the caller's owner and group exactly as
// the kernel would give them.
//
// Contract: with_caller_creds(req, fn) runs fn() on the current thread with
// fsuid/fsgid (and, when needed, the supplementary groups and umask) of the
// process behind req, then restores the daemon's own credentials. fn returns
// 0 or an errno. Ownership checks are the kernel's (default_permissions);
// supplementary groups are fetched from /proc only when fn first fails with
// EACCES/EPERM, or when the mode asks for set-group-ID, because only then can
// they change the outcome. A daemon that is not root runs fn as itself.
//
// The switch itself is util/creds.h's CredsSwitch, with the thread's own
// group list kept until the caller's is wanted and the effective capability
// set left to setfsuid (EffectiveCaps::kFsuid).
//
// Thread-safety: credentials are per thread (raw setfsuid/setfsgid/setgroups
// syscalls, never the glibc wrappers that broadcast to every thread); the
// umask is made per thread with unshare(CLONE_FS) on each worker's first use
// (util/creds.h thread_fs_private).
#pragma once

#include <fuse_lowlevel.h>

#include <functional>

namespace tcfs::fusefs {

int with_caller_creds(fuse_req_t req, mode_t mode, const std::function<int()>& fn);

// The same for a request libfuse does not dispatch (fs_tmpfile.cpp): the
// ids from its header; supplementary groups from /proc/<pid>/status.
struct CallerIds {
  uid_t uid;
  gid_t gid;
  pid_t pid;
  mode_t umask;
};
int with_caller_creds(const CallerIds& who, mode_t mode, const std::function<int()>& fn);

}  // namespace tcfs::fusefs
