// Unit tests for the s3:// blobber (src/blob/s3.cpp) against a real Ceph
// RGW on loopback, plus a scripted fake S3 server on a local socket for the
// retry and resume paths a healthy RGW never takes.
//
// Run through tests/unit/blob_s3_run.sh (meson test unit-blob_s3), which
// starts RGW with tests/support/rgw and passes its coordinates in
// AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION and
// TCFS_TEST_BUCKET. Every test case works under its own random key prefix.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <arpa/inet.h>
#include <curl/curl.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "blob/blobber.h"
#include "blob_create_only.h"
#include "util/fault.h"

using namespace tcfs;
using namespace tcfs::blob;

namespace {

std::string env(const char* n) {
  const char* v = std::getenv(n);
  return v ? v : "";
}

std::string bucket() {
  std::string b = env("TCFS_TEST_BUCKET");
  REQUIRE_MESSAGE(!b.empty(), "TCFS_TEST_BUCKET unset: run through tests/unit/blob_s3_run.sh");
  REQUIRE_MESSAGE(!env("AWS_ENDPOINT_URL").empty(), "AWS_ENDPOINT_URL unset: run through blob_s3_run.sh");
  return b;
}

std::string run_id() {
  static std::string id = [] {
    std::random_device rd;
    return "t" + std::to_string(rd() % 1000000000u);
  }();
  return id;
}

// A fresh key prefix per test case: run id + a counter.
std::string fresh_prefix() {
  static std::atomic<int> n{0};
  return run_id() + "/c" + std::to_string(n++);
}

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

std::unique_ptr<Blobber> open(const std::string& prefix, BlobberOptions o = {}) {
  std::string url = "s3://" + bucket() + (prefix.empty() ? "" : "/" + prefix);
  auto b = open_blobber(url, o);
  REQUIRE_MESSAGE(b.is_ok(), b.status().message());
  CHECK(b.value()->url() == url);
  return std::move(b.value());
}

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// The byte at position p of the synthetic streaming object.
char pattern(uint64_t p) { return static_cast<char>((p * 2654435761u) >> 13 ^ (p >> 20)); }

// A port on 127.0.0.1 that nobody listens on (bound, then closed).
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// A signed request straight to RGW (for what the Blobber API does not show:
// ETags, pending multipart uploads). Returns status and body; *etag set.
long raw_s3(const char* method, const std::string& target, std::string* body, std::string* etag = nullptr) {
  CURL* h = curl_easy_init();
  REQUIRE(h);
  std::string url = env("AWS_ENDPOINT_URL") + target;
  std::string region = env("AWS_REGION").empty() ? "us-east-1" : env("AWS_REGION");
  std::string sig = "aws:amz:" + region + ":s3";
  std::string user = env("AWS_ACCESS_KEY_ID") + ":" + env("AWS_SECRET_ACCESS_KEY");
  curl_slist* hd = curl_slist_append(nullptr, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
  std::string hdr_text;
  auto wr = +[](char* p, size_t s, size_t n, void* ud) {
    static_cast<std::string*>(ud)->append(p, s * n);
    return s * n;
  };
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sig.c_str());
  curl_easy_setopt(h, CURLOPT_USERPWD, user.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  if (std::strcmp(method, "HEAD") == 0) curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, wr);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, wr);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &hdr_text);
  CURLcode cc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(hd);
  curl_easy_cleanup(h);
  REQUIRE_MESSAGE(cc == CURLE_OK, curl_easy_strerror(cc));
  if (etag) {
    std::string low = hdr_text;
    std::transform(low.begin(), low.end(), low.begin(), [](unsigned char c) { return std::tolower(c); });
    size_t p = low.find("\netag:");
    if (p != std::string::npos) {
      size_t e = hdr_text.find('\r', p);
      *etag = hdr_text.substr(p + 6, e - p - 6);
      etag->erase(0, etag->find_first_not_of(' '));
    }
  }
  return status;
}

// Every pending multipart upload in the bucket whose key contains needle.
int pending_uploads(const std::string& needle) {
  std::string body;
  REQUIRE(raw_s3("GET", "/" + bucket() + "?uploads=", &body) == 200);
  int n = 0;
  for (size_t p = 0; (p = body.find("<Key>", p)) != std::string::npos; p += 5) {
    size_t e = body.find("</Key>", p);
    if (body.substr(p + 5, e - p - 5).find(needle) != std::string::npos) ++n;
  }
  return n;
}

