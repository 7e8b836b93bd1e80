#!/usr/bin/env bash
# restore_test.sh — restore with a blobber missing, and a damaged chain of
# rounds, through real mounts on a loop-mounted XFS image with 2+1 dir://
# blobbers (chain.h, restore.h, objects.h 6):
#   a blobber's directory gone altogether at restore: K of K+M there ->
#   the restore goes ahead, naming it and saying the set is degraded; fewer
#   than K -> it fails naming what is missing, creating nothing;
#   the blobber back as an empty directory: tcfs scrub rebuilds its shards,
#   and a restore then works with another blobber gone;
#   the newest round's end object damaged beyond repair: tcfs status does
#   not claim it, the restore fails naming the round it reached and the one
#   it could not read, --accept-older restores the older round and says so,
#   and the writer's next round rewrites the state (restore is whole again);
#   a middle round's end object gone: the restore fails instead of dropping
#   the later rounds, and tcfs scrub on the writer rewrites the state.
# Environment (meson): TCFS_BIN, TREESNAP. dir:// blobbers only (the steps
# take blobber directories away and delete shard files).
set -uo pipefail
: "${TCFS_BIN:?}" "${TREESNAP:?}"
unset TCFS_TEST_BUCKET
. "$(dirname "$0")/blobber_harness.sh"
harness_init restore_test 1024M b

restore_to() {  # store [init arguments...]: a fresh store from the blobbers; output in $work/restore.out
  local store=$1; shift
  timeout 300 "$T" init --store "$store" --from-blobbers "${B[@]}" "$@" > "$work/restore.out" 2>&1
}
out_has() { grep -qF -- "$1" "$work/restore.out"; }
snap() { timeout 300 "$TREESNAP" --times "$1"; }
head_of() { timeout 60 "$T" status --json "$1" | sed -n 's/^ *"head": "\(.*\)",$/\1/p' | head -1; }
lose_end() {  # journal N: delete shards 0..N-1 of its end object (more than M: beyond repair)
  local i
  for ((i = 0; i < $2; i++)); do find "$fs"/b? -path "*/$1/end.$i" -type f -delete; done
}
sync_now() { timeout 120 "$T" sync "$1" --timeout 60 > "$work/sync.out" 2>&1; }

# --- a source tree, synced ----------------------------------------------------
"$T" init --store "$fs/A" --blobber "${B[@]}" --ec 2+1 > /dev/null || die "init A"
mA=$work/mA
start "$fs/A" "$mA"
mkdir -p "$mA/d/e"
for i in $(seq 30); do printf 'file %d\n' "$i" > "$mA/d/f$i"; done
head -c $((6 << 20)) /dev/urandom > "$mA/d/e/big"
ln -s e/big "$mA/d/link"
sync_now "$mA" || die "sync A: $(cat "$work/sync.out")"
snap "$mA" > "$work/a.snap" || die "treesnap A"
stop "$mA"

# --- a lost disk at restore: K of K+M there -> degraded, loudly ---------------
mv "$fs/b1" "$fs/b1.away"
restore_to "$fs/R1"; rc=$?
ok '[[ $rc == 0 ]] && out_has "blobber missing: blobber dir://$fs/b1" && out_has "DEGRADED" && out_has "round reached: epoch"' \
  "restore with b1's directory gone: rc $rc: $(cat "$work/restore.out")"
mv "$fs/b2" "$fs/b2.away"
restore_to "$fs/X"; rc=$?
ok '[[ $rc == 1 && ! -e $fs/X ]] && out_has "restore needs 2 of the 3 blobbers (erasure code 2+1), 2 are missing" && out_has "$fs/b1" && out_has "$fs/b2"' \
  "restore with 2 of 3 gone fails naming both: rc $rc: $(cat "$work/restore.out")"
mv "$fs/b2.away" "$fs/b2"

# --- the disk comes back empty: scrub rebuilds it -----------------------------
m1=$work/m1
start "$fs/R1" "$m1"
snap "$m1" > "$work/r1.snap"
ok 'diff "$work/a.snap" "$work/r1.snap" > /dev/null' "tree restored from 2 of 3 blobbers"
rm -rf "$fs/b1.away"; mkdir -m 700 "$fs/b1"
out=$(timeout 300 "$T" scrub "$m1"); rc=$?
repaired=$(sed -n 's/.* \([0-9]*\) repaired.*/\1/p' <<< "$out")
ok '[[ $rc == 0 && ${repaired:-0} -gt 0 && $out == *" 0 not whole"* ]]' "scrub rebuilds the returned empty blobber: rc $rc: $out"
nb1=$(find "$fs/b1" -type f | wc -l)
ok '(( nb1 > 0 ))' "shards on the returned blobber: $nb1"
stop "$m1"
mv "$fs/b0" "$fs/b0.away"
restore_to "$fs/R2"; rc=$?
ok '[[ $rc == 0 ]] && out_has "blobber missing: blobber dir://$fs/b0"' "restore with b0 gone after the rebuild: rc $rc: $(cat "$work/restore.out")"
m2=$work/m2
start "$fs/R2" "$m2"
snap "$m2" > "$work/r2.snap"
ok 'diff "$work/a.snap" "$work/r2.snap" > /dev/null' "the tree reads back from b1 (rebuilt) and b2"
stop "$m2"
mv "$fs/b0.away" "$fs/b0"

