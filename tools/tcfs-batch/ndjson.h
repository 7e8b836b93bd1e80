// tcfs-batch/ndjson.h — the NDJSON compound format of `tcfs-batch run`
// (schema in man/tcfs-batch.1).
//
// Contract: parse_ndjson() reads every line and returns either the whole
// list of operations (paths as written, not yet made mount-relative; local
// "from" files as paths to open) or every error found, each "LINE: reason".
// Nothing is partially accepted: one bad line rejects the file.
//
// Thread-safety: pure functions.
#pragma once

#include <sys/types.h>

#include <istream>
#include <string>
#include <vector>

#include "tcfs/compound.h"

namespace tcfs::batch {

struct ParsedOp {
  Op op;
  int line = 0;
  std::string from;  // Write: a local file whose content is sent as a descriptor
};

struct ParseResult {
  std::vector<ParsedOp> ops;
  std::vector<std::string> errors;  // "LINE: reason"
};

ParseResult parse_ndjson(std::istream& in);

// The caller's umask: tcfs-batch applies it to the modes of mkdir and
// create, as mkdir(2) and open(2) do (the daemon applies modes as given).
mode_t caller_umask();

}  // namespace tcfs::batch
