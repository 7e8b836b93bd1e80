# mount_harness.sh — sourced by the tests that mount tcfs themselves and
# report check by check (mount_errors_test.sh, export_test.sh,
# remount_test.sh); the mounted sync tests have blobber_harness.sh.
#
# Contract:
#   harness_needs_root NAME: TCFS_BIN must be set, and the test run as root
#       (else: exit 77, skipped).
#   harness_init NAME TAG: harness_needs_root NAME, then makes the private temp dir $work (mode 755) and traps
#       every exit path: harness_cleanup runs the test's own test_cleanup
#       (if it defines one: unmount and kill by pid what it started), then
#       removes $work and exits with the status the script was leaving
#       with (130 on SIGINT/SIGTERM).
#   pass WHAT / fail WHAT: count a check and print "ok   - WHAT" or
#       "FAIL - WHAT"; check WHAT CMD...: pass if CMD succeeds, else fail;
#       expect WHAT WANT GOT: pass if GOT is WANT.
#   is_mounted DIR: DIR is a mountpoint in /proc/mounts.
#   xfs_image SIZE DIR: a loop XFS image mounted on DIR (bounded store home).
#   tmux_screen SESSION PATTERN: a tmux session's screen once PATTERN shows.
#   stop_tcfs MP STORE: unmount a tcfs mount and stop its daemon (cleanup).
#   harness_summary NAME: prints "NAME: P/C checks passed" and succeeds
#       only if no check failed (the script's last command).
# Sets: work, checks, failures. Runs in one shell, no threads.
set -uo pipefail

checks=0 failures=0

harness_needs_root() {  # harness_needs_root NAME
  : "${TCFS_BIN:?set TCFS_BIN to the tcfs binary}"
  if ((EUID != 0)); then
    echo "$1: needs root; skipped"
    exit 77
  fi
}

harness_init() {  # harness_init NAME TAG
  harness_needs_root "$1"
  work=$(mktemp -d "${TMPDIR:-/tmp}/tcfs-$2.XXXXXX")
  chmod 755 "$work"
  trap harness_cleanup EXIT
  trap 'exit 130' INT TERM
}

harness_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if declare -F test_cleanup >/dev/null; then test_cleanup; fi
  rm -rf "$work"
  exit "$rc"
}

is_mounted() { awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/mounts; }
mount_minor() { awk -v m="$1" '$5 == m { split($3, d, ":"); n = d[2] } END { print n }' /proc/self/mountinfo; }
daemon_pid() { head -c 32 "$1/lock" 2>/dev/null | tr -dc 0-9; }  # daemon_pid STORE

# stop_tcfs MOUNTPOINT STORE: unmounts a tcfs mount the test started
# (connection abort and lazy unmount as the last resort), then waits for
# the store's daemon (by the pid in its lock file) and kills it if it
# lingers. For test_cleanup.
stop_tcfs() {
  local mp=$1 store=$2 pid minor
  pid=$(daemon_pid "$store")
  if is_mounted "$mp"; then
    timeout 20 umount "$mp" 2>/dev/null || {
      minor=$(mount_minor "$mp")
      mountpoint -q /sys/fs/fuse/connections || mount -t fusectl none /sys/fs/fuse/connections 2>/dev/null
      [[ -n $minor ]] && echo 1 > "/sys/fs/fuse/connections/$minor/abort" 2>/dev/null
      umount -l "$mp" 2>/dev/null
    }
  fi
  if [[ -n $pid ]]; then
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  fi
}

# xfs_image SIZE DIR: a loop XFS image (reflink) of SIZE at $work/img,
# mounted on DIR (made); exits the test when it cannot (test_cleanup
# unmounts DIR).
xfs_image() {
  mkdir -p "$2"
  truncate -s "$1" "$work/img" && mkfs.xfs -q -m reflink=1 "$work/img" && mount -o loop "$work/img" "$2" ||
    { echo "FAIL - a $1 XFS loop image on $2"; exit 1; }
}

# tmux_screen SESSION PATTERN: waits (up to 30 s) until the session's
# screen has a line matching PATTERN (ERE); prints the screen.
tmux_screen() {
  local screen=
  for _ in $(seq 300); do
    screen=$(tmux capture-pane -p -t "$1" 2> /dev/null)
    grep -qE "$2" <<< "$screen" && break
    sleep 0.1
  done
  printf '%s\n' "$screen"
}

pass() { checks=$((checks + 1)); echo "ok   - $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL - $*"; }
check() {  # check DESCRIPTION COMMAND...: as the check went (a failure returns 1)
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; return 1; fi
}
expect() {  # expect DESCRIPTION WANT GOT
  if [[ $2 == "$3" ]]; then pass "$1"; else fail "$1: want '$2', got '$3'"; fi
}

harness_summary() {  # harness_summary NAME
  echo "$1: $((checks - failures))/$checks checks passed"
  ((failures == 0))
}
