#include "util/creds.h"

#include <sys/syscall.h>
#include <unistd.h>

namespace tcfs {

bool process_is_root() {
  static const bool root = geteuid() == 0;
  return root;
}

void set_thread_creds(uid_t uid, gid_t gid, const gid_t* groups, size_t ngroups) {
  // Order: groups and gid while fsuid is still 0 (setgroups needs
  // CAP_SETGID in the effective set, which setfsuid does not touch), then
  // fsuid last, so the capability drop happens after the group change.
  syscall(SYS_setgroups, ngroups, groups);
  syscall(SYS_setfsgid, gid);
  syscall(SYS_setfsuid, uid);
}

AsUser::AsUser(const UserCreds& c) : c_(c) {
  if (!process_is_root() || (c.uid == 0 && c.gid == 0 && c.groups.empty())) return;
  set_thread_creds(c.uid, c.gid, c.groups.data(), c.groups.size());
  switched_ = true;
}

AsUser::~AsUser() {
  if (switched_) set_thread_creds(0, 0, nullptr, 0);
}

AsRoot::AsRoot(const UserCreds& restore_to) : c_(restore_to) {
  if (!process_is_root() || (c_.uid == 0 && c_.gid == 0 && c_.groups.empty())) return;
  set_thread_creds(0, 0, nullptr, 0);
  switched_ = true;
}

AsRoot::~AsRoot() {
  if (switched_) set_thread_creds(c_.uid, c_.gid, c_.groups.data(), c_.groups.size());
}

}  // namespace tcfs
