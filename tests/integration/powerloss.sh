#!/usr/bin/env bash
# powerloss.sh — power cuts in the middle of compounds and fsync-ed writes.
#
# Each trial: a store on a loop-mounted XFS image, tcfs mounted on it, and
# two writers through the mount:
#   * compounds, one after another: compound g writes "g" to each of the
#     files set/f0..f7 (overwrites: undo images needed) and creates gens/g;
#     g is logged (outside the image) once tcfs-batch reports it committed;
#   * a POSIX writer appending numbered records with write+fsync (dd
#     conv=fsync); a record is logged once dd returns.
# At a random moment `xfs_io -x -c shutdown` drops XFS's unflushed log, as a
# power cut does; every process is killed; the image is unmounted and
# mounted again (log recovery), then recovered with tcfs-undo (odd trials)
# or by mounting tcfs (even trials). Checks:
#   * all set/f* carry the same generation v (no compound half-applied),
#     v >= the last acknowledged compound, and gens/ holds exactly 1..v;
#   * the record file holds records 1..m in order, m >= the last acknowledged;
#   * no recovery record is left.
#
# Environment: TCFS_BIN, TCFS_BATCH, TCFS_UNDO (KEEP=1: leave the work
# directory, with the daemon's log, for a look). Options: --trials N (default
# 4), --mount-opts OPTS (tcfs mount -o OPTS, e.g. journal=on: the endurant
# log with compounds; odd trials then replay it with tcfs-undo).
set -uo pipefail
: "${TCFS_BIN:?}" "${TCFS_BATCH:?}" "${TCFS_UNDO:?}"
trials=4 mopts=()
while (($#)); do
  case "$1" in
    --trials) trials=$2; shift 2 ;;
    --mount-opts) mopts=(-o "$2"); shift 2 ;;
    *) echo "powerloss: unknown argument $1" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d "${TMPDIR:-/tmp}/tcfs-powerloss.XXXXXX")
fsdir=$work/fs mnt=$work/mnt store=$work/fs/store
mkdir -p "$fsdir" "$mnt"
pids=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  grep -qs " $mnt fuse" /proc/mounts && umount -l "$mnt"
  grep -qs " $fsdir " /proc/mounts && { umount "$fsdir" 2>/dev/null || umount -l "$fsdir"; }
  [[ -n ${KEEP:-} ]] || rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "powerloss: $*" >&2; exit 1; }
fail=0
truncate -s 1G "$work/img"
mkfs.xfs -q -m reflink=1 "$work/img" || exit 1

start_daemon() {
  "$TCFS_BIN" mount --store "$store" -f "${mopts[@]}" "$mnt" >> "$work/daemon.log" 2>&1 &
  daemon=$!
  pids+=("$daemon")
  for _ in $(seq 100); do grep -qs " $mnt fuse" /proc/mounts && return 0; sleep 0.05; done
  tail "$work/daemon.log" >&2
  die "daemon did not mount"
}

compound_writer() {  # logs acknowledged generations to $work/acked
  local g=1
  while :; do
    {
      for i in 0 1 2 3 4 5 6 7; do printf '{"op":"write","path":"set/f%d","truncate":true,"data":"%d\\n"}\n' "$i" "$g"; done
      printf '{"op":"create","path":"gens/%d","exclusive":true}\n' "$g"
    } > "$work/c.ndjson"
    echo "$g" > "$work/attempted"
    if (cd "$mnt" && "$TCFS_BATCH" run -q "$work/c.ndjson") 2>/dev/null; then
      echo "$g" >> "$work/acked"
    else
      return 0
    fi
    g=$((g + 1))
  done
}

fsync_writer() {  # logs acknowledged records to $work/records-acked
  local n=1
  while :; do
    printf '%08d\n' "$n" | dd of="$mnt/records" oflag=append conv=notrunc,fsync status=none 2>/dev/null || return 0
    echo "$n" >> "$work/records-acked"
    n=$((n + 1))
  done
}

check() {  # trial
  local root=$store/root v ok=1
  v=$(cat "$root/set/f0" 2>/dev/null)
  for i in 1 2 3 4 5 6 7; do
    [[ $(cat "$root/set/f$i" 2>/dev/null) == "$v" ]] || { echo "trial $1: set/f$i is '$(cat "$root/set/f$i")', f0 is '$v': half-applied" >&2; ok=0; }
  done
  local acked=0 gens
  [[ -s $work/acked ]] && acked=$(tail -1 "$work/acked")
  ((v >= acked)) || { echo "trial $1: generation $v survived, but $acked was acknowledged as committed" >&2; ok=0; }
  gens=$(ls "$root/gens" | sort -n | tr '\n' ' ')
  [[ $gens == "$(seq -s ' ' 1 "$v") " || ($v == 0 && -z $gens) ]] || { echo "trial $1: gens/ holds '$gens' for generation $v" >&2; ok=0; }
  local racked=0 m
  [[ -s $work/records-acked ]] && racked=$(tail -1 "$work/records-acked")
  m=$(wc -l < "$root/records")
  ((m >= racked)) || { echo "trial $1: $m records survived, $racked were acknowledged by fsync" >&2; ok=0; }
  [[ $(head -n "$m" "$root/records") == "$(seq -f %08g 1 "$m")" ]] || { echo "trial $1: records file is not 1..$m" >&2; ok=0; }
  [[ -z $(ls -A "$store/txn" 2>/dev/null) ]] || { echo "trial $1: undo images left in txn/" >&2; ok=0; }
  ((ok)) || fail=$((fail + 1))
  echo "trial $1: generation $v (acknowledged $acked), $m records (acknowledged $racked)"
}

for ((t = 1; t <= trials; t++)); do
  mount -o loop "$work/img" "$fsdir" || die "mount image"
  rm -rf "$store"
  : > "$work/acked"; : > "$work/records-acked"
  start_daemon
  mkdir -p "$mnt/set" "$mnt/gens" && for i in 0 1 2 3 4 5 6 7; do echo 0 > "$mnt/set/f$i"; done
  : > "$mnt/records"
  sync
  compound_writer & pids+=($!)
  fsync_writer & pids+=($!)
  sleep "$(awk -v s=$RANDOM 'BEGIN { srand(s); printf "%.2f", 0.3 + rand() * 1.5 }')"
  xfs_io -x -c shutdown "$fsdir" || die "xfs_io shutdown"  # the power cut
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  pids=()
  umount -l "$mnt" 2>/dev/null
  umount "$fsdir" || die "umount after shutdown"
  mount -o loop "$work/img" "$fsdir" || die "remount (log recovery)"
  if ((t % 2)); then
    "$TCFS_UNDO" "$store" >> "$work/undo.log" 2>&1 || { cat "$work/undo.log" >&2; die "tcfs-undo failed"; }
  else
    start_daemon
    umount "$mnt" && wait "$daemon"
    pids=()
  fi
  check "$t"
  umount "$fsdir" || die "umount"
done
echo "powerloss: $trials trials, $fail failed"
((fail == 0))
