// sync/chain.h — finding the remote image: the chain of journals (sync.h 6).
//
// Design note (numbered; code cites them as "chain.h N"):
//  1. Listed and readable. A journal or snapshot is LISTED when its end
//     object has a shard on a blobber that answers the listing (objects.h
//     6), READABLE when its end object reads back whole (K good shards, its
//     hash right). A listed journal that is not readable is not absent: its
//     round may have been committed (sync.h 5) and damaged since.
//  2. Following. From a start head (a snapshot's journal, or "" for the
//     beginning) at epoch e, the chain takes at epoch e+1 the readable
//     candidate of highest (boot, attempt) whose "prev" is the head, and goes
//     on from it; it stops at the first epoch with none. It REACHES the last
//     journal taken (or the start) and that journal's epoch.
//  3. Proof of a later round. Having reached epoch e with head h, the
//     blobbers prove that the chain went further, and the walk is CUT, when
//      a. a journal of epoch e+1 is listed but not readable (the next round,
//         damaged; or a put of its end that failed half-way and was never
//         retried: the two cannot be told apart, so both count); or
//      b. a readable journal of epoch e+1 or e+2 names as prev a journal of
//         the epoch before it, other than h, that is not readable (listed or
//         not: every shard of it may be gone); or
//      c. a snapshot of an epoch after e is listed but could not be used (4);
//      d. a journal of epoch e+1 has chunks on the blobbers but no end
//         object at all (every shard of its end lost, or its writer stopped
//         between its chunks and its end: again both count, and the message
//         says so; gc removes the leftovers of a writer's failed rounds).
//     Readable journals with another prev and no such link (strays of a
//     crash, of a failed attempt, of an older writer) prove nothing.
//     A round being written right now looks like 3a or 3d for a moment:
//     a reader that may race a writer (restore) asks follow() to settle,
//     walking a cut chain again from the listing (kCutRetries times,
//     kCutPauseMs apart, unless it asks for fewer) before the cut counts. The writer itself never
//     needs to: it walks holding its round lock.
//  4. The start. Snapshots are tried newest (epoch, boot, attempt) first;
//     the first usable one is the start; the ones skipped on the way go to
//     follow() with their reason (3c).
//  5. A cut walk is never taken for the image silently: follow() names what
//     it could not read and why (ChainWalk::unreadable). A reader fails, or
//     says that it accepts the older round it reached (restore.h); a writer
//     whose own head is not reached rewrites its state as a snapshot
//     (syncer.h: at the next round, at scrub, at tcfs sync).
//  6. Markers (sync.h 10). A round of epoch e whose marker n/r/<e> exists
//     is the journal the marker names, and no other: once the chain uses
//     markers (a marker exists at or before the epoch after the walk's
//     head), the walk takes at each epoch exactly the marked journal, which
//     must read back and name the head as its prev, and stops at the first
//     epoch without a marker. Unmarked journals of a marked chain are
//     strays (a round whose writer stopped before its marker, or a fenced
//     writer's): they prove nothing (3 does not apply to them). The walk
//     is CUT when a marker cannot be read, its journal does not read back
//     or does not follow the head, or a later epoch is marked while this
//     one is not (a marker lost). A start (a snapshot's head) that is not
//     the journal its epoch's marker names is refused the same way.
//     Before the first marker, 2-3 apply as they always did.
//
// Contract: journals() lists the journal streams on the blobbers that have
// an end object, parsed from their names (epoch, boot, attempt); snapshots()
// the snapshot streams, newest first. follow() walks from `from` (2) and
// reports the journals to apply, in order (the remote image is the state
// after the last one), what it reached and what cuts it (3). chain() is
// follow()'s journal list alone.
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

// A snapshot the start passed over (4), and why.
struct Skipped {
  std::string base;
  uint64_t epoch = 0;
  std::string why;
};

struct ChainWalk {
  std::vector<std::string> journals;    // to apply after the start, in order
  uint64_t epoch = 0;                   // reached (2)
  std::string head;                     // reached ("" = nothing at all)
  std::vector<std::string> unreadable;  // 3: "NAME (epoch N): reason" each; empty when whole
  bool whole() const { return unreadable.empty(); }
};

constexpr int kCutRetries = 8;
constexpr unsigned kCutPauseMs = 500;

Result<std::vector<JournalName>> journals(blob::ObjectStore& os);
// Snapshot streams ("n/s/<epoch>-<boot>-<attempt>") with an end object,
// newest (epoch, boot, attempt) first.
Result<std::vector<JournalName>> snapshots(blob::ObjectStore& os);
// settle: how many times a cut walk is walked again (kCutPauseMs apart)
// before the cut counts (3); 0 for a writer, which holds its round lock.
Result<ChainWalk> follow(blob::ObjectStore& os, const std::string& from = "", const std::vector<Skipped>& skipped = {},
                         int settle = 0);
Result<std::vector<std::string>> chain(blob::ObjectStore& os, const std::string& from = "");
// The epoch in a journal or snapshot name ("n/j/<epoch>-..."); 0 if malformed.
uint64_t epoch_of(const std::string& base);
// The boot in such a name; 0 if malformed.
uint64_t boot_of(const std::string& base);

// A round's marker (chain.h 6, sync.h 10): the fence of its epoch.
struct Marker {
  uint64_t epoch = 0;
  std::string journal;  // the round's journal base, "n/j/..."
  std::string writer;   // the id of the store that wrote it (sync_meta "writer")
  uint64_t boot = 0;
  int64_t time = 0;     // seconds since the epoch, at the writer
};
std::string marker_name(uint64_t epoch);  // "n/r/<epoch:16x>"
// The epoch a marker's name carries; 0 for a name that is not a marker's.
uint64_t marker_epoch(const std::string& name);
// The marker of `epoch`, read (objects.h 8) and decoded; ENOENT when none.
Result<Marker> read_round_marker(blob::ObjectStore& os, uint64_t epoch);
std::string encode_marker(const Marker& m);
// EINVAL naming the field for anything that is not a marker of `epoch`.
Result<Marker> decode_marker(uint64_t epoch, std::string_view bytes);

}  // namespace tcfs::sync
