#!/usr/bin/env bash
# sync_test.sh — a store synced to 2+1 directory blobbers, through real
# mounts on a loop-mounted XFS image:
#   write through the mount (files, a large one, links, xattrs, modes,
#   owners, times, a fifo, compounds) -> tcfs sync -> restore into a fresh
#   store (tcfs init --from-blobbers) -> the restored mount shows the same
#   tree byte for byte (stubs fetched on read);
#   one blobber gone: restored reads still work, sync waits and says what is
#   pending, and catches up when the blobber is back;
#   two blobbers gone: reads of stubs fail with EIO, never wrong data;
#   a corrupted shard: read correctly and rewritten;
#   compounds racing syncs: every restored image holds whole compounds;
#   kill -9 of the daemon: the remount rescans and the next sync is complete.
# Environment (meson): TCFS_BIN, TCFS_BATCH, TREESNAP. With TCFS_TEST_BUCKET
# and the AWS_* variables set (tests/unit/blob_s3_run.sh starts a Ceph RGW
# and sets them) the three blobbers are s3://BUCKET/b0..b2 instead, and the
# steps that take a blobber directory away or damage a shard file are
# replaced by misconfiguration checks (unreachable endpoint, bad secret),
# and by a stop while RGW does not answer (SIGSTOP; TCFS_RGW_STATE names
# its pids): bounded by stop_timeout, the cut round sent by the next mount.
set -uo pipefail
: "${TCFS_BIN:?}" "${TCFS_BATCH:?}" "${TREESNAP:?}"
. "$(dirname "$0")/blobber_harness.sh"
harness_init sync_test 1536M b

restore_to() {  # store: a fresh store from the blobbers
  "$T" init --store "$1" --from-blobbers "${B[@]}" > "$work/restore.out" 2>&1
}
snap() { "$TREESNAP" --times "$1"; }

# --- a source store, written through its mount -------------------------------
"$T" init --store "$fs/A" --blobber "${B[@]}" --ec 2+1 > /dev/null; rc=$?
ok '[[ $rc == 0 ]]' "init 2+1: rc $rc"
"$T" init --store "$fs/X" --blobber "${B[0]}" --ec 2+1 > /dev/null 2>&1; rc=$?
ok '[[ $rc == 2 && ! -e $fs/X ]]' "init with K+M != blobbers: rc $rc, nothing created"
"$T" init --store "$fs/X" --blobber "dir://$fs/missing" > "$work/err" 2>&1; rc=$?
ok '[[ $rc == 1 && $(cat "$work/err") == *"$fs/missing"* ]]' "init with a missing blobber: rc $rc: $(cat "$work/err")"
mA=$work/mA
start "$fs/A" "$mA"
mkdir -p "$mA/docs/deep/er" "$mA/data"
for i in $(seq 200); do printf 'small file %d\n' "$i" > "$mA/docs/s$i.txt"; done
head -c $((12 << 20)) /dev/urandom > "$mA/data/big.bin"
head -c 100000 /dev/urandom > "$mA/docs/deep/er/mid.bin"
ln -s ../data/big.bin "$mA/docs/link"
ln "$mA/docs/s1.txt" "$mA/hard"
setfattr -n user.color -v blue "$mA/docs/s2.txt"
chmod 751 "$mA/docs/deep"; chmod 4755 "$mA/docs/s3.txt"
chown 1234:4321 "$mA/docs/s4.txt"
touch -d @1500000000.5 "$mA/docs/s5.txt"
mkfifo "$mA/fifo"
: > "$mA/empty"
src=$work/src; mkdir -p "$src/t/u"; echo one > "$src/t/a"; head -c 300000 /dev/urandom > "$src/t/u/b"
"$TCFS_BATCH" put -q "$src/t" "$mA/put" && "$TCFS_BATCH" mv -q "$mA/docs/s6.txt" "$mA/put/moved.txt"
rc=$?; ok '[[ $rc == 0 ]]' "compounds through tcfs-batch"
"$T" sync "$mA" --timeout 60 > /dev/null; rc=$?
ok '[[ $rc == 0 ]]' "tcfs sync: rc $rc"
st=$("$T" status "$mA")
ok '[[ $st == *"2+1 erasure code"* && $st == *"synced:     epoch"* && $(grep -c " ok$" <<< "$st") == 3 ]]' "tcfs status: $st"
js=$("$T" status --json "$mA")
ok '[[ $js == *"\"pending\": 0"* ]]' "status --json: nothing pending"
if ((s3 == 0)); then  # 200 small files went into packs: far fewer objects per blobber than files.
  nobj=$(find "$fs/b0" -type f | wc -l)
  ok '(( nobj < 40 ))' "objects on one blobber: $nobj (200+ files)"
