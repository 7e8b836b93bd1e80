#!/usr/bin/env bash
# crash_sweep.sh — kill -9 the real daemon at every named step of the
# compound protocol, recover, and check the tree is exactly the pre-compound
# state (or, for a crash after the commit point, exactly the post-compound
# state). Then crash tcfs-undo itself at its own points and run it again.
#
# Each trial: a fresh store on a loop-mounted XFS image (reflink on), a tree
# populated through the mount, a snapshot of <store>/root (inode numbers and
# mtimes included: undo restores into the original inodes, and times), then
# the daemon started with TCFS_CRASH_AT=<point>:<nth> and a compound with
# every operation kind sent by tcfs-batch. Recovery is done two ways per
# trial: offline with tcfs-undo, and separately by remounting (the daemon
# recovers before serving).
#
# Environment: TCFS_BIN, TCFS_BATCH, TCFS_UNDO, TREESNAP (set by meson).
# Options: --max-nth N (hits of one point to try, default 40), --mount-opts
# O (-o options for every mount, e.g. writeback=off), --compound full|markless
# (full, the default: every operation kind; markless: only new names —
# create, mkdir, symlink, link — with writes and attribute changes, the
# compound that never advances its progress marker, txn/undo.h). TCFS_ASAN
# set: at most 4 hits of each point. Exit 0 when every
# trial matched, 1 otherwise.
set -uo pipefail

: "${TCFS_BIN:?}" "${TCFS_BATCH:?}" "${TCFS_UNDO:?}" "${TREESNAP:?}"
max_nth=40 mopts=() kind=full
while (($#)); do
  case "$1" in
    --max-nth) max_nth=$2; shift 2 ;;
    --compound) kind=$2; shift 2 ;;
    --mount-opts) mopts=(-o "$2"); shift 2 ;;
    *) echo "crash_sweep: unknown argument $1" >&2; exit 2 ;;
  esac
done
# The sanitizer pass of tools/run-tests (TCFS_ASAN=1) looks for memory
# errors on the crash and recovery paths: every point is still crashed at,
# but at most 4 hits of each (the main pass sweeps the asked count).
if [[ -n ${TCFS_ASAN:-} ]] && ((max_nth > 4)); then
  echo "crash_sweep: the ASan pass: at most 4 hits of each point (asked $max_nth)"
  max_nth=4
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/tcfs-crash.XXXXXX")
fsdir=$work/fs mnt=$work/mnt store=$work/fs/store
mkdir -p "$fsdir" "$mnt"
daemon_pid=""

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  grep -qs " $mnt fuse" /proc/mounts && { umount "$mnt" 2>/dev/null || umount -l "$mnt"; }
  [[ -n $daemon_pid ]] && kill -9 "$daemon_pid" 2>/dev/null
  grep -qs " $fsdir " /proc/mounts && { umount "$fsdir" 2>/dev/null || umount -l "$fsdir"; }
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

truncate -s 1G "$work/img"
mkfs.xfs -q -m reflink=1 "$work/img" || exit 1
mount -o loop "$work/img" "$fsdir" || exit 1

fail=0 trials=0
die() { echo "crash_sweep: $*" >&2; exit 1; }

start_daemon() {  # [crash spec]
  env ${1:+TCFS_CRASH_AT=$1} "$TCFS_BIN" mount --store "$store" -f "${mopts[@]}" "$mnt" >>"$work/daemon.log" 2>&1 &
  daemon_pid=$!
  for _ in $(seq 100); do
    grep -qs " $mnt fuse" /proc/mounts && return 0
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.05
  done
  cat "$work/daemon.log" >&2
  die "daemon did not mount"
}

stop_daemon() {  # unmount a live daemon, or clear the dead mount of a killed one
  if kill -0 "$daemon_pid" 2>/dev/null; then
    umount "$mnt" || die "umount failed"
    wait "$daemon_pid"; local drc=$?
    ((drc == 0)) || { tail -5 "$work/daemon.log" >&2; die "daemon exited with status $drc after umount"; }
  else
    wait "$daemon_pid" 2>/dev/null
    umount "$mnt" 2>/dev/null || umount -l "$mnt"
  fi
  daemon_pid=""
}

