#!/usr/bin/env bash
# evict_test.sh — a store with a cache size, synced to 2+1 blobbers, through
# real mounts on a loop-mounted XFS image (sync/evict.h):
#   over the cap, clean files become stubs least recently used first; a file
#   open through the mount and dirty files are never evicted; the store's
#   files end under the cap; stubs read back byte for byte (and report
#   their full size in st_blocks, and SEEK_DATA/SEEK_HOLE see their data);
#   a write into a stub keeps the rest of its content;
#   a crash at each step of an eviction (TCFS_CRASH_AT) loses nothing: the
#   remount rescans, reads are right, and what goes to the blobbers after
#   is right (a restore compares equal);
#   the free-space reserve evicts when the filesystem runs low;
#   a full filesystem with nothing evictable gives the writer ENOSPC, and
#   the daemon carries on;
#   with the blobbers gone an evicted file gives EIO, never wrong data.
# Environment (meson): TCFS_BIN, TCFS_BATCH, TREESNAP. With TCFS_TEST_BUCKET
# and AWS_* set (tests/unit/blob_s3_run.sh starts a Ceph RGW) the blobbers
# are s3://BUCKET/e0..e2 and the step that takes blobber directories away is
# left out.
set -uo pipefail
: "${TCFS_BIN:?}" "${TCFS_BATCH:?}" "${TREESNAP:?}"
. "$(dirname "$0")/blobber_harness.sh"
harness_init evict_test 1G e
mkdir -p "$fs/ref"

blocks() { stat -c %b "$1"; }              # 512-byte blocks allocated
store_bytes() { find "$1/root" -type f -printf '%b\n' | awk '{ s += $1 * 512 } END { print s + 0 }'; }
jget() { "$T" status --json "$1" | python3 -c "import json,sys; j=json.load(sys.stdin)['status']; print($2)"; }
# Waits until cond holds (up to ~90 s; the evictor looks once a second).
wait_for() { for _ in $(seq 450); do eval "$1" && return 0; sleep 0.2; done; return 1; }

cap=$((24 << 20))
MiB8=$((8 << 20))

# --- over the cap: least recently used clean files go; open ones stay --------
"$T" init --store "$fs/A" --blobber "${B[@]}" --ec 2+1 > /dev/null || die "init A"
mA=$work/mA
mkdir -p "$mA"
"$T" mount --store "$fs/A" -f --cache-size 12Q "$mA" > "$work/err" 2>&1; rc=$?
ok '[[ $rc == 2 && $(cat "$work/err") == *"cache_size=12Q"* ]] && ! grep -qs " $mA fuse" /proc/mounts' \
  "a malformed cache size is refused: rc $rc: $(cat "$work/err")"
# No background rounds: files stay dirty (not evictable) until tcfs sync;
# over the cap the evictor asks for a round (evict.h 5), which fails while
# a blobber is gone (directory blobbers only).
start "$fs/A" "$mA" --cache-size 24M -o cache_reserve=0,sync_interval=86400000
((s3)) || mv "$fs/b1" "$fs/b1.away"
for i in 0 1 2 3 4 5 6 7; do
  head -c $MiB8 /dev/urandom > "$fs/ref/f$i"
  cp "$fs/ref/f$i" "$mA/f$i"
  touch -d "2001-01-0$((i + 1))" "$mA/f$i"   # older to newer: f0 .. f7
done
exec 7< "$mA/f0"                  # the oldest, but open: never evicted
cat "$mA/f3" > /dev/null          # opened last: the most recently used
if ((s3 == 0)); then
  sleep 3                         # the evictor has looked: all dirty, nothing to evict
  ok '(( $(jget "$mA" "j[\"cache\"][\"evicted_files\"]") == 0 ))' "dirty files are not evicted"
  ok '(( $(store_bytes "$fs/A") > cap ))' "the store stays over the cap while its files cannot sync"
  mv "$fs/b1.away" "$fs/b1"
