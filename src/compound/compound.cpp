// compound/compound.cpp — names of operation kinds and outcomes, and the
// Compound builder (tcfs/compound.h). Linked into the daemon and into the
// client library.
#include <array>
#include <utility>

#include "tcfs/compound.h"

namespace tcfs {
namespace {

constexpr std::array<const char*, 12> kNames = {"mkdir",   "create",      "write",   "copy",
                                                "truncate", "setattr",    "setxattr", "removexattr",
                                                "symlink", "link",        "rename",  "remove"};

Op make(OpKind k, std::string path) {
  Op o;
  o.kind = k;
  o.path = std::move(path);
  return o;
}

}  // namespace

const char* op_kind_name(OpKind k) {
  auto i = static_cast<size_t>(k);
  return i < kNames.size() ? kNames[i] : "?";
}

std::optional<OpKind> op_kind_from_name(const std::string& name) {
  for (size_t i = 0; i < kNames.size(); ++i)
    if (name == kNames[i]) return static_cast<OpKind>(i);
  return std::nullopt;
}

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::Committed: return "committed";
    case Outcome::RolledBack: return "rolled_back";
    case Outcome::Partial: return "partial";
    case Outcome::Rejected: return "rejected";
  }
  return "?";
}

Compound& Compound::mkdir(std::string path, uint32_t mode, bool parents) {
  Op o = make(OpKind::Mkdir, std::move(path));
  o.mode = mode;
  o.parents = parents;
  ops.push_back(std::move(o));
  return *this;
}

Compound& Compound::create(std::string path, uint32_t mode, bool exclusive, bool truncate) {
  Op o = make(OpKind::Create, std::move(path));
  o.mode = mode;
  o.exclusive = exclusive;
  o.truncate = truncate;
  ops.push_back(std::move(o));
  return *this;
}

Compound& Compound::write(std::string path, std::string data, int64_t offset) {
  Op o = make(OpKind::Write, std::move(path));
  o.data = std::move(data);
  o.offset = offset;
  ops.push_back(std::move(o));
  return *this;
}

Compound& Compound::append(std::string path, std::string data) {
  Op o = make(OpKind::Write, std::move(path));
  o.data = std::move(data);
  o.append = true;
  ops.push_back(std::move(o));
  return *this;
}

Compound& Compound::write_fd(std::string path, int fd, int64_t offset, int64_t src_offset, int64_t length) {
  Op o = make(OpKind::Write, std::move(path));
  o.fd_index = static_cast<int32_t>(fds.size());
  fds.push_back(fd);
  o.offset = offset;
  o.src_offset = src_offset;
  o.length = length;
  ops.push_back(std::move(o));
  return *this;
}

Compound& Compound::copy(std::string src, std::string dst, int64_t src_offset, int64_t dst_offset, int64_t length) {
  Op o = make(OpKind::Copy, std::move(src));
  o.path2 = std::move(dst);
  o.src_offset = src_offset;
  o.offset = dst_offset;
  o.length = length;
  ops.push_back(std::move(o));
  return *this;
}

Compound& Compound::truncate(std::string path, uint64_t size) {
  Op o = make(OpKind::Truncate, std::move(path));
  o.size = size;
  ops.push_back(std::move(o));
  return *this;
}

Compound& Compound::chmod(std::string path, uint32_t mode) {
  Op o = make(OpKind::Setattr, std::move(path));
  o.set_mode = true;
  o.mode = mode;
  ops.push_back(std::move(o));
  return *this;
}

Compound& Compound::chown(std::string path, std::optional<uint32_t> uid, std::optional<uint32_t> gid) {
  Op o = make(OpKind::Setattr, std::move(path));
  o.set_uid = uid.has_value();
  o.uid = uid.value_or(0);
  o.set_gid = gid.has_value();
  o.gid = gid.value_or(0);
  ops.push_back(std::move(o));
  return *this;
}

Compound& Compound::utimes(std::string path, std::optional<Timestamp> atime, std::optional<Timestamp> mtime) {
  Op o = make(OpKind::Setattr, std::move(path));
  o.set_atime = atime.has_value();
  o.atime = atime.value_or(Timestamp{});
  o.set_mtime = mtime.has_value();
  o.mtime = mtime.value_or(Timestamp{});
  ops.push_back(std::move(o));
  return *this;
}

Compound& Compound::setxattr(std::string path, std::string name, std::string value, int flags) {
  Op o = make(OpKind::Setxattr, std::move(path));
  o.name = std::move(name);
  o.value = std::move(value);
  o.xattr_flags = flags;
  ops.push_back(std::move(o));
  return *this;
}

Compound& Compound::removexattr(std::string path, std::string name) {
  Op o = make(OpKind::Removexattr, std::move(path));
  o.name = std::move(name);
  ops.push_back(std::move(o));
  return *this;
}

Compound& Compound::symlink(std::string target, std::string path) {
  Op o = make(OpKind::Symlink, std::move(path));
  o.target = std::move(target);
  ops.push_back(std::move(o));
  return *this;
}

Compound& Compound::link(std::string existing, std::string new_path) {
  Op o = make(OpKind::Link, std::move(existing));
  o.path2 = std::move(new_path);
  ops.push_back(std::move(o));
  return *this;
}

Compound& Compound::rename(std::string from, std::string to, uint32_t flags) {
  Op o = make(OpKind::Rename, std::move(from));
  o.path2 = std::move(to);
  o.rename_flags = flags;
  ops.push_back(std::move(o));
  return *this;
}

Compound& Compound::remove(std::string path, bool recursive) {
  Op o = make(OpKind::Remove, std::move(path));
  o.recursive = recursive;
  ops.push_back(std::move(o));
  return *this;
}

}  // namespace tcfs
