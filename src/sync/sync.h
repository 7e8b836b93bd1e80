// sync/sync.h — the sync layer's design note and shared constants.
//
// The local store is the fast tier; the blobbers (blob/) hold the durable
// remote image. Numbered invariants (code asserts and comments cite them as
// "sync.h N"):
//
//  1. Marks. Every change to the tree is marked in the Tracker by the code
//     that makes it, while that code is still inside the lock manager's
//     world (a FUSE operation before its guard goes, a compound before its
//     locks go): data(obj), attr(obj), name(parent obj, name), each object
//     an ObjRef (4a).
//  2. Capture point. A sync round freezes the world (txn::LockManager::
//     freeze), takes the marks and captures the state of everything they
//     name: entries looked up, attributes, xattrs and symlink targets read,
//     file data cloned (FICLONE; a copy where reflink is missing) into
//     <store>/sync/stage/, or read into memory for small files
//     (capture.h). Nothing changes while frozen, so the captured state is
//     one state the tree was in, between whole compounds (a compound is
//     either entirely before the freeze or entirely after).
//  3. After the freeze, and before anything of the round is recorded as
//     synced (its end object, 5), the captured state is made locally
//     durable (syncfs, and the retirement of committed sync-off
//     compounds; it runs while the blocks are uploaded): the remote image
//     never holds a state a local crash could take back.
//  4. Identity. Objects are named on the blobbers by a 64-bit id, never by
//     path or local inode number (the root is id 1). The local map inode ->
//     id (with the file handle that reopens the inode) lives in LMDB; a
//     restored store keeps the ids of its source.
// 4a. Local identity. An inode number alone never names an object beyond
//     its life: XFS and ext4 hand a freed number to the next new object at
//     once. Marks, stubs and last uses name an object by ObjRef (inode
//     number and file handle, which carries the generation: object.h), and
//     a synced record (state.h, keyed by inode number) is the record of the
//     object at that number only if its handle is the object's
//     (State::file_of). A record whose handle differs is a gone object's,
//     kept until its drop commits; a new object at its number is new (a new
//     id), and a mark for the gone object never applies to the new one.
//  5. Remote journal. A round's records (full inode records with their
//     block lists, entry sets and removals) form one record stream
//     "n/j/<epoch>-<boot>-<attempt>" (stream.h): chunk objects, then an
//     "end" object naming the chunks' hashes and the previous journal.
//     The end object is durable before the round's marker is created
//     (10), which is THE REMOTE COMMIT POINT; a round whose marker is
//     absent never happened (its journal is a stray). Blocks, packs and chunks
//     are batched puts (objects.h 3); after the last of them and before
//     the end object the round runs the barrier (ObjectStore::flush(), in
//     StreamWriter::finish()), so every block a record names is durable on
//     the blobbers before the end is written. The end is a durable put.
//     A crash before the barrier may leave bad shards; nothing committed
//     names them, and the retry puts them again.
//  6. A journal name is never reused: a failed round retries with the next
//     attempt number, a restarted daemon with the next boot number. A
//     reader follows the chain from a snapshot's journal: at each epoch the
//     candidate whose "prev" is the chain's head, highest (boot, attempt)
//     first — or, once the chain has markers, the one its epoch's marker
//     names (10, chain.h 6). So the remote image is always the state of
//     some capture point.
//  7. Local commit. After the marker was created (10), one synced LMDB
//     transaction records the round as synced (the synced records,
//     entries, block index, epoch and journal head). A crash between the
//     end object and the marker leaves a stray journal: the next round
//     re-does the epoch under the next boot number. A crash between the
//     marker and 7 leaves a remote epoch the store does not know: the next
//     round finds its own marker and adopts that round (10).
//  8. A failed round changes nothing locally but puts its marks back; the
//     next round re-captures the (newer, still committed) state.
//  9. Memory: blocks (not whole files: the blocks of one large file go up
//     in parallel) move through a bounded pool of upload workers, each
//     holding one block; small files read at capture stay within
//     kMemoryBudget per round (capture.h) and are released after upload;
//     record streams are written and read a chunk at a time.
// 10. Markers: one writer per chain (chain.h 6). A round's remote commit
//     point is the create-only put of its marker n/r/<epoch> (objects.h
//     8: decided by the arbiter blobber, at most one creator per epoch),
//     naming its journal and the writer's id (sync_meta "writer", one per
//     store, made at its first Syncer::open). Of two writers extending the
//     chain at the same epoch exactly one creates the marker. The other is
//     FENCED: it never writes the marker, commits nothing, and stops
//     rounds for good (round() is EROFS, wait_synced() says why, tcfs
//     status shows it); what it committed locally after its last marked
//     round stays in its store. A marker of the epoch being written that
//     carries this store's own id is its own round, committed remotely
//     before a crash or by a failed attempt whose reply was lost: it is
//     ADOPTED (the chain follows it; every object and name its journal
//     names is marked again, so the next round sends their present state,
//     overwriting what the local state did not record of it). A round once
//     marked is never taken back: a follower may already show it.
// 11. A bounded stop. Syncer::stop() gives the round in progress and the
//     last round together SyncOptions::stop_limit_ms; at the deadline the
//     round is CUT: requests in flight on the blobbers are cancelled
//     (blobber.h cancel()), upload workers take no further block, and no
//     journal end object is begun after it. A cut round is a failed round
//     (8): nothing is committed locally, the store is not recorded clean,
//     and the next mount rescans and sends it. A cut that lands after the
//     end object or the marker is a crash there (7, 10): handled alike.
#pragma once

#include <cstdint>

namespace tcfs::sync {

constexpr uint64_t kRootId = 1;
// LMDB databases of the sync layer, opened by the store with its own.
constexpr const char* kFilesDb = "sync_files";      // ino(8, BE) -> FileState (state.h)
constexpr const char* kIdsDb = "sync_ids";          // id(8, BE) -> ino(8, BE)
constexpr const char* kEntriesDb = "sync_entries";  // parent id(8, BE) + name -> child id(8, BE)
constexpr const char* kBlocksDb = "sync_blocks";    // content hash (32, blocks.h 1) -> BlockRef
constexpr const char* kRestoreDb = "sync_restore";  // id(8, BE) -> InodeRec, only while restoring
constexpr const char* kSyncDb = "sync_meta";        // "epoch", "head", "boot", "next_id", "config", ...

}  // namespace tcfs::sync
