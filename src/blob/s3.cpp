// blob/s3.cpp — the s3://BUCKET[/PREFIX] blobber over libcurl.
//
// Design note:
//  1. Contract: blobber.h. An object KEY is stored as PREFIX/KEY (or KEY
//     when there is no prefix) in BUCKET, addressed path-style:
//     ENDPOINT/BUCKET/PREFIX/KEY. Keys and query values are percent-encoded
//     as SigV4 canonicalizes them (RFC 3986 unreserved set kept, uppercase
//     hex), and query parameters are written in sorted order with an '='
//     each: libcurl 7.88 signs the query exactly as given, so what we send
//     must already be canonical.
//  2. Signing is libcurl's (CURLOPT_AWS_SIGV4 "aws:amz:REGION:s3"), with
//     x-amz-content-sha256: UNSIGNED-PAYLOAD on every request (RGW insists
//     on the header; bodies are streamed or pulled once, so we do not hash
//     them for the signature). Bodies we send carry Content-MD5, which S3
//     verifies, so corruption in transit is still caught.
//  3. Retry policy: connection failures, timeouts, HTTP 429/500/502/503/504
//     and the S3 codes RequestTimeout / SlowDown are transient. A call makes
//     up to 1 + opt.retries attempts, sleeping 100 ms * 2^n (capped at 5 s)
//     with "equal jitter" (half fixed, half random) in between. Everything
//     else is final at once. A get that fails mid-body resumes at the first
//     byte not yet given to the sink, with If-Match on the first attempt's
//     ETag so bytes of two versions are never spliced. probe() retries at
//     most once: it answers "usable now?", quickly.
//  4. put (durable when acknowledged, so batched puts need no flush and
//     flush() does nothing): below opt.multipart_threshold one PUT whose body (at most the
//     threshold) is pulled from the Source into memory first, so a retry
//     resends the same bytes; at or above it a multipart upload whose parts
//     (opt.part_size, at least the S3 minimum of 5 MiB, grown if needed to
//     stay within 10,000 parts) are pulled one at a time into one reused
//     buffer. A Source that fails or ends early aborts: nothing is sent
//     (single PUT) or the upload is aborted (multipart), so no object is
//     left behind; an old object under the key stays as it was.
//  5. get streams the body to the sink from curl's write callback; only
//     error bodies (capped at 64 KiB) and list responses are buffered.
//     Memory bound per call in flight: put min(size, threshold) or one part
//     buffer; get and head O(1); list one response page.
//  6. cancel() (blobber.h): a flag every transfer's progress callback reads
//     (libcurl calls it about once a second even while nothing moves), so
//     a request in flight ends with CURLE_ABORTED_BY_CALLBACK; a request
//     started after it is not sent. Neither is retried: ECANCELED.
//  7. Logging: one warn line per failed call (op, key, status; an absent
//     object asked for by get/head is an answer, logged at debug), one info
//     line per retry, nothing on success.
//
// Thread-safety: every member may be called from many threads at once.
// Configuration is immutable after open_s3(). The only shared mutable
// state is the pool of idle CURL easy handles (each keeps its connection
// alive between requests), protected by Pool::mu_, which is held only to
// push or pop a handle, never during a transfer. curl_global_init runs once
// under std::call_once.
#include <curl/curl.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <strings.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "blob/backend.h"
#include "blob/s3xml.h"
#include "util/mutex.h"

namespace tcfs::blob {
namespace {

constexpr uint64_t kMinPart = 5ull << 20;   // S3's smallest part (but the last)
constexpr uint64_t kMaxParts = 10000;       // S3's most parts per upload
constexpr size_t kPullChunk = 1 << 20;      // largest request to a Source
constexpr size_t kErrBodyCap = 64 << 10;    // error bodies kept for messages
constexpr size_t kBodyCap = 16 << 20;       // list/XML responses: sanity bound
constexpr size_t kMaxIdle = 32;             // idle easy handles kept

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

bool unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '.' || c == '~';
}

// SigV4 URI encoding; '/' kept when encoding a path.
std::string uri_encode(std::string_view s, bool keep_slash) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (unreserved(c) || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string content_md5(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_md5(), nullptr) != 1) return {};
  unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
  int n = EVP_EncodeBlock(b64, md, static_cast<int>(len));
  return std::string(reinterpret_cast<char*>(b64), n > 0 ? static_cast<size_t>(n) : 0);
}

std::string random_hex(size_t n) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) s += hex[rng() & 15];
  return s;
}

void backoff(unsigned attempt) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t ms = std::min<uint64_t>(5000, 100ull << std::min(attempt, 10u));
  uint64_t sleep_ms = ms / 2 + rng() % (ms / 2 + 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
}

