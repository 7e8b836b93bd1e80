// sync/state.h — the local record of what is on the blobbers (LMDB).
//
// Contract: typed access to the sync databases (sync.h), inside a caller's
// meta::Txn, so that one round's whole local commit is one LMDB
// transaction (sync.h 7):
//   files:   backing inode -> FileState (remote id, file handle, the ctime
//            at the capture that synced it, and the synced InodeRec). The
//            record of the object whose handle it holds: after the object
//            is gone and a new one took its inode number, the record is not
//            the new object's (sync.h 4a): file_of() asks with the handle.
//   ids:     remote id -> backing inode
//   entries: (parent id, name) -> child id, as on the blobbers
//   blocks:  SHA-256 -> BlockRef of a block already on the blobbers (dedup)
//   meta:    named values (epoch, head journal, boot, next id, config)
//
// Thread-safety: stateless functions; LMDB's rules apply to the Txn.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "blob/blocks.h"
#include "meta/env.h"
#include "sync/object.h"
#include "sync/records.h"
#include "sync/sync.h"

namespace tcfs::sync {

struct FileState {
  uint64_t id = 0;
  std::string handle;          // struct file_handle bytes
  int64_t ctime_sec = 0;       // local ctime when captured
  uint32_t ctime_nsec = 0;
  InodeRec rec;                // as on the blobbers
  bool stub = false;           // content not local: fetched from the blobbers on use
};

std::string be64(uint64_t v);
uint64_t from_be64(std::string_view s);

class State {
 public:
  explicit State(meta::Env& env) : env_(env) {}
  meta::Env& env() { return env_; }

  // The record at inode number ino, whichever object it names.
  Result<std::optional<FileState>> file(meta::Txn& t, uint64_t ino);
  // The record of the object o, if there is one (sync.h 4a: the record at
  // o.ino with o's handle; one with another handle is a gone object's).
  Result<std::optional<FileState>> file_of(meta::Txn& t, const ObjRef& o);
  Status put_file(meta::Txn& t, uint64_t ino, const FileState& f);
  Status del_file(meta::Txn& t, uint64_t ino, uint64_t id);
  Result<std::optional<uint64_t>> ino_of(meta::Txn& t, uint64_t id);
  // Forgets a dropped object: its file record, its id, and (a directory)
  // any entries left under it.
  Status drop(meta::Txn& t, uint64_t ino, uint64_t id);

  Result<std::optional<uint64_t>> entry(meta::Txn& t, uint64_t parent, const std::string& name);
  Status put_entry(meta::Txn& t, uint64_t parent, const std::string& name, uint64_t child);
  Status del_entry(meta::Txn& t, uint64_t parent, const std::string& name);
  // Every (name, child) of parent, in name order.
  Result<std::vector<std::pair<std::string, uint64_t>>> entries(meta::Txn& t, uint64_t parent);

  Result<std::optional<blob::BlockRef>> block(meta::Txn& t, const blob::Hash& h);
  Status put_block(meta::Txn& t, const blob::BlockRef& r);

  Result<std::optional<std::string>> get(meta::Txn& t, const std::string& key);
  Status put(meta::Txn& t, const std::string& key, const std::string& value);
  Result<uint64_t> get_u64(meta::Txn& t, const std::string& key, uint64_t dflt);

 private:
  meta::Env& env_;
};

}  // namespace tcfs::sync
