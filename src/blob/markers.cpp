// blob/markers.cpp — create-once markers on the arbiter blobber, with
// copies on the others (objects.h 8).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "blob/objects.h"

namespace tcfs::blob {

namespace {

constexpr size_t kArbiter = 0;

// A marker's or a note's bytes as stored: sealed into *buf with a cipher
// (objects.h 7), else data itself.
Result<std::string_view> seal_small(const Cipher* cipher, const std::string& name, std::string_view data,
                                    std::string* buf) {
  if (!cipher) return data;
  auto s = cipher->seal(name, data);
  if (!s) return s.status();
  *buf = std::move(*s);
  return std::string_view(*buf);
}

}  // namespace

Status ObjectStore::create_marker(const std::string& name, std::string_view data, std::string* holder) {
  TCFS_TRY(check_key(name));
  std::string sealed;
  auto bytes = seal_small(cipher_.get(), name, data, &sealed);
  if (!bytes) return bytes.status();
  Status st = bl_[kArbiter]->put_new(name, *bytes);  // objects.h 8: the arbiter decides
  if (!st && st.err() == EEXIST) {
    auto have = read_marker(name);
    if (!have) return have.status();
    if (*have == data) st = Status{};  // ours: a create retried after its reply was lost
    else if (holder) *holder = *have;
  }
  if (!st) return st;
  for (size_t i = 0; i < width(); i++) {
    if (i == kArbiter) continue;
    Status c = bl_[i]->put_bytes(name, *bytes);
    if (!c) spdlog::warn("marker {}: copy on {} not written: {}", name, bl_[i]->url(), c.message());
  }
  return {};
}

Status ObjectStore::put_note(const std::string& name, std::string_view data) {
  TCFS_TRY(check_key(name));
  std::string sealed;
  auto bytes = seal_small(cipher_.get(), name, data, &sealed);
  if (!bytes) return bytes.status();
  Status first;
  size_t ok = 0;
  for (size_t i = 0; i < width(); i++) {
    Status st = bl_[i]->put_bytes(name, *bytes);
    if (st) ok++;
    else if (first.is_ok()) first = st;
  }
  return ok ? Status{} : first;
}

Status ObjectStore::remove_note(const std::string& name) {
  TCFS_TRY(check_key(name));
  Status first;
  for (size_t i = 0; i < width(); i++)
    if (Status st = bl_[i]->del(name); !st && st.err() != ENOENT && first.is_ok()) first = st;
  return first;
}

Result<std::string> ObjectStore::read_marker(const std::string& name) {
  TCFS_TRY(check_key(name));
  Status first;
  for (size_t i = 0; i < width(); i++) {  // the arbiter (0) first, then the copies
    auto got = bl_[i]->get_bytes(name);
    if (got && cipher_) got = cipher_->open(name, *got);
    if (got) return got;
    if (first.is_ok()) first = got.status();  // the first failure is the answer if all fail
  }
  return first;
}

Result<std::vector<std::string>> ObjectStore::list_markers(const std::string& prefix, const std::string& after) {
  std::set<std::string> names;
  auto take = [&](const std::vector<ObjectInfo>& items) {
    for (const auto& o : items)
      if (o.key > after && o.key.find('.', prefix.size()) == std::string::npos) names.insert(o.key);
  };
  auto arb = bl_[kArbiter]->list_all(prefix, after);  // starts after `after`: a poll's cost stays bounded
  if (arb) {
    take(*arb);
    return std::vector<std::string>(names.begin(), names.end());
  }
  spdlog::warn("markers {}: the arbiter does not list ({}); listing the copies", prefix, arb.status().message());
  size_t answered = 0;
  for (size_t i = 1; i < width(); i++) {
    auto r = bl_[i]->list_all(prefix, after);
    if (!r) continue;
    answered++;
    take(*r);
  }
  if (answered == 0) return arb.status();
  return std::vector<std::string>(names.begin(), names.end());
}

}  // namespace tcfs::blob
