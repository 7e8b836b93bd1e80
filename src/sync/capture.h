// sync/capture.h — the point-in-time capture of a round (sync.h 2) and the
// rescan that rebuilds marks after an unclean stop.
//
// Contract:
//  * capture() runs while the world is frozen. From the marks it finds
//    every object whose state must go out: entries named by name marks are
//    looked up (a new directory's whole listing is walked, so nothing new
//    is missed), objects are opened by their file handle, their attributes,
//    xattrs and symlink targets read, and file data that changed is cloned
//    into the stage directory (FICLONE, or a copy), or, for a file of at
//    most kMemoryFile bytes while the round's total stays within
//    kMemoryBudget, read into memory (no stage file to create, clone,
//    reopen and remove: small files are cheap, and memory stays bounded,
//    sync.h 9). Objects no longer in
//    the tree (ESTALE, no links) are left out, and an object whose last
//    entry went is dropped. New objects get ids from next_id. It changes
//    nothing in the tree or in LMDB.
//  * Identity (sync.h 4a): marks, the objects looked up and the work of a
//    capture are keyed by ObjRef, and a synced record stands for an object
//    only if its handle is the object's. A name mark whose parent is not
//    known yet waits until a name mark of the parent's own entry makes it
//    known (a new directory, whose walk queues all its entries); the
//    record of a gone object whose inode number a new directory took never
//    stands for the new directory, so its entries are never taken for the
//    gone one's and skipped (issue 10.2).
//  * rescan() walks the whole tree (before the mount serves, nothing else
//    running) and marks what differs from the synced state: entries added,
//    removed or rebound, objects whose ctime moved (an object is the
//    synced one only if its handle is the record's). A store that never
//    synced gets every entry marked.
//
// Thread-safety: one caller at a time per stage directory.
#pragma once

#include <sys/stat.h>

#include <map>
#include <string>
#include <vector>

#include "sync/records.h"
#include "sync/state.h"
#include "sync/tracker.h"

namespace tcfs::sync {

struct CapturedObject {
  uint64_t ino = 0;
  FileState state;        // id, handle, ctime; rec holds the captured attributes
  bool is_new = false;    // not on the blobbers before this round
  bool has_data = false;  // content cloned to stage/<stage>, or (stage empty) read into bytes
  std::string stage;
  std::string bytes;
};

struct Capture {
  Marks marks;  // what was taken (put back if the round fails, sync.h 8)
  std::vector<CapturedObject> objects;
  std::vector<EntryRec> entries;  // child 0 = removed
  std::vector<std::pair<uint64_t, uint64_t>> drops;  // (id, ino) of objects with no name left
  uint64_t next_id = 0;           // after the ids handed out here
  uint64_t data_bytes = 0;        // bytes of cloned data
  uint64_t memory_bytes = 0;      // of it, read into memory (CapturedObject::bytes)
};

constexpr uint64_t kMemoryFile = 64u << 10;
constexpr uint64_t kMemoryBudget = 64u << 20;

struct CaptureEnv {
  int root_fd = -1;   // <store>/root (also the mount fd for handles)
  int stage_fd = -1;  // <store>/sync/stage
  bool reflink = false;
};

// cap.marks and cap.next_id are the input; on failure the stage is cleared
// and cap.marks is left for the caller to put back.
Status capture(const CaptureEnv& env, State& st, Capture& cap);
// Removes every file in the stage directory.
void clear_stage(int stage_fd);
Status rescan(const CaptureEnv& env, State& st, Tracker& tracker);

}  // namespace tcfs::sync