fi
snap "$mA" > "$work/a.snap" || die "treesnap A"

# --- restore into a fresh store: the same tree, byte for byte ----------------
restore_to "$fs/R1"; rc=$?
ok '[[ $rc == 0 && $(cat "$work/restore.out") == *"restored"* ]]' "restore: rc $rc: $(cat "$work/restore.out")"
restore_to "$fs/A" > /dev/null 2>&1; rc=$?
ok '[[ $rc != 0 ]]' "restore into a store that has a tree is refused (rc $rc)"
"$T" init --store "$fs/Y" --blobber "${B[@]}" > "$work/err" 2>&1; rc=$?
ok '[[ $rc == 1 && $(cat "$work/err") == *"already hold a tcfs tree"* ]]' "a new set over used blobbers is refused"
m1=$work/m1
start "$fs/R1" "$m1"
blocks=$(stat -c %b "$fs/R1/root/data/big.bin")
ok '[[ $blocks == 0 ]]' "restored big file is a stub ($blocks blocks)"
snap "$m1" > "$work/r1.snap"
ok 'diff "$work/a.snap" "$work/r1.snap" > "$work/diff1"' "restored tree differs: $(head -5 "$work/diff1")"
ok 'cmp -s "$mA/data/big.bin" "$m1/data/big.bin"' "big file content after fetch"
# The restored store keeps syncing: a change there goes out.
echo "from the restored store" > "$m1/after"
"$T" sync "$m1" --timeout 60 > /dev/null; rc=$?
ok '[[ $rc == 0 ]]' "sync from the restored store: rc $rc"
stop "$m1"
cp "$mA/data/big.bin" "$work/big.ref"
stop "$mA"  # the blobbers now belong to R1's lineage
cp "$work/a.snap" "$work/ref.snap"

