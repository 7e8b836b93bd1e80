#!/usr/bin/env bash
# fsck_test.sh — `tcfs fsck STORE [--repair]` finds each kind of damage it
# checks for, names it, repairs what it can, and the store then works
# (issue 15). Runs as root with TCFS_BIN and TCFS_BATCH set (meson does
# both). The store and its directory blobber live on a loop XFS image of
# bounded size (768 MiB: large enough for the endurant log's default);
# every mount and daemon is stopped by pid (connection abort as the last
# resort).
#
# Each kind of damage is seeded the way it arises, then:
#   fsck -> exit 4 and a line naming it; fsck --repair -> exit 1;
#   fsck -> exit 0; and the store shows the repair's effect:
#  - a store held by a mounted daemon: refused (exit 8), nothing changed;
#  - undo images left in txn/<id>/ with no recovery record;
#  - a compound cut short by kill -9 (crash point txn.after_exec): rolled
#    back, its file absent;
#  - stable writes in the endurant log after kill -9: replayed, the bytes
#    in the file;
#  - a file put in root/ behind the daemon's back while the store says it
#    stopped cleanly: the next mount rescans and syncs it;
#  - a synced file removed from root/ behind its back: likewise;
#  - a stub whose size was changed: its size set back, its content read
#    back whole from the blobber;
#  - --progress draws the walk and the records to their end on stderr;
#    without it, into a file, nothing;
#  - an endurant log that does not verify (a damaged segment header):
#    named, not repairable, nothing changed; replayed once mended;
#  - --remote (2+1 directory blobbers): a flipped and a removed shard are
#    named and rewritten; a chain cut by a lost journal is named with the
#    round it reaches, left to a scrub of the mount (which mends it); an
#    object left with one shard is named and not repairable.
: "${TCFS_BATCH:?set TCFS_BATCH to the tcfs-batch binary}"
. "$(dirname "$0")/mount_harness.sh"
harness_init fsck_test fsck
fs=$work/fs store=$work/fs/store mp=$work/mnt
T=$TCFS_BIN

test_cleanup() {
  stop_tcfs "$mp" "$store"
  umount "$fs" 2>/dev/null || umount -l "$fs" 2>/dev/null
}
mkdir -p "$mp"
xfs_image 768M "$fs"
mkdir -p "$fs/b0" "$fs/b1" "$fs/b2"
"$T" init --store "$store" --blobber "dir://$fs/b0" "dir://$fs/b1" "dir://$fs/b2" --ec 2+1 > /dev/null ||
  { echo "FAIL - tcfs init"; exit 1; }

mnt() { timeout 60 "$T" mount --store "$store" -o metrics=off "$@" "$mp" > /dev/null; }
umnt() { timeout 60 umount "$mp"; for _ in $(seq 100); do [[ -z $(daemon_pid "$store") ]] || ! kill -0 "$(daemon_pid "$store")" 2>/dev/null && return 0; sleep 0.1; done; }
# crash: kill -9 the daemon, free the dead mount.
crash() { kill -9 "$(daemon_pid "$store")" 2>/dev/null; sleep 0.5; stop_tcfs "$mp" "$store"; }
# fsck_is WANT [ARGS]: runs fsck, keeps its output in $out; true if it exits WANT.
fsck_is() { local want=$1; shift; out=$("$T" fsck "$store" "$@" 2>&1); rc=$?; ((rc == want)) || echo "    fsck $* exit $rc: $out"; ((rc == want)); }
# stable_writes FILE WORD N: N lines "WORD i", each made durable by its own fsync (the endurant log's records).
stable_writes() {
  python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
for i in range(int(sys.argv[3])):
    os.write(fd, b"%s %d\n" % (sys.argv[2].encode(), i)); os.fsync(fd)' "$@"
}
# cycle WHAT PATTERN: fsck finds it (4, PATTERN in the report), --repair (1), then clean (0).
cycle() {
  check "$1: fsck reports it (exit 4)" fsck_is 4 && check "$1: the report names it" grep -qE "$2" <<< "$out"
  check "$1: fsck --repair repairs it (exit 1)" fsck_is 1 --repair
  check "$1: then fsck finds nothing (exit 0)" fsck_is 0
}

# A clean store, then one held by its daemon.
check "a new store is clean" fsck_is 0
mnt || { fail "mount"; exit 1; }
echo one > "$mp/one"
check "a mounted store is refused (exit 8)" fsck_is 8
check "... saying why" grep -q "unmount it first" <<< "$out"
"$T" sync "$mp" > /dev/null
umnt

