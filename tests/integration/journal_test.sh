#!/usr/bin/env bash
# journal_test.sh — the endurant log (journal/log.h, -o journal=on) through
# real mounts on a loop-mounted XFS image:
#   * power cuts (xfs_io -x -c shutdown): 8 writers (journal_writer.py:
#     4 append+fsync, 2 append+fdatasync, 2 O_DSYNC overwriting) run, the
#     filesystem is cut, the image remounted; recovery by mounting tcfs
#     (odd trials) or by tcfs-undo then mounting (even trials); every
#     acknowledged record is there, whole and in order, nothing invented
#     (journal_writer.py check-*); the log was in use (status) and the
#     recovery replayed records;
#   * each of the log's crash points (tcfs debug crash-points, protocol
#     journal: before/after a batch — its write and its flush are one
#     RWF_DSYNC write —, a segment's start, inside a checkpoint), the
#     daemon killed there and the filesystem cut at once: the same checks;
#     the replay's points (*replay*): the log left by a kill -9 and a cut,
#     the recovering daemon killed mid-replay and the filesystem cut
#     again, then a second recovery replays it all: the same checks;
#   * kill -9 of the daemon instead of a cut: the same checks;
#   * a store whose log holds records, mounted with journal=off: replayed;
#   * a damaged batch in the middle of the log: the mount refuses, naming
#     the segment and the offset, and changes nothing; repaired, it mounts;
#   * a compound committed through the log (txn.h 14), then a power cut:
#     there whole, and no older record replays over what it changed, nor
#     its own records over a later fsync-ed truncate through the mount;
#     one whose records went to the log while it ran, then rolled back:
#     none replays over the undone files after a power cut; a file the log
#     holds, changed before and after the compound's records went out,
#     whole after a power cut (its own fdatasync comes at the commit);
#   * the default: on (1 GiB image), off on a 200 MiB tmpfs; journal=on
#     with no room for its segments refused with the reason, nothing left.
# Environment: TCFS_BIN, TCFS_UNDO, TCFS_BATCH. Options: --trials N (default 2 cuts).
set -uo pipefail
: "${TCFS_BIN:?}" "${TCFS_UNDO:?}" "${TCFS_BATCH:?}"
trials=2
while (($#)); do
  case "$1" in
    --trials) trials=$2; shift 2 ;;
    *) echo "journal_test: unknown argument $1" >&2; exit 2 ;;
  esac
done
here=$(cd "$(dirname "$0")" && pwd)
W=$here/journal_writer.py
. "$here/mount_harness.sh"
harness_init journal_test journal
fsdir=$work/fs mnt=$work/mnt store=$work/fs/store
mkdir -p "$fsdir" "$mnt"
pids=() daemon=
test_cleanup() {
  local p
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  is_mounted "$mnt" && { umount "$mnt" 2>/dev/null || umount -l "$mnt"; }
  is_mounted "$fsdir" && { umount "$fsdir" 2>/dev/null || umount -l "$fsdir"; }
  is_mounted "$work/small" && { umount "$work/small" 2>/dev/null || umount -l "$work/small"; }
}
truncate -s 1G "$work/img" && mkfs.xfs -q -m reflink=1 "$work/img" || exit 1
mount -o loop "$work/img" "$fsdir" || exit 1

