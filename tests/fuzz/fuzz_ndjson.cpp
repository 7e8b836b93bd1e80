// fuzz_ndjson — tcfs-batch's NDJSON reader (parse_ndjson), on any bytes.
// Checks: no crash, leak or hang; every line is either an operation or an
// error (nothing accepted partly): with errors, the operations found are
// only those of good lines, each with the line number it came from.
#include <sstream>

#include "fuzz_input.h"
#include "ndjson.h"

using namespace tcfs;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  auto r = batch::parse_ndjson(in);
  int last = 0;
  for (const auto& op : r.ops) {
    FUZZ_CHECK(op.line > last);
    FUZZ_CHECK(!op.op.path.empty());
    last = op.line;
  }
  for (const auto& e : r.errors) FUZZ_CHECK(!e.empty() && e.find(": ") != std::string::npos);
  return 0;
}
