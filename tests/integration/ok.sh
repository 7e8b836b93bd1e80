# ok.sh — sourced by blobber_harness.sh and batch_cli_test.sh: their check.
#
# Contract: ok EXPR WHAT counts a check in $checks and evaluates EXPR (a
# shell condition); if it fails, prints "FAIL: WHAT" on stderr and counts it
# in $fails. EXPR sees $? still the status of the command before ok, so
# `cmd; ok '[[ $? == 0 ]]' ...` checks cmd, not ok's own counting;
# capturing it first (`cmd; rc=$?`) reads better. The sourcing script sets
# checks=0 fails=0 and reports them at its end.
# One shell, no threads.
ok() {
  local last=$?
  checks=$((checks + 1))
  if ok_status "$last"; eval "$1"; then :; else echo "FAIL: $2" >&2; fails=$((fails + 1)); fi
}
ok_status() { return "$1"; }
