// control/quota.cpp — per-user accounting of the control server (quota.h).
#include "control/quota.h"

#include <algorithm>
#include <string>

namespace tcfs::control {
namespace {

std::string bytes_text(uint64_t b) {
  if (b >= (1u << 20) && b % (1u << 20) == 0) return std::to_string(b >> 20) + " MiB";
  if (b >= (1u << 10) && b % (1u << 10) == 0) return std::to_string(b >> 10) + " KiB";
  return std::to_string(b) + " bytes";
}

std::string who(uid_t uid) { return "uid " + std::to_string(uid); }

}  // namespace

QuotaSettings quota_settings(const Limits& lim, uint64_t max_conns) {
  QuotaSettings s;
  s.max_conns = std::max<uint64_t>(1, max_conns);
  // Q1: root keeps at least one connection; other users get at least one when there are two.
  s.root_conns = std::clamp<uint64_t>(lim.root_conns, 1, std::max<uint64_t>(1, s.max_conns - 1));
  s.user_conns = std::max<uint64_t>(1, lim.user_conns);
  s.user_bytes = lim.user_bytes ? lim.user_bytes : lim.max_frame_bytes;
  s.users_bytes = std::max(lim.users_bytes, s.user_bytes);
  s.user_fds = std::max<uint64_t>(1, lim.user_fds);
  return s;
}

Status Quota::admit(uid_t uid) {
  MutexLock g(mu_);
  auto root = users_.find(0);
  uint64_t all = others_.conns + (root == users_.end() ? 0 : root->second.conns);
  if (all >= s_.max_conns)
    return Status::error(EBUSY, "too many connections to the control socket (limit " + std::to_string(s_.max_conns) +
                                    ")");
  if (uid != 0) {
    Usage& u = users_[uid];
    if (u.conns >= s_.user_conns) {  // Q1
      if (u.conns == 0 && u.bytes == 0 && u.fds == 0) users_.erase(uid);
      return Status::error(EBUSY, who(uid) + " already has " + std::to_string(u.conns) +
                                      " connections to the control socket (limit per user: " +
                                      std::to_string(s_.user_conns) + ", tcfs -o ctl_user_conns=N)");
    }
    if (others_.conns >= s_.max_conns - s_.root_conns) {  // Q1: the reserve is root's
      if (u.conns == 0 && u.bytes == 0 && u.fds == 0) users_.erase(uid);
      return Status::error(EBUSY, "too many connections to the control socket: all " +
                                      std::to_string(s_.max_conns - s_.root_conns) +
                                      " open to users other than root are in use (" + std::to_string(s_.root_conns) +
                                      " more are kept for root)");
    }
    ++u.conns;
    ++others_.conns;
    return {};
  }
  ++users_[0].conns;
  return {};
}

void Quota::leave(uid_t uid) {
  MutexLock g(mu_);
  auto it = users_.find(uid);
  if (it == users_.end() || it->second.conns == 0) return;  // Q4: never below zero
  --it->second.conns;
  if (uid != 0) --others_.conns;
  if (it->second.conns == 0 && it->second.bytes == 0 && it->second.fds == 0) users_.erase(it);
}

Status Quota::take(uid_t uid, uint64_t bytes, uint64_t fds) {
  MutexLock g(mu_);
  Usage& u = users_[uid];
  if (uid != 0) {
    Status refused;
    if (bytes && u.bytes + bytes > s_.user_bytes)  // Q2
      refused = Status::error(ENOBUFS, who(uid) + " has " + bytes_text(u.bytes) +
                                           " of requests in flight on the control socket and needs " +
                                           bytes_text(bytes) + " more (limit per user: " +
                                           bytes_text(s_.user_bytes) + ", tcfs -o ctl_user_mem=SIZE)");
    else if (bytes && others_.bytes + bytes > s_.users_bytes)  // Q2
      refused = Status::error(ENOBUFS, "users other than root have " + bytes_text(others_.bytes) +
                                           " of requests in flight on the control socket (limit for all of them: " +
                                           bytes_text(s_.users_bytes) + "); " + who(uid) + " needs " +
                                           bytes_text(bytes) + " more");
    else if (fds && u.fds + fds > s_.user_fds)  // Q3
      refused = Status::error(ETOOMANYREFS, who(uid) + " has " + std::to_string(u.fds) +
                                                " descriptors passed to the control socket in flight (limit per user: " +
                                                std::to_string(s_.user_fds) + ")");
    if (!refused) {
      if (u.conns == 0 && u.bytes == 0 && u.fds == 0) users_.erase(uid);
      return refused;
    }
    others_.bytes += bytes;
    others_.fds += fds;
  }
  u.bytes += bytes;
  u.fds += fds;
  return {};
}

void Quota::give_back(uid_t uid, uint64_t bytes, uint64_t fds) {
  if (bytes == 0 && fds == 0) return;
  MutexLock g(mu_);
  auto it = users_.find(uid);
  if (it == users_.end()) return;
  Usage& u = it->second;
  bytes = std::min(bytes, u.bytes);  // Q4: never below zero
  fds = std::min(fds, u.fds);
  u.bytes -= bytes;
  u.fds -= fds;
  if (uid != 0) {
    others_.bytes -= bytes;
    others_.fds -= fds;
  }
  if (u.conns == 0 && u.bytes == 0 && u.fds == 0) users_.erase(it);
}

Usage Quota::of(uid_t uid) const {
  MutexLock g(mu_);
  auto it = users_.find(uid);
  return it == users_.end() ? Usage{} : it->second;
}

Usage Quota::others() const {
  MutexLock g(mu_);
  return others_;
}

Status Charge::charge(uint64_t bytes, uint64_t fds) {
  TCFS_TRY(q_.take(uid_, bytes, fds));
  bytes_ += bytes;
  fds_ += fds;
  return {};
}

}  // namespace tcfs::control
