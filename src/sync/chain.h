// sync/chain.h — finding the remote image: the chain of journals (sync.h 6).
//
// Contract: journals() lists the journal streams on the blobbers that have
// an end object, parsed from their names (epoch, boot, attempt). chain()
// follows them from `from` (a journal name, or "" for the beginning): at
// each next epoch it takes the candidate of highest (boot, attempt) whose
// end object reads back and names the chain's head as "prev"; it stops at
// the first epoch with none. The result is the list of journal names to
// apply, in order: the remote image is the state after the last one.
//
// Thread-safety: stateless.
#pragma once

#include <string>
#include <vector>

#include "blob/objects.h"

namespace tcfs::sync {

struct JournalName {
  std::string base;  // "n/j/<epoch>-<boot>-<attempt>"
  uint64_t epoch = 0, boot = 0;
  unsigned attempt = 0;
};

Result<std::vector<JournalName>> journals(blob::ObjectStore& os);
// Snapshot streams ("n/s/<epoch>-<boot>-<attempt>") with an end object,
// newest (epoch, boot, attempt) first.
Result<std::vector<JournalName>> snapshots(blob::ObjectStore& os);
Result<std::vector<std::string>> chain(blob::ObjectStore& os, const std::string& from = "");

}  // namespace tcfs::sync