// ---- a scripted fake S3 server ----------------------------------------------
// One thread accepts; each connection is served by its own thread, one
// request after another (keep-alive), through the test's handler.

struct SeenRequest {
  std::string method, target, body;
  std::map<std::string, std::string> headers;  // lower-case names
};
struct Reply {
  std::string raw;     // whole HTTP response
  bool close = false;  // close the connection after writing it
};

class FakeS3 {
 public:
  using Handler = std::function<Reply(const SeenRequest&, int nth)>;
  explicit FakeS3(Handler h) : handler_(std::move(h)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    th_ = std::thread([this] { loop(); });
  }
  ~FakeS3() {
    stop_ = true;
    th_.join();
    for (auto& t : conns_) t.join();  // the acceptor is gone: nobody adds more
    ::close(fd_);
  }
  std::atomic<int> connections{0};
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<SeenRequest> seen() {
    std::lock_guard<std::mutex> g(mu_);
    return seen_;
  }
  static Reply status(int code, const std::string& s3code = "", const std::string& body = "",
                      const std::string& extra = "") {
    std::string b = !s3code.empty() ? "<?xml version=\"1.0\"?><Error><Code>" + s3code + "</Code></Error>" : body;
    return {"HTTP/1.1 " + std::to_string(code) + " X\r\nContent-Length: " + std::to_string(b.size()) + "\r\n" +
                extra + "\r\n" + b,
            false};
  }

 private:
  void loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      ++connections;
      std::lock_guard<std::mutex> g(mu_);
      conns_.emplace_back([this, c] {
        serve(c);
        ::close(c);
      });
    }
  }
  bool read_more(int c, std::string& buf) {
    pollfd p{c, POLLIN, 0};
    while (!stop_) {
      int r = ::poll(&p, 1, 50);
      if (r > 0) break;
    }
    if (stop_) return false;
    char tmp[65536];
    ssize_t n = ::read(c, tmp, sizeof tmp);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<size_t>(n));
    return true;
  }
  void serve(int c) {
    std::string buf;
    for (;;) {
      size_t end;
      while ((end = buf.find("\r\n\r\n")) == std::string::npos)
        if (!read_more(c, buf)) return;
      SeenRequest rq;
      std::string head = buf.substr(0, end);
      buf.erase(0, end + 4);
      size_t sp1 = head.find(' '), sp2 = head.find(' ', sp1 + 1);
      rq.method = head.substr(0, sp1);
      rq.target = head.substr(sp1 + 1, sp2 - sp1 - 1);
      for (size_t p = head.find("\r\n"); p != std::string::npos;) {
        size_t q = head.find("\r\n", p + 2);
        std::string line = head.substr(p + 2, q == std::string::npos ? std::string::npos : q - p - 2);
        size_t colon = line.find(':');
        if (colon != std::string::npos) {
          std::string k = line.substr(0, colon), v = line.substr(colon + 1);
          std::transform(k.begin(), k.end(), k.begin(), [](unsigned char ch) { return std::tolower(ch); });
          v.erase(0, v.find_first_not_of(' '));
          rq.headers[k] = v;
        }
        p = q;
      }
      if (rq.headers.count("expect")) {
        std::string cont = "HTTP/1.1 100 Continue\r\n\r\n";
        (void)!::send(c, cont.data(), cont.size(), MSG_NOSIGNAL);
      }
      size_t clen = rq.headers.count("content-length") ? std::stoul(rq.headers["content-length"]) : 0;
      while (buf.size() < clen)
        if (!read_more(c, buf)) return;
      rq.body = buf.substr(0, clen);
      buf.erase(0, clen);
      int nth;
      {
        std::lock_guard<std::mutex> g(mu_);
        seen_.push_back(rq);
        nth = static_cast<int>(seen_.size());
      }
      Reply r = handler_(rq, nth);
      for (size_t off = 0; off < r.raw.size();) {
        ssize_t w = ::send(c, r.raw.data() + off, r.raw.size() - off, MSG_NOSIGNAL);  // peer may be gone
        if (w <= 0) return;
        off += static_cast<size_t>(w);
      }
      if (r.close) return;
    }
  }

  Handler handler_;
  int fd_ = -1, port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread th_;
  std::vector<std::thread> conns_;  // one per connection; guarded by mu_
  std::mutex mu_;
  std::vector<SeenRequest> seen_;
};

