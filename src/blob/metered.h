// blob/metered.h — a Blobber decorator that times and counts every call in
// the process's Prometheus registry (util/metrics.h).
//
// Contract:
//  1. MeteredBlobber owns a Blobber and forwards every virtual of Blobber
//     to it unchanged (same arguments, same result, same url()); a
//     backend's own list_after() and get_bytes() are kept.
//  2. Every call but url() is observed in the histogram
//     tcfs_blobber_request_duration_seconds{blobber, op} (blobber: the
//     index in decimal; op: put, put_new, flush, get, head, del, list,
//     probe, get_bytes; list_after counts as list) and, when it fails,
//     counted in tcfs_blobber_errors_total{blobber, op}. ENOENT from get,
//     head, get_bytes and del, and EEXIST from put_new (the fence), are
//     answers, not failures: not counted.
//  3. The labelled children are made once, in the constructor (metrics.h
//     2); wrappers with one index share them.
//
// Thread-safety: as Blobber: every member may be called from many threads
// at once (the wrapper's only state is its metric children, which are).
#pragma once

#include <prometheus/counter.h>
#include <prometheus/histogram.h>

#include <array>
#include <memory>

#include "blob/blobber.h"

namespace tcfs::blob {

class MeteredBlobber : public Blobber {
 public:
  MeteredBlobber(std::unique_ptr<Blobber> inner, unsigned index);

  const std::string& url() const override { return inner_->url(); }
  Status put(const std::string& key, uint64_t size, const Source& src, Durability d = Durability::now) override;
  Status put_new(const std::string& key, std::string_view data) override;
  Status flush() override;
  Status get(const std::string& key, uint64_t off, uint64_t len, const Sink& sink) override;
  Result<ObjectInfo> head(const std::string& key) override;
  Status del(const std::string& key) override;
  Result<ListPage> list(const std::string& prefix, const std::string& token, size_t max) override;
  Status probe() override;
  void cancel() override { inner_->cancel(); }
  Result<ListPage> list_after(const std::string& prefix, const std::string& after, size_t max) override;
  Result<std::string> get_bytes(const std::string& key, uint64_t off = 0, uint64_t len = kToEnd) override;

  enum Op { kPut, kPutNew, kFlush, kGet, kHead, kDel, kList, kProbe, kGetBytes, kOps };

 private:
  struct Meters {
    prometheus::Histogram* latency = nullptr;
    prometheus::Counter* errors = nullptr;
  };
  // Runs f() (a call of inner_), observing its time and counting its failure.
  template <typename F>
  auto timed(Op op, F&& f);

  std::unique_ptr<Blobber> inner_;
  std::array<Meters, kOps> meters_;
};

// inner wrapped in a MeteredBlobber labelled blobber="<index>".
std::unique_ptr<Blobber> metered(std::unique_ptr<Blobber> inner, unsigned index);

}  // namespace tcfs::blob
