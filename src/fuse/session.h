// fuse/session.h — mount the store's tree and serve it until unmounted.
//
// Contract: check_mountpoint() refuses, with a message naming the path and
// the reason, a mountpoint that is missing, not a directory, not empty
// (unless allow_nonempty), already a mount, or a dead FUSE mount; and a
// host without a usable /dev/fuse. serve() mounts (as root with allow_other
// and default_permissions), calls on_mounted once the kernel has the mount,
// and serves requests until the filesystem is unmounted or SIGINT/SIGTERM/
// SIGHUP arrives; it then unmounts and returns. An error before on_mounted
// leaves nothing mounted.
//
// Thread-safety: serve() is called once, from the main thread; it runs
// libfuse's multi-threaded loop.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "fuse/fs.h"
#include "store/store.h"
#include "txn/invalidate.h"
#include "tcfs/status.h"

namespace tcfs::fusefs {

struct MountConfig {
  std::string mountpoint;
  std::vector<std::string> fuse_opts;  // passed to libfuse as -o
  bool allow_nonempty = false;
  Options fs;
  // The loop has ended (a signal, or umount): called before the daemon's
  // last round and the unmount (the service manager's STOPPING=1).
  std::function<void()> stopping;
};

// The mount and loop that serve() and serve_view() (view.h) share:
// creates the session over ops/userdata (fsname=fsname,subtype=tcfs, as
// root allow_other,default_permissions, then cfg.fuse_opts), calls created
// before the mount, mounted once the kernel has it (an error there
// unmounts and is returned), runs the multi-threaded loop, then
// before_unmount, and unmounts.
struct SessionSpec {
  const fuse_lowlevel_ops* ops = nullptr;
  void* userdata = nullptr;
  std::string fsname;
  std::function<void(fuse_session*)> created;
  std::function<Status(fuse_session*, const std::string& majmin)> mounted;
  std::function<void()> before_unmount;
};
Status run_session(const SessionSpec& spec, const MountConfig& cfg);

Status check_mountpoint(const std::string& mountpoint, bool allow_nonempty);
Status check_dev_fuse();
// hooks.locks is the lock manager FUSE operations share with the compound
// executor (the caller owns it and hands the same one to the executor);
// null: the session uses a private one. on_mounted gets the kernel-cache
// invalidator of the live session (a fuse/notify.h KernelNotifier, valid
// until serve() returns: hand it to the executor there); before_unmount
// runs when the session loop ends, before the kernel mount goes away (stop
// feeding compounds there).
Status serve(store::Store& store, const MountConfig& cfg, Hooks hooks,
             const std::function<void(txn::Invalidator&)>& on_mounted,
             const std::function<void()>& before_unmount = {});

}  // namespace tcfs::fusefs