BlobberOptions fake_opts(const FakeS3& f, unsigned retries) {
  BlobberOptions o;
  o.endpoint = f.endpoint();
  o.access_key = "AK";
  o.secret_key = "SK";
  o.retries = retries;
  o.connect_timeout_ms = 2000;
  o.request_timeout_ms = 5000;
  return o;
}

}  // namespace

TEST_CASE("put, get, head and delete round-trip; absent keys are ENOENT naming url and key") {
  std::string pre = fresh_prefix();
  auto b = open(pre);
  std::string data = random_bytes(100000, 1);
  REQUIRE(b->put_bytes("a/b/obj-1.bin", data).is_ok());
  auto got = b->get_bytes("a/b/obj-1.bin");
  REQUIRE(got.is_ok());
  CHECK(got.value() == data);
  auto h = b->head("a/b/obj-1.bin");
  REQUIRE(h.is_ok());
  CHECK(h->size == data.size());
  CHECK(h->key == "a/b/obj-1.bin");

  // Stored under PREFIX/KEY, seen so from a blobber without prefix.
  auto root = open("");
  auto h2 = root->head(pre + "/a/b/obj-1.bin");
  REQUIRE(h2.is_ok());
  CHECK(h2->size == data.size());

  REQUIRE(b->del("a/b/obj-1.bin").is_ok());
  auto gone = b->head("a/b/obj-1.bin");
  CHECK(gone.err() == ENOENT);
  CHECK(contains(gone.status().what(), "s3://" + bucket() + "/" + pre));
  CHECK(contains(gone.status().what(), "a/b/obj-1.bin"));
  CHECK(contains(gone.status().what(), "404"));
  auto g2 = b->get_bytes("a/b/obj-1.bin");
  CHECK(g2.err() == ENOENT);
  CHECK(contains(g2.status().what(), "a/b/obj-1.bin"));
  CHECK(contains(g2.status().what(), "NoSuchKey"));
  // A zero-length get of an absent object is still ENOENT.
  CHECK(b->get("never-there", 0, 0, [](std::string_view) { return Status{}; }).err() == ENOENT);

  // Deleting an absent key is not an error.
  CHECK(b->del("a/b/obj-1.bin").is_ok());
  CHECK(b->del("never/was/here").is_ok());
}

TEST_CASE("empty objects and overwrites") {
  auto b = open(fresh_prefix());
  REQUIRE(b->put_bytes("empty", "").is_ok());
  auto h = b->head("empty");
  REQUIRE(h.is_ok());
  CHECK(h->size == 0);
  auto g = b->get_bytes("empty");
  REQUIRE(g.is_ok());
  CHECK(g.value().empty());

  REQUIRE(b->put_bytes("k", random_bytes(5000, 2)).is_ok());
  std::string second = random_bytes(1234, 3);
  REQUIRE(b->put_bytes("k", second).is_ok());
  CHECK(b->get_bytes("k").value() == second);
  CHECK(b->head("k")->size == 1234);
  REQUIRE(b->put_bytes("k", "").is_ok());
  CHECK(b->head("k")->size == 0);
}

TEST_CASE("invalid keys are EINVAL before any I/O") {
  BlobberOptions o;
  o.endpoint = "http://127.0.0.1:" + std::to_string(closed_port());  // any I/O would fail differently
  o.retries = 0;
  auto b = open("p", o);
  for (const std::string& k : std::vector<std::string>{"", "/abs", "a//b", "a/../b", "./a", "sp ace", "a%20", "k?x",
                                                      std::string(513, 'a')}) {
    CAPTURE(k);
    Status st = b->put_bytes(k, "x");
    CHECK(st.err() == EINVAL);
    CHECK(contains(st.what(), k));
    CHECK(b->head(k).err() == EINVAL);
    CHECK(b->del(k).err() == EINVAL);
    CHECK(b->get_bytes(k).err() == EINVAL);
  }
  CHECK(b->list("bad prefix", "", 10).err() == EINVAL);
}

