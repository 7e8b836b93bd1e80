// control/wire.cpp — protocol v1 codec: compounds, replies, progress
// (one op: op_codec.cpp; hello, sync, status, maintain: messages.cpp;
// framing and the MessagePack structure check: frame.cpp).
#include "control/wire.h"

#include <algorithm>
#include <cstring>
#include <set>

namespace tcfs::control {
namespace {

struct Bad {
  int err;
  std::string msg;
};
[[noreturn]] void bad(int err, std::string msg) { throw Bad{err, std::move(msg)}; }

bool request_flag(const Json& req, const char* k, bool dflt) {
  auto it = req.find(k);
  if (it == req.end()) return dflt;
  if (!it->is_boolean()) bad(EINVAL, std::string("request field \"") + k + "\" must be true or false");
  return it->get<bool>();
}

}  // namespace

uint64_t max_request_items(const Limits& lim) {
  // A request map, its ops array, and per op a map of at most 16 fields
  // (keys and values, a time map counting 5): 64 values per op is ample.
  uint64_t ops = std::min<uint64_t>(lim.max_ops, std::numeric_limits<uint64_t>::max() / 128);
  return 64 + ops * 64;
}

Json encode_compound(const Compound& c, bool progress, Attached* attached, bool columns) {
  Json ops = Json::array();
  for (const auto& o : c.ops) ops.push_back(encode_op(o, attached));
  Json j = {{"v", protocol::kVersion}, {"type", "compound"}, {"txn", c.options.txn},
            {"sync", c.options.sync},  {"progress", progress}, {"ops", std::move(ops)}};
  if (columns) j["results"] = "columns";
  if (attached && attached->size) j["attached"] = attached->size;
  return j;
}

std::string compound_frame(const Compound& c, bool progress) {
  Attached att;
  std::string out = to_bytes(encode_compound(c, progress, &att));
  for (auto p : att.parts) out += p;
  return out;
}

Result<Compound> decode_compound(const Json& req, const Limits& lim, size_t nfds, bool* progress,
                                 std::string_view attached, bool* columns) {
  try {
    if (!req.is_object()) bad(EPROTO, "request is not a map");
    static const std::set<std::string> known = {"v", "type", "txn", "sync", "progress", "ops", "attached", "results"};
    for (auto it = req.begin(); it != req.end(); ++it)
      if (!known.count(it.key())) bad(EINVAL, "unknown request field \"" + it.key() + "\"");
    Compound c;
    c.options.txn = request_flag(req, "txn", true);
    c.options.sync = request_flag(req, "sync", true);
    bool want = request_flag(req, "progress", false);
    if (progress) *progress = want;
    auto form = req.find("results");
    if (form != req.end() && !(form->is_string() && (*form == "maps" || *form == "columns")))
      bad(EINVAL, "request field \"results\" must be \"maps\" or \"columns\"");
    if (columns) *columns = form != req.end() && *form == "columns";
    auto att = req.find("attached");
    if (att != req.end() && !att->is_number_unsigned()) bad(EINVAL, "request field \"attached\" must be a byte count");
    const uint64_t declared = att == req.end() ? 0 : att->get<uint64_t>();
    if (declared != attached.size())
      bad(EPROTO, "the frame attaches " + std::to_string(attached.size()) + " bytes after the request map but \"attached\" says " +
                      std::to_string(declared));
    auto ops = req.find("ops");
    if (ops == req.end() || !ops->is_array()) bad(EINVAL, "request has no \"ops\" array");
    if (ops->size() > lim.max_ops)
      bad(E2BIG, std::to_string(ops->size()) + " operations, more than the limit of " + std::to_string(lim.max_ops));
    if (nfds > lim.max_fds)
      bad(E2BIG, std::to_string(nfds) + " descriptors, more than the limit of " + std::to_string(lim.max_fds));
    uint64_t inline_bytes = 0;
    c.ops.reserve(ops->size());
    const WireSyntax syntax(nfds, attached);
    for (size_t i = 0; i < ops->size(); ++i) {
      const Json& oj = (*ops)[i];
      if (!oj.is_object()) bad(EINVAL, "op " + std::to_string(i) + ": not a map");
      auto op = decode_op(oj, syntax, wire_style(i));
      if (!op) bad(op.err(), op.status().what());
      c.ops.push_back(std::move(*op));
      inline_bytes += c.ops.back().data.size() + c.ops.back().value.size();
      if (inline_bytes > lim.max_inline_bytes)
        bad(E2BIG, "op " + std::to_string(i) + ": inline data exceeds the limit of " +
                       std::to_string(lim.max_inline_bytes) + " bytes per compound");
    }
    return c;
  } catch (const Bad& b) {
    return Status::error(b.err, b.msg);
  } catch (const std::exception& e) {
    return Status::error(EINVAL, std::string("malformed request: ") + e.what());
  }
}

namespace {

// protocol.h: {"ran":N,"bytes":[...],"errno":[[i,E],...]}, when the
// operations that ran are 0..N-1 (as they always are); null otherwise.
Json result_columns(const std::vector<OpResult>& rs) {
  size_t ran = 0;
  while (ran < rs.size() && rs[ran].ran) ++ran;
  Json bytes = Json::array(), errs = Json::array();
  for (size_t i = 0; i < rs.size(); ++i) {
    if (i >= ran && rs[i].ran) return nullptr;
    bytes.push_back(rs[i].bytes);
    if (rs[i].err) errs.push_back({i, rs[i].err});
  }
  return {{"ran", ran}, {"bytes", std::move(bytes)}, {"errno", std::move(errs)}};
}

std::vector<OpResult> results_of_columns(const Json& c) {
  const Json& bytes = c.at("bytes");
  const size_t ran = c.at("ran").get<size_t>();
  if (ran > bytes.size()) throw std::out_of_range("\"ran\" counts more operations than \"bytes\"");
  std::vector<OpResult> rs(bytes.size());
  for (size_t i = 0; i < rs.size(); ++i) rs[i].bytes = bytes[i].get<int64_t>(), rs[i].ran = i < ran;
  for (const auto& e : c.at("errno")) rs.at(e.at(0).get<size_t>()).err = e.at(1).get<int>();
  return rs;
}

}  // namespace

Json encode_reply(const CompoundReply& r, bool columns) {
  Json results = columns ? result_columns(r.results) : Json();
  if (results.is_null()) {
    results = Json::array();
    for (const auto& x : r.results) results.push_back({{"errno", x.err}, {"bytes", x.bytes}, {"ran", x.ran}});
  }
  const char* ename = r.err ? strerrorname_np(r.err) : nullptr;
  return {{"v", protocol::kVersion},
          {"type", "reply"},
          {"outcome", outcome_name(r.outcome)},
          {"failed_op", r.failed_op},
          {"errno", r.err},
          {"error", ename ? ename : ""},
          {"message", r.message},
          {"txn", r.txn_id},
          {"results", std::move(results)}};
}

Result<CompoundReply> decode_reply(const Json& j) {
  try {
    if (frame_type(j) != "reply") return Status::error(EPROTO, "expected a reply frame");
    CompoundReply r;
    std::string o = j.at("outcome");
    if (o == "committed") r.outcome = Outcome::Committed;
    else if (o == "rolled_back") r.outcome = Outcome::RolledBack;
    else if (o == "partial") r.outcome = Outcome::Partial;
    else if (o == "rejected") r.outcome = Outcome::Rejected;
    else return Status::error(EPROTO, "unknown outcome \"" + o + "\"");
    r.failed_op = j.value("failed_op", -1);
    r.err = j.value("errno", 0);
    r.message = j.value("message", "");
    r.txn_id = j.value("txn", uint64_t{0});
    if (auto rs = j.find("results"); rs != j.end() && rs->is_object()) {
      r.results = results_of_columns(*rs);
    } else if (rs != j.end()) {
      for (const auto& x : *rs)
        r.results.push_back({x.at("errno").get<int>(), x.at("bytes").get<int64_t>(), x.at("ran").get<bool>()});
    }
    return r;
  } catch (const std::exception& e) {
    return Status::error(EPROTO, std::string("malformed reply: ") + e.what());
  }
}

Json encode_progress(size_t done, size_t total) {
  return {{"v", protocol::kVersion}, {"type", "progress"}, {"done", done}, {"total", total}};
}

Result<Progress> decode_progress(const Json& j) {
  if (frame_type(j) != "progress") return Status::error(EPROTO, "expected a progress frame");
  FieldStyle s;
  s.where = "malformed progress frame";
  try {
    Fields f(j, s);
    if (!f.has("done") || !f.has("total")) f.bad(EPROTO, "missing " + f.name(f.has("done") ? "total" : "done"));
    return Progress{static_cast<size_t>(f.count("done", 0)), static_cast<size_t>(f.count("total", 0))};
  } catch (const FieldError& e) {
    return Status::error(EPROTO, e.msg);
  }
}

std::string frame_type(const Json& j) {
  if (!j.is_object()) return {};
  auto t = j.find("type");
  return t != j.end() && t->is_string() ? t->get<std::string>() : std::string();
}

Json rejection(int err, const std::string& message) {
  CompoundReply r;
  r.outcome = Outcome::Rejected;
  r.err = err;
  r.message = message;
  return encode_reply(r);
}

}  // namespace tcfs::control
