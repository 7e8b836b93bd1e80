// tcfs-batch — run compounds on a tcfs mount: all-or-nothing batches of
// file operations.
//
//   tcfs-batch run FILE|-            NDJSON, one operation per line
//   tcfs-batch put SRC... DEST       local files and trees into the mount
//   tcfs-batch mkdir [-p] DIR...
//   tcfs-batch rm [-r] PATH...
//   tcfs-batch mv SRC... DEST
//   tcfs-batch cp [-r] SRC... DEST   server-side copies inside the mount
//
// The daemon is found from the paths alone (the tcfs mount they are in).
// Exit codes: 0 committed; 1 rolled back (or, with --no-txn, partial);
// 2 usage or request errors (bad file, not in a tcfs mount, rejected).
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "ndjson.h"
#include "tcfs/client.h"

namespace {

using tcfs::Compound;
using tcfs::Op;
using tcfs::OpKind;

constexpr int kCommitted = 0, kRolledBack = 1, kUsage = 2;
constexpr off_t kInlineMax = 1 << 20;  // put: larger files go as descriptors

struct Common {
  bool no_sync = false, no_txn = false, json = false, quiet = false, verbose = false;
  std::string dir;  // -C
};

int usage_error(const std::string& msg) {
  fprintf(stderr, "tcfs-batch: error: %s\n", msg.c_str());
  return kUsage;
}

std::string err_name(int e) {
  const char* n = strerrorname_np(e);
  return n ? n : std::to_string(e);
}

std::string op_path(const Op& o) { return o.path2.empty() ? o.path : o.path + " -> " + o.path2; }

void print_table(const Compound& c, const tcfs::CompoundReply& r, bool all) {
  size_t n = c.ops.size();
  bool show_all = all || n <= 100;
  if (show_all || r.failed_op >= 0) printf("%6s  %-11s  %-10s  %10s  %s\n", "#", "OP", "RESULT", "BYTES", "PATH");
  for (size_t i = 0; i < n; ++i) {
    bool failed = static_cast<int>(i) == r.failed_op;
    if (!show_all && !failed) continue;
    const tcfs::OpResult* x = i < r.results.size() ? &r.results[i] : nullptr;
    std::string res = failed ? err_name(r.err)
                      : !x || !x->ran ? "not run"
                      : r.outcome == tcfs::Outcome::RolledBack ? "undone"
                                                               : "ok";
    OpKind k = c.ops[i].kind;
    std::string bytes = (k == OpKind::Write || k == OpKind::Copy) && x && x->ran ? std::to_string(x->bytes) : "-";
    printf("%6zu  %-11s  %-10s  %10s  %s\n", i, tcfs::op_kind_name(k), res.c_str(), bytes.c_str(),
           op_path(c.ops[i]).c_str());
  }
}

void print_json(const tcfs::CompoundReply& r) {
  nlohmann::json res = nlohmann::json::array();
  for (const auto& x : r.results)
    res.push_back({{"errno", x.err}, {"error", x.err ? err_name(x.err) : ""}, {"bytes", x.bytes}, {"ran", x.ran}});
  nlohmann::json j = {{"outcome", tcfs::outcome_name(r.outcome)}, {"failed_op", r.failed_op},
                      {"errno", r.err}, {"error", r.err ? err_name(r.err) : ""},
                      {"message", r.message}, {"txn", r.txn_id}, {"results", res}};
  // A message may name a path that is not UTF-8: its bytes are replaced, never a throw.
  printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

class Progress {
 public:
  explicit Progress(bool on) : on_(on) {}
  ~Progress() { done(); }
  void update(size_t d, size_t total) {
    if (!on_ || total == 0) return;
    int pct = static_cast<int>(d * 100 / total);
    if (pct == last_) return;
    last_ = pct;
    int w = 40, fill = pct * w / 100;
    fprintf(stderr, "\r[%s%s] %3d%% %zu/%zu ops", std::string(static_cast<size_t>(fill), '#').c_str(),
            std::string(static_cast<size_t>(w - fill), ' ').c_str(), pct, d, total);
    shown_ = true;
  }
  void done() {
    if (shown_) fprintf(stderr, "\r%*s\r", 70, "");
    shown_ = false;
  }

 private:
  bool on_;
  int last_ = -1;
  bool shown_ = false;
};

// Sends c (closing its descriptors), prints the outcome, returns the exit code.
int submit(tcfs::Client& cl, Compound& c, const Common& o) {
  c.options.txn = !o.no_txn;
  c.options.sync = !o.no_sync;
  Progress bar(!o.quiet && !o.json && isatty(2) && c.ops.size() >= 100);
  auto r = cl.submit(c, [&](size_t d, size_t t) { bar.update(d, t); });
  bar.done();
  for (int fd : c.fds) close(fd);
  if (!r) return usage_error(r.status().message());
  if (o.json) print_json(*r);
  else if (r->outcome == tcfs::Outcome::Rejected) fprintf(stderr, "tcfs-batch: request rejected: %s (%s)\n", r->message.c_str(), err_name(r->err).c_str());
  else {
    if (!o.quiet) print_table(c, *r, o.verbose);
    if (r->outcome == tcfs::Outcome::Committed) {
      if (!o.quiet) printf("committed: %zu operation(s)%s\n", c.ops.size(), o.no_sync ? " (not yet durable: --no-sync)" : "");
    } else {
      const char* what = r->outcome == tcfs::Outcome::Partial ? "stopped (--no-txn: earlier operations stay)"
                                                              : "rolled back, nothing changed";
      if (r->failed_op < 0)  // every operation ran; the commit itself failed
        fprintf(stderr, "tcfs-batch: %s: %s (%s)\n", what, r->message.c_str(), err_name(r->err).c_str());
      else
        fprintf(stderr, "tcfs-batch: %s: operation %d failed: %s (%s)\n", what, r->failed_op, r->message.c_str(),
                err_name(r->err).c_str());
    }
  }
  switch (r->outcome) {
    case tcfs::Outcome::Committed: return kCommitted;
    case tcfs::Outcome::RolledBack:
    case tcfs::Outcome::Partial: return kRolledBack;
    case tcfs::Outcome::Rejected: return kUsage;
  }
  return kUsage;
}

// Absolute, lexically normalised; relative paths against -C DIR if given.
std::string with_dir(const Common& o, const std::string& p) {
  if (o.dir.empty() || (!p.empty() && p[0] == '/')) return tcfs::absolute_path(p);
  return tcfs::absolute_path(o.dir + "/" + p);
}

// Makes op's paths mount-relative; "" or the reason naming the path.
std::string make_relative(const tcfs::Client& cl, Op& op, const Common& o) {
  for (std::string* p : {&op.path, &op.path2}) {
    if (p->empty()) continue;
    auto rel = cl.relative(with_dir(o, *p));
    if (!rel) return rel.status().what();
    if (rel->empty()) return *p + " is the root of the mount " + cl.mount().mountpoint + " itself";
    *p = *rel;
  }
  return {};
}

// The device number of the mount cl talks to (0 if it cannot be told).
// Files on it are never passed as descriptors: the daemon does no I/O
// through its own mount and refuses them (EDEADLK); they travel as "copy".
dev_t mount_dev(const tcfs::Client& cl) {
  struct stat st;
  return stat(cl.mount().mountpoint.c_str(), &st) == 0 ? st.st_dev : 0;
}

// The daemon takes at most max_fds descriptors per compound: say so before sending.
std::string check_fds(tcfs::Client& cl, const Compound& c) {
  if (c.fds.empty()) return {};
  auto h = cl.hello();
  if (!h) return h.status().message();
  if (h->max_fds && c.fds.size() > h->max_fds)
    return "this compound passes " + std::to_string(c.fds.size()) + " file descriptors (one per file over 1 MiB or " +
           "\"from\" line), more than the daemon's limit of " + std::to_string(h->max_fds) +
           " (mount option max_fds); split it into several runs";
  return {};
}

void close_fds(Compound& c) {
  for (int fd : c.fds) close(fd);
  c.fds.clear();
}

// Connects for the first path and makes every op path mount-relative.
// Makes every op path mount-relative for cl and submits.
int run_ops_on(tcfs::Client& cl, Compound& c, const Common& o) {
  std::string err;
  for (auto& op : c.ops)
    if (err.empty()) err = make_relative(cl, op, o);
  if (err.empty()) err = check_fds(cl, c);
  if (!err.empty()) {
    close_fds(c);
    return usage_error(err);
  }
  return submit(cl, c, o);
}

int run_ops(Compound& c, const std::vector<std::string>& anchors, const Common& o) {
  if (anchors.empty()) return usage_error("no paths");
  auto cl = tcfs::Client::for_path(with_dir(o, anchors.front()));
  if (!cl) {
    close_fds(c);
    return usage_error(cl.status().message());
  }
  return run_ops_on(*cl, c, o);
}

void raise_nofile() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

std::string open_error(const std::string& path) {
  std::string why = strerror(errno);
  if (errno == EMFILE || errno == ENFILE) {
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    why += " (every file passed as a descriptor stays open until the compound is sent; the limit is " +
           std::to_string(rl.rlim_cur) + ": raise `ulimit -n`, or split the batch)";
  }
  return "cannot open " + path + ": " + why;
}

// Resolves and opens what the parsed lines name; every problem as "FILE:LINE: reason".
std::vector<std::string> build_from_lines(std::vector<tcfs::batch::ParsedOp>& parsed, const std::string& name,
                                          const Common& o, std::optional<tcfs::Client>& cl, Compound& c) {
  std::vector<std::string> errors;
  auto at = [&](int line, const std::string& why) { errors.push_back(name + ":" + std::to_string(line) + ": " + why); };
  auto first = tcfs::Client::for_path(with_dir(o, parsed.front().op.path));
  if (!first) {
    at(parsed.front().line, first.status().message());
    return errors;
  }
  cl.emplace(std::move(first.value()));
  const dev_t own = mount_dev(*cl);
  for (auto& p : parsed) {
    if (std::string e = make_relative(*cl, p.op, o); !e.empty()) at(p.line, e);
    if (p.from.empty()) {
      c.ops.push_back(std::move(p.op));
      continue;
    }
    std::string local = with_dir(o, p.from);
    int fd = open(local.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      at(p.line, open_error(p.from));
      continue;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_dev == own) {
      close(fd);
      at(p.line, p.from + " lies inside the tcfs mount " + cl->mount().mountpoint +
                     ", which the daemon never reads through: use {\"op\":\"copy\",\"path\":SOURCE,\"to\":TARGET}");
      continue;
    }
    p.op.fd_index = static_cast<int32_t>(c.fds.size());
    c.fds.push_back(fd);
    c.ops.push_back(std::move(p.op));
  }
  return errors;
}

int cmd_run(const std::string& file, const Common& o) {
  std::ifstream f;
  std::istream* in = &std::cin;
  std::string name = file == "-" ? "<stdin>" : file;
  if (file != "-") {
    f.open(file);
    if (!f) return usage_error("cannot open " + file + ": " + strerror(errno));
    in = &f;
  }
  auto parsed = tcfs::batch::parse_ndjson(*in);
  if (parsed.errors.empty() && parsed.ops.empty()) return usage_error(name + " holds no operations");
  raise_nofile();
  Compound c;
  std::optional<tcfs::Client> cl;
  // Every bad line, in line order: syntax and schema first, then paths and "from" files.
  std::vector<std::pair<int, std::string>> bad;
  for (const auto& e : parsed.errors) bad.emplace_back(std::atoi(e.c_str()), name + ":" + e);
  if (!parsed.ops.empty())
    for (auto& e : build_from_lines(parsed.ops, name, o, cl, c)) bad.emplace_back(std::atoi(e.c_str() + name.size() + 1), e);
  std::stable_sort(bad.begin(), bad.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> errors;
  for (auto& b : bad) errors.push_back(std::move(b.second));
  if (errors.empty())
    if (std::string e = check_fds(*cl, c); !e.empty()) errors.push_back(name + ": " + e);
  if (!errors.empty()) {
    close_fds(c);
    for (const auto& e : errors) fprintf(stderr, "%s\n", e.c_str());
    fprintf(stderr, "tcfs-batch: %zu error(s) in %s; nothing was run\n", errors.size(), name.c_str());
    return kUsage;
  }
  return submit(*cl, c, o);
}

bool is_dir_in_mount(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string base_name(const std::string& p) {
  std::string s = p;
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  size_t i = s.rfind('/');
  return i == std::string::npos ? s : s.substr(i + 1);
}

// DEST/basename(SRC) when DEST is a directory (or there are several
// sources), else DEST: the cp/mv rule.
std::string target_for(const std::string& src, const std::string& dest, bool many) {
  return (many || is_dir_in_mount(dest)) ? dest + "/" + base_name(src) : dest;
}

// Sorted names in a directory (local, or inside the mount).
bool list_dir(const std::string& dir, std::vector<std::string>* names, std::string* err) {
  DIR* d = opendir(dir.c_str());
  if (!d) return *err = dir + ": " + strerror(errno), false;
  while (dirent* e = readdir(d))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) names->push_back(e->d_name);
  closedir(d);
  std::sort(names->begin(), names->end());
  return true;
}

// A symlink like src, as dst.
bool add_symlink(Compound& c, const std::string& src, const std::string& dst, std::string* err) {
  char t[PATH_MAX];
  ssize_t n = readlink(src.c_str(), t, sizeof t);
  if (n < 0) return *err = src + ": " + strerror(errno), false;
  c.symlink(std::string(t, static_cast<size_t>(n)), dst);
  return true;
}

// A regular file's bytes into dst: inline when small, else as a descriptor.
bool add_content(Compound& c, const std::string& src, const std::string& dst, off_t size, std::string* err) {
  int fd = open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return *err = open_error(src), false;
  if (size > kInlineMax) {
    c.write_fd(dst, fd);
  } else {
    std::string data(static_cast<size_t>(size), '\0');
    ssize_t n = pread(fd, data.data(), data.size(), 0);
    close(fd);
    if (n < 0) return *err = src + ": " + strerror(errno), false;
    data.resize(static_cast<size_t>(n));
    if (!data.empty()) c.write(dst, std::move(data));
  }
  return true;
}

// put: one local object (recursively) into the compound.
// own_dev: the device of DEST's mount; a big file on it becomes a "copy"
// inside the mount instead of a passed descriptor (see mount_dev()).
bool add_local(Compound& c, const std::string& src, const std::string& dst, dev_t own_dev, std::string* err) {
  struct stat st;
  if (lstat(src.c_str(), &st) != 0) {
    *err = src + ": " + strerror(errno);
    return false;
  }
  tcfs::Timestamp mt{st.st_mtim.tv_sec, static_cast<uint32_t>(st.st_mtim.tv_nsec), false};
  if (S_ISLNK(st.st_mode)) return add_symlink(c, src, dst, err);
  if (S_ISDIR(st.st_mode)) {
    // Writable by its owner while it is filled; its own mode comes last.
    c.mkdir(dst, (st.st_mode & 07777) | S_IRWXU, true);
    std::vector<std::string> names;
    if (!list_dir(src, &names, err)) return false;
    for (const auto& n : names)
      if (!add_local(c, src + "/" + n, dst + "/" + n, own_dev, err)) return false;
    c.chmod(dst, st.st_mode & 07777);
    c.utimes(dst, std::nullopt, mt);
    return true;
  }
  if (!S_ISREG(st.st_mode)) {
    *err = src + ": only regular files, directories and symlinks can be put";
    return false;
  }
  c.create(dst, (st.st_mode & 07777) | S_IRUSR | S_IWUSR, false, true);
  if (st.st_size > kInlineMax && st.st_dev == own_dev) {
    c.copy(src, dst);
  } else if (!add_content(c, src, dst, st.st_size, err)) {
    return false;
  }
  c.chmod(dst, st.st_mode & 07777);
  c.utimes(dst, std::nullopt, mt);
  return true;
}

int cmd_put(const std::vector<std::string>& args, const Common& o) {
  if (args.size() < 2) return usage_error("put needs SRC... DEST");
  raise_nofile();
  std::string dest = with_dir(o, args.back());
  bool many = args.size() > 2;
  auto cl = tcfs::Client::for_path(dest);
  if (!cl) return usage_error(cl.status().message());
  dev_t own = mount_dev(*cl);
  Compound c;
  std::string err;
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    std::string src = with_dir(o, args[i]);
    if (!add_local(c, src, target_for(src, dest, many), own, &err)) {
      close_fds(c);
      return usage_error(err);
    }
  }
  return run_ops_on(*cl, c, o);
}

// cp -r inside the mount: walk the source through the mount.
bool add_copy(Compound& c, const std::string& src, const std::string& dst, bool recursive, std::string* err) {
  struct stat st;
  if (lstat(src.c_str(), &st) != 0) return *err = src + ": " + strerror(errno), false;
  if (S_ISDIR(st.st_mode)) {
    if (!recursive) return *err = src + " is a directory (use -r)", false;
    c.mkdir(dst, (st.st_mode & 07777) | S_IRWXU);
    std::vector<std::string> names;
    if (!list_dir(src, &names, err)) return false;
    for (const auto& n : names)
      if (!add_copy(c, src + "/" + n, dst + "/" + n, recursive, err)) return false;
    if ((st.st_mode & S_IRWXU) != S_IRWXU) c.chmod(dst, st.st_mode & 07777);
    return true;
  }
  if (S_ISLNK(st.st_mode)) return add_symlink(c, src, dst, err);
  c.copy(src, dst);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tcfs-batch: run all-or-nothing batches of file operations (compounds) on a tcfs mount"};
  app.set_version_flag("--version", "tcfs-batch " TCFS_VERSION);
  app.require_subcommand(1);
  Common o;
  app.add_flag("--no-sync", o.no_sync, "atomic, but a crash may roll the committed compound back (faster)");
  app.add_flag("--no-txn", o.no_txn, "best effort: stop at the first error, undo nothing (to measure the cost of transactions)");
  app.add_flag("--json", o.json, "print the reply as JSON");
  app.add_flag("-q,--quiet", o.quiet, "print nothing but errors");
  app.add_flag("-v,--verbose", o.verbose, "print every operation's row, however many");
  app.add_option("-C,--directory", o.dir, "resolve relative paths against DIR instead of the current directory")
      ->option_text("DIR");
  app.footer("Exit status: 0 committed; 1 rolled back (with --no-txn: stopped part way); 2 usage, NDJSON or\n"
             "request error (nothing changed). The NDJSON schema and examples: man tcfs-batch.");

  std::string file;
  auto* run = app.add_subcommand("run", "run the compound in FILE (NDJSON, one operation per line; - = stdin)");
  run->add_option("FILE", file, "NDJSON file, or - for standard input")->required();
  std::vector<std::string> args;
  auto* put = app.add_subcommand("put", "write local files and directory trees into the mount as one compound");
  put->add_option("PATHS", args, "SRC... DEST")->required()->expected(2, -1);
  bool parents = false, recursive = false;
  auto* mk = app.add_subcommand("mkdir", "create directories, all or none");
  mk->add_flag("-p,--parents", parents, "create missing parents; no error if a directory exists");
  mk->add_option("DIRS", args, "directories")->required();
  auto* rm = app.add_subcommand("rm", "remove files (and with -r, whole trees), all or none");
  rm->add_flag("-r,--recursive", recursive, "remove directories and everything in them");
  rm->add_option("PATHS", args, "paths")->required();
  auto* mv = app.add_subcommand("mv", "rename SRC to DEST, or move SRC... into the directory DEST, all or none");
  mv->add_option("PATHS", args, "SRC... DEST")->required()->expected(2, -1);
  auto* cp = app.add_subcommand("cp", "copy files inside the mount on the server side (reflinks where possible)");
  cp->add_flag("-r,--recursive", recursive, "copy directories recursively");
  cp->add_option("PATHS", args, "SRC... DEST")->required()->expected(2, -1);
  // Common options may also follow the subcommand (tcfs-batch run -q FILE).
  for (auto* sub : {run, put, mk, rm, mv, cp}) sub->fallthrough();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kUsage;
  }
  if (*run) return cmd_run(file, o);
  if (*put) return cmd_put(args, o);
  Compound c;
  std::vector<std::string> anchors;
  std::string err;
  if (*mk || *rm) {
    for (const auto& a : args) {
      if (*mk) c.mkdir(a, 0777 & ~tcfs::batch::caller_umask(), parents);
      else c.remove(a, recursive);
      anchors.push_back(a);
    }
    return run_ops(c, anchors, o);
  }
  std::string dest = with_dir(o, args.back());
  bool many = args.size() > 2;
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    std::string src = with_dir(o, args[i]);
    std::string to = target_for(src, dest, many);
    if (*mv) c.rename(src, to);
    else if (!add_copy(c, src, to, recursive, &err)) return usage_error(err);
    anchors.push_back(src);
  }
  return run_ops(c, anchors, o);
}
