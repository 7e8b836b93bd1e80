// tcfs — the daemon and its command line.
//
//   tcfs mount [--store DIR] [-f] [--cache-size SIZE] [-o OPT[,OPT...]] MOUNTPOINT
//   tcfs init [--store DIR] --blobber URL... [--ec K+M] [--key-file FILE]
//   tcfs init [--store DIR] --from-blobbers URL... [--ec K+M] [--accept-older] [--key-file FILE]
//   tcfs init [--store DIR] --follow --from-blobbers URL... [--ec K+M] [--key-file FILE]
//   tcfs sync MOUNTPOINT [--timeout S] [--json] [--progress|--no-progress]
//   tcfs wait MOUNTPOINT ROUND [--timeout S]
//   tcfs log MOUNTPOINT [--json] | tcfs log --blobber URL... [--ec K+M] [--key-file FILE] [--json]
//   tcfs export-unsynced STORE DIR
//   tcfs promote [--store DIR] [--force]
//   tcfs status MOUNTPOINT [--json]
//   tcfs metrics MOUNTPOINT
//   tcfs stats MOUNTPOINT [--interval S] [--once] [--json]
//   tcfs fsck STORE [--repair] [--json] [--remote] [--progress|--no-progress]
//   tcfs gc MOUNTPOINT | tcfs scrub MOUNTPOINT   [--progress|--no-progress]
//
// Exit codes: 0 success (mounted, or the foreground daemon unmounted
// cleanly); 1 an error the message names (store, mountpoint, FUSE);
// 2 a usage error.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "daemon/daemon.h"
#include "daemon/metrics_http.h"
#include "daemon/service.h"
#include "daemon/follower.h"
#include "tools/tcfs/remote.h"
#include "tools/tcfs/remount.h"
#include "util/crash_points.h"
#include "util/log.h"
#include "util/size.h"

namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

std::string default_store() {
  if (geteuid() == 0) return "/var/lib/tcfs/default";
  const char* xdg = getenv("XDG_DATA_HOME");
  if (xdg && *xdg) return std::string(xdg) + "/tcfs/default";
  const char* home = getenv("HOME");
  return std::string(home ? home : ".") + "/.local/share/tcfs/default";
}

struct DaemonConfig {
  tcfs::fusefs::MountConfig mount;
  tcfs::control::Limits limits;
  tcfs::sync::SyncOptions sync;
  tcfs::sync::EvictOptions evict;
  bool reserve_set = false;  // cache_reserve given (else 5% of the filesystem, at most 1 GiB)
  unsigned poll_ms = 1000;   // a follower's poll interval (follower.h 2)
  unsigned switch_wait_ms = 500;  // a follower's wait for a quiet moment (fuse/view.h 5)
  uint64_t journal_bytes = tcfs::journal::kDefaultBytes;  // the endurant log's size (journal/log.h)
  std::optional<bool> journal;  // -o journal=on|off; unset: the daemon's default (daemon.h)
  std::string metrics;          // -o metrics=ADDR:PORT|off; "": the default (daemon/metrics_http.h 1)
};

// "cache_size=64G" etc.: true and *out set when `o` is name=<size>.
bool size_opt(const std::string& o, const char* name, uint64_t* out, bool zero_ok) {
  std::string prefix = std::string(name) + "=";
  if (o.compare(0, prefix.size(), prefix) != 0) return false;
  std::string v = o.substr(prefix.size());
  *out = tcfs::parse_size(v);
  if (*out == 0 && !(zero_ok && v == "0"))
    throw CLI::ValidationError("-o", "bad size in '" + o + "' (a number of bytes, or with K, M, G or T)");
  return true;
}

// "max_ops=N" etc.: true and *out set when `o` is name=<number>.
bool number_opt(const std::string& o, const char* name, uint64_t* out) {
  std::string prefix = std::string(name) + "=";
  if (o.compare(0, prefix.size(), prefix) != 0) return false;
  try {
    size_t used = 0;
    *out = std::stoull(o.substr(prefix.size()), &used);
    if (used != o.size() - prefix.size() || *out == 0) throw std::invalid_argument(o);
  } catch (const std::exception&) {
    throw CLI::ValidationError("-o", "bad value in '" + o + "' (a positive number is expected)");
  }
  return true;
}

