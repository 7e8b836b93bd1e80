// difftest/side.h — one tree under test: its root, its open fds, running ops
// on it, and taking a comparable snapshot of the whole tree.
#pragma once

#include <sys/stat.h>

#include <map>
#include <string>
#include <vector>

#include "ops.h"

namespace difftest {

// The observable outcome of one op on one side. `data` holds what the op
// returned besides its return value (bytes read, a canonical stat line,
// sorted names, ...). Two sides agree iff ret, err and data are equal.
struct Res {
  long long ret = 0;
  int err = 0;  // errno when ret < 0, else 0
  std::string data;
  bool binary = false;  // data is file content (print a digest, not the bytes)
  bool operator==(const Res& o) const { return ret == o.ret && err == o.err && data == o.data; }
};
std::string format_res(const Res& r);
// What differs between two results, in one line.
std::string diff_res(const Res& a, const Res& b);

// The compared attributes of a stat, as one line: type, permission bits,
// nlink, uid, gid, size (not for directories), mtime when it is an
// explicitly set one (see kExplicitLo). st_blocks only with --blocks, and
// then only for empty regular files: even there it is not deterministic on
// XFS, which trims speculative preallocation past EOF in the background
// (seen native-vs-native: 8 vs 0 blocks for two empty files with the same
// history).
std::string stat_line(const struct stat& st);
extern bool g_compare_blocks;  // --blocks sets it

class Side {
 public:
  explicit Side(std::string dir);
  ~Side();
  Side(const Side&) = delete;
  Side& operator=(const Side&) = delete;

  const std::string& dir() const { return dir_; }
  Res exec(const Op& op);
  void close_all();
  // Removes everything below the root (the root itself stays). Returns "" or an error.
  std::string clear();
  bool empty() const;
  // For an lseek SEEK_DATA/SEEK_HOLE just run with result `r`: "" if the
  // result is consistent with the file's content (zeros skipped, only
  // zeros claimed as hole), else why not.
  std::string seek_valid(const Op& op, const Res& r);
  // The tree no longer answers (a FUSE mount whose daemon died).
  bool dead() const;

 private:
  std::string full(const std::string& p) const { return dir_ + "/" + p; }
  std::string dir_;
  int root_ = -1;
  mode_t root_mode_ = 0755;
  int fds_[kSlots];
};

struct Entry {
  struct stat st {};
  std::string target;                         // symlink target
  std::map<std::string, std::string> xattrs;  // name -> value
  std::string link_group;                     // other names of this inode ("" if none)
  std::string err;                            // walk error on this entry
};
using Tree = std::map<std::string, Entry>;  // relative path ("." = root) -> entry

Tree snapshot(const std::string& dir);
// Differences between two snapshots (content is compared by reading both
// files). Empty when the trees are equal. At most `limit` lines.
std::vector<std::string> compare_trees(const std::string& adir, const Tree& a, const std::string& bdir,
                                       const Tree& b, size_t limit = 20);

}  // namespace difftest
