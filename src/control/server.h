// control/server.h — the compound server on the control socket
// (control/socket_path.h says where it is).
//
// Contract:
//  * start() binds the socket (mode 0666; a stale socket file is replaced,
//    a live server answering on it is an EADDRINUSE error), accepts
//    connections on a thread of its own and serves each connection on its
//    own thread.
//  * Resources (invariants S1-S4; control/quota.h Q1-Q4 for the counts):
//    S1 A connection is admitted only within its uid's share (Q1): at most
//       max_connections in all, Limits::user_conns per uid other than
//       root, and the last Limits::root_conns for root alone. One more is
//       answered with a rejection (EBUSY) naming the limit, and closed.
//    S2 A request's bytes and descriptors are charged to its uid as they
//       arrive (wire.h F1, Q2, Q3) and released when the request is done;
//       a frame the share cannot hold is refused (ENOBUFS, the connection
//       closes; ETOOMANYREFS for descriptors, the connection goes on). So
//       what other users send never keeps root's requests out.
//    S3 No connection holds a thread forever: one with no request started
//       for Limits::idle_ms is closed, a frame that stalls for
//       frame_stall_ms is given up, and a reply the client does not read
//       for frame_stall_ms (SO_SNDTIMEO) closes the connection.
//    S4 The accept loop never waits on a client: admission and its
//       rejection use only non-blocking calls.
//  * Every request is decoded and checked (control/wire.h) before the
//    executor sees it. The caller is who the kernel says is on the other
//    end (SO_PEERCRED, SO_PEERGROUPS), never what the request claims.
//  * The descriptors a request passes are in Compound::fds while the
//    executor runs; the server closes all of them when run() returns, and
//    closes at once every descriptor of a request it refuses.
//  * A bad frame gets a "rejected" reply naming the problem when the
//    stream still allows one, and one log line naming the peer's pid; the
//    connection is closed when the stream cannot be resynchronized (an
//    oversized, cut or stalled frame). Other connections never notice.
//  * stop() stops accepting, shuts every connection down (blocked reads and
//    writes return), waits for compounds already running to finish, joins
//    every thread and removes the socket file.
//
// This layer knows nothing of txn/, fuse/ or store/: the Executor below is
// the seam.
//
// Locks: mu_ protects conns_ and stopping_; it is never held while a
// request is read or served. The Quota has its own leaf lock (order: mu_
// -> Quota::mu_).
//
// Thread-safety: start/stop from one thread; Executor::run is called from
// many connection threads at once.
#pragma once

#include <sys/types.h>

#include <functional>
#include <list>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "control/quota.h"
#include "control/wire.h"
#include "tcfs/compound.h"
#include "util/mutex.h"