// Takes out of "-o a,b" lists the options tcfs handles itself.
void parse_o(const std::vector<std::string>& raw, DaemonConfig& dc) {
  auto& cfg = dc.mount;
  for (const auto& o : tcfs::cli::split_options(raw)) {
    if (o == "nonempty") cfg.allow_nonempty = true;
    else if (o == "writeback" || o == "writeback=on") cfg.fs.writeback_cache = true;
    else if (o == "writeback=off") cfg.fs.writeback_cache = false;
    else if (o.rfind("writeback=", 0) == 0)
      throw CLI::ValidationError("-o", "bad value in '" + o + "' (writeback=on or writeback=off)");
    else if (o == "clone_fd=on" || o == "clone_fd") cfg.fs.clone_fd = true;
    else if (o == "clone_fd=off") cfg.fs.clone_fd = false;
    else if (o.rfind("clone_fd=", 0) == 0)
      throw CLI::ValidationError("-o", "bad value in '" + o + "' (clone_fd=on or clone_fd=off)");
    else if (o == "journal=on" || o == "journal") dc.journal = true;
    else if (o == "journal=off") dc.journal = false;
    else if (o.rfind("journal=", 0) == 0)
      throw CLI::ValidationError("-o", "bad value in '" + o + "' (journal=on or journal=off)");
    else if (size_opt(o, "journal_size", &dc.journal_bytes, false)) {
      if (dc.journal_bytes < (16ull << 20))
        throw CLI::ValidationError("-o", "journal_size must be at least 16M ('" + o + "')");
    }
    else if (uint64_t v = 0; number_opt(o, "threads", &v)) {
      if (v > 256) throw CLI::ValidationError("-o", "threads must be at most 256 ('" + o + "')");
      cfg.fs.max_threads = static_cast<unsigned>(v);
      cfg.fs.max_idle_threads = std::min(cfg.fs.max_idle_threads, cfg.fs.max_threads);
    }
    else if (number_opt(o, "max_ops", &dc.limits.max_ops)) {
    } else if (number_opt(o, "max_inline", &dc.limits.max_inline_bytes)) {
      dc.limits.max_frame_bytes = std::max(dc.limits.max_frame_bytes, dc.limits.max_inline_bytes + (64u << 20));
    } else if (number_opt(o, "max_fds", &dc.limits.max_fds)) {
    } else if (number_opt(o, "ctl_user_conns", &dc.limits.user_conns)) {
    } else if (size_opt(o, "ctl_user_mem", &dc.limits.user_bytes, false)) {
    } else if (uint64_t ms = 0; number_opt(o, "ctl_idle", &ms)) {
      dc.limits.idle_ms = static_cast<int>(std::min<uint64_t>(ms, INT32_MAX));
    } else if (uint64_t v = 0; number_opt(o, "sync_interval", &v)) {
      dc.sync.interval_ms = static_cast<unsigned>(std::min<uint64_t>(v, 86400000));
    } else if (uint64_t v = 0; number_opt(o, "gc_keep_rounds", &v)) {
      dc.sync.keep_rounds = static_cast<unsigned>(std::min<uint64_t>(v, UINT32_MAX));
    } else if (o == "snapshot_every=0") {
      dc.sync.snapshot_every = 0;
    } else if (uint64_t v = 0; number_opt(o, "snapshot_every", &v)) {
      dc.sync.snapshot_every = static_cast<unsigned>(std::min<uint64_t>(v, UINT32_MAX));
    } else if (o == "stop_timeout=0") {
      dc.sync.stop_limit_ms = 0;
    } else if (uint64_t v = 0; number_opt(o, "stop_timeout", &v)) {
      if (v > 86400) throw CLI::ValidationError("-o", "stop_timeout must be at most 86400 seconds ('" + o + "')");
      dc.sync.stop_limit_ms = static_cast<unsigned>(v * 1000);
    } else if (o == "gc_keep_age=0") {
      dc.sync.keep_age_s = 0;
    } else if (uint64_t v = 0; number_opt(o, "gc_keep_age", &v)) {
      dc.sync.keep_age_s = v;
    } else if (uint64_t v = 0; number_opt(o, "poll_interval", &v)) {
      dc.poll_ms = static_cast<unsigned>(std::min<uint64_t>(v, 3600000));
    } else if (o == "switch_wait=0") {
      dc.switch_wait_ms = 0;
    } else if (uint64_t v = 0; number_opt(o, "switch_wait", &v)) {
      dc.switch_wait_ms = static_cast<unsigned>(std::min<uint64_t>(v, 60000));
    } else if (o.rfind("metrics=", 0) == 0) {
      dc.metrics = o.substr(8);
      if (std::string why = tcfs::daemon::check_metrics_spec(dc.metrics); !why.empty())
        throw CLI::ValidationError("-o", why);
    } else if (size_opt(o, "cache_size", &dc.evict.cache_bytes, false)) {
    } else if (size_opt(o, "cache_reserve", &dc.evict.reserve_bytes, true)) {
      dc.reserve_set = true;
    } else cfg.fuse_opts.push_back(o);
  }
}

