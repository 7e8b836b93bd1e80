// client/client.cpp — the client library (tcfs/client.h).
#include "tcfs/client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "client/mountinfo.h"
#include "control/messages.h"
#include "control/socket_path.h"
#include "control/wire.h"
#include "util/path.h"

namespace tcfs {
namespace client_detail {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    bool octal = s[i] == '\\' && i + 3 < s.size();
    for (size_t k = 1; octal && k <= 3; ++k) octal = s[i + k] >= '0' && s[i + k] <= '7';
    if (octal) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The uid of the daemon serving a FUSE mount: its user_id= superblock
// option (root's when the kernel shows none).
uid_t daemon_uid(const MountEntry& e) {
  std::stringstream opts(e.superopts);
  std::string o;
  while (std::getline(opts, o, ','))
    if (o.compare(0, 8, "user_id=") == 0) return static_cast<uid_t>(std::strtoul(o.c_str() + 8, nullptr, 10));
  return 0;
}

const MountEntry* visible_mount(const std::vector<MountEntry>& table, const std::string& abs) {
  const MountEntry* best = nullptr;
  for (const auto& e : table)
    if (path_under(abs, e.mountpoint) && (!best || e.mountpoint.size() >= best->mountpoint.size())) best = &e;
  return best;
}

}  // namespace

bool path_under(const std::string& path, const std::string& dir) { return tcfs::path_under(path, dir); }

std::vector<MountEntry> parse_mountinfo(std::istream& in) {
  std::vector<MountEntry> table;
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root mountpoint options [optional...] - fstype source superopts
    std::istringstream ls(line);
    MountEntry e;
    std::string root, mp, f;
    if (!(ls >> e.id >> e.parent >> e.majmin >> root >> mp >> e.opts)) continue;
    while (ls >> f && f != "-") {
    }
    if (f != "-" || !(ls >> e.fstype >> e.source)) continue;
    ls >> e.superopts;
    e.mountpoint = unescape(mp);
    e.source = unescape(e.source);
    table.push_back(std::move(e));
  }
  return table;
}

std::vector<std::string> nested_mounts(const std::vector<MountEntry>& table, const std::string& mountpoint) {
  std::map<int, const MountEntry*> by_id;
  int top = -1;
  for (const auto& e : table) {
    by_id[e.id] = &e;
    if (e.mountpoint == mountpoint && e.fstype == "fuse.tcfs") top = e.id;
  }
  std::vector<std::string> out;
  if (top < 0) return out;
  for (const auto& e : table) {
    int p = e.parent;
    for (size_t hops = 0; hops < table.size() && p != top; ++hops) {
      auto it = by_id.find(p);
      if (it == by_id.end() || it->second->parent == p) break;
      p = it->second->parent;
    }
    if (p == top && e.id != top) out.push_back(e.mountpoint);
  }
  return out;
}

Result<Located> locate(const std::vector<MountEntry>& table, const std::string& abs) {
  const MountEntry* m = visible_mount(table, abs);
  if (!m || m->fstype != "fuse.tcfs") {
    std::string on = m ? " (it is on a " + m->fstype + " mount at " + m->mountpoint + ")" : "";
    return Status::error(ENOENT, abs + " is not inside a tcfs mount" + on);
  }
  Located l;
  l.mount = MountInfo{m->mountpoint, m->source, control::socket_path(m->source, daemon_uid(*m))};  // P3
  l.nested = nested_mounts(table, m->mountpoint);
  return l;
}

}  // namespace client_detail

namespace {

std::vector<client_detail::MountEntry> read_mountinfo() {
  std::ifstream in("/proc/self/mountinfo");
  return client_detail::parse_mountinfo(in);
}

// The next frame from the daemon, decoded.
Result<control::Json> next_frame(int fd, const std::string& mountpoint) {
  control::FrameLimits fl;
  fl.max_bytes = protocol::kDefaultMaxFrameBytes;
  auto f = control::read_frame(fd, fl);
  if (!f) {
    if (f.err() == ENODATA || f.err() == EPROTO || f.err() == ECONNRESET)
      return Status::error(ECONNRESET, "the tcfs daemon of " + mountpoint +
                                           " closed the connection without a reply (did it stop?)");
    return f.status();
  }
  return control::from_bytes(f->payload);
}

}  // namespace

