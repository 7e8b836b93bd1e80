// control/op_codec.h — one operation (tcfs::Op, compound.h) <-> a JSON map:
// the single field-level decoder shared by the wire protocol (wire.h,
// MessagePack maps of protocol.h) and tcfs-batch's NDJSON reader
// (tools/tcfs-batch/ndjson.cpp), and the wire's encoder.
//
// Contract:
//  * decode_op() reads "op" (the kind, op_kind_name), checks that every
//    key is "op", "path" or one the kind takes (OpSyntax::keys_of), then
//    every field the kind takes, and returns the Op or an error naming the
//    field (EINVAL unless said otherwise: E2BIG for an xattr value over
//    XATTR_SIZE_MAX, ERANGE for a name over XATTR_NAME_MAX, ENAMETOOLONG
//    for a symlink target of PATH_MAX bytes or more). Nothing of a bad op
//    is returned.
//  * Fields both sources spell the same way (flags, offsets, lengths,
//    sizes, uid, gid, times, xattr name, symlink target) are decoded here
//    alone; an OpSyntax decodes those each source spells its own way
//    (paths, modes, data and its source, xattr value and flags, rename
//    flags). Fields is the typed, checked access both use (and the control
//    messages' decoders, control/messages.h).
//  * FieldStyle changes how messages name things ("op 3: field \"mode\"
//    ..." on the wire, "\"mode\" ..." in NDJSON) and, for JSON a person
//    writes (text_style), also takes times as seconds and refuses a NUL in
//    a name at once.
//  * encode_op() writes only the fields of the op's kind, defaults left
//    out; decode_op() with a WireSyntax gives the same Op back (with the
//    attached bytes encode_op collected, when it was given somewhere to
//    collect them).
//
// Thread-safety: stateless functions; a Fields or an OpSyntax is used by
// one thread at a time.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tcfs/compound.h"
#include "tcfs/protocol.h"
#include "tcfs/status.h"

namespace tcfs::control {

using Json = nlohmann::json;

constexpr size_t kOpKinds = static_cast<size_t>(OpKind::Remove) + 1;  // OpKind's values: 0..kOpKinds-1

// Thrown by Fields::fail / Fields::bad while a map is decoded; decode_op()
// (and messages.cpp's decoders) turn it into their error Status.
struct FieldError {
  int err;
  std::string msg;
};

// How messages name the op (or control message) and its fields; the
// last two also widen (seconds) or narrow (NUL) what is accepted.
struct FieldStyle {
  std::string where;              // prefix of every message ("op 3"), or "" for none
  const char* key_word = "field";  // "unknown field \"x\"", "field \"x\" does not apply to mkdir"
  bool bare_names = false;        // "\"x\" must be ..." instead of "field \"x\" must be ..."
  bool range_must_be_in = false;  // "must be in 0..9" instead of "is out of range (0..9)"
  bool nul_checked = false;       // str() refuses a NUL in a name of a file, target or xattr
  bool time_seconds = false;      // a time may also be a number of seconds (1.5)
};

// Typed, checked access to one JSON map (an op, or a control message,
// control/messages.h); every error names the field.
class Fields {
 public:
  Fields(const Json& j, FieldStyle style) : j_(j), s_(std::move(style)) {}

  const FieldStyle& style() const { return s_; }
  // "field \"k\"" or "\"k\"" (FieldStyle::bare_names).
  std::string name(const std::string& k) const;
  [[noreturn]] void bad(int err, const std::string& msg) const;  // prefixed with where
  [[noreturn]] void fail(int err, const std::string& k, const std::string& why) const {  // name(k) + " " + why
    bad(err, name(k) + " " + why);
  }
  const Json* get(const char* k) const {
    auto it = j_.find(k);
    return it == j_.end() ? nullptr : &*it;
  }
  bool has(const char* k) const { return get(k) != nullptr; }
  const Json& json() const { return j_; }

