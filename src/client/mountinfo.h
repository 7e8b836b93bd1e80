// client/mountinfo.h — /proc/self/mountinfo parsing for the client library
// (not installed; unit tests use it with made-up tables).
//
// Contract: parse_mountinfo() reads the kernel's format (octal escapes
// \040 etc. decoded); locate() finds the mount that shows an absolute,
// lexically normalised path (the deepest mountpoint that is a prefix of it;
// among equals the one mounted last) and, when it is of type fuse.tcfs,
// returns it with the mountpoints of every mount stacked below it (which
// hide parts of it from the daemon), and its control socket (from the
// source and the user_id= superblock option: control/socket_path.h P3).
//
// Thread-safety: pure functions.
#pragma once

#include <istream>
#include <string>
#include <vector>

#include "tcfs/client.h"

namespace tcfs::client_detail {

struct MountEntry {
  int id = 0, parent = 0;
  std::string majmin;     // "0:45": the superblock's device
  std::string mountpoint, fstype, source;
  std::string opts;       // per-mount options: "rw,nosuid,nodev,relatime"
  std::string superopts;  // "rw,user_id=0,..." (as the kernel writes them)
};

std::vector<MountEntry> parse_mountinfo(std::istream& in);

struct Located {
  MountInfo mount;
  std::vector<std::string> nested;  // mountpoints of mounts below this one
};

// ENOENT (naming abs) when abs is not in a tcfs mount.
Result<Located> locate(const std::vector<MountEntry>& table, const std::string& abs);
// Mountpoints of the mounts stacked (directly or not) on the tcfs mount at mountpoint.
std::vector<std::string> nested_mounts(const std::vector<MountEntry>& table, const std::string& mountpoint);

// path == dir or below it ("/" contains everything).
bool path_under(const std::string& path, const std::string& dir);

}  // namespace tcfs::client_detail
