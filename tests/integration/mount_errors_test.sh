#!/usr/bin/env bash
# mount_errors_test.sh — `tcfs mount` refuses bad input clearly and manages
# its lifecycle cleanly. Runs as root with TCFS_BIN set (meson does both);
# uses a private temp dir on tmpfs filesystems of bounded size, and cleans up
# every mount and daemon it started (by pid; lazy umount only as last resort).
#
# Checked:
#  - each refusal exits non-zero with a "tcfs: error: ..." message naming the
#    problem and leaves nothing mounted: missing mountpoint, mountpoint that is
#    a regular file, non-empty mountpoint (and -o nonempty allows it),
#    mountpoint already mounted, store on a read-only filesystem, no /dev/fuse,
#    a second daemon on a store in use, an unknown FUSE option, no mountpoint;
#  - daemon mode returns 0 only once the mount is up, and `umount` makes the
#    daemon (pid in STORE/lock) exit;
#  - SIGTERM to a foreground daemon unmounts it and it exits 0.
# KEEP_WORK=DIR copies the stderr of every refusal into DIR for reading.
. "$(dirname "$0")/mount_harness.sh"
harness_init mount_errors_test mnterr
fs_mounts=()   # tmpfs mounts we made, unmounted last
fg_pids=()     # foreground daemons we started
mnts=()        # every mountpoint we gave tcfs

