// fuzz_shard — an object's shards as hostile or damaged blobbers serve them
// (blob/objects.cpp: shard headers, sizes, CRCs, the erasure-code rebuild
// and repair), read through ObjectStore::read_all, read (a range, as
// read_block asks for one) and scrub over in-memory blobbers.
// Input: K-1 (mod 4), M (mod 3), a verifier mode byte (mod 3; its high
// bit: the store seals its objects with a fixed key, objects.h 7), the range read's
// objlen, off, len (u32 each, as in a BlockRef), then per shard a flags
// byte and its bytes (a length-prefixed piece). Shard flags: 1 = present; 2 = the harness
// writes the right object id into the header, 4 = the right payload CRC,
// 8 = the right header CRC (a hostile blobber can compute them all; they
// only catch damage), so the fuzzer gets past them.
// Checks: no crash, leak or hang; a range read returns exactly the range.
#include <isa-l/crc.h>

#include <cstring>

#include <spdlog/spdlog.h>

#include "blob/hash.h"
#include "fuzz_input.h"
#include "mem_blobber.h"

using namespace tcfs;

namespace {

const std::string kName = "b/5e/5eed";

uint32_t crc32c(std::string_view s) {
  return crc32_iscsi(reinterpret_cast<unsigned char*>(const_cast<char*>(s.data())), static_cast<int>(s.size()), 0);
}
void put_le32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; i++) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// Header offsets as objects.cpp lays them out: 12 header crc, 32 payload crc, 40 id.
void fix_up(std::string& s, uint8_t flags) {
  if (s.size() < blob::kShardHeader) return;
  if (flags & 2) memcpy(&s[40], blob::sha256(kName).b.data(), 24);
  if (flags & 4) put_le32(s, 32, crc32c(std::string_view(s).substr(blob::kShardHeader)));
  if (flags & 8) {
    std::string head = s.substr(0, blob::kShardHeader);
    put_le32(head, 12, 0);
    put_le32(s, 12, crc32c(head));
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
  const unsigned k = 1 + in.u8() % 4, m = in.u8() % 3;
  const uint8_t vbyte = in.u8(), vmode = vbyte % 3;
  std::shared_ptr<const blob::Cipher> cipher;
  if (vbyte & 0x80) cipher = blob::Cipher::make(std::string(blob::kKeyBytes, '\x5e')).value();
  // 32-bit, as a BlockRef (the range reads' only source, read_block) holds them.
  const uint64_t objlen = in.le(4), off = in.le(4), len = in.le(4);
  std::vector<fuzz::MemBlobber*> mem;
  auto os = fuzz::mem_store(k, m, &mem, cipher);
  for (unsigned i = 0; i < k + m; i++) {
    const uint8_t flags = in.u8();
    std::string shard = in.piece();
    if (!(flags & 1)) continue;
    fix_up(shard, flags);
    mem[os->place(kName, i)]->set(kName + "." + std::to_string(i), std::move(shard));
  }
  blob::Verify verify;
  if (vmode == 1) verify = [](std::string_view) { return false; };
  if (vmode == 2) verify = [](std::string_view) { return true; };
  (void)os->read_all(kName, verify);
  auto r = os->read(kName, objlen, off, len, verify);
  if (r) FUZZ_CHECK(r->size() == len);
  (void)os->scrub(kName, verify);
  return 0;
}
