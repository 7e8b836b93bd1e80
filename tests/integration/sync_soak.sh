#!/usr/bin/env bash
# sync_soak.sh — randomized soak of sync against inode-number reuse (issue
# 10.2): compounds (tcfs-batch, txn on and off), POSIX operations (create,
# write, append, truncate, rename, remove, mkdir, rmdir, rm -r, link,
# symlink, chmod, setfattr, bursts of new files and whole subtrees removed)
# and sync rounds (tcfs sync, and the daemon's
# own every sync_interval) run together on a store on a small XFS image
# with two allocation groups, so freed inode numbers are reused at once.
# At each check (every --check-every seconds and at the end) the mount is
# synced, restored from the blobbers into a fresh store and the two trees
# are compared whole (names, types, contents, modes, owners, link counts,
# mtimes, xattrs: tests/support/treesnap.cpp). A mismatch prints the seed,
# the check and the difference; rerun with --seed to repeat the same
# sequence of operations (sync rounds fall where the clock puts them).
#   sync_soak.sh [--seconds N] [--seed S] [--check-every N] [--image SIZE]
# Environment: TCFS_BIN, TCFS_BATCH, TREESNAP (meson sets them; the bench
# runner tools/bench/sync-soak finds them in a build directory).
set -uo pipefail
: "${TCFS_BIN:?}" "${TCFS_BATCH:?}" "${TREESNAP:?}"
seconds=60 seed=$(( $(date +%s%N) % 1000000 )) check_every=0 image=400M
while (($#)); do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --check-every) check_every=$2; shift 2 ;;
    --image) image=$2; shift 2 ;;
    *) echo "usage: $0 [--seconds N] [--seed S] [--check-every N] [--image SIZE]" >&2; exit 2 ;;
  esac
done
. "$(dirname "$0")/blobber_harness.sh"
harness_init sync_soak "$image" s agcount=2
RANDOM=$seed
echo "sync_soak: seed $seed, $seconds s, checks every ${check_every:-0} s"

r() { echo $((RANDOM % $1)); }
names=(a b c d e f g)
rpath() {  # a random path of depth 1..3 under w/
  local p=w n=$(( $(r 6) / 2 + 1 ))
  for ((i = 0; i < n; i++)); do p+=/${names[$(r ${#names[@]})]}; done
  echo "$p"
}
content() {  # size: deterministic bytes for this point of the sequence
  local n=$1 tag="$RANDOM.$RANDOM"
  ((n == 0)) && return
  yes "$tag" | head -c "$n"
}
rsize() { case $(r 10) in 0) echo $(( $(r 300) * 1024 + $(r 999) )) ;; 1) echo 0 ;; *) r 4000 ;; esac; }

posix_op() {  # one POSIX operation through the mount $m (failures are part of the game)
  local p q; p=$m/$(rpath); q=$m/$(rpath)
  case $(r 18) in
    0|1) mkdir "$p" ;;
    2|3) content "$(rsize)" > "$p" ;;
    4) content "$(r 2000)" >> "$p" ;;
    5) truncate -s "$(r 5000)" "$p" ;;
    6) rm -f "$p" ;;
    7) rmdir "$p" ;;
    8) (( $(r 8) == 0 )) && rm -rf "$p" ;;
    9|10) mv -T "$p" "$q" ;;
    11) ln "$p" "$q" ;;
    12) ln -s "../$(rpath)" "$q" ;;
    13) chmod "$(printf '%o' $(( $(r 512) | 0400 )))" "$p" ;;
    14) setfattr -n "user.k$(r 3)" -v "v$RANDOM" "$p" ;;
    15) (( $(r 2) )) && setfattr -x "user.k$(r 3)" "$p" ;;
    16) mkdir -p "$p" && for ((k = 0; k < 10 + $(r 20); k++)); do content "$(r 300)" > "$p/f$k"; done ;;  # a burst of inodes
    17) rm -rf "$m/w/${names[$(r ${#names[@]})]}" ;;  # a burst freed: XFS hands the numbers out again
  esac
} 2> /dev/null