test_cleanup() {
  local m p
  for m in "${mnts[@]}"; do
    if is_mounted "$m"; then
      umount "$m" 2>/dev/null || fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    fi
  done
  for p in "${fg_pids[@]}"; do
    if kill -0 "$p" 2>/dev/null; then
      for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$p" 2>/dev/null
    fi
    wait "$p" 2>/dev/null
  done
  for ((i = ${#fs_mounts[@]} - 1; i >= 0; i--)); do
    umount "${fs_mounts[i]}" 2>/dev/null || umount -l "${fs_mounts[i]}" 2>/dev/null
  done
  [[ -n ${KEEP_WORK:-} ]] && cp -r "$work"/stderr.* "$KEEP_WORK"/ 2>/dev/null
}

mount_type() { awk -v m="$1" '$2 == m { t = $3 } END { print t }' /proc/mounts; }

# A bounded tmpfs of our own for stores and mountpoints.
newfs() {  # newfs DIR SIZE
  mkdir -p "$1"
  mount -t tmpfs -o "size=$2,mode=755" tcfs-mnterr "$1" || { echo "cannot mount tmpfs on $1"; exit 1; }
  fs_mounts+=("$1")
}

# Wait (bounded) until MNT shows up in /proc/mounts or PID exits.
wait_mounted() {  # wait_mounted MNT PID
  for _ in $(seq 100); do
    is_mounted "$1" && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  is_mounted "$1"
}
# Wait (bounded) until PID is gone.
wait_gone() {  # wait_gone PID
  for _ in $(seq 100); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

# Start a foreground daemon in the background; sets FG_PID.
start_fg() {  # start_fg STORE MNT LOG [OPTS]
  mnts+=("$2")
  if [[ -n ${4:-} ]]; then
    "$TCFS_BIN" mount --store "$1" -f -o "$4" "$2" >"$3" 2>&1 &
  else
    "$TCFS_BIN" mount --store "$1" -f "$2" >"$3" 2>&1 &
  fi
  FG_PID=$!
  fg_pids+=("$FG_PID")
}
# Unmount a foreground daemon's mount and check it exits 0.
stop_fg() {  # stop_fg MNT PID WHAT
  local rc
  umount "$1" || { fail "$3: umount $1"; return; }
  wait "$2"; rc=$?
  if ((rc == 0)); then pass "$3: daemon exits 0 after umount"; else fail "$3: daemon exited $rc after umount"; fi
}

# Run tcfs expecting a refusal: non-zero exit, "tcfs: error" on stderr
# matching PATTERN (extended regex, case-insensitive), MNT not mounted.
expect_refusal() {  # expect_refusal WHAT PATTERN MNT -- ARGS...
  local what=$1 pat=$2 mnt=$3 rc err
  shift 4
  mnts+=("$mnt")
  err=$work/stderr.$checks
  timeout 20 "$@" >"$work/stdout.$checks" 2>"$err"
  rc=$?
  if ((rc == 0)); then
    fail "$what: exited 0"
  elif ((rc == 124)); then
    fail "$what: hung (killed after 20 s)"
  else
    pass "$what: exits non-zero ($rc)"
  fi
  if grep -q "tcfs: error" "$err" && grep -Eqi -- "$pat" "$err"; then
    pass "$what: message names the problem"
  else
    fail "$what: stderr lacks 'tcfs: error' and /$pat/: $(head -c 400 "$err")"
  fi
  if is_mounted "$mnt"; then
    fail "$what: $mnt was left mounted"
    umount "$mnt" 2>/dev/null || umount -l "$mnt"
  else
    pass "$what: nothing mounted"
  fi
}

newfs "$work/fs" 256m
W=$work/fs
mkdir -p "$W/m1" "$W/m2" "$W/m3" "$W/m4" "$W/m5" "$W/full" "$W/stores"
touch "$W/regular" "$W/full/existing"

# --- refusals in both modes -------------------------------------------------------
for mode in -f daemon; do
  fl=(); [[ $mode == -f ]] && fl=(-f)
  expect_refusal "[$mode] missing mountpoint" "does not exist|no such file" "$W/nope" -- \
    "$TCFS_BIN" mount --store "$W/stores/a" "${fl[@]}" "$W/nope"
  expect_refusal "[$mode] mountpoint is a regular file" "not a directory" "$W/regular" -- \
    "$TCFS_BIN" mount --store "$W/stores/a" "${fl[@]}" "$W/regular"
  expect_refusal "[$mode] mountpoint not empty" "not empty" "$W/full" -- \
    "$TCFS_BIN" mount --store "$W/stores/a" "${fl[@]}" "$W/full"
  expect_refusal "[$mode] unknown FUSE option" "option|bogus" "$W/m5" -- \
    "$TCFS_BIN" mount --store "$W/stores/a" "${fl[@]}" -o no_such_fuse_option_bogus "$W/m5"
  for bad in threads=0 threads=257 threads=many clone_fd=maybe writeback=sometimes; do
    expect_refusal "[$mode] -o $bad" "${bad%%=*}" "$W/m5" -- \
      "$TCFS_BIN" mount --store "$W/stores/a" "${fl[@]}" -o "$bad" "$W/m5"
  done
done
[[ -e $W/regular && ! -d $W/regular ]] && pass "regular file untouched" || fail "regular file changed"

# No mountpoint at all: a usage error.
timeout 20 "$TCFS_BIN" mount --store "$W/stores/a" >/dev/null 2>"$work/usage.err"
rc=$?
check "no mountpoint: exits non-zero ($rc)" test "$rc" -ne 0 -a "$rc" -ne 124
check "no mountpoint: says so" grep -Eqi "mountpoint|required" "$work/usage.err"

# --- -o threads=N,clone_fd=off: mounts and serves -------------------------------------
start_fg "$W/stores/th" "$W/m5" "$work/th.log" threads=2,clone_fd=off
if wait_mounted "$W/m5" "$FG_PID"; then
  check "-o threads=2,clone_fd=off: a file written and read back" \
    sh -c "echo two > '$W/m5/t' && test \"\$(cat '$W/m5/t')\" = two"
  stop_fg "$W/m5" "$FG_PID" "-o threads=2,clone_fd=off"
else
  fail "-o threads=2,clone_fd=off did not mount: $(cat "$work/th.log")"
fi

# --- -o nonempty -------------------------------------------------------------------
start_fg "$W/stores/ne" "$W/full" "$work/ne.log" nonempty
if wait_mounted "$W/full" "$FG_PID"; then
  pass "-o nonempty mounts over a non-empty directory"
  check "-o nonempty: the mount shows the store's (empty) tree" test ! -e "$W/full/existing"
  stop_fg "$W/full" "$FG_PID" "-o nonempty"
  check "-o nonempty: the hidden file is back after umount" test -e "$W/full/existing"
else
  fail "-o nonempty did not mount: $(cat "$work/ne.log")"
fi

# --- already mounted; a second daemon on a store in use --------------------------------
start_fg "$W/stores/s1" "$W/m1" "$work/s1.log"
P1=$FG_PID
if wait_mounted "$W/m1" "$P1"; then
  pass "first mount is up"
  check "mount type is fuse.tcfs" test "$(mount_type "$W/m1")" = fuse.tcfs
  echo hello >"$W/m1/f" && pass "first mount is writable" || fail "write to first mount"
  # The read-ahead set after INIT holds (written before INIT answered, the kernel cut it to 128 KiB).
  # Read only once the mount has answered a request: /proc/mounts lists it before INIT is served,
  # and the daemon sets read-ahead between INIT and its first other request.
  dev=$(awk -v m="$W/m1" '$5 == m { print $3 }' /proc/self/mountinfo)
  expect "the mount's read-ahead is 4 MiB (bdi $dev)" 4096 "$(cat "/sys/class/bdi/$dev/read_ahead_kb" 2>&1)"
  for mode in -f daemon; do
    fl=(); [[ $mode == -f ]] && fl=(-f)
    expect_refusal "[$mode] mountpoint already mounted" "already|mount ?point|busy" "$W/m1-dummy" -- \
      "$TCFS_BIN" mount --store "$W/stores/s2" "${fl[@]}" "$W/m1"
    check "[$mode] already mounted: exactly one mount on it" \
      test "$(awk -v m="$W/m1" '$2 == m' /proc/mounts | wc -l)" -eq 1
    expect_refusal "[$mode] second daemon on the same store" "in use|locked|busy" "$W/m2" -- \
      "$TCFS_BIN" mount --store "$W/stores/s1" "${fl[@]}" "$W/m2"
  done
  check "first mount still serves after the refusals" grep -qx hello "$W/m1/f"
  check "first daemon still running" kill -0 "$P1"
  lockpid=$(tr -dc 0-9 <"$W/stores/s1/lock" 2>/dev/null)
  check "store lock names the daemon pid ($lockpid vs $P1)" test "$lockpid" = "$P1"
  # --- SIGTERM to the foreground daemon --------------------------------------------
  kill -TERM "$P1"
  wait "$P1"; rc=$?
  check "SIGTERM: foreground daemon exits 0 (got $rc)" test "$rc" -eq 0
  check "SIGTERM: the mount is gone" bash -c "! awk -v m='$W/m1' '\$2 == m { f = 1 } END { exit !f }' /proc/mounts"
  check "SIGTERM: data written is in the store" grep -qx hello "$W/stores/s1/root/f"
else
  fail "first mount did not come up: $(cat "$work/s1.log")"
fi

# --- daemon mode: returns once mounted; umount ends the daemon -------------------------
mnts+=("$W/m4")
timeout 30 "$TCFS_BIN" mount --store "$W/stores/s4" "$W/m4" >"$work/d.out" 2>"$work/d.err"
rc=$?
check "daemon mode: exits 0 (got $rc; stderr: $(head -c 300 "$work/d.err"))" test "$rc" -eq 0
if ((rc == 0)); then
  # No waiting here: the mount must already be up.
  check "daemon mode: mounted when the command returns" is_mounted "$W/m4"
  check "daemon mode: mount type is fuse.tcfs" test "$(mount_type "$W/m4")" = fuse.tcfs
  echo daemon >"$W/m4/x" 2>/dev/null && pass "daemon mode: mount is usable" || fail "daemon mode: write failed"
  dpid=$(tr -dc 0-9 <"$W/stores/s4/lock" 2>/dev/null)
  if [[ -n $dpid ]] && kill -0 "$dpid" 2>/dev/null; then
    pass "daemon mode: STORE/lock holds a live pid ($dpid)"
    check "daemon mode: that pid is tcfs" grep -q tcfs "/proc/$dpid/cmdline"
    umount "$W/m4" && pass "daemon mode: umount" || fail "daemon mode: umount failed"
    if wait_gone "$dpid"; then pass "daemon mode: daemon exits after umount"
    else fail "daemon mode: daemon $dpid still running 10 s after umount"; kill -TERM "$dpid"; fi
  else
    fail "daemon mode: no live pid in $W/stores/s4/lock ('$dpid')"
  fi
  check "daemon mode: nothing mounted at the end" bash -c "! grep -qs ' $W/m4 ' /proc/mounts"
fi

# --- store on a read-only filesystem ----------------------------------------------
newfs "$work/ro" 64m
R=$work/ro
mkdir -p "$R/mnt"
# Initialise a store there while writable, then make the filesystem read-only.
start_fg "$R/store" "$W/m3" "$work/ro-init.log"
if wait_mounted "$W/m3" "$FG_PID"; then
  stop_fg "$W/m3" "$FG_PID" "read-only setup"
else
  fail "read-only setup: could not mount: $(cat "$work/ro-init.log")"
fi
mount -o remount,ro "$R" || { fail "cannot remount $R read-only"; exit 1; }
for mode in -f daemon; do
  fl=(); [[ $mode == -f ]] && fl=(-f)
  expect_refusal "[$mode] existing store on a read-only filesystem" "read-only|EROFS" "$W/m3" -- \
    "$TCFS_BIN" mount --store "$R/store" "${fl[@]}" "$W/m3"
  expect_refusal "[$mode] new store on a read-only filesystem" "read-only|EROFS" "$W/m3" -- \
    "$TCFS_BIN" mount --store "$R/newstore" "${fl[@]}" "$W/m3"
done

# --- store and mountpoint overlapping (the daemon would read through its mount) -----
mkdir -p "$W/stores/ov/root/inner" "$W/m6/store-in-mnt"
for mode in -f daemon; do
  fl=(); [[ $mode == -f ]] && fl=(-f)
  expect_refusal "[$mode] mountpoint inside the store" "inside the store" "$W/stores/ov/root/inner" -- \
    "$TCFS_BIN" mount --store "$W/stores/ov" "${fl[@]}" "$W/stores/ov/root/inner"
  expect_refusal "[$mode] store inside the mountpoint" "inside the mountpoint" "$W/m6" -- \
    "$TCFS_BIN" mount --store "$W/m6/store-in-mnt" "${fl[@]}" -o nonempty "$W/m6"
done
mkdir -p "$W/m7/blob"
"$TCFS_BIN" init --store "$W/stores/bl" --blobber "dir://$W/m7/blob" > /dev/null 2>&1 || fail "init of a store with a blobber in m7"
expect_refusal "dir:// blobber inside the mountpoint" "blobber.*inside the mountpoint" "$W/m7" -- \
  "$TCFS_BIN" mount --store "$W/stores/bl" -f -o nonempty "$W/m7"

# --- no /dev/fuse --------------------------------------------------------------------
# A private mount namespace with an empty tmpfs over /dev; the mountpoint is
# checked in our namespace afterwards (the namespace dies with the command).
cat >"$work/nofuse.sh" <<EOF
mount -t tmpfs -o size=1m none /dev || exit 99
exec "$TCFS_BIN" mount --store "$W/stores/nf" -f "$W/m5"
EOF
expect_refusal "no /dev/fuse" "/dev/fuse" "$W/m5" -- unshare -m --propagation private bash "$work/nofuse.sh"

harness_summary mount_errors_test
