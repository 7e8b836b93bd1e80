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

pass() { checks=$((checks + 1)); echo "ok   - $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL - $*"; }
check() {  # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
expect() {  # expect DESCRIPTION WANT GOT
  if [[ $2 == "$3" ]]; then pass "$1"; else fail "$1: want '$2', got '$3'"; fi
}

harness_summary() {  # harness_summary NAME
  echo "$1: $((checks - failures))/$checks checks passed"
  ((failures == 0))
}
