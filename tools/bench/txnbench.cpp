// txnbench — the timed half of tools/bench/bench-txn: builds one compound
// with the client library (tcfs/client.h) and times its submission, from
// the request leaving to the reply arriving (what an application using the
// library waits for).
//
//   txnbench new  DIR N SIZE [--no-txn]     mkdir -p DIR; N x (create + write SIZE bytes) DIR/s%07d
//   txnbench over DIR N SIZE [--no-txn]     N x write SIZE bytes with truncate to existing DIR/s%07d
//   txnbench big  DIR N SRCDIR [--no-txn]   N x write (truncate) DIR/s%07d from SRCDIR/b%03d passed as fds
//   txnbench many DIR N SIZE [--no-txn]     N operations: N/2 x (create + write SIZE bytes) in the existing
//                                           DIR (the scaling phase: N up to the default max_ops, 100,000)
//
// DIR is an absolute path inside a tcfs mount. Prints one line:
//   op=<mode> files=N seconds=S outcome=committed
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "tcfs/client.h"

namespace {

[[noreturn]] void die(const std::string& m) {
  fprintf(stderr, "txnbench: %s\n", m.c_str());
  exit(1);
}

std::string name(const std::string& dir, const char* fmt, long i) {
  char b[32];
  snprintf(b, sizeof b, fmt, i);
  return dir + "/" + b;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) die("usage: txnbench new|over|many|big DIR N SIZE|SRCDIR [--no-txn]");
  std::string mode = argv[1], dir = argv[2];
  long n = std::stol(argv[3]);
  bool no_txn = argc > 5 && std::string(argv[5]) == "--no-txn";
  auto cl = tcfs::Client::for_path(dir);
  if (!cl) die(cl.status().message());
  auto rel = cl->relative(dir);
  if (!rel) die(rel.status().message());
  tcfs::Compound c;
  c.options.txn = !no_txn;
  if (mode == "new" || mode == "over" || mode == "many") {
    std::string data(std::stoul(argv[4]), '\0');
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + (i * 7) % 26);
    if (mode == "new") c.mkdir(*rel, 0755, true);
    const long files = mode == "many" ? n / 2 : n;
    for (long i = 0; i < files; ++i) {
      std::string p = name(*rel, "s%07ld", i);
      if (mode != "over") {
        c.create(p, 0644, true);
        c.write(p, data);
      } else {
        tcfs::Op o;
        o.kind = tcfs::OpKind::Write;
        o.path = p;
        o.truncate = true;
        o.data = data;
        c.ops.push_back(std::move(o));
      }
    }
  } else if (mode == "big") {
    for (long i = 0; i < n; ++i) {
      std::string src = name(argv[4], "b%03ld", i);
      int fd = open(src.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) die(src + ": " + strerror(errno));
      c.write_fd(name(*rel, "s%07ld", i), fd);
      c.ops.back().truncate = true;
    }
  } else {
    die("unknown mode " + mode);
  }
  auto t0 = std::chrono::steady_clock::now();
  auto r = cl->submit(c);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (int fd : c.fds) close(fd);
  if (!r) die(r.status().message());
  if (r->outcome != tcfs::Outcome::Committed) die(std::string("compound ") + tcfs::outcome_name(r->outcome) + ": " + r->message);
  printf("op=%s files=%ld seconds=%.6f outcome=committed\n", mode.c_str(), n, s);
  return 0;
}
