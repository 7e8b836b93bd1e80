// fuzz_records — one namespace record of a journal or snapshot stream
// (sync/records.cpp decode, and decode_inode for the local synced state),
// on any bytes. Checks: no crash, leak or hang; a record that decodes
// encodes back to bytes that decode to the same record.
#include "fuzz_input.h"
#include "sync/records.h"

using namespace tcfs;
using namespace tcfs::sync;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto r = decode(bytes);
  if (r) {
    auto again = decode(encode(*r));
    FUZZ_CHECK(again.is_ok());
    FUZZ_CHECK(*again == *r);
  }
  auto i = decode_inode(bytes);
  if (i) {
    auto again = decode_inode(encode_inode(*i));
    FUZZ_CHECK(again.is_ok());
    FUZZ_CHECK(*again == *i);
  }
  return 0;
}
