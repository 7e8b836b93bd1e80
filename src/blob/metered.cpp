// blob/metered.cpp — per-blobber request metrics (metered.h).
#include "blob/metered.h"

#include <cerrno>
#include <chrono>
#include <utility>

#include "util/metrics.h"

namespace tcfs::blob {
namespace {

constexpr const char* kLatency = "tcfs_blobber_request_duration_seconds";
constexpr const char* kLatencyHelp = "Blobber requests by blobber and operation, with their latency.";
constexpr const char* kErrors = "tcfs_blobber_errors_total";
constexpr const char* kErrorsHelp = "Blobber requests that failed, by blobber and operation.";

// Label values, in MeteredBlobber::Op order.
constexpr std::array<const char*, MeteredBlobber::kOps> kOpNames = {
    "put", "put_new", "flush", "get", "head", "del", "list", "probe", "get_bytes"};

// metered.h 2: ENOENT is the answer "absent" for reads and deletes, and
// EEXIST the answer "someone else created it" for a create-only put (the
// fence: objects.h 8): neither is a failure of the blobber.
bool is_answer(MeteredBlobber::Op op, int err) {
  if (err == EEXIST) return op == MeteredBlobber::kPutNew;
  return err == ENOENT && (op == MeteredBlobber::kGet || op == MeteredBlobber::kHead || op == MeteredBlobber::kDel ||
                           op == MeteredBlobber::kGetBytes);
}

}  // namespace

MeteredBlobber::MeteredBlobber(std::unique_ptr<Blobber> inner, unsigned index) : inner_(std::move(inner)) {
  auto& errors = metrics::counter(kErrors, kErrorsHelp);
  for (size_t op = 0; op < kOps; op++) {
    metrics::Labels labels = {{"blobber", std::to_string(index)}, {"op", kOpNames[op]}};
    meters_[op].latency = &metrics::latency(kLatency, kLatencyHelp, labels);
    meters_[op].errors = &errors.Add(labels);
  }
}

template <typename F>
auto MeteredBlobber::timed(Op op, F&& f) {
  auto t0 = std::chrono::steady_clock::now();
  auto r = f();
  const Meters& m = meters_[op];
  m.latency->Observe(metrics::since(t0));
  if (!r.is_ok() && !is_answer(op, r.err())) m.errors->Increment();
  return r;
}

Status MeteredBlobber::put(const std::string& key, uint64_t size, const Source& src, Durability d) {
  return timed(kPut, [&] { return inner_->put(key, size, src, d); });
}

Status MeteredBlobber::put_new(const std::string& key, std::string_view data) {
  return timed(kPutNew, [&] { return inner_->put_new(key, data); });
}

Status MeteredBlobber::flush() {
  return timed(kFlush, [&] { return inner_->flush(); });
}

Status MeteredBlobber::get(const std::string& key, uint64_t off, uint64_t len, const Sink& sink) {
  return timed(kGet, [&] { return inner_->get(key, off, len, sink); });
}

Result<ObjectInfo> MeteredBlobber::head(const std::string& key) {
  return timed(kHead, [&] { return inner_->head(key); });
}

Status MeteredBlobber::del(const std::string& key) {
  return timed(kDel, [&] { return inner_->del(key); });
}

Result<ListPage> MeteredBlobber::list(const std::string& prefix, const std::string& token, size_t max) {
  return timed(kList, [&] { return inner_->list(prefix, token, max); });
}

Status MeteredBlobber::probe() {
  return timed(kProbe, [&] { return inner_->probe(); });
}

Result<ListPage> MeteredBlobber::list_after(const std::string& prefix, const std::string& after, size_t max) {
  return timed(kList, [&] { return inner_->list_after(prefix, after, max); });
}

Result<std::string> MeteredBlobber::get_bytes(const std::string& key, uint64_t off, uint64_t len) {
  return timed(kGetBytes, [&] { return inner_->get_bytes(key, off, len); });
}

std::unique_ptr<Blobber> metered(std::unique_ptr<Blobber> inner, unsigned index) {
  return std::make_unique<MeteredBlobber>(std::move(inner), index);
}

}  // namespace tcfs::blob
