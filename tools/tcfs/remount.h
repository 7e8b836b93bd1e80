// tools/tcfs/remount.h — `mount -o remount,OPTS MOUNTPOINT` of a tcfs mount.
//
// Contract:
//  * mount(8) runs the helper for a remount too (mount.fuse3 ->
//    `tcfs STORE MOUNTPOINT -o ...,remount,...`): a remount changes the live
//    mount's flags in place with mount(2) MS_REMOUNT, never starts a daemon.
//  * What changes: ro/rw, nosuid/suid, nodev/dev, noexec/exec, the atime
//    options (noatime, atime, relatime, norelatime, strictatime,
//    nostrictatime, nodiratime, diratime, lazytime, nolazytime), sync/async,
//    dirsync and defaults, the last one of a pair winning. Run by mount(8)
//    (complete = true), the options are the mount's whole new flag set:
//    mount(8) has merged the user's options into the mount's current ones
//    and lists only those that differ from the defaults (`remount,exec`
//    of a noexec mount arrives as "rw,relatime,remount,..."), so a flag
//    not listed is cleared; mount.fuse3 adds dev and suid unless nodev and
//    nosuid are listed. Run as `tcfs mount -o remount,OPTS` (complete =
//    false), OPTS apply over the mount's current flags (from
//    /proc/self/mountinfo): `-o remount,ro` changes nothing else. Either
//    way, with no atime option given the kernel keeps the mount's.
//  * FUSE superblock options (allow_other, default_permissions, user_id=,
//    group_id=, rootmode=, fsname=, subtype=, max_read=, blksize=) stay as
//    the mount has them; mount(8)'s own (auto, nofail, _netdev, x-*, ...)
//    mean nothing here. Both are ignored. tcfs's daemon options
//    (writeback, cache_size=, ...) apply when the daemon starts: a remount
//    names each on stderr as unchanged. Any other option is a usage error
//    (exit 2) and nothing changes.
//  * MOUNTPOINT must be a tcfs mount (its newest mount is of type
//    fuse.tcfs); otherwise, or when mount(2) fails, the error names the
//    mountpoint and the reason (exit 1) and nothing changes.
//  * On a read-only mount the kernel gives EROFS to every write, and the
//    daemon refuses compounds with EROFS (txn.h invariant 12).
//
// Thread-safety: called from main() only.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace tcfs::cli {

// The options of comma-separated -o lists, in order, empty ones dropped.
std::vector<std::string> split_options(const std::vector<std::string>& groups);

// True when the comma-separated `opts` lists hold "remount".
bool wants_remount(const std::vector<std::string>& opts);

// is_daemon_option(o): o is one of tcfs's own mount options (applied when
// the daemon starts). Returns the exit status (0, 1 error, 2 usage).
int run_remount(const std::string& mountpoint, const std::vector<std::string>& opts, bool complete,
                const std::function<bool(const std::string&)>& is_daemon_option);

}  // namespace tcfs::cli
