// util/size.h — sizes as people write them ("20G", "512M", "4096").
//
// Contract: parse_size() reads a decimal number with an optional unit K, M,
// G or T (powers of 1024; either case; "KiB"/"KB" forms accepted) and
// returns the bytes, or 0 for anything else (empty, a sign or blank before
// the digits, a bad unit, trailing text, overflow). A literal "0" also gives 0: callers that accept zero
// check for it.
//
// Thread-safety: a pure function.
#pragma once

#include <cstdint>
#include <string>

namespace tcfs {

uint64_t parse_size(const std::string& s);

}  // namespace tcfs