compound_op() {  # one compound through tcfs-batch: a CLI command or an NDJSON list
  local f=$work/c.ndjson p q
  case $(r 5) in
    0) "$TCFS_BATCH" -q -C "$m" mv "$(rpath)" "$(rpath)" ;;
    1) "$TCFS_BATCH" -q -C "$m" rm $( (($(r 4))) || echo -r) "$(rpath)" ;;
    2) "$TCFS_BATCH" -q -C "$m" mkdir -p "$(rpath)" ;;
    *)
      : > "$f"
      for ((k = 0; k < 2 + $(r 5); k++)); do
        p=$(rpath); q=$(rpath)
        case $(r 9) in
          0) echo "{\"op\":\"mkdir\",\"path\":\"$p\",\"parents\":true}" ;;
          1|2) echo "{\"op\":\"create\",\"path\":\"$p\"}"
               echo "{\"op\":\"write\",\"path\":\"$p\",\"data\":\"$(content $(r 3000))\",\"append\":$( (($(r 2))) && echo true || echo false)}" ;;
          3) echo "{\"op\":\"rename\",\"path\":\"$p\",\"path2\":\"$q\"}" ;;
          4) echo "{\"op\":\"link\",\"path\":\"$p\",\"path2\":\"$q\"}" ;;
          5) echo "{\"op\":\"remove\",\"path\":\"$p\",\"recursive\":$( (($(r 4))) && echo false || echo true)}" ;;
          6) echo "{\"op\":\"setxattr\",\"path\":\"$p\",\"name\":\"user.c$(r 3)\",\"value\":\"$RANDOM\"}" ;;
          7) echo "{\"op\":\"setattr\",\"path\":\"$p\",\"mode\":$(( $(r 512) | 256 ))}" ;;
          8) echo "{\"op\":\"symlink\",\"path\":\"$p\",\"target\":\"x$(r 9)\"}" ;;
        esac >> "$f"
      done
      if (( $(r 3) == 0 )); then "$TCFS_BATCH" -q --no-txn -C "$m" run "$f"; else "$TCFS_BATCH" -q -C "$m" run "$f"; fi ;;
  esac
} > /dev/null 2>&1

nchecks=0
check() {  # sync, restore into a fresh store, compare the whole trees
  nchecks=$((nchecks + 1))
  local R=$fs/R$nchecks mr=$work/mr$nchecks
  timeout 300 "$T" sync "$m" --timeout 240 > "$work/sync.out" 2>&1 ||
    { ok false "seed $seed, check $nchecks: tcfs sync failed: $(cat "$work/sync.out")"; return 1; }
  "$TREESNAP" --times "$m" > "$work/src.snap" || die "treesnap of the source"
  timeout 300 "$T" init --store "$R" --from-blobbers "${B[@]}" > "$work/restore.out" 2>&1 ||
    { ok false "seed $seed, check $nchecks: restore failed: $(cat "$work/restore.out")"; return 1; }
  start "$R" "$mr"
  timeout 300 "$TREESNAP" --times "$mr" > "$work/restored.snap"
  stop "$mr"
  rm -rf "$R"
  diff "$work/src.snap" "$work/restored.snap" > "$work/diff"; local rc=$?
  ok '[[ $rc == 0 ]]' \
    "seed $seed, check $nchecks after $ops operations: the restored tree differs from the source:
$(head -20 "$work/diff")"
  echo "check $nchecks: $(wc -l < "$work/src.snap") objects, $ops operations, $syncs syncs: $( ((fails)) && echo DIFFERS || echo same)"
}

"$T" init --store "$fs/A" --blobber "${B[@]}" --ec 2+1 > /dev/null || die "init"
m=$work/mA
start "$fs/A" "$m" -o sync_interval=$(( 20 + $(r 200) ))
mkdir "$m/w"
ops=0 syncs=0 reused=0
declare -A ino_state  # inode number -> live / gone, sampled every 10 operations
end=$((SECONDS + seconds)) next_check=$((SECONDS + (check_every > 0 ? check_every : seconds + 1)))
while ((SECONDS < end)) && ((fails == 0)); do
  case $(r 20) in
    0) timeout 300 "$T" sync "$m" --timeout 240 > /dev/null 2>&1 || ok false "seed $seed: tcfs sync failed after $ops operations"
       syncs=$((syncs + 1)) ;;
    1|2|3|4) compound_op ;;
    *) posix_op ;;
  esac
  ops=$((ops + 1))
  if ((ops % 10 == 0)); then  # how often XFS handed out a number it had freed
    declare -A now=()
    while read -r i; do now[$i]=1; done < <(find "$fs/A/root/w" -printf '%i\n' 2>/dev/null)
    for i in "${!now[@]}"; do [[ ${ino_state[$i]:-} == gone ]] && reused=$((reused + 1)); ino_state[$i]=live; done
    for i in "${!ino_state[@]}"; do [[ -z ${now[$i]:-} ]] && ino_state[$i]=gone; done
    unset now
  fi
  if ((SECONDS >= next_check && check_every > 0)); then check; next_check=$((SECONDS + check_every)); fi
done
((fails == 0)) && check
stop "$m"
echo "sync_soak: seed $seed: $ops operations, $syncs explicit syncs, $nchecks checks, inode numbers seen reused: $reused"
echo "$checks checks, $fails failed"
if ((fails)); then echo "sync_soak: FAILED with seed $seed (rerun: --seed $seed)" >&2; exit 1; fi
