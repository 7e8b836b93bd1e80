#include "util/fault.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <vector>

#include "util/mutex.h"

namespace tcfs::fault {
namespace {

struct Armed {
  int err = 0;
  unsigned nth = 1;    // first call (1-based) that fails
  unsigned count = 1;  // how many calls fail from nth on; 0 = forever
  unsigned calls = 0;  // calls seen so far
};

struct Registry {
  Mutex mu;  // protects everything below
  bool loaded TCFS_GUARDED_BY(mu) = false;
  std::map<std::string, Armed> faults TCFS_GUARDED_BY(mu);
  std::string crash_name TCFS_GUARDED_BY(mu);
  unsigned crash_nth TCFS_GUARDED_BY(mu) = 0;  // 0 = no crash point armed
  unsigned crash_hits TCFS_GUARDED_BY(mu) = 0;
};

Registry& reg() {
  static Registry r;
  return r;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

unsigned to_uint(const std::string& s, unsigned dflt) {
  if (s.empty()) return dflt;
  char* end = nullptr;
  unsigned long v = std::strtoul(s.c_str(), &end, 10);
  return (end && *end == '\0') ? static_cast<unsigned>(v) : dflt;
}

void load_env(Registry& r) TCFS_REQUIRES(r.mu) {
  if (r.loaded) return;
  r.loaded = true;
  if (const char* f = std::getenv("TCFS_FAULT")) {
    for (const auto& item : split(f, ',')) {
      auto eq = item.find('=');
      if (eq == std::string::npos) continue;
      auto parts = split(item.substr(eq + 1), ':');
      Armed a;
      a.err = errno_from_name(parts[0]);
      if (a.err == 0) a.err = static_cast<int>(to_uint(parts[0], 0));
      if (parts.size() > 1) a.nth = to_uint(parts[1], 1);
      if (parts.size() > 2) a.count = to_uint(parts[2], 1);
      if (a.err > 0) r.faults[item.substr(0, eq)] = a;
    }
  }
  if (const char* c = std::getenv("TCFS_CRASH_AT")) {
    auto parts = split(c, ':');
    r.crash_name = parts[0];
    r.crash_nth = parts.size() > 1 ? to_uint(parts[1], 1) : 1;
  }
}

}  // namespace

int errno_from_name(const std::string& name) {
  static const std::map<std::string, int> names = {
      {"EPERM", EPERM},   {"ENOENT", ENOENT}, {"EIO", EIO},       {"EBADF", EBADF},
      {"EAGAIN", EAGAIN}, {"ENOMEM", ENOMEM}, {"EACCES", EACCES}, {"EBUSY", EBUSY},
      {"EEXIST", EEXIST}, {"EXDEV", EXDEV},   {"ENOTDIR", ENOTDIR}, {"EISDIR", EISDIR},
      {"EINVAL", EINVAL}, {"ENFILE", ENFILE}, {"EMFILE", EMFILE}, {"EFBIG", EFBIG},
      {"ENOSPC", ENOSPC}, {"EROFS", EROFS},   {"EMLINK", EMLINK}, {"ENAMETOOLONG", ENAMETOOLONG},
      {"ENOTEMPTY", ENOTEMPTY}, {"EDQUOT", EDQUOT}, {"ETIMEDOUT", ETIMEDOUT},
      {"ECONNREFUSED", ECONNREFUSED}, {"EOPNOTSUPP", EOPNOTSUPP}, {"ENOTSUP", ENOTSUP},
  };
  auto it = names.find(name);
  return it == names.end() ? 0 : it->second;
}

int check(const char* site) {
  Registry& r = reg();
  MutexLock g(r.mu);
  load_env(r);
  if (r.faults.empty()) return 0;
  auto it = r.faults.find(site);
  if (it == r.faults.end()) return 0;
  Armed& a = it->second;
  ++a.calls;
  if (a.calls < a.nth) return 0;
  if (a.count != 0 && a.calls >= a.nth + a.count) return 0;
  return a.err;
}

void arm(const std::string& site, int err, unsigned nth, unsigned count) {
  Registry& r = reg();
  MutexLock g(r.mu);
  load_env(r);
  r.faults[site] = Armed{err, nth, count, 0};
}

void arm_crash(const std::string& name, unsigned nth) {
  Registry& r = reg();
  MutexLock g(r.mu);
  load_env(r);
  r.crash_name = name;
  r.crash_nth = nth;
  r.crash_hits = 0;
}

void reset() {
  Registry& r = reg();
  MutexLock g(r.mu);
  r.loaded = true;
  r.faults.clear();
  r.crash_name.clear();
  r.crash_nth = 0;
  r.crash_hits = 0;
}

void crash_point(const char* name) {
  Registry& r = reg();
  {
    MutexLock g(r.mu);
    load_env(r);
    if (r.crash_nth == 0 || r.crash_name != name) return;
    if (++r.crash_hits != r.crash_nth) return;
  }
  // Leave no chance to flush or unwind: this is what kill -9 does.
  ::kill(::getpid(), SIGKILL);
  ::_exit(137);
}

}  // namespace tcfs::fault
