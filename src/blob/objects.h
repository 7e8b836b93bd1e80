// blob/objects.h — named objects stored as K+M erasure-coded shards, one
// shard per blobber.
//
// Design note (numbered; code asserts cite them as "objects.h N"):
//  1. An object NAME (a blobber key, e.g. "b/ab/ab12...") of LEN bytes is
//     cut into K contiguous data shards of S = ceil(LEN / K) bytes (the
//     last zero-padded; S = 0 for an empty object) and M parity shards of S
//     bytes (ec.h). Shard i is stored as key "NAME.i" on blobber
//     (i + rot) mod N, N = K + M, rot = first byte of SHA-256(NAME) mod N,
//     so parity load spreads over the blobbers.
//  2. A shard object is a 64-byte header then the S payload bytes. The
//     header carries a magic, the code (K, M), the shard's index, LEN, S,
//     the payload's CRC32C, 24 bytes of SHA-256(NAME) (a shard copied under
//     the wrong name is caught) and the header's own CRC32C. A shard whose
//     header or payload CRC does not match, or whose size is not 64 + S, is
//     bad: it is never used, and it is rewritten when repair is possible.
//  3. put() succeeds only when all N shards are on their blobbers: a put
//     with any blobber failing is an error (the caller retries later) and
//     the remote image keeps full redundancy. Shards go out in parallel,
//     one thread per blobber. Durability (blobber.h): a put with
//     Durability::now (the default) is durable when it returns OK; one
//     with Durability::batched (blocks, packs and stream chunks) only once
//     a later flush() returns OK. flush() is the barrier: every blobber's
//     flush(), in parallel. Until then a power cut may leave a shard
//     absent, empty, short or garbage; 2 finds it bad, so it is never
//     used, and the writer, which committed nothing naming the object
//     before the barrier, puts it again (the rewrite replaces the bad
//     shard). Repairs (4) are durable puts.
//  4. read() of a range first reads just that range from the data shards
//     that hold it (no decode) and checks it with the caller's verifier (a
//     content hash). If a shard is missing, short, or the verifier refuses,
//     the read falls back to the whole object: every shard read whole and
//     CRC-checked, missing data rebuilt from any K good shards, the
//     verifier asked again. Bad or missing shards found there are
//     rewritten (repair) when their blobber accepts it; a failed rewrite is
//     logged, not fatal. With fewer than K good shards the read fails with
//     EIO naming the object and the blobbers that failed; wrong data is
//     never returned when a verifier is given.
//  5. Memory: a range read holds the range; a whole-object read holds the
//     N shards (N * S bytes, S <= max object / K).
//  6. Listing with blobbers missing. Every object has a shard on every
//     blobber (1), so the listing of any N - M blobbers names every object
//     that can still be read. list() therefore answers while at most M
//     blobbers fail to list (a lost disk, an unreachable endpoint): it logs
//     each one, names it in *unreachable when asked, and lists from the
//     others. With more than M failing it fails, naming them all.
//  7. Encryption (optional, cipher.h). With a Cipher, put() seals the
//     object first (cipher.h 2) and erasure-codes the sealed bytes, so
//     every shard is ciphertext; 1-6 apply to the sealed object, whose
//     length is Cipher::sealed_len(LEN). Callers still speak of plain
//     bytes: read() maps the plain range to the segments that hold it,
//     reads those and the 40-byte seal header through the fast range path
//     (4), opens them and asks the verifier; an open that fails counts as
//     the verifier refusing, so the whole-object fallback (CRC-checked,
//     rebuilt from any K good shards, repaired) follows, and if the sealed
//     object still does not open the read is EIO naming the object (the
//     wrong key; more than M shards damaged; or shards altered with their
//     CRCs recomputed: refused, never returned). A sealed object that
//     fails to open though its shards pass their CRCs is tried with every
//     other set of K good shards (parity read too); the first that opens
//     is the object, and the good shards that disagree with it are bad
//     (so up to M shards altered with their CRCs recomputed are routed
//     around and repaired). scrub, which reads every shard, also marks bad
//     any parity shard that disagrees with the opened object.
//     content_hash() is the Cipher's keyed hash, else SHA-256: everything
//     that names or checks a block by its content uses it (blocks.h 1).
//  8. Markers: small objects created at most once, never erasure-coded
//     (the fence of a round, sync.h). The whole object (sealed with a
//     cipher, 7) is created with a create-only put (blobber.h put_new) on
//     the ARBITER, blobber 0 of the set, whose answer alone decides who
//     holds the name; then it is put as an ordinary, durable copy on every
//     other blobber, so it can be read with the arbiter lost. Copies are
//     only ever written after the arbiter's create succeeded, by its
//     creator. create_marker() is OK when the arbiter holds this content
//     (created now, or a create retried after a lost reply: the opened
//     bytes are compared, as sealing is randomised), EEXIST naming the
//     marker when it holds other content (returned in *holder). A copy
//     that cannot be written is logged, not an error: the arbiter decided.
//     read_marker() asks the arbiter, then each copy; list_markers() lists
//     the arbiter, or with it down the union of the copies. Marker keys
//     carry no ".i" suffix, so list() never names them. Limit: an arbiter
//     replaced by an empty one forgets every marker until the copies are
//     put back on it (a writer could then create a name again).
//
// Thread-safety: every member may be called from many threads at once; an
// ObjectStore holds no mutable state besides its counters (atomics).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "blob/blobber.h"
#include "blob/cipher.h"
#include "blob/ec.h"