namespace tcfs::control {

// The process on the other end of a connection, from the kernel.
struct Caller {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups
};

// Reports progress: `done` of `total` steps. Always callable (it does
// nothing when the client did not ask for progress); never blocks on a
// client that does not read.
using ProgressFn = std::function<void(size_t done, size_t total)>;

class Executor {
 public:
  virtual ~Executor() = default;
  // Runs c as `who` and says what happened. c.fds holds the received
  // descriptors (the server closes them after run returns). Called from
  // several connection threads at once. Must not throw: an exception
  // terminates the daemon (recovery at the next mount undoes the compound).
  virtual CompoundReply run(const Compound& c, const Caller& who, const ProgressFn& progress) = 0;
  // "sync": returns once everything committed before the call is on the
  // blobbers, or an error saying what is pending (ETIMEDOUT after
  // timeout_ms). ENOTSUP when the store has no blobbers.
  virtual Status sync(uint64_t timeout_ms) {
    (void)timeout_ms;
    return Status::error(ENOTSUP, "this store has no blobbers");
  }
  // "status": a map of figures for `tcfs status` (sync, cache, blobbers).
  virtual Json status() { return Json::object(); }
  // status() without what costs requests to the blobbers (their probes,
  // a walk of the chain): what a metrics scrape and the request "status"
  // with "quick" read (daemon/status_metrics.h, progress bars).
  virtual Json figures() { return status(); }
  // "maintain": "gc" or "scrub" of the blobbers; a report map, or an error.
  virtual Result<Json> maintain(const std::string& what) {
    return Status::error(ENOTSUP, what + ": this store has no blobbers");
  }
};

struct ServerInfo {
  std::string version = "tcfs " TCFS_VERSION;
  std::string mount;  // the mountpoint
  std::string store;  // the store directory
};

namespace detail {
template <typename M>
struct SecondArg;
template <typename C, typename R, typename A, typename B, typename P>
struct SecondArg<R (C::*)(A, B, P) const> {
  using type = std::remove_cvref_t<B>;
};
template <typename C, typename R, typename A, typename B, typename P>
struct SecondArg<R (C::*)(A, B, P)> {
  using type = std::remove_cvref_t<B>;
};

// Transitional adapter for a callable (const Compound&, const Who&, const
// ProgressFn&) whose Who has `pid` and `creds{uid, gid, groups}` (the
// daemon's txn::Caller) — the form tools/tcfs passes today. New code
// implements Executor.
template <typename Fn>
class FnExecutor final : public Executor {
 public:
  explicit FnExecutor(Fn fn) : fn_(std::move(fn)) {}
  CompoundReply run(const Compound& c, const Caller& who, const ProgressFn& progress) override {
    using Who = typename SecondArg<decltype(&Fn::operator())>::type;
    if constexpr (std::is_same_v<Who, Caller>) {
      return fn_(c, who, progress);
    } else {
      Who w{};
      w.pid = who.pid;
      w.creds.uid = who.uid;
      w.creds.gid = who.gid;
      w.creds.groups = who.groups;
      return fn_(c, w, progress);
    }
  }

 private:
  Fn fn_;
};
}  // namespace detail

class ControlServer {
 public:
  static Result<std::unique_ptr<ControlServer>> start(const std::string& socket_path, std::shared_ptr<Executor> exec,
                                                      Limits limits, ServerInfo info, unsigned max_connections = 128);
  // The same with a callable (see detail::FnExecutor).
  template <typename Fn>
    requires(!std::is_convertible_v<Fn, std::shared_ptr<Executor>>)
  static Result<std::unique_ptr<ControlServer>> start(const std::string& socket_path, Fn fn, Limits limits,
                                                      ServerInfo info, unsigned max_connections = 128) {
    return start(socket_path, std::make_shared<detail::FnExecutor<Fn>>(std::move(fn)), limits, std::move(info),
                 max_connections);
  }
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;
  void stop();
  // What uid holds of the server now, and all users but root together.
  Usage usage(uid_t uid) const { return quota_->of(uid); }
  Usage others_usage() const { return quota_->others(); }

 private:
  struct Conn {
    int fd = -1;
    Caller who;
    std::thread thread;
    bool done = false;
  };
  ControlServer() = default;
  void accept_loop();
  void admit(int fd);
  void serve(Conn* c);
  bool wait_for_request(int fd, const Caller& who);
  bool handle(int fd, const Caller& who);
  bool frame_failed(int fd, const Caller& who, const Status& st);
  bool refuse(int fd, const Caller& who, int err, const std::string& why);
  // payload: the frame, which `attached` (the bytes after the map) points into.
  bool run_compound(int fd, const Caller& who, Json req, std::string payload, std::string_view attached,
                    std::vector<int> fds);
  bool run_sync(int fd, const Caller& who, const Json& req);
  void reap_locked() TCFS_REQUIRES(mu_);

  std::string path_;
  std::shared_ptr<Executor> exec_;
  Limits limits_;
  ServerInfo info_;
  std::unique_ptr<Quota> quota_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};  // pipe: stop() wakes the accept loop
  std::thread acceptor_;
  Mutex mu_;  // order: mu_ -> Quota::mu_
  std::list<Conn> conns_ TCFS_GUARDED_BY(mu_);
  bool stopping_ TCFS_GUARDED_BY(mu_) = false;
};

}  // namespace tcfs::control