start_daemon() {  # mount options...
  TCFS_LOG=info "$TCFS_BIN" mount --store "$store" -f "$@" "$mnt" >> "$work/daemon.log" 2>&1 &
  daemon=$!
  pids+=("$daemon")
  for _ in $(seq 600); do is_mounted "$mnt" && return 0; kill -0 "$daemon" 2>/dev/null || break; sleep 0.05; done
  return 1
}
stop_daemon() {
  umount "$mnt" 2>/dev/null || umount -l "$mnt"
  wait "$daemon" 2>/dev/null
}
writers=()
start_writers() {
  local w
  writers=()
  for w in 1 2 3 4 5 6; do WRITER=$w python3 "$W" append "$mnt/a$w" "$work/ack-a$w" & writers+=($!); done
  for w in 1 2; do python3 "$W" dsync "$mnt/d$w" "$work/ack-d$w" & writers+=($!); done
}
stop_writers() { local p; for p in "${writers[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; writers=(); }
check_files() {  # what: every writer's file against its acknowledgements
  local w bad=0 out all=""
  for w in 1 2 3 4 5 6; do
    out=$(python3 "$W" check-append "$mnt/a$w" "$work/ack-a$w" 2>&1) || bad=$((bad + 1))
    all+="a$w $out; "
  done
  for w in 1 2; do
    out=$(python3 "$W" check-dsync "$mnt/d$w" "$work/ack-d$w" 2>&1) || bad=$((bad + 1))
    all+="d$w $out; "
  done
  expect "$1: every acknowledged record whole, in order, nothing invented ($all)" 0 "$bad"
}
records() { "$TCFS_BIN" status --json "$mnt" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"].get("journal", {}).get("records", -1))'; }
replayed() { grep -o '[0-9]* records replayed' "$work/daemon.log" | tail -1 | grep -o '^[0-9]*'; }
fresh() {  # a new store on the image
  rm -rf "$store" "$work"/ack-*
}

# --- power cuts ---------------------------------------------------------------
for t in $(seq "$trials"); do
  fresh
  : > "$work/daemon.log"
  start_daemon -o journal=on || { fail "trial $t: mount"; continue; }
  start_writers
  sleep 2
  n=$(records)
  if ((t == 1)); then  # the live figures of tcfs status (after >= 1 s of the checkpointer's loop)
    fig=$("$TCFS_BIN" status --json "$mnt" | python3 -c 'import json,sys; j=json.load(sys.stdin)["status"]["journal"]; print(int(j["records_per_s"] > 0 and j["batches_per_s"] > 0 and j["mean_batch"] >= 1 and j["checkpoint_lag_s"] >= 0), j["records_per_s"], j["mean_batch"])')
    check "tcfs status --json: records/s, batches/s, mean batch, checkpoint lag while 8 writers run ($fig)" test "${fig%% *}" = 1
    check "tcfs status shows the log" grep -q '^log: .* records in .* batches' <<< "$("$TCFS_BIN" status "$mnt")"
  fi
  xfs_io -x -c shutdown "$fsdir"
  sleep 0.3
  stop_writers
  kill -9 "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null
  umount -l "$mnt" 2>/dev/null
  umount "$fsdir" 2>/dev/null || { sleep 1; umount "$fsdir"; } || umount -l "$fsdir"
  mount -o loop "$work/img" "$fsdir" || { fail "trial $t: remount the image"; break; }
  check "trial $t: the log carried the fsyncs ($n records before the cut)" test "${n:-0}" -gt 0
  if ((t % 2 == 0)); then
    out=$("$TCFS_UNDO" "$store" 2>&1); rc=$?
    check "trial $t: tcfs-undo replays the log: $(head -1 <<< "$out")" test "$rc" = 0 -a -n "$(grep -o 'replayed [1-9][0-9]* stable' <<< "$out")"
  fi
  start_daemon -o journal=on || { fail "trial $t: mount after the cut: $(tail -3 "$work/daemon.log")"; continue; }
  ((t % 2)) && check "trial $t: the mount replayed $(replayed) records" test "$(replayed)" -gt 0
  check_files "trial $t (power cut, recovered by $( ((t % 2)) && echo the mount || echo tcfs-undo))"
  stop_daemon
done

# --- the log's crash points, each followed by a power cut -----------------------
# The daemon dies at the point (SIGKILL, util/crash_points.h) while the
# writers run; the filesystem is cut at that moment too, so what was only
# in the page cache is gone and the replay must bring back every
# acknowledged record. before_segment:1 is the first segment's start,
# :2 a switch to the next segment (16 MiB on).
points=$("$TCFS_BIN" debug crash-points | awk -F'\t' '$2 == "journal" { print $1 }')
check "the log's crash points are registered: $(echo $points)" test -n "$points"
cut_image() {  # the store's filesystem loses what it had not flushed, and is mounted again
  xfs_io -x -c shutdown "$fsdir"
  umount -l "$mnt" 2>/dev/null
  umount "$fsdir" 2>/dev/null || { sleep 1; umount "$fsdir"; } || umount -l "$fsdir"
  mount -o loop "$work/img" "$fsdir"
}
cut_and_remount() {  # what: a power cut now, the daemon killed, tcfs mounted again with the log on
  cut_image
  kill -9 "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null
  start_daemon -o journal=on || fail "$1: mount after the cut: $(tail -3 "$work/daemon.log")"
}
for p in $points; do
  [[ $p == *replay* ]] && continue  # they fire in a recovery: the next loop
  case $p in
    journal.before_segment) nths="1 2" ;;          # the first segment's start; a switch
    journal.ckpt_after_syncfs | journal.after_ckpt) nths=2 ;;  # the second checkpoint (1 s loop)
    *) nths=300 ;;
  esac
  for nth in $nths; do
    fresh
    : > "$work/daemon.log"
    TCFS_CRASH_AT=$p:$nth start_daemon -o journal=on || { fail "crash $p:$nth: mount"; continue; }
    start_writers
    for _ in $(seq 300); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.1; done
    wait "$daemon" 2>/dev/null; rc=$?
    xfs_io -x -c shutdown "$fsdir"
    stop_writers
    umount -l "$mnt" 2>/dev/null
    umount "$fsdir" 2>/dev/null || { sleep 1; umount "$fsdir"; } || umount -l "$fsdir"
    mount -o loop "$work/img" "$fsdir" || { fail "crash $p:$nth: remount the image"; break; }
    expect "crash $p:$nth: the daemon died there (SIGKILL)" 137 "$rc"
    start_daemon -o journal=on || { fail "crash $p:$nth: mount after: $(tail -3 "$work/daemon.log")"; continue; }
    check_files "crash $p:$nth + power cut"
    stop_daemon
  done