// ---- one HTTP request ------------------------------------------------------

struct Req {
  const char* method = "GET";
  std::string target;            // "/bucket/key?query", encoded
  std::vector<std::string> headers;
  std::string_view body;         // sent when upload is set
  bool upload = false;
  const Sink* sink = nullptr;    // 2xx bodies go here (get) instead of Resp::body
  uint64_t limit = kToEnd;       // at most this many bytes to the sink
  uint64_t skip_if_200 = 0;      // server ignored our Range: drop this many first
};

struct Resp {
  CURLcode cc = CURLE_OK;
  std::string curl_msg;
  int os_errno = 0;
  long status = 0;
  std::string body;  // response body (2xx without sink) or error body (capped)
  std::string etag;
  curl_off_t length = -1;
  uint64_t delivered = 0;  // bytes given to the sink
  Status sink_st;          // sink's error, if it stopped the transfer
  bool ok() const { return cc == CURLE_OK && status >= 200 && status < 300; }
  std::string code() const { return xml_get(body, "Code"); }
};

struct Xfer {
  const Req* req;
  Resp* resp;
  CURL* h;
  size_t upos = 0;
  int to_sink = -1;  // -1 = not decided yet
  uint64_t skip = 0;
  const std::atomic<bool>* cancelled = nullptr;  // S3Blobber::cancelled_ (6)
};

int progress_cb(void* ud, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<Xfer*>(ud)->cancelled->load(std::memory_order_relaxed) ? 1 : 0;  // s3.cpp 6
}

size_t write_cb(char* p, size_t sz, size_t nm, void* ud) {
  auto* x = static_cast<Xfer*>(ud);
  size_t n = sz * nm;
  if (x->to_sink < 0) {
    long code = 0;
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
    x->to_sink = x->req->sink && (code == 200 || code == 206);
    x->skip = code == 200 ? x->req->skip_if_200 : 0;
  }
  if (!x->to_sink) {
    size_t cap = x->req->sink ? kErrBodyCap : kBodyCap;
    size_t room = x->resp->body.size() < cap ? cap - x->resp->body.size() : 0;
    x->resp->body.append(p, std::min(n, room));
    return n;
  }
  std::string_view chunk(p, n);
  if (x->skip) {
    size_t drop = static_cast<size_t>(std::min<uint64_t>(x->skip, chunk.size()));
    chunk.remove_prefix(drop);
    x->skip -= drop;
  }
  uint64_t left = x->req->limit == kToEnd ? kToEnd : x->req->limit - x->resp->delivered;
  if (chunk.size() > left) chunk = chunk.substr(0, static_cast<size_t>(left));
  if (chunk.empty()) return n;
  Status st;
  try {
    st = (*x->req->sink)(chunk);
  } catch (...) {
    st = Status::error(EIO, "sink threw an exception");
  }
  if (!st) {
    x->resp->sink_st = st;
    return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
  }
  x->resp->delivered += chunk.size();
  return n;
}

size_t header_cb(char* p, size_t sz, size_t nm, void* ud) {
  auto* x = static_cast<Xfer*>(ud);
  size_t n = sz * nm;
  std::string_view line(p, n);
  if (line.size() > 5 && strncasecmp(line.data(), "etag:", 5) == 0) {
    line.remove_prefix(5);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n' || line.back() == ' ')) line.remove_suffix(1);
    x->resp->etag = std::string(line);
  }
  return n;
}

size_t read_cb(char* buf, size_t sz, size_t nm, void* ud) {
  auto* x = static_cast<Xfer*>(ud);
  size_t n = std::min(sz * nm, x->req->body.size() - x->upos);
  std::memcpy(buf, x->req->body.data() + x->upos, n);
  x->upos += n;
  return n;
}

// Rewinding for curl's own resends (e.g. after a 100-continue or auth dance).
int seek_cb(void* ud, curl_off_t off, int origin) {
  auto* x = static_cast<Xfer*>(ud);
  if (origin != SEEK_SET || off < 0 || static_cast<size_t>(off) > x->req->body.size()) return CURL_SEEKFUNC_CANTSEEK;
  x->upos = static_cast<size_t>(off);
  return CURL_SEEKFUNC_OK;
}

class Pool {
 public:
  ~Pool() {
    for (CURL* h : idle_) curl_easy_cleanup(h);
  }
  CURL* take() {
    {
      MutexLock g(mu_);
      if (!idle_.empty()) {
        CURL* h = idle_.back();
        idle_.pop_back();
        return h;
      }
    }
    return curl_easy_init();
  }
  void give(CURL* h) {
    {
      MutexLock g(mu_);
      if (idle_.size() < kMaxIdle) {
        idle_.push_back(h);
        return;
      }
    }
    curl_easy_cleanup(h);
  }

