// difftest — differential random-operation tester (DESIGN.md §7).
//
//   difftest [--a DIR] [--b DIR] --seed N[,N...] --ops N [--files K]
//            [--check-every N] [--clear] [--shrink SECONDS] [--blocks]
//            [--perturb N:KIND] [--quiet] [--verbose]
//
// Applies the same seeded random sequence of POSIX operations to two trees
// (A: a native directory, default $TCFS_TEST_NATIVE; B: the tcfs mount,
// default $TCFS_TEST_MNT) and compares the result and errno of every op, the
// data ops return, and every --check-every (500) ops and at the end the
// whole trees. The op list depends on the seed alone, never on results, so
// any prefix replays exactly. Several seeds run one after the other, the
// trees emptied in between.
//
// On a mismatch it prints the seed, the op and both results, then
// binary-searches the shortest failing prefix on emptied trees and prints it
// with its last ops; with --shrink it also drops, within that many seconds,
// the ops the failure does not need. Exit 1 then; 0 with a summary of the
// ops run and the errnos seen; 2 on a usage error.
//
// --clear empties non-empty trees first (else they must be empty).
// --blocks also compares st_blocks of empty files (not deterministic on XFS).
// --perturb N:KIND is the tester's self-test: after op #N it changes B's
//   first regular file behind its back (KIND: chmod, data, xattr, unlink,
//   mtime, size), which must be reported.
#include <fcntl.h>
#include <signal.h>
#include <sys/xattr.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ops.h"
#include "side.h"

using namespace difftest;

namespace {

struct Args {
  std::string a, b;
  std::vector<uint64_t> seeds;
  size_t ops = 0;
  int files = 12;
  size_t check_every = 500;
  bool clear = false, quiet = false, verbose = false;
  double shrink = 0;
  // Self-test: after op #perturb_at, change B behind the tester's back.
  long long perturb_at = -1;
  std::string perturb_kind;
};

[[noreturn]] void usage(const char* msg) {
  fprintf(stderr,
          "difftest: %s\nusage: difftest [--a DIR] [--b DIR] --seed N[,N...] --ops N [--files K] "
          "[--check-every N] [--clear] [--shrink SECONDS] [--blocks] [--quiet] [--verbose]\n",
          msg);
  exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  if (const char* e = getenv("TCFS_TEST_NATIVE")) a.a = e;
  if (const char* e = getenv("TCFS_TEST_MNT")) a.b = e;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value for " + k).c_str());
      return argv[++i];
    };
    auto num = [&](const std::string& s) -> unsigned long long {
      char* end = nullptr;
      errno = 0;
      unsigned long long v = strtoull(s.c_str(), &end, 0);
      if (errno || s.empty() || *end) usage(("bad number for " + k + ": " + s).c_str());
      return v;
    };
    if (k == "--a") a.a = val();
    else if (k == "--b") a.b = val();
    else if (k == "--seed") {
      std::string v = val();
      for (size_t s = 0; s <= v.size();) {
        size_t c = v.find(',', s);
        if (c == std::string::npos) c = v.size();
        a.seeds.push_back(num(v.substr(s, c - s)));
        s = c + 1;
      }
    } else if (k == "--ops") a.ops = num(val());
    else if (k == "--files") a.files = int(num(val()));
    else if (k == "--check-every") a.check_every = num(val());
    else if (k == "--shrink") a.shrink = double(num(val()));
    else if (k == "--clear") a.clear = true;
    else if (k == "--quiet") a.quiet = true;
    else if (k == "--verbose") a.verbose = true;
    else if (k == "--blocks") g_compare_blocks = true;
    else if (k == "--perturb") {  // N:chmod|data|xattr|unlink|mtime|size
      std::string v = val();
      size_t c = v.find(':');
      if (c == std::string::npos) usage("--perturb wants N:KIND");
      a.perturb_at = (long long)num(v.substr(0, c));
      a.perturb_kind = v.substr(c + 1);
    }
    else usage(("unknown argument " + k).c_str());
  }
  if (a.a.empty() || a.b.empty()) usage("need --a and --b (or TCFS_TEST_NATIVE and TCFS_TEST_MNT)");
  if (a.seeds.empty()) usage("need --seed");
  if (a.ops == 0) usage("need --ops N > 0");
  if (a.files < 1 || a.files > 1000) usage("--files must be 1..1000");
  if (a.check_every == 0) a.check_every = ~size_t(0);
  return a;
}

