#!/usr/bin/env bash
# remount_test.sh — `mount -o remount,...` of a tcfs mount changes its flags
# in place, through mount(8) and mount.fuse3 as an administrator runs it
# (issue 10, point 4). Runs as root with TCFS_BIN and TCFS_BATCH set (meson
# does both); the store lives on a tmpfs of bounded size in a private temp
# dir; every mount and daemon it started is cleaned up (by pid; connection
# abort as the last resort).
#
# Checked:
#  - `mount -t fuse.tcfs STORE MP` mounts through mount.fuse3 (tcfs on PATH);
#  - remount,ro: the mount is read-only in mountinfo, the same daemon still
#    serves it, reads work, writes, creates, mkdir and a compound get EROFS
#    and change nothing; remount,rw gives them back;
#  - remount,noexec stops exec, remount,exec allows it again;
#  - an unknown option and a non-tcfs mountpoint are refused, naming them,
#    and change nothing; a tcfs daemon option is named as unchanged.
: "${TCFS_BATCH:?set TCFS_BATCH to the tcfs-batch binary}"
. "$(dirname "$0")/mount_harness.sh"
harness_needs_root remount_test

# mount(8) runs its helpers with PATH reset to the standard one, where
# mount.fuse3 looks for `tcfs`: the test runs in a mount namespace of its
# own, with /usr/local/sbin holding this build's tcfs there only.
if [[ -z ${TCFS_REMOUNT_NS:-} ]]; then
  export TCFS_REMOUNT_NS=1
  exec unshare -m --propagation private "$0" "$@"
fi

harness_init remount_test remount
store=$work/fs/store mp=$work/fs/mnt

mount_opts() { awk -v m="$1" '$2 == m { o = $4 } END { print o }' /proc/mounts; }
test_cleanup() {
  stop_tcfs "$mp" "$store"
  umount "$work/fs" 2>/dev/null || umount -l "$work/fs" 2>/dev/null
  umount /usr/local/sbin 2>/dev/null
}

mkdir -p "$work/fs" "$work/bin" /usr/local/sbin
mount -t tmpfs -o size=128M tmpfs "$work/fs" || { echo "FAIL - tmpfs for the store"; exit 1; }
ln -s "$TCFS_BIN" "$work/bin/tcfs"
mount --bind "$work/bin" /usr/local/sbin || { echo "FAIL - bind $work/bin on /usr/local/sbin"; exit 1; }
mkdir -p "$mp"

# check_err WHAT PATTERN CMD...: CMD fails and its stderr matches PATTERN.
check_err() {
  local what=$1 pat=$2 out rc; shift 2
  out=$(timeout 30 "$@" 2>&1 >/dev/null); rc=$?
  if ((rc != 0)) && grep -qiE "$pat" <<<"$out"; then pass "$what"; else fail "$what (rc $rc: $out)"; fi
}
has_opt() { tr ',' '\n' <<<"$(mount_opts "$mp")" | grep -qx "$1"; }

if ! timeout 60 mount -t fuse.tcfs "$store" "$mp"; then
  fail "mount -t fuse.tcfs through mount.fuse3"
  exit 1
fi
check "mount -t fuse.tcfs mounts the store" is_mounted "$mp"
pid=$(daemon_pid "$store")
check "the daemon's pid is in the store's lock file" test -n "$pid"
echo first > "$mp/f"
printf '#!/bin/sh\necho ran\n' > "$mp/script" && chmod 755 "$mp/script"

# Read-only.
check "mount -o remount,ro succeeds" timeout 30 mount -o remount,ro "$mp"
check "the mount is read-only in /proc/mounts" has_opt ro
check "the same daemon serves the mount" test "$(daemon_pid "$store")" = "$pid"
check "no second daemon: one tcfs mount on the mountpoint" \
  test "$(awk -v m="$mp" '$2 == m' /proc/mounts | wc -l)" = 1
check "reads work on the read-only mount" test "$(timeout 10 cat "$mp/f")" = first
check_err "a write gets EROFS" "read-only" sh -c "echo second > '$mp/f'"
check_err "a create gets EROFS" "read-only" touch "$mp/new"
check_err "mkdir gets EROFS" "read-only" mkdir "$mp/dir"
check_err "a compound is refused naming the read-only mount" "read-only.*$mp|$mp.*read-only" \
  "$TCFS_BATCH" mkdir "$mp/cdir"
check "nothing changed: content" test "$(timeout 10 cat "$mp/f")" = first
check "nothing changed: no new names" test ! -e "$mp/new" -a ! -e "$mp/dir" -a ! -e "$mp/cdir"
check "nothing changed in the store" test ! -e "$store/root/cdir" -a ! -e "$store/root/new"

# Read-write again.
check "mount -o remount,rw succeeds" timeout 30 mount -o remount,rw "$mp"
check "the mount is read-write in /proc/mounts" has_opt rw
check "writes work again" sh -c "echo second > '$mp/f' && test \"\$(cat '$mp/f')\" = second"
check "compounds work again" timeout 30 "$TCFS_BATCH" mkdir "$mp/cdir"
check "the compound's directory is there" test -d "$mp/cdir"

# exec / noexec.
check "the script runs on an exec mount" test "$(timeout 10 "$mp/script")" = ran
check "mount -o remount,noexec succeeds" timeout 30 mount -o remount,noexec "$mp"
check "the mount is noexec in /proc/mounts" has_opt noexec
check_err "exec is refused on a noexec mount" "permission denied" "$mp/script"
# tcfs mount -o remount,OPTS applies OPTS over the current flags.
check "tcfs mount -o remount,ro succeeds" timeout 30 "$TCFS_BIN" mount -o remount,ro "$mp"
check "after tcfs mount -o remount,ro: read-only" has_opt ro
check "after tcfs mount -o remount,ro: still noexec" has_opt noexec
check "tcfs mount -o remount,rw succeeds" timeout 30 "$TCFS_BIN" mount -o remount,rw "$mp"
check "after tcfs mount -o remount,rw: read-write, still noexec" bash -c "$(declare -f mount_opts has_opt); mp='$mp'; has_opt rw && has_opt noexec"
check "mount -o remount,exec succeeds" timeout 30 mount -o remount,exec "$mp"
check "the mount is exec again in /proc/mounts" bash -c "! { $(declare -f mount_opts has_opt); mp='$mp'; has_opt noexec; }"
check "the script runs again" test "$(timeout 10 "$mp/script")" = ran

# Refusals change nothing.
check_err "an unknown option is refused, naming it" "unknown option 'bogus'" \
  "$TCFS_BIN" mount -o remount,ro,bogus "$mp"
check "after the refusal the mount is still read-write" has_opt rw
out=$(timeout 30 "$TCFS_BIN" mount -o remount,cache_size=1G "$mp" 2>&1); rc=$?
check "a daemon option at remount is named as unchanged (rc $rc: $out)" \
  test "$rc" = 0 -a -n "$(grep -F 'cache_size=1G is not changed by a remount' <<<"$out")"
check_err "a remount of a mountpoint that is not tcfs is refused" "not a tcfs mount" \
  "$TCFS_BIN" mount -o remount,ro "$work/fs"
check "the tmpfs is still read-write" \
  test "$(awk -v m="$work/fs" '$2 == m { o = $4 } END { print o }' /proc/mounts | cut -d, -f1)" = rw
check "the daemon is still the same" test "$(daemon_pid "$store")" = "$pid"

check "umount ends the mount" timeout 30 umount "$mp"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
check "the daemon exited after umount" bash -c "! kill -0 $pid 2>/dev/null"

harness_summary remount_test
