// fuse/reply.h — the one place where results become FUSE replies.
//
// Contract: every FUSE callback computes a Status or Result<...> and hands
// it to reply(req, op, result). Errors become fuse_reply_err(errno); each
// error is logged as one line naming the operation, the node and the errno
// — at debug level for the errors POSIX programs meet every day (ENOENT,
// EEXIST, ...), at warn level for the rest (EIO, ENOSPC, ...).
//
// Thread-safety: stateless; call from any FUSE worker.
#pragma once

#include <fuse_lowlevel.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <string>

#include "tcfs/status.h"

namespace tcfs::fusefs {

struct EntryReply {
  fuse_entry_param e;
};
struct AttrReply {
  struct stat st;
  double timeout;
};
struct OpenReply {
  fuse_file_info fi;
};
struct CreateReply {
  fuse_entry_param e;
  fuse_file_info fi;
};
struct ReadlinkReply {
  std::string target;
};
struct StatfsReply {
  struct statvfs sv;
};
struct XattrReply {
  bool size_only;  // a size-0 query: reply with `size`, no data
  size_t size;
  std::string data;
};
struct WriteReply {
  size_t count;
};
struct LseekReply {
  off_t off;
};
struct IoctlReply {
  std::string out;  // the ioctl's output argument (empty: none)
};

// Context for log lines: the operation and what it touched.
struct OpCtx {
  const char* op;
  fuse_ino_t ino;
  const char* name = nullptr;
};

void log_failure(const OpCtx& c, int err);

void reply(fuse_req_t req, const OpCtx& c, const Status& st);
void reply(fuse_req_t req, const OpCtx& c, const Result<EntryReply>& r);
void reply(fuse_req_t req, const OpCtx& c, const Result<AttrReply>& r);
void reply(fuse_req_t req, const OpCtx& c, const Result<OpenReply>& r);
void reply(fuse_req_t req, const OpCtx& c, const Result<CreateReply>& r);
void reply(fuse_req_t req, const OpCtx& c, const Result<ReadlinkReply>& r);
void reply(fuse_req_t req, const OpCtx& c, const Result<StatfsReply>& r);
void reply(fuse_req_t req, const OpCtx& c, const Result<XattrReply>& r);
void reply(fuse_req_t req, const OpCtx& c, const Result<WriteReply>& r);
void reply(fuse_req_t req, const OpCtx& c, const Result<LseekReply>& r);
void reply(fuse_req_t req, const OpCtx& c, const Result<IoctlReply>& r);
// The reply to a request libfuse never saw (FUSE_TMPFILE: fs_tmpfile.cpp),
// written straight to the /dev/fuse descriptor it was read from: an entry
// and an open file, as for a create, or the error. False if the kernel did
// not take it (the request was interrupted, the connection went away).
bool reply_raw_create(int dev_fd, uint64_t unique, const OpCtx& c, const Result<CreateReply>& r);
// Data replies: buf describes memory or an fd range to splice from.
void reply_data(fuse_req_t req, const OpCtx& c, fuse_bufvec* buf);
// Makes the byte counters (tcfs_fuse_{read,written}_bytes_total), so they
// are shown from the start (metered_ops.cpp calls it).
void init_reply_metrics();
// Directory listings, already encoded with fuse_add_direntry*.
void reply_buf(fuse_req_t req, const OpCtx& c, const char* data, size_t size);

}  // namespace tcfs::fusefs