 private:
  Mutex mu_;                                      // protects idle_
  std::vector<CURL*> idle_ TCFS_GUARDED_BY(mu_);  // handles not in a transfer, connections kept alive
};

bool transient(const Resp& r) {
  if (!r.sink_st.is_ok()) return false;
  if (r.cc != CURLE_OK) {
    switch (r.cc) {
      case CURLE_COULDNT_CONNECT:
      case CURLE_COULDNT_RESOLVE_HOST:
      case CURLE_OPERATION_TIMEDOUT:
      case CURLE_SEND_ERROR:
      case CURLE_RECV_ERROR:
      case CURLE_GOT_NOTHING:
      case CURLE_PARTIAL_FILE:
      case CURLE_SSL_CONNECT_ERROR:
      case CURLE_HTTP2:
      case CURLE_HTTP2_STREAM:
        return true;
      default:
        return false;
    }
  }
  switch (r.status) {
    case 429: case 500: case 502: case 503: case 504:
      return true;
    default:
      break;
  }
  if (r.status >= 300) {
    std::string c = r.code();
    return c == "RequestTimeout" || c == "SlowDown" || c == "InternalError" || c == "ServiceUnavailable";
  }
  return false;
}

class S3Blobber final : public Blobber {
 public:
  S3Blobber(std::string bucket, std::string prefix, const BlobberOptions& opt, std::string endpoint,
            std::string region, std::string ak, std::string sk, std::string token)
      : bucket_(std::move(bucket)),
        prefix_(std::move(prefix)),
        url_("s3://" + bucket_ + (prefix_.empty() ? "" : "/" + prefix_)),
        endpoint_(std::move(endpoint)),
        sigv4_("aws:amz:" + region + ":s3"),
        ak_(std::move(ak)),
        sk_(std::move(sk)),
        token_(std::move(token)),
        opt_(opt) {
    part_ = std::max(opt_.part_size, kMinPart);
  }
  const std::string& url() const override { return url_; }

  // A PUT is durable when acknowledged, so Durability::batched changes nothing.
  Status put(const std::string& key, uint64_t size, const Source& src, Durability d) override;
  Status put_new(const std::string& key, std::string_view data) override;
  Status flush() override { return injected("flush", opt_.index, url_, ""); }
  Status get(const std::string& key, uint64_t off, uint64_t len, const Sink& sink) override;
  Result<ObjectInfo> head(const std::string& key) override;
  Status del(const std::string& key) override;
  Result<ListPage> list(const std::string& prefix, const std::string& token, size_t max) override;
  Result<ListPage> list_after(const std::string& prefix, const std::string& after, size_t max) override {
    return list_page(prefix, "", after, max);
  }
  Result<ListPage> list_page(const std::string& prefix, const std::string& token, const std::string& after,
                             size_t max);
  Status probe() override;
  void cancel() override { cancelled_.store(true); }

 private:
  std::string object_path(const std::string& key) const {
    return "/" + bucket_ + "/" + uri_encode(prefix_.empty() ? key : prefix_ + "/" + key, true);
  }
  void perform(const Req& req, Resp& resp);
  // perform() with the retry policy; logs retries.
  Resp call(const char* op, const std::string& key, const Req& req, unsigned retries);
  Resp call(const char* op, const std::string& key, const Req& req) { return call(op, key, req, opt_.retries); }
  // The Status for a failed response, logged at warn (debug for quiet_enoent).
  Status fail(const char* op, const std::string& key, const Resp& r, bool quiet_enoent = false) const;
  Status pull(const Source& src, std::string& buf, uint64_t n, uint64_t done, uint64_t size,
              const std::string& key) const;
  Status put_single(const std::string& key, uint64_t size, const Source& src);
  Status put_multipart(const std::string& key, uint64_t size, const Source& src);
  Status start_multipart(const std::string& key, std::string& upload_id);
  Status put_parts(const std::string& key, uint64_t size, const Source& src, const std::string& upload_id,
                   std::vector<std::string>& etags);
  Status complete_multipart(const std::string& key, uint64_t size, const std::string& upload_id,
                            const std::vector<std::string>& etags);
  void abort_upload(const std::string& key, const std::string& upload_id);

  const std::string bucket_, prefix_, url_, endpoint_, sigv4_, ak_, sk_, token_;
  const BlobberOptions opt_;
  uint64_t part_ = kMinPart;
  mutable Pool pool_;
  std::atomic<bool> cancelled_{false};  // (6)
};