if ((s3)); then
  # --- misconfiguration is reported at init, naming the problem --------------
  AWS_ENDPOINT_URL=http://127.0.0.1:9 "$T" init --store "$fs/Z" --blobber "s3://$TCFS_TEST_BUCKET/z" > "$work/err" 2>&1; rc=$?
  ok '[[ $rc == 1 && $(cat "$work/err") == *"127.0.0.1:9"* ]]' "unreachable endpoint: rc $rc: $(cat "$work/err")"
  AWS_SECRET_ACCESS_KEY=wrong "$T" init --store "$fs/Z" --blobber "s3://$TCFS_TEST_BUCKET/z" > "$work/err" 2>&1; rc=$?
  ok '[[ $rc == 1 && $(cat "$work/err") == *"credentials"* ]]' "bad secret: rc $rc: $(cat "$work/err")"
  "$T" init --store "$fs/Z" --blobber "s3://no-such-bucket-$$/z" > "$work/err" 2>&1; rc=$?
  ok '[[ $rc == 1 && $(cat "$work/err") == *"no-such-bucket"* ]]' "missing bucket: rc $rc: $(cat "$work/err")"
  # --- a stop whose blobbers do not answer is bounded (sync.h 11) ------------
  # RGW stopped with SIGSTOP accepts connections and answers nothing: the
  # last round at umount is cut after stop_timeout, requests in flight are
  # cancelled, and the daemon exits; the next mount rescans and sends it.
  rgw_pid=$(awk '$1 == "rgw" { print $2 }' "${TCFS_RGW_STATE:-/nonexistent}/pids" 2>/dev/null | tail -1)
  [[ -z ${TCFS_RGW_STATE:-} ]] || ok '[[ -n $rgw_pid ]]' "radosgw's pid in $TCFS_RGW_STATE/pids"
  if [[ -n $rgw_pid ]]; then
    restore_to "$fs/RS" || die "restore RS"
    ms=$work/ms
    start "$fs/RS" "$ms" -o stop_timeout=3,sync_interval=86400000
    head -c $((6 << 20)) /dev/urandom > "$ms/held.bin"
    cp "$ms/held.bin" "$work/held.ref"
    kill -STOP "$rgw_pid"
    umount "$ms"
    for _ in $(seq 600); do kill -0 "${pid_of[$ms]}" 2>/dev/null || break; sleep 0.1; done
    exited=$(kill -0 "${pid_of[$ms]}" 2>/dev/null && echo no || echo yes)
    kill -CONT "$rgw_pid"
    ok '[[ $exited == yes ]]' "with RGW not answering, the daemon exits after umount (stop_timeout=3)"
    wait "${pid_of[$ms]}" 2>/dev/null; unset "pid_of[$ms]"
    ok 'grep -q "cutting it" "$work/ms.log"' "the daemon log says the last round was cut"
    start "$fs/RS" "$ms"
    ok 'grep -q "rescanning" "$work/ms.log"' "the mount after a cut round rescans"
    "$T" sync "$ms" --timeout 120 > /dev/null; rc=$?
    ok '[[ $rc == 0 ]]' "the cut round is sent by the next mount: rc $rc"
    stop "$ms"
    restore_to "$fs/RT" || die "restore RT"
    start "$fs/RT" "$work/mt"
    ok 'cmp -s "$work/held.ref" "$work/mt/held.bin"' "a restore holds the file the cut round had"
    stop "$work/mt"
  fi
else
# --- one blobber gone: restored reads work; sync waits, then catches up -----
restore_to "$fs/R2" || die "restore R2"
mv "$fs/b1" "$fs/b1.away"
m2=$work/m2
start "$fs/R2" "$m2"
ok 'cmp -s "$src/t/u/b" "$m2/put/u/b" && [[ $(cat "$m2/after") == "from the restored store" ]]' "reads with blobber b1 down"
st=$("$T" status "$m2")
ok '[[ $st == *"DOWN"*"b1"* || $st == *"b1"*"DOWN"* ]]' "status names the down blobber: $st"
echo queued > "$m2/queued"
out=$("$T" sync "$m2" --timeout 3 2>&1); rc=$?
ok '[[ $rc == 1 && $out == *"not on the blobbers"* ]]' "sync with a blobber down says what is pending: rc $rc: $out"
mv "$fs/b1.away" "$fs/b1"
"$T" sync "$m2" --timeout 120 > /dev/null; rc=$?
ok '[[ $rc == 0 ]]' "sync catches up when the blobber is back: rc $rc"
snap "$m2" > "$work/r2.snap"
stop "$m2"

# --- two blobbers gone: EIO, never wrong data --------------------------------
restore_to "$fs/R3" || die "restore R3"
mv "$fs/b0" "$fs/b0.away"; mv "$fs/b2" "$fs/b2.away"
m3=$work/m3
start "$fs/R3" "$m3"
cat "$m3/data/big.bin" > "$work/out3" 2> "$work/err3"; rc=$?
ok '[[ $rc != 0 && $(cat "$work/err3") == *"Input/output error"* ]]' "read with 2 of 3 blobbers gone fails with EIO: $(cat "$work/err3")"
ok 'grep -q "shards usable" "$work/m3.log"' "the daemon log names the failure"
ok '! cmp -s "$work/out3" "$work/big.ref"' "no complete (wrong or right) data came out"
mv "$fs/b0.away" "$fs/b0"; mv "$fs/b2.away" "$fs/b2"
ok 'cmp -s "$work/big.ref" "$m3/data/big.bin"' "the same read works once the blobbers are back"
stop "$m3"

