// tests/fuzz/mem_blobber.h — an in-memory blobber for the fuzz targets: the
// ObjectStore and the stream reader run over it unchanged, so shard headers
// and stream objects are decoded by the real code from bytes the fuzzer
// chose, with no disk or network in the loop.
#pragma once

#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "blob/blobber.h"
#include "blob/objects.h"

namespace tcfs::fuzz {

class MemBlobber : public blob::Blobber {
 public:
  explicit MemBlobber(std::string url) : url_(std::move(url)) {}
  const std::string& url() const override { return url_; }

  Status put(const std::string& key, uint64_t size, const blob::Source& src, blob::Durability) override {
    std::string data(size, '\0');
    for (uint64_t got = 0; got < size;) {
      auto n = src(data.data() + got, size - got);
      if (!n) return n.status();
      if (*n == 0) return Status::error(EIO, url_ + ": put " + key + ": source ended early");
      got += *n;
    }
    std::lock_guard<std::mutex> g(mu_);
    objects_[key] = std::move(data);
    return {};
  }
  // Create-only (blobber.h put_new): EEXIST unless the object holds exactly data.
  Status put_new(const std::string& key, std::string_view data) override {
    std::lock_guard<std::mutex> g(mu_);
    auto [it, fresh] = objects_.emplace(key, std::string(data));
    if (fresh || it->second == data) return {};
    return Status::error(EEXIST, url_ + ": create " + key + ": the object exists");
  }
  Status flush() override { return {}; }
  Status get(const std::string& key, uint64_t off, uint64_t len, const blob::Sink& sink) override {
    std::string copy;
    {
      std::lock_guard<std::mutex> g(mu_);
      auto it = objects_.find(key);
      if (it == objects_.end()) return Status::error(ENOENT, url_ + ": get " + key + ": no such object");
      if (off < it->second.size()) copy = it->second.substr(off, len == blob::kToEnd ? std::string::npos : len);
    }
    return copy.empty() ? Status{} : sink(copy);
  }
  Result<blob::ObjectInfo> head(const std::string& key) override {
    std::lock_guard<std::mutex> g(mu_);
    auto it = objects_.find(key);
    if (it == objects_.end()) return Status::error(ENOENT, url_ + ": head " + key + ": no such object");
    return blob::ObjectInfo{key, it->second.size()};
  }
  Status del(const std::string& key) override {
    std::lock_guard<std::mutex> g(mu_);
    objects_.erase(key);
    return {};
  }
  Result<blob::ListPage> list(const std::string& prefix, const std::string&, size_t) override {
    std::lock_guard<std::mutex> g(mu_);
    blob::ListPage page;
    for (auto it = objects_.lower_bound(prefix); it != objects_.end() && it->first.rfind(prefix, 0) == 0; ++it)
      page.items.push_back({it->first, it->second.size()});
    return page;
  }
  Status probe() override { return {}; }

  // Sets an object's bytes directly (a shard as a hostile blobber serves it).
  void set(const std::string& key, std::string bytes) {
    std::lock_guard<std::mutex> g(mu_);
    objects_[key] = std::move(bytes);
  }
  std::string* find(const std::string& key) {
    auto it = objects_.find(key);
    return it == objects_.end() ? nullptr : &it->second;
  }

 private:
  std::string url_;
  std::mutex mu_;
  std::map<std::string, std::string> objects_;
};

// An ObjectStore of k+m in-memory blobbers; *mem receives their addresses.
inline std::unique_ptr<blob::ObjectStore> mem_store(unsigned k, unsigned m, std::vector<MemBlobber*>* mem,
                                                     std::shared_ptr<const blob::Cipher> cipher = nullptr) {
  std::vector<std::unique_ptr<blob::Blobber>> bl;
  for (unsigned i = 0; i < k + m; i++) {
    auto b = std::make_unique<MemBlobber>("mem://" + std::to_string(i));
    if (mem) mem->push_back(b.get());
    bl.push_back(std::move(b));
  }
  auto os = blob::ObjectStore::make(std::move(bl), k, m, std::move(cipher));
  if (!os) abort();
  return std::move(*os);
}

}  // namespace tcfs::fuzz
