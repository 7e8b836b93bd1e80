#include "util/creds.h"

#include <linux/capability.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace tcfs {

bool process_is_root() {
  static const bool root = geteuid() == 0;
  return root;
}

namespace {

// The calling thread's effective capability set: all of its permitted set
// (on), or none (off). Capabilities are per thread for the raw syscall, so
// this never touches the daemon's other threads. The permitted set is kept,
// so the daemon can always raise its effective set again.
void set_effective_caps(bool on) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &hdr, data) != 0) return;
  for (auto& d : data) d.effective = on ? d.permitted : 0;
  syscall(SYS_capset, &hdr, data);
}

}  // namespace

void set_thread_creds(uid_t uid, gid_t gid, const std::vector<gid_t>* groups, EffectiveCaps caps) {
  // Back to the daemon (uid 0): raise the effective set first, since
  // setgroups needs CAP_SETGID. As a user: groups and gid while still
  // privileged, fsuid, then an empty effective set, so no capability the
  // caller lacks (CAP_SETFCAP for security.capability, CAP_SYS_ADMIN for
  // trusted.*, CAP_MKNOD, CAP_FSETID, ...) decides anything the kernel
  // checks on its behalf. setfsuid alone drops only the file capabilities
  // (EffectiveCaps::kFsuid: the effective set is left to it).
  bool emptied = caps == EffectiveCaps::kEmptied;
  if (uid == 0 && emptied) set_effective_caps(true);
  if (groups) syscall(SYS_setgroups, groups->size(), groups->data());
  syscall(SYS_setfsgid, gid);
  syscall(SYS_setfsuid, uid);
  if (uid != 0 && emptied) set_effective_caps(false);
}

namespace {
const std::vector<gid_t> kNoGroups;  // the daemon's own group list
}  // namespace

CredsSwitch::CredsSwitch(uid_t uid, gid_t gid, const std::vector<gid_t>* groups, EffectiveCaps caps)
    : groups_set_(groups != nullptr), caps_(caps) {
  set_thread_creds(uid, gid, groups, caps);
}

CredsSwitch::~CredsSwitch() { set_thread_creds(0, 0, groups_set_ ? &kNoGroups : nullptr, caps_); }

AsUser::AsUser(const UserCreds& c) {
  if (!process_is_root() || (c.uid == 0 && c.gid == 0 && c.groups.empty())) return;
  switch_.emplace(c.uid, c.gid, &c.groups, EffectiveCaps::kEmptied);
}

AsRoot::AsRoot(const UserCreds& restore_to) : c_(restore_to) {
  if (!process_is_root() || (c_.uid == 0 && c_.gid == 0 && c_.groups.empty())) return;
  set_thread_creds(0, 0, &kNoGroups);
  switched_ = true;
}

AsRoot::~AsRoot() {
  if (switched_) set_thread_creds(c_.uid, c_.gid, &c_.groups);
}

bool thread_fs_private() {
  thread_local const bool own_fs = unshare(CLONE_FS) == 0;
  return own_fs;
}

ThreadUmask::ThreadUmask(mode_t mask) {
  if (!thread_fs_private()) return;
  old_ = umask(mask);
  set_ = true;
}

ThreadUmask::~ThreadUmask() {
  if (set_) umask(old_);
}

}  // namespace tcfs