# --- a corrupted shard: detected, read right, rewritten ----------------------
restore_to "$fs/R4" || die "restore R4"
# Data shard 0 of big.bin's first 4 MiB block (named by its SHA-256): plain
# reads use it. By name, since a background round may also have sent blocks
# of a partly written big.bin that no file holds now.
h=$(head -c $((4 << 20)) "$work/big.ref" | sha256sum | cut -c1-64)
shard=$(find "$fs"/b?/b -type f -name "$h.0" | head -1)
[[ -n $shard ]] || die "no data shard of the large file's first block ($h) found"
cp "$shard" "$work/shard.orig"
printf '\xff\xff\xff\xff' | dd of="$shard" bs=1 seek=5000 conv=notrunc status=none
m4=$work/m4
start "$fs/R4" "$m4"
ok 'cmp -s "$work/big.ref" "$m4/data/big.bin"' "content right despite a corrupt shard"
ok 'cmp -s "$shard" "$work/shard.orig"' "the corrupt shard was rewritten"
ok 'grep -q "repair" "$work/m4.log"' "the repair is logged"
stop "$m4"
fi

# --- compounds racing syncs: restored images hold whole compounds only ------
restore_to "$fs/R5" || die "restore R5"
m5=$work/m5
start "$fs/R5" "$m5"
mkdir -p "$m5/set"
for i in 0 1 2 3 4 5 6 7; do echo 0 > "$m5/set/f$i"; done
(
  g=1
  while [[ ! -e $work/stop-writer ]]; do
    for i in 0 1 2 3 4 5 6 7; do printf '{"op":"write","path":"set/f%d","truncate":true,"data":"%d\\n"}\n' "$i" "$g"; done > "$work/c.ndjson"
    "$TCFS_BATCH" -C "$m5" run -q "$work/c.ndjson" || break
    g=$((g + 1))
  done
) &
writer=$!
torn=0 images=0
for round in 1 2 3 4; do
  sleep 0.3
  "$T" sync "$m5" --timeout 60 > /dev/null || { echo "FAIL: sync during compounds" >&2; fails=$((fails + 1)); }
  restore_to "$fs/I$round" || die "restore I$round"
  mi=$work/mi$round
  start "$fs/I$round" "$mi"
  if [[ -d $mi/set ]] && ls "$mi/set"/f* > /dev/null 2>&1; then
    images=$((images + 1))
    n=$(cat "$mi/set"/f* | sort -u | wc -l)
    (( n == 1 )) || { torn=$((torn + 1)); echo "torn image $round: $(cat "$mi/set"/f* | tr '\n' ' ')" >&2; }
  fi
  stop "$mi"
done
touch "$work/stop-writer"; wait "$writer"
ok '(( images == 4 && torn == 0 ))' "restored images while compounds ran: $images, torn: $torn"
ok '(( $(cat "$m5/set/f0") > 4 ))' "the writer ran compounds throughout ($(cat "$m5/set/f0") generations)"

# --- kill -9 of the daemon: the remount rescans; the next sync is complete ----
for i in $(seq 20); do echo "late $i" > "$m5/late$i"; done
kill -9 "${pid_of[$m5]}"; wait "${pid_of[$m5]}" 2>/dev/null
umount -l "$m5"; unset "pid_of[$m5]"
start "$fs/R5" "$m5"
ok 'grep -q "rescanning" "$work/m5.log"' "the remount after kill -9 rescans"
"$T" sync "$m5" --timeout 60 > /dev/null; rc=$?
ok '[[ $rc == 0 ]]' "sync after kill -9: rc $rc"
snap "$m5" > "$work/r5.snap"
stop "$m5"
restore_to "$fs/R6" || die "restore R6"
m6=$work/m6
start "$fs/R6" "$m6" -o gc_keep_rounds=1,gc_keep_age=0  # gc keeps the newest round only (follow.h 8)
snap "$m6" > "$work/r6.snap"
ok 'diff "$work/r5.snap" "$work/r6.snap" > "$work/diff6"' "after kill -9 and resync the restored tree matches: $(head -5 "$work/diff6")"

