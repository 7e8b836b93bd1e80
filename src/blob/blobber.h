// blob/blobber.h — a blobber: one remote (or local) object endpoint.
//
// Contract:
//  * Keys are relative object names: 1..512 bytes of [A-Za-z0-9._/-], no
//    leading '/', no empty, "." or ".." component (check_key()). Every
//    backend refuses other keys with EINVAL naming the key, before any I/O.
//  * put(key, size, src) stores exactly `size` bytes pulled from `src`
//    under key, replacing any object there. It is atomic and durable: when
//    it returns OK a reader sees the whole new object (even after a power
//    cut of the blobber's host); until then readers see the old object or
//    none. src is pulled in chunks of at most a backend buffer, so a put
//    never holds the whole object in memory. A src that ends early or fails
//    aborts the put (EIO, or src's error) and leaves no object behind.
//  * put(key, size, src, Durability::batched) is the same put, atomic for
//    readers, but durable only once a later flush() returns OK. Until then
//    a power cut may leave the old object, none, or a new one that is
//    empty, short or holds garbage: callers must not rely on its content
//    before the flush (objects.h 2 and 3 say how shards are checked).
//    A backend whose put is durable when acknowledged (s3) ignores the
//    difference.
//  * flush() is the barrier: every batched put that returned OK before
//    flush() was called is durable when it returns OK. A failed flush
//    leaves unknown which of them are: the caller must put again every
//    object it needs (a failed sync round retries whole, sync.h 8). dir://:
//    one syncfs of the blobber's filesystem (through a descriptor held
//    since the first batched put, so writeback errors since then are
//    reported) and an fsync of every directory batched puts changed. s3://:
//    nothing to do.
//  * get(key, off, len, sink) streams bytes [off, off+len) in order to
//    sink (len == kToEnd: to the object's end). ENOENT naming the key if
//    the object is absent. A range past the end delivers the bytes that
//    exist (possibly none): the caller checks the count. A sink error
//    aborts the get and is returned.
//  * put_new(key, data) creates the object only if no object has the key
//    (create-only: S3 `If-None-Match: *`, dir:// link(2) of a finished
//    temporary file). Of several put_new calls of one key, from any host,
//    at most one creates it; the others get EEXIST naming the key — unless
//    the object holds exactly `data` (a create whose reply was lost and
//    that is retried is not refused by its own success: callers put
//    something unique to them in `data`). Durable when it returns OK.
//    Meant for small objects (markers): `data` is held in memory.
//  * head(key) returns the object's size; ENOENT if absent.
//  * del(key) removes the object; an absent object is not an error.
//  * list(prefix, token, max) returns up to `max` keys starting with
//    prefix, in ascending byte order, and a continuation token (empty when
//    the listing is complete); pass the token back to continue.
//  * probe() checks that the blobber is usable now (reachable, the bucket or
//    directory exists, credentials accepted, writable) and says what is
//    wrong in a message meant for an operator.
//  * Errors are Status values whose message names the blobber (url()) and
//    the key. Transient failures (EAGAIN, ETIMEDOUT, ECONNREFUSED, EIO) are
//    retried inside the backend where it has a notion of retry (S3); what
//    comes out is final for this call.
//  * cancel() makes every request in flight end soon and every later one
//    fail at once, with ECANCELED naming the blobber. For the daemon's stop:
//    a last sync round cut at its deadline (sync.h 11) must not wait for a
//    blobber that does not answer. It cannot be undone. s3://: the transfer
//    is aborted within about a second (libcurl's progress callback) and no
//    retry follows; dir://: nothing to cut (local calls end by themselves).
//  * Fault seam: every call first asks fault::check("blob.<op>") (op = put,
//    get, head, del, list, flush) and, for a blobber built with an index, also
//    fault::check("blob<index>.<op>"); a non-zero errno is returned as the
//    call's error without touching the backend.
//
// Thread-safety: every member may be called from many threads at once on
// one Blobber.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tcfs/status.h"

namespace tcfs::blob {

constexpr uint64_t kToEnd = ~uint64_t{0};

// When a put is durable (see the contract above).
enum class Durability {
  now,      // when put() returns OK
  batched,  // when a later flush() returns OK
};

// Fills buf with up to n bytes (n > 0); returns how many (0 = no more).
using Source = std::function<Result<size_t>(char* buf, size_t n)>;
// Receives the next chunk of a get; a non-OK Status aborts the get.
using Sink = std::function<Status(std::string_view chunk)>;

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
};

struct ListPage {
  std::vector<ObjectInfo> items;
  std::string next;  // continuation token; empty = listing complete
};

// Options for open_blobber(). Fields a backend does not use are ignored.
struct BlobberOptions {
  int index = -1;  // position in the store's blobber set (fault sites "blob<index>.<op>"); -1 = none
  // S3: endpoint URL (http://host:port), region, credentials. Empty fields
  // fall back to AWS_ENDPOINT_URL, AWS_REGION / AWS_DEFAULT_REGION (then
  // "us-east-1"), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
  // AWS_SESSION_TOKEN.
  std::string endpoint, region, access_key, secret_key, session_token;
  unsigned connect_timeout_ms = 5000;
  unsigned request_timeout_ms = 120000;  // a whole request, body included
  unsigned retries = 4;                  // extra attempts for transient failures
  uint64_t multipart_threshold = 64ull << 20;  // S3: objects this big or bigger go multipart
  uint64_t part_size = 16ull << 20;            // S3: multipart part size
};

class Blobber {
 public:
  virtual ~Blobber() = default;
  virtual const std::string& url() const = 0;
  virtual Status put(const std::string& key, uint64_t size, const Source& src,
                     Durability d = Durability::now) = 0;
  virtual Status put_new(const std::string& key, std::string_view data) = 0;
  virtual Status flush() = 0;
  virtual Status get(const std::string& key, uint64_t off, uint64_t len, const Sink& sink) = 0;
  virtual Result<ObjectInfo> head(const std::string& key) = 0;
  virtual Status del(const std::string& key) = 0;
  virtual Result<ListPage> list(const std::string& prefix, const std::string& token, size_t max) = 0;
  virtual Status probe() = 0;
  virtual void cancel() {}
  // The first page of keys under prefix greater than `after` (a listing
  // that starts there: its cost does not grow with what comes before;
  // S3 start-after). Further pages: list() with the page's token. The
  // default suits backends whose token is the last key (dir://).
  virtual Result<ListPage> list_after(const std::string& prefix, const std::string& after, size_t max) {
    return list(prefix, after, max);
  }

  // Conveniences over the above.
  Status put_bytes(const std::string& key, std::string_view data, Durability d = Durability::now);
  // get() gathered into one string. Virtual so that a backend that can
  // read in place (dir://: pread into the result) skips the sink's copy.
  virtual Result<std::string> get_bytes(const std::string& key, uint64_t off = 0, uint64_t len = kToEnd);
  // Every key under prefix, following continuation tokens.
  Result<std::vector<ObjectInfo>> list_all(const std::string& prefix, const std::string& after = "");
};

// put_new's answer when the key exists (blobber.h): OK if the object holds
// exactly `data`, else EEXIST naming the blobber and key.
Status existing_is(Blobber& b, const std::string& key, std::string_view data);

// EINVAL naming the key if it is not a valid object key (see above).
Status check_key(const std::string& key);

// "dir:///abs/path" (or "dir:/abs/path", or a plain absolute path) or
// "s3://bucket[/prefix]". EINVAL naming the URL for anything else.
Result<std::unique_ptr<Blobber>> open_blobber(const std::string& url, const BlobberOptions& opt = {});

}  // namespace tcfs::blob
