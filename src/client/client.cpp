// client/client.cpp — the client library (tcfs/client.h).
#include "tcfs/client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "control/wire.h"

namespace tcfs {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool under(const std::string& path, const std::string& mp) {
  if (mp == "/") return true;
  return path == mp || (path.size() > mp.size() && path.compare(0, mp.size(), mp) == 0 && path[mp.size()] == '/');
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
  std::string abs = absolute_path(path);
  std::ifstream in("/proc/self/mountinfo");
  if (!in) return Status::from_errno("read /proc/self/mountinfo");
  std::string line;
  MountInfo best;
  while (std::getline(in, line)) {
    // id parent major:minor root mountpoint options [optional...] - fstype source superopts
    std::istringstream ls(line);
    std::string id, parent, dev, root, mp, opts, f;
    ls >> id >> parent >> dev >> root >> mp >> opts;
    while (ls >> f && f != "-") {
    }
    std::string fstype, source;
    ls >> fstype >> source;
    mp = unescape(mp);
    if (!under(abs, mp)) continue;
    if (mp.size() < best.mountpoint.size()) continue;
    if (fstype != "fuse.tcfs") {
      if (mp.size() > best.mountpoint.size()) best = MountInfo{};  // a deeper non-tcfs mount hides it
      best.mountpoint = mp;
      continue;
    }
    best = MountInfo{mp, unescape(source), unescape(source) + "/control.sock"};
  }
  if (best.store.empty()) return Status::error(ENOENT, abs + " is not inside a tcfs mount");
  return best;
}

Result<Client> Client::connect(const MountInfo& m) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::from_errno("socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (m.socket.size() >= sizeof addr.sun_path) {
    close(fd);
    return Status::error(ENAMETOOLONG, "control socket path " + m.socket);
  }
  strcpy(addr.sun_path, m.socket.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    Status st = Status::from_errno("cannot reach the tcfs daemon of " + m.mountpoint + " at " + m.socket);
    close(fd);
    return st;
  }
  return Client(m, fd);
}

Result<Client> Client::for_path(const std::string& path) {
  auto m = find_mount(path);
  if (!m) return m.status();
  return connect(*m);
}

Client::Client(Client&& o) noexcept : m_(std::move(o.m_)), fd_(o.fd_) { o.fd_ = -1; }

Client::~Client() {
  if (fd_ >= 0) close(fd_);
}

Result<std::string> Client::relative(const std::string& path) const {
  std::string abs = absolute_path(path);
  if (!under(abs, m_.mountpoint)) return Status::error(EXDEV, path + " is not inside the tcfs mount " + m_.mountpoint);
  if (abs == m_.mountpoint) return std::string();
  return abs.substr(m_.mountpoint == "/" ? 1 : m_.mountpoint.size() + 1);
}

Result<ServerHello> Client::hello() {
  TCFS_TRY(control::write_frame(fd_, control::to_bytes({{"v", protocol::kVersion}, {"type", "hello"}})));
  auto f = control::read_frame(fd_, protocol::kDefaultMaxFrameBytes, nullptr);
  if (!f) return f.status();
  auto j = control::from_bytes(*f);
  if (!j) return j.status();
  try {
    ServerHello h;
    h.server = j->at("server");
    h.mount = j->at("mount");
    h.store = j->at("store");
    h.max_ops = j->at("limits").at("max_ops");
    h.max_inline_bytes = j->at("limits").at("max_inline_bytes");
    h.max_fds = j->at("limits").at("max_fds");
    return h;
  } catch (const std::exception& e) {
    return Status::error(EPROTO, std::string("malformed hello reply: ") + e.what());
  }
}

Result<CompoundReply> Client::submit(const Compound& c, const std::function<void(size_t, size_t)>& progress) {
  std::string req = control::to_bytes(control::encode_compound(c, static_cast<bool>(progress)));
  TCFS_TRY(control::write_frame(fd_, req, c.fds));
  for (;;) {
    auto f = control::read_frame(fd_, protocol::kDefaultMaxFrameBytes, nullptr);
    if (!f) {
      if (f.err() == ENODATA || f.err() == EPROTO || f.err() == ECONNRESET)
        return Status::error(ECONNRESET, "the tcfs daemon closed the connection without a reply (did it stop?)");
      return f.status();
    }
    auto j = control::from_bytes(*f);
    if (!j) return j.status();
    if (j->value("type", "") == "progress") {
      if (progress) progress(j->value("done", size_t{0}), j->value("total", size_t{0}));
      continue;
    }
    return control::decode_reply(*j);
  }
}

}  // namespace tcfs
