// isolation_test — compounds and POSIX readers through a real mount.
//
// Writers (the client library) run compounds that overwrite every file of a
// set with one token: two writers share set X (overlapping compounds must
// serialize), one writer owns set Y (disjoint: runs in parallel). Readers
// read whole sets through the mount with open/read/close, file by file in
// random order, and log what they saw. A compound's txn id (from its reply)
// orders the compounds that touched a set. Checks, afterwards:
//  * every file read holds one token, whole (no torn file);
//  * every token read belongs to a compound that committed;
//  * within one pass over a set, the ids seen never go down: once a reader
//    has seen a compound's token in one file of the set, it never sees an
//    older one in another — it never observes a half-applied compound.
//
//   TCFS_TEST_MNT=/mnt isolation_test [--rounds N]   (run by tests/support/with-tcfs)
#include <fcntl.h>
#include <unistd.h>

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tcfs/client.h"

namespace {

constexpr int kFiles = 8;
// One page: the kernel's page cache gives no atomicity to a read() that
// spans several pages while their cache is invalidated under it (FUSE has
// no lock a cached read would wait on), so a multi-page file read across a
// commit can mix old and new pages; see the note in man/tcfs-batch.1.
constexpr size_t kFileSize = 4096;

std::string content(const std::string& token) {
  std::string s;
  while (s.size() < kFileSize) s += token + "\n";
  s.resize(kFileSize);
  return s;
}

std::string token_of(const std::string& data) {
  size_t nl = data.find('\n');
  std::string t = data.substr(0, nl);
  if (data == content(t)) return t;
  size_t nz = data.find_first_not_of('\0');
  return "<torn len=" + std::to_string(data.size()) + " first=" + t.substr(0, 20) + " nz=" + std::to_string(nz) + ">";
}

std::string read_all(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::string("<open failed ") + strerror(errno) + ">";
  std::string s;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
  close(fd);
  return s;
}

struct Shared {
  std::mutex mu;
  std::map<std::string, uint64_t> committed;  // token -> txn id
  std::atomic<int> writers_left{0};
  std::atomic<long> passes{0};  // reader passes finished so far
  std::atomic<int> errors{0};
};

void writer(Shared& sh, const std::string& mnt, const std::string& set, int id, int rounds) {
  auto cl = tcfs::Client::for_path(mnt);
  if (!cl) {
    fprintf(stderr, "writer %d: %s\n", id, cl.status().message().c_str());
    ++sh.errors;
    --sh.writers_left;
    return;
  }
  for (int r = 1; r <= rounds; ++r) {
    // Pace: let readers finish a pass per round, so they overlap the
    // compounds however the scheduler treats them (bounded wait).
    for (int w = 0; w < 500 && sh.passes < r; ++w) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::string token = "w" + std::to_string(id) + "-" + std::to_string(r);
    tcfs::Compound c;
    for (int i = 0; i < kFiles; ++i) {
      tcfs::Op o;
      o.kind = tcfs::OpKind::Write;
      o.path = set + "/f" + std::to_string(i);
      o.truncate = true;
      o.data = content(token);
      c.ops.push_back(std::move(o));
    }
    c.options.sync = r % 4 != 0;  // some sync-off compounds too
    auto rep = cl->submit(c);
    if (!rep || rep->outcome != tcfs::Outcome::Committed) {
      fprintf(stderr, "writer %d round %d: %s\n", id, r, rep ? rep->message.c_str() : rep.status().message().c_str());
      ++sh.errors;
      break;
    }
    std::lock_guard g(sh.mu);
    sh.committed[token] = rep->txn_id;
  }
  --sh.writers_left;
}

struct Pass {
  std::string set;
  std::vector<std::string> tokens;  // in read order
};

void reader(Shared& sh, const std::string& mnt, unsigned seed, std::vector<Pass>& out) {
  std::mt19937 rng(seed);
  while (sh.writers_left > 0) {
    Pass p;
    p.set = rng() % 2 ? "X" : "Y";
    std::vector<int> order(kFiles);
    for (int i = 0; i < kFiles; ++i) order[static_cast<size_t>(i)] = i;
    std::shuffle(order.begin(), order.end(), rng);
    for (int i : order) p.tokens.push_back(token_of(read_all(mnt + "/" + p.set + "/f" + std::to_string(i))));
    out.push_back(std::move(p));
    ++sh.passes;
  }
}

}  // namespace

int main(int argc, char** argv) {
  const char* m = getenv("TCFS_TEST_MNT");
  if (!m) {
    fprintf(stderr, "isolation_test: set TCFS_TEST_MNT\n");
    return 2;
  }
  std::string mnt = m;
  int rounds = 150;
  if (argc == 3 && std::string(argv[1]) == "--rounds") rounds = atoi(argv[2]);
  Shared sh;
  for (const char* set : {"X", "Y"}) {
    std::string d = mnt + "/" + set;
    mkdir(d.c_str(), 0755);
    for (int i = 0; i < kFiles; ++i) {
      std::string p = d + "/f" + std::to_string(i);
      int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      std::string c0 = content("init");
      if (fd < 0 || write(fd, c0.data(), c0.size()) != static_cast<ssize_t>(c0.size())) return 1;
      close(fd);
    }
  }
  sh.committed["init"] = 0;
  sh.writers_left = 3;
  std::vector<std::thread> ts;
  ts.emplace_back(writer, std::ref(sh), mnt, "X", 1, rounds);
  ts.emplace_back(writer, std::ref(sh), mnt, "X", 2, rounds);
  ts.emplace_back(writer, std::ref(sh), mnt, "Y", 3, rounds);
  std::vector<std::vector<Pass>> passes(4);
  for (unsigned r = 0; r < passes.size(); ++r) ts.emplace_back(reader, std::ref(sh), mnt, r + 1, std::ref(passes[r]));
  for (auto& t : ts) t.join();

  long npasses = 0, violations = 0, mixed = 0;
  for (const auto& ps : passes) {
    for (const auto& p : ps) {
      ++npasses;
      uint64_t last = 0;
      bool uniform = true;
      for (const auto& t : p.tokens) {
        auto it = sh.committed.find(t);
        if (it == sh.committed.end()) {
          if (violations++ < 10) fprintf(stderr, "set %s: read '%s', not a committed token\n", p.set.c_str(), t.c_str());
          continue;
        }
        if (it->second < last && violations++ < 10)
          fprintf(stderr, "set %s: read token of txn %llu after one of txn %llu: a half-applied compound\n",
                  p.set.c_str(), static_cast<unsigned long long>(it->second), static_cast<unsigned long long>(last));
        last = std::max(last, it->second);
        uniform = uniform && t == p.tokens.front();
      }
      mixed += !uniform;
    }
  }
  printf("isolation_test: %d writers x %d compounds, %ld reader passes (%ld straddled a commit), %ld violations, %d errors\n",
         3, rounds, npasses, mixed, violations, sh.errors.load());
  if (npasses < 100) {
    fprintf(stderr, "isolation_test: too few reader passes\n");
    return 1;
  }
  return violations == 0 && sh.errors == 0 ? 0 : 1;
}