done

# --- replay interrupted (a crash and a power cut in the middle of recovery), run again ---
for p in $points; do
  [[ $p == *replay* ]] || continue
  for nth in $( [[ $p == journal.replay_record ]] && echo 1 40 || echo 1); do
    fresh
    : > "$work/daemon.log"
    start_daemon -o journal=on || { fail "replay crash $p:$nth: mount"; continue; }
    start_writers
    sleep 1.5
    kill -9 "$daemon"; wait "$daemon" 2>/dev/null
    stop_writers
    cut_image || { fail "replay crash $p:$nth: remount the image"; break; }
    TCFS_CRASH_AT=$p:$nth start_daemon -o journal=on && { fail "replay crash $p:$nth: the mount came up"; stop_daemon; continue; }
    wait "$daemon" 2>/dev/null; rc=$?
    expect "replay crash $p:$nth: the recovering daemon died there (SIGKILL)" 137 "$rc"
    cut_image || { fail "replay crash $p:$nth: remount the image"; break; }
    start_daemon -o journal=on || { fail "replay crash $p:$nth: mount after: $(tail -3 "$work/daemon.log")"; continue; }
    check "replay crash $p:$nth: the second recovery replayed $(replayed) records" test "$(replayed)" -gt 0
    check_files "replay crash $p:$nth + power cut, replayed again"
    stop_daemon
  done
done

# --- kill -9 of the daemon ------------------------------------------------------
fresh
start_daemon -o journal=on || fail "kill trial: mount"
start_writers
sleep 1.5
kill -9 "$daemon"; wait "$daemon" 2>/dev/null
sleep 0.3
stop_writers
umount -l "$mnt" 2>/dev/null
start_daemon -o journal=on || fail "kill trial: mount again"
check_files "kill -9 of the daemon"
stop_daemon

# --- a log with records, mounted with journal=off --------------------------------
fresh
: > "$work/daemon.log"
start_daemon -o journal=on
python3 - "$mnt/x" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
for i in range(10):
    os.pwrite(fd, b"%04d" % i, i * 4)
    os.fsync(fd)