// o is one of tcfs's own options (taken out by parse_o): it applies when
// the daemon starts.
bool daemon_option(const std::string& o) {
  DaemonConfig dc;
  try {
    parse_o({o}, dc);
  } catch (const CLI::ValidationError&) {
    return true;
  }
  return dc.mount.fuse_opts.empty();
}

int fail(const tcfs::Status& st) {
  fprintf(stderr, "tcfs: error: %s\n", st.message().c_str());
  return kExitError;
}

// Forks; the parent waits until the child reports the mount up (exit 0) or
// exits (its status). Returns in the child with the write end of the pipe.
int daemonize(int* notify_fd) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return fail(tcfs::Status::from_errno("pipe"));
  pid_t pid = fork();
  if (pid < 0) return fail(tcfs::Status::from_errno("fork"));
  if (pid > 0) {
    close(p[1]);
    char c = 0;
    ssize_t n = read(p[0], &c, 1);
    if (n == 1 && c == 'M') _exit(0);
    int status = 0;
    waitpid(pid, &status, 0);
    _exit(WIFEXITED(status) && WEXITSTATUS(status) != 0 ? WEXITSTATUS(status) : kExitError);
  }
  close(p[0]);
  setsid();
  *notify_fd = p[1];
  return -1;
}

void detach_stdio() {
  int fd = open("/dev/null", O_RDWR);
  if (fd < 0) return;
  dup2(fd, 0);
  dup2(fd, 1);
  dup2(fd, 2);
  if (fd > 2) close(fd);
}

// A follower store (daemon/follower.h) mounted read-only.
tcfs::Result<std::unique_ptr<tcfs::daemon::Follower>> open_follower(const std::string& store_dir,
                                                                    const DaemonConfig& dc, const std::string& at) {
  tcfs::daemon::FollowerOptions fo;
  fo.store_dir = store_dir;
  fo.mountpoint = dc.mount.mountpoint;
  fo.cache_bytes = dc.evict.cache_bytes;
  fo.poll_ms = dc.poll_ms;
  fo.switch_wait_ms = dc.switch_wait_ms;
  fo.at = at;
  fo.version = "tcfs " TCFS_VERSION;
  return tcfs::daemon::Follower::open(fo);
}

