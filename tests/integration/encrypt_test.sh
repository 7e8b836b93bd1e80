#!/usr/bin/env bash
# encrypt_test.sh — a store that encrypts what it sends to its blobbers
# (blob/cipher.h, objects.h 7, tools/tcfs/remote.h), through real mounts on
# a loop-mounted XFS image with 2+1 dir:// blobbers:
#   init --key-file creates a 0600 key and says to keep it; files with a
#   marker string are synced; no blobber file holds the marker, a file
#   name, or the plain SHA-256 of a known block (a plain set given the same
#   files holds all three: the control that the greps can see them);
#   a restore with the key gives the same tree; without the key, with
#   another key, with a group-readable key file, or an encrypted restore of
#   the plain set fails naming why and creates nothing; a mount whose key
#   file is gone refuses, naming it;
#   one shard of every object tampered: a restore still works (repair);
#   a block's shards tampered beyond M: reading the file is EIO, not
#   other bytes; the journals tampered beyond M: the restore fails.
# Environment (meson): TCFS_BIN, TREESNAP. dir:// blobbers only.
set -uo pipefail
: "${TCFS_BIN:?}" "${TREESNAP:?}"
unset TCFS_TEST_BUCKET
. "$(dirname "$0")/blobber_harness.sh"
harness_init encrypt_test 1024M b

restore_to() {  # store [init arguments...]: a fresh store from the blobbers; output in $work/restore.out
  local store=$1; shift
  timeout 300 "$T" init --store "$store" --from-blobbers "${B[@]}" --ec 2+1 "$@" > "$work/restore.out" 2>&1
}
out_has() { grep -qF -- "$1" "$work/restore.out"; }
snap() { timeout 300 "$TREESNAP" "$1"; }
sync_now() { timeout 120 "$T" sync "$1" --timeout 60 > "$work/sync.out" 2>&1; }
# Whether any file under the blobber directories holds $2 (grep -a: binary files as text).
found() { grep -rqaF -- "$2" $1; }
tamper() {  # find-arguments...: change a payload byte (past the 64-byte shard header) of each file found
  # The byte is incremented: overwritten with a constant, an encrypted byte
  # already equal to it (1 in 256) would stay intact; inverted, a shard
  # tampered twice (a parity shard that no read repaired in between) would
  # get its byte back. Incremented k < 256 times, it differs every time.
  local f b
  while IFS= read -r f; do
    b=$(od -An -tu1 -j70 -N1 "$f" | tr -d ' ')
    [[ -n $b ]] || die "tamper: $f is shorter than 71 bytes"
    printf "\\x$(printf %02x $(((b + 1) % 256)))" | dd of="$f" bs=1 seek=70 conv=notrunc status=none
  done < <(find "$@" -type f)
}

MARK="tcfs-plaintext-marker-7f3c9a"
NAME="secret-file-name-q8z"
write_tree() {  # mountpoint
  mkdir -p "$1/dir-$NAME"
  for i in $(seq 20); do printf '%s line %d\n' "$MARK" "$i" > "$1/dir-$NAME/$NAME-$i.txt"; done
  { for i in $(seq 40000); do printf '%s %06d\n' "$MARK" "$i"; done; } | head -c $((2 << 20)) > "$1/big"
  ln -s "dir-$NAME" "$1/link-$NAME"
}

# --- an encrypted store, synced -----------------------------------------------
key=$work/key
"$T" init --store "$fs/A" --blobber "${B[@]}" --ec 2+1 --key-file "$key" > "$work/init.out" 2>&1; rc=$?
ok '[[ $rc == 0 && $(stat -c %a "$key") == 600 && $(stat -c %s "$key") == 32 ]] && grep -q "KEEP A COPY" "$work/init.out" && grep -q "encrypted" "$work/init.out"' \
  "init creates a private key file and says so: rc $rc: $(cat "$work/init.out")"
