// sync/msgpack.h — MessagePack read back from the blobbers (stream end
// objects, namespace records), with a bound on nesting.
//
// Contract: read_msgpack() returns the one MessagePack value that bytes
// hold, or a discarded value (is_discarded()) when they hold anything else
// — malformed, trailing bytes, or containers nested deeper than
// kMaxMsgpackDepth. nlohmann's reader recurses once per nesting level, so
// without the bound a record of a few MB of nested arrays from a damaged or
// hostile blobber would overflow the stack; the bound stops the parse (its
// SAX interface stops at the first container too deep) before it recurses.
//
// Thread-safety: a pure function.
#pragma once

#include <nlohmann/json.hpp>

#include <string_view>

namespace tcfs::sync {

constexpr unsigned kMaxMsgpackDepth = 32;  // what tcfs writes nests 3 deep

namespace detail {
class DepthBoundDom : public nlohmann::detail::json_sax_dom_parser<nlohmann::json> {
 public:
  explicit DepthBoundDom(nlohmann::json& root) : json_sax_dom_parser(root, false) {}
  bool start_object(std::size_t n) { return ++depth_ <= kMaxMsgpackDepth && json_sax_dom_parser::start_object(n); }
  bool end_object() {
    --depth_;
    return json_sax_dom_parser::end_object();
  }
  bool start_array(std::size_t n) { return ++depth_ <= kMaxMsgpackDepth && json_sax_dom_parser::start_array(n); }
  bool end_array() {
    --depth_;
    return json_sax_dom_parser::end_array();
  }

 private:
  unsigned depth_ = 0;
};
}  // namespace detail

inline nlohmann::json read_msgpack(std::string_view bytes) {
  nlohmann::json j;
  detail::DepthBoundDom dom(j);
  bool ok = nlohmann::json::sax_parse(bytes.begin(), bytes.end(), &dom, nlohmann::json::input_format_t::msgpack, true);
  return ok && !dom.is_errored() ? j : nlohmann::json(nlohmann::json::value_t::discarded);
}

}  // namespace tcfs::sync