int run_mount(const std::string& store_dir, const std::string& mountpoint, bool foreground,
              const std::vector<std::string>& opts, const std::string& at) {
  DaemonConfig dc;
  try {
    parse_o(opts, dc);
  } catch (const CLI::ValidationError& e) {
    fprintf(stderr, "tcfs: error: %s\n", e.what());
    return kExitUsage;
  }
  tcfs::fusefs::MountConfig& cfg = dc.mount;
  char* real = realpath(mountpoint.c_str(), nullptr);
  cfg.mountpoint = real ? real : mountpoint;
  free(real);
  tcfs::Status st = tcfs::fusefs::check_mountpoint(cfg.mountpoint, cfg.allow_nonempty);
  if (!st) return fail(st);
  if (!(st = tcfs::daemon::check_apart(store_dir, cfg.mountpoint))) return fail(st);
  if (!(st = tcfs::fusefs::check_dev_fuse())) return fail(st);
  auto follower = tcfs::daemon::is_follower(store_dir);
  if (!follower) return fail(follower.status());
  if (!at.empty() && !*follower)
    return fail(tcfs::Status::error(EINVAL, "--at needs a follower store (tcfs init --follow): " + store_dir +
                                                " is not one"));

  int notify_fd = -1;
  if (!foreground) {
    int rc = daemonize(&notify_fd);
    if (rc >= 0) return rc;
  }
  // After the fork (civetweb's threads would not survive it), before the
  // mount: an address the operator chose that is taken fails the mount.
  auto http = tcfs::daemon::MetricsHttp::start(dc.metrics);
  if (!http) return fail(http.status());
  tcfs::daemon::DaemonOptions o;
  o.store_dir = store_dir;
  o.mountpoint = cfg.mountpoint;
  o.limits = dc.limits;
  o.sync = dc.sync;
  o.evict = dc.evict;
  o.reserve_set = dc.reserve_set;
  o.journal = dc.journal;
  o.journal_bytes = dc.journal_bytes;
  o.version = "tcfs " TCFS_VERSION;
  tcfs::daemon::ServiceNotifier service;  // daemon/service.h: Type=notify units
  tcfs::daemon::ServiceNotifier::Figures figures;
  cfg.stopping = [&] { service.stopping(); };
  auto ready = [&] {
    service.ready(cfg.mountpoint, figures);
    if (notify_fd < 0) return;
    tcfs::init_logging("tcfs", tcfs::LogTarget::Syslog);
    if (chdir("/") != 0) { /* the mount works from any cwd */ }
    detach_stdio();
    char c = 'M';
    if (write(notify_fd, &c, 1) != 1) { /* parent gone: nothing to tell */ }
    close(notify_fd);
  };
  if (*follower) {
    auto f = open_follower(store_dir, dc, at);
    if (!f) return fail(f.status());
    figures = [fp = f->get()] { return fp->status(); };
    st = (*f)->run(cfg, ready);
  } else {
    auto d = tcfs::daemon::Daemon::open(o);
    if (!d) return fail(d.status());
    figures = [exec = (*d)->executor()] { return exec->figures(); };
    st = (*d)->run(cfg, ready);
  }
  if (!st) {
    spdlog::error("mount {}: {}", cfg.mountpoint, st.message());
    return fail(st);
  }
  return 0;
}