// Results are equal, except that a directory entry type of DT_UNKNOWN
// matches any type (POSIX allows a filesystem not to report types).
bool same(const Op& op, const Res& a, const Res& b) {
  if (a == b) return true;
  if (op.kind != Kind::Readdir || a.ret != b.ret || a.err != b.err || a.data.size() != b.data.size()) return false;
  for (size_t i = 0; i < a.data.size(); ++i)
    if (a.data[i] != b.data[i] && a.data[i] != '?' && b.data[i] != '?') return false;
  return true;
}

struct Stats {
  std::map<int, long> errnos;  // A's errno (0 = success) -> count
  std::map<Kind, std::pair<long, long>> kinds;  // ok, failed
  std::map<Kind, std::map<int, long>> kind_errnos;
  long tree_checks = 0;
  long lenient_seeks = 0;  // SEEK_DATA/SEEK_HOLE answers that differ but are both true to the content
};

struct Record {
  size_t index;
  Res a, b;
};

struct Failure {
  size_t at = 0;  // index of the op after which the mismatch was seen
  std::vector<std::string> lines;
  bool dead = false;  // B stopped answering (ENOTCONN / ECONNABORTED): the daemon died
};

bool dead_errno(int e) { return e == ENOTCONN || e == ECONNABORTED; }

// The op being run, for the watchdog.
const std::vector<Op>* g_ops = nullptr;
volatile size_t g_cur = 0;
volatile uint64_t g_seed = 0;
volatile bool g_in_tree_check = false;

void on_alarm(int) {
  // Not async-signal-safe, but the process is about to exit anyway.
  if (g_in_tree_check)
    fprintf(stderr, "difftest: seed %llu: tree comparison after op #%zu hung (120 s)\n",
            (unsigned long long)g_seed, size_t(g_cur));
  else
    fprintf(stderr, "difftest: seed %llu: op #%zu hung (120 s): %s\n", (unsigned long long)g_seed, size_t(g_cur),
            g_ops ? describe((*g_ops)[g_cur]).c_str() : "?");
  _exit(3);
}

// Self-test of the tester: changes the first regular file of `dir` (in
// path order) behind the tester's back, the way a buggy filesystem might.
void perturb(const std::string& dir, const std::string& kind) {
  Tree t = snapshot(dir);
  for (auto& [p, e] : t) {
    if (!S_ISREG(e.st.st_mode) || !e.err.empty()) continue;
    std::string f = dir + "/" + p;
    int rc = 0;
    if (kind == "chmod") rc = chmod(f.c_str(), (e.st.st_mode & 07777) ^ 0001);
    else if (kind == "unlink") rc = unlink(f.c_str());
    else if (kind == "xattr") rc = setxattr(f.c_str(), "user.perturbed", "1", 1, 0);
    else if (kind == "size") rc = truncate(f.c_str(), e.st.st_size + 1);
    else if (kind == "mtime") {
      struct timespec ts[2] = {{0, UTIME_OMIT}, {kExplicitLo + 12345, 0}};
      rc = utimensat(AT_FDCWD, f.c_str(), ts, AT_SYMLINK_NOFOLLOW);
    } else if (kind == "data") {
      if (e.st.st_size == 0) continue;
      int fd = open(f.c_str(), O_RDWR);
      char c = 0;
      rc = fd < 0 ? -1 : pread(fd, &c, 1, e.st.st_size / 2) == 1 && (c ^= 0x5a, pwrite(fd, &c, 1, e.st.st_size / 2) == 1) ? 0 : -1;
      if (fd >= 0) close(fd);
    } else {
      fprintf(stderr, "difftest: unknown --perturb kind %s\n", kind.c_str());
      exit(2);
    }
    fprintf(stderr, "difftest: self-test: %s of %s behind the tester's back: %s\n", kind.c_str(), f.c_str(),
            rc == 0 ? "done" : strerror(errno));
    return;
  }
  fprintf(stderr, "difftest: self-test: no regular file to perturb in %s\n", dir.c_str());
}

