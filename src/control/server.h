// control/server.h — the compound server on <store>/control.sock.
//
// Contract: start() binds the socket (mode 0666; a stale socket file is
// replaced, a live server on it is an EADDRINUSE error), accepts
// connections on a thread of its own, and serves each connection on its own
// thread (at most max_connections; more are answered with a rejection and
// closed). Every request is decoded and checked (control/wire.h) before the
// executor sees it; the caller is who the kernel says is on the other end
// (SO_PEERCRED, SO_PEERGROUPS), never what the request claims. A bad frame
// gets a "rejected" reply naming the problem when the stream still allows
// one, and one log line; the connection is closed when the stream cannot be
// resynchronized (oversized or cut frame). stop() stops accepting, shuts
// every connection down and joins every thread; a compound already running
// finishes first.
//
// Locks: mu_ protects conns_ and stopping_; it is never held while serving
// a request.
//
// Thread-safety: start/stop from one thread; the executor is called from
// many connection threads at once.
#pragma once

#include <sys/types.h>

#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "control/wire.h"
#include "tcfs/compound.h"
#include "txn/txn.h"

namespace tcfs::control {

using Executor = std::function<CompoundReply(const Compound&, const txn::Caller&, const txn::Progress&)>;

struct ServerInfo {
  std::string version = "tcfs 0.1.0";
  std::string mount;
  std::string store;
};

class ControlServer {
 public:
  static Result<std::unique_ptr<ControlServer>> start(const std::string& socket_path, Executor exec, Limits limits,
                                                      ServerInfo info, unsigned max_connections = 64);
  ~ControlServer();
  void stop();

 private:
  struct Conn {
    int fd = -1;
    std::thread thread;
    bool done = false;
  };
  ControlServer() = default;
  void accept_loop();
  void serve(Conn* c);
  bool handle(int fd, const txn::Caller& who);
  void reap_locked();

  std::string path_;
  Executor exec_;
  Limits limits_;
  ServerInfo info_;
  unsigned max_conns_ = 64;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};  // pipe: stop() wakes the accept loop
  std::thread acceptor_;
  std::mutex mu_;
  std::list<Conn> conns_;
  bool stopping_ = false;
};

}  // namespace tcfs::control
