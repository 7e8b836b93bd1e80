// fuzz_control_frame — the control socket's byte stream as the server reads
// it (server.cpp): read_frame over a real AF_UNIX socket, then each frame's
// payload through from_bytes and decode_compound. The first input byte
// says how many descriptors ride on the stream's first bytes (SCM_RIGHTS),
// so the descriptor limits are exercised too; the rest is the stream.
// Checks: no crash, leak or hang; every descriptor read_frame hands over is
// within the limit, and a refused frame hands over none.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "control/wire.h"
#include "fuzz_input.h"

using namespace tcfs;
using namespace tcfs::control;

namespace {

constexpr size_t kMaxStream = 48 << 10;  // fits a socket buffer: the write never blocks

// Sends the stream with nfds descriptors (of /dev/null) on its first byte(s).
bool send_stream(int sock, std::string_view s, unsigned nfds) {
  std::vector<int> fds;
  for (unsigned i = 0; i < nfds; i++) fds.push_back(open("/dev/null", O_RDONLY | O_CLOEXEC));
  iovec iov{const_cast<char*>(s.data()), s.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> ctl(CMSG_SPACE(nfds * sizeof(int)));
  if (nfds) {
    msg.msg_control = ctl.data();
    msg.msg_controllen = ctl.size();
    cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
    memcpy(CMSG_DATA(cm), fds.data(), nfds * sizeof(int));
  }
  ssize_t w = sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  for (int fd : fds) close(fd);
  return w == static_cast<ssize_t>(s.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2 || size > kMaxStream) return 0;
  const unsigned nfds = data[0] % 8;
  std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) abort();
  bool sent = send_stream(sv[1], stream, nfds);
  close(sv[1]);  // the client hangs up after its bytes: every read ends
  Limits lim;
  lim.max_ops = 64;
  lim.max_inline_bytes = 1 << 16;
  lim.max_fds = 4;
  FrameLimits fl{1 << 16, lim.max_fds, 1000};
  for (int frames = 0; sent; frames++) {
    auto f = read_frame(sv[0], fl);
    if (!f) break;
    FUZZ_CHECK(f->fds.size() <= lim.max_fds);
    FUZZ_CHECK(f->refused.is_ok() || f->fds.empty());
    FUZZ_CHECK(f->payload.size() <= fl.max_bytes);
    std::string_view attached;
    auto req = from_bytes(f->payload, max_request_items(lim), &attached);
    if (req) (void)decode_compound(*req, lim, f->fds.size(), nullptr, attached);
    for (int fd : f->fds) close(fd);
  }
  close(sv[0]);
  return 0;
}
