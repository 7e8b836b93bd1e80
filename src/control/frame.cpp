// control/frame.cpp — protocol v1 framing (length prefix, SCM_RIGHTS
// descriptors) and the MessagePack structure check that guards the parser.
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "control/wire.h"

namespace tcfs::control {
namespace {

constexpr size_t kFirstChunk = 64 << 10;  // a frame's first buffer (F1)

// Walks a MessagePack value without recursion: nlohmann's reader recurses
// once per nesting level, so a frame of a few MB of nested arrays would
// overflow the stack of the thread parsing it.
class MsgpackCheck {
 public:
  MsgpackCheck(std::string_view b, unsigned max_depth, uint64_t max_items)
      : b_(b), max_depth_(max_depth), max_items_(max_items) {}

  // rest: trailing bytes after the value are allowed and returned there.
  Status run(std::string_view* rest = nullptr) {
    std::vector<uint64_t> pending{1};  // values still expected per open container; the root
    while (!pending.empty()) {
      if (pending.back() == 0) {
        pending.pop_back();
        continue;
      }
      --pending.back();
      uint64_t children = 0;
      if (Status st = value(&children); !st) return st;
      if (children == 0) continue;
      if (pending.size() > max_depth_)
        return Status::error(EPROTO, "MessagePack nested deeper than " + std::to_string(max_depth_) + " levels");
      if (children > b_.size() - pos_) return truncated();
      pending.push_back(children);
    }
    if (rest) *rest = b_.substr(pos_);
    else if (pos_ != b_.size()) return Status::error(EPROTO, "not a MessagePack message: trailing bytes after the map");
    return {};
  }

 private:
  static Status truncated() { return Status::error(EPROTO, "not a MessagePack message: truncated"); }

  bool take(size_t n, uint64_t* v) {
    if (b_.size() - pos_ < n) return false;
    *v = 0;
    for (size_t i = 0; i < n; ++i) *v = (*v << 8) | static_cast<uint8_t>(b_[pos_ + i]);
    pos_ += n;
    return true;
  }

  // One value's header: skips its payload, returns how many values it holds.
  Status value(uint64_t* children) {
    if (pos_ >= b_.size()) return truncated();
    if (++items_ > max_items_)
      return Status::error(E2BIG, "request holds more than " + std::to_string(max_items_) + " values");
    const uint8_t t = static_cast<uint8_t>(b_[pos_++]);
    uint64_t skip = 0, n = 0;
    bool ok = true;
    if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
    } else if (t <= 0x8f) {
      *children = 2u * (t & 0x0fu);
    } else if (t <= 0x9f) {
      *children = t & 0x0fu;
    } else if (t <= 0xbf) {
      skip = t & 0x1fu;
    } else {
      switch (t) {
        case 0xc4: case 0xd9: ok = take(1, &skip); break;                 // bin8, str8
        case 0xc5: case 0xda: ok = take(2, &skip); break;                 // bin16, str16
        case 0xc6: case 0xdb: ok = take(4, &skip); break;                 // bin32, str32
        case 0xc7: ok = take(1, &skip); ++skip; break;                   // ext8 (+ type byte)
        case 0xc8: ok = take(2, &skip); ++skip; break;                   // ext16
        case 0xc9: ok = take(4, &skip); ++skip; break;                   // ext32
        case 0xcc: case 0xd0: skip = 1; break;                            // (u)int8
        case 0xcd: case 0xd1: skip = 2; break;                            // (u)int16
        case 0xca: case 0xce: case 0xd2: skip = 4; break;                 // float32, (u)int32
        case 0xcb: case 0xcf: case 0xd3: skip = 8; break;                 // float64, (u)int64
        case 0xd4: skip = 2; break;                                       // fixext1..16 (+ type byte)
        case 0xd5: skip = 3; break;
        case 0xd6: skip = 5; break;
        case 0xd7: skip = 9; break;
        case 0xd8: skip = 17; break;
        case 0xdc: ok = take(2, &n); *children = n; break;               // array16
        case 0xdd: ok = take(4, &n); *children = n; break;               // array32
        case 0xde: ok = take(2, &n); *children = 2 * n; break;           // map16
        case 0xdf: ok = take(4, &n); *children = 2 * n; break;           // map32
        default: return Status::error(EPROTO, "not a MessagePack message: invalid byte 0xc1");
      }
    }
    if (!ok || skip > b_.size() - pos_) return truncated();
    pos_ += skip;
    return {};
  }