void S3Blobber::perform(const Req& req, Resp& resp) {
  resp = Resp{};
  if (cancelled_.load()) {  // (6): not sent
    resp.cc = CURLE_ABORTED_BY_CALLBACK;
    return;
  }
  CURL* h = pool_.take();
  if (!h) {
    resp.cc = CURLE_OUT_OF_MEMORY;
    resp.curl_msg = "curl_easy_init failed";
    return;
  }
  curl_easy_reset(h);
  Xfer x{&req, &resp, h};
  x.cancelled = &cancelled_;
  char errbuf[CURL_ERROR_SIZE] = {0};
  std::string url = endpoint_ + req.target;
  curl_slist* hdrs = nullptr;
  hdrs = curl_slist_append(hdrs, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
  if (!token_.empty()) hdrs = curl_slist_append(hdrs, ("x-amz-security-token: " + token_).c_str());
  for (const auto& hv : req.headers) hdrs = curl_slist_append(hdrs, hv.c_str());

  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4_.c_str());
  curl_easy_setopt(h, CURLOPT_USERNAME, ak_.c_str());
  curl_easy_setopt(h, CURLOPT_PASSWORD, sk_.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "tcfs");
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(opt_.connect_timeout_ms));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(opt_.request_timeout_ms));
  curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, 200L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, progress_cb);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
  if (std::strcmp(req.method, "HEAD") == 0) {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (req.upload) {
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(h, CURLOPT_READDATA, &x);
    curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, seek_cb);
    curl_easy_setopt(h, CURLOPT_SEEKDATA, &x);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    if (std::strcmp(req.method, "PUT") != 0) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method);
  } else if (std::strcmp(req.method, "GET") != 0) {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method);
  }

  resp.cc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
  long oe = 0;
  curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &oe);
  resp.os_errno = static_cast<int>(oe);
  curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &resp.length);
  if (resp.cc != CURLE_OK) resp.curl_msg = errbuf[0] ? errbuf : curl_easy_strerror(resp.cc);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);
  curl_slist_free_all(hdrs);
  pool_.give(h);
}

Resp S3Blobber::call(const char* op, const std::string& key, const Req& req, unsigned retries) {
  Resp r;
  for (unsigned attempt = 0;; ++attempt) {
    perform(req, r);
    if (r.ok() || !transient(r) || attempt >= retries) return r;
    spdlog::info("{}: {} {}: {} (attempt {} of {}), retrying", url_, op, key,
                 r.cc != CURLE_OK ? r.curl_msg : "HTTP " + std::to_string(r.status) + " " + r.code(), attempt + 1,
                 retries + 1);
    backoff(attempt);
  }
}

// The errno for a transfer that failed below HTTP; *unreachable when no
// server answered at all.
int curl_errno(const Resp& r, bool* unreachable) {
  *unreachable = false;
  switch (r.cc) {
    case CURLE_COULDNT_CONNECT:
      *unreachable = true;
      return r.os_errno > 0 ? r.os_errno : ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      *unreachable = true;
      return EHOSTUNREACH;
    case CURLE_OPERATION_TIMEDOUT:
      *unreachable = r.status == 0;
      return ETIMEDOUT;
    case CURLE_OUT_OF_MEMORY:
      return ENOMEM;
    default:
      return EIO;
  }
}

Status S3Blobber::fail(const char* op, const std::string& key, const Resp& r, bool quiet_enoent) const {
  if (!r.sink_st.is_ok()) return r.sink_st;
  int err = EIO;
  std::string what = url_ + ": " + op + " " + key + ": ";
  if (r.cc == CURLE_ABORTED_BY_CALLBACK && cancelled_.load())  // (6)
    return Status::error(ECANCELED, what + "cancelled (the daemon is stopping)");
  if (r.cc != CURLE_OK) {
    bool unreachable = false;
    err = curl_errno(r, &unreachable);
    if (unreachable) what += "cannot reach " + endpoint_ + ": ";
    what += r.curl_msg;
  } else {
    std::string code = r.code(), msg = xml_get(r.body, "Message");
    what += "HTTP " + std::to_string(r.status);
    if (!code.empty()) what += " " + code;
    if (!msg.empty()) what += ": " + msg;
    if (r.status == 404) {
      err = ENOENT;
      if (code == "NoSuchBucket") what += " (bucket " + bucket_ + " does not exist)";
      else if (code.empty() || code == "NoSuchKey") what += " (no such object)";
    } else if (code == "QuotaExceeded" || r.status == 507) {
      err = ENOSPC;
    } else if (r.status == 403) {
      err = EACCES;
    } else if (code == "RequestTimeout" || r.status == 504) {
      err = ETIMEDOUT;
    } else if (r.status == 429 || r.status == 503 || code == "SlowDown") {
      err = EAGAIN;
    } else if (r.status == 412) {
      err = EAGAIN;
      what += " (the object changed during the read)";
    } else if (r.status == 400 || r.status == 411 || r.status == 413) {
      err = EINVAL;
    }
  }
  if (err == ENOENT && quiet_enoent) {
    spdlog::debug("{}", what);
  } else {
    spdlog::warn("{}", what);
  }
  return Status::error(err, what);
}

