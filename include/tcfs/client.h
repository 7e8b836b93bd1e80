// tcfs/client.h — the client library: find the tcfs mount a path is in,
// and run compounds on its daemon.
//
// Contract:
//  * Client::for_path(p) finds the tcfs mount containing p (absolute, or
//    relative to the current directory; normalised lexically against
//    getcwd(), so ".." means the parent as written and nothing inside the
//    mount is touched) from /proc/self/mountinfo — the deepest mount whose
//    mountpoint is a prefix of p must be of type fuse.tcfs — and connects
//    to its daemon's control socket, found from the mount alone: for a
//    daemon running as root (the mount's user_id=0) /run/tcfs/<id>.sock,
//    <id> 32 hex digits of the SHA-256 of the store directory (the mount's
//    source); for a daemon running as another user <store>/control.sock.
//  * relative(p) turns a path into the mount-relative form compounds use
//    ("" for the mount's root); a path outside this mount, or inside
//    another mount stacked on it (another tcfs mount included), is an
//    EXDEV error naming the path.
//  * submit() sends one compound (its descriptors with SCM_RIGHTS, at most
//    253 per sendmsg; they stay open and the caller's) and returns the
//    daemon's reply; progress(done, total) is called as the daemon reports
//    progress, if given. An error Status means the request did not get an
//    answer (daemon gone, protocol error); a reply with outcome Rejected
//    means the daemon refused it (nothing ran).
//  * Any number of hello()/submit() calls may use one Client, one at a time.
//    The daemon closes a connection left idle (tcfs(8), ctl_idle); the next
//    call then opens a new one by itself.
//  * A daemon that refuses the connection for a limit (too many
//    connections of this user, or none left but root's) answers the first
//    call with an EBUSY error (a Rejected reply from submit()) naming the
//    limit.
//
// Thread-safety: a Client is one connection; use it from one thread at a
// time (or one Client per thread). The free functions are thread-safe.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "tcfs/compound.h"
#include "tcfs/status.h"

namespace tcfs {

struct MountInfo {
  std::string mountpoint;  // absolute
  std::string store;       // the store directory (mount source)
  std::string socket;      // the control socket (see above)
};

// Lexically normalised absolute form of p (against getcwd()).
std::string absolute_path(const std::string& p);
// The tcfs mount that shows `path`; ENOENT naming it if there is none.
Result<MountInfo> find_mount(const std::string& path);

// The daemon's answer to hello(): its version, mount, store and limits.
struct ServerHello {
  std::string server, mount, store;
  uint64_t max_ops = 0, max_inline_bytes = 0, max_fds = 0, max_frame_bytes = 0;
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
  // Waits until everything committed before the call is on the blobbers
  // (the daemon's answer: ETIMEDOUT naming what is pending, ENOTSUP for a
  // store without blobbers). timeout_ms 0: the daemon's default (a day).
  Status sync(uint64_t timeout_ms = 0);
  // The daemon's status figures as a JSON text (tcfs(8) lists the fields).
  Result<std::string> status_json();
  // The same without what costs requests to the blobbers (no "blobbers"
  // health; sync's chain_problem as last checked): for polling.
  Result<std::string> figures_json();
  // The daemon's metrics in the Prometheus text format (tcfs(8) METRICS).
  Result<std::string> metrics_text();
  // Runs "gc" or "scrub" of the blobbers (root only); its report as JSON text.
  Result<std::string> maintain(const std::string& what);

 private:
  Client(MountInfo m, int fd) : m_(std::move(m)), fd_(fd) {}
  Status reopen_if_closed();
  Result<std::string> status_text(bool quick);
  Result<CompoundReply> submit_as(const Compound& c, const std::function<void(size_t, size_t)>& progress,
                                  bool columns);
  Status send(const std::string& req, const std::vector<int>& fds);
  Status send(const std::vector<std::string_view>& req, const std::vector<int>& fds);  // a frame in parts
  MountInfo m_;
  int fd_ = -1;
  bool used_ = false;  // a request has been sent on fd_
  std::vector<std::string> nested_;  // mountpoints stacked on this mount
};

}  // namespace tcfs