TEST_CASE("ranged gets: middle, to the end, across the end, past the end") {
  auto b = open(fresh_prefix());
  std::string data = random_bytes(1000, 4);
  REQUIRE(b->put_bytes("r", data).is_ok());
  CHECK(b->get_bytes("r", 100, 200).value() == data.substr(100, 200));
  CHECK(b->get_bytes("r", 0, 1).value() == data.substr(0, 1));
  CHECK(b->get_bytes("r", 999, 1).value() == data.substr(999));
  CHECK(b->get_bytes("r", 900).value() == data.substr(900));       // to the end
  CHECK(b->get_bytes("r", 990, 50).value() == data.substr(990));   // across the end: what exists
  auto past = b->get_bytes("r", 1000, 10);                         // at the end
  REQUIRE(past.is_ok());
  CHECK(past.value().empty());
  auto far = b->get_bytes("r", 5000);                              // far past, to end
  REQUIRE(far.is_ok());
  CHECK(far.value().empty());
  auto none = b->get_bytes("r", 10, 0);
  REQUIRE(none.is_ok());
  CHECK(none.value().empty());
  CHECK(b->get_bytes("r", 0, 1u << 30).value() == data);  // a length beyond the end

  // A sink error aborts the get and comes back as is.
  int calls = 0;
  Status st = b->get("r", 0, kToEnd, [&](std::string_view) {
    ++calls;
    return Status::error(ENOSPC, "sink full");
  });
  CHECK(st.err() == ENOSPC);
  CHECK(st.what() == "sink full");
  CHECK(calls == 1);
}

TEST_CASE("list: pages, continuation tokens, prefix filtering, byte order, sizes") {
  std::string pre = fresh_prefix();
  auto b = open(pre);
  std::vector<std::string> in_dir = {"list/A", "list/Z-9", "list/a", "list/a.b", "list/a_b", "list/a-b",
                                     "list/b/c/d", "list/b/c.e", "list/0", "list/9..9", "list/z__.-",
                                     "list/sub/x1", "list/sub/x2", "list/sub/y/deep.file"};
  for (int i = 0; i < 12; ++i) in_dir.push_back("list/n" + std::to_string(i));
  std::vector<std::string> outside = {"listx", "lis", "other/list/a", "list-not/x"};
  std::map<std::string, size_t> sizes;
  for (size_t i = 0; i < in_dir.size(); ++i) {
    sizes[in_dir[i]] = i * 7;
    REQUIRE(b->put_bytes(in_dir[i], std::string(i * 7, 'x')).is_ok());
  }
  for (auto& k : outside) REQUIRE(b->put_bytes(k, "o").is_ok());

  std::vector<std::string> want = in_dir;
  std::sort(want.begin(), want.end());  // byte order

  std::vector<std::string> got;
  std::string token;
  int pages = 0;
  do {
    auto page = b->list("list/", token, 7);
    REQUIRE_MESSAGE(page.is_ok(), page.status().message());
    CHECK(page->items.size() <= 7);
    for (auto& it : page->items) {
      got.push_back(it.key);
      CHECK(it.size == sizes[it.key]);
    }
    token = page->next;
    ++pages;
    REQUIRE(pages < 20);
  } while (!token.empty());
  CHECK(pages == 4);  // 26 keys, 7 a page
  CHECK(got == want);

  auto sub = b->list_all("list/sub/");
  REQUIRE(sub.is_ok());
  REQUIRE(sub->size() == 3);
  CHECK(sub.value()[0].key == "list/sub/x1");
  CHECK(sub.value()[2].key == "list/sub/y/deep.file");

  auto partial = b->list_all("list/a");  // a prefix that is not a whole component
  REQUIRE(partial.is_ok());
  CHECK(partial->size() == 4);

  auto all = b->list_all("");
  REQUIRE(all.is_ok());
  CHECK(all->size() == in_dir.size() + outside.size());
  CHECK(b->list_all("nothing/here").value().empty());

  // The blobber's own prefix is never part of a listed key, and a blobber
  // with a sibling prefix ("c1" vs "c10") sees none of these.
  for (auto& it : all.value()) CHECK(it.key.rfind(pre, 0) != 0);
  auto sibling = open(pre + "0");
  CHECK(sibling->list_all("").value().empty());
}

