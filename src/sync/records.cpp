// sync/records.cpp — MessagePack encoding of namespace records (records.h).
#include "sync/records.h"

#include <nlohmann/json.hpp>

#include "sync/msgpack.h"

namespace tcfs::sync {
namespace {

using json = nlohmann::json;

json bin(std::string_view s) { return json::binary(std::vector<uint8_t>(s.begin(), s.end())); }

Result<std::string> get_bin(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return std::string();
  if (it->is_binary()) return std::string(it->get_binary().begin(), it->get_binary().end());
  if (it->is_string()) return it->get<std::string>();
  return Status::error(EINVAL, std::string("namespace record: field ") + key + " is not bytes");
}

template <typename T>
Status get_num(const json& j, const char* key, T& out, bool required = false) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (required) return Status::error(EINVAL, std::string("namespace record: field ") + key + " missing");
    return {};
  }
  if (!it->is_number_integer()) return Status::error(EINVAL, std::string("namespace record: field ") + key + " is not an integer");
  out = it->get<T>();
  return {};
}

json inode_json(const InodeRec& r) {
  json j = {{"k", "i"}, {"id", r.id}, {"mode", r.mode}, {"uid", r.uid}, {"gid", r.gid}, {"size", r.size},
            {"as", r.atime_sec}, {"an", r.atime_nsec}, {"ms", r.mtime_sec}, {"mn", r.mtime_nsec}};
  if (r.rdev) j["rdev"] = r.rdev;
  if (!r.target.empty()) j["t"] = bin(r.target);
  if (!r.xattrs.empty()) {
    json x = json::array();
    for (const auto& [n, v] : r.xattrs) x.push_back(json::array({bin(n), bin(v)}));
    j["x"] = std::move(x);
  }
  if (!r.blocks.empty()) {
    std::string b;
    b.reserve(r.blocks.size() * blob::BlockRef::kEncoded);
    for (const auto& ref : r.blocks) b += ref.encode();
    j["b"] = bin(b);
  }
  return j;
}

Result<InodeRec> inode_from(const json& j) {
  InodeRec r;
  TCFS_TRY(get_num(j, "id", r.id, true));
  TCFS_TRY(get_num(j, "mode", r.mode, true));
  TCFS_TRY(get_num(j, "uid", r.uid));
  TCFS_TRY(get_num(j, "gid", r.gid));
  TCFS_TRY(get_num(j, "size", r.size));
  TCFS_TRY(get_num(j, "as", r.atime_sec));
  TCFS_TRY(get_num(j, "an", r.atime_nsec));
  TCFS_TRY(get_num(j, "ms", r.mtime_sec));
  TCFS_TRY(get_num(j, "mn", r.mtime_nsec));
  TCFS_TRY(get_num(j, "rdev", r.rdev));
  auto t = get_bin(j, "t");
  if (!t) return t.status();
  r.target = std::move(*t);
  if (auto it = j.find("x"); it != j.end()) {
    if (!it->is_array()) return Status::error(EINVAL, "namespace record: field x is not a list");
    for (const auto& pair : *it) {
      if (!pair.is_array() || pair.size() != 2 || !pair[0].is_binary() || !pair[1].is_binary())
        return Status::error(EINVAL, "namespace record: bad xattr");
      r.xattrs.emplace_back(std::string(pair[0].get_binary().begin(), pair[0].get_binary().end()),
                            std::string(pair[1].get_binary().begin(), pair[1].get_binary().end()));
    }
  }
  auto b = get_bin(j, "b");
  if (!b) return b.status();
  if (b->size() % blob::BlockRef::kEncoded != 0) return Status::error(EINVAL, "namespace record: bad block list");
  uint64_t total = 0;
  for (size_t off = 0; off < b->size(); off += blob::BlockRef::kEncoded) {
    auto ref = blob::BlockRef::decode(std::string_view(*b).substr(off, blob::BlockRef::kEncoded));
    if (!ref) return ref.status();
    total += ref->len;
    r.blocks.push_back(*ref);
  }
  if (!r.blocks.empty() && total != r.size)
    return Status::error(EINVAL, "namespace record " + std::to_string(r.id) + ": blocks do not add up to its size");
  if (r.id == 0) return Status::error(EINVAL, "namespace record: id 0");
  return r;
}

Result<json> parse(std::string_view bytes) {
  json j = read_msgpack(bytes);  // nesting bounded (msgpack.h)
  if (j.is_discarded() || !j.is_object()) return Status::error(EINVAL, "namespace record: not a MessagePack map");
  return j;
}

}  // namespace

std::string encode_inode(const InodeRec& r) {
  auto v = json::to_msgpack(inode_json(r));
  return std::string(v.begin(), v.end());
}

Result<InodeRec> decode_inode(std::string_view bytes) {
  auto j = parse(bytes);
  if (!j) return j.status();
  return inode_from(*j);
}

std::string encode(const Record& rec) {
  json j;
  if (auto* i = std::get_if<InodeRec>(&rec)) {
    j = inode_json(*i);
  } else if (auto* e = std::get_if<EntryRec>(&rec)) {
    j = {{"k", "e"}, {"p", e->parent}, {"n", bin(e->name)}, {"c", e->child}};
  } else {
    j = {{"k", "d"}, {"id", std::get<DropRec>(rec).id}};
  }
  auto v = json::to_msgpack(j);
  return std::string(v.begin(), v.end());
}

Result<Record> decode(std::string_view bytes) {
  auto j = parse(bytes);
  if (!j) return j.status();
  auto k = j->find("k");
  if (k == j->end() || !k->is_string()) return Status::error(EINVAL, "namespace record: no kind");
  std::string kind = k->get<std::string>();
  if (kind == "i") {
    auto r = inode_from(*j);
    if (!r) return r.status();
    return Record(std::move(*r));
  }
  if (kind == "e") {
    EntryRec e;
    TCFS_TRY(get_num(*j, "p", e.parent, true));
    TCFS_TRY(get_num(*j, "c", e.child, true));
    auto n = get_bin(*j, "n");
    if (!n) return n.status();
    e.name = std::move(*n);
    if (e.parent == 0 || e.name.empty() || e.name == "." || e.name == ".." || e.name.find('/') != std::string::npos ||
        e.name.find('\0') != std::string::npos)
      return Status::error(EINVAL, "namespace record: bad entry name or parent");
    return Record(std::move(e));
  }
  if (kind == "d") {
    DropRec d;
    TCFS_TRY(get_num(*j, "id", d.id, true));
    return Record(d);
  }
  return Status::error(EINVAL, "namespace record: unknown kind " + kind);
}

}  // namespace tcfs::sync