  std::string_view b_;
  unsigned max_depth_;
  uint64_t max_items_;
  size_t pos_ = 0;
  uint64_t items_ = 0;
};

void close_all(std::vector<int>& fds) {
  for (int fd : fds) close(fd);
  fds.clear();
}

// Reads one frame's bytes, gathering the descriptors that come with them.
class FrameReader {
 public:
  FrameReader(int sock, const FrameLimits& lim) : sock_(sock), lim_(lim) {}
  ~FrameReader() { close_all(fds_); }

  // Exactly len bytes: 0, or an errno (ENODATA: clean end of stream before
  // the frame's first byte; EPROTO: end of stream inside the frame).
  int read_exact(char* p, size_t len, bool frame_start) {
    for (size_t got = 0; got < len;) {
      if (!(frame_start && got == 0) && lim_.stall_ms >= 0) {
        pollfd pf{sock_, POLLIN, 0};
        int r = poll(&pf, 1, lim_.stall_ms);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) return ETIMEDOUT;
      }
      iovec iov{p + got, len - got};
      alignas(cmsghdr) char ctl[CMSG_SPACE(protocol::kMaxFds * sizeof(int))];
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = ctl;
      msg.msg_controllen = sizeof ctl;
      ssize_t n = recvmsg(sock_, &msg, MSG_CMSG_CLOEXEC);
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno;
      }
      take_fds(msg);
      if (n == 0) return (frame_start && got == 0) ? ENODATA : EPROTO;
      got += static_cast<size_t>(n);
    }
    return 0;
  }

  Frame finish(std::string payload) {
    Frame f;
    f.payload = std::move(payload);
    f.refused = refused_;
    if (refused_.is_ok()) f.fds.swap(fds_);
    return f;
  }

 private:
  void take_fds(msghdr& msg) {
    for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
      if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
      size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < k; ++i) {
        int fd;
        memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
        if (refused_.is_ok() && fds_.size() < lim_.max_fds) {
          // F1: a descriptor is charged before the frame keeps it.
          Status st = lim_.budget ? lim_.budget->charge(0, 1) : Status();
          if (st) {
            fds_.push_back(fd);
            continue;
          }
          refused_ = Status::error(ETOOMANYREFS, st.what());
        }
        close(fd);
        if (refused_.is_ok())
          refused_ = Status::error(E2BIG, "more than " + std::to_string(lim_.max_fds) + " descriptors passed");
      }
    }
    if ((msg.msg_flags & MSG_CTRUNC) && refused_.is_ok())
      refused_ = Status::error(ETOOMANYREFS, "more than " + std::to_string(protocol::kMaxFds) +
                                                  " descriptors in one message (the kernel dropped the rest)");
    if (!refused_.is_ok()) close_all(fds_);
  }

  int sock_;
  const FrameLimits& lim_;
  std::vector<int> fds_;
  Status refused_;
};

}  // namespace

std::string to_bytes(const Json& j) {
  auto v = Json::to_msgpack(j);
  return std::string(v.begin(), v.end());
}

Result<Json> from_bytes(std::string_view bytes, uint64_t max_items, std::string_view* rest) {
  std::string_view tail;
  TCFS_TRY(MsgpackCheck(bytes, kMaxDepth, max_items).run(rest ? &tail : nullptr));
  if (rest) *rest = tail;
  try {
    return Json::from_msgpack(bytes.begin(), bytes.end() - static_cast<ptrdiff_t>(tail.size()));
  } catch (const std::exception& e) {
    return Status::error(EPROTO, std::string("not a MessagePack message: ") + e.what());
  }
}

Status write_frame(int sock, const std::string& payload, const std::vector<int>& fds, bool nonblocking) {
  return write_frame(sock, std::vector<std::string_view>{payload}, fds, nonblocking);
}

