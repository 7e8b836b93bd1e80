// daemon/executor.h — the control server's Executor for a mounted store:
// a compound request becomes a txn::TxnManager run as the caller; sync,
// status and maintain go to the blobber link (Remote) when there is one.
//
// Contract: run() passes the peer's credentials (from SO_PEERCRED and its
// groups, control/server.h) to the compound manager, which acts as them
// (txn.h). sync() returns once everything committed is on the blobbers
// and they give it back (chain.h 5), or an error naming what is pending.
// status() is the JSON `tcfs status` prints (cache, blobbers, sync).
//
// Thread-safety: every member may be called from any control thread; it
// holds no state of its own beyond references fixed at construction.
#pragma once

#include <memory>
#include <string>

#include "control/server.h"
#include "daemon/daemon.h"
#include "txn/txn.h"

namespace tcfs::daemon {

std::shared_ptr<control::Executor> make_executor(txn::TxnManager& tm, Remote* r, std::string store_path,
                                                Checkpointer* ckpt = nullptr);
// `tcfs log`: the chain's rounds (sync/follow.h round_log) as the maintain reply {"rounds": [...]}.
Result<control::Json> log_json(blob::ObjectStore& os);

}  // namespace tcfs::daemon
