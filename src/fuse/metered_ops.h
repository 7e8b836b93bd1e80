// fuse/metered_ops.h — FUSE requests counted by kind, with their latency.
//
// Contract:
//  1. metered(slot, ops) returns a table whose every request handler
//     (every member taking a fuse_req_t) calls the one of `ops` and
//     observes, in tcfs_fuse_request_duration_seconds{op="<member>"}, the
//     time from the handler's entry to its return. The histogram's
//     _count is thus the number of requests of that kind. Handlers that
//     reply before they return (all of tcfs's) are measured whole; a
//     reply sent later from another thread would count only the
//     handler's part. init and destroy are passed through unmeasured;
//     members `ops` leaves null stay null (the kernel then gets ENOSYS,
//     as before).
//  2. `slot` names which table (kMount, kView): each has its own copy of
//     the handlers it wraps, so a process may hold both.
//  3. Bytes read and written and failed requests by errno are counted
//     where the replies are made (fuse/reply.cpp), the one place replies
//     are sent.
//
// Thread-safety: metered() is called once per slot before the session
// starts; the wrappers run on any FUSE thread (metrics.h 2).
#pragma once

#include <fuse_lowlevel.h>

namespace tcfs::fusefs {

enum class OpsSlot { kMount = 0, kView = 1 };

fuse_lowlevel_ops metered(OpsSlot slot, const fuse_lowlevel_ops& ops);

}  // namespace tcfs::fusefs
