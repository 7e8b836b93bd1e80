#!/usr/bin/env bash
# blob_s3_run.sh RGW_SCRIPT TEST_BINARY [TEST_ARGS...]
#
# Runs the S3 blobber unit tests against a real Ceph RGW: starts one with
# RGW_SCRIPT (tests/support/rgw) in a fresh temp dir, exports the
# coordinates it prints (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY, AWS_REGION, TCFS_TEST_BUCKET), runs TEST_BINARY and
# stops RGW on every exit path (pass, fail, INT/TERM/HUP). The daemons stay
# in this script's process group, so a runner that kills the group on a
# timeout (meson does) takes them along too. Exit status: the test's, or 1
# if RGW would not start or stop.
set -uo pipefail

(($# >= 2)) || { echo "usage: $0 RGW_SCRIPT TEST_BINARY [ARGS...]" >&2; exit 2; }
rgw=$1 bin=$2
shift 2

state=$(mktemp -d "${TMPDIR:-/tmp}/tcfs-rgw.XXXXXX") || exit 1
child=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [[ -n $child ]] && kill -0 "$child" 2>/dev/null; then
    kill -TERM "$child" 2>/dev/null
    wait "$child" 2>/dev/null
  fi
  "$rgw" stop "$state" || rc=1
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

coords=$("$rgw" start "$state") || { echo "blob_s3_run: RGW did not start" >&2; exit 1; }
while IFS='=' read -r k v; do
  case "$k" in
    AWS_ENDPOINT_URL | AWS_ACCESS_KEY_ID | AWS_SECRET_ACCESS_KEY | AWS_REGION | TCFS_TEST_BUCKET) export "$k=$v" ;;
  esac
done <<<"$coords"
unset AWS_DEFAULT_REGION AWS_SESSION_TOKEN
export TCFS_RGW_STATE=$state  # its pids, for a test that stops RGW (SIGSTOP) for a while

# In the background, so a signal runs the traps at once, not when the
# test finishes by itself.
"$bin" "$@" &
child=$!
wait "$child"
