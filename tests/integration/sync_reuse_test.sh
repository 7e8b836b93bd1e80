#!/usr/bin/env bash
# sync_reuse_test.sh — objects whose inode number XFS reused reach the
# blobbers whole (issue 10.2). The store is on a small XFS image with two
# allocation groups, so a freed inode number is handed out again at once:
# files are synced and removed, then new directories and files (taking
# their numbers) are made, synced and restored into a fresh store, which
# must show the same tree; later rounds that change them go out too.
# Environment (meson): TCFS_BIN, TREESNAP.
set -uo pipefail
: "${TCFS_BIN:?}" "${TREESNAP:?}"
. "$(dirname "$0")/blobber_harness.sh"
harness_init sync_reuse 300M r agcount=2

snap() { "$TREESNAP" --times "$1"; }
sync_now() { timeout 120 "$T" sync "$1" --timeout 60 > "$work/sync.out" 2>&1; }
restore_cmp() {  # label: restore into a fresh store, compare with the source mount
  local r=$fs/R$1 m=$work/m$1
  timeout 120 "$T" init --store "$r" --from-blobbers "${B[@]}" > "$work/restore.out" 2>&1 ||
    { ok false "restore $1: $(cat "$work/restore.out")"; return; }
  start "$r" "$m"
  snap "$mA" > "$work/a.snap"; snap "$m" > "$work/r.snap"
  diff "$work/a.snap" "$work/r.snap" > "$work/diff"; local rc=$?
  ok '[[ $rc == 0 ]]' "$1: restored tree differs: $(head -8 "$work/diff")"
  stop "$m"
}

"$T" init --store "$fs/A" --blobber "${B[@]}" --ec 2+1 > /dev/null || die "init"
mA=$work/mA
start "$fs/A" "$mA"
mkdir "$mA/A"
reused=0
for round in 1 2 3; do
  for d in $(seq 12); do
    mkdir "$mA/A/d$d"
    for f in $(seq 5); do echo "round $round dir $d file $f" > "$mA/A/d$d/f$f"; done
  done
  sync_now "$mA"; rc=$?; ok '[[ $rc == 0 ]]' "round $round: sync of the files: $(cat "$work/sync.out")"
  old=$(stat -c %i "$fs"/A/root/A/d*/f* | sort -u)
  rm -r "$mA"/A/d*
  mkdir "$mA/A/new$round"; echo data > "$mA/A/new$round/x"
  mkdir "$mA/A/new$round/sub"; echo more > "$mA/A/new$round/sub/y"
  ln "$mA/A/new$round/x" "$mA/A/new$round/sub/x-link"
  setfattr -n user.k -v "v$round" "$mA/A/new$round/sub/y"
  new=$(stat -c %i "$fs/A/root/A/new$round" "$fs/A/root/A/new$round"/x "$fs/A/root/A/new$round"/sub "$fs/A/root/A/new$round"/sub/y)
  reused=$((reused + $(comm -12 <(echo "$old") <(echo "$new" | sort -u) | wc -l)))
  sync_now "$mA"; rc=$?; ok '[[ $rc == 0 ]]' "round $round: sync of the new tree: $(cat "$work/sync.out")"
done
ok '(( reused > 0 ))' "XFS reused no inode number (the test proves nothing): $reused"
restore_cmp 1
# Later rounds that change the objects bring their changes out.
for round in 1 2 3; do
  echo changed >> "$mA/A/new$round/x"; echo changed >> "$mA/A/new$round/sub/y"
  chmod 640 "$mA/A/new$round/sub/y"; mkdir "$mA/A/new$round/sub/later"
done
sync_now "$mA"; rc=$?; ok '[[ $rc == 0 ]]' "sync of the changes: $(cat "$work/sync.out")"
restore_cmp 2
stop "$mA"
echo "$checks checks, $fails failed (inode numbers reused: $reused)"
(( fails == 0 ))
