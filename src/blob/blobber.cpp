// blob/blobber.cpp — key rules, conveniences, the fault seam and URL
// dispatch shared by every blobber backend (blobber.h, backend.h).
#include "blob/blobber.h"

#include <algorithm>
#include <cstring>

#include "blob/backend.h"
#include "util/fault.h"

namespace tcfs::blob {

Status check_key(const std::string& key) {
  auto bad = [&](const char* why) { return Status::error(EINVAL, "object key \"" + key + "\": " + why); };
  if (key.empty()) return bad("empty");
  if (key.size() > 512) return bad("longer than 512 bytes");
  if (key.front() == '/') return bad("starts with '/'");
  for (char c : key) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-' || c == '/';
    if (!ok) return bad("has a character outside [A-Za-z0-9._/-]");
  }
  size_t start = 0;
  while (start <= key.size()) {
    size_t end = key.find('/', start);
    if (end == std::string::npos) end = key.size();
    std::string_view comp(key.data() + start, end - start);
    if (comp.empty() || comp == "." || comp == "..") return bad("has an empty, \".\" or \"..\" component");
    start = end + 1;
  }
  return {};
}

Status injected(const char* op, int index, const std::string& url, const std::string& key) {
  std::string site = std::string("blob.") + op;
  int err = fault::check(site.c_str());
  if (err == 0 && index >= 0) {
    site = "blob" + std::to_string(index) + "." + op;
    err = fault::check(site.c_str());
  }
  if (err == 0) return {};
  return Status::error(err, url + ": " + op + " " + key + " (injected at " + site + ")");
}

Status Blobber::put_bytes(const std::string& key, std::string_view data, Durability d) {
  size_t pos = 0;
  return put(
      key, data.size(),
      [&](char* buf, size_t n) -> Result<size_t> {
        size_t take = std::min(n, data.size() - pos);
        std::memcpy(buf, data.data() + pos, take);
        pos += take;
        return take;
      },
      d);
}

namespace {
constexpr uint64_t kReserveMax = 64ull << 20;  // a range asked for is reserved up to this
}  // namespace

Status existing_is(Blobber& b, const std::string& key, std::string_view data) {
  auto got = b.get_bytes(key);
  if (got && *got == data) return {};  // our own create, retried after a lost reply
  if (!got && got.err() != ENOENT) return got.status();
  return Status::error(EEXIST, b.url() + ": create " + key + ": the object exists (created by another writer)");
}

Result<std::string> Blobber::get_bytes(const std::string& key, uint64_t off, uint64_t len) {
  std::string out;
  if (len != kToEnd) out.reserve(static_cast<size_t>(std::min<uint64_t>(len, kReserveMax)));  // no regrowth copies
  TCFS_TRY(get(key, off, len, [&](std::string_view chunk) {
    out.append(chunk);
    return Status{};
  }));
  return out;
}

Result<std::vector<ObjectInfo>> Blobber::list_all(const std::string& prefix, const std::string& after) {
  std::vector<ObjectInfo> all;
  std::string token;
  bool first = true;
  do {
    auto page = first && !after.empty() ? list_after(prefix, after, 1000) : list(prefix, token, 1000);
    first = false;
    if (!page) return page.status();
    for (auto& it : page->items) all.push_back(std::move(it));
    token = std::move(page->next);
  } while (!token.empty());
  return all;
}

Result<std::unique_ptr<Blobber>> open_blobber(const std::string& url, const BlobberOptions& opt) {
  auto starts = [&](const char* p) { return url.rfind(p, 0) == 0; };
  if (starts("dir://")) return open_dir(url.substr(6), opt);
  if (starts("dir:")) return open_dir(url.substr(4), opt);
  if (starts("/")) return open_dir(url, opt);
  if (starts("s3://")) {
    std::string rest = url.substr(5);
    while (!rest.empty() && rest.back() == '/') rest.pop_back();
    auto slash = rest.find('/');
    std::string bucket = rest.substr(0, slash);
    std::string prefix = slash == std::string::npos ? "" : rest.substr(slash + 1);
    if (bucket.empty()) return Status::error(EINVAL, "blobber " + url + ": no bucket name");
    if (!prefix.empty()) TCFS_TRY(check_key(prefix));
    return open_s3(bucket, prefix, opt);
  }
  return Status::error(EINVAL, "blobber " + url + ": not a dir:///PATH or s3://BUCKET[/PREFIX] URL");
}

}  // namespace tcfs::blob