class Runner {
 public:
  Runner(Side& a, Side& b, size_t check_every, long long perturb_at = -1, std::string perturb_kind = "",
         bool verbose = false)
      : a_(a), b_(b), check_every_(check_every), perturb_at_(perturb_at), perturb_kind_(std::move(perturb_kind)),
        verbose_(verbose) {}

  // Runs ops[i] for i in `idx` on both sides (trees as they are); returns the
  // first mismatch. With `hist`, keeps the last `hist_len` results.
  std::optional<Failure> run(const std::vector<Op>& ops, const std::vector<size_t>& idx, Stats* stats,
                             std::vector<Record>* hist = nullptr, size_t hist_len = 0, bool periodic = true) {
    g_ops = &ops;
    if (auto f = tree_check(0, "before the first op")) return f;
    for (size_t j = 0; j < idx.size(); ++j) {
      size_t i = idx[j];
      g_cur = i;
      alarm(120);
      Res ra = a_.exec(ops[i]);
      Res rb = b_.exec(ops[i]);
      alarm(0);
      bool continue_after_lenient = false;
      if (stats) {
        stats->errnos[ra.err]++;
        auto& k = stats->kinds[ops[i].kind];
        (ra.ret < 0 ? k.second : k.first)++;
        stats->kind_errnos[ops[i].kind][ra.err]++;
      }
      if (hist) {
        hist->push_back({i, ra, rb});
        if (hist->size() > hist_len) hist->erase(hist->begin());
      }
      if ((long long)i == perturb_at_) perturb(b_.dir(), perturb_kind_);
      if (!same(ops[i], ra, rb) && ops[i].kind == Kind::Lseek &&
          (ops[i].flags == SEEK_DATA || ops[i].flags == SEEK_HOLE)) {
        // Different data/hole boundaries are fine if both are true to the content.
        std::string va = a_.seek_valid(ops[i], ra), vb = b_.seek_valid(ops[i], rb);
        if (va.empty() && vb.empty()) {
          if (stats) stats->lenient_seeks++;
          if (verbose_)
            printf("  op #%zu %s: A %s, B %s: both true to the content\n", i, describe(ops[i]).c_str(),
                   format_res(ra).c_str(), format_res(rb).c_str());
          continue_after_lenient = true;
        } else {
          rb.data += " (" + (vb.empty() ? "valid" : vb) + "; A: " + (va.empty() ? "valid" : va) + ")";
        }
      }
      if (!continue_after_lenient && !same(ops[i], ra, rb)) {
        Failure f;
        f.at = i;
        f.dead = dead_errno(rb.err);
        f.lines.push_back("op #" + std::to_string(i) + ": " + describe(ops[i]));
        f.lines.push_back("  A: " + format_res(ra));
        f.lines.push_back("  B: " + format_res(rb));
        f.lines.push_back("  (" + diff_res(ra, rb) + ")");
        return f;
      }
      if (periodic && (j + 1) % check_every_ == 0) {
        if (stats) stats->tree_checks++;
        if (auto f = tree_check(i, "after op #" + std::to_string(i))) return f;
      }
    }
    size_t last = idx.empty() ? 0 : idx.back();
    if (auto f = tree_check(last, "at the end, fds open")) return f;
    a_.close_all();
    b_.close_all();
    if (stats) stats->tree_checks += 2;
    return tree_check(last, "at the end, all fds closed");
  }

  // Empties both trees, then run().
  std::optional<Failure> replay(const std::vector<Op>& ops, const std::vector<size_t>& idx,
                                std::vector<Record>* hist = nullptr, size_t hist_len = 0) {
    std::string ea = a_.clear(), eb = b_.clear();
    if (!ea.empty() || !eb.empty()) {
      fprintf(stderr, "difftest: cannot empty the trees: %s %s\n", ea.c_str(), eb.c_str());
      exit(1);
    }
    // No periodic tree checks: the one at the end sees any divergence.
    return run(ops, idx, nullptr, hist, hist_len, false);
  }

