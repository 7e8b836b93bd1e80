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
// CredsSwitch is the one switch both are built on, and the FUSE layer's
// too (fuse/creds.h): it can leave the thread's group list as it is and
// the effective capability set to what setfsuid itself does.
//
// Thread-safety: credentials are per thread; never use the glibc setgroups()
// wrapper, which changes every thread of the process.
#pragma once

#include <sys/types.h>

#include <optional>
#include <vector>

namespace tcfs {

struct UserCreds {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

// What a switch to a user does with this thread's effective capability set.
enum class EffectiveCaps {
  kEmptied,  // none while a non-root uid is on (AsUser: every check is the caller's)
  kFsuid,    // left to setfsuid, which drops only the file capabilities
             // (CAP_CHOWN, CAP_DAC_*, CAP_FOWNER, CAP_FSETID,
             // CAP_LINUX_IMMUTABLE, CAP_MKNOD) for a non-zero fsuid
};

// Switches this thread to uid/gid, and to *groups unless groups is null
// (then the thread keeps its group list), for as long as it lives; then
// back to the daemon's own: fsuid/fsgid 0, an empty group list if it was
// set, the effective set raised again if it was emptied. It switches
// whenever it is made: whether a switch is wanted at all (process_is_root,
// a root caller) is the caller's decision.
class CredsSwitch {
 public:
  CredsSwitch(uid_t uid, gid_t gid, const std::vector<gid_t>* groups, EffectiveCaps caps);
  ~CredsSwitch();
  CredsSwitch(const CredsSwitch&) = delete;
  CredsSwitch& operator=(const CredsSwitch&) = delete;

 private:
  bool groups_set_;
  EffectiveCaps caps_;
};

class AsUser {
 public:
  explicit AsUser(const UserCreds& c);
  AsUser(const AsUser&) = delete;
  AsUser& operator=(const AsUser&) = delete;

 private:
  std::optional<CredsSwitch> switch_;
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

// Sets this thread's fs credentials (raw syscalls): the one place they are
// set. groups null keeps the thread's group list; caps as for CredsSwitch.
void set_thread_creds(uid_t uid, gid_t gid, const std::vector<gid_t>* groups,
                      EffectiveCaps caps = EffectiveCaps::kEmptied);
bool process_is_root();
// Gives this thread its own fs_struct (unshare(CLONE_FS)) on first use, so
// umask() then affects this thread only; false where that failed. libfuse's
// workers and the control threads share one fs_struct otherwise.
bool thread_fs_private();

}  // namespace tcfs