# The tree every trial starts from, written through the mount.
populate() {
  rm -rf "$store"
  start_daemon ""
  (
    cd "$mnt" || exit 1
    mkdir -p a/b d/e empty
    printf 'original-f1' > a/f1
    printf 'original-f2-longer' > a/b/f2
    printf 'top-file' > top
    printf 'deep' > d/e/g
    ln a/f1 a/h
    ln -s f1 a/s
    setfattr -n user.x -v old a/f1
    setfattr -n user.y -v why a/f1
    touch -d @1000000 a/b/f2 a/b a/f1 a d/e/g d/e d empty top
  ) || die "populate failed"
  stop_daemon
}

# Every operation kind, mixed, each depending on earlier ones.
[[ $kind == full || $kind == markless ]] || { echo "crash_sweep: --compound full or markless" >&2; exit 2; }
if [[ $kind == markless ]]; then
cat > "$work/compound.ndjson" <<'EOF'
{"op":"mkdir","path":"n","mode":"0755"}
{"op":"create","path":"n/new","mode":"0640","exclusive":true}
{"op":"write","path":"n/new","data":"hello"}
{"op":"write","path":"a/f1","data":"XX","offset":3}
{"op":"create","path":"a/b/made","mode":"0600","exclusive":true}
{"op":"write","path":"a/b/made","data":"made here"}
{"op":"setattr","path":"a/b/f2","mode":"0600","mtime":{"sec":6,"nsec":0}}
{"op":"symlink","path":"n/sl","target":"../a"}
{"op":"link","path":"a/b/f2","path2":"n/hl"}
{"op":"setxattr","path":"a/f1","name":"user.x","value":"new"}
{"op":"mkdir","path":"p/q/r","mode":"0700","parents":true}
{"op":"create","path":"p/q/r/deep","mode":"0644","exclusive":true}
{"op":"write","path":"top","data":"-tail","append":true}
EOF
else
cat > "$work/compound.ndjson" <<'EOF'
{"op":"mkdir","path":"n","mode":"0755"}
{"op":"create","path":"n/new","mode":"0640","exclusive":true}
{"op":"write","path":"n/new","data":"hello"}
{"op":"write","path":"a/f1","data":"XX","offset":3}
{"op":"copy","path":"a/f1","path2":"n/copy"}
{"op":"truncate","path":"a/b/f2","size":4}
{"op":"setattr","path":"a/b/f2","mode":"0600","mtime":{"sec":6,"nsec":0}}
{"op":"setxattr","path":"a/f1","name":"user.x","value":"new"}
{"op":"removexattr","path":"a/f1","name":"user.y"}
{"op":"symlink","path":"n/sl","target":"../a"}
{"op":"link","path":"a/b/f2","path2":"n/hl"}
{"op":"rename","path":"a/b","path2":"n/b2"}
{"op":"remove","path":"a/s"}
{"op":"rename","path":"n/new","path2":"top"}
{"op":"remove","path":"d","recursive":true}
{"op":"rename","path":"a/h","path2":"n/copy","flags":["exchange"]}
{"op":"remove","path":"empty"}
{"op":"mkdir","path":"p/q/r","mode":"0700","parents":true}
{"op":"write","path":"n/copy","data":"-tail","append":true}
EOF
fi

run_compound() { (cd "$mnt" && "$TCFS_BATCH" run -q "$work/compound.ndjson") >>"$work/batch.log" 2>&1; }

# The post-compound state, from an uninterrupted run (no inode numbers or
# times: those differ from run to run).
populate
start_daemon ""
run_compound || die "the compound failed without a crash: $(tail -3 "$work/batch.log")"
stop_daemon
"$TREESNAP" "$store/root" > "$work/post" || die "treesnap failed"

check() {  # label expected-file actual-file
  if ! diff -u "$2" "$3" > "$work/diff"; then
    echo "MISMATCH after $1:" >&2
    head -30 "$work/diff" >&2
    fail=$((fail + 1))
  fi
}

# The client got no answer: wait (bounded) until the daemon that is dying at
# its crash point is gone, so nothing mistakes it for a live one.
await_crash() {
  for _ in $(seq 200); do
    [[ $(ps -o stat= -p "$daemon_pid" 2>/dev/null) == Z* || -z $(ps -o stat= -p "$daemon_pid" 2>/dev/null) ]] && break
    sleep 0.05
  done
}

