// blob/blocks.h — content-addressed blocks and the packs that carry small
// ones, on top of ObjectStore.
//
// Design note (cited as "blocks.h N"):
//  1. A block is at most kMaxBlock bytes, named by its content hash,
//     ObjectStore::content_hash (SHA-256, or the keyed hash of an encrypted
//     store, objects.h 7: then a name reveals nothing). A block of
//     at least pack_threshold bytes is its own object "b/XX/HEX" (HEX its
//     hash, XX the first two digits); a smaller one is appended to the open
//     pack, an object "p/XX/ID" with a random 256-bit ID, written when it
//     reaches pack_target bytes or at flush(). So 10,000 files of 4 KiB
//     cost a handful of pack PUTs per blobber, not 10,000.
//  2. A BlockRef says where a block's bytes are: the object (standalone or
//     pack, its id and length) and the offset. It is all a reader needs
//     (no remote index), and it is what manifests record.
//  3. A ref handed out by put() is readable only after the pack it went
//     into is written: the caller calls flush(), then finish() on each
//     packed ref (which fills in the pack's final length), and records refs
//     only when flush() (and every put()) returned OK. A failed pack write is sticky:
//     flush() reports it and the caller retries the whole round.
//     Blocks and packs are batched puts (objects.h 3): they are durable
//     only after ObjectStore::flush(), the barrier, which the caller runs
//     before anything durable names them (sync.h 5). BlockWriter::flush()
//     writes the open pack; it is not that barrier.
//  4. Every read verifies the block's content hash (objects.h 4 falls back to
//     the redundancy, and repairs, when it does not match).
//
// Thread-safety: BlockWriter may be used from many threads at once (mu_
// protects the open pack, the sticky error and the sealed packs; no I/O is done under it).
// read_block is thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "blob/hash.h"
#include "blob/objects.h"
#include "util/mutex.h"

namespace tcfs::blob {

constexpr uint32_t kMaxBlock = 4u << 20;

struct BlockRef {
  Hash hash;            // content hash of the block (1)
  uint32_t len = 0;     // the block's length
  bool packed = false;  // in a pack (else a standalone object)
  Hash obj;             // the object: == hash when standalone, the pack's id when packed
  uint32_t objlen = 0;  // the object's length
  uint32_t off = 0;     // where the block starts in the object

  std::string object_name() const;
  // A fixed 78-byte binary form, for manifests.
  static constexpr size_t kEncoded = 78;
  std::string encode() const;
  static Result<BlockRef> decode(std::string_view s);
  bool operator==(const BlockRef&) const = default;
};

std::string block_object_name(const Hash& h);
std::string pack_object_name(const Hash& id);

struct BlockWriterOptions {
  uint32_t pack_threshold = 1u << 20;  // blocks below this go into packs
  uint32_t pack_target = 8u << 20;     // a pack is written once it is this big
};

class BlockWriter {
 public:
  explicit BlockWriter(ObjectStore& os, BlockWriterOptions opt = {}) : os_(os), opt_(opt) {}
  // Stores data (<= kMaxBlock bytes) and says where it will be readable (3).
  Result<BlockRef> put(std::string_view data) { return put(data, os_.content_hash(data)); }
  // The same, with hash == os.content_hash(data) already known (it is not checked).
  Result<BlockRef> put(std::string_view data, const Hash& hash);
  // Writes the open pack, if any; returns the first error since the last flush.
  Status flush();
  // Sets a packed ref's objlen to its pack's final length; EAGAIN if that
  // pack is not written yet (3). Standalone refs are already final.
  Status finish(BlockRef& r) const;
  uint64_t packs_written() const { return packs_written_; }

 private:
  struct Pack {
    Hash id;
    std::string bytes;
  };
  Status write_pack(Pack p) TCFS_EXCLUDES(mu_);

  ObjectStore& os_;
  BlockWriterOptions opt_;
  mutable Mutex mu_;  // protects open_, have_open_, failed_, sealed_
  Pack open_ TCFS_GUARDED_BY(mu_);
  std::map<Hash, uint32_t> sealed_ TCFS_GUARDED_BY(mu_);  // written packs: id -> length
  bool have_open_ TCFS_GUARDED_BY(mu_) = false;
  Status failed_ TCFS_GUARDED_BY(mu_);
  std::atomic<uint64_t> packs_written_{0};
};

// The block's bytes, verified against its hash (4).
Result<std::string> read_block(ObjectStore& os, const BlockRef& ref);

Hash random_id();

}  // namespace tcfs::blob
