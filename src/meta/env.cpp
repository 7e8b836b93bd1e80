#include "meta/env.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>

#include <cstdlib>

#include "util/durable.h"
#include "util/fault.h"

namespace tcfs::meta {

Status lmdb_status(int rc, const std::string& what) {
  // LMDB returns errno values for system errors and its own negative codes
  // for database conditions; map the latter to the nearest errno.
  int err = rc;
  switch (rc) {
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
    case MDB_PAGE_FULL: err = ENOSPC; break;
    case MDB_NOTFOUND: err = ENOENT; break;
    case MDB_READERS_FULL: err = EAGAIN; break;
    case MDB_INVALID:
    case MDB_CORRUPTED:
    case MDB_VERSION_MISMATCH:
    case MDB_PAGE_NOTFOUND: err = EUCLEAN; break;
    default:
      if (rc < 0) err = EIO;
  }
  return Status::error(err, what + " (" + mdb_strerror(rc) + ")");
}

Result<std::unique_ptr<Env>> Env::open(const std::string& dir, const std::vector<std::string>& dbs,
                                       size_t map_size) {
  std::unique_ptr<Env> e(new Env());
  e->dir_ = dir;
  if (int f = fault::check("meta.open")) return Status::error(f, "open LMDB environment " + dir);
  int rc = mdb_env_create(&e->env_);
  if (rc) return lmdb_status(rc, "mdb_env_create");
  mdb_env_set_maxdbs(e->env_, static_cast<MDB_dbi>(dbs.size() + 1));
  mdb_env_set_mapsize(e->env_, map_size);
  mdb_env_set_maxreaders(e->env_, 512);
  rc = mdb_env_open(e->env_, dir.c_str(), MDB_NOTLS, 0600);
  if (rc) return lmdb_status(rc, "open LMDB environment " + dir);
  auto txn = Txn::begin(*e, true);
  if (!txn) return txn.status();
  for (const auto& name : dbs) {
    MDB_dbi dbi;
    rc = mdb_dbi_open(txn->raw(), name.c_str(), MDB_CREATE, &dbi);
    if (rc) return lmdb_status(rc, "open LMDB database " + name + " in " + dir);
    e->dbs_[name] = dbi;
  }
  TCFS_TRY(txn->commit());
  return e;
}

Env::~Env() {
  if (env_) mdb_env_close(env_);
}

MDB_dbi Env::db(const std::string& name) const {
  auto it = dbs_.find(name);
  if (it == dbs_.end()) {
    spdlog::critical("meta: database '{}' was not opened with the environment", name);
    std::abort();
  }
  return it->second;
}

Result<Txn> Txn::begin(Env& env, bool write) {
  MDB_txn* t = nullptr;
  int rc = mdb_txn_begin(env.raw(), nullptr, write ? 0 : MDB_RDONLY, &t);
  if (rc) return lmdb_status(rc, write ? "begin LMDB write transaction" : "begin LMDB read transaction");
  return Txn(t, write);
}

Txn::~Txn() {
  if (txn_) mdb_txn_abort(txn_);
}

Result<std::optional<std::string>> Txn::get(MDB_dbi db, std::string_view key) {
  MDB_val k{key.size(), const_cast<char*>(key.data())};
  MDB_val v{};
  int rc = mdb_get(txn_, db, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<std::string>{};
  if (rc) return lmdb_status(rc, "mdb_get");
  return std::optional<std::string>(std::string(static_cast<const char*>(v.mv_data), v.mv_size));
}

Status Txn::put(MDB_dbi db, std::string_view key, std::string_view value) {
  MDB_val k{key.size(), const_cast<char*>(key.data())};
  MDB_val v{value.size(), const_cast<char*>(value.data())};
  int rc = mdb_put(txn_, db, &k, &v, 0);
  if (rc) return lmdb_status(rc, "mdb_put");
  return {};
}

Status Txn::del(MDB_dbi db, std::string_view key) {
  MDB_val k{key.size(), const_cast<char*>(key.data())};
  int rc = mdb_del(txn_, db, &k, nullptr);
  if (rc && rc != MDB_NOTFOUND) return lmdb_status(rc, "mdb_del");
  return {};
}

Status Txn::clear(MDB_dbi db) {
  int rc = mdb_drop(txn_, db, 0);
  return rc ? lmdb_status(rc, "mdb_drop") : Status{};
}

Status Txn::commit() {
  if (int f = fault::check("meta.commit")) {
    mdb_txn_abort(txn_);
    txn_ = nullptr;
    return Status::error(f, "commit LMDB transaction");
  }
  const char* dir = nullptr;
  if (write_) mdb_env_get_path(mdb_txn_env(txn_), &dir);
  int rc = mdb_txn_commit(txn_);
  txn_ = nullptr;  // committed or not, the handle is gone
  if (rc) return lmdb_status(rc, "commit LMDB transaction");
  // The commit's own sync may have raced with a shutdown (util/durable.h).
  return dir ? still_up(AT_FDCWD, dir, "commit LMDB transaction") : Status();
}

}  // namespace tcfs::meta
