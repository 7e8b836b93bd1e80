// util/copy.cpp — copy_range (copy.h).
#include "util/copy.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

namespace tcfs {

Result<int64_t> copy_range(int in, int64_t in_off, int out, int64_t out_off, int64_t len) {
  int64_t done = 0;
  bool use_cfr = true;
  std::vector<char> buf;
  while (len < 0 || done < len) {
    size_t want = len < 0 ? (size_t{1} << 30) : static_cast<size_t>(std::min<int64_t>(len - done, int64_t{1} << 30));
    ssize_t n = -1;
    if (use_cfr) {
      loff_t io = in_off + done, oo = out_off + done;
      n = copy_file_range(in, &io, out, &oo, want, 0);
      if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP || errno == ENOSYS || errno == EBADF)) {
        use_cfr = false;
        continue;
      }
    } else {
      buf.resize(1 << 20);
      size_t chunk = std::min(want, buf.size());
      n = pread(in, buf.data(), chunk, in_off + done);
      if (n < 0 && errno == ESPIPE) n = read(in, buf.data(), chunk);
      for (ssize_t w = 0; n > 0 && w < n;) {
        ssize_t m = pwrite(out, buf.data() + w, static_cast<size_t>(n - w), out_off + done + w);
        if (m < 0) return Status::from_errno("write");
        w += m;
      }
    }
    if (n < 0) return Status::from_errno(use_cfr ? "copy_file_range" : "read");
    if (n == 0) break;
    done += n;
  }
  return done;
}

}  // namespace tcfs