 private:
  std::optional<Failure> tree_check(size_t at, const std::string& when) {
    g_in_tree_check = true;
    g_cur = at;
    alarm(120);
    Tree ta = snapshot(a_.dir()), tb = snapshot(b_.dir());
    auto d = compare_trees(a_.dir(), ta, b_.dir(), tb);
    alarm(0);
    g_in_tree_check = false;
    if (d.empty()) return std::nullopt;
    Failure f;
    f.at = at;
    f.dead = b_.dead();
    if (f.dead && d.size() > 3) d.resize(3);
    f.lines.push_back("trees differ " + when + (f.dead ? " (B no longer answers):" : ":"));
    for (auto& l : d) f.lines.push_back("  " + l);
    return f;
  }

  Side& a_;
  Side& b_;
  size_t check_every_;
  long long perturb_at_;
  std::string perturb_kind_;
  bool verbose_;
};

std::vector<size_t> iota(size_t n) {
  std::vector<size_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

void print_failure(const Failure& f) {
  for (auto& l : f.lines) printf("%s\n", l.c_str());
}

void print_listing(const std::vector<Op>& ops, const std::vector<Record>& hist) {
  for (auto& r : hist) {
    bool eq = same(ops[r.index], r.a, r.b);
    printf("  #%-6zu %s\n          A: %s\n", r.index, describe(ops[r.index]).c_str(), format_res(r.a).c_str());
    if (!eq) printf("          B: %s   <-- differs\n", format_res(r.b).c_str());
  }
}

// Shortest failing prefix, then (optionally) a greedy chunk-removal pass.
void minimize(const Args& args, uint64_t seed, const std::vector<Op>& ops, Runner& runner, size_t fail_at) {
  using clock = std::chrono::steady_clock;
  size_t lo = 0, hi = fail_at + 1;  // replaying hi ops fails (if deterministic); 0 ops never differ
  printf("difftest: seed %llu: searching the shortest failing prefix of %zu ops...\n", (unsigned long long)seed, hi);
  fflush(stdout);
  if (!runner.replay(ops, iota(hi))) {
    printf("difftest: seed %llu: the first %zu ops do NOT fail again on emptied trees (not reproducible; "
           "timing or state outside the trees?)\n",
           (unsigned long long)seed, hi);
    return;
  }
  while (lo + 1 < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (runner.replay(ops, iota(mid))) hi = mid;
    else lo = mid;
  }
  std::vector<Record> hist;
  auto f = runner.replay(ops, iota(hi), &hist, 15);
  printf("difftest: seed %llu: shortest failing prefix: %zu ops (replay with --seed %llu --ops %zu)\n",
         (unsigned long long)seed, hi, (unsigned long long)seed, hi);
  if (f) print_failure(*f);
  printf("last ops of the prefix (A's result; B's where it differs):\n");
  print_listing(ops, hist);

  if (args.shrink <= 0) return;
  auto deadline = clock::now() + std::chrono::duration<double>(args.shrink);
  std::vector<size_t> cur = iota(hi);
  bool timed_out = false;
  auto try_cand = [&](const std::vector<size_t>& cand) {
    if (clock::now() > deadline) {
      timed_out = true;
      return false;
    }
    if (cand.empty() || !runner.replay(ops, cand)) return false;
    cur = cand;
    return true;
  };
  // First whole op kinds (cheap, removes most of the noise), then ddmin-style
  // chunks of shrinking size. The last op (where the mismatch shows) stays.
  for (int k = 0; k < int(Kind::Count) && !timed_out; ++k) {
    std::vector<size_t> cand;
    for (size_t j = 0; j + 1 < cur.size(); ++j)
      if (ops[cur[j]].kind != Kind(k)) cand.push_back(cur[j]);
    cand.push_back(cur.back());
    if (cand.size() < cur.size()) try_cand(cand);
  }
  for (size_t chunk = std::max<size_t>(1, cur.size() / 2); !timed_out; chunk /= 2) {
    for (size_t pos = 0; pos + 1 < cur.size() && !timed_out;) {
      size_t end = std::min(cur.size() - 1, pos + chunk);
      std::vector<size_t> cand(cur.begin(), cur.begin() + long(pos));
      cand.insert(cand.end(), cur.begin() + long(end), cur.end());
      if (!try_cand(cand)) pos = end;
    }
    if (chunk <= 1) break;
  }
  hist.clear();
  f = runner.replay(ops, cur, &hist, cur.size());
  printf("difftest: seed %llu: %s to %zu ops that still fail:\n", (unsigned long long)seed,
         timed_out ? "shrunk (time budget reached)" : "shrunk", cur.size());
  if (hist.size() <= 60) print_listing(ops, hist);
  else {
    for (size_t i : cur) printf("  #%-6zu %s\n", i, describe(ops[i]).c_str());
  }
  if (f) print_failure(*f);
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  Args args = parse(argc, argv);
  signal(SIGALRM, on_alarm);
  signal(SIGPIPE, SIG_IGN);
  try {
    Side a(args.a), b(args.b);
    if (!args.clear && (!a.empty() || !b.empty())) {
      fprintf(stderr, "difftest: %s or %s is not empty (pass --clear to empty them)\n", args.a.c_str(),
              args.b.c_str());
      return 2;
    }
    Runner runner(a, b, args.check_every, args.perturb_at, args.perturb_kind, args.verbose);
    GenConfig cfg;
    cfg.files = args.files;
    long total_ops = 0;
    for (size_t si = 0; si < args.seeds.size(); ++si) {
      uint64_t seed = args.seeds[si];
      g_seed = seed;
      // The umask varies with the seed: modes must come out the same either way.
      static const mode_t umasks[] = {022, 0, 027, 077};
      umask(umasks[seed % 4]);
      if (si > 0 || args.clear) {
        std::string ea = a.clear(), eb = b.clear();
        if (!ea.empty() || !eb.empty()) {
          fprintf(stderr, "difftest: cannot empty the trees: %s %s\n", ea.c_str(), eb.c_str());
          return 1;
        }
      }
      auto t0 = std::chrono::steady_clock::now();
      std::vector<Op> ops = generate(seed, args.ops, cfg);
      Stats stats;
      std::vector<Record> hist;
      auto f = runner.run(ops, iota(ops.size()), &stats, &hist, 15);
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (f) {
        printf("difftest: MISMATCH: seed %llu, op #%zu (A=%s, B=%s)\n", (unsigned long long)seed, f->at,
               args.a.c_str(), args.b.c_str());
        print_failure(*f);
        printf("the last ops run (A's result; B's where it differs):\n");
        print_listing(ops, hist);
        if (f->dead || b.dead()) {
          printf("difftest: seed %llu: %s stopped answering (ENOTCONN): the daemon died at or before op #%zu; "
                 "not minimizing (rerun with --ops %zu --check-every 1 to pin the op)\n",
                 (unsigned long long)seed, args.b.c_str(), f->at, f->at + 1);
          return 1;
        }
        minimize(args, seed, ops, runner, f->at);
        return 1;
      }
      total_ops += long(ops.size());
      std::string errs;
      for (auto& [e, n] : stats.errnos) {
        const char* name = e ? strerrorname_np(e) : "OK";
        errs += " " + std::string(name ? name : std::to_string(e).c_str()) + "=" + std::to_string(n);
      }
      printf("difftest: seed %llu: %zu ops, 0 mismatches, %ld tree checks, %ld SEEK_DATA/HOLE answers "
             "different but both valid, %.1f s; results:%s\n",
             (unsigned long long)seed, ops.size(), stats.tree_checks, stats.lenient_seeks, secs, errs.c_str());
      if (!args.quiet) {
        std::string ks;
        for (auto& [k, c] : stats.kinds)
          ks += " " + std::string(kind_name(k)) + "=" + std::to_string(c.first) + "/" + std::to_string(c.second);
        printf("  per op (ok/failed):%s\n", ks.c_str());
      }
      if (args.verbose) {
        for (auto& [k, m] : stats.kind_errnos) {
          std::string ks;
          for (auto& [e, n] : m) {
            const char* name = e ? strerrorname_np(e) : "OK";
            ks += " " + std::string(name ? name : "?") + "=" + std::to_string(n);
          }
          printf("  %-16s%s\n", kind_name(k), ks.c_str());
        }
      }
    }
    printf("difftest: OK: %zu seed(s), %ld ops, 0 mismatches\n", args.seeds.size(), total_ops);
  } catch (const std::exception& e) {
    fprintf(stderr, "difftest: %s\n", e.what());
    return 1;
  }
  return 0;
}
