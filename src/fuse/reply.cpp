#include "fuse/reply.h"

#include <spdlog/spdlog.h>

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

}  // namespace

void log_failure(const OpCtx& c, int err) {
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
  reply_or_err(req, c, r, [&](const WriteReply& v) { fuse_reply_write(req, v.count); });
}
void reply(fuse_req_t req, const OpCtx& c, const Result<LseekReply>& r) {
  reply_or_err(req, c, r, [&](const LseekReply& v) { fuse_reply_lseek(req, v.off); });
}

void reply_data(fuse_req_t req, const OpCtx&, fuse_bufvec* buf) {
  // When reading the source fd fails, libfuse itself answers with that
  // error (the single exception to "replies are made here").
  fuse_reply_data(req, buf, FUSE_BUF_SPLICE_MOVE);
}
void reply_buf(fuse_req_t req, const OpCtx&, const char* data, size_t size) { fuse_reply_buf(req, data, size); }

}  // namespace tcfs::fusefs
