// tcfs/compound.h — a compound: an ordered batch of file operations that a
// tcfs daemon runs all-or-nothing, and the per-operation results it returns.
//
// Contract:
//  * Paths are relative to the mount's root, '/'-separated, with no empty,
//    "." or ".." components and no leading '/'; the daemon refuses anything
//    else (and any symlink that would lead outside the mount) before running
//    a single operation. The client library turns absolute paths inside the
//    mount into this form (client.h).
//  * Operations run in order; each sees the effects of the ones before it.
//    With txn on (the default) the compound is atomic: either every
//    operation takes effect, or none does and the reply names the operation
//    that failed and its errno. With sync on (the default) a "committed"
//    reply means the result survives a power cut. With txn off the compound
//    runs best-effort: it stops at the first error and undoes nothing.
//  * Every operation runs with the caller's credentials (uid, gid and
//    supplementary groups of the process that sent the request).
//
// Thread-safety: plain values; no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tcfs {

enum class OpKind : uint8_t {
  Mkdir,        // path, mode; parents: create missing ancestors (mode 0777 & ~umask... as given)
  Create,       // path, mode, exclusive (EEXIST if it exists), truncate (drop old content)
  Write,        // path, offset | append | truncate_first, data or source fd (+ src_offset, length)
  Copy,         // path (source) -> path2 (destination, created if missing with the source's mode),
                // src_offset, offset (destination), length (-1: to the source's end);
                // a reflink where the store supports it
  Truncate,     // path, size
  Setattr,      // path, any of mode, uid, gid, atime, mtime (set_* flags below)
  Setxattr,     // path, name, value, xattr_flags (XATTR_CREATE / XATTR_REPLACE)
  Removexattr,  // path, name
  Symlink,      // path (the new link), target (its contents)
  Link,         // path (existing object) -> path2 (the new name)
  Rename,       // path -> path2, rename_flags (RENAME_NOREPLACE / RENAME_EXCHANGE)
  Remove,       // path: a file, symlink, special file or empty directory; recursive: a whole subtree
};

// Name used on the wire and in tcfs-batch NDJSON ("mkdir", "create", ...).
const char* op_kind_name(OpKind k);
// Inverse of op_kind_name; nullopt for an unknown name.
std::optional<OpKind> op_kind_from_name(const std::string& name);

// Timestamp for Setattr: seconds + nanoseconds, or "now".
struct Timestamp {
  int64_t sec = 0;
  uint32_t nsec = 0;
  bool now = false;
};

struct Op {
  OpKind kind = OpKind::Mkdir;
  std::string path;
  std::string path2;   // Copy destination, Link new name, Rename target
  std::string target;  // Symlink contents

  uint32_t mode = 0;       // Mkdir, Create (permission bits; the caller's umask is NOT applied by the daemon)
  bool exclusive = false;  // Create
  bool truncate = false;   // Create: truncate an existing file; Write: truncate before writing
  bool parents = false;    // Mkdir: also create missing ancestors, no error if it exists as a directory
  bool recursive = false;  // Remove: a whole subtree

  // Write: bytes come from `data`, or from the descriptor with index
  // `fd_index` in the request's passed descriptors (read from src_offset,
  // `length` bytes, -1 = to its end). Written at `offset`, or at the end
  // when `append`.
  int64_t offset = 0;
  bool append = false;
  std::string data;
  int32_t fd_index = -1;
  int64_t src_offset = 0;
  int64_t length = -1;  // Write from fd, Copy: bytes, -1 = to the source's end

  uint64_t size = 0;  // Truncate

  // Setattr: which attributes are set.
  bool set_mode = false, set_uid = false, set_gid = false, set_atime = false, set_mtime = false;
  uint32_t uid = 0, gid = 0;  // (mode above)
  Timestamp atime, mtime;

  std::string name;   // Setxattr, Removexattr
  std::string value;  // Setxattr (binary-safe)
  int32_t xattr_flags = 0;

  uint32_t rename_flags = 0;
};

struct CompoundOptions {
  bool txn = true;   // all-or-nothing; false: best-effort, stop at the first error
  bool sync = true;  // durable on "committed"; false: atomic, but a crash may roll it back
};

// A compound and the descriptors it passes (owned by the caller; the client
// library sends them with SCM_RIGHTS and does not close them).
struct Compound {
  CompoundOptions options;
  std::vector<Op> ops;
  std::vector<int> fds;

  // Builder helpers: each appends one operation and returns *this.
  Compound& mkdir(std::string path, uint32_t mode = 0755, bool parents = false);
  Compound& create(std::string path, uint32_t mode = 0644, bool exclusive = false, bool truncate = false);
  Compound& write(std::string path, std::string data, int64_t offset = 0);
  Compound& append(std::string path, std::string data);
  Compound& write_fd(std::string path, int fd, int64_t offset = 0, int64_t src_offset = 0, int64_t length = -1);
  Compound& copy(std::string src, std::string dst, int64_t src_offset = 0, int64_t dst_offset = 0,
                 int64_t length = -1);
  Compound& truncate(std::string path, uint64_t size);
  Compound& chmod(std::string path, uint32_t mode);
  Compound& chown(std::string path, std::optional<uint32_t> uid, std::optional<uint32_t> gid);
  Compound& utimes(std::string path, std::optional<Timestamp> atime, std::optional<Timestamp> mtime);
  Compound& setxattr(std::string path, std::string name, std::string value, int flags = 0);
  Compound& removexattr(std::string path, std::string name);
  Compound& symlink(std::string target, std::string path);
  Compound& link(std::string existing, std::string new_path);
  Compound& rename(std::string from, std::string to, uint32_t flags = 0);
  Compound& remove(std::string path, bool recursive = false);
};

enum class Outcome : uint8_t {
  Committed,   // every operation took effect
  RolledBack,  // an operation failed; every earlier one was undone; nothing changed
  Partial,     // txn off: operations before failed_op took effect, the rest did not run
  Rejected,    // the request itself was refused (bad path, limits, protocol); nothing ran
};
const char* outcome_name(Outcome o);

struct OpResult {
  int err = 0;         // 0, or the errno this operation failed with
  int64_t bytes = 0;   // Write, Copy: bytes written
  bool ran = false;    // the operation was executed (before any undo)
};

struct CompoundReply {
  Outcome outcome = Outcome::Rejected;
  int32_t failed_op = -1;  // index of the failing operation, -1 if none (or the request)
  int err = 0;             // its errno (or the request's)
  std::string message;     // human-readable reason naming the path
  uint64_t txn_id = 0;
  std::vector<OpResult> results;  // one per operation (empty when Rejected)
};

}  // namespace tcfs