# trial POINT NTH RECOVERY(undo|remount) -> 0 crashed and checked, 1 no crash
trial() {
  local point=$1 nth=$2 how=$3 committed=0
  [[ $point == txn.after_commit ]] && committed=1
  populate
  "$TREESNAP" --ino --times --root-times "$store/root" > "$work/pre"
  start_daemon "$point:$nth"
  if run_compound; then  # committed and answered: the point was not reached
    stop_daemon
    return 1
  fi
  # No answer: the daemon must be dying at the crash point.
  await_crash
  wait "$daemon_pid"; local drc=$?
  ((drc == 137)) || { echo "daemon exit status $drc after $point:$nth (expected a kill -9)" >&2; fail=$((fail + 1)); }
  stop_daemon
  trials=$((trials + 1))
  if [[ $how == undo ]]; then
    "$TCFS_UNDO" "$store" >> "$work/undo.log" 2>&1 || { echo "tcfs-undo failed after $point:$nth" >&2; fail=$((fail + 1)); }
  else
    start_daemon ""
    stop_daemon
  fi
  if ((committed)); then
    "$TREESNAP" "$store/root" > "$work/now"
    check "$point:$nth ($how)" "$work/post" "$work/now"
  else
    "$TREESNAP" --ino --times --root-times "$store/root" > "$work/now"
    check "$point:$nth ($how)" "$work/pre" "$work/now"
  fi
  return 0
}

# Every point of the protocol, from the registry (util/crash_points.h).
points_of() { "$TCFS_BIN" debug crash-points | awk -F'\t' -v p="$1" '$2 == p { print $1 }'; }
mapfile -t points < <(points_of txn)
((${#points[@]} >= 8)) || die "the registry lists ${#points[@]} txn crash points"
for point in "${points[@]}"; do
  for ((nth = 1; nth <= max_nth; nth++)); do
    trial "$point" "$nth" undo || break
    trial "$point" "$nth" remount
  done
done

# tcfs-undo itself dies at its own points; running it again finishes the job.
mapfile -t undo_points < <(points_of undo)
((${#undo_points[@]} >= 5)) || die "the registry lists ${#undo_points[@]} undo crash points"
for point in "${undo_points[@]}"; do
  for ((nth = 1; nth <= max_nth; nth++)); do
    populate
    "$TREESNAP" --ino --times --root-times "$store/root" > "$work/pre"
    start_daemon "txn.after_exec:1"
    run_compound
    await_crash
    stop_daemon
    TCFS_CRASH_AT="$point:$nth" "$TCFS_UNDO" "$store" >> "$work/undo.log" 2>&1
    rc=$?
    "$TCFS_UNDO" "$store" >> "$work/undo.log" 2>&1 || { echo "second tcfs-undo failed ($point:$nth)" >&2; fail=$((fail + 1)); }
    trials=$((trials + 1))
    "$TREESNAP" --ino --times --root-times "$store/root" > "$work/now"
    check "tcfs-undo crash at $point:$nth" "$work/pre" "$work/now"
    ((rc == 137)) || break  # it finished: the point is hit fewer than nth times
  done
done

# --no-sync: committed, then kill -9 before anything made it durable: the
# compound is there whole, or rolled back whole (recovery may undo it).
for how in undo remount; do
  populate
  "$TREESNAP" --ino --times --root-times "$store/root" > "$work/pre"
  start_daemon ""
  (cd "$mnt" && "$TCFS_BATCH" run -q --no-sync "$work/compound.ndjson") >> "$work/batch.log" 2>&1 ||
    { echo "no-sync compound failed" >&2; fail=$((fail + 1)); }
  kill -9 "$daemon_pid"
  wait "$daemon_pid" 2>/dev/null
  umount "$mnt" 2>/dev/null || umount -l "$mnt"
  daemon_pid=""
  if [[ $how == undo ]]; then "$TCFS_UNDO" "$store" >> "$work/undo.log" 2>&1; else start_daemon ""; stop_daemon; fi
  trials=$((trials + 1))
  "$TREESNAP" --ino --times --root-times "$store/root" > "$work/now"
  if ! cmp -s "$work/pre" "$work/now"; then
    "$TREESNAP" "$store/root" > "$work/now"
    check "no-sync commit then kill -9 ($how)" "$work/post" "$work/now"
  fi
done

echo "crash_sweep: $trials crash trials, $fail mismatches"
# At least one hit of every point (two trials each for the compound's),
# and the two no-sync trials.
least=$((2 * ${#points[@]} + ${#undo_points[@]} + 2))
((trials >= least)) || die "too few trials ($trials, fewer than $least): crash points not reached?"
((fail == 0))