mA=$work/mA
start "$fs/A" "$mA"
write_tree "$mA"
big_sha=$(sha256sum "$mA/big" | cut -d' ' -f1)
small_sha=$(sha256sum "$mA/dir-$NAME/$NAME-1.txt" | cut -d' ' -f1)
sync_now "$mA" || die "sync A: $(cat "$work/sync.out")"
snap "$mA" > "$work/a.snap" || die "treesnap A"
stop "$mA"

# --- the control: a plain set with the same files shows all three -------------
mkdir -p "$fs/p0" "$fs/p1" "$fs/p2"
P=("dir://$fs/p0" "dir://$fs/p1" "dir://$fs/p2")
"$T" init --store "$fs/P" --blobber "${P[@]}" --ec 2+1 > /dev/null || die "init P"
mP=$work/mP
start "$fs/P" "$mP"
write_tree "$mP"
sync_now "$mP" || die "sync P: $(cat "$work/sync.out")"
stop "$mP"
ok 'found "$fs/p0 $fs/p1 $fs/p2" "$MARK" && found "$fs/p0 $fs/p1 $fs/p2" "$NAME" && [[ -n $(find "$fs"/p? -name "$big_sha.*") ]]' \
  "the plain set shows the marker, the names and the block's SHA-256 (the greps work)"

# --- the encrypted blobbers reveal none of it ---------------------------------
nfiles=$(find "$fs"/b? -type f | wc -l)
ok '(( nfiles > 3 ))' "the encrypted set holds shards: $nfiles"
ok '! found "$fs/b0 $fs/b1 $fs/b2" "$MARK"' "no blobber file holds the marker"
ok '! found "$fs/b0 $fs/b1 $fs/b2" "$NAME"' "no blobber file holds a file name"
ok '! found "$fs/b0 $fs/b1 $fs/b2" "$big_sha" && ! find "$fs"/b? | grep -q -e "$big_sha" -e "$small_sha"' \
  "no blobber file or object name holds a block's plain SHA-256"

# --- restore with the key, and every wrong way --------------------------------
restore_to "$fs/R" --key-file "$key"; rc=$?
ok '[[ $rc == 0 ]] && out_has "round reached: epoch"' "restore with the key: rc $rc: $(cat "$work/restore.out")"
mR=$work/mR
[[ $rc == 0 ]] && start "$fs/R" "$mR" && snap "$mR" > "$work/r.snap"
ok 'diff "$work/a.snap" "$work/r.snap" > /dev/null' "the restored tree equals the source tree"
st=$(timeout 60 "$T" status "$mR")
ok '[[ $st == *"encrypted (AES-256-GCM, key file $key)"* ]]' "status says the set is encrypted: $st"
[[ $rc == 0 ]] && stop "$mR"

restore_to "$fs/X"; rc=$?
ok '[[ $rc == 1 && ! -e $fs/X ]] && out_has "ENCRYPTED" && out_has "--key-file"' "restore without the key: rc $rc: $(cat "$work/restore.out")"
head -c 32 /dev/urandom > "$work/other"; chmod 600 "$work/other"
restore_to "$fs/X" --key-file "$work/other"; rc=$?
ok '[[ $rc == 1 && ! -e $fs/X ]] && out_has "is not the key these blobbers are encrypted with"' "restore with another key: rc $rc: $(cat "$work/restore.out")"
cp "$key" "$work/open"; chmod 640 "$work/open"
restore_to "$fs/X" --key-file "$work/open"; rc=$?
ok '[[ $rc == 1 && ! -e $fs/X ]] && out_has "$work/open is accessible by group or others"' "a group-readable key file: rc $rc: $(cat "$work/restore.out")"
restore_to "$fs/X" --key-file "$work/absent"; rc=$?
ok '[[ $rc == 1 && ! -e $fs/X && ! -e $work/absent ]] && out_has "does not exist"' "a restore never creates a key: rc $rc: $(cat "$work/restore.out")"
timeout 300 "$T" init --store "$fs/X" --from-blobbers "${P[@]}" --ec 2+1 --key-file "$key" > "$work/restore.out" 2>&1; rc=$?
ok '[[ $rc == 1 && ! -e $fs/X ]] && out_has "NOT encrypted"' "an encrypted restore of a plain set: rc $rc: $(cat "$work/restore.out")"

