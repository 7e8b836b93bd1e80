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

#include "control/messages.h"
#include "util/fault.h"
#include "util/metrics.h"

namespace tcfs::control {
namespace {

Result<Caller> peer_of(int fd) {
  ucred uc{};
  socklen_t len = sizeof uc;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0) return Status::from_errno("SO_PEERCRED");
  Caller who;
  who.pid = uc.pid;
  who.uid = uc.uid;
  who.gid = uc.gid;
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
  who.groups = std::move(groups);
  return who;
}

Status bind_socket(const std::string& path, int* out) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return Status::error(ENAMETOOLONG, "control socket path " + path);
  memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  // A live server answers a connect; a stale socket file refuses it.
  int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe < 0) return Status::from_errno("socket");
  bool live = connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(probe);
  if (live) return Status::error(EADDRINUSE, "control socket " + path + " is served by another process");
  if (unlink(path.c_str()) != 0 && errno != ENOENT) return Status::from_errno("remove stale control socket " + path);
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

void close_all(const std::vector<int>& fds) {
  for (int fd : fds) close(fd);
}

// The executor's answer to "maintain": its report, or its error.
Json maintained(Executor& exec, const std::string& what) {
  auto rep = exec.maintain(what);
  return encode_maintained({rep.err(), rep ? "" : rep.status().what(), rep ? *rep : Json::object()});
}

}  // namespace

Result<std::unique_ptr<ControlServer>> ControlServer::start(const std::string& socket_path,
                                                            std::shared_ptr<Executor> exec, Limits limits,
                                                            ServerInfo info, unsigned max_conns) {
  if (!exec) return Status::error(EINVAL, "control server without an executor");
  std::unique_ptr<ControlServer> s(new ControlServer());
  s->path_ = socket_path;
  s->exec_ = std::move(exec);
  s->limits_ = limits;
  s->info_ = std::move(info);
  s->quota_ = std::make_unique<Quota>(quota_settings(limits, max_conns));
  if (int f = fault::check("control.bind")) return Status::error(f, "control socket " + socket_path);
  if (pipe2(s->wake_, O_CLOEXEC) != 0) return Status::from_errno("pipe");
  TCFS_TRY(bind_socket(socket_path, &s->listen_fd_));
  s->acceptor_ = std::thread([p = s.get()] { p->accept_loop(); });
  return s;
}

ControlServer::~ControlServer() { stop(); }

void ControlServer::stop() {
  {
    MutexLock g(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& c : conns_)
      if (c.fd >= 0) shutdown(c.fd, SHUT_RDWR);
  }
  if (wake_[1] >= 0 && write(wake_[1], "x", 1) < 0) { /* the acceptor also polls with a timeout */ }
  if (acceptor_.joinable()) acceptor_.join();
  // No thread adds to conns_ any more; connection threads only touch their
  // own entry (under mu_, so they are joined without it).
  std::list<Conn> conns;
  {
    MutexLock g(mu_);
    conns.splice(conns.end(), conns_);  // the entries stay where they are
  }
  for (auto& c : conns)
    if (c.thread.joinable()) c.thread.join();
  conns.clear();
  for (int fd : {listen_fd_, wake_[0], wake_[1]})
    if (fd >= 0) close(fd);
  if (listen_fd_ >= 0) unlink(path_.c_str());
  listen_fd_ = wake_[0] = wake_[1] = -1;
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
    if (poll(p, 2, 1000) < 0 && errno != EINTR) {
      spdlog::error("control: poll on {}: {}", path_, strerror(errno));
      break;
    }
    {
      MutexLock g(mu_);
      if (stopping_) break;
    }
    if (!(p[0].revents & POLLIN)) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    int err = fd < 0 ? errno : fault::check("control.accept");
    if (err) {
      if (fd >= 0) close(fd);
      spdlog::warn("control: accept on {}: {}", path_, strerror(err));
      // Out of descriptors: let running requests finish and free some.
      if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) poll(&p[1], 1, 100);
      continue;
    }
    admit(fd);
  }
}

