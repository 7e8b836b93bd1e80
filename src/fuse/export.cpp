#include "fuse/export.h"

#include <fcntl.h>

#include <cstring>

namespace tcfs::fusefs {
namespace {

template <typename T>
T get_at(const std::string& h, size_t off) {
  T v;
  memcpy(&v, h.data() + sizeof(file_handle) + off, sizeof v);
  return v;
}

template <typename T>
void put_at(std::string& h, size_t off, T v) {
  memcpy(h.data() + sizeof(file_handle) + off, &v, sizeof v);
}

bool header(const std::string& h, int* type, unsigned* len) {
  if (h.size() < sizeof(file_handle)) return false;
  file_handle fh;
  memcpy(&fh, h.data(), sizeof fh);
  if (sizeof(file_handle) + fh.handle_bytes != h.size()) return false;
  *type = fh.handle_type;
  *len = fh.handle_bytes;
  return true;
}

}  // namespace

const char* HandleLayout::name() const {
  switch (kind_) {
    case Kind::Xfs64: return "xfs (64-bit inode numbers)";
    case Kind::Ino32Gen: return "32-bit inode + generation (ext4, xfs inode32)";
    case Kind::Btrfs: return "btrfs";
    case Kind::Tmpfs: return "tmpfs";
  }
  return "?";
}

std::optional<HandleLayout> HandleLayout::learn(const std::string& root, uint64_t root_ino) {
  int type;
  unsigned len;
  if (!header(root, &type, &len)) return std::nullopt;
  HandleLayout l;
  l.type_ = type;
  l.len_ = len;
  if (type == 0x81 && len == 12) {
    l.kind_ = Kind::Xfs64;
  } else if (type == 0x4d && len == 20) {
    l.kind_ = Kind::Btrfs;
    l.btrfs_root_ = get_at<uint64_t>(root, 8);
  } else if (type == 1 && len == 8) {
    l.kind_ = Kind::Ino32Gen;
  } else if (type == 1 && len == 12) {
    l.kind_ = Kind::Tmpfs;
  } else {
    return std::nullopt;
  }
  // The layout must name the root's own inode number and give its handle back.
  uint64_t ino;
  uint32_t gen;
  if (!l.split(root, &ino, &gen) || ino != root_ino || l.build(ino, gen) != root) return std::nullopt;
  return l;
}

bool HandleLayout::split(const std::string& h, uint64_t* ino, uint32_t* gen) const {
  int type;
  unsigned len;
  if (!header(h, &type, &len) || type != type_ || len != len_) return false;
  switch (kind_) {
    case Kind::Xfs64:
      *ino = get_at<uint64_t>(h, 0);
      *gen = get_at<uint32_t>(h, 8);
      break;
    case Kind::Ino32Gen:
      *ino = get_at<uint32_t>(h, 0);
      *gen = get_at<uint32_t>(h, 4);
      break;
    case Kind::Btrfs:
      if (get_at<uint64_t>(h, 8) != btrfs_root_) return false;  // another subvolume
      *ino = get_at<uint64_t>(h, 0);
      *gen = get_at<uint32_t>(h, 16);
      break;
    case Kind::Tmpfs:
      *gen = get_at<uint32_t>(h, 0);
      *ino = get_at<uint32_t>(h, 4) | (uint64_t{get_at<uint32_t>(h, 8)} << 32);
      break;
  }
  return true;
}

std::string HandleLayout::build(uint64_t ino, uint32_t gen) const {
  std::string h(sizeof(file_handle) + len_, '\0');
  file_handle fh{};
  fh.handle_bytes = len_;
  fh.handle_type = type_;
  memcpy(h.data(), &fh, sizeof fh);
  switch (kind_) {
    case Kind::Xfs64:
      put_at<uint64_t>(h, 0, ino);
      put_at<uint32_t>(h, 8, gen);
      break;
    case Kind::Ino32Gen:
      put_at<uint32_t>(h, 0, static_cast<uint32_t>(ino));
      put_at<uint32_t>(h, 4, gen);
      break;
    case Kind::Btrfs:
      put_at<uint64_t>(h, 0, ino);
      put_at<uint64_t>(h, 8, btrfs_root_);
      put_at<uint32_t>(h, 16, gen);
      break;
    case Kind::Tmpfs:
      put_at<uint32_t>(h, 0, gen);
      put_at<uint32_t>(h, 4, static_cast<uint32_t>(ino));
      put_at<uint32_t>(h, 8, static_cast<uint32_t>(ino >> 32));
      break;
  }
  return h;
}

}  // namespace tcfs::fusefs