# --- sources inside the mount while sync rounds freeze the world -------------
# The daemon never reads through its own mount: put of a file already in the
# mount (a copy inside it) and an NDJSON "from" there (refused) must neither
# hang nor wait on a round; timeouts turn a hang into a failure.
( for _ in $(seq 20); do echo "$RANDOM" >> "$m6/churn"; "$T" sync "$m6" --timeout 60 > /dev/null 2>&1; done ) &
churn=$!
hung=0
for i in 1 2 3 4 5; do
  timeout 60 "$TCFS_BATCH" put -q "$m6/data/big.bin" "$m6/self$i.bin" || hung=$((hung + 1))
done
printf '{"op":"write","path":"%s/self1.bin","from":"%s/data/big.bin"}\n' "$m6" "$m6" > "$work/self.ndjson"
timeout 60 "$TCFS_BATCH" run "$work/self.ndjson" > "$work/self.err" 2>&1; rc=$?
wait "$churn"
ok '(( hung == 0 )) && cmp -s "$m6/data/big.bin" "$m6/self5.bin"' "put from inside the mount during sync rounds: $hung failed or hung"
ok '[[ $rc == 2 && $(cat "$work/self.err") == *"inside the tcfs mount"* ]]' "NDJSON from inside the mount during sync rounds: rc $rc: $(cat "$work/self.err")"
rm -f "$m6"/self?.bin "$m6/churn"

# --- gc and scrub -----------------------------------------------------------
head -c $((9 << 20)) /dev/urandom > "$m6/data/big.bin"   # the old blocks become garbage
"$T" sync "$m6" --timeout 60 > /dev/null || die "sync before gc"
out=$("$T" gc "$m6"); rc=$?
removed=$(sed -n 's/.* \([0-9]*\) removed.*/\1/p' <<< "$out")
ok '[[ $rc == 0 && ${removed:-0} -ge 3 ]]' "gc removes the replaced blocks and old journals: rc $rc: $out"
out=$("$T" scrub "$m6"); rc=$?
ok '[[ $rc == 0 && $out == *" 0 not whole"* ]]' "scrub after gc: rc $rc: $out"
snap "$m6" > "$work/r6b.snap"
stop "$m6"
restore_to "$fs/R7" || die "restore R7 after gc"
m7=$work/m7
start "$fs/R7" "$m7"
snap "$m7" > "$work/r7.snap"
ok 'diff "$work/r6b.snap" "$work/r7.snap" > "$work/diff7"' "restore after gc matches: $(head -5 "$work/diff7")"
if ((s3 == 0)); then
  shard=$(find "$fs"/b?/b -type f -name '*.2' | head -1)  # a parity shard: only scrub reads it
  printf 'XXXX' | dd of="$shard" bs=1 seek=100 conv=notrunc status=none
  out=$("$T" scrub "$m7"); rc=$?
  ok '[[ $rc == 0 && $out == *" 1 repaired"* ]]' "scrub repairs a damaged parity shard: rc $rc: $out"
fi
out=$(su nobody -s /bin/sh -c "$T gc $m7" 2>&1); rc=$?
ok '[[ $rc == 1 && ($out == *"only root"* || $out == *"Permission denied"*) ]]' "gc by an unprivileged user is refused: $out"
stop "$m7"

echo "sync_test: $checks checks, $fails failed"
((fails == 0))
