#!/usr/bin/env bash
# export_test.sh — file handles of a tcfs mount stay valid across a cache
# drop and a remount of the same store (what an NFS export needs), and go
# stale only for a deleted object. On XFS, ext4 and tmpfs backing stores.
# Runs as root with TCFS_BIN and FHANDLE (tests/support/fhandle) set (meson
# does both); every mount and daemon it starts is cleaned up by pid.
: "${FHANDLE:?set FHANDLE to the fhandle helper}"
. "$(dirname "$0")/mount_harness.sh"
harness_init export_test export
base_mounts=() daemon="" mnt=""

stop_daemon() {
  [[ -n $mnt ]] && is_mounted "$mnt" && { umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null; }
  if [[ -n $daemon ]]; then
    for _ in $(seq 100); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$daemon" 2>/dev/null
    wait "$daemon" 2>/dev/null
    daemon=""
  fi
}

test_cleanup() {
  stop_daemon
  for ((i = ${#base_mounts[@]} - 1; i >= 0; i--)); do
    umount "${base_mounts[i]}" 2>/dev/null || umount -l "${base_mounts[i]}" 2>/dev/null
  done
}

fh() { timeout 30 "$FHANDLE" "$@" 2>/dev/null; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

start_daemon() {  # start_daemon STORE MNT LOG
  TCFS_LOG=info "$TCFS_BIN" mount --store "$1" -f "$2" >>"$3" 2>&1 &
  daemon=$! mnt=$2
  for _ in $(seq 100); do
    is_mounted "$2" && return 0
    kill -0 "$daemon" 2>/dev/null || break
    sleep 0.1
  done
  echo "tcfs did not mount on $2; its log:"; cat "$3"
  exit 1
}

run_fs() {  # run_fs FSTYPE
  local fs=$1 dir=$work/$1
  local base=$dir/base m=$dir/mnt log=$dir/tcfs.log
  mkdir -p "$base" "$m"
  case "$fs" in
    tmpfs) mount -t tmpfs -o size=64M tcfs-export "$base" || exit 1 ;;
    xfs|ext4)
      truncate -s 320M "$dir/img"
      if [[ $fs == xfs ]]; then mkfs.xfs -q "$dir/img"; else mkfs.ext4 -q -F "$dir/img"; fi || exit 1
      mount -o loop "$dir/img" "$base" || exit 1 ;;
  esac
  base_mounts+=("$base")
  local store=$base/store
  mkdir -p "$store"
  start_daemon "$store" "$m" "$log"
  if ! grep -q "export: handles of" "$log"; then
    fail "$fs: the daemon decodes handles (log: $(grep export: "$log"))"
    stop_daemon
    return
  fi
  echo "keep me" >"$m/f"
  echo "gone soon" >"$m/victim"
  mkdir -p "$m/d/sub"
  local ino_f ino_d ino_sub
  ino_f=$(stat -c %i "$m/f") ino_d=$(stat -c %i "$m/d") ino_sub=$(stat -c %i "$m/d/sub")
  fh save "$m/f" "$dir/h.f" && fh save "$m/d/sub" "$dir/h.sub" && fh save "$m/victim" "$dir/h.victim" ||
    { fail "$fs: name_to_handle_at on the mount"; stop_daemon; return; }

  # A cache drop: the daemon gets FORGETs, the kernel asks LOOKUP(id, ".").
  drop_caches
  expect "$fs: file by handle after a cache drop" "keep me" "$(fh cat "$m" "$dir/h.f")"
  expect "$fs: directory by handle after a cache drop" "$ino_sub" "$(fh ino "$m" "$dir/h.sub")"
  drop_caches
  expect "$fs: '..' of a directory opened by handle" "$ino_d" "$(fh parent "$m" "$dir/h.sub")"

  # A remount of the same store: the daemon has forgotten everything.
  stop_daemon
  start_daemon "$store" "$m" "$log"
  expect "$fs: file by handle after a remount" "keep me" "$(fh cat "$m" "$dir/h.f")"
  expect "$fs: its inode number after a remount" "$ino_f" "$(fh ino "$m" "$dir/h.f")"
  expect "$fs: directory by handle after a remount" "$ino_sub" "$(fh ino "$m" "$dir/h.sub")"
  expect "$fs: '..' after a remount" "$ino_d" "$(fh parent "$m" "$dir/h.sub")"
  mv "$m/f" "$m/d/renamed"
  drop_caches
  expect "$fs: renamed file by handle" "keep me" "$(fh cat "$m" "$dir/h.f")"

  # Deleted: stale, now and after another remount.
  rm "$m/victim"
  drop_caches
  expect "$fs: deleted file's handle" "ESTALE" "$(fh cat "$m" "$dir/h.victim")"
  stop_daemon
  start_daemon "$store" "$m" "$log"
  expect "$fs: deleted file's handle after a remount" "ESTALE" "$(fh cat "$m" "$dir/h.victim")"
  expect "$fs: live file's handle after a second remount" "keep me" "$(fh cat "$m" "$dir/h.f")"
  stop_daemon
}

for fs in xfs ext4 tmpfs; do run_fs "$fs"; done
harness_summary export_test