// mount(8) with type fuse.tcfs runs `tcfs STORE MOUNTPOINT -o OPTS` (via
// mount.fuse3); rewrite that form to `tcfs mount --mount-helper --store
// STORE ... MOUNTPOINT` (a remount reads its options differently then:
// remount.h).
std::vector<std::string> helper_form(int argc, char** argv) {
  std::vector<std::string> a(argv, argv + argc);
  bool subcommand = a.size() >= 2 && (a[1] == "mount" || a[1] == "init" || a[1] == "sync" ||
                                     a[1] == "status" || a[1] == "metrics" || a[1] == "stats" || a[1] == "fsck" || a[1] == "wait" || a[1] == "export-unsynced" || a[1] == "log" || a[1] == "promote" || a[1] == "gc" || a[1] == "scrub" || a[1] == "debug");
  if (a.size() >= 3 && a[1].rfind('-', 0) != 0 && !subcommand && a[2].rfind('-', 0) != 0) {
    std::vector<std::string> out = {a[0], "mount", "--mount-helper", "--store", a[1]};
    out.insert(out.end(), a.begin() + 3, a.end());
    out.push_back(a[2]);
    return out;
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  tcfs::init_logging("tcfs", tcfs::LogTarget::Stderr);
  std::vector<std::string> args = helper_form(argc, argv);
  std::vector<char*> argp;
  for (auto& s : args) argp.push_back(s.data());
  argc = static_cast<int>(argp.size());
  argv = argp.data();
  CLI::App app{"tcfs: a transactional FUSE filesystem over a local store backed by blobbers"};
  app.set_version_flag("--version", "tcfs " TCFS_VERSION);
  app.require_subcommand(1);

  std::string store_dir = default_store(), mountpoint;
  bool foreground = false;
  std::vector<std::string> opts;
  CLI::App* mount = app.add_subcommand("mount", "mount a store's tree on MOUNTPOINT");
  mount->add_option("--store", store_dir, "store directory (created on first mount)")
      ->default_str(default_store());
  mount->add_flag("-f,--foreground", foreground, "stay in the foreground, log to stderr");
  bool from_helper = false;  // run by mount(8) through mount.fuse3 (helper_form)
  mount->add_flag("--mount-helper", from_helper)->group("");
  std::string cache_size;
  mount->add_option("--cache-size", cache_size,
                    "keep the store's files under SIZE (e.g. 20G): clean files, least recently used first, "
                    "become stubs fetched back from the blobbers on use (same as -o cache_size=SIZE)");
  mount->add_option("-o", opts,
                    "mount options, comma separated: remount (change the flags of the tcfs mount on MOUNTPOINT in "
                    "place: ro, rw, noexec, ...; see tcfs(8)), nonempty (allow a non-empty mountpoint), "
                    "writeback=on|off (the kernel's writeback cache; default on), journal=on|off (stable writes through the endurant log; default on, but off on a store filesystem under 512 MiB), journal_size=SIZE (its size; default 64M), threads=N (most FUSE worker threads; default 16), clone_fd=on|off (a /dev/fuse descriptor per worker; default on), max_ops=N, max_inline=BYTES, max_fds=N "
                    "(compound limits), ctl_user_conns=N, ctl_user_mem=SIZE, ctl_idle=MS (control socket "
                    "limits per user; see tcfs(8)), sync_interval=MS (a sync round this long after a change; default "
                    "1000), cache_size=SIZE (see --cache-size), cache_reserve=SIZE (free space kept on the "
                    "store's filesystem by evicting clean files; default 5% of it, at most 1G; 0: none), "
                    "gc_keep_rounds=N, gc_keep_age=SECONDS (rounds tcfs gc keeps; default 64 and 86400; 0: no "
                    "age rule), snapshot_every=N (a snapshot of the tree on the blobbers every N rounds, from which "
                    "restores and followers start and after which gc can drop older journals; default 64; 0: "
                    "never), stop_timeout=SECONDS (at unmount or SIGTERM, the last sync round may take this long before it is cut and left to the next mount; default 90; 0: no limit), poll_interval=MS (a follower store: look for new rounds this often; default "
                    "1000), switch_wait=MS (a follower store: wait up to this long for a moment with nothing open "
                    "and no request before showing a new round; default 500; 0: at once), metrics=ADDR:PORT|off "
                    "(the Prometheus endpoint http://ADDR:PORT/metrics; default 127.0.0.1:9570, or the next free "
                    "port up to 9585; port 0: any free port; tcfs status shows it), or any FUSE option (e.g. ro, max_read=N)")
      ->allow_extra_args(false);
  std::string at;
  mount->add_option("--at", at,
                    "a follower store only: show round ROUND, or the newest round at TIME (@SECONDS or "
                    "'YYYY-MM-DD HH:MM[:SS]' UTC), and stay there (time travel)");
  mount->add_option("MOUNTPOINT", mountpoint, "an existing, empty directory")->required();

  std::vector<std::string> blobbers;
  std::string ec;
  // --progress / --no-progress (tools/tcfs/progress.h 2): a bar on stderr; default: when it is a terminal.
  bool prog_on = false, prog_off = false;
  auto progress_flags = [&](CLI::App* a) {
    a->add_flag("--progress", prog_on, "draw a progress bar on stderr (default: only when it is a terminal)");
    a->add_flag("--no-progress", prog_off, "no progress bar");
  };
  CLI::App* init = app.add_subcommand("init", "record the blobbers that back a store (the store is created if needed)");
  progress_flags(init);
  init->add_option("--store", store_dir, "store directory")->default_str(default_store());
  init->add_option("--blobber", blobbers,
                   "a blobber URL: dir:///ABSOLUTE/PATH or s3://BUCKET[/PREFIX] (endpoint, region and "
                   "credentials from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY); "
                   "repeat for several")
      ;
  std::vector<std::string> from;
  init->add_option("--from-blobbers", from,
                   "restore: rebuild the tree these blobbers hold into a new, empty store (as stubs whose "
                   "content is fetched on first use), then keep syncing to them");
  bool accept_older = false;
  bool follow = false;
  init->add_flag("--follow", follow,
                 "with --from-blobbers: make a follower store, a read-only view of the writer's chain that moves "
                 "to each new round (the writer keeps writing)");
  init->add_option("--at", at, "with --follow: start at round ROUND or at TIME instead of the newest (time travel)");
  init->add_flag("--accept-older", accept_older,
                 "restore: when a later round on the blobbers cannot be read, restore the newest round that "
                 "can (and say so) instead of failing");
  std::string key_file;
  init->add_option("--key-file", key_file,
                   "encrypt what the store sends to its blobbers (AES-256-GCM; blocks, packs, journals, "
                   "snapshots; block names become keyed hashes) with the 32-byte key in FILE (raw, or 64 hex "
                   "digits; mode 0600). A new set creates FILE with a random key if it does not exist: keep a "
                   "copy elsewhere, nothing on the blobbers can be read without it. A restore needs the set's key. "
                   "The store records FILE's path and reads it at every mount");
  init->add_option("--ec", ec,
                   "erasure code K+M over the K+M blobbers: any K of them rebuild the data "
                   "(default: 1+0 for one blobber, N-1+1 for N)");

  double timeout_s = 0;
  std::string target;
  CLI::App* sync = app.add_subcommand("sync", "wait until everything committed on a mount is on its blobbers");
  sync->add_option("MOUNTPOINT", target, "a tcfs mount")->required();
  sync->add_option("--timeout", timeout_s, "give up after S seconds (exit 1, saying what is pending)");
  bool sync_json = false;
  sync->add_flag("--json", sync_json, "print {\"mount\", \"round\", \"head\"}: the round that holds it all");
  progress_flags(sync);
  uint64_t wait_round = 0;
  CLI::App* wait = app.add_subcommand("wait", "wait until a mount (a follower) shows round ROUND or a newer one");
  wait->add_option("MOUNTPOINT", target, "a tcfs mount")->required();
  wait->add_option("ROUND", wait_round, "the round (tcfs sync --json on the writer prints it)")->required();
  wait->add_option("--timeout", timeout_s, "give up after S seconds (exit 1)");

  CLI::App* gc = app.add_subcommand("gc", "remove from the blobbers what no kept round needs (gc_keep_rounds, gc_keep_age, live followers)");
  gc->add_option("MOUNTPOINT", target, "a tcfs mount")->required();
  progress_flags(gc);
  CLI::App* scrub = app.add_subcommand("scrub", "check every shard on the blobbers and repair what it can");
  scrub->add_option("MOUNTPOINT", target, "a tcfs mount")->required();
  progress_flags(scrub);

  bool as_json = false;
  CLI::App* status = app.add_subcommand("status", "show a mount's sync state, blobber health and cache use");
  status->add_option("MOUNTPOINT", target, "a tcfs mount")->required();
  status->add_flag("--json", as_json, "print the daemon's figures as JSON");

  CLI::App* metrics = app.add_subcommand("metrics", "print a mount's metrics in the Prometheus text format");
  metrics->add_option("MOUNTPOINT", target, "a tcfs mount")->required();
  double stats_interval = 1;
  bool once = false;
  CLI::App* stats = app.add_subcommand("stats", "a live view of a mount: requests, bytes, compounds, sync, cache, blobbers per second");
  stats->add_option("MOUNTPOINT", target, "a tcfs mount")->required();
  stats->add_option("--interval", stats_interval, "seconds between two samples (default 1)");
  stats->add_flag("--once", once, "print one sample (over one interval) and exit");
  stats->add_flag("--json", as_json, "print each sample as one line of JSON");

  std::string fsck_store;
  bool repair = false;
  CLI::App* fsck = app.add_subcommand("fsck", "check a store nothing holds (offline): the endurant log, compounds cut short, "
                                              "leftover undo images, sync records; exit 0 clean, 1 repaired, 4 problems left, 8 "
                                              "not checked");
  fsck->add_option("STORE", fsck_store, "the store directory (not mounted)")->required();
  fsck->add_flag("--repair", repair, "fix what can be fixed safely (replay the log, roll compounds back, remove "
                                     "leftover images, have the next mount rescan) and say what could not");
  fsck->add_flag("--json", as_json, "print the report as JSON");
  bool remote = false;
  fsck->add_flag("--remote", remote, "also check the blobbers: the chain is whole, every object of the kept rounds "
                                     "and every block they name has K good shards and reads back");
  progress_flags(fsck);

  std::string export_dir;
  CLI::App* exp = app.add_subcommand(
      "export-unsynced", "copy a store's changes after its last synced round out (a fenced writer's, for merging)");
  exp->add_option("STORE", store_dir, "the store (not mounted)")->required();
  exp->add_option("DIR", export_dir, "a new or empty directory: tree/ gets the files, manifest.txt lists them")
      ->required();

  CLI::App* log = app.add_subcommand("log", "list the rounds of a mount's chain: time, size, writer (for --at)");
  log->add_option("MOUNTPOINT", target, "a tcfs mount with blobbers (a writer or a follower)");
  std::vector<std::string> log_blobbers;
  log->add_option("--blobber", log_blobbers, "read the chain from these blobbers instead of a mount (in order)")
      ->expected(1, -1);
  log->add_option("--ec", ec, "with --blobber: the erasure code K+M (default: as tcfs init)");
  log->add_option("--key-file", key_file, "with --blobber: the key of an encrypted set");
  log->add_flag("--json", as_json, "print the rounds as JSON");
  bool force = false;
  CLI::App* promote = app.add_subcommand("promote", "make a follower store (not mounted) the writer of its chain");
  promote->add_option("--store", store_dir, "the follower store")->default_str(default_store());
  promote->add_flag("--force", force,
                    "promote at the round reached even if the chain cannot be followed further, and take the next "
                    "round at the first mount (fences a writer that is gone)");

  // Hidden: for tests and developers.
  CLI::App* debug = app.add_subcommand("debug", "")->group("");
  debug->require_subcommand(1);
  CLI::App* crash_points =
      debug->add_subcommand("crash-points", "print every named crash point: name, protocol, where, state (tab-separated)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  if (*mount) {
    if (tcfs::cli::wants_remount(opts)) return tcfs::cli::run_remount(mountpoint, opts, from_helper, daemon_option);
    if (!cache_size.empty()) opts.push_back("cache_size=" + cache_size);
    return run_mount(store_dir, mountpoint, foreground, opts, at);
  }
  const std::optional<bool> progress = prog_off ? std::optional<bool>(false) : prog_on ? std::optional<bool>(true) : std::nullopt;
  if (*init) {
    if (!from.empty() && !blobbers.empty()) {
      fprintf(stderr, "tcfs: error: give either --blobber (a new set) or --from-blobbers (restore), not both\n");
      return kExitUsage;
    }
    if (from.empty() && blobbers.empty()) {
      fprintf(stderr, "tcfs: error: init needs --blobber URL... or --from-blobbers URL...\n");
      return kExitUsage;
    }
    if (follow && from.empty()) {
      fprintf(stderr, "tcfs: error: --follow goes with --from-blobbers (the writer's blobbers)\n");
      return kExitUsage;
    }
    if (accept_older && from.empty()) {
      fprintf(stderr, "tcfs: error: --accept-older goes with --from-blobbers (a restore)\n");
      return kExitUsage;
    }
    if (!at.empty() && !follow) {
      fprintf(stderr, "tcfs: error: --at goes with --follow (a follower store)\n");
      return kExitUsage;
    }
    return tcfs::cli::cmd_init(store_dir, from.empty() ? blobbers : from, ec, !from.empty() && !follow, accept_older,
                               key_file, follow, at, progress);
  }
  if (*crash_points) {
    for (const auto& p : tcfs::crash::kCrashPoints) printf("%s\t%s\t%s\t%s\n", p.name, p.protocol, p.where, p.state);
    return 0;
  }
  if (*sync) return tcfs::cli::cmd_sync(target, timeout_s, sync_json, progress);
  if (*log) {
    if (target.empty() == log_blobbers.empty()) {
      fprintf(stderr, "tcfs: error: log needs one of MOUNTPOINT and --blobber URL...\n");
      return kExitUsage;
    }
    return tcfs::cli::cmd_log(target, as_json, log_blobbers, ec, key_file);
  }
  if (*promote) return tcfs::cli::cmd_promote(store_dir, force);
  if (*exp) return tcfs::cli::cmd_export_unsynced(store_dir, export_dir);
  if (*wait) return tcfs::cli::cmd_wait(target, wait_round, timeout_s);
  if (*status) return tcfs::cli::cmd_status(target, as_json);
  if (*metrics) return tcfs::cli::cmd_metrics(target);
  if (*fsck) return tcfs::cli::cmd_fsck(fsck_store, repair, as_json, remote, progress);
  if (*stats) return tcfs::cli::cmd_stats(target, stats_interval, once, as_json);
  if (*gc) return tcfs::cli::cmd_maintain(target, "gc", progress);
  if (*scrub) return tcfs::cli::cmd_maintain(target, "scrub", progress);
  return kExitUsage;
}
