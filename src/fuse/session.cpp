#include "fuse/session.h"

#include "fuse/metered_ops.h"

#include "fuse/notify.h"
#include "util/dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>

namespace tcfs::fusefs {
namespace {

void on_init(void* userdata, fuse_conn_info* conn) {
  auto* fs = static_cast<Fs*>(userdata);
  auto want = [&](unsigned cap) {
    if (conn->capable & cap) conn->want |= cap;
  };
  // Zero-copy data paths: replies spliced from the backing file (requests
  // are read, not spliced: fs_tmpfile.cpp).
  want(FUSE_CAP_SPLICE_WRITE);
  want(FUSE_CAP_SPLICE_MOVE);
  // O_TRUNC arrives with open (one round trip instead of open + setattr).
  want(FUSE_CAP_ATOMIC_O_TRUNC);
  // The caller's umask arrives separately so it is applied where the
  // backing filesystem would apply it (default ACLs take precedence).
  want(FUSE_CAP_DONT_MASK);
  // readdirplus only when the kernel sees it pays (ls -l, find -type):
  // a plain getdents listing then costs no lookups and no daemon memory.
  want(FUSE_CAP_READDIRPLUS);
  want(FUSE_CAP_READDIRPLUS_AUTO);
  want(FUSE_CAP_PARALLEL_DIROPS);
  want(FUSE_CAP_ASYNC_READ);
  want(FUSE_CAP_ASYNC_DIO);
  want(FUSE_CAP_CACHE_SYMLINKS);
  if (fs->options().writeback_cache) want(FUSE_CAP_WRITEBACK_CACHE);
  // Handles that outlive the kernel's inode cache and remounts (NFS
  // export, open_by_handle_at): node ids decode to backing objects
  // (fuse/export.h), and LOOKUP of "." and ".." is answered (fs_node.cpp).
  if (fs->table().exportable()) want(FUSE_CAP_EXPORT_SUPPORT);
  // Locks are left to the kernel (no getlk/setlk/flock ops): flock and
  // fcntl locks then work between processes of this host.
  conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
  // Enough requests in flight for readahead and async direct I/O.
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  conn->time_gran = 1;
  // max_write stays at libfuse's maximum (1 MiB = FUSE_MAX_MAX_PAGES).
}

fuse_lowlevel_ops make_ops() {
  fuse_lowlevel_ops o{};
  o.init = on_init;
  fill_node_ops(o);
  fill_file_ops(o);
  fill_dir_ops(o);
  fill_flag_ops(o);
  return o;
}

// Every kernel-held inode pins an O_PATH fd: allow as many as the system does.
size_t raise_fd_limit() {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  rlim_t max = rl.rlim_max;
  if (geteuid() == 0) {
    if (FILE* f = fopen("/proc/sys/fs/nr_open", "r")) {
      unsigned long v = 0;
      if (fscanf(f, "%lu", &v) == 1 && v > max) max = v;
      fclose(f);
    }
  }
  rl.rlim_cur = rl.rlim_max = max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  getrlimit(RLIMIT_NOFILE, &rl);
  return static_cast<size_t>(rl.rlim_cur);
}

// The newest mount on mountpoint, as "major:minor", from
// /proc/self/mountinfo: stat() on the mountpoint would wait for this very
// daemon, which is not serving yet ("" if not found).
std::string mount_majmin(const std::string& mountpoint) {
  FILE* f = fopen("/proc/self/mountinfo", "r");
  if (!f) return "";
  char line[4096];
  std::string dev;
  while (fgets(line, sizeof line, f)) {
    unsigned id, parent;
    char majmin[64], root[1024], mp[1024];
    if (sscanf(line, "%u %u %63s %1023s %1023s", &id, &parent, majmin, root, mp) == 5 && mountpoint == mp)
      dev = majmin;  // the last match is the newest mount
  }
  fclose(f);
  return dev;
}

dev_t dev_of(const std::string& majmin) {
  unsigned maj = 0, min = 0;
  return sscanf(majmin.c_str(), "%u:%u", &maj, &min) == 2 ? makedev(maj, min) : 0;
}

// Sets the mount's read-ahead through sysfs (the BDI is named major:minor).
void set_read_ahead(const std::string& dev, unsigned kb) {
  if (dev.empty()) return;
  std::string path = "/sys/class/bdi/" + dev + "/read_ahead_kb";
  FILE* ra = fopen(path.c_str(), "w");
  if (!ra || fprintf(ra, "%u\n", kb) < 0 || fclose(ra) != 0)
    spdlog::debug("set read-ahead: {}: {}", path, strerror(errno));
}

// The kernel lowers a mount's read-ahead to INIT's max_readahead when it
// takes the reply, and libfuse can only answer what the kernel offered:
// the bdi's value at mount time, the 128 KiB default. A read_ahead_kb
// written before INIT is answered is thus cut back to 128 KiB (reads of
// one handle then go to the daemon 128 KiB at a time). So the first
// request, INIT, is served here before the loop starts; the kernel
// applies the reply within the write that sends it, and read_ahead_kb
// written after this stays.
void serve_init(fuse_session* se) {
  fuse_buf buf{};
  int n;
  do n = fuse_session_receive_buf(se, &buf);
  while (n == -EINTR);
  if (n > 0) fuse_session_process_buf(se, &buf);
  else if (n < 0) spdlog::warn("mount: reading the FUSE INIT request: {}", std::strerror(-n));
  std::free(buf.mem);
}

}  // namespace

const fuse_lowlevel_ops& Fs::ops() {
  static const fuse_lowlevel_ops o = metered(OpsSlot::kMount, make_ops());
  return o;
}

Status check_dev_fuse() {
  int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return Status::error(ENODEV, "/dev/fuse does not exist (load the fuse module: modprobe fuse)");
    return Status::from_errno("cannot open /dev/fuse");
  }
  close(fd);
  return {};
}