EOF
kill -9 "$daemon"; wait "$daemon" 2>/dev/null; umount -l "$mnt"
start_daemon -o journal=off || fail "journal=off: mount"
expect "journal=off: the log left by the last mount is replayed ($(replayed) records), then unused" "" "$(records | grep -v '^-1$')"
check "journal=off: records replayed" test "$(replayed)" -gt 0
expect "journal=off: the file as written" "00000001000200030004000500060007000800090" "$(cat "$mnt/x")0"
stop_daemon

# --- a damaged batch in the middle ------------------------------------------------
fresh
start_daemon -o journal=on
python3 - "$mnt/y" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
for i in range(8):
    os.pwrite(fd, b"y" * 100, i * 100)
    os.fsync(fd)
EOF
kill -9 "$daemon"; wait "$daemon" 2>/dev/null; umount -l "$mnt"
seg=$(for f in "$store"/journal/seg-*; do printf '%s %s\n' "$(od -A n -t u8 -j 16 -N 8 "$f" | tr -d ' ')" "$f"; done | sort -n | tail -1 | cut -d' ' -f2)
off=$((4096 * 3 + 60))  # inside the third batch (each small batch is one 4 KiB block)
orig=$(od -A n -t x1 -j "$off" -N 1 "$seg" | tr -d ' ')
printf "\\x$(printf %02x $((0x$orig ^ 0xff)))" | dd of="$seg" bs=1 seek="$off" conv=notrunc status=none  # inverted: always a change
before=$(md5sum < "$seg")
out=$("$TCFS_BIN" mount --store "$store" -f -o journal=on "$mnt" 2>&1); rc=$?
is_mounted "$mnt" && umount "$mnt"
check "a damaged batch in the middle: the mount refuses, naming segment and offset: $out" \
  test "$rc" != 0 -a -n "$(grep -o "$(basename "$seg") at offset 12288" <<< "$out")"
expect "the refused mount changed nothing in the log" "$before" "$(md5sum < "$seg")"
check "the refusal says how to go on (restore or move the log aside)" grep -q 'restore .*journal from a copy, or move it aside' <<< "$out"
printf "\\x$orig" | dd of="$seg" bs=1 seek="$off" conv=notrunc status=none
start_daemon -o journal=on || fail "repaired: mount"
expect "repaired: the log replays and the file is whole" "$(printf 'y%.0s' $(seq 800))" "$(cat "$mnt/y")"
stop_daemon

# --- an mtime set alone, then fsync: the fsync makes it durable through the log ---
# (fs_journal.cpp 1: a setattr of the mtime keeps the file on the log and
# sets jtimes, so the fsync writes a record with no data). Cut at once,
# before the checkpointer's next syncfs.
fresh
start_daemon -o journal=on || fail "mtime: mount"
out=$(python3 - "$mnt/t" 2>&1 <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR, 0o644)
os.write(fd, b"t" * 100)
os.fsync(fd)
os.utime(sys.argv[1], ns=(1_000_000_000, 1_234_567_891_000_000_000))
os.fsync(fd)
print("ok")
PY
)
cut_and_remount "mtime"
expect "an mtime set alone and fsync-ed survives a power cut ($out)" "1234567891.000000000 100" \
  "$(stat -c '%.9Y %s' "$mnt/t" 2>&1)"
stop_daemon

