# blobber_harness.sh — sourced by the mounted sync and eviction tests:
# a loop-mounted XFS image of a given size at $fs (in a fresh $work), three
# blobbers B[] (directories on the image, or s3://BUCKET/<prefix>0..2 when
# TCFS_TEST_BUCKET and AWS_* are set: tests/unit/blob_s3_run.sh), foreground
# daemons that start()/stop() track by mountpoint, and ok/die. Everything
# is unmounted, killed (by PID) and removed on every exit path.
#   harness_init NAME IMAGE_SIZE PREFIX [AGCOUNT]   e.g. harness_init sync_test 1536M b
# AGCOUNT: allocation groups of the image (2: XFS reuses freed inode numbers
# at once).
# Sets: T work fs s3 B; uses TCFS_BIN; TCFS_KEEP=DIR keeps the daemon logs.
: "${TCFS_BIN:?}"
T=$TCFS_BIN
declare -A pid_of   # mountpoint -> daemon pid
fails=0 checks=0
. "$(dirname "${BASH_SOURCE[0]}")/ok.sh"
die() { echo "$harness_name: $*" >&2; exit 1; }

harness_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for m in "${!pid_of[@]}"; do
    grep -qs " $m fuse" /proc/mounts && { umount "$m" 2>/dev/null || umount -l "$m"; }
    kill -9 "${pid_of[$m]}" 2>/dev/null
  done
  [[ -n ${TCFS_KEEP:-} ]] && cp "$work"/*.log "$TCFS_KEEP"/ 2>/dev/null
  grep -qs " $fs " /proc/mounts && { umount "$fs" 2>/dev/null || umount -l "$fs"; }
  rm -rf "$work"
  exit "$rc"
}

harness_init() {  # name image-size blobber-prefix [agcount=N]
  harness_name=$1
  work=$(mktemp -d "${TMPDIR:-/tmp}/tcfs-$1.XXXXXX")
  fs=$work/fs
  mkdir -p "$fs"
  trap harness_cleanup EXIT
  trap 'exit 130' INT TERM
  truncate -s "$2" "$work/img"
  mkfs.xfs -q -m reflink=1 ${4:+-d "$4"} "$work/img" || die "mkfs.xfs"
  mount -o loop "$work/img" "$fs" || die "mount the image"
  mkdir -p "$fs/b0" "$fs/b1" "$fs/b2"
  if [[ -n ${TCFS_TEST_BUCKET:-} ]]; then
    s3=1 B=("s3://$TCFS_TEST_BUCKET/${3}0" "s3://$TCFS_TEST_BUCKET/${3}1" "s3://$TCFS_TEST_BUCKET/${3}2")
  else
    s3=0 B=("dir://$fs/b0" "dir://$fs/b1" "dir://$fs/b2")
  fi
}

start() {  # store mountpoint [mount arguments...]: a foreground daemon, logging to $work/<mp>.log
  local store=$1 mp=$2; shift 2
  mkdir -p "$mp"
  TCFS_LOG=info "$T" mount --store "$store" -f "$@" "$mp" >> "$work/$(basename "$mp").log" 2>&1 &
  pid_of[$mp]=$!
  for _ in $(seq 200); do grep -qs " $mp fuse" /proc/mounts && return 0; sleep 0.05; done
  tail "$work/$(basename "$mp").log" >&2
  die "tcfs did not mount $mp"
}
stop() {  # mountpoint: unmount, and wait for the daemon's last round and exit
  umount "$1" || die "umount $1"
  wait "${pid_of[$1]}" 2>/dev/null
  unset "pid_of[$1]"
}