Status check_mountpoint(const std::string& mp, bool allow_nonempty) {
  struct statx sx {};
  if (statx(AT_FDCWD, mp.c_str(), 0, STATX_TYPE, &sx) != 0) {
    if (errno == ENOTCONN)
      return Status::error(ENOTCONN, "mountpoint " + mp + " is a dead FUSE mount (run: umount " + mp + ")");
    if (errno == ENOENT) return Status::error(ENOENT, "mountpoint " + mp + " does not exist");
    return Status::from_errno("mountpoint " + mp);
  }
  if (!S_ISDIR(sx.stx_mode)) return Status::error(ENOTDIR, "mountpoint " + mp + " is not a directory");
  if ((sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) && (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT))
    return Status::error(EBUSY, "mountpoint " + mp + " is already a mount point (unmount it first)");
  if (!allow_nonempty) {
    bool empty = true;
    TCFS_TRY(for_each_entry(AT_FDCWD, mp.c_str(), [&](const char*, unsigned char) { return empty = false; },
                            "mountpoint " + mp));
    if (!empty)
      return Status::error(ENOTEMPTY, "mountpoint " + mp + " is not empty (use -o nonempty to mount over it)");
  }
  return {};
}

Status serve(store::Store& store, const MountConfig& cfg, Hooks hooks,
             const std::function<void(txn::Invalidator&)>& on_mounted, const std::function<void()>& before_unmount) {
  size_t fd_limit = raise_fd_limit();
  // Half the fd limit caches inode fds; the rest serves open files and
  // directories, LMDB and the control socket.
  auto table = InodeTable::create(store.root_fd(), std::max<size_t>(256, fd_limit / 2));
  if (!table) return table.status();
  txn::LockManager own_locks;  // when the caller shares none (no compounds then)
  if (!hooks.locks) hooks.locks = &own_locks;
  if (const auto& l = table.value()->layout())
    spdlog::info("export: handles of {} objects are decoded (NFS export, open_by_handle_at)", l->name());
  else
    spdlog::info("export: the store's filesystem ({}) has no known handle layout: handles of the mount "
                 "go stale once the kernel forgets an inode (no NFS export)", store.fs_type());
  std::unique_ptr<KernelNotifier> notifier;  // lives until the session is gone
  sync::Evictor* evictor = hooks.evictor;
  Fs fs(store, std::move(table.value()), cfg.fs, std::move(hooks));
  // The evictor asks the table what is open while the table lives
  // (sync/evict.h 2); it evicts nothing before or after.
  struct InUse {
    sync::Evictor* ev;
    ~InUse() {
      if (ev) ev->set_in_use(nullptr);
    }
  } in_use{evictor};
  if (evictor)
    evictor->set_in_use([t = &fs.table()](const sync::ObjRef& o) { return t->in_use(o.ino, o.handle); });

  SessionSpec spec;
  spec.ops = &Fs::ops();
  spec.userdata = &fs;
  spec.fsname = store.path();
  spec.created = [&](fuse_session* se) { fs.set_session(se); };
  spec.mounted = [&](fuse_session* se, const std::string& majmin) {
    TCFS_TRY(serve_tmpfile_requests(se));  // O_TMPFILE: fs_tmpfile.cpp
    spdlog::info("mounted store {} on {} ({}{})", store.path(), cfg.mountpoint, store.fs_type(),
                 store.reflink() ? ", reflink" : ", no reflink");
    notifier = std::make_unique<KernelNotifier>(se, fs.table(), dev_of(majmin), cfg.mountpoint, store.root_fd(),
                                                fs.options().writeback_cache);
    on_mounted(*notifier);
    return Status();
  };
  spec.before_unmount = before_unmount;
  return run_session(spec, cfg);
}

