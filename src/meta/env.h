// meta/env.h — the store's LMDB environment (<store>/meta/).
//
// Contract: Env::open() opens (creating if absent) the LMDB environment and
// every named database the caller lists, so that later transactions never
// create databases. A write Txn commits with a full sync (LMDB's default):
// when commit() returns OK the change survives a power cut (and the
// filesystem was still up after that sync: util/durable.h). A Txn that is
// destroyed uncommitted is aborted. Keys and values are byte strings.
//
// Thread-safety: an Env may be shared by all threads (MDB_NOTLS: a read Txn
// is not tied to its thread). A Txn belongs to one thread at a time. LMDB
// allows one write Txn at a time per environment; begin(write) blocks until
// the current writer finishes. The Env must not be used across fork().
#pragma once

#include <lmdb.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tcfs/status.h"

namespace tcfs::meta {

class Env {
 public:
  // dir must exist. map_size bounds the database size (it is sparse on disk).
  static Result<std::unique_ptr<Env>> open(const std::string& dir, const std::vector<std::string>& dbs,
                                           size_t map_size = size_t{1} << 32);
  ~Env();
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  MDB_env* raw() const { return env_; }
  // Handle of a database named at open(); aborts the program on a name that
  // was not (a programming error, not a runtime condition).
  MDB_dbi db(const std::string& name) const;
  const std::string& dir() const { return dir_; }

 private:
  Env() = default;
  MDB_env* env_ = nullptr;
  std::string dir_;
  std::map<std::string, MDB_dbi> dbs_;
};

class Txn {
 public:
  static Result<Txn> begin(Env& env, bool write);
  Txn(Txn&& o) noexcept : txn_(o.txn_), write_(o.write_) { o.txn_ = nullptr; }
  Txn& operator=(Txn&&) = delete;
  ~Txn();

  // nullopt when the key is absent.
  Result<std::optional<std::string>> get(MDB_dbi db, std::string_view key);
  Status put(MDB_dbi db, std::string_view key, std::string_view value);
  // Deleting an absent key is not an error.
  Status del(MDB_dbi db, std::string_view key);
  // Calls fn(key, value) for every entry whose key starts with prefix, in key
  // order, until fn returns false.
  template <typename Fn>
  Status scan(MDB_dbi db, std::string_view prefix, Fn&& fn);
  // Deletes every entry of db.
  Status clear(MDB_dbi db);
  Status commit();
  MDB_txn* raw() const { return txn_; }

 private:
  Txn(MDB_txn* t, bool write) : txn_(t), write_(write) {}
  MDB_txn* txn_ = nullptr;
  bool write_ = false;
};

Status lmdb_status(int rc, const std::string& what);

template <typename Fn>
Status Txn::scan(MDB_dbi db, std::string_view prefix, Fn&& fn) {
  MDB_cursor* cur = nullptr;
  int rc = mdb_cursor_open(txn_, db, &cur);
  if (rc) return lmdb_status(rc, "mdb_cursor_open");
  MDB_val k{prefix.size(), const_cast<char*>(prefix.data())};
  MDB_val v{};
  rc = mdb_cursor_get(cur, &k, &v, prefix.empty() ? MDB_FIRST : MDB_SET_RANGE);
  while (rc == 0) {
    std::string_view key(static_cast<const char*>(k.mv_data), k.mv_size);
    if (key.substr(0, prefix.size()) != prefix) break;
    if (!fn(key, std::string_view(static_cast<const char*>(v.mv_data), v.mv_size))) break;
    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(cur);
  if (rc != 0 && rc != MDB_NOTFOUND) return lmdb_status(rc, "mdb_cursor_get");
  return {};
}

}  // namespace tcfs::meta