void ControlServer::admit(int fd) {
  auto who = peer_of(fd);  // S4: getsockopt only
  if (!who) {
    spdlog::warn("control: cannot identify the peer on {}: {}", path_, who.status().message());
    close(fd);
    return;
  }
  MutexLock g(mu_);
  reap_locked();
  Status in = stopping_ ? Status::error(ESHUTDOWN, "the daemon is stopping") : quota_->admit(who->uid);  // S1
  if (!in) {
    spdlog::warn("control: pid {} (uid {}): connection to {} refused: {}", who->pid, who->uid, path_, in.message());
    write_frame(fd, to_bytes(rejection(in.err(), in.what())), {}, true);  // S4: never waits
    close(fd);
    return;
  }
  // S3: a reply the client does not read gives up after frame_stall_ms.
  if (limits_.frame_stall_ms >= 0) {
    timeval tv{limits_.frame_stall_ms / 1000, (limits_.frame_stall_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  Conn& c = conns_.emplace_back();
  c.fd = fd;
  c.who = std::move(*who);
  c.thread = std::thread([this, cp = &c] { serve(cp); });
}

void ControlServer::serve(Conn* c) {
  while (wait_for_request(c->fd, c->who) && handle(c->fd, c->who)) {
  }
  MutexLock g(mu_);
  quota_->leave(c->who.uid);
  close(c->fd);
  c->fd = -1;
  c->done = true;
}

// S3: false when the connection sat idle for idle_ms (it is then closed).
bool ControlServer::wait_for_request(int fd, const Caller& who) {
  if (limits_.idle_ms < 0) return true;
  pollfd p{fd, POLLIN, 0};
  int r;
  while ((r = poll(&p, 1, limits_.idle_ms)) < 0 && errno == EINTR) {
  }
  if (r != 0) return true;  // a request, the end of the stream or an error: read_frame tells
  spdlog::info("control: pid {} (uid {}): no request for {} ms, closing the connection: {}", who.pid, who.uid,
               limits_.idle_ms, strerror(ETIMEDOUT));
  return false;
}

// Logs and answers a request that is refused; false if the answer cannot be sent.
bool ControlServer::refuse(int fd, const Caller& who, int err, const std::string& why) {
  spdlog::warn("control: pid {} (uid {}): request rejected: {}", who.pid, who.uid, why);
  return write_frame(fd, to_bytes(rejection(err, why))).is_ok();
}

// A frame that could not be read whole: answer if the peer may still be
// listening; the connection closes either way.
bool ControlServer::frame_failed(int fd, const Caller& who, const Status& st) {
  if (st.err() == ENODATA) return false;  // the client hung up between requests
  {
    MutexLock g(mu_);
    if (stopping_) return false;  // stop() shut the connection down
  }
  bool stream_cut = st.err() == ECONNRESET || st.err() == EPIPE;
  if (!stream_cut) {
    spdlog::warn("control: pid {} (uid {}): bad frame, closing the connection: {}", who.pid, who.uid, st.message());
    int err = st.err() == EMSGSIZE || st.err() == ENOBUFS ? st.err() : EPROTO;
    write_frame(fd, to_bytes(rejection(err, st.what())), {}, true);
  } else {
    spdlog::warn("control: pid {} (uid {}): connection lost: {}", who.pid, who.uid, st.message());
  }
  return false;
}

// One request; false when the connection must close.
bool ControlServer::handle(int fd, const Caller& who) {
  Charge charge(*quota_, who.uid);  // S2: released when this request is done
  FrameLimits fl{limits_.max_frame_bytes, limits_.max_fds, limits_.frame_stall_ms, &charge};
  auto frame = read_frame(fd, fl);
  if (frame.is_ok()) {
    if (int f = fault::check("control.recv")) {
      close_all(frame->fds);
      frame = Status::error(f, "receive a request (injected)");
    }
  }
  if (!frame) return frame_failed(fd, who, frame.status());
  std::vector<int> fds = std::move(frame->fds);
  if (!frame->refused) return refuse(fd, who, frame->refused.err(), frame->refused.what());
  std::string_view attached;  // a compound's bytes after its map (protocol.h)
  auto req = from_bytes(frame->payload, max_request_items(limits_), &attached);
  auto type = req ? decode_request_type(*req) : Result<std::string>(req.status());
  if (!type) {
    close_all(fds);
    return refuse(fd, who, type.err(), type.status().what());
  }
  if (*type == "compound") return run_compound(fd, who, std::move(*req), std::move(frame->payload), attached, std::move(fds));
  std::string().swap(frame->payload);  // the request lives on as *req (still charged)
  close_all(fds);
  if (!attached.empty()) return refuse(fd, who, EPROTO, "not a MessagePack message: trailing bytes after the map");
  if (*type == "sync") return run_sync(fd, who, *req);
  if (*type == "maintain") {
    auto m = decode_maintain_request(*req);
    if (!m) return refuse(fd, who, m.err(), m.status().what());
    if (who.uid != 0 && m->what != "log")  // the log only reads
      return refuse(fd, who, EPERM, "maintain " + m->what + ": only root may run it");
    return write_frame(fd, to_bytes(maintained(*exec_, m->what))).is_ok();
  }
  if (*type == "status") {
    auto quick = decode_status_request(*req);
    if (!quick) return refuse(fd, who, quick.err(), quick.status().what());
    Json st = *quick ? exec_->figures() : exec_->status();
    if (std::string e = metrics::endpoint(); !e.empty()) st["metrics"] = e;  // daemon/metrics_http.h 3
    return write_frame(fd, to_bytes(encode_status({info_.mount, info_.store, std::move(st)}))).is_ok();
  }
  if (*type == "metrics") return write_frame(fd, to_bytes(encode_metrics(metrics::text()))).is_ok();
  if (*type != "hello") return refuse(fd, who, EINVAL, "unknown request type \"" + *type + "\"");
  HelloReply hello{info_.version, info_.mount, info_.store, limits_.max_ops,
                   limits_.max_inline_bytes, limits_.max_frame_bytes, limits_.max_fds};
  return write_frame(fd, to_bytes(encode_hello(hello))).is_ok();
}

bool ControlServer::run_sync(int fd, const Caller& who, const Json& req) {
  auto r = decode_sync_request(req);
  if (!r) return refuse(fd, who, r.err(), r.status().what());
  Status st = exec_->sync(r->timeout_ms.value_or(kDefaultSyncTimeoutMs));
  return write_frame(fd, to_bytes(encode_synced({st.err(), st.what()}))).is_ok();
}

bool ControlServer::run_compound(int fd, const Caller& who, Json req, std::string payload, std::string_view attached,
                                 std::vector<int> fds) {
  bool want = false;  // the client asked for progress frames
  bool columns = false;  // the results as columns (protocol.h)
  auto c = decode_compound(req, limits_, fds.size(), &want, attached, &columns);
  // The compound holds its data now: the request goes before it runs (freed
  // after the reply instead, it saved 0.5 ms of 2,001 operations but raised
  // the daemon's peak by a quarter).
  Json().swap(req);
  std::string().swap(payload);  // (attached pointed into it)
  if (!c) {
    close_all(fds);
    return refuse(fd, who, c.err(), c.status().what());
  }
  c->fds = std::move(fds);
  bool alive = true;
  ProgressFn progress = [&](size_t done, size_t total) {
    size_t step = std::max<size_t>(1, total / 100);
    if (!want || !alive || (done % step != 0 && done != total)) return;
    // Never wait for a client that does not read: skip the frame instead.
    Status st = write_frame(fd, to_bytes(encode_progress(done, total)), {}, true);
    if (!st && st.err() != EAGAIN) alive = false;
  };
  CompoundReply out = exec_->run(*c, who, progress);
  close_all(c->fds);
  if (out.outcome == Outcome::Rejected)
    spdlog::warn("control: pid {} (uid {}): compound rejected: {}", who.pid, who.uid, out.message);
  Status st = write_frame(fd, to_bytes(encode_reply(out, columns)));
  if (!st) spdlog::warn("control: pid {} (uid {}): reply lost ({}): {}", who.pid, who.uid, outcome_name(out.outcome), st.message());
  return st.is_ok();
}

}  // namespace tcfs::control