# --- compounds committed through the log (txn.h 14), then a power cut -------------
# On XFS a sync-on compound's unsynced bytes go into the log and one force
# of XFS's log covers its metadata (no syncfs). Cut at once, before the
# checkpointer's next syncfs: the compound is there whole. And the records
# never replay over a later change: a file the log already holds (an
# fsync-ed write through the mount) that a compound truncates or clones
# over must not get its old bytes back (log.h 8: its own fdatasync and a
# Drop), nor may a compound's record replay over a later own fsync of the
# file through the mount (a truncate, fs_journal.cpp 3).
batch() { (cd "$mnt" && "$TCFS_BATCH" run -q "$@") >> "$work/batch.log" 2>&1; }
fresh
start_daemon -o journal=on || fail "compound: mount"
python3 - "$mnt" <<'PY'
import os, sys
m = sys.argv[1]
def put(name, data):
    fd = os.open(os.path.join(m, name), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    os.write(fd, data)
    os.fsync(fd)  # a new file's first fsync is its own (fs_journal.cpp 1)
    os.pwrite(fd, data[:4096], 0)
    os.fsync(fd)  # through the log: the file is live there
    os.close(fd)
put("old1", b"O" * 8192)
put("old2", b"P" * 8192)
put("old3", b"Q" * 8192)
put("src", b"S" * 5000)
fd = os.open(os.path.join(m, "old3"), os.O_WRONLY)
os.pwrite(fd, b"BB", 0)  # not fsync-ed: the compound's commit must keep it, and its own write
os.close(fd)
PY
{
  for i in $(seq 0 199); do
    printf '{"op":"create","path":"c/f%03d","mode":"0644"}\n' "$i"
    printf '{"op":"write","path":"c/f%03d","data":"%s"}\n' "$i" "$(printf 'c%.0s' $(seq 100))$i"
  done
  echo '{"op":"truncate","path":"old1","size":0}'
  echo '{"op":"truncate","path":"old1","size":100}'
  echo '{"op":"copy","path":"src","path2":"old2"}'
  echo '{"op":"write","path":"old3","data":"C","offset":3}'
  echo '{"op":"create","path":"later","mode":"0644"}'
  echo '{"op":"write","path":"later","data":"compound data that a later truncate removes"}'
} > "$work/c1.ndjson"
sed -i '1i {"op":"mkdir","path":"c","mode":"0755"}' "$work/c1.ndjson"
before=$(records)
batch "$work/c1.ndjson" || fail "compound: the compound failed: $(tail -3 "$work/batch.log")"
after=$(records)
python3 - "$mnt/later" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.ftruncate(fd, 0)
os.fsync(fd)  # its own fsync (a truncate): the compound's record of it must not come back
PY
cut_and_remount "compound"
got=$(python3 - "$mnt" <<'PY'
import os, sys
m = sys.argv[1]
bad = [i for i in range(200) if open(f"{m}/c/f{i:03d}", "rb").read() != b"c" * 100 + str(i).encode()]
print("files", 200 - len(bad), "old1", open(f"{m}/old1", "rb").read() == b"\0" * 100,
      "old2", open(f"{m}/old2", "rb").read() == b"S" * 5000,
      "old3", open(f"{m}/old3", "rb").read() == b"BBQC" + b"Q" * 8188, "later", os.path.getsize(f"{m}/later"))
PY
)
expect "a compound committed through the log survives a power cut whole; nothing older replays over it" \
  "files 200 old1 True old2 True old3 True later 0" "$got"
check "the compound committed through the log: $before records before it, $after after" test "$((after - before))" -ge 202
stop_daemon

# --- a file the log holds, changed before and after the compound's records went out ---
# Such a file gets no records of the compound: its own fdatasync and a
# Drop make it durable (log.h 8). That fdatasync must come at the commit,
# after the compound's last change of it, not when the records before it
# went to the log (logged.h Feed): its second write would then be durable
# nowhere. Cut at once, before the checkpointer's next syncfs.
fresh
start_daemon -o journal=on || fail "live file: mount"
python3 - "$mnt" <<'PY'
import os, sys
fd = os.open(os.path.join(sys.argv[1], "live"), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
os.write(fd, b"L" * 8192)
os.fsync(fd)  # its own (a new file's first fsync)
os.pwrite(fd, b"l" * 4096, 0)
os.fsync(fd)  # through the log: the file is live there
os.close(fd)
PY
python3 - "$work/live.ndjson" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    f.write(json.dumps({"op": "write", "path": "live", "data": "A", "offset": 0}) + "\n")
    f.write(json.dumps({"op": "create", "path": "big", "mode": "0644"}) + "\n")
    f.write(json.dumps({"op": "write", "path": "big", "data": "G" * (1 << 20)}) + "\n")
    f.write(json.dumps({"op": "write", "path": "live", "data": "B", "offset": 1}) + "\n")
PY
batch "$work/live.ndjson" || fail "live file: the compound failed: $(tail -3 "$work/batch.log")"
cut_and_remount "live file"
got=$(python3 - "$mnt" <<'PY'
import sys
m = sys.argv[1]
live = open(f"{m}/live", "rb").read()
print("live", live == b"AB" + b"l" * 4094 + b"L" * 4096, "big", open(f"{m}/big", "rb").read() == b"G" * (1 << 20))
PY
)
expect "a file the log holds, changed before and after the compound's records went out: whole after a power cut" \
  "live True big True" "$got"
stop_daemon

# --- a compound whose records went to the log while it ran, then rolled back ------
# The log takes a compound's records while its operations run (logged.h
# Feed), so one that fails later has records there. Its roll back retires
# them before its RR goes (txn.h 14): cut at once, the replay must not put
# the rolled-back bytes over the file the undo restored.
fresh
start_daemon -o journal=on || fail "rolled back: mount"
python3 - "$mnt" <<'PY'
import os, sys
fd = os.open(os.path.join(sys.argv[1], "r"), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
os.write(fd, b"R" * 8192)
os.fsync(fd)
os.close(fd)
PY
python3 - "$work/rb.ndjson" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    f.write(json.dumps({"op": "write", "path": "r", "data": "N" * (2 << 20)}) + "\n")
    f.write(json.dumps({"op": "create", "path": "n", "mode": "0644"}) + "\n")
    f.write(json.dumps({"op": "write", "path": "n", "data": "M" * (2 << 20)}) + "\n")
    f.write(json.dumps({"op": "remove", "path": "absent"}) + "\n")
PY
before=$(records)
batch "$work/rb.ndjson"; rc=$?
after=$(records)
check "the compound failed at its last operation and was rolled back (rc $rc): $(tail -2 "$work/batch.log")" test "$rc" = 1
check "... after its records went to the log ($before records before it, $after after)" test "$((after - before))" -ge 8
cut_and_remount "rolled back"
got=$(python3 - "$mnt" <<'PY'
import os, sys
m = sys.argv[1]
print("r", open(f"{m}/r", "rb").read() == b"R" * 8192, "n", os.path.exists(f"{m}/n"))
PY
)
expect "a rolled-back compound's records do not replay over the undone files after a power cut" "r True n False" "$got"
stop_daemon

# --- the default: on; off on a small store filesystem; no room for the segments ---
has_log() { "$TCFS_BIN" status --json "$mnt" | python3 -c 'import json,sys; print(int("journal" in json.load(sys.stdin)["status"]))'; }
fresh
start_daemon || fail "default: mount"
expect "default on a 1 GiB filesystem: the log is on" 1 "$(has_log)"
stop_daemon
small=$work/small
mkdir -p "$small" && mount -t tmpfs -o size=200M tcfs-journal-small "$small" || fail "a 200 MiB tmpfs"
store=$small/store
start_daemon || fail "default on 200 MiB: mount"
expect "default on a 200 MiB filesystem: the log is off" 0 "$(has_log)"
expect "default on a 200 MiB filesystem: no segments made" "" "$(ls "$store/journal" 2>&1)"
stop_daemon
out=$(timeout 60 "$TCFS_BIN" mount --store "$store" -f -o journal=on,journal_size=256M "$mnt" 2>&1); rc=$?
is_mounted "$mnt" && umount "$mnt"
check "journal=on with no room for its segments: refused, saying why and what to do: $out" \
  test "$rc" != 0 -a -n "$(grep -o 'cannot make its segments.*No space left.*journal=off mounts without the log' <<< "$out")"
expect "the refused mount left no segment behind" "" "$(ls "$store/journal" 2>&1)"
start_daemon -o journal=on,journal_size=16M || fail "journal=on, 16M on 200 MiB: mount"
expect "journal=on asked for on a small filesystem: the log is on" 1 "$(has_log)"
stop_daemon
store=$work/fs/store
umount "$small" || umount -l "$small"

harness_summary journal_test
