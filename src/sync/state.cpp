// sync/state.cpp — the sync databases in LMDB (state.h).
#include "sync/state.h"

#include <nlohmann/json.hpp>

namespace tcfs::sync {

using json = nlohmann::json;

std::string be64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; i++) s[i] = static_cast<char>((v >> (56 - 8 * i)) & 0xff);
  return s;
}

uint64_t from_be64(std::string_view s) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < s.size(); i++) v = (v << 8) | static_cast<uint8_t>(s[i]);
  return v;
}

namespace {

std::string encode_state(const FileState& f) {
  std::string r = encode_inode(f.rec);
  json j = {{"id", f.id},
            {"h", json::binary(std::vector<uint8_t>(f.handle.begin(), f.handle.end()))},
            {"cs", f.ctime_sec},
            {"cn", f.ctime_nsec},
            {"r", json::binary(std::vector<uint8_t>(r.begin(), r.end()))}};
  if (f.stub) j["stub"] = true;
  auto v = json::to_msgpack(j);
  return std::string(v.begin(), v.end());
}

Result<FileState> decode_state(std::string_view b) {
  json j = json::from_msgpack(b.begin(), b.end(), true, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("id") || !j.contains("r") || !j["r"].is_binary())
    return Status::error(EIO, "sync state: damaged file record");
  FileState f;
  f.id = j["id"].get<uint64_t>();
  if (j.contains("h") && j["h"].is_binary()) f.handle.assign(j["h"].get_binary().begin(), j["h"].get_binary().end());
  f.ctime_sec = j.value("cs", int64_t{0});
  f.ctime_nsec = j.value("cn", uint32_t{0});
  f.stub = j.value("stub", false);
  const auto& r = j["r"].get_binary();
  auto rec = decode_inode(std::string_view(reinterpret_cast<const char*>(r.data()), r.size()));
  if (!rec) return rec.status();
  f.rec = std::move(*rec);
  return f;
}

}  // namespace

Result<std::optional<FileState>> State::file(meta::Txn& t, uint64_t ino) {
  auto v = t.get(env_.db(kFilesDb), be64(ino));
  if (!v) return v.status();
  if (!v->has_value()) return std::optional<FileState>();
  auto f = decode_state(**v);
  if (!f) return f.status();
  return std::optional<FileState>(std::move(*f));
}

Result<std::optional<FileState>> State::file_of(meta::Txn& t, const ObjRef& o) {
  auto f = file(t, o.ino);
  if (!f) return f.status();
  if (f->has_value() && (*f)->handle != o.handle) return std::optional<FileState>();  // sync.h 4a
  return f;
}

Status State::put_file(meta::Txn& t, uint64_t ino, const FileState& f) {
  TCFS_TRY(t.put(env_.db(kFilesDb), be64(ino), encode_state(f)));
  return t.put(env_.db(kIdsDb), be64(f.id), be64(ino));
}

Status State::del_file(meta::Txn& t, uint64_t ino, uint64_t id) {
  TCFS_TRY(t.del(env_.db(kFilesDb), be64(ino)));
  return t.del(env_.db(kIdsDb), be64(id));
}

Result<std::optional<uint64_t>> State::ino_of(meta::Txn& t, uint64_t id) {
  auto v = t.get(env_.db(kIdsDb), be64(id));
  if (!v) return v.status();
  if (!v->has_value()) return std::optional<uint64_t>();
  return std::optional<uint64_t>(from_be64(**v));
}

Result<std::optional<uint64_t>> State::entry(meta::Txn& t, uint64_t parent, const std::string& name) {
  auto v = t.get(env_.db(kEntriesDb), be64(parent) + name);
  if (!v) return v.status();
  if (!v->has_value()) return std::optional<uint64_t>();
  return std::optional<uint64_t>(from_be64(**v));
}

Status State::put_entry(meta::Txn& t, uint64_t parent, const std::string& name, uint64_t child) {
  return t.put(env_.db(kEntriesDb), be64(parent) + name, be64(child));
}

Status State::del_entry(meta::Txn& t, uint64_t parent, const std::string& name) {
  return t.del(env_.db(kEntriesDb), be64(parent) + name);
}

Result<std::vector<std::pair<std::string, uint64_t>>> State::entries(meta::Txn& t, uint64_t parent) {
  std::vector<std::pair<std::string, uint64_t>> out;
  TCFS_TRY(t.scan(env_.db(kEntriesDb), be64(parent), [&](std::string_view k, std::string_view v) {
    out.emplace_back(std::string(k.substr(8)), from_be64(v));
    return true;
  }));
  return out;
}

Status State::drop(meta::Txn& t, uint64_t ino, uint64_t id) {
  // The inode number may belong to a new object already (reuse): keep that.
  auto f = file(t, ino);
  if (!f) return f.status();
  if (f->has_value() && (*f)->id == id) TCFS_TRY(t.del(env_.db(kFilesDb), be64(ino)));
  TCFS_TRY(t.del(env_.db(kIdsDb), be64(id)));
  auto ents = entries(t, id);
  if (!ents) return ents.status();
  for (const auto& [name, child] : *ents) TCFS_TRY(del_entry(t, id, name));
  return {};
}

Result<std::optional<blob::BlockRef>> State::block(meta::Txn& t, const blob::Hash& h) {
  auto v = t.get(env_.db(kBlocksDb), h.bytes());
  if (!v) return v.status();
  if (!v->has_value()) return std::optional<blob::BlockRef>();
  auto r = blob::BlockRef::decode(**v);
  if (!r) return r.status();
  return std::optional<blob::BlockRef>(*r);
}

Status State::put_block(meta::Txn& t, const blob::BlockRef& r) {
  return t.put(env_.db(kBlocksDb), r.hash.bytes(), r.encode());
}

Result<std::optional<std::string>> State::get(meta::Txn& t, const std::string& key) {
  return t.get(env_.db(kSyncDb), key);
}

Status State::put(meta::Txn& t, const std::string& key, const std::string& value) {
  return t.put(env_.db(kSyncDb), key, value);
}

Result<uint64_t> State::get_u64(meta::Txn& t, const std::string& key, uint64_t dflt) {
  auto v = get(t, key);
  if (!v) return v.status();
  if (!v->has_value()) return dflt;
  return std::stoull(**v);
}

}  // namespace tcfs::sync