TEST_CASE("streaming: a 40 MiB multipart put from small chunks, read back as a stream") {
  BlobberOptions o;
  o.multipart_threshold = 8 << 20;
  o.part_size = 5 << 20;
  std::string pre = fresh_prefix();
  auto b = open(pre, o);
  const uint64_t size = 40ull << 20;
  uint64_t pos = 0;
  size_t src_calls = 0, max_ask = 0;
  Status st = b->put("big/stream.bin", size, [&](char* buf, size_t n) -> Result<size_t> {
    ++src_calls;
    max_ask = std::max(max_ask, n);
    size_t k = std::min<size_t>({n, 64 << 10, size - pos});
    for (size_t i = 0; i < k; ++i) buf[i] = pattern(pos + i);
    pos += k;
    return k;
  });
  REQUIRE_MESSAGE(st.is_ok(), st.message());
  CHECK(pos == size);
  CHECK(src_calls >= size / (64 << 10));
  CHECK(max_ask <= (1u << 20));  // pulled in chunks, never "give me everything"

  auto h = b->head("big/stream.bin");
  REQUIRE(h.is_ok());
  CHECK(h->size == size);
  // A multipart object's ETag ends in -PARTS: 40 MiB / 5 MiB = 8 parts.
  std::string body, etag;
  REQUIRE(raw_s3("HEAD", "/" + bucket() + "/" + pre + "/big/stream.bin", &body, &etag) == 200);
  CHECK(contains(etag, "-8\""));

  uint64_t at = 0, chunks = 0, max_chunk = 0;
  bool same = true;
  st = b->get("big/stream.bin", 0, kToEnd, [&](std::string_view c) {
    ++chunks;
    max_chunk = std::max<uint64_t>(max_chunk, c.size());
    for (size_t i = 0; i < c.size() && same; ++i) same = c[i] == pattern(at + i);
    at += c.size();
    return Status{};
  });
  REQUIRE_MESSAGE(st.is_ok(), st.message());
  CHECK(at == size);
  CHECK(same);
  CHECK(chunks > 100);                 // streamed, not one buffer
  CHECK(max_chunk <= (1u << 20));

  // A range across a part boundary.
  auto mid = b->get_bytes("big/stream.bin", (5 << 20) - 10, 20);
  REQUIRE(mid.is_ok());
  REQUIRE(mid->size() == 20);
  for (size_t i = 0; i < 20; ++i) CHECK((*mid)[i] == pattern((5 << 20) - 10 + i));
  CHECK(pending_uploads(pre + "/big/") == 0);
  CHECK(b->del("big/stream.bin").is_ok());
}

TEST_CASE("a put whose source fails or ends early leaves no object (and the old one intact)") {
  BlobberOptions o;
  o.multipart_threshold = 8 << 20;
  o.part_size = 5 << 20;
  std::string pre = fresh_prefix();
  auto b = open(pre, o);

  auto failing = [](uint64_t fail_at, int err) {
    auto pos = std::make_shared<uint64_t>(0);
    return Source([pos, fail_at, err](char* buf, size_t n) -> Result<size_t> {
      if (*pos >= fail_at) {
        if (err == 0) return size_t{0};  // ends early
        return Status::error(err, "source broke");
      }
      size_t k = std::min<uint64_t>({n, 4096, fail_at - *pos});
      std::memset(buf, 'q', k);
      *pos += k;
      return k;
    });
  };
  SUBCASE("single put, source error") {
    Status st = b->put("s", 100000, failing(50000, EPROTO));
    CHECK(st.err() == EPROTO);
    CHECK(contains(st.what(), "source broke"));
    CHECK(contains(st.what(), "s3://" + bucket() + "/" + pre + ": put s"));
    CHECK(b->head("s").err() == ENOENT);
  }
  SUBCASE("single put, source ends early") {
    Status st = b->put("s", 100000, failing(50000, 0));
    CHECK(st.err() == EIO);
    CHECK(contains(st.what(), "source ended at 50000 of 100000"));
    CHECK(contains(st.what(), "s3://" + bucket() + "/" + pre));
    CHECK(b->head("s").err() == ENOENT);
  }
  SUBCASE("multipart put fails after two parts went up; the old object stays") {
    REQUIRE(b->put_bytes("m", "old contents").is_ok());
    Status st = b->put("m", 20 << 20, failing(12 << 20, EPROTO));
    CHECK(st.err() == EPROTO);
    CHECK(b->get_bytes("m").value() == "old contents");
    CHECK(pending_uploads(pre + "/m") == 0);  // aborted, not left to rot
    Status st2 = b->put("m2", 20 << 20, failing(7 << 20, 0));
    CHECK(st2.err() == EIO);
    CHECK(b->head("m2").err() == ENOENT);
    CHECK(pending_uploads(pre + "/m2") == 0);
  }
}

