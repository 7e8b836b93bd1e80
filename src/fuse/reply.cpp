#include "fuse/reply.h"

#include <linux/fuse.h>
#include <spdlog/spdlog.h>
#include <sys/uio.h>

#include <cmath>
#include <map>
#include <utility>

#include "util/metrics.h"

namespace tcfs::fusefs {
namespace {

// Errors that are ordinary answers to POSIX programs, not faults.
bool routine(int err) {
  switch (err) {
    case ENOENT: case EEXIST: case ENOTEMPTY: case ENOTDIR: case EISDIR: case EACCES:
    case EPERM: case ENODATA: case ERANGE: case EINVAL: case ENAMETOOLONG: case EXDEV:
    case ELOOP: case ENXIO: case EOPNOTSUPP: case EMLINK: case ETXTBSY: case EBADF:
    case EAGAIN: case EFBIG: case ENOSYS: case ENOTTY:
      return true;
    default:
      return false;
  }
}

template <typename R, typename F>
void reply_or_err(fuse_req_t req, const OpCtx& c, const R& r, F&& ok) {
  if (r.is_ok()) {
    ok(r.value());
  } else {
    log_failure(c, r.err());
    fuse_reply_err(req, r.err());
  }
}

// Seconds and nanoseconds of a timeout, as the protocol carries them.
void split_timeout(double t, uint64_t& sec, uint32_t& nsec) {
  double whole = std::floor(std::max(t, 0.0));
  sec = static_cast<uint64_t>(whole);
  nsec = static_cast<uint32_t>((t - whole) * 1e9);
}

void put_attr(fuse_attr& a, const struct stat& st) {
  a.ino = st.st_ino;
  a.size = static_cast<uint64_t>(st.st_size);
  a.blocks = static_cast<uint64_t>(st.st_blocks);
  a.atime = static_cast<uint64_t>(st.st_atim.tv_sec);
  a.mtime = static_cast<uint64_t>(st.st_mtim.tv_sec);
  a.ctime = static_cast<uint64_t>(st.st_ctim.tv_sec);
  a.atimensec = static_cast<uint32_t>(st.st_atim.tv_nsec);
  a.mtimensec = static_cast<uint32_t>(st.st_mtim.tv_nsec);
  a.ctimensec = static_cast<uint32_t>(st.st_ctim.tv_nsec);
  a.mode = st.st_mode;
  a.nlink = static_cast<uint32_t>(st.st_nlink);
  a.uid = st.st_uid;
  a.gid = st.st_gid;
  a.rdev = static_cast<uint32_t>(st.st_rdev);
  a.blksize = static_cast<uint32_t>(st.st_blksize);
}

uint32_t open_flags_of(const fuse_file_info& fi) {
  uint32_t f = 0;
  if (fi.direct_io) f |= FOPEN_DIRECT_IO;
  if (fi.keep_cache) f |= FOPEN_KEEP_CACHE;
  if (fi.nonseekable) f |= FOPEN_NONSEEKABLE;
  if (fi.noflush) f |= FOPEN_NOFLUSH;
  return f;
}


// metered_ops.h 3: failed requests by op and errno. The children are
// kept per thread (one Family::Add per op, errno and thread).
void count_failure(const char* op, int err) {
  thread_local std::map<std::pair<const char*, int>, prometheus::Counter*> mine;
  auto& c = mine[{op, err}];
  if (!c) {
    const char* name = strerrorname_np(err);
    c = &metrics::counter("tcfs_fuse_errors_total", "FUSE requests answered with an error, by op and errno.")
             .Add({{"op", op}, {"errno", name ? name : std::to_string(err)}});
  }
  c->Increment();
}

prometheus::Counter& written_bytes() {
  static prometheus::Counter& c =
      metrics::counter("tcfs_fuse_written_bytes_total", "Bytes written through the mount.").Add({});
  return c;
}
prometheus::Counter& read_bytes() {
  static prometheus::Counter& c = metrics::counter("tcfs_fuse_read_bytes_total", "Bytes read through the mount.").Add({});
  return c;
}

}  // namespace

void init_reply_metrics() {
  (void)written_bytes();
  (void)read_bytes();
}

bool reply_raw_create(int dev_fd, uint64_t unique, const OpCtx& c, const Result<CreateReply>& r) {
  fuse_out_header h{};
  fuse_entry_out e{};
  fuse_open_out o{};
  h.unique = unique;
  iovec iov[3] = {{&h, sizeof h}, {&e, sizeof e}, {&o, sizeof o}};
  int n = 1;
  if (r.is_ok()) {
    const CreateReply& v = r.value();
    e.nodeid = v.e.ino;
    e.generation = v.e.generation;
    split_timeout(v.e.entry_timeout, e.entry_valid, e.entry_valid_nsec);
    split_timeout(v.e.attr_timeout, e.attr_valid, e.attr_valid_nsec);
    put_attr(e.attr, v.e.attr);
    o.fh = v.fi.fh;
    o.open_flags = open_flags_of(v.fi);
    n = 3;
  } else {
    log_failure(c, r.err());
    h.error = -r.err();
  }
  h.len = static_cast<uint32_t>(sizeof h + (n == 3 ? sizeof e + sizeof o : 0));
  ssize_t w = writev(dev_fd, iov, n);
  if (w != static_cast<ssize_t>(h.len)) {
    spdlog::debug("{}: node {:#x}: reply not delivered: {}", c.op, c.ino, w < 0 ? strerror(errno) : "short write");
    return false;
  }
  return true;
}

void log_failure(const OpCtx& c, int err) {
  count_failure(c.op, err);
  auto lvl = routine(err) ? spdlog::level::debug : spdlog::level::warn;
  if (!spdlog::should_log(lvl)) return;
  spdlog::log(lvl, "{}: node {:#x}{}{}: {} ({})", c.op, c.ino, c.name ? " name " : "", c.name ? c.name : "",
              strerror(err), err);
}

void reply(fuse_req_t req, const OpCtx& c, const Status& st) {
  if (!st.is_ok()) log_failure(c, st.err());
  fuse_reply_err(req, st.err());
}

void reply(fuse_req_t req, const OpCtx& c, const Result<EntryReply>& r) {
  reply_or_err(req, c, r, [&](const EntryReply& v) { fuse_reply_entry(req, &v.e); });
}
void reply(fuse_req_t req, const OpCtx& c, const Result<AttrReply>& r) {
  reply_or_err(req, c, r, [&](const AttrReply& v) { fuse_reply_attr(req, &v.st, v.timeout); });
}
void reply(fuse_req_t req, const OpCtx& c, const Result<OpenReply>& r) {
  reply_or_err(req, c, r, [&](const OpenReply& v) { fuse_reply_open(req, &v.fi); });
}
void reply(fuse_req_t req, const OpCtx& c, const Result<CreateReply>& r) {
  reply_or_err(req, c, r, [&](const CreateReply& v) { fuse_reply_create(req, &v.e, &v.fi); });
}
void reply(fuse_req_t req, const OpCtx& c, const Result<ReadlinkReply>& r) {
  reply_or_err(req, c, r, [&](const ReadlinkReply& v) { fuse_reply_readlink(req, v.target.c_str()); });
}
void reply(fuse_req_t req, const OpCtx& c, const Result<StatfsReply>& r) {
  reply_or_err(req, c, r, [&](const StatfsReply& v) { fuse_reply_statfs(req, &v.sv); });
}
void reply(fuse_req_t req, const OpCtx& c, const Result<XattrReply>& r) {
  reply_or_err(req, c, r, [&](const XattrReply& v) {
    if (v.size_only)
      fuse_reply_xattr(req, v.size);
    else
      fuse_reply_buf(req, v.data.data(), v.data.size());
  });
}
void reply(fuse_req_t req, const OpCtx& c, const Result<WriteReply>& r) {
  static prometheus::Counter& written = written_bytes();
  reply_or_err(req, c, r, [&](const WriteReply& v) {
    written.Increment(static_cast<double>(v.count));
    fuse_reply_write(req, v.count);
  });
}
void reply(fuse_req_t req, const OpCtx& c, const Result<LseekReply>& r) {
  reply_or_err(req, c, r, [&](const LseekReply& v) { fuse_reply_lseek(req, v.off); });
}

void reply(fuse_req_t req, const OpCtx& c, const Result<IoctlReply>& r) {
  reply_or_err(req, c, r, [&](const IoctlReply& v) { fuse_reply_ioctl(req, 0, v.out.data(), v.out.size()); });
}

void reply_data(fuse_req_t req, const OpCtx&, fuse_bufvec* buf) {
  static prometheus::Counter& read = read_bytes();
  read.Increment(static_cast<double>(fuse_buf_size(buf)));
  // When reading the source fd fails, libfuse itself answers with that
  // error (the single exception to "replies are made here").
  fuse_reply_data(req, buf, FUSE_BUF_SPLICE_MOVE);
}
void reply_buf(fuse_req_t req, const OpCtx&, const char* data, size_t size) { fuse_reply_buf(req, data, size); }

}  // namespace tcfs::fusefs
