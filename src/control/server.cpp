// control/server.cpp — accept loop, per-connection threads, request dispatch.
#include "control/server.h"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "util/fault.h"

namespace tcfs::control {
namespace {

Result<txn::Caller> peer_of(int fd) {
  ucred uc{};
  socklen_t len = sizeof uc;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0) return Status::from_errno("SO_PEERCRED");
  txn::Caller who;
  who.pid = uc.pid;
  who.creds.uid = uc.uid;
  who.creds.gid = uc.gid;
  std::vector<gid_t> groups(64);
  for (;;) {
    socklen_t glen = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &glen) == 0) {
      groups.resize(glen / sizeof(gid_t));
      break;
    }
    if (errno != ERANGE) return Status::from_errno("SO_PEERGROUPS");
    groups.resize(glen / sizeof(gid_t) + 16);
  }
  who.creds.groups = std::move(groups);
  return who;
}

Status bind_socket(const std::string& path, int* out) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return Status::error(ENAMETOOLONG, "control socket path " + path);
  strcpy(addr.sun_path, path.c_str());
  // A live server answers a connect; a stale file does not.
  int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe >= 0) {
    bool live = connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(probe);
    if (live) return Status::error(EADDRINUSE, "control socket " + path + " is served by another process");
  }
  unlink(path.c_str());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::from_errno("socket");
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || chmod(path.c_str(), 0666) != 0 ||
      listen(fd, 128) != 0) {
    Status st = Status::from_errno("control socket " + path);
    close(fd);
    return st;
  }
  *out = fd;
  return {};
}

}  // namespace

Result<std::unique_ptr<ControlServer>> ControlServer::start(const std::string& socket_path, Executor exec,
                                                            Limits limits, ServerInfo info, unsigned max_conns) {
  std::unique_ptr<ControlServer> s(new ControlServer());
  s->path_ = socket_path;
  s->exec_ = std::move(exec);
  s->limits_ = limits;
  s->info_ = std::move(info);
  s->max_conns_ = max_conns;
  TCFS_TRY(bind_socket(socket_path, &s->listen_fd_));
  if (pipe2(s->wake_, O_CLOEXEC) != 0) return Status::from_errno("pipe");
  s->acceptor_ = std::thread([p = s.get()] { p->accept_loop(); });
  return s;
}

ControlServer::~ControlServer() { stop(); }

void ControlServer::stop() {
  {
    std::lock_guard g(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& c : conns_) shutdown(c.fd, SHUT_RDWR);
  }
  if (wake_[1] >= 0 && write(wake_[1], "x", 1) < 0) { /* the acceptor wakes on close too */ }
  if (acceptor_.joinable()) acceptor_.join();
  for (auto& c : conns_)
    if (c.thread.joinable()) c.thread.join();
  conns_.clear();
  for (int fd : {listen_fd_, wake_[0], wake_[1]})
    if (fd >= 0) close(fd);
  listen_fd_ = wake_[0] = wake_[1] = -1;
  unlink(path_.c_str());
}

void ControlServer::reap_locked() {
  for (auto it = conns_.begin(); it != conns_.end();) {
    if (it->done) {
      it->thread.join();
      it = conns_.erase(it);
    } else {
      ++it;
    }
  }
}

void ControlServer::accept_loop() {
  for (;;) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (poll(p, 2, -1) < 0 && errno != EINTR) break;
    if (p[1].revents) break;
    if (!(p[0].revents & POLLIN)) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard g(mu_);
    if (stopping_) {
      close(fd);
      break;
    }
    reap_locked();
    if (conns_.size() >= max_conns_) {
      write_frame(fd, to_bytes(rejection(EBUSY, "too many connections to the control socket (limit " +
                                                    std::to_string(max_conns_) + ")")));
      close(fd);
      continue;
    }
    Conn& c = conns_.emplace_back();
    c.fd = fd;
    c.thread = std::thread([this, cp = &c] { serve(cp); });
  }
}

void ControlServer::serve(Conn* c) {
  auto who = peer_of(c->fd);
  if (who) {
    while (handle(c->fd, *who)) {
    }
  } else {
    spdlog::warn("control: cannot identify the peer: {}", who.status().message());
  }
  std::lock_guard g(mu_);
  close(c->fd);
  c->fd = -1;
  c->done = true;
}

// One request; false when the connection must close.
bool ControlServer::handle(int fd, const txn::Caller& who) {
  std::vector<int> fds;
  auto closer = [&] {
    for (int f : fds) close(f);
  };
  auto frame = read_frame(fd, limits_.max_frame_bytes, &fds);
  if (!frame) {
    closer();
    if (frame.err() == ENODATA) return false;  // the client hung up between requests
    spdlog::warn("control: request from pid {}: {}", who.pid, frame.status().message());
    // An oversized frame can still be answered (the stream is dead after it).
    if (frame.err() == EMSGSIZE) write_frame(fd, to_bytes(rejection(EMSGSIZE, frame.status().message())));
    return false;
  }
  auto reply = [&](const Json& j) { return write_frame(fd, to_bytes(j)).is_ok(); };
  auto req = from_bytes(*frame);
  if (!req || !req->is_object()) {
    closer();
    std::string msg = req ? "request is not a map" : req.status().message();
    spdlog::warn("control: request from pid {}: {}", who.pid, msg);
    return reply(rejection(EPROTO, msg));
  }
  const Json& r = *req;
  if (!r.contains("v") || r["v"] != protocol::kVersion) {
    closer();
    std::string msg = "unsupported protocol version (this daemon speaks " + std::to_string(protocol::kVersion) + ")";
    spdlog::warn("control: request from pid {}: {}", who.pid, msg);
    return reply(rejection(EPROTO, msg));
  }
  std::string type = r.contains("type") && r["type"].is_string() ? r["type"].get<std::string>() : "";
  if (type == "hello") {
    closer();
    return reply({{"v", protocol::kVersion}, {"type", "hello"}, {"server", info_.version}, {"mount", info_.mount},
                  {"store", info_.store},
                  {"limits", {{"max_ops", limits_.max_ops}, {"max_inline_bytes", limits_.max_inline_bytes},
                              {"max_frame_bytes", limits_.max_frame_bytes}, {"max_fds", limits_.max_fds}}}});
  }
  if (type != "compound") {
    closer();
    spdlog::warn("control: request from pid {}: unknown type '{}'", who.pid, type);
    return reply(rejection(EINVAL, "unknown request type \"" + type + "\""));
  }
  auto c = decode_compound(r, limits_, fds.size());
  if (!c) {
    closer();
    spdlog::warn("control: compound from pid {} rejected: {}", who.pid, c.status().message());
    return reply(rejection(c.err(), c.status().what()));
  }
  c->fds = fds;
  bool progress = r.contains("progress") && r["progress"] == true;
  bool alive = true;
  size_t step = std::max<size_t>(1, c->ops.size() / 100);
  CompoundReply out = exec_(*c, who, [&](size_t done, size_t total) {
    if (progress && alive && (done % step == 0 || done == total))
      alive = write_frame(fd, to_bytes(encode_progress(done, total))).is_ok();
  });
  closer();
  return reply(encode_reply(out));
}

}  // namespace tcfs::control
