#!/usr/bin/env bash
# systemd_test.sh — the daemon speaks systemd's notify protocol (issue 15,
# systemd; daemon/service.h). This machine has no systemd as PID 1, so the
# test is the service manager's side itself: a datagram socket named by
# $NOTIFY_SOCKET, as systemd passes it to a Type=notify service, read by a
# small listener. Runs as root with TCFS_BIN set; the store is on a tmpfs
# of bounded size; the daemon and the listener are stopped by pid.
#
# Checked:
#  - `tcfs mount -f` with $NOTIFY_SOCKET sends READY=1 with a STATUS= line
#    once the mount answers, and not before it is mounted;
#  - a later STATUS= line reports what is not yet on the blobbers (a
#    file written after the mount) and a round;
#  - umount (as systemctl stop's SIGTERM ends the loop) sends STOPPING=1
#    after READY=1, and the daemon exits 0 with the store clean;
#  - SIGTERM does the same;
#  - without $NOTIFY_SOCKET nothing is sent (the socket stays silent);
#  - packaging/tcfs@.service and packaging/tcfs-example.mount are unit
#    files systemd-analyze accepts (when it is installed), Type=notify.
. "$(dirname "$0")/mount_harness.sh"
harness_init systemd_test systemd
repo=$(cd "$(dirname "$0")/../.." && pwd)
fs=$work/fs store=$work/fs/store mp=$work/mnt sock=$work/notify.sock log=$work/notify.log
listener= tcfs_pid= rc=

test_cleanup() {
  stop_tcfs "$mp" "$store"
  [[ -n $tcfs_pid ]] && kill "$tcfs_pid" 2>/dev/null
  [[ -n $listener ]] && { kill "$listener" 2>/dev/null; wait "$listener" 2>/dev/null; }
  umount "$fs" 2>/dev/null || umount -l "$fs" 2>/dev/null
}
mkdir -p "$fs" "$mp"
mount -t tmpfs -o size=256M tmpfs "$fs" || { echo "FAIL - tmpfs for the store"; exit 1; }
mkdir -p "$fs/blob"
"$TCFS_BIN" init --store "$store" --blobber "dir://$fs/blob" > /dev/null || { echo "FAIL - tcfs init"; exit 1; }

# The service manager's end: every datagram, one line per message
# (newlines inside a message shown as |), flushed as it comes.
start_listener() {
  rm -f "$sock" "$log"
  python3 -u -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        out.write(s.recv(65536).decode(errors="replace").replace("\n", "|") + "\n")
' "$sock" "$log" &
  listener=$!
  for _ in $(seq 50); do [[ -S $sock ]] && return 0; sleep 0.1; done
  return 1
}
stop_listener() { kill "$listener" 2>/dev/null; wait "$listener" 2>/dev/null; listener=; }
# wait_line PATTERN: waits up to 30 s for a message matching PATTERN.
wait_line() {
  for _ in $(seq 300); do grep -qE "$1" "$log" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}
# run_daemon [ENV...]: tcfs mount -f in the background; sets tcfs_pid.
run_daemon() {
  env "$@" "$TCFS_BIN" mount --store "$store" -f -o sync_interval=86400000 "$mp" >> "$work/daemon.log" 2>&1 &
  tcfs_pid=$!
  for _ in $(seq 300); do is_mounted "$mp" && return 0; kill -0 "$tcfs_pid" 2>/dev/null || return 1; sleep 0.1; done
  return 1
}
# wait_exit: sets rc to the daemon's exit status (waits up to 60 s; not
# in a subshell: only this shell can wait for its child).
wait_exit() {
  for _ in $(seq 600); do kill -0 "$tcfs_pid" 2>/dev/null || break; sleep 0.1; done
  wait "$tcfs_pid"
  rc=$?
  tcfs_pid=
}

check "the listener binds its socket" start_listener
check "tcfs mount -f with NOTIFY_SOCKET mounts" run_daemon NOTIFY_SOCKET="$sock"
check "READY=1 with a STATUS= line" wait_line "^READY=1\|STATUS=mounted on $mp: round [0-9]+"
echo "some bytes" > "$mp/f"
sync -f "$mp/f"
check "a later STATUS= line counts the change not yet on the blobbers" \
  wait_line "^STATUS=round [0-9]+; [1-9][0-9]* change\(s\), [0-9.]+ MiB not yet on the blobbers"
umount "$mp"
wait_exit
expect "the daemon exits 0 after umount" 0 "$rc"
check "STOPPING=1 at the end" wait_line "^STOPPING=1\|STATUS=unmounting"
ready_line=$(grep -n "^READY=1" "$log" | head -1 | cut -d: -f1)
stop_line=$(grep -n "^STOPPING=1" "$log" | head -1 | cut -d: -f1)
check "READY=1 comes before STOPPING=1" test -n "$ready_line" -a -n "$stop_line" -a "${ready_line:-0}" -lt "${stop_line:-0}"
expect "READY=1 was sent once" 1 "$(grep -c '^READY=1' "$log")"

# SIGTERM, as systemctl stop sends it.
: > "$log"
check "tcfs mount -f again" run_daemon NOTIFY_SOCKET="$sock"
check "READY=1 again" wait_line "^READY=1"
pending=$("$TCFS_BIN" status "$mp" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"]["sync"]["pending"])')
expect "the stop's last round left nothing pending" 0 "$pending"
kill -TERM "$tcfs_pid"
wait_exit
expect "SIGTERM: the daemon exits 0" 0 "$rc"
check "SIGTERM: STOPPING=1" wait_line "^STOPPING=1"
check "SIGTERM: the mount is gone" bash -c "! awk -v m='$mp' '\$2 == m { f = 1 } END { exit !f }' /proc/mounts"

# Without NOTIFY_SOCKET: silence.
: > "$log"
check "tcfs mount -f without NOTIFY_SOCKET" run_daemon
sleep 1  # give a stray message time to arrive (absence cannot be awaited)
umount "$mp"
wait_exit
expect "without NOTIFY_SOCKET: exits 0" 0 "$rc"
expect "without NOTIFY_SOCKET: nothing sent" 0 "$(wc -l < "$log")"
stop_listener

# The unit files.
for u in tcfs@.service tcfs-example.mount; do
  check "$u exists" test -f "$repo/packaging/$u"
done
check "tcfs@.service is Type=notify" grep -qx "Type=notify" "$repo/packaging/tcfs@.service"
if command -v systemd-analyze > /dev/null; then
  # verify needs the ExecStart binary where the unit says: /usr/sbin/tcfs
  # exists only after installing; checked in a mount namespace with this build's.
  # A bad line is a warning there (e.g. "Failed to parse service type"):
  # any output at all is a complaint.
  mkdir -p "$work/sbin" && ln -sf "$TCFS_BIN" "$work/sbin/tcfs"
  out=$(unshare -m --propagation private bash -c "mount --bind '$work/sbin' /usr/sbin &&
    systemd-analyze verify --man=no '$repo/packaging/tcfs@.service' 2>&1")
  expect "systemd-analyze verify tcfs@.service: no complaint" "" "$out"
  cp "$repo/packaging/tcfs-example.mount" "$work/mnt-tcfs.mount"  # named after its Where=
  out=$(systemd-analyze verify --man=no "$work/mnt-tcfs.mount" 2>&1)
  expect "systemd-analyze verify of the example .mount unit: no complaint" "" "$out"
fi

harness_summary systemd_test
