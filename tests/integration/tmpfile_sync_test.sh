#!/usr/bin/env bash
# tmpfile_sync_test.sh — an O_TMPFILE file made through a synced mount is
# never sent to the blobbers while it has no name (a sync round and a
# restore from the blobbers see nothing of it, and the blobbers do not grow
# by its size); once linked with linkat(/proc/self/fd/N), the next round
# sends it like any new file and a restore shows it byte for byte.
# Environment (meson): TCFS_BIN. Uses python3 for O_TMPFILE and linkat.
set -uo pipefail
: "${TCFS_BIN:?}"
. "$(dirname "$0")/blobber_harness.sh"
harness_init tmpfile_sync 768M t
py_pid=""
trap 'rc=$?; [[ -n $py_pid ]] && kill "$py_pid" 2>/dev/null; (exit $rc); harness_cleanup' EXIT

"$T" init --store "$fs/A" --blobber "${B[@]}" --ec 2+1 > /dev/null || die "init"
mA=$work/mA
start "$fs/A" "$mA"
echo named > "$mA/visible"
"$T" sync "$mA" --timeout 60 > /dev/null || die "first sync"
head -c $((6 << 20)) /dev/urandom > "$work/secret"
blob_bytes() { du -sb "$fs/b0" "$fs/b1" "$fs/b2" | awk '{s += $1} END {print s}'; }

# A child that holds the unnamed file open and links it when told to; every
# wait is bounded, and it is killed on any exit.
coproc PY { timeout 300 python3 -u -c '
import ctypes, os, select, sys
d, src = sys.argv[1], sys.argv[2]
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, AT_SYMLINK_FOLLOW = -100, 0x400
fd = os.open(d, os.O_TMPFILE | os.O_RDWR, 0o640)
with open(src, "rb") as f:
    os.write(fd, f.read())
os.fsync(fd)
print("open", flush=True)
def wait_for(word):
    r, _, _ = select.select([sys.stdin], [], [], 120)
    if not r or sys.stdin.readline().strip() != word:
        sys.exit(3)
wait_for("link")
# os.link() would link the /proc symlink itself (link(2) does not follow).
if libc.linkat(AT_FDCWD, b"/proc/self/fd/%d" % fd, AT_FDCWD, os.path.join(d, "linked").encode(), AT_SYMLINK_FOLLOW) != 0:
    sys.exit(4)
print("linked", flush=True)
wait_for("close")
os.close(fd)
' "$mA" "$work/secret"; }
py_pid=$PY_PID
read -r -t 60 line <&"${PY[0]}"
[[ ${line:-} == open ]] || die "the O_TMPFILE child could not make its unnamed file: ${line:-no answer}"

before=$( ((s3 == 0)) && blob_bytes || echo 0)
"$T" sync "$mA" --timeout 60 > /dev/null; rc=$?
ok '[[ $rc == 0 ]]' "sync with an unnamed file open: rc $rc"
if ((s3 == 0)); then
  grew=$(( $(blob_bytes) - before ))
  ok '(( grew < (1 << 20) ))' "the blobbers grew by $grew bytes with a 6 MiB unnamed file open"
fi
"$T" init --store "$fs/R1" --from-blobbers "${B[@]}" > "$work/r1.out" 2>&1; rc=$?
ok '[[ $rc == 0 && $(ls "$fs/R1/root") == visible ]]' "restore while unnamed: rc $rc, names: $(ls "$fs/R1/root" | tr '\n' ' ')"

echo link >&"${PY[1]}"
read -r -t 60 line <&"${PY[0]}"; ok '[[ ${line:-} == linked ]]' "linkat of /proc/self/fd/N: ${line:-no answer}"
ok 'cmp -s "$work/secret" "$mA/linked"' "the linked name shows the data"
"$T" sync "$mA" --timeout 60 > /dev/null; rc=$?
ok '[[ $rc == 0 ]]' "sync after linkat: rc $rc"
echo close >&"${PY[1]}"
wait "$py_pid"; rc=$?; py_pid=""
ok '[[ $rc == 0 ]]' "the O_TMPFILE child exits cleanly: rc $rc"
"$T" init --store "$fs/R2" --from-blobbers "${B[@]}" > "$work/r2.out" 2>&1 || die "restore R2: $(cat "$work/r2.out")"
m2=$work/m2
start "$fs/R2" "$m2"
ok 'cmp -s "$work/secret" "$m2/linked"' "the restored store has the linked file byte for byte"
ok '[[ $(cat "$m2/visible") == named ]]' "and the named file"
stop "$m2"
stop "$mA"

echo "tmpfile_sync_test: $checks checks, $fails failed"
((fails == 0))
