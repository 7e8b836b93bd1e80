// txn/exec.h — runs one planned operation on the real tree.
//
// Contract: exec_op() performs operation `op` as planned in `po` with the
// calling thread's credentials, which must be the caller's (AsUser), so the
// kernel checks permissions exactly as for the caller's own syscalls. The
// only work done as root (AsRoot) is the daemon's own bookkeeping: hard-
// linking or renaming a victim into txn/<id>/ (after a permission check as
// the caller, for subtrees). It returns 0 or the errno of the failing
// syscall, with a message naming the path. When it fails, the operation
// may have half happened; undo (undo.h) copes with that.
//
// Thread-safety: stateless; the compound's locks must be held.
#pragma once

#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

#include "meta/env.h"
#include "tcfs/compound.h"
#include "txn/logged.h"
#include "txn/plan.h"
#include "util/creds.h"

namespace tcfs::txn {

// The file the previous operation left open (a create), kept for a write
// to the same path that immediately follows: nothing can rebind the path in
// between (the compound holds its locks), and the open already passed the
// caller's write-permission check.
struct LastOpen {
  int fd = -1;
  std::string path;
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
    path.clear();
  }
  ~LastOpen() { reset(); }
};

struct ExecCtx {
  int root_fd = -1;
  int txn_fd = -1;  // txn/<id>/ (or -1 with txn off: nothing is kept)
  const UserCreds* who = nullptr;
  const std::vector<int>* fds = nullptr;  // descriptors passed with the request
  bool reflink = false;
  // Exchange with an object created in this compound: record its identity
  // in the RR (synced) before the exchange runs. Null with txn off.
  std::function<Status(size_t step, Identity id)> amend_exchange;
  LastOpen* last = nullptr;  // optional
  // What a commit through the endurant log must carry (logged.h); null:
  // the compound commits with syncfs.
  Logged* logged = nullptr;
};

Status exec_op(const ExecCtx& ctx, const Op& op, const PlannedOp& po, OpResult& res);

// The errno the caller would get resolving op's path(s) now (a side-effect
// free walk as the caller), or 0: used to report a predicted failure with
// the precedence the kernel gives (EACCES on the way before ENOENT at the end).
int probe_errno(const ExecCtx& ctx, const Op& op);

}  // namespace tcfs::txn