Status S3Blobber::pull(const Source& src, std::string& buf, uint64_t n, uint64_t done, uint64_t size,
                       const std::string& key) const {
  buf.resize(static_cast<size_t>(n));
  uint64_t got_total = 0;
  while (got_total < n) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(kPullChunk, n - got_total));
    Result<size_t> got = Status::error(EIO);
    try {
      got = src(buf.data() + got_total, want);
    } catch (...) {
      got = Status::error(EIO, url_ + ": put " + key + ": source threw an exception");
    }
    if (!got)
      return Status::error(got.err(), url_ + ": put " + key + ": source failed at " +
                                          std::to_string(done + got_total) + " of " + std::to_string(size) +
                                          " bytes: " + got.status().message());
    if (*got == 0)
      return Status::error(EIO, url_ + ": put " + key + ": source ended at " + std::to_string(done + got_total) +
                                    " of " + std::to_string(size) + " bytes");
    got_total += std::min<uint64_t>(*got, want);
  }
  return {};
}

Status S3Blobber::put(const std::string& key, uint64_t size, const Source& src, Durability) {
  TCFS_TRY(injected("put", opt_.index, url_, key));
  TCFS_TRY(check_key(key));
  return size > 0 && size >= opt_.multipart_threshold ? put_multipart(key, size, src) : put_single(key, size, src);
}

Status S3Blobber::put_single(const std::string& key, uint64_t size, const Source& src) {
  std::string body;
  try {
    body.reserve(static_cast<size_t>(size));
  } catch (...) {
    return Status::error(ENOMEM, url_ + ": put " + key + ": cannot buffer " + std::to_string(size) + " bytes");
  }
  Status st = pull(src, body, size, 0, size, key);
  if (!st) {
    spdlog::warn("{}", st.message());
    return st;
  }
  Req req;
  req.method = "PUT";
  req.target = object_path(key);
  req.upload = true;
  req.body = body;
  req.headers = {"Content-MD5: " + content_md5(body), "Content-Type: application/octet-stream"};
  Resp r = call("put", key, req);
  return r.ok() ? Status{} : fail("put", key, r);
}

// blobber.h put_new: a PUT with `If-None-Match: *`, which the store
// answers 412 when the key exists (it decides: two racing creators cannot
// both get 200). 409 (a conditional write of the same key in progress) is
// retried like a transient failure. A 412 after a retry may be our own
// first attempt's success whose reply was lost: existing_is() tells.
Status S3Blobber::put_new(const std::string& key, std::string_view data) {
  TCFS_TRY(injected("put", opt_.index, url_, key));
  TCFS_TRY(check_key(key));
  Req req;
  req.method = "PUT";
  req.target = object_path(key);
  req.upload = true;
  req.body = data;
  req.headers = {"Content-MD5: " + content_md5(data), "Content-Type: application/octet-stream",
                 "If-None-Match: *"};
  Resp r;
  for (unsigned attempt = 0;; ++attempt) {
    r = call("put", key, req);
    if (r.status != 409 || attempt >= opt_.retries) break;
    backoff(attempt);
  }
  if (r.ok()) return {};
  if (r.cc == CURLE_OK && (r.status == 412 || r.status == 409)) return existing_is(*this, key, data);
  return fail("put", key, r);
}

void S3Blobber::abort_upload(const std::string& key, const std::string& upload_id) {
  Req req;
  req.method = "DELETE";
  req.target = object_path(key) + "?uploadId=" + uri_encode(upload_id, false);
  Resp r = call("abort-multipart", key, req);
  if (!r.ok() && r.status != 404) (void)fail("abort-multipart", key, r);
}

Status S3Blobber::put_multipart(const std::string& key, uint64_t size, const Source& src) {
  std::string upload_id;
  TCFS_TRY(start_multipart(key, upload_id));
  std::vector<std::string> etags;
  Status st = put_parts(key, size, src, upload_id, etags);
  if (st) st = complete_multipart(key, size, upload_id, etags);
  if (!st) abort_upload(key, upload_id);
  return st;
}