TEST_CASE("fault seam: an armed blob.<op> fails the call without I/O") {
  auto b = open(fresh_prefix());
  fault::reset();
  fault::arm("blob.put", EIO);
  Status st = b->put_bytes("f", "data");
  CHECK(st.err() == EIO);
  CHECK(contains(st.what(), "injected"));
  CHECK(contains(st.what(), "f"));
  CHECK(b->head("f").err() == ENOENT);  // nothing reached RGW
  CHECK(b->put_bytes("f", "data").is_ok());  // armed for one call only

  fault::arm("blob.get", ENOSPC);
  CHECK(b->get_bytes("f").err() == ENOSPC);
  CHECK(b->get_bytes("f").value() == "data");
  fault::arm("blob.head", EACCES);
  CHECK(b->head("f").err() == EACCES);
  fault::arm("blob.list", EIO);
  CHECK(b->list("", "", 10).err() == EIO);
  fault::arm("blob.del", EBUSY);
  CHECK(b->del("f").err() == EBUSY);
  CHECK(b->head("f").is_ok());  // the delete did not happen

  // Per-index sites: only the blobber with that index fails.
  BlobberOptions o;
  o.index = 3;
  auto b3 = open(fresh_prefix(), o);
  fault::arm("blob3.put", EROFS);
  CHECK(b->put_bytes("g", "x").is_ok());
  CHECK(b3->put_bytes("g", "x").err() == EROFS);
  CHECK(b3->head("g").err() == ENOENT);
  fault::arm("blob.flush", EIO);
  CHECK(b->flush().err() == EIO);
  fault::reset();
}

TEST_CASE("a batched put is an ordinary PUT (durable when acknowledged); flush has nothing to do") {
  auto b = open(fresh_prefix());
  REQUIRE(b->put_bytes("batched", "bytes", Durability::batched).is_ok());
  CHECK(b->get_bytes("batched").value() == "bytes");
  CHECK(b->flush().is_ok());
  CHECK(b->get_bytes("batched").value() == "bytes");
}

TEST_CASE("many threads at once on one blobber") {
  auto b = open(fresh_prefix());
  constexpr int kThreads = 8, kEach = 50;
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        std::string key = "mt/" + std::to_string(t) + "/" + std::to_string(i);
        std::string data = random_bytes(static_cast<size_t>((t * 7919 + i * 104729) % 20000), t * 1000 + i);
        if (!b->put_bytes(key, data).is_ok()) ++bad;
        auto g = b->get_bytes(key);
        if (!g.is_ok() || g.value() != data) ++bad;
        auto h = b->head(key);
        if (!h.is_ok() || h->size != data.size()) ++bad;
      }
    });
  }
  for (auto& t : ts) t.join();
  CHECK(bad == 0);
  auto all = b->list_all("mt/");
  REQUIRE(all.is_ok());
  CHECK(all->size() == kThreads * kEach);
  std::set<std::string> uniq;
  for (auto& it : all.value()) uniq.insert(it.key);
  CHECK(uniq.size() == kThreads * kEach);

  ts.clear();
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i)
        if (!b->del("mt/" + std::to_string(t) + "/" + std::to_string(i)).is_ok()) ++bad;
    });
  for (auto& t : ts) t.join();
  CHECK(bad == 0);
  CHECK(b->list_all("mt/").value().empty());
}

TEST_CASE("probe: good bucket, missing bucket, wrong secret, unreachable endpoint") {
  auto good = open(fresh_prefix());
  Status ok = good->probe();
  CHECK_MESSAGE(ok.is_ok(), ok.message());
  CHECK(good->list_all("").value().empty());  // the probe object is gone again

  auto missing = open_blobber("s3://no-such-bucket-tcfs");
  REQUIRE(missing.is_ok());
  Status m = missing.value()->probe();
  CHECK(m.err() == ENOENT);
  CHECK(contains(m.what(), "bucket no-such-bucket-tcfs does not exist"));
  CHECK(missing.value()->head("x").err() == ENOENT);
  CHECK(contains(missing.value()->head("x").status().what(), "s3://no-such-bucket-tcfs"));

  BlobberOptions wrong;
  wrong.secret_key = "not-the-secret";
  auto w = open("", wrong);
  Status ws = w->probe();
  CHECK(ws.err() == EACCES);
  CHECK(contains(ws.what(), "credentials refused"));
  Status wp = w->put_bytes("x", "y");
  CHECK(wp.err() == EACCES);
  CHECK(contains(wp.what(), "403"));
  CHECK(contains(wp.what(), "SignatureDoesNotMatch"));

  BlobberOptions dead;
  int port = closed_port();
  dead.endpoint = "http://127.0.0.1:" + std::to_string(port);
  dead.retries = 2;
  auto d = open("", dead);
  Status ds = d->probe();
  CHECK(ds.err() == ECONNREFUSED);
  CHECK(contains(ds.what(), "cannot reach http://127.0.0.1:" + std::to_string(port)));
  Status dp = d->put_bytes("k", "v");  // retried, then final
  CHECK(dp.err() == ECONNREFUSED);
  CHECK(contains(dp.what(), "127.0.0.1:" + std::to_string(port)));
  CHECK(contains(dp.what(), "k"));
}

