#!/usr/bin/env bash
# batch_cli_test.sh — tcfs-batch's commands, output and exit codes against a
# real mount (run by tests/support/with-tcfs; TCFS_BATCH set by meson).
set -uo pipefail
: "${TCFS_TEST_MNT:?}" "${TCFS_BATCH:?}"
m=$TCFS_TEST_MNT b=$TCFS_BATCH
fails=0 checks=0
. "$(dirname "${BASH_SOURCE[0]}")/ok.sh"
src=$(mktemp -d /tmp/tcfs-batch-src.XXXXXX)
trap 'rm -rf "$src"' EXIT

# put: a tree with a small file, a large one (sent as a descriptor), a symlink, modes, mtimes.
mkdir -p "$src/tree/sub"
printf 'small' > "$src/tree/a.txt"; chmod 640 "$src/tree/a.txt"
head -c $((3 << 20)) /dev/urandom > "$src/tree/sub/big.bin"
ln -s a.txt "$src/tree/link"
touch -d @1234567890 "$src/tree/a.txt"
"$b" put -q "$src/tree" "$m/put-dest"; rc=$?
ok '[[ $rc == 0 ]]' "put exit $rc"
ok 'cmp -s "$src/tree/sub/big.bin" "$m/put-dest/sub/big.bin"' "put: big file content"
ok '[[ $(cat "$m/put-dest/a.txt") == small ]]' "put: small file content"
ok '[[ $(stat -c %a "$m/put-dest/a.txt") == 640 ]]' "put: mode"
ok '[[ $(stat -c %Y "$m/put-dest/a.txt") == 1234567890 ]]' "put: mtime"
ok '[[ $(readlink "$m/put-dest/link") == a.txt ]]' "put: symlink"

# mkdir -p, mv into a directory, cp -r, rm -r.
"$b" mkdir -q -p "$m/x/y" "$m/z"; rc=$?; ok '[[ $rc == 0 && -d $m/x/y && -d $m/z ]]' "mkdir -p"
"$b" mv -q "$m/put-dest/a.txt" "$m/put-dest/link" "$m/z"; rc=$?; ok '[[ $rc == 0 && -f $m/z/a.txt && -L $m/z/link ]]' "mv into a directory"
"$b" cp -q -r "$m/put-dest" "$m/copy"; rc=$?; ok '[[ $rc == 0 ]] && cmp -s "$m/copy/sub/big.bin" "$src/tree/sub/big.bin"' "cp -r"
"$b" rm -q -r "$m/copy" "$m/x"; rc=$?; ok '[[ $rc == 0 && ! -e $m/copy && ! -e $m/x ]]' "rm -r"

# All or nothing: the second mkdir fails, the first is undone; exit 1.
"$b" mkdir -q "$m/new-one" "$m/z" 2>/dev/null; rc=$?
ok '[[ $rc == 1 && ! -e $m/new-one ]]' "a failing mkdir rolls back the whole batch (exit $rc)"
# --json reply.
out=$("$b" --json mkdir "$m/j1" "$m/z" 2>/dev/null)
ok '[[ $out == *"\"outcome\":\"rolled_back\""* && $out == *"\"failed_op\":1"* && $out == *"EEXIST"* ]]' "--json: $out"
# Bad NDJSON: every bad line named, exit 2, nothing ran.
printf '{"op":"mkdir","path":"%s/nd1"}\n{"op":"mkdir"}\n{oops\n' "$m" > "$src/bad.ndjson"
err=$("$b" run "$src/bad.ndjson" 2>&1); rc=$?
ok '[[ $rc == 2 && $err == *"bad.ndjson:2:"* && $err == *"bad.ndjson:3:"* && ! -e $m/nd1 ]]' "bad NDJSON: rc $rc: $err"
# Good NDJSON from stdin, relative to -C.
printf '{"op":"mkdir","path":"nd2"}\n{"op":"create","path":"nd2/f","exclusive":true}\n{"op":"write","path":"nd2/f","data":"hi"}\n' |
  "$b" -C "$m" run -q -; rc=$?; ok '[[ $rc == 0 && $(cat "$m/nd2/f") == hi ]]' "run - with -C"
# Not in a tcfs mount: exit 2.
"$b" mkdir -q /tmp/not-tcfs-$$ 2>/dev/null; rc=$?; ok '[[ $rc == 2 && ! -e /tmp/not-tcfs-$$ ]]' "path outside any tcfs mount"
# The table names each op and its result.
out=$("$b" mkdir "$m/t1" "$m/t2")
ok '[[ $out == *"mkdir"*"ok"*"t1"* && $out == *"committed: 2 operation(s)"* ]]' "table: $out"

# Sources inside the same mount: the daemon never reads through its own
# mount. put of a big file already in the mount travels as a copy (a
# timeout turns a hang into a failure); an NDJSON "from" there is refused,
# naming the line, and nothing runs.
timeout 60 "$b" put -q "$m/put-dest/sub/big.bin" "$m/self-put.bin"; rc=$?
ok '[[ $rc == 0 ]] && cmp -s "$src/tree/sub/big.bin" "$m/self-put.bin"' "put from inside the mount (rc $rc)"
printf 'hello' > "$m/self-a"
printf '{"op":"create","path":"%s/self-b"}\n{"op":"write","path":"%s/self-a","from":"%s/self-a","offset":200000}\n' "$m" "$m" "$m" > "$src/self.ndjson"
err=$(timeout 60 "$b" run "$src/self.ndjson" 2>&1); rc=$?
ok '[[ $rc == 2 && $err == *"self.ndjson:2:"*"inside the tcfs mount"*"copy"* && ! -e $m/self-b && $(cat "$m/self-a") == hello ]]' "NDJSON from inside the mount: rc $rc: $err"

echo "batch_cli_test: $checks checks, $fails failed"
((fails == 0))
