// sync/follow.h — a follower store's image of a writer's chain (issue 12,
// docs/DESIGN.md §8): the newest round, kept in the store's LMDB and moved
// forward one whole round at a time.
//
// Design note (numbered; code and tests cite them as "follow.h N"):
//  1. The image is the remote namespace of exactly one round: objects in
//     kRestoreDb (id -> InodeRec), names in kEntriesDb (parent id + name ->
//     child id), the round in kSyncDb ("epoch", "head", "round_writer",
//     "round_time"), "role" = "follower". Objects are keyed by the
//     writer's object ids, which rounds never change (sync.h 4); the root
//     is kRootId (the view adds a content hash to a file's node id:
//     fuse/view.h 2).
//  2. A round is applied whole. The next round is the marker of epoch+1
//     (sync.h 10, chain.h 6) and the journal it names, which must name the
//     image's head as its prev. Every record of the journal is read,
//     checked and applied inside ONE LMDB write transaction together with
//     the new round's figures; its commit is the switch point. A journal
//     that cannot be read whole (a damaged chunk or end object, a record
//     that does not decode) aborts the transaction: the image stays at the
//     last good round, and the error names the object. The next poll
//     tries again (a scrub on the writer repairs the object).
//  3. Readers (the FUSE view, fuse/view.h) answer each request from one
//     LMDB read transaction, so every answer belongs to one round; what a
//     request keeps across requests (an open file's block list, a
//     directory listing from opendir) stays that round's.
//  4. Polling costs one marker listing that starts after the image's epoch
//     (objects.h 8), plus the markers and journals of new rounds. A gap in
//     the markers (epoch+2 marked, epoch+1 not) stops the follower there
//     and says so; stop_at (time travel) is never passed.
//  7. Time travel: an image may stop at any round the chain still holds
//     (restore.h stop_at at init, poll's stop_at after): `--at ROUND`, or
//     `--at TIME` for the newest round marked at or before TIME.
//  9. Stranded: when the journal of the image's next round is gone from
//     every blobber (gc on the writer removed it while this follower was
//     away and its note had expired, 8), the chain cannot be followed from
//     the image any more. stranded() tells so (a journal merely damaged or
//     blobbers that do not answer are not: the poll keeps reporting them);
//     the image is then rebuilt whole from the blobbers (restore.h
//     rebuild_image) before anything is served, at mount.
//  5. The first image (init --follow) is built as restore.h builds a
//     store's state (the newest usable snapshot, then the journals), with
//     no tree on disk: ImageOnly restore.
//
// Thread-safety: Image's functions take the caller's Txn (LMDB's rules);
// apply_next() is called from one thread at a time (the poller).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "blob/objects.h"
#include "sync/chain.h"
#include "sync/records.h"
#include "sync/state.h"

namespace tcfs::sync {

struct Round {
  uint64_t epoch = 0;
  std::string head;    // the round's journal
  std::string writer;  // the id of the store that wrote it ("" before markers)
  int64_t time = 0;    // when the writer marked it (seconds since the epoch; 0 unknown)
};

class Image {
 public:
  explicit Image(State& st) : st_(st) {}
  meta::Env& env() { return st_.env(); }
  State& state() { return st_; }

  Result<Round> round(meta::Txn& t);
  Result<std::optional<InodeRec>> object(meta::Txn& t, uint64_t id);
  Result<std::optional<uint64_t>> child(meta::Txn& t, uint64_t parent, const std::string& name) {
    return st_.entry(t, parent, name);
  }
  // Records the round (with the rest of the caller's transaction).
  Status set_round(meta::Txn& t, const Round& r);

  // follow.h 2: applies the round of marker m. EAGAIN when m is not the
  // next round of the image; EIO naming the object for a damaged journal.
  Status apply(blob::ObjectStore& os, const Marker& m);
  // follow.h 2: called (from apply's thread) right before each switch point.
  void set_switch_gate(std::function<void(uint64_t epoch)> gate) { gate_ = std::move(gate); }

 private:
  State& st_;
  std::function<void(uint64_t)> gate_;
};

// One record applied to an image (or to a restore's load: the same rules).
Status apply_record(State& st, meta::Txn& t, const Record& rec, uint64_t* max_id = nullptr);

struct PollReport {
  uint64_t applied = 0;       // rounds applied by this poll
  uint64_t newest = 0;        // the newest epoch marked on the blobbers (0: none seen)
  int64_t newest_time = 0;    // its marker's time
  Status error;               // why the image stopped short of `newest` (follow.h 2, 4)
};

// follow.h 4: one poll; applies each new round in order, up to stop_at (0: no limit).
PollReport poll(blob::ObjectStore& os, Image& img, uint64_t stop_at = 0);

// `tcfs log`: the rounds the markers name (newest last), with the size of
// each journal when with_sizes (one end object read per round).
struct RoundInfo {
  uint64_t epoch = 0;
  std::string journal, writer;
  int64_t time = 0;
  uint64_t records = 0;  // with_sizes
  bool readable = true;  // with_sizes: its journal's end object reads back
};
Result<std::vector<RoundInfo>> round_log(blob::ObjectStore& os, bool with_sizes);
// Time travel by time: the newest round marked at or before `when` (seconds
// since the epoch); ENOENT naming the first round's time when none is.
Result<uint64_t> round_at_time(blob::ObjectStore& os, int64_t when);
// follow.h 8: a live follower announces the round it shows, so that gc
// keeps what it reads: the note n/f/<id> (ObjectStore::put_note) holds
// {"round", "expires"} (seconds since the epoch), rewritten when its round
// changes and well before it expires. gc keeps every round from the oldest
// unexpired note on and removes expired notes: a follower that is gone
// pins nothing once its note expires.
struct FollowerNote {
  std::string id;
  uint64_t round = 0;
  int64_t expires = 0;
};
Status announce(blob::ObjectStore& os, const std::string& id, uint64_t round, int64_t expires);
Result<std::vector<FollowerNote>> follower_notes(blob::ObjectStore& os);
std::string note_name(const std::string& id);  // "n/f/<id>"

// follow.h 9: whether the journal of the image's next marked round (not
// past stop_at, 0: no limit) is gone from every blobber; the message says
// which round and journal when it is.
Result<std::optional<std::string>> stranded(blob::ObjectStore& os, Image& img, uint64_t stop_at = 0);
// follow.h 9: records the round an image reached (its marker's writer and time, when the marker names that journal).
Status record_round(blob::ObjectStore& os, Image& img, meta::Txn& t, uint64_t epoch, const std::string& head);

// follow.h 7: a time-travel target: "ROUND" (digits), "@SECONDS" since the
// epoch, or "YYYY-MM-DD HH:MM[:SS]" (also with a T; UTC). EINVAL naming
// the accepted forms for anything else.
Result<uint64_t> resolve_at(blob::ObjectStore& os, const std::string& spec);

}  // namespace tcfs::sync