Status write_frame(int sock, const std::vector<std::string_view>& payload, const std::vector<int>& fds,
                   bool nonblocking) {
  uint64_t size = 0;
  for (auto p : payload) size += p.size();
  if (size > UINT32_MAX) return Status::error(EMSGSIZE, "frame larger than 4 GiB");
  char hdr[4];
  for (size_t i = 0; i < 4; ++i) hdr[i] = static_cast<char>((size >> (8 * i)) & 0xff);
  std::vector<iovec> all{{hdr, 4}};  // the header and the parts as they lie (no copy)
  for (auto p : payload)
    if (!p.empty()) all.push_back({const_cast<char*>(p.data()), p.size()});
  const uint64_t total = 4 + size;
  size_t batches = (fds.size() + protocol::kMaxFds - 1) / protocol::kMaxFds;
  if (batches > total)
    return Status::error(E2BIG, std::to_string(fds.size()) + " descriptors cannot travel on a frame of " +
                                    std::to_string(total) + " bytes");
  size_t at = 0, fd_off = 0;  // all[at] is the first part not wholly sent; it starts where it has got to
  bool first = true;
  while (at < all.size()) {
    size_t nfd = std::min<size_t>(protocol::kMaxFds, fds.size() - fd_off);
    // While more than this batch remains, send one byte so each message carries one batch.
    bool one = fd_off + nfd < fds.size();
    std::vector<iovec> iov;
    for (size_t i = at; i < all.size() && iov.size() < IOV_MAX; ++i) iov.push_back(all[i]);
    if (one) iov.resize(1), iov[0].iov_len = 1;
    msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = iov.size();
    std::vector<char> ctl;
    if (nfd) {
      ctl.resize(CMSG_SPACE(nfd * sizeof(int)));
      msg.msg_control = ctl.data();
      msg.msg_controllen = ctl.size();
      cmsghdr* cm = CMSG_FIRSTHDR(&msg);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN(nfd * sizeof(int));
      memcpy(CMSG_DATA(cm), fds.data() + fd_off, nfd * sizeof(int));
    }
    // Once part of a frame is out, the rest must follow: only the start may be refused.
    int flags = MSG_NOSIGNAL | (nonblocking && first ? MSG_DONTWAIT : 0);
    ssize_t w = sendmsg(sock, &msg, flags);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::from_errno("send to the control socket");
    }
    first = false;
    fd_off += nfd;
    for (auto n = static_cast<size_t>(w); n > 0;) {  // advance over what went
      size_t k = std::min(n, all[at].iov_len);
      all[at].iov_base = static_cast<char*>(all[at].iov_base) + k;
      all[at].iov_len -= k;
      n -= k;
      if (all[at].iov_len == 0) ++at;
    }
  }
  return {};
}

Result<Frame> read_frame(int sock, const FrameLimits& lim) {
  FrameReader rd(sock, lim);
  char hdr[4];
  if (int e = rd.read_exact(hdr, 4, true)) {
    if (e == ENODATA) return Status::error(ENODATA, "end of stream");
    if (e == EPROTO) return Status::error(EPROTO, "stream ended inside a frame header (truncated frame)");
    if (e == ETIMEDOUT) return Status::error(ETIMEDOUT, "frame header stalled");
    return Status::error(e, "read a frame");
  }
  uint32_t n = 0;
  for (int i = 3; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(hdr[i]);
  if (n > lim.max_bytes)
    return Status::error(EMSGSIZE, "frame of " + std::to_string(n) + " bytes exceeds the limit of " +
                                       std::to_string(lim.max_bytes));
  std::string payload;
  for (size_t got = 0; got < n;) {
    // F1: room for the next bytes only, at most as much again as has arrived.
    size_t room = std::min<size_t>(n, std::max(kFirstChunk, 2 * got));
    if (lim.budget) {
      Status st = lim.budget->charge(room - got, 0);
      if (!st) return Status::error(st.err(), st.what() + " (a frame of " + std::to_string(n) + " bytes)");
    }
    payload.resize(room);
    if (int e = rd.read_exact(payload.data() + got, room - got, false)) {
      if (e == EPROTO)
        return Status::error(EPROTO, "stream ended inside a frame (truncated frame of " + std::to_string(n) + " bytes)");
      if (e == ETIMEDOUT)
        return Status::error(ETIMEDOUT, "frame stalled for " + std::to_string(lim.stall_ms) + " ms (of " +
                                            std::to_string(n) + " bytes)");
      return Status::error(e, "read a frame");
    }
    got = room;
  }
  return rd.finish(std::move(payload));
}

}  // namespace tcfs::control
