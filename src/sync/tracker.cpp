// sync/tracker.cpp — change marks (tracker.h).
#include "sync/tracker.h"

#include <algorithm>

namespace tcfs::sync {

void Marks::merge(Marks&& o) {
  data.merge(o.data);
  attr.merge(o.attr);
  names.merge(o.names);
  bytes += o.bytes;
}

void Tracker::touched() {
  if (m_.empty()) oldest_ = std::chrono::steady_clock::now();
}

void Tracker::data(const ObjRef& o, uint64_t bytes) {
  MutexLock g(mu_);
  touched();
  m_.data.insert(o);
  m_.bytes += bytes;
}

void Tracker::bytes(uint64_t n) {
  MutexLock g(mu_);
  m_.bytes += n;
}

void Tracker::attr(const ObjRef& o) {
  MutexLock g(mu_);
  touched();
  m_.attr.insert(o);
}

void Tracker::name(const ObjRef& parent, std::string_view name) {
  MutexLock g(mu_);
  touched();
  m_.names.emplace(parent, std::string(name));
  m_.attr.insert(parent);
}

Marks Tracker::take() {
  MutexLock g(mu_);
  Marks out = std::move(m_);
  out.since = oldest_;
  m_ = Marks{};
  return out;
}

void Tracker::put_back(Marks m) {
  if (m.empty()) return;
  MutexLock g(mu_);
  auto since = m.since;
  bool was_empty = m_.empty();
  m_.merge(std::move(m));
  oldest_ = was_empty ? since : std::min(oldest_, since);
}

size_t Tracker::pending() const {
  MutexLock g(mu_);
  return m_.size();
}

size_t Tracker::dirty_files() const {
  MutexLock g(mu_);
  return m_.data.size();
}

uint64_t Tracker::dirty_bytes() const {
  MutexLock g(mu_);
  return m_.bytes;
}

bool Tracker::marked(const ObjRef& o) const {
  MutexLock g(mu_);
  return m_.data.count(o) || m_.attr.count(o);
}

std::chrono::steady_clock::time_point Tracker::oldest() const {
  MutexLock g(mu_);
  return m_.empty() ? std::chrono::steady_clock::time_point{} : oldest_;
}

}  // namespace tcfs::sync