// CreateMultipartUpload: the upload's id into upload_id.
Status S3Blobber::start_multipart(const std::string& key, std::string& upload_id) {
  Req req;
  req.method = "POST";
  req.target = object_path(key) + "?uploads=";
  req.headers = {"Content-Type: application/octet-stream"};
  Resp r = call("put", key, req);
  if (!r.ok()) return fail("put", key, r);
  upload_id = xml_get(r.body, "UploadId");
  if (upload_id.empty()) {
    spdlog::warn("{}: put {}: CreateMultipartUpload answered without an UploadId", url_, key);
    return Status::error(EIO, url_ + ": put " + key + ": CreateMultipartUpload answered without an UploadId");
  }
  return {};
}

// UploadPart for each part of src in turn: their ETags into etags.
Status S3Blobber::put_parts(const std::string& key, uint64_t size, const Source& src, const std::string& upload_id,
                            std::vector<std::string>& etags) {
  uint64_t part = std::max(part_, (size + kMaxParts - 1) / kMaxParts);
  std::string path = object_path(key);
  std::string qid = uri_encode(upload_id, false);
  std::string buf;
  try {
    buf.reserve(static_cast<size_t>(std::min(part, size)));
  } catch (...) {
    return Status::error(ENOMEM, url_ + ": put " + key + ": cannot buffer a part of " + std::to_string(part) + " bytes");
  }
  uint64_t done = 0;
  while (done < size) {
    uint64_t n = std::min(part, size - done);
    Status st = pull(src, buf, n, done, size, key);
    if (!st) {
      spdlog::warn("{}", st.message());
      return st;
    }
    std::string num = std::to_string(etags.size() + 1);
    Req pr;
    pr.method = "PUT";
    pr.target = path + "?partNumber=" + num + "&uploadId=" + qid;
    pr.upload = true;
    pr.body = buf;
    pr.headers = {"Content-MD5: " + content_md5(buf)};
    Resp rr = call("put", key + " (part " + num + ")", pr);
    if (!rr.ok() || rr.etag.empty()) {
      return rr.ok() ? Status::error(EIO, url_ + ": put " + key + ": part " + num + " answered without an ETag")
                     : fail("put", key + " (part " + num + ")", rr);
    }
    etags.push_back(rr.etag);
    done += n;
  }
  return {};
}

// CompleteMultipartUpload of the parts etags names, retried while transient.
Status S3Blobber::complete_multipart(const std::string& key, uint64_t size, const std::string& upload_id,
                                     const std::vector<std::string>& etags) {
  std::string path = object_path(key);
  std::string xml = "<CompleteMultipartUpload>";
  for (size_t i = 0; i < etags.size(); ++i)
    xml += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" + xml_escape(etags[i]) +
           "</ETag></Part>";
  xml += "</CompleteMultipartUpload>";
  Req cr;
  cr.method = "POST";
  cr.target = path + "?uploadId=" + uri_encode(upload_id, false);
  cr.upload = true;
  cr.body = xml;
  cr.headers = {"Content-MD5: " + content_md5(xml), "Content-Type: application/xml"};
  // Complete may answer 200 with an <Error> body; and a Complete retried
  // after an answer that got lost finds NoSuchUpload: look at the object.
  for (unsigned attempt = 0;; ++attempt) {
    Resp c;
    perform(cr, c);
    if (c.ok() && c.body.find("<Error>") != std::string::npos) c.status = 500;
    if (c.ok()) return {};
    if (attempt > 0 && c.cc == CURLE_OK && c.status == 404 && c.code() == "NoSuchUpload") {
      Req hr;
      hr.method = "HEAD";
      hr.target = path;
      Resp h = call("put", key, hr);
      if (h.ok() && h.length >= 0 && static_cast<uint64_t>(h.length) == size) return {};
    }
    if (!transient(c) || attempt >= opt_.retries) return fail("put", key + " (complete)", c);
    spdlog::info("{}: put {} (complete): {} (attempt {} of {}), retrying", url_, key,
                 c.cc != CURLE_OK ? c.curl_msg : "HTTP " + std::to_string(c.status) + " " + c.code(), attempt + 1,
                 opt_.retries + 1);
    backoff(attempt);
  }
}

