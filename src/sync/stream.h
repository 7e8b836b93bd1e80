// sync/stream.h — record streams on the blobbers: journals and snapshots
// (sync.h 5, 9).
//
// Contract:
//  * A stream BASE (e.g. "n/j/<epoch>-<boot>-<attempt>") is a sequence of
//    chunk objects BASE/c<NNNNNN> — each a zstd frame of length-prefixed
//    records, at most ~chunk_target bytes before compression — and an end
//    object BASE/end: MessagePack {chunks: [sha256...], records: N, info:
//    {...}} followed by the SHA-256 of those bytes.
//  * StreamWriter::add() buffers one record and writes a chunk when the
//    buffer is full; finish(info) writes the last chunk, runs the barrier
//    (ObjectStore::flush(): every chunk, and every block and pack put
//    before, is durable; objects.h 3) and then writes the end object with
//    a durable put: the stream exists from that put on (the commit point
//    of a journal, sync.h 5), and it is durable when finish() returns OK
//    (sync.h 7). Chunks are batched puts. A writer that fails or is
//    dropped before finish() leaves only garbage chunks, which no reader
//    follows.
//  * StreamReader::open() reads and checks the end object (its info, when
//    present, a map whose head/prev/kind are strings and epoch/boot
//    unsigned integers, as readers take them); next() returns
//    the records in order, reading one chunk at a time and checking each
//    chunk's hash before decompressing it; EIO names the chunk on damage.
//
// Thread-safety: a writer or reader belongs to one thread at a time.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "blob/hash.h"
#include "blob/objects.h"

namespace tcfs::sync {

class StreamWriter {
 public:
  StreamWriter(blob::ObjectStore& os, std::string base, size_t chunk_target = 4u << 20)
      : os_(os), base_(std::move(base)), target_(chunk_target) {}
  Status add(std::string_view record);
  Status finish(const nlohmann::json& info);
  uint64_t records() const { return records_; }
  uint64_t bytes_written() const { return written_; }

 private:
  Status flush_chunk();
  blob::ObjectStore& os_;
  std::string base_;
  size_t target_;
  std::string buf_;
  std::vector<blob::Hash> chunks_;
  uint64_t records_ = 0, written_ = 0;
};

class StreamReader {
 public:
  static Result<StreamReader> open(blob::ObjectStore& os, const std::string& base);
  // The next record; nullopt after the last.
  Result<std::optional<std::string>> next();
  const nlohmann::json& info() const { return info_; }
  uint64_t records() const { return total_; }
  size_t chunks() const { return chunks_.size(); }

 private:
  StreamReader(blob::ObjectStore& os, std::string base) : os_(&os), base_(std::move(base)) {}
  Status load_chunk();
  blob::ObjectStore* os_;
  std::string base_;
  std::vector<blob::Hash> chunks_;
  nlohmann::json info_;
  uint64_t total_ = 0, seen_ = 0;
  size_t next_chunk_ = 0;
  std::string buf_;
  size_t pos_ = 0;
};

std::string chunk_name(const std::string& base, size_t i);

}  // namespace tcfs::sync