namespace tcfs::blob {

constexpr size_t kShardHeader = 64;

// Says whether bytes read for an object are right (e.g. a SHA-256 check).
using Verify = std::function<bool(std::string_view bytes)>;

struct ObjectStats {
  std::atomic<uint64_t> degraded_reads{0};  // reads that needed the fallback (4)
  std::atomic<uint64_t> shards_repaired{0};
  std::atomic<uint64_t> repair_failures{0};
  std::atomic<uint64_t> bytes_put{0}, bytes_got{0};
};

// What scrub() found for one object.
struct ScrubReport {
  unsigned good = 0, bad = 0, missing = 0, repaired = 0;
  bool readable = false;  // at least K good shards (and the verifier agreed)
};

class ObjectStore {
 public:
  // blobbers.size() must be k + m; with a cipher every object is sealed (7).
  static Result<std::unique_ptr<ObjectStore>> make(std::vector<std::unique_ptr<Blobber>> blobbers, unsigned k,
                                                   unsigned m, std::shared_ptr<const Cipher> cipher = nullptr);
  const Cipher* cipher() const { return cipher_.get(); }
  // What names and checks a block by its content (7).
  Hash content_hash(std::string_view data) const { return cipher_ ? cipher_->content_hash(data) : sha256(data); }
  unsigned k() const { return codec_.k(); }
  unsigned m() const { return codec_.m(); }
  size_t width() const { return bl_.size(); }
  Blobber& blobber(size_t i) { return *bl_[i]; }

  Status put(const std::string& name, std::string_view data, Durability d = Durability::now);
  // The barrier (3): every batched put that returned OK before the call is
  // durable when it returns OK.
  Status flush();
  // Blobber::cancel() on every blobber: what is in flight ends soon with
  // ECANCELED, and so does every later call. For the daemon's stop only.
  void cancel() {
    for (auto& b : bl_) b->cancel();
  }
  // Bytes [off, off+len) of `name`, whose length is objlen (known from a
  // manifest). verify may be empty (then only shard CRCs protect a
  // fallback read; the fast range read is unchecked).
  Result<std::string> read(const std::string& name, uint64_t objlen, uint64_t off, uint64_t len,
                           const Verify& verify);
  // The whole object, its length taken from the shard headers.
  Result<std::string> read_all(const std::string& name, const Verify& verify);
  // Removes every shard (absent ones are fine).
  Status remove(const std::string& name);
  // Reads every shard whole, rewrites bad or missing ones when it can
  // (repair false: only counts them).
  Result<ScrubReport> scrub(const std::string& name, const Verify& verify, bool repair = true);
  // Names of the objects that have at least one shard under prefix on any
  // blobber that answers, sorted, each once (6: at most M may not answer;
  // each that did not is named in *unreachable).
  Result<std::vector<std::string>> list(const std::string& prefix, std::vector<std::string>* unreachable = nullptr);
  // The code (K, M) the shards of `name` were written with, from the first
  // shard header that reads back (2): how a reader told the wrong --ec finds
  // out. ENOENT when no shard of it has a valid header.
  Result<std::pair<unsigned, unsigned>> code_of(const std::string& name);

  // Markers (8).
  Status create_marker(const std::string& name, std::string_view data, std::string* holder = nullptr);
  Result<std::string> read_marker(const std::string& name);
  // Names under prefix greater than `after` (byte order), sorted.
  Result<std::vector<std::string>> list_markers(const std::string& prefix, const std::string& after = "");
  // Notes: small unsharded objects like markers, but overwritten at will
  // (a durable put on every blobber; read_marker and list_markers read
  // them). A note that reaches no blobber is an error; one that reaches
  // some is OK (readers take the first copy they find).
  Status put_note(const std::string& name, std::string_view data);
  Status remove_note(const std::string& name);

  // Which blobber holds shard i of name (1).
  size_t place(const std::string& name, unsigned i) const;
  ObjectStats& stats() { return stats_; }
  // Batched puts started since the last successful flush() began (3): 0
  // means everything put so far is durable. The sync layer checks it
  // before an end object (sync.h 5).
  uint64_t unflushed() const { return unflushed_.load(); }

 private:
  ObjectStore(std::vector<std::unique_ptr<Blobber>> bl, Codec c, std::shared_ptr<const Cipher> ci)
      : bl_(std::move(bl)), codec_(std::move(c)), cipher_(std::move(ci)) {}
  Result<std::string> read_fast(const std::string& name, uint64_t objlen, uint64_t off, uint64_t len);
  Result<std::string> read_sealed(const std::string& name, uint64_t objlen, uint64_t off, uint64_t len,
                                  const Verify& verify);
  struct Whole;  // all shards of one object read whole
  Result<std::string> assemble(const Whole& w, const std::vector<unsigned>& have) const;
  void read_rest(const std::string& name, Whole& w);
  Result<std::string> open_sealed(const std::string& name, Whole& w);
  Result<std::string> log_sealed(const std::string& name, Result<std::string>& o) const;
  void mark_altered(const std::string& name, Whole& w);
  Result<Whole> read_whole(const std::string& name, uint64_t objlen_hint);
  Status put_shards(const std::string& name, uint64_t len, const std::vector<std::string_view>& payloads,
                    const std::vector<unsigned>& which, Durability d);
  std::vector<std::string_view> encode(std::string_view data, size_t S, std::vector<std::string>& own);
  std::vector<unsigned> all_shards() const;
  void repair(const std::string& name, Whole& w);
  Result<std::string> rebuilt_range(const std::string& name, Whole& w, const std::string& all, uint64_t off,
                                    uint64_t len, const Verify& verify);

  std::vector<std::unique_ptr<Blobber>> bl_;
  Codec codec_;
  std::shared_ptr<const Cipher> cipher_;  // null: objects are stored plain
  ObjectStats stats_;
  std::atomic<uint64_t> unflushed_{0};
};

}  // namespace tcfs::blob