# --- the newest round's end object damaged beyond repair ----------------------
start "$fs/R1" "$m1"
echo g1 > "$m1/gen1"; sync_now "$m1" || die "sync gen1"
echo g2 > "$m1/gen2"; sync_now "$m1" || die "sync gen2"
h2=$(head_of "$m1")
[[ $h2 == n/j/* ]] || die "no head journal in status: $h2"
lose_end "$h2" 2
st=$(timeout 60 "$T" status "$m1")
ok '[[ $st == *"NOT restorable from the blobbers"*"$h2"* && $st != *"synced:     epoch"* ]]' "status does not claim the unreadable round: $st"
restore_to "$fs/R3"; rc=$?
ok '[[ $rc == 1 ]] && out_has "a later round cannot be read: $h2" && out_has "shards usable" && out_has "--accept-older"' \
  "restore fails naming the round: rc $rc: $(cat "$work/restore.out")"
restore_to "$fs/R3" --accept-older; rc=$?
ok '[[ $rc == 0 ]] && out_has "OLDER round" && out_has "$h2"' "--accept-older restores and says so: rc $rc: $(cat "$work/restore.out")"
m3=$work/m3
start "$fs/R3" "$m3"
ok '[[ -e $m3/gen1 && ! -e $m3/gen2 ]]' "the older round: gen1 without gen2"
stop "$m3"
echo g3 > "$m1/gen3"; sync_now "$m1"; rc=$?
ok '[[ $rc == 0 ]] && grep -q "rewriting the synced state as a snapshot" "$work/m1.log"' \
  "the writer's next round rewrites its state: rc $rc: $(cat "$work/sync.out")"
st=$(timeout 60 "$T" status "$m1")
ok '[[ $st == *"synced:     epoch"* && $st != *"NOT restorable"* ]]' "status after the rewrite: $st"
restore_to "$fs/R4"; rc=$?
m4=$work/m4
[[ $rc == 0 ]] && start "$fs/R4" "$m4"
ok '[[ $rc == 0 && $(cat "$m4/gen1" "$m4/gen2" "$m4/gen3" 2>&1) == $(printf "g1\ng2\ng3") ]]' "restore after the rewrite has every round: rc $rc: $(cat "$work/restore.out")"
[[ $rc == 0 ]] && stop "$m4"

# --- a middle round's end object gone ------------------------------------------
echo g4 > "$m1/gen4"; sync_now "$m1" || die "sync gen4"
echo g5 > "$m1/gen5"; sync_now "$m1" || die "sync gen5"
h5=$(head_of "$m1")
echo g6 > "$m1/gen6"; sync_now "$m1" || die "sync gen6"
lose_end "$h5" 3
restore_to "$fs/R5"; rc=$?
ok '[[ $rc == 1 ]] && out_has "later round cannot be read" && out_has "$h5 (epoch"' "a lost middle round fails the restore, naming it: rc $rc: $(cat "$work/restore.out")"
st=$(timeout 60 "$T" status "$m1")
ok '[[ $st == *"NOT restorable"*"$h5"* ]]' "status names the lost middle round: $st"
out=$(timeout 300 "$T" scrub "$m1"); rc=$?
ok '[[ $rc == 0 && $out == *"rewrote the synced state as a snapshot"* ]]' "scrub on the writer rewrites the state: rc $rc: $out"
restore_to "$fs/R6"; rc=$?
m6=$work/m6
[[ $rc == 0 ]] && start "$fs/R6" "$m6"
ok '[[ $rc == 0 && $(cat "$m6/gen4" "$m6/gen5" "$m6/gen6" 2>&1) == $(printf "g4\ng5\ng6") ]]' "restore after scrub keeps the later rounds: rc $rc: $(cat "$work/restore.out")"
[[ $rc == 0 ]] && stop "$m6"
stop "$m1"

echo "restore_test: $checks checks, $fails failed"
((fails == 0))