# Undo images no record names.
mkdir -p "$store/txn/4242" && echo img > "$store/txn/4242/images"
cycle "leftover undo images" "txn/4242/"
check "the leftover images are gone" test ! -e "$store/txn/4242"

# A compound cut short.
TCFS_CRASH_AT=txn.after_exec mnt || { fail "mount with a crash point"; exit 1; }
printf '{"op":"create","path":"cut"}\n{"op":"write","path":"cut","data":"half"}\n' | timeout 30 "$TCFS_BATCH" -q -C "$mp" run - 2> /dev/null
crash
cycle "a compound cut short" "compound [0-9]+ .* was cut short"
check "the cut compound is rolled back: its file is absent" test ! -e "$store/root/cut"

# Stable writes in the endurant log.
mnt || { fail "mount"; exit 1; }
stable_writes "$mp/logged" record 8
crash
cycle "stable writes after a crash" "stable write\(s\) after the log's last checkpoint"
expect "the replayed bytes are in the file" "record 7" "$(tail -1 "$store/root/logged")"

# An endurant log that does not verify (a segment header damaged after a
# crash that left stable writes in it): reported, not repairable, nothing
# changed; with the byte put back, the log replays.
mnt || { fail "mount"; exit 1; }
stable_writes "$mp/logged2" again 4
crash
seg0=$store/journal/seg-0
orig=$(od -A n -t x1 -j 3 -N 1 "$seg0" | tr -d ' ')
printf '\xee' | dd of="$seg0" bs=1 seek=3 conv=notrunc status=none  # inside the segment's magic
before=$(md5sum "$store"/journal/seg-* | md5sum)
check "a log that does not verify: fsck reports it (exit 4)" fsck_is 4
check "... naming the log, the segment and why" grep -qE "the endurant log does not verify: .*seg-0 at offset 0: not a segment header" <<< "$out"
check "fsck --repair cannot, and says so (exit 4)" fsck_is 4 --repair
check "... not repairable, restore from the blobbers" grep -q "not repairable: nothing replays a log that does not verify" <<< "$out"
expect "the refused repair changed nothing in the log" "$before" "$(md5sum "$store"/journal/seg-* | md5sum)"
printf "\\x$orig" | dd of="$seg0" bs=1 seek=3 conv=notrunc status=none
cycle "the log with its byte put back" "stable write\(s\) after the log's last checkpoint"
expect "its stable writes are in the file" "again 3" "$(tail -1 "$store/root/logged2")"

# Behind the daemon's back, while the store is marked clean.
mnt && "$T" sync "$mp" > /dev/null && umnt
echo sneaky > "$store/root/sneaky"
cycle "a file sync does not know" "sneaky: not known to sync"
mnt && "$T" sync "$mp" > /dev/null && umnt  # a round and a clean stop: the store is marked clean again
rm "$store/root/one"
cycle "a synced file removed" "names a file that no longer exists"
mnt || { fail "mount after the repairs"; exit 1; }
check "after the rescan, the mount shows the sneaked-in file" grep -qx sneaky "$mp/sneaky"
"$T" sync "$mp" > /dev/null
umnt
check "after the rescan and a round, fsck is clean" fsck_is 0
# Progress: --progress draws the tree walk and the records on stderr, to
# their end; into a file without --progress nothing is drawn.
"$T" fsck "$store" --progress > "$work/fsck.out" 2> "$work/fsck.err"; rc=$?
expect "fsck --progress: exit 0" 0 "$rc"
check "fsck --progress: a bar of the records, drawn to 100%" grep -qE "fsck: records .*100%" "$work/fsck.err"
check "fsck --progress: the tree walk counted" grep -qE "fsck: tree .*[1-9][0-9]* " "$work/fsck.err"
check "fsck --progress: the report is on stdout as always" grep -q "0 problem(s)" "$work/fsck.out"
"$T" fsck "$store" > /dev/null 2> "$work/fsck.err"
expect "fsck into a file: no bar" "" "$(cat "$work/fsck.err")"