std::string absolute_path(const std::string& p) {
  std::string base;
  if (p.empty() || p[0] != '/') {
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd)) base = cwd;
  }
  std::vector<std::string> parts;
  std::stringstream ss(base + "/" + p);
  std::string c;
  while (std::getline(ss, c, '/')) {
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(c);
  }
  std::string out;
  for (const auto& x : parts) out += "/" + x;
  return out.empty() ? "/" : out;
}

Result<MountInfo> find_mount(const std::string& path) {
  auto table = read_mountinfo();
  if (table.empty()) return Status::error(ENOENT, "cannot read /proc/self/mountinfo");
  auto l = client_detail::locate(table, absolute_path(path));
  if (!l) return l.status();
  return l->mount;
}

namespace {

Result<int> dial(const MountInfo& m) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::from_errno("socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (m.socket.size() >= sizeof addr.sun_path) {
    close(fd);
    return Status::error(ENAMETOOLONG, "control socket path " + m.socket);
  }
  memcpy(addr.sun_path, m.socket.c_str(), m.socket.size() + 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    Status st = Status::from_errno("cannot reach the tcfs daemon of " + m.mountpoint + " at " + m.socket);
    close(fd);
    return st;
  }
  return fd;
}

}  // namespace

Result<Client> Client::connect(const MountInfo& m) {
  auto fd = dial(m);
  if (!fd) return fd.status();
  Client c(m, *fd);
  c.nested_ = client_detail::nested_mounts(read_mountinfo(), m.mountpoint);
  return c;
}

// Between requests the daemon sends nothing; something to read on a
// connection that has been answered before means the daemon closed it (it
// closes idle connections): open a new one. A fresh connection is left as
// it is, so a refusal the daemon sent at once is read as the answer.
Status Client::reopen_if_closed() {
  if (!used_ || fd_ < 0) return {};
  pollfd p{fd_, POLLIN | POLLRDHUP, 0};
  if (poll(&p, 1, 0) <= 0) return {};
  auto fd = dial(m_);
  if (!fd) return fd.status();
  close(fd_);
  fd_ = *fd;
  used_ = false;
  return {};
}

// Sends one request. When the daemon has already closed the connection,
// the refusal it sent first (a connection limit, for instance) is the answer.
Status Client::send(const std::string& req, const std::vector<int>& fds) {
  return send(std::vector<std::string_view>{req}, fds);
}

Status Client::send(const std::vector<std::string_view>& req, const std::vector<int>& fds) {
  TCFS_TRY(reopen_if_closed());
  used_ = true;
  Status st = control::write_frame(fd_, req, fds);
  if (st || (st.err() != EPIPE && st.err() != ECONNRESET)) return st;
  pollfd p{fd_, POLLIN, 0};
  return poll(&p, 1, 0) == 1 ? Status() : st;
}

Result<Client> Client::for_path(const std::string& path) {
  auto m = find_mount(path);
  if (!m) return m.status();
  return connect(*m);
}

Client::Client(Client&& o) noexcept
    : m_(std::move(o.m_)), fd_(o.fd_), used_(o.used_), nested_(std::move(o.nested_)) {
  o.fd_ = -1;
}

Client::~Client() {
  if (fd_ >= 0) close(fd_);
}

Result<std::string> Client::relative(const std::string& path) const {
  std::string abs = absolute_path(path);
  if (!client_detail::path_under(abs, m_.mountpoint))
    return Status::error(EXDEV, path + " is not inside the tcfs mount " + m_.mountpoint);
  for (const auto& n : nested_)
    if (client_detail::path_under(abs, n))
      return Status::error(EXDEV, path + " is in another mount (" + n + "), not in the tcfs mount " + m_.mountpoint);
  if (abs == m_.mountpoint) return std::string();
  return abs.substr(m_.mountpoint == "/" ? 1 : m_.mountpoint.size() + 1);
}