Status S3Blobber::get(const std::string& key, uint64_t off, uint64_t len, const Sink& sink) {
  TCFS_TRY(injected("get", opt_.index, url_, key));
  TCFS_TRY(check_key(key));
  if (len == 0) {  // nothing to deliver, but an absent object is still ENOENT
    Req req;
    req.method = "HEAD";
    req.target = object_path(key);
    Resp r = call("get", key, req);
    return r.ok() ? Status{} : fail("get", key, r, true);
  }
  uint64_t delivered = 0;
  std::string etag;
  for (unsigned attempt = 0;; ++attempt) {
    uint64_t at = off + delivered;
    uint64_t want = len == kToEnd ? kToEnd : len - delivered;
    if (want == 0) return {};
    Req req;
    req.target = object_path(key);
    req.sink = &sink;
    req.limit = want;
    req.skip_if_200 = at;
    if (at != 0 || want != kToEnd) {
      std::string range = "Range: bytes=" + std::to_string(at) + "-";
      if (want != kToEnd && want <= ~uint64_t{0} - at) range += std::to_string(at + want - 1);
      req.headers.push_back(range);
    }
    if (!etag.empty()) req.headers.push_back("If-Match: " + etag);
    Resp r;
    perform(req, r);
    delivered += r.delivered;
    if (!r.sink_st.is_ok()) return r.sink_st;
    if (r.ok()) return {};
    if (r.cc == CURLE_OK && r.status == 416) return {};  // range past the end: no bytes
    if (etag.empty() && !r.etag.empty() && (r.status == 200 || r.status == 206)) etag = r.etag;
    if (!transient(r) || attempt >= opt_.retries) return fail("get", key, r, true);
    spdlog::info("{}: get {}: {} after {} bytes (attempt {} of {}), retrying", url_, key,
                 r.cc != CURLE_OK ? r.curl_msg : "HTTP " + std::to_string(r.status), delivered, attempt + 1,
                 opt_.retries + 1);
    backoff(attempt);
  }
}

Result<ObjectInfo> S3Blobber::head(const std::string& key) {
  TCFS_TRY(injected("head", opt_.index, url_, key));
  TCFS_TRY(check_key(key));
  Req req;
  req.method = "HEAD";
  req.target = object_path(key);
  Resp r = call("head", key, req);
  if (!r.ok()) return fail("head", key, r, true);
  if (r.length < 0) {
    spdlog::warn("{}: head {}: no Content-Length", url_, key);
    return Status::error(EIO, url_ + ": head " + key + ": no Content-Length in the answer");
  }
  return ObjectInfo{key, static_cast<uint64_t>(r.length)};
}

Status S3Blobber::del(const std::string& key) {
  TCFS_TRY(injected("del", opt_.index, url_, key));
  TCFS_TRY(check_key(key));
  Req req;
  req.method = "DELETE";
  req.target = object_path(key);
  Resp r = call("delete", key, req);
  if (r.ok() || (r.cc == CURLE_OK && r.status == 404 && r.code() != "NoSuchBucket")) return {};
  return fail("delete", key, r);
}

Result<ListPage> S3Blobber::list(const std::string& prefix, const std::string& token, size_t max) {
  return list_page(prefix, token, "", max);
}

Result<ListPage> S3Blobber::list_page(const std::string& prefix, const std::string& token, const std::string& after,
                                      size_t max) {
  TCFS_TRY(injected("list", opt_.index, url_, prefix));
  for (char c : prefix) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-' || c == '/';
    if (!ok) return Status::error(EINVAL, url_ + ": list prefix \"" + prefix + "\": a character outside [A-Za-z0-9._/-]");
  }
  if (max == 0 || max > 1000) max = 1000;
  std::string strip = prefix_.empty() ? "" : prefix_ + "/";
  // Parameters in canonical (sorted) order: libcurl signs the query as is.
  std::string q = "?";
  if (!token.empty()) q += "continuation-token=" + uri_encode(token, false) + "&";
  q += "list-type=2&max-keys=" + std::to_string(max) + "&prefix=" + uri_encode(strip + prefix, false);
  if (!after.empty()) q += "&start-after=" + uri_encode(strip + after, false);
  Req req;
  req.target = "/" + bucket_ + q;
  Resp r = call("list", prefix, req);
  if (!r.ok()) return fail("list", prefix, r);
  bool truncated = false;
  ListPage page = parse_listing(r.body, strip, &truncated);
  if (truncated) {
    if (page.next.empty()) {
      spdlog::warn("{}: list {}: truncated listing without NextContinuationToken", url_, prefix);
      return Status::error(EIO, url_ + ": list " + prefix + ": truncated listing without a continuation token");
    }
  }
  return page;
}