Status run_session(const SessionSpec& spec, const MountConfig& cfg) {
  std::string opts = "fsname=" + spec.fsname + ",subtype=tcfs";
  // As root, serve every user with the kernel's own permission checks.
  if (geteuid() == 0) opts += ",allow_other,default_permissions";
  for (const auto& o : cfg.fuse_opts) opts += "," + o;
  std::vector<std::string> argv_s = {"tcfs", "-o", opts};
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());

  fuse_session* se = fuse_session_new(&args, spec.ops, sizeof(fuse_lowlevel_ops), spec.userdata);
  fuse_opt_free_args(&args);
  if (!se) return Status::error(EINVAL, "cannot start a FUSE session with options '" + opts + "'");
  std::unique_ptr<fuse_session, void (*)(fuse_session*)> se_guard(se, fuse_session_destroy);
  if (fuse_set_signal_handlers(se) != 0) return Status::error(EIO, "cannot install signal handlers");
  if (spec.created) spec.created(se);
  if (fuse_session_mount(se, cfg.mountpoint.c_str()) != 0) {
    fuse_remove_signal_handlers(se);
    return Status::error(EIO, "cannot mount on " + cfg.mountpoint + " (see the message above)");
  }
  std::string majmin = mount_majmin(cfg.mountpoint);
  if (majmin.empty()) spdlog::warn("mount {}: not found in /proc/self/mountinfo", cfg.mountpoint);
  if (Status st = spec.mounted ? spec.mounted(se, majmin) : Status(); !st) {
    fuse_session_unmount(se);
    fuse_remove_signal_handlers(se);
    return st;
  }
  serve_init(se);
  set_read_ahead(majmin, cfg.fs.read_ahead_kb);  // after INIT: see serve_init

  fuse_loop_config* lc = fuse_loop_cfg_create();
  // Workers: threads beyond the core count overlap I/O waits (fsync, cold
  // reads, fetches). Measured on 2 cores (tools/bench/bench-posix
  // --repeat 2 --tcfs-opts ..., medians as tcfs/passthrough in the same
  // run; write+fsync 1 GiB, cold read 1 GiB, 10,000 4 KiB creates, cold
  // stat of 100,000, tar x):
  //   threads=2       0.83 1.27 0.87 0.74 0.86
  //   threads=4       0.74 0.93 0.84 0.67 1.01
  //   threads=16      0.82 1.08 1.10 1.08 0.96   (the default)
  //   threads=64      0.91 1.04 0.94 0.90 0.85
  //   16, no clone_fd 0.62 1.07 0.94 1.32 1.00
  // Run-to-run noise is about 0.1; 16 is the one setting at or above 0.9
  // on creates and cold stats, and clone_fd (a /dev/fuse fd per worker,
  // no wakeups of idle workers for one request) kept write+fsync at 0.82.
  // Splice: READ replies are spliced from the backing file (cold reads at
  // or above the passthrough); WRITE requests are read into memory, since
  // the custom io that serves O_TMPFILE cannot see a spliced request's
  // opcode (fs_tmpfile.cpp): that copy is 17% of the daemon's CPU on a
  // 1 GiB write (perf), the gap on write+fsync.
  fuse_loop_cfg_set_max_threads(lc, cfg.fs.max_threads);
  fuse_loop_cfg_set_idle_threads(lc, cfg.fs.max_idle_threads);
  fuse_loop_cfg_set_clone_fd(lc, cfg.fs.clone_fd ? 1 : 0);  // one /dev/fuse fd per worker: no wakeup contention
  int rc = fuse_session_loop_mt(se, lc);
  if (cfg.stopping) cfg.stopping();
  fuse_loop_cfg_destroy(lc);
  if (spec.before_unmount) spec.before_unmount();
  fuse_session_unmount(se);
  fuse_remove_signal_handlers(se);
  spdlog::info("unmounted {}", cfg.mountpoint);
  if (rc < 0) return Status::error(-rc, "FUSE session loop");
  return {};
}

}  // namespace tcfs::fusefs