TEST_CASE("open: missing endpoint or credentials are EINVAL naming what is missing") {
  std::string saved = env("AWS_ENDPOINT_URL");
  ::unsetenv("AWS_ENDPOINT_URL");
  auto r = open_blobber("s3://b/p");
  ::setenv("AWS_ENDPOINT_URL", saved.c_str(), 1);
  CHECK(r.err() == EINVAL);
  CHECK(contains(r.status().what(), "AWS_ENDPOINT_URL"));
  CHECK(contains(r.status().what(), "s3://b/p"));

  std::string ak = env("AWS_ACCESS_KEY_ID");
  ::unsetenv("AWS_ACCESS_KEY_ID");
  auto r2 = open_blobber("s3://b");
  ::setenv("AWS_ACCESS_KEY_ID", ak.c_str(), 1);
  CHECK(r2.err() == EINVAL);
  CHECK(contains(r2.status().what(), "AWS_ACCESS_KEY_ID"));

  BlobberOptions o;
  o.endpoint = "ftp://x";
  CHECK(open_blobber("s3://b", o).err() == EINVAL);
}

TEST_CASE("retries: transient answers are retried with the same body, others are final") {
  SUBCASE("503 SlowDown twice, then the PUT goes through with the whole body") {
    FakeS3 f([](const SeenRequest&, int nth) {
      return nth <= 2 ? FakeS3::status(503, "SlowDown") : FakeS3::status(200, "", "", "ETag: \"x\"\r\n");
    });
    BlobberOptions o = fake_opts(f, 4);
    o.session_token = "TOKEN123";
    auto b = open_blobber("s3://bk/pre", o);
    REQUIRE(b.is_ok());
    std::string data = random_bytes(300000, 9);
    REQUIRE(b.value()->put_bytes("obj", data).is_ok());
    auto seen = f.seen();
    REQUIRE(seen.size() == 3);
    CHECK(f.connections == 1);  // one kept-alive connection for all three
    for (auto& s : seen) {
      CHECK(s.method == "PUT");
      CHECK(s.target == "/bk/pre/obj");
      CHECK(s.body == data);  // re-sent from the start every time
      CHECK(s.headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD");
      CHECK(contains(s.headers["authorization"], "AWS4-HMAC-SHA256 Credential=AK/"));
      CHECK(s.headers.count("content-md5") == 1);
      CHECK(s.headers["x-amz-security-token"] == "TOKEN123");
      CHECK(contains(s.headers["authorization"], "x-amz-security-token"));  // signed
    }
  }
  SUBCASE("retries run out: the last answer is the error") {
    FakeS3 f([](const SeenRequest&, int) { return FakeS3::status(500, "InternalError"); });
    auto b = open_blobber("s3://bk", fake_opts(f, 1));
    REQUIRE(b.is_ok());
    auto h = b.value()->get_bytes("k");
    CHECK(h.err() == EIO);
    CHECK(contains(h.status().what(), "HTTP 500 InternalError"));
    CHECK(contains(h.status().what(), "s3://bk"));
    CHECK(f.seen().size() == 2);
  }
  SUBCASE("a server that does not answer in time: ETIMEDOUT once retries run out") {
    FakeS3 f([](const SeenRequest&, int) {
      std::this_thread::sleep_for(std::chrono::milliseconds(400));
      return FakeS3::status(200);
    });
    BlobberOptions o = fake_opts(f, 1);
    o.request_timeout_ms = 150;
    auto b = open_blobber("s3://bk", o);
    REQUIRE(b.is_ok());
    auto h = b.value()->head("k");
    CHECK(h.err() == ETIMEDOUT);
    CHECK(contains(h.status().what(), "head k"));
    CHECK(f.seen().size() == 2);
  }
  SUBCASE("403 is final at once") {
    FakeS3 f([](const SeenRequest&, int) { return FakeS3::status(403, "AccessDenied"); });
    auto b = open_blobber("s3://bk", fake_opts(f, 4));
    REQUIRE(b.is_ok());
    CHECK(b.value()->del("k").err() == EACCES);
    CHECK(f.seen().size() == 1);
  }
  SUBCASE("a get cut off mid-body resumes at the next byte, pinned to the same ETag") {
    std::string data = random_bytes(100000, 10);
    FakeS3 f([&](const SeenRequest& rq, int nth) {
      if (nth == 1) {  // promise everything, send 40000 bytes, hang up
        return Reply{"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nETag: \"v1\"\r\n\r\n" + data.substr(0, 40000),
                     true};
      }
      auto r = rq.headers.find("range");
      std::string range = r == rq.headers.end() ? "" : r->second;
      size_t from = std::stoul(range.substr(6));
      std::string part = data.substr(from);
      return Reply{"HTTP/1.1 206 Partial\r\nContent-Length: " + std::to_string(part.size()) +
                       "\r\nETag: \"v1\"\r\n\r\n" + part,
                   false};
    });
    auto b = open_blobber("s3://bk", fake_opts(f, 3));
    REQUIRE(b.is_ok());
    auto g = b.value()->get_bytes("k");
    REQUIRE_MESSAGE(g.is_ok(), g.status().message());
    CHECK(g.value() == data);
    auto seen = f.seen();
    REQUIRE(seen.size() == 2);
    CHECK(seen[0].headers.count("range") == 0);
    CHECK(seen[1].headers["range"] == "bytes=40000-");
    CHECK(seen[1].headers["if-match"] == "\"v1\"");
  }
  SUBCASE("multipart: a failed part aborts the upload") {
    FakeS3 f([](const SeenRequest& rq, int) {
      if (rq.method == "POST" && contains(rq.target, "?uploads="))
        return FakeS3::status(200, "", "<InitiateMultipartUploadResult><UploadId>u~1/x</UploadId>"
                                       "</InitiateMultipartUploadResult>");
      if (rq.method == "PUT" && contains(rq.target, "partNumber=1&"))
        return FakeS3::status(200, "", "", "ETag: \"p1\"\r\n");
      if (rq.method == "PUT") return FakeS3::status(400, "InvalidPart");
      return FakeS3::status(204);
    });
    BlobberOptions o = fake_opts(f, 2);
    o.multipart_threshold = 1 << 20;
    o.part_size = 5 << 20;
    auto b = open_blobber("s3://bk", o);
    REQUIRE(b.is_ok());
    std::string data(11 << 20, 'd');
    Status st = b.value()->put_bytes("big", data);
    CHECK(st.err() == EINVAL);
    CHECK(contains(st.what(), "part 2"));
    auto seen = f.seen();
    REQUIRE(seen.size() == 4);
    CHECK(seen[1].target == "/bk/big?partNumber=1&uploadId=u~1%2Fx");
    CHECK(seen[1].body.size() == (5u << 20));
    CHECK(seen[3].method == "DELETE");
    CHECK(seen[3].target == "/bk/big?uploadId=u~1%2Fx");
  }
}

TEST_CASE("cancel: a request to a server that does not answer ends with ECANCELED, unretried; later ones are not sent") {
  std::atomic<bool> release{false};
  FakeS3 f([&](const SeenRequest&, int) {
    for (int i = 0; i < 600 && !release; i++) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return FakeS3::status(200);
  });
  BlobberOptions o = fake_opts(f, 4);
  o.request_timeout_ms = 120000;  // the default: without cancel() the get would wait for it, then retry
  auto b = open_blobber("s3://bk", o);
  REQUIRE(b.is_ok());
  Result<std::string> got = Status::error(EINVAL, "not run");
  std::thread getter([&] { got = b.value()->get_bytes("k"); });
  for (int i = 0; i < 200 && f.seen().empty(); i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(f.seen().size() == 1);  // the request is in flight, unanswered
  b.value()->cancel();
  getter.join();
  CHECK(got.err() == ECANCELED);
  CHECK(contains(got.status().what(), "s3://bk: get k: cancelled"));
  CHECK(b.value()->put_bytes("k2", "x").err() == ECANCELED);
  CHECK(b.value()->probe().err() == ECANCELED);
  release = true;
  CHECK(f.seen().size() == 1);  // neither a retry nor the later calls reached the server
}

TEST_CASE("put_new: If-None-Match: * against the real RGW; racing creators, exactly one wins") {
  auto b = open(fresh_prefix());
  tcfs::blob::testing::check_put_new_semantics(*b, "n/r");
  tcfs::blob::testing::check_put_new_race(*b, "n/r");
}