timeout 300 "$T" init --store "$fs/X" --blobber "${P[@]}" --ec 2+1 --key-file "$work/fresh" > "$work/restore.out" 2>&1; rc=$?
ok '[[ $rc == 1 && ! -e $fs/X && ! -e $work/fresh ]] && out_has "already hold a tcfs tree"' \
  "a failed encrypted init leaves no key file behind: rc $rc: $(cat "$work/restore.out")"

mkdir -p "$fs/q0" "$fs/q1" "$fs/q2"; : > "$work/notastore"
timeout 300 "$T" init --store "$work/notastore" --blobber "dir://$fs/q0" "dir://$fs/q1" "dir://$fs/q2" --ec 2+1 \
  --key-file "$work/fresh" > "$work/restore.out" 2>&1; rc=$?
nk=$(find "$fs"/q? -type f | wc -l)
ok '[[ $rc == 1 && ! -e $work/fresh && $nk == 0 ]]' \
  "an init failing after its key-check object takes it back with the key: rc $rc, $nk files left: $(cat "$work/restore.out")"

# --- a mount whose key file is gone refuses -----------------------------------
mv "$key" "$key.away"
mkdir -p "$work/mx"
timeout 30 "$T" mount --store "$fs/R" -f "$work/mx" > "$work/mount.out" 2>&1; rc=$?
grep -qs " $work/mx fuse" /proc/mounts && umount "$work/mx"
ok '[[ $rc != 0 ]] && grep -qF "key file $key" "$work/mount.out"' "mount without its key file: rc $rc: $(cat "$work/mount.out")"
cp "$work/other" "$key"
timeout 30 "$T" mount --store "$fs/R" -f "$work/mx" > "$work/mount.out" 2>&1; rc=$?
grep -qs " $work/mx fuse" /proc/mounts && umount "$work/mx"
ok '[[ $rc != 0 ]] && grep -qF "key file $key holds another key" "$work/mount.out"' "mount with another key: rc $rc: $(cat "$work/mount.out")"
mv "$key.away" "$key"

# --- tampering ----------------------------------------------------------------
tamper "$fs/b0"  # one shard of every object: at most M
restore_to "$fs/R2" --key-file "$key"; rc=$?
m2=$work/m2
[[ $rc == 0 ]] && start "$fs/R2" "$m2" && snap "$m2" > "$work/r2.snap"
ok '[[ $rc == 0 ]] && diff "$work/a.snap" "$work/r2.snap" > /dev/null' \
  "one tampered shard per object: restored and read through repair: rc $rc: $(cat "$work/restore.out")"
[[ $rc == 0 ]] && stop "$m2"
restore_to "$fs/R3" --key-file "$key"; rc=$?
m3=$work/m3
[[ $rc == 0 ]] && start "$fs/R3" "$m3"
tamper "$fs/b0" "$fs/b1" -path '*/b/*'  # the big file's block: two shards of three
out=$(timeout 60 cat "$m3/big" 2>&1 > /dev/null); crc=$?
ok '[[ $rc == 0 && $crc != 0 && $out == *"Input/output error"* ]]' "a block tampered beyond M reads as EIO: rc $rc cat $crc: $out"
ok '[[ $(cat "$m3/dir-$NAME/$NAME-3.txt") == "$MARK line 3" ]]' "the other files still read"
[[ $rc == 0 ]] && stop "$m3"
tamper "$fs/b0" "$fs/b1" -path '*/n/*'  # the journals beyond M
restore_to "$fs/X2" --key-file "$key"; rc=$?
ok '[[ $rc == 1 ]] && out_has "shards usable"' "journals tampered beyond M: the restore fails: rc $rc: $(cat "$work/restore.out")"

echo "encrypt_test: $checks checks, $fails failed"
((fails == 0))
