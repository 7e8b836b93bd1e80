// treesnap — print a canonical, sorted description of a directory tree, so
// two trees (or one tree at two moments) compare with diff(1).
//
//   treesnap [--ino] [--times] [--root-times] DIR
//
// One line per object below DIR (DIR itself only with --root-times):
//   <path> <type> mode=<octal> uid=<n> gid=<n> nlink=<n> [ino=<n>]
//          [mtime=<s.ns>] size=<n> data=<fnv1a-64 of the content>
//          -> <symlink target>  x:<name>=<hex value>...
// --ino adds inode numbers (undo restores into the original inode);
// --times adds mtimes of everything but DIR. Exit 0, or 1 with a message.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

bool g_ino = false, g_times = false, g_root_times = false;
std::vector<std::string> g_lines;

std::string hex(const char* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += d[(static_cast<unsigned char>(p[i]) >> 4) & 15];
    s += d[static_cast<unsigned char>(p[i]) & 15];
  }
  return s;
}

std::string content_hash(int dirfd, const char* name) {
  int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return "unreadable";
  uint64_t h = 1469598103934665603ull;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0)
    for (ssize_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(buf[i])) * 1099511628211ull;
  close(fd);
  char out[32];
  snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
  return out;
}

std::string xattrs(const std::string& path) {
  char names[65536];
  ssize_t n = llistxattr(path.c_str(), names, sizeof names);
  std::vector<std::string> v;
  for (ssize_t i = 0; n > 0 && i < n;) {
    std::string nm(names + i);
    i += static_cast<ssize_t>(nm.size()) + 1;
    char val[65536];
    ssize_t len = lgetxattr(path.c_str(), nm.c_str(), val, sizeof val);
    v.push_back(" x:" + nm + "=" + (len >= 0 ? hex(val, static_cast<size_t>(len)) : "?"));
  }
  std::sort(v.begin(), v.end());
  std::string s;
  for (auto& x : v) s += x;
  return s;
}

void describe(const std::string& full, const std::string& rel, int dirfd, const char* name, const struct stat& st,
              bool times) {
  char buf[512];
  const char* type = S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "dir" : S_ISLNK(st.st_mode) ? "symlink"
                   : S_ISFIFO(st.st_mode) ? "fifo" : S_ISSOCK(st.st_mode) ? "socket" : "device";
  snprintf(buf, sizeof buf, " %s mode=%o uid=%u gid=%u nlink=%lu", type, st.st_mode & 07777, st.st_uid, st.st_gid,
           static_cast<unsigned long>(S_ISDIR(st.st_mode) ? 0 : st.st_nlink));
  std::string line = rel + buf;
  if (g_ino) line += " ino=" + std::to_string(st.st_ino);
  if (times) line += " mtime=" + std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
  if (S_ISREG(st.st_mode)) line += " size=" + std::to_string(st.st_size) + " data=" + content_hash(dirfd, name);
  if (S_ISLNK(st.st_mode)) {
    char t[4096];
    ssize_t n = readlinkat(dirfd, name, t, sizeof t);
    line += " -> " + std::string(t, n > 0 ? static_cast<size_t>(n) : 0);
  }
  line += xattrs(full);
  g_lines.push_back(line);
}

bool walk(const std::string& full, const std::string& rel) {
  int fd = open(full.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    fprintf(stderr, "treesnap: %s: %s\n", full.c_str(), strerror(errno));
    return false;
  }
  DIR* d = fdopendir(fd);
  std::vector<std::string> names;
  while (struct dirent* e = readdir(d))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) names.push_back(e->d_name);
  bool ok = true;
  for (const auto& n : names) {
    struct stat st;
    if (fstatat(fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    std::string r = rel.empty() ? n : rel + "/" + n;
    describe(full + "/" + n, r, fd, n.c_str(), st, g_times);
    if (S_ISDIR(st.st_mode)) ok = walk(full + "/" + n, r) && ok;
  }
  closedir(d);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--ino") g_ino = true;
    else if (a == "--times") g_times = true;
    else if (a == "--root-times") g_root_times = true;
    else if (dir.empty() && a[0] != '-') dir = a;
    else {
      fprintf(stderr, "usage: treesnap [--ino] [--times] [--root-times] DIR\n");
      return 2;
    }
  }
  if (dir.empty()) {
    fprintf(stderr, "usage: treesnap [--ino] [--times] [--root-times] DIR\n");
    return 2;
  }
  struct stat st;
  if (lstat(dir.c_str(), &st) != 0) {
    fprintf(stderr, "treesnap: %s: %s\n", dir.c_str(), strerror(errno));
    return 1;
  }
  if (g_root_times) describe(dir, ".", AT_FDCWD, dir.c_str(), st, true);
  bool ok = walk(dir, "");
  std::sort(g_lines.begin(), g_lines.end());
  for (const auto& l : g_lines) printf("%s\n", l.c_str());
  return ok ? 0 : 1;
}