  std::string str(const char* k, bool required) const;
  bool flag(const char* k) const;
  // An integer in lo..hi, dflt when absent.
  int64_t integer(const char* k, int64_t dflt, int64_t lo, int64_t hi) const;
  // A non-negative integer (any up to UINT64_MAX), dflt when absent.
  uint64_t count(const char* k, uint64_t dflt) const;
  // "now" or {"sec":S,"nsec":N} (or seconds, FieldStyle::time_seconds);
  // nullopt when absent.
  std::optional<Timestamp> time(const char* k) const;

 private:
  const Json& j_;
  FieldStyle s_;
};

// What one source spells its own way. Methods throw through Fields.
class OpSyntax {
 public:
  virtual ~OpSyntax() = default;
  // The keys kind k takes besides "op" and "path" (aliases included); a
  // key of another kind "does not apply", any other is unknown.
  virtual const std::vector<std::string>& keys_of(OpKind k) const = 0;
  // "path" (and the second path of copy, link, rename: `second` true).
  virtual std::string path(const Fields& f, bool second) const = 0;
  // A mode given for mkdir, create or setattr; nullopt when absent.
  virtual std::optional<uint32_t> mode(const Fields& f) const = 0;
  // The mode mkdir (k) or create is made with when `given` or not.
  virtual uint32_t new_mode(OpKind k, std::optional<uint32_t> given) const = 0;
  // A write's data and where it comes from (inline data, a descriptor, a
  // file), with what excludes what; offset, append and truncate are set.
  virtual void write_source(const Fields& f, Op& op) const = 0;
  // setxattr's value bytes ("" when absent).
  virtual std::string xattr_value(const Fields& f) const = 0;
  virtual int32_t xattr_flags(const Fields& f) const = 0;
  virtual uint32_t rename_flags(const Fields& f) const = 0;
};

// The wire protocol's syntax (protocol.h); nfds: descriptors that came
// with the request (a larger fd_index is EBADF).
class WireSyntax final : public OpSyntax {
 public:
  // attached: the bytes the frame carries after its map (protocol.h), which
  // "data" and "value" may refer to.
  explicit WireSyntax(size_t nfds, std::string_view attached = {}) : nfds_(nfds), attached_(attached) {}
  const std::vector<std::string>& keys_of(OpKind k) const override;
  std::string path(const Fields& f, bool second) const override;
  std::optional<uint32_t> mode(const Fields& f) const override;
  uint32_t new_mode(OpKind k, std::optional<uint32_t> given) const override;
  void write_source(const Fields& f, Op& op) const override;
  std::string xattr_value(const Fields& f) const override;
  int32_t xattr_flags(const Fields& f) const override;
  uint32_t rename_flags(const Fields& f) const override;

 private:
  size_t nfds_;
  std::string_view attached_;
};
FieldStyle wire_style(size_t index);  // "op <index>: field \"x\" ..."
// JSON a person writes (tcfs-batch's NDJSON): no prefix (the caller adds
// the line), "\"x\" must be in 0..9", "unknown key", NUL refused in names,
// times also as seconds.
FieldStyle text_style();

// Path rules of compound.h: relative, no empty / "." / ".." components, no
// NUL, each name <= NAME_MAX and the whole < PATH_MAX.
Status check_path(const std::string& p);

// The one op decoder. j must be a map (callers word that error).
Result<Op> decode_op(const Json& j, const OpSyntax& syntax, const FieldStyle& style);
// The bytes a request attaches after its map (protocol.h "attached"), by
// reference: they stay the caller's (the ops') until the frame is sent.
struct Attached {
  std::vector<std::string_view> parts;
  uint64_t size = 0;  // of all parts
};
// attached: when given, "data" and "value" of protocol::kMinAttached bytes
// or more are attached there and the map refers to them (protocol.h).
Json encode_op(const Op& o, Attached* attached = nullptr);

}  // namespace tcfs::control
