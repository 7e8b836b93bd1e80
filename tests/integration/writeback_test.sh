#!/usr/bin/env bash
# writeback_test.sh — compounds on a mount with the kernel's writeback cache
# (-o writeback; txn.h invariant 13). Runs as root with TCFS_BIN and
# TCFS_BATCH set (meson does both); the store lives on a tmpfs of bounded
# size in a private temp dir; the mount and daemon it started are cleaned
# up (by pid; connection abort as the last resort).
#
# With the writeback cache the kernel keeps written data as dirty pages and
# keeps its own size and times of a cached inode, never the daemon's.
# Checked:
#  - a compound that grows or shrinks a file the kernel has cached: the
#    path then shows the new size and the whole new content, and the
#    backing file's mtime;
#  - data written (not flushed, not fsync-ed) before a compound is in the
#    store before the compound plans: a compound that rewrites the file
#    wins, and the earlier write does not land on top of it later; a
#    compound that copies from such a file copies the written data;
#  - a descriptor open across the compound keeps the size it had (close-
#    to-open), while a new open sees the compound's result;
#  - another name of a hard-linked file meets the new size within seconds.
: "${TCFS_BATCH:?set TCFS_BATCH to the tcfs-batch binary}"
. "$(dirname "$0")/mount_harness.sh"
harness_init writeback_test writeback
store=$work/fs/store mp=$work/fs/mnt

test_cleanup() {
  stop_tcfs "$mp" "$store"
  umount "$work/fs" 2>/dev/null || umount -l "$work/fs" 2>/dev/null
}

mkdir -p "$work/fs"
mount -t tmpfs -o size=128M tmpfs "$work/fs" || { echo "FAIL - tmpfs for the store"; exit 1; }
mkdir -p "$mp"
if ! timeout 60 "$TCFS_BIN" mount --store "$store" -o writeback "$mp" > "$work/mount.log" 2>&1; then
  fail "mount -o writeback: $(cat "$work/mount.log")"
  harness_summary writeback_test
fi
pass "mounted with -o writeback"

batch() { (cd "$mp" && timeout 60 "$TCFS_BATCH" run -q -) 2>&1; }

# --- a compound changes the size of a file the kernel has cached ------------
head -c 100 /dev/urandom > "$work/v100"
echo "hello world" > "$mp/grow"
expect "the kernel has grow's size cached" 12 "$(stat -c %s "$mp/grow")"
out=$(printf '{"op":"write","path":"grow","truncate":true,"from":"%s"}\n' "$work/v100" | batch) || fail "grow compound: $out"
expect "after a compound grows it: the path's size" 100 "$(stat -c %s "$mp/grow")"
check "after a compound grows it: the whole new content" cmp -s "$work/v100" "$mp/grow"
expect "after a compound grows it: the backing file's mtime" "$(stat -c %Y.%y "$store/root/grow")" "$(stat -c %Y.%y "$mp/grow")"

head -c 50000 /dev/urandom > "$mp/shrink"
expect "the kernel has shrink's size cached" 50000 "$(stat -c %s "$mp/shrink")"
out=$(printf '{"op":"truncate","path":"shrink","size":7}\n' | batch) || fail "shrink compound: $out"
expect "after a compound truncates it: the path's size" 7 "$(stat -c %s "$mp/shrink")"
expect "after a compound truncates it: what a read gives" 7 "$(wc -c < "$mp/shrink")"

# A hard link's other name meets the new inode once its short-lived entry is
# asked again (Fs::make_entry: within a second; 10 s allowed here).
head -c 3000 /dev/urandom > "$mp/h1" && ln "$mp/h1" "$mp/h2"
stat -c %s "$mp/h1" "$mp/h2" > /dev/null
out=$(printf '{"op":"truncate","path":"h1","size":5}\n' | batch) || fail "hard link compound: $out"
expect "after a compound truncates h1: its size" 5 "$(stat -c %s "$mp/h1")"
for _ in $(seq 100); do [[ $(stat -c %s "$mp/h2") == 5 ]] && break; sleep 0.1; done
expect "the other name h2 shows the new size too" 5 "$(stat -c %s "$mp/h2")"

# --- written before the compound, still in the kernel's dirty pages ---------
printf BBBB > "$work/bbbb"
out=$(python3 - "$mp" "$work/bbbb" "$TCFS_BATCH" 2>&1 <<'PY'
import os, subprocess, sys
mp, bbbb, batch = sys.argv[1:4]
def compound(line):
    r = subprocess.run([batch, "run", "-q", "-"], cwd=mp, input=line, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
got = {}
# 1. rewritten by the compound: the compound's content wins, for good.
fd = os.open(mp + "/dirty", os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
os.write(fd, b"A" * 16)  # dirty pages only: no close, no fsync
compound('{"op":"write","path":"dirty","truncate":true,"from":"%s"}\n' % bbbb)
got["new open"] = open(mp + "/dirty", "rb").read()
got["new stat"] = os.stat(mp + "/dirty").st_size
got["open fd keeps its size"] = os.fstat(fd).st_size
os.close(fd)
got["after close"] = open(mp + "/dirty", "rb").read()
# 2. copied by the compound: the copy has the written data.
fd = os.open(mp + "/src", os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
os.write(fd, b"written-not-flushed")
compound('{"op":"copy","path":"src","to":"dst"}\n')
got["copy"] = open(mp + "/dst", "rb").read()
os.close(fd)
print(got)
want = {"new open": b"BBBB", "new stat": 4, "open fd keeps its size": 16, "after close": b"BBBB",
        "copy": b"written-not-flushed"}
sys.exit(0 if got == want else 1)
PY
); rc=$?
expect "dirty data before a compound is in the store before it plans: $out" 0 "$rc"
expect "the store holds the compound's content" BBBB "$(cat "$store/root/dirty")"

harness_summary writeback_test
