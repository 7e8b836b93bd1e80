// tcfs/client.h — the client library: find the tcfs mount a path is in,
// and run compounds on its daemon.
//
// Contract:
//  * Client::for_path(p) finds the tcfs mount containing p (absolute, or
//    relative to the current directory; normalised lexically, so ".."
//    means the parent as written, and the mount is found without touching
//    it) from /proc/self/mountinfo — the deepest mount of type fuse.tcfs
//    whose mountpoint is a prefix of p — and connects to its daemon's
//    control socket, <store>/control.sock (the mount's source is the
//    store directory).
//  * relative(p) turns a path into the mount-relative form compounds use;
//    a path outside this mount is an EXDEV error naming it.
//  * submit() sends one compound (its descriptors with SCM_RIGHTS) and
//    returns the daemon's reply; progress(done, total) is called as the
//    daemon reports progress, if given. An error Status means the request
//    did not get an answer (daemon gone, protocol error); a reply with
//    outcome Rejected means the daemon refused it.
//
// Thread-safety: a Client is one connection; use it from one thread at a
// time (or one Client per thread).
#pragma once

#include <functional>
#include <string>

#include "tcfs/compound.h"
#include "tcfs/status.h"

namespace tcfs {

struct MountInfo {
  std::string mountpoint;  // absolute
  std::string store;       // the store directory (mount source)
  std::string socket;      // <store>/control.sock
};

// Lexically normalised absolute form of p (against getcwd()).
std::string absolute_path(const std::string& p);
Result<MountInfo> find_mount(const std::string& path);

struct ServerHello {
  std::string server, mount, store;
  uint64_t max_ops = 0, max_inline_bytes = 0, max_fds = 0;
};

class Client {
 public:
  static Result<Client> for_path(const std::string& path);
  static Result<Client> connect(const MountInfo& m);
  Client(Client&& o) noexcept;
  Client& operator=(Client&&) = delete;
  ~Client();

  const MountInfo& mount() const { return m_; }
  Result<std::string> relative(const std::string& path) const;
  Result<ServerHello> hello();
  Result<CompoundReply> submit(const Compound& c, const std::function<void(size_t, size_t)>& progress = {});

 private:
  Client(MountInfo m, int fd) : m_(std::move(m)), fd_(fd) {}
  MountInfo m_;
  int fd_ = -1;
};

}  // namespace tcfs
