// fuzz_stream — a journal or snapshot stream as the blobbers serve it: an
// end object and its chunks (sync/stream.cpp), read back by StreamReader
// and followed by chain() (sync/chain.cpp), each record decoded
// (sync/records.cpp), over in-memory blobbers (the shards themselves are
// fuzz_shard's). Input: a flags byte, the end object's MessagePack body,
// then up to 4 chunks, each a length-prefixed piece (fuzz_input.h).
// Flags: 1 = the harness writes the real chunk hashes into the end's
// "chunks" (a hostile blobber can: the hashes only catch damage); 2 = the
// harness zstd-compresses each chunk, as the writer does, so the record
// framing inside is reached.
// Checks: no crash, leak or hang; what restore, chain and gc read from an
// opened stream's info is there with its type (they read it with
// json::value(), which throws on a mismatch).
#include <zstd.h>

#include <nlohmann/json.hpp>

#include <spdlog/spdlog.h>

#include "blob/hash.h"
#include "fuzz_input.h"
#include "mem_blobber.h"
#include "sync/chain.h"
#include "sync/records.h"
#include "sync/stream.h"

using namespace tcfs;
using json = nlohmann::json;

namespace {

constexpr const char* kBase = "n/j/0000000000000001-00000001-0000";

std::string compress(const std::string& raw) {
  std::string z(ZSTD_compressBound(raw.size()), '\0');
  size_t n = ZSTD_compress(z.data(), z.size(), raw.data(), raw.size(), 1);
  if (ZSTD_isError(n)) abort();
  z.resize(n);
  return z;
}

// The end body with "chunks" replaced by the chunks' real hashes.
std::string with_hashes(const std::string& body, const std::vector<std::string>& chunks) {
  json j = json::from_msgpack(body.begin(), body.end(), true, false);
  if (j.is_discarded() || !j.is_object()) return body;
  json hashes = json::array();
  for (const auto& c : chunks) hashes.push_back(blob::sha256(c).hex());
  j["chunks"] = std::move(hashes);
  auto v = json::to_msgpack(j);
  return std::string(v.begin(), v.end());
}

void read_stream(blob::ObjectStore& os) {
  auto r = sync::StreamReader::open(os, kBase);
  if (!r) return;
  // As restore.cpp, chain.cpp and maintain.cpp read an opened stream's info.
  (void)r->info().value("head", std::string());
  (void)r->info().value("prev", std::string());
  (void)r->info().value("boot", uint64_t{0});
  (void)r->info().value("epoch", uint64_t{0});
  for (;;) {
    auto rec = r->next();
    if (!rec || !rec->has_value()) break;
    (void)sync::decode(**rec);
  }
}

}  // namespace

// The code under test logs every damaged object it meets: keep it quiet.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  const uint8_t flags = in.u8();
  std::string body = in.piece();
  std::vector<std::string> chunks;
  while (!in.empty() && chunks.size() < 4) chunks.push_back(in.piece());
  if (flags & 2)
    for (auto& c : chunks) c = compress(c);
  if (flags & 1) body = with_hashes(body, chunks);
  auto os = fuzz::mem_store(1, 0, nullptr);
  for (size_t i = 0; i < chunks.size(); i++)
    if (!os->put(sync::chunk_name(kBase, i), chunks[i])) abort();
  if (!os->put(std::string(kBase) + "/end", body + std::string(blob::sha256(body).bytes()))) abort();
  (void)sync::chain(*os, "");
  read_stream(*os);
  return 0;
}
