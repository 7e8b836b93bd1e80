// fuse/fs_tmpfile.cpp — O_TMPFILE through the mount.
//
// The kernel serves open(dir, O_TMPFILE) on a FUSE mount with a
// FUSE_TMPFILE request (fs/fuse/dir.c fuse_tmpfile: a fuse_create_in, and
// a reply like FUSE_CREATE's, an entry and an open file). libfuse 3.14 has
// no handler for it: it would answer ENOSYS, and the kernel would answer
// EOPNOTSUPP for the rest of the mount's life. So the session reads
// /dev/fuse through a custom io (fuse_session_custom_io): a FUSE_TMPFILE
// request is served where it was read, on that worker thread, and never
// reaches libfuse; every other request is passed on untouched.
//
// Invariants (tmpfile):
//  1. The unnamed file is the backing filesystem's own O_TMPFILE, made in
//     the directory's backing twin as the caller (creds.h), so mode, owner,
//     default ACLs and the caller's write permission are the kernel's.
//  2. Naming it is an ordinary FUSE_LINK of its node (op_link): the kernel
//     refuses it for O_TMPFILE | O_EXCL (the inode is not I_LINKABLE), and
//     the backing file is opened with O_EXCL too.
//  3. Sync (sync/sync.h): an unnamed object has no entry, so no capture
//     ever reaches it and none of it goes to the blobbers; once linked, the
//     link's name mark brings it out whole, as any new file.
//  4. A reply the kernel did not take (an interrupted request) takes the
//     node reference and the open file back, so nothing leaks.
//
// Cost: libfuse offers the kernel spliced requests only with a custom io
// that can receive by splice, which could not see the opcode (a spliced
// request waits in libfuse's own pipe); so requests, WRITE payloads too,
// are read into memory. Replies are still spliced (splice_send).
//
// Locks: Read on the directory while the file is made, as for a lookup.
#include <linux/fuse.h>
#include <pthread.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>

#include "fuse/creds.h"
#include "fuse/fs.h"

namespace tcfs::fusefs {
namespace {

void serve_tmpfile(Fs& fs, int dev_fd, const char* buf, size_t n) {
  int old_state;
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old_state);  // libfuse cancels readers at exit
  fuse_in_header h;
  memcpy(&h, buf, sizeof h);
  Result<CreateReply> r = Status::error(EINVAL);
  if (n >= sizeof h + sizeof(fuse_create_in) && h.len == n) {
    fuse_create_in in;
    memcpy(&in, buf + sizeof h, sizeof in);
    CallerIds who{h.uid, h.gid, static_cast<pid_t>(h.pid), in.umask};
    r = under(lock_read(fs, h.nodeid),
              [&] { return create_unnamed(fs, who, h.nodeid, in.mode, static_cast<int>(in.flags)); });
  }
  // Invariant 4: undelivered, nothing stays behind.
  if (!reply_raw_create(dev_fd, h.unique, {"tmpfile", h.nodeid}, r) && r.is_ok()) drop_unnamed(fs, r.value());
  pthread_setcancelstate(old_state, nullptr);
}

ssize_t read_request(int fd, void* buf, size_t len, void* userdata) {
  for (;;) {
    ssize_t n = ::read(fd, buf, len);
    if (n < static_cast<ssize_t>(sizeof(fuse_in_header))) return n;
    fuse_in_header h;
    memcpy(&h, buf, sizeof h);
    if (h.opcode != FUSE_TMPFILE) return n;
    serve_tmpfile(*static_cast<Fs*>(userdata), fd, static_cast<const char*>(buf), static_cast<size_t>(n));
  }
}

ssize_t write_reply(int fd, struct iovec* iov, int count, void*) { return ::writev(fd, iov, count); }

ssize_t splice_reply(int fdin, off_t* offin, int fdout, off_t* offout, size_t len, unsigned int flags, void*) {
  return ::splice(fdin, offin, fdout, offout, len, flags);
}

}  // namespace

Status serve_tmpfile_requests(fuse_session* se) {
  fuse_custom_io io{};
  io.read = read_request;
  io.writev = write_reply;
  io.splice_send = splice_reply;
  // The fd stays the session's own (closed once, by fuse_session_destroy).
  int rc = fuse_session_custom_io(se, &io, fuse_session_fd(se));
  if (rc != 0) return Status::error(-rc, "cannot read the FUSE device through the O_TMPFILE reader");
  return {};
}

}  // namespace tcfs::fusefs