fi
"$T" sync "$mA" --timeout 60 > /dev/null || die "sync A"
wait_for '(( $(store_bytes "$fs/A") <= cap ))'
used=$(store_bytes "$fs/A")
ok '(( used <= cap ))' "the store's files end under the cap: $used bytes, cap $cap"
ok '(( $(blocks "$fs/A/root/f0") > 0 ))' "the open file f0 stays local"
ok '(( $(blocks "$fs/A/root/f3") > 0 ))' "the most recently used file f3 stays local"
stubs=0; for i in 1 2 4 5 6; do (( $(blocks "$fs/A/root/f$i") == 0 )) && stubs=$((stubs + 1)); done
ok '(( stubs >= 4 ))' "older clean files became stubs: $stubs of f1 f2 f4 f5 f6"
ok '(( $(jget "$mA" "j[\"cache\"][\"evicted_files\"]") >= 4 && $(jget "$mA" "j[\"cache\"][\"stubs\"]") >= 4 ))' \
  "status counts the evictions and stubs: $("$T" status --json "$mA" | tr -d '\n ')"
st=$("$T" status "$mA")
ok '[[ $st == *"cap 25165824"* && $st == *"stubs"* ]]' "tcfs status shows the cap and stubs: $st"
ok '(( $(stat -c %b "$mA/f1") * 512 >= MiB8 ))' "a stub reports its full size in st_blocks: $(stat -c %b "$mA/f1")"
ok '[[ $(stat -c %Y "$mA/f1") == $(date -d 2001-01-02 +%s) ]]' "a stub keeps its mtime"
seek=$(python3 -c "
import os; fd = os.open('$mA/f2', os.O_RDONLY)
print(os.lseek(fd, 0, os.SEEK_DATA), os.lseek(fd, 0, os.SEEK_HOLE))")
ok '[[ $seek == "0 $MiB8" ]]' "SEEK_DATA/SEEK_HOLE on a stub see its data: $seek"
cp --sparse=always "$mA/f4" "$work/f4.copy"
ok 'cmp -s "$fs/ref/f4" "$work/f4.copy"' "cp --sparse=always of a stub copies its content"
rm -f "$work/f4.copy"
bad=0; for i in 0 1 2 3 4 5 6 7; do cmp -s "$fs/ref/f$i" "$mA/f$i" || bad=$((bad + 1)); done
ok '(( bad == 0 ))' "every file reads back byte for byte ($bad differ)"
printf 'XYZ' | dd of="$mA/f5" bs=1 seek=1000 conv=notrunc status=none
printf 'XYZ' | dd of="$fs/ref/f5" bs=1 seek=1000 conv=notrunc status=none
ok 'cmp -s "$fs/ref/f5" "$mA/f5"' "a write into a (re-)evicted file keeps the rest of its content"
"$T" sync "$mA" --timeout 60 > /dev/null || die "sync A again"
wait_for '(( $(store_bytes "$fs/A") <= cap ))'
ok '(( $(store_bytes "$fs/A") <= cap ))' "after reading everything back the store goes under the cap again: $(store_bytes "$fs/A") bytes, cap $cap; $("$T" status --json "$mA" | jq -c '.status | {cache, sync}' 2>&1)"
ok '(( $(blocks "$fs/A/root/f0") > 0 ))' "the open file is still local"
exec 7<&-
stop "$mA"
restore() {  # store: a fresh store from the blobbers, mounted on $work/mR, compared with ref
  "$T" init --store "$1" --from-blobbers "${B[@]}" > /dev/null 2>&1 || return 1
  start "$1" "$work/mR"
  local bad=0
  for i in 0 1 2 3 4 5 6 7; do cmp -s "$fs/ref/f$i" "$work/mR/f$i" || bad=$((bad + 1)); done
  stop "$work/mR"
  rm -rf "$1"
  return $bad
}
ok 'restore "$fs/R1"' "a restore from the blobbers matches"

# --- a crash at each step of an eviction loses nothing ----------------------
# Every eviction point of the registry (util/crash_points.h).
mapfile -t evict_points < <("$TCFS_BIN" debug crash-points | awk -F'\t' '$2 == "evict" { print $1 }')
ok '(( ${#evict_points[@]} >= 2 ))' "the registry lists the eviction crash points (${#evict_points[@]})"
for point in "${evict_points[@]}"; do
  start "$fs/A" "$mA" -o cache_reserve=0
  for i in 0 1 2 3 4 5 6 7; do cat "$mA/f$i" > /dev/null; done   # fetch everything back: over the cap
  stop "$mA"
  TCFS_CRASH_AT=$point start "$fs/A" "$mA" --cache-size 12M -o cache_reserve=0
  pid=${pid_of[$mA]}
  for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  ok '! kill -0 "$pid" 2>/dev/null' "the daemon died at $point"
  wait "$pid" 2>/dev/null; umount -l "$mA" 2>/dev/null; unset "pid_of[$mA]"
  start "$fs/A" "$mA" --cache-size 12M -o cache_reserve=0
  ok 'grep -q "rescanning" "$work/mA.log"' "$point: the remount rescans"
  bad=0; for i in 0 1 2 3 4 5 6 7; do cmp -s "$fs/ref/f$i" "$mA/f$i" || bad=$((bad + 1)); done
  ok '(( bad == 0 ))' "$point: every file reads back right after the crash ($bad differ)"
  "$T" sync "$mA" --timeout 60 > /dev/null; rc=$?
  ok '[[ $rc == 0 ]]' "$point: sync after the crash: rc $rc"
  stop "$mA"
  ok 'restore "$fs/R2"' "$point: a restore after the crash matches (no holes went to the blobbers)"
done

# --- the free-space reserve, and a full filesystem ---------------------------
start "$fs/A" "$mA" -o sync_interval=86400000
for i in 0 1 2 3 4 5 6 7; do cat "$mA/f$i" > /dev/null; done   # all local and clean
ev0=$(jget "$mA" "j[\"cache\"][\"evicted_files\"]")
reserve=$(jget "$mA" "j[\"cache\"][\"reserve_bytes\"]")
free=$(( $(stat -f -c '%a * %S' "$fs") ))
fallocate -l $((free - reserve + (16 << 20))) "$fs/filler"     # outside the store: 16 MiB under the reserve
wait_for '(( $(jget "$mA" "j[\"cache\"][\"evicted_files\"]") > ev0 ))'
ok '(( $(jget "$mA" "j[\"cache\"][\"evicted_files\"]") > ev0 ))' "short of the reserve, clean files are evicted without a cap"
rm -f "$fs/filler"
# Fill the filesystem outside the store to within 16 MiB (files, since XFS
# frees removed blocks in the background and free space is a moving figure).
for n in $(seq 100); do fallocate -l 16M "$fs/filler$n" 2> /dev/null || break; done
dd if=/dev/zero of="$mA/fill" bs=1M count=400 2> "$work/dd.err"; rc=$?
ok '[[ $rc != 0 && $(cat "$work/dd.err") == *"No space left on device"* ]]' "a full filesystem gives the writer ENOSPC: $(tail -1 "$work/dd.err")"
ok 'kill -0 "${pid_of[$mA]}" && ls "$mA" > /dev/null' "the daemon carries on after ENOSPC"
rm -f "$mA/fill" "$fs"/filler*
echo after > "$mA/after-full"
ok '[[ $(cat "$mA/after-full") == after ]]' "writes work again once space is back"
bad=0; for i in 0 1 2 3 4 5 6 7; do cmp -s "$fs/ref/f$i" "$mA/f$i" || bad=$((bad + 1)); done
ok '(( bad == 0 ))' "every file reads right after the reserve evictions ($bad differ)"
stop "$mA"

# --- blobbers gone: an evicted file gives EIO, never wrong data ---------------
if ((s3 == 0)); then
  start "$fs/A" "$mA" --cache-size 4M -o cache_reserve=0
  wait_for '(( $(blocks "$fs/A/root/f6") == 0 && $(blocks "$fs/A/root/f7") == 0 ))'
  mv "$fs/b1" "$fs/b1.away"
  ok 'cmp -s "$fs/ref/f6" "$mA/f6"' "an evicted file reads right with one blobber of 2+1 gone"
  mv "$fs/b0" "$fs/b0.away"
  cat "$mA/f7" > "$work/out7" 2> "$work/err7"; rc=$?
  ok '[[ $rc != 0 && $(cat "$work/err7") == *"Input/output error"* ]]' "with two gone: EIO ($(cat "$work/err7"))"
  ok '! cmp -s "$work/out7" "$fs/ref/f7"' "no complete data came out"
  mv "$fs/b0.away" "$fs/b0"; mv "$fs/b1.away" "$fs/b1"
  ok 'cmp -s "$fs/ref/f7" "$mA/f7"' "the read works once the blobbers are back"
  stop "$mA"
fi

echo "evict_test: $checks checks, $fails failed"
((fails == 0))