Status S3Blobber::probe() {
  std::string who = "blobber " + url_ + " at " + endpoint_;
  Req req;
  req.method = "HEAD";
  req.target = "/" + bucket_;
  Resp r = call("probe", "(bucket)", req, std::min(opt_.retries, 1u));
  if (!r.ok()) {
    Status st;
    if (r.cc == CURLE_ABORTED_BY_CALLBACK && cancelled_.load()) {  // (6)
      st = Status::error(ECANCELED, who + ": cancelled (the daemon is stopping)");
    } else if (r.cc != CURLE_OK) {
      bool unreachable = false;
      int e = curl_errno(r, &unreachable);
      st = Status::error(e, "blobber " + url_ + ": cannot reach " + endpoint_ + ": " + r.curl_msg);
    } else if (r.status == 404) {
      st = Status::error(ENOENT, who + ": bucket " + bucket_ + " does not exist (HTTP 404)");
    } else if (r.status == 403) {
      std::string code = r.code();
      st = Status::error(EACCES, who + ": credentials refused for access key " + ak_ + " (HTTP 403" +
                                     (code.empty() ? "" : " " + code) + ")");
    } else if (r.status == 301 || r.status == 307) {
      st = Status::error(EINVAL, who + ": bucket " + bucket_ + " is in another region or endpoint (HTTP " +
                                     std::to_string(r.status) + ")");
    } else {
      st = Status::error(r.status >= 500 ? EAGAIN : EIO,
                         who + ": HEAD bucket " + bucket_ + ": HTTP " + std::to_string(r.status));
    }
    spdlog::warn("{}", st.what());
    return st;
  }
  // Writable and readable? A tiny object of our own, then gone again.
  std::string key = ".tcfs-probe-" + random_hex(16);
  std::string data = "tcfs probe " + key;
  Status st = put_bytes(key, data);
  if (!st) return Status::error(st.err(), who + ": cannot write: " + st.what());
  auto back = get_bytes(key);
  Status dst = del(key);
  if (!back) return Status::error(back.err(), who + ": cannot read back: " + back.status().what());
  if (*back != data) {
    spdlog::warn("{}: probe object {} read back different bytes", url_, key);
    return Status::error(EIO, who + ": probe object " + key + " read back different bytes");
  }
  if (!dst) return Status::error(dst.err(), who + ": cannot delete: " + dst.what());
  return {};
}

}  // namespace

Result<std::unique_ptr<Blobber>> open_s3(const std::string& bucket, const std::string& prefix,
                                         const BlobberOptions& opt) {
  std::string url = "s3://" + bucket + (prefix.empty() ? "" : "/" + prefix);
  static std::once_flag once;
  static CURLcode init_rc = CURLE_OK;
  std::call_once(once, [] { init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (init_rc != CURLE_OK)
    return Status::error(EIO, url + ": curl_global_init failed: " + curl_easy_strerror(init_rc));

  std::string endpoint = !opt.endpoint.empty() ? opt.endpoint : env("AWS_ENDPOINT_URL");
  std::string region = !opt.region.empty() ? opt.region : env("AWS_REGION");
  if (region.empty()) region = env("AWS_DEFAULT_REGION");
  if (region.empty()) region = "us-east-1";
  std::string ak = !opt.access_key.empty() ? opt.access_key : env("AWS_ACCESS_KEY_ID");
  std::string sk = !opt.secret_key.empty() ? opt.secret_key : env("AWS_SECRET_ACCESS_KEY");
  std::string token = !opt.session_token.empty() ? opt.session_token : env("AWS_SESSION_TOKEN");

  if (endpoint.empty())
    return Status::error(EINVAL, url + ": no S3 endpoint: set the endpoint option or AWS_ENDPOINT_URL");
  if (endpoint.rfind("http://", 0) != 0 && endpoint.rfind("https://", 0) != 0)
    return Status::error(EINVAL, url + ": S3 endpoint \"" + endpoint + "\" is not an http:// or https:// URL");
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
  std::string missing;
  if (ak.empty()) missing = "access key (AWS_ACCESS_KEY_ID)";
  if (sk.empty()) missing += std::string(missing.empty() ? "" : " and ") + "secret key (AWS_SECRET_ACCESS_KEY)";
  if (!missing.empty()) return Status::error(EINVAL, url + ": no S3 credentials: missing " + missing);
  for (char c : region)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-'))
      return Status::error(EINVAL, url + ": S3 region \"" + region + "\" is not a region name");
  if (ak.find(':') != std::string::npos)
    return Status::error(EINVAL, url + ": S3 access key contains ':'");
  if (bucket.empty() || bucket.find('/') != std::string::npos)
    return Status::error(EINVAL, url + ": not a bucket name");
  return std::unique_ptr<Blobber>(new S3Blobber(bucket, prefix, opt, endpoint, region, ak, sk, token));
}

}  // namespace tcfs::blob
