// util/creds.h — act as another user on the current thread.
//
// Contract: while an AsUser is alive, filesystem syscalls made by this
// thread are permission-checked (and create objects owned) exactly as for
// the process whose uid, gid and supplementary groups it was built from:
// fsuid/fsgid and the group list are switched with the raw per-thread
// syscalls, and for a non-root uid the thread's effective capability set is
// emptied (capset), so no capability of the daemon's (CAP_SETFCAP,
// CAP_SYS_ADMIN, CAP_MKNOD, CAP_FSETID, CAP_CHOWN, ...) takes part in a
// check the kernel makes for the caller. The destructor restores fsuid/fsgid
// 0, the effective set and an empty group list (the daemon's own, root).
// AsRoot does the reverse inside an AsUser scope, for bookkeeping the daemon
// does on its own behalf (undo images, recovery records). A daemon that is
// not root switches nothing (it can only act as itself).
//
// Thread-safety: credentials are per thread; never use the glibc setgroups()
// wrapper, which changes every thread of the process.
#pragma once

#include <sys/types.h>

#include <vector>

namespace tcfs {

struct UserCreds {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

class AsUser {
 public:
  explicit AsUser(const UserCreds& c);
  ~AsUser();
  AsUser(const AsUser&) = delete;
  AsUser& operator=(const AsUser&) = delete;

 private:
  const UserCreds& c_;
  bool switched_ = false;
};

class AsRoot {
 public:
  explicit AsRoot(const UserCreds& restore_to);
  ~AsRoot();
  AsRoot(const AsRoot&) = delete;
  AsRoot& operator=(const AsRoot&) = delete;

 private:
  const UserCreds& c_;
  bool switched_ = false;
};

// Sets this thread's umask while alive, the old one back after. The first
// use on a thread gives it its own fs_struct (unshare(CLONE_FS)), so the
// umask of no other thread changes; where that fails nothing is changed.
// Compounds run with umask 0: the modes they carry are applied exactly
// (tcfs/compound.h), whatever the daemon's own umask is.
class ThreadUmask {
 public:
  explicit ThreadUmask(mode_t mask);
  ~ThreadUmask();
  ThreadUmask(const ThreadUmask&) = delete;
  ThreadUmask& operator=(const ThreadUmask&) = delete;

 private:
  bool set_ = false;
  mode_t old_ = 0;
};

// Sets this thread's fs credentials (raw syscalls); used by both classes.
void set_thread_creds(uid_t uid, gid_t gid, const gid_t* groups, size_t ngroups);
bool process_is_root();
// Gives this thread its own fs_struct (unshare(CLONE_FS)) on first use, so
// umask() then affects this thread only; false where that failed. libfuse's
// workers and the control threads share one fs_struct otherwise.
bool thread_fs_private();

}  // namespace tcfs