namespace {

// The answer to a request; a "reply" frame (the daemon refused the
// request) becomes an error naming what was asked.
Result<control::Json> answer(int fd, const std::string& mountpoint, const std::string& what) {
  auto j = next_frame(fd, mountpoint);
  if (!j) return j.status();
  if (control::frame_type(*j) == "reply") {
    auto r = control::decode_reply(*j);
    if (!r) return r.status();
    return Status::error(r->err ? r->err : EPROTO, "the tcfs daemon refused " + what + ": " + r->message);
  }
  return j;
}

}  // namespace

Result<ServerHello> Client::hello() {
  TCFS_TRY(send(control::to_bytes(control::encode_hello_request()), {}));
  auto j = answer(fd_, m_.mountpoint, "hello");
  if (!j) return j.status();
  auto h = control::decode_hello(*j);
  if (!h) return h.status();
  return ServerHello{h->server, h->mount, h->store, h->max_ops, h->max_inline_bytes, h->max_fds, h->max_frame_bytes};
}

Status Client::sync(uint64_t timeout_ms) {
  control::SyncRequest req;
  if (timeout_ms) req.timeout_ms = timeout_ms;
  TCFS_TRY(send(control::to_bytes(control::encode_sync_request(req)), {}));
  auto j = answer(fd_, m_.mountpoint, "sync");
  if (!j) return j.status();
  auto r = control::decode_synced(*j);
  if (!r) return r.status();
  return r->err ? Status::error(r->err, r->message) : Status{};
}

Result<std::string> Client::status_json() { return status_text(false); }
Result<std::string> Client::figures_json() { return status_text(true); }

Result<std::string> Client::status_text(bool quick) {
  TCFS_TRY(send(control::to_bytes(control::encode_status_request(quick)), {}));
  auto j = answer(fd_, m_.mountpoint, "status");
  if (!j) return j.status();
  auto r = control::decode_status(*j);
  if (!r) return r.status();
  // Replaced, not thrown: a mountpoint or blobber URL need not be UTF-8.
  return control::encode_status(*r).dump(-1, ' ', false, control::Json::error_handler_t::replace);
}

Result<std::string> Client::metrics_text() {
  TCFS_TRY(send(control::to_bytes(control::encode_metrics_request()), {}));
  auto j = answer(fd_, m_.mountpoint, "metrics");
  if (!j) return j.status();
  return control::decode_metrics(*j);
}

Result<std::string> Client::maintain(const std::string& what) {
  TCFS_TRY(send(control::to_bytes(control::encode_maintain_request({what})), {}));
  auto j = answer(fd_, m_.mountpoint, what);
  if (!j) return j.status();
  auto r = control::decode_maintained(*j);
  if (!r) return r.status();
  if (r->err) return Status::error(r->err, r->message);
  return r->report.dump(-1, ' ', false, control::Json::error_handler_t::replace);
}

Result<CompoundReply> Client::submit(const Compound& c, const std::function<void(size_t, size_t)>& progress) {
  auto r = submit_as(c, progress, true);
  // A daemon older than the "results" field refuses it before anything
  // runs (rejected: nothing changed): the same request again, with maps.
  if (r && r->outcome == Outcome::Rejected && r->err == EINVAL &&
      r->message.find("unknown request field \"results\"") != std::string::npos)
    return submit_as(c, progress, false);
  return r;
}

Result<CompoundReply> Client::submit_as(const Compound& c, const std::function<void(size_t, size_t)>& progress,
                                        bool columns) {
  control::Attached att;
  const std::string map = control::to_bytes(control::encode_compound(c, static_cast<bool>(progress), &att, columns));
  std::vector<std::string_view> req{map};  // the map, then the ops' bytes as they lie
  req.insert(req.end(), att.parts.begin(), att.parts.end());
  TCFS_TRY(send(req, c.fds));
  for (;;) {
    auto j = next_frame(fd_, m_.mountpoint);
    if (!j) return j.status();
    if (control::frame_type(*j) == "progress") {
      auto p = control::decode_progress(*j);
      if (!p) return p.status();
      if (progress) progress(p->done, p->total);
      continue;
    }
    return control::decode_reply(*j);
  }
}

}  // namespace tcfs
