#!/usr/bin/env bash
# sync_crash_test.sh — kill -9 at every crash point of a sync round and of a
# stub's fetch (the registry, util/crash_points.h, protocols "sync" and
# "fetch"), then remount: the tree is what was written, a sync completes,
# and a restore from the blobbers alone shows that tree — nothing committed
# is lost, no round is half there (sync.h 5, 7; fetch.h 3).
# One trial per point on a loop XFS image with 2+1 directory blobbers of
# its own. Environment (meson): TCFS_BIN, TREESNAP.
set -uo pipefail
: "${TCFS_BIN:?}" "${TREESNAP:?}"
. "$(dirname "$0")/blobber_harness.sh"
harness_init sync_crash_test 1G c

points_of() { "$T" debug crash-points | awk -F'\t' -v p="$1" '$2 == p { print $1 }'; }
snap() { "$TREESNAP" "$1"; }
# Waits for the daemon of mountpoint $1 to die, then takes its dead mount away.
crashed() {
  local mp=$1 pid=${pid_of[$1]}
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid"; wait "$pid" 2>/dev/null; unset "pid_of[$mp]"
    umount "$mp" 2>/dev/null || umount -l "$mp"
    return 1
  fi
  wait "$pid" 2>/dev/null; local rc=$?
  unset "pid_of[$mp]"
  umount "$mp" 2>/dev/null || umount -l "$mp"
  ((rc == 137))
}
# restore DIR BLOBBERS...: a fresh store from the blobbers, its tree
# compared with $ref (content read through a mount: stubs fetched).
restore_matches() {
  local store=$1 mp=$work/r; shift
  "$T" init --store "$store" --from-blobbers "$@" > "$work/restore.log" 2>&1 || { cat "$work/restore.log" >&2; return 1; }
  start "$store" "$mp"
  snap "$mp" > "$work/restored.snap"
  stop "$mp"
  cmp -s "$work/ref.snap" "$work/restored.snap" || { diff "$work/ref.snap" "$work/restored.snap" | head >&2; return 1; }
}
# changes DIR: a round's worth of changes of every kind, the same in $fs/ref.
changes() {
  local d
  for d in "$1" "$fs/ref"; do
    head -c 300000 /dev/zero | tr '\0' "$2" > "$d/big"
    echo "new $2" > "$d/new-$2"
    mv "$d/a" "$d/a-$2" && echo moved > "$d/a"
    rm -f "$d/gone"
    mkdir -p "$d/dir-$2" && echo inner > "$d/dir-$2/x"
  done
}

mapfile -t sync_points < <(points_of sync)
mapfile -t fetch_points < <(points_of fetch)
ok '(( ${#sync_points[@]} >= 3 && ${#fetch_points[@]} >= 2 ))' \
  "the registry lists sync and fetch crash points (${#sync_points[@]}, ${#fetch_points[@]})"

n=0
for point in "${sync_points[@]}"; do
  n=$((n + 1))
  S=$fs/s$n mp=$work/m$n
  mkdir -p "$fs/ref" "$fs/p$n/b0" "$fs/p$n/b1" "$fs/p$n/b2"
  rm -rf "$fs/ref"/*
  PB=("dir://$fs/p$n/b0" "dir://$fs/p$n/b1" "dir://$fs/p$n/b2")
  "$T" init --store "$S" --blobber "${PB[@]}" --ec 2+1 > /dev/null || die "init $S"
  start "$S" "$mp"
  for d in "$mp" "$fs/ref"; do echo a > "$d/a"; echo gone > "$d/gone"; head -c 100000 /dev/urandom > "$d/big"; done
  cp "$mp/big" "$fs/ref/big"
  ok '"$T" sync "$mp" --timeout 60 > /dev/null' "$point: the first round syncs"
  stop "$mp"
  TCFS_CRASH_AT=$point start "$S" "$mp"
  changes "$mp" "$n"
  timeout 60 "$T" sync "$mp" --timeout 50 > /dev/null 2>&1
  ok 'crashed "$mp"' "$point: the daemon died at the point (kill -9)"
  snap "$fs/ref" > "$work/ref.snap"
  start "$S" "$mp"
  ok 'snap "$mp" > "$work/now.snap" && cmp -s "$work/ref.snap" "$work/now.snap"' \
    "$point: after the crash the mount shows what was written"
  ok '"$T" sync "$mp" --timeout 60 > /dev/null' "$point: a sync after the crash completes"
  stop "$mp"
  ok 'restore_matches "$fs/r$n" "${PB[@]}"' "$point: a restore from the blobbers shows the whole tree"
done

# Fetch: a restored store holds stubs; the daemon dies as a fetch completes.
for point in "${fetch_points[@]}"; do
  n=$((n + 1))
  R=$fs/f$n mp=$work/m$n
  "$T" init --store "$R" --from-blobbers "${PB[@]}" > /dev/null 2>&1 || die "restore $R"
  TCFS_CRASH_AT=$point start "$R" "$mp"
  timeout 60 cat "$mp/big" > /dev/null 2>&1
  ok 'crashed "$mp"' "$point: the daemon died at the point (kill -9)"
  start "$R" "$mp"
  ok 'snap "$mp" > "$work/now.snap" && cmp -s "$work/ref.snap" "$work/now.snap"' \
    "$point: after the crash every file reads back right"
  echo after > "$mp/after-$n" && echo after > "$fs/ref/after-$n"
  snap "$fs/ref" > "$work/ref.snap"
  ok '"$T" sync "$mp" --timeout 60 > /dev/null' "$point: a sync after the crash completes"
  stop "$mp"
  ok 'restore_matches "$fs/r$n" "${PB[@]}"' "$point: a restore from the blobbers shows the whole tree"
done

echo "sync_crash_test: $((checks - fails)) passed, $fails failed"
((fails == 0))