# A stub whose size changed.
mnt --cache-size 6M -o cache_reserve=0 || { fail "mount with a cache size"; exit 1; }
for i in 1 2 3; do head -c 4194304 /dev/urandom > "$work/s$i"; cp "$work/s$i" "$mp/s$i"; done
"$T" sync "$mp" > /dev/null
stub=
for _ in $(seq 300); do
  for i in 1 2 3; do (( $(stat -c %b "$store/root/s$i") == 0 )) && stub=s$i && break 2; done
  sleep 0.2
done
umnt
if [[ -n $stub ]]; then
  pass "a file became a stub ($stub)"
  truncate -s 100 "$store/root/$stub"
  cycle "a stub of the wrong size" "$stub: a stub of 4194304 bytes on the blobbers, but 100 bytes here"
  expect "the stub has its size back" 4194304 "$(stat -c %s "$store/root/$stub")"
  mnt || { fail "mount"; exit 1; }
  check "the stub reads back whole from the blobber" cmp -s "$work/$stub" "$mp/$stub"
  umnt
else
  fail "a file became a stub (none of s1-s3 within 60 s)"
fi

# --remote: shards on the blobbers (2+1: one may go; two may not).
shard_of() { find "$fs/b$1/b" -type f -name '*.[0-9]' | sort | sed -n "$2p"; }  # a block shard on blobber $1
check "fsck --remote of healthy blobbers (exit 0)" fsck_is 0 --remote --no-progress
check "... says how many objects it read" grep -qE "^fsck --remote: round [0-9]+ .*, [1-9][0-9]* objects: [1-9][0-9]* good" <<< "$out"
bad=$(shard_of 1 1) gone=$(shard_of 2 3)
printf 'XXXX' | dd of="$bad" bs=1 seek=100 conv=notrunc status=none
rm "$gone"
n_bad=$(basename "${bad%.*}") n_gone=$(basename "${gone%.*}")
check "damaged shards: fsck --remote reports them (exit 4)" fsck_is 4 --remote --no-progress
check "... naming the damaged object" grep -q "$n_bad: 1 bad and 0 missing shard(s)" <<< "$out"
check "... naming the object with a missing shard" grep -q "$n_gone: 0 bad and 1 missing shard(s)" <<< "$out"
check "fsck --remote --repair rewrites them (exit 1)" fsck_is 1 --remote --repair --no-progress
check "the missing shard is back" test -f "$gone"
check "then fsck --remote finds nothing (exit 0)" fsck_is 0 --remote --no-progress
# A cut chain: every shard of a middle round's journal gone. fsck names
# the round it reaches and what it cannot read; only a scrub of the
# writer's mount mends it (its synced state rewritten as a snapshot).
mnt -o snapshot_every=0 || { fail "mount"; exit 1; }
for i in 1 2 3; do echo "round $i" > "$mp/r$i"; "$T" sync "$mp" > /dev/null; done
epoch=$("$T" status "$mp" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"]["sync"]["epoch"])')
umnt
mid=$(printf 'n/j/%016x-' $((epoch - 1)))
victims=$(cd "$fs" && ls -d b?/"$mid"* 2>/dev/null)
check "the journal of round $((epoch - 1)) has shards to remove" test -n "$victims"
(cd "$fs" && rm -rf $victims)
check "a cut chain: fsck --remote reports it (exit 4)" fsck_is 4 --remote --no-progress
check "... naming where it is cut" grep -qE "the chain is cut after round $((epoch - 2)): " <<< "$out"
check "fsck --remote --repair does not mend it, and says what will (exit 4)" fsck_is 4 --remote --repair --no-progress
check "... a scrub of the writer's mount" grep -q "not repairable by fsck: a scrub of the writer's mount" <<< "$out"
mnt || { fail "mount"; exit 1; }
"$T" scrub "$mp" > "$work/scrub.out" 2>&1; rc=$?
umnt
expect "tcfs scrub of the mount rewrites the synced state (exit 0)" 0 "$rc"
check "then fsck --remote finds the chain whole (exit 0)" fsck_is 0 --remote --no-progress

lost=$(shard_of 0 2); rm "$lost" "$(find "$fs/b1/b" "$fs/b2/b" -name "$(basename "${lost%.*}").*" | head -1)"
check "an object with one shard left: fsck --remote reports it (exit 4)" fsck_is 4 --remote --no-progress
check "... naming it" grep -q "$(basename "${lost%.*}")" <<< "$out"
check "fsck --remote --repair cannot, and says so (exit 4)" fsck_is 4 --remote --repair --no-progress
check "... not repairable" grep -q "not repairable" <<< "$out"

harness_summary fsck_test
