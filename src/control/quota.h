// control/quota.h — what each user may hold of the control server:
// connections, request bytes in flight and passed descriptors in flight.
//
// Invariants (checks in quota.cpp name them):
//  Q1 A uid other than root holds at most user_conns connections; all uids
//     other than root together hold at most max_conns - root_conns, so the
//     last root_conns connections are always free for root. Root alone may
//     use every one of max_conns.
//  Q2 The request bytes a non-root uid has in flight (frame buffers being
//     read, and the request they became while it runs) never exceed
//     user_bytes; those of all non-root uids together never exceed
//     users_bytes. Root's bytes are counted, never refused: root is served
//     whatever other users hold.
//  Q3 The descriptors a non-root uid has passed and the server still holds
//     never exceed user_fds.
//  Q4 Every charge is released exactly once (Charge releases what it took
//     when it is destroyed); admit() and leave() pair up per connection.
//  A refusal is an error naming the uid, the limit and its value:
//  EBUSY for connections, ENOBUFS for bytes, ETOOMANYREFS for descriptors.
//
// Locks: mu_ protects users_ and others_. It is a leaf: nothing else is
// locked while it is held (ControlServer::mu_ may be held around admit()
// and leave(): order ControlServer::mu_ -> Quota::mu_).
//
// Thread-safety: every member may be called from any thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>

#include "control/wire.h"
#include "tcfs/status.h"
#include "util/mutex.h"

namespace tcfs::control {

struct QuotaSettings {
  uint64_t max_conns = 128;
  uint64_t user_conns = 16;
  uint64_t root_conns = 16;
  uint64_t user_bytes = protocol::kDefaultMaxFrameBytes;
  uint64_t users_bytes = 1ull << 30;
  uint64_t user_fds = 4096;
};

// The settings a server with these limits and connection cap runs with
// (defaults filled in, root_conns < max_conns, users_bytes >= user_bytes).
QuotaSettings quota_settings(const Limits& lim, uint64_t max_conns);

struct Usage {
  uint64_t conns = 0, bytes = 0, fds = 0;
};

class Quota {
 public:
  explicit Quota(QuotaSettings s) : s_(s) {}
  const QuotaSettings& settings() const { return s_; }
  // A new connection of uid (Q1); EBUSY naming the limit otherwise.
  Status admit(uid_t uid);
  void leave(uid_t uid);
  // Q2, Q3: ENOBUFS / ETOOMANYREFS naming the limit; nothing is taken then.
  Status take(uid_t uid, uint64_t bytes, uint64_t fds);
  void give_back(uid_t uid, uint64_t bytes, uint64_t fds);
  Usage of(uid_t uid) const;
  Usage others() const;  // every uid but root's

 private:
  QuotaSettings s_;
  mutable Mutex mu_;
  std::map<uid_t, Usage> users_ TCFS_GUARDED_BY(mu_);  // uids with anything held
  Usage others_ TCFS_GUARDED_BY(mu_);                  // sum over users_ but root
};

// What one request takes from its user's share, released when it ends (Q4).
class Charge final : public FrameBudget {
 public:
  Charge(Quota& q, uid_t uid) : q_(q), uid_(uid) {}
  ~Charge() override { q_.give_back(uid_, bytes_, fds_); }
  Charge(const Charge&) = delete;
  Charge& operator=(const Charge&) = delete;
  Status charge(uint64_t bytes, uint64_t fds) override;

 private:
  Quota& q_;
  uid_t uid_;
  uint64_t bytes_ = 0, fds_ = 0;
};

}  // namespace tcfs::control
