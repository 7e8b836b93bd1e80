#include "tools/tcfs/remount.h"

#include <sys/mount.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "client/mountinfo.h"

namespace tcfs::cli {
namespace {

constexpr unsigned long kAtime = MS_NOATIME | MS_RELATIME | MS_STRICTATIME;

struct FlagOpt {
  const char* name;
  unsigned long set, clear;
};

// mount(8)'s flag options, as MS_* bits set and cleared.
constexpr FlagOpt kFlags[] = {
    {"ro", MS_RDONLY, 0},
    {"rw", 0, MS_RDONLY},
    {"nosuid", MS_NOSUID, 0},
    {"suid", 0, MS_NOSUID},
    {"nodev", MS_NODEV, 0},
    {"dev", 0, MS_NODEV},
    {"noexec", MS_NOEXEC, 0},
    {"exec", 0, MS_NOEXEC},
    {"sync", MS_SYNCHRONOUS, 0},
    {"async", 0, MS_SYNCHRONOUS},
    {"dirsync", MS_DIRSYNC, 0},
    {"noatime", MS_NOATIME, kAtime},
    {"atime", 0, MS_NOATIME},
    {"relatime", MS_RELATIME, kAtime},
    {"norelatime", 0, MS_RELATIME},
    {"strictatime", MS_STRICTATIME, kAtime},
    {"nostrictatime", 0, MS_STRICTATIME},
    {"nodiratime", MS_NODIRATIME, 0},
    {"diratime", 0, MS_NODIRATIME},
    {"lazytime", MS_LAZYTIME, 0},
    {"nolazytime", 0, MS_LAZYTIME},
    {"defaults", 0, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_SYNCHRONOUS},
};

// Options the mount keeps as it has them (FUSE superblock options) or that
// only mount(8) reads.
bool kept_option(const std::string& o) {
  static const char* const exact[] = {"remount", "allow_other", "allow_root", "default_permissions", "auto",
                                      "noauto", "nofail", "_netdev", "user", "nouser", "users", "auto_unmount"};
  static const char* const prefix[] = {"user_id=", "group_id=", "rootmode=", "fsname=", "subtype=",
                                       "max_read=", "blksize=", "x-", "comment="};
  for (const char* e : exact)
    if (o == e) return true;
  for (const char* p : prefix)
    if (o.rfind(p, 0) == 0) return true;
  return false;
}

// Applies one option to *flags; false when it is not a flag option.
bool apply_flag(const std::string& o, unsigned long* flags) {
  for (const auto& f : kFlags) {
    if (o != f.name) continue;
    *flags = (*flags & ~f.clear) | f.set;
    return true;
  }
  return false;
}

// The newest mount on `mountpoint`, or nullptr.
const client_detail::MountEntry* newest_on(const std::vector<client_detail::MountEntry>& table,
                                           const std::string& mountpoint) {
  const client_detail::MountEntry* found = nullptr;
  for (const auto& e : table)
    if (e.mountpoint == mountpoint) found = &e;
  return found;
}

// The flags a mount has now: its per-mount options and its superblock's.
unsigned long current_flags(const client_detail::MountEntry& e) {
  unsigned long flags = 0;
  for (const auto& o : split_options({e.opts, e.superopts})) (void)apply_flag(o, &flags);
  return flags;
}

}  // namespace

std::vector<std::string> split_options(const std::vector<std::string>& groups) {
  std::vector<std::string> out;
  for (const auto& g : groups) {
    size_t start = 0;
    while (start <= g.size()) {
      size_t comma = g.find(',', start);
      if (comma == std::string::npos) comma = g.size();
      if (comma > start) out.push_back(g.substr(start, comma - start));
      start = comma + 1;
    }
  }
  return out;
}

bool wants_remount(const std::vector<std::string>& opts) {
  for (const auto& o : split_options(opts))
    if (o == "remount") return true;
  return false;
}

int run_remount(const std::string& mountpoint, const std::vector<std::string>& opts, bool complete,
                const std::function<bool(const std::string&)>& is_daemon_option) {
  char* real = realpath(mountpoint.c_str(), nullptr);
  std::string mp = real ? real : mountpoint;
  free(real);
  std::ifstream in("/proc/self/mountinfo");
  auto table = client_detail::parse_mountinfo(in);
  const client_detail::MountEntry* e = newest_on(table, mp);
  if (!e || e->fstype != "fuse.tcfs") {
    fprintf(stderr, "tcfs: error: remount %s: %s\n", mp.c_str(),
            e ? ("it is a " + e->fstype + " mount, not a tcfs mount").c_str() : "not a mountpoint");
    return 1;
  }
  unsigned long flags = complete ? 0 : current_flags(*e);
  for (const auto& o : split_options(opts)) {
    if (apply_flag(o, &flags) || kept_option(o)) continue;
    if (is_daemon_option(o)) {
      fprintf(stderr, "tcfs: note: remount %s: -o %s is not changed by a remount (it applies when tcfs mounts)\n",
              mp.c_str(), o.c_str());
      continue;
    }
    fprintf(stderr, "tcfs: error: remount %s: unknown option '%s'; nothing changed\n", mp.c_str(), o.c_str());
    return 2;
  }
  if (mount(e->source.c_str(), mp.c_str(), e->fstype.c_str(), MS_REMOUNT | flags, nullptr) != 0) {
    int err = errno;
    fprintf(stderr, "tcfs: error: remount %s: %s%s\n", mp.c_str(), strerror(err),
            err == EPERM ? " (only root may remount)" : "");
    return 1;
  }
  return 0;
}

}  // namespace tcfs::cli
