#!/usr/bin/env bash
# follow_test.sh — follower stores (issue 12): one writer, two followers
# mounted while the writer works and a third one made late, over 2+1
# blobbers, through real mounts on a loop-mounted XFS image:
#   the writer's set/ holds 50 files (two of them over 4 MiB: several
#   blocks) that all carry one generation g (the first line "gen g"; the
#   large ones also end with a line "gen g end fNN"); compound g rewrites
#   all 50 to generation g, and `tcfs sync --json` after some of them
#   records the round that holds g;
#   a reader per follower passes over set/f00..f49 again and again and
#   logs what it saw, bracketed by the follower's round before and after
#   the pass (tcfs status --json). A follower moves one whole round at a
#   time and answers each request from one round (fuse/view.h 1), so:
#     - a pass during which the round did not change shows ONE generation
#       (a violation otherwise); a pass that straddles a switch may show
#       two, old then new, and is counted as straddling;
#     - within a pass, in read order, and from pass to pass, generations
#       never go backwards; the head and tail of a large file agree;
#     - at a round synced for generation g the follower shows exactly g,
#       between the rounds synced for g and g' a generation in [g, g'];
#     - each reader sees at least two generations;
#   after the stream `tcfs wait` for the last synced round succeeds on
#   both followers, which then hold the writer's files byte for byte;
#   a follower made after the stream shows the final generation;
#   init --follow from empty blobbers or with the wrong --ec fails; a
#   follower mount refuses writes (EROFS), compounds and sync.
# Environment (meson): TCFS_BIN, TCFS_BATCH. With TCFS_TEST_BUCKET and the
# AWS_* variables set (tests/unit/blob_s3_run.sh) the blobbers are
# s3://BUCKET/f0..f2. Options: --generations N (default 15).
set -uo pipefail
: "${TCFS_BIN:?}" "${TCFS_BATCH:?}"
G=15
while (($#)); do
  case "$1" in
    --generations) G=$2; shift 2 ;;
    *) echo "follow_test: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ $G =~ ^[0-9]+$ ]] && ((G >= 2)) || { echo "follow_test: --generations wants a number >= 2" >&2; exit 2; }

. "$(dirname "$0")/blobber_harness.sh"
harness_init follow_test 1536M f

# Readers are background subshells: stop and reap them (by PID) before the
# harness unmounts and removes everything, on every exit path.
readers=()
follow_cleanup() {
  local rc=$?
  touch "$work/stop-readers" 2>/dev/null
  for p in "${readers[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${readers[@]}"; do wait "$p" 2>/dev/null; done
  readers=()
  (exit "$rc")
  harness_cleanup
}
trap follow_cleanup EXIT

N=50
names=(); for i in $(seq 0 $((N - 1))); do names+=("$(printf 'f%02d' "$i")"); done
big=(f00 f01)   # the files over 4 MiB: their last line is checked as well
size_of() {     # file index -> size in bytes (fixed across generations)
  local i=$1
  case $i in
    0) echo $(((4 << 20) + 4097)) ;;           # two blocks, the second small
    1) echo $(((4 << 20) + (300 << 10))) ;;    # two blocks
    2) echo $((1 << 20)) ;;
    3) echo 0 ;;                               # the line "gen N" and no more
    *) if ((i % 10 == 5)); then echo $((100000 + i * 1777)); else echo $((64 + (i * 7919) % 20000)); fi ;;
  esac
}
gendir() { echo "$work/gen/$1"; }
make_gen() {  # g: the 50 files of generation g, outside every mount
  local g=$1 d i f sz head tail body
  d=$(gendir "$g"); mkdir -p "$d"
  for i in $(seq 0 $((N - 1))); do
    f=${names[$i]} sz=$(size_of "$i")
    head="gen $g"$'\n'
    tail=$'\n'"gen $g end $f"$'\n'
    if ((sz <= ${#head} + ${#tail})); then
      printf '%s' "$head" > "$d/$f"
    else
      body=$((sz - ${#head} - ${#tail}))
      { printf '%s' "$head"; yes "gen $g $f padding ................................" | head -c "$body"; printf '%s' "$tail"; } > "$d/$f"
    fi
  done
}
round_of() { "$T" status --json "$1" 2>/dev/null | jq -r '.status.follow.round // empty' 2>/dev/null; }

# --- 1. the writer -----------------------------------------------------------
"$T" init --store "$fs/W" --blobber "${B[@]}" --ec 2+1 > "$work/init.out" 2>&1; rc=$?
ok '[[ $rc == 0 ]]' "writer init 2+1: rc $rc: $(cat "$work/init.out")"
mW=$work/mW
start "$fs/W" "$mW" -o sync_interval=300
mkdir -p "$mW/set"
make_gen 0
for f in "${names[@]}"; do cp "$(gendir 0)/$f" "$mW/set/$f"; done
bad=0; for f in "${names[@]}"; do cmp -s "$(gendir 0)/$f" "$mW/set/$f" || bad=$((bad + 1)); done
ok '(( bad == 0 ))' "writer holds generation 0 in all $N files ($bad differ)"
declare -A round_for   # generation -> round synced after it
out=$("$T" sync "$mW" --json --timeout 60 2> "$work/err"); rc=$?
r=$(jq -r .round <<< "$out" 2>/dev/null)
ok '[[ $rc == 0 && $r =~ ^[0-9]+$ && $r -ge 1 && $(jq -r .mount <<< "$out") == "$mW" && -n $(jq -r .head <<< "$out") ]]' \
  "tcfs sync --json: rc $rc: $out $(cat "$work/err")"
round_for[0]=${r:-0}
r0=${round_for[0]}

# --- 2. two followers --------------------------------------------------------
"$T" init --store "$fs/F1" --follow --from-blobbers "${B[@]}" --ec 2+1 > "$work/f1.init" 2>&1; rc=$?
ok '[[ $rc == 0 && $(cat "$work/f1.init") == *"follower store at round $r0 "* ]]' "init --follow F1: rc $rc: $(cat "$work/f1.init")"
"$T" init --store "$fs/F2" --follow --from-blobbers "${B[@]}" > "$work/f2.init" 2>&1; rc=$?
ok '[[ $rc == 0 && $(cat "$work/f2.init") == *"follower store at round $r0 "* ]]' "init --follow F2 (default --ec): rc $rc: $(cat "$work/f2.init")"
m1=$work/m1 m2=$work/m2
start "$fs/F1" "$m1" -o poll_interval=200
start "$fs/F2" "$m2"
for m in "$m1" "$m2"; do
  js=$("$T" status --json "$m"); st=$("$T" status "$m")
  ok '[[ $(jq -r .status.follow.round <<< "$js") == "$r0" && $st == *"follower (read-only)"* && $st == *"round:      $r0 "* ]]' \
    "status of follower $(basename "$m") shows round $r0: $st"
  bad=0; for f in "${names[@]}"; do cmp -s "$(gendir 0)/$f" "$m/set/$f" || bad=$((bad + 1)); done
  ok '(( bad == 0 ))' "follower $(basename "$m") holds generation 0 in all $N files ($bad differ)"
done
js=$("$T" status --json "$m1")
ok '[[ $(jq -r .status.follow.poll_ms <<< "$js") == 200 && $(jq -r .status.follow.poll_ms <<< "$("$T" status --json "$m2")") == 1000 ]]' \
  "poll intervals 200 and 1000 ms: $(jq -c .status.follow <<< "$js")"

# --- 3. compounds on the writer, readers on the followers --------------------
# One line per pass: "PASS ROUND_BEFORE ROUND_AFTER ERRORS GEN..." with the
# generations in read order (a large file gives its head's, then its tail's).
reader() {  # mountpoint log
  local mnt=$1 log=$2 pass=0 ra rb errs gens l f
  while [[ -d $work && ! -e $work/stop-readers ]]; do
    ra=$(round_of "$mnt"); errs=0 gens=""
    for f in "${names[@]}"; do
      if read -r l < "$mnt/set/$f" 2>/dev/null && [[ $l =~ ^gen\ ([0-9]+)$ ]]; then gens+=" ${BASH_REMATCH[1]}"; else errs=$((errs + 1)); fi
      if [[ $f == f00 || $f == f01 ]]; then
        l=$(tail -n 1 "$mnt/set/$f" 2>/dev/null)
        if [[ $l =~ ^gen\ ([0-9]+)\ end\ $f$ ]]; then gens+=" ${BASH_REMATCH[1]}"; else errs=$((errs + 1)); fi
      fi
    done
    rb=$(round_of "$mnt")
    pass=$((pass + 1))
    echo "$pass ${ra:--1} ${rb:--2} $errs$gens" >> "$log"
  done
}
rm -f "$work/stop-readers"
reader "$m1" "$work/read1.log" & readers+=($!)
reader "$m2" "$work/read2.log" & readers+=($!)

failed_compounds=0 sync_fail=0
for g in $(seq 1 "$G"); do
  make_gen "$g"
  for f in "${names[@]}"; do
    printf '{"op":"write","path":"set/%s","truncate":true,"from":"%s/%s"}\n' "$f" "$(gendir "$g")" "$f"
  done > "$work/c.ndjson"
  (cd "$mW" && "$TCFS_BATCH" run -q "$work/c.ndjson") >> "$work/batch.err" 2>&1 || failed_compounds=$((failed_compounds + 1))
  if ((g % 3 == 0 || g == G)); then
    out=$("$T" sync "$mW" --json --timeout 60 2>> "$work/sync.err"); rc=$?
    r=$(jq -r .round <<< "$out" 2>/dev/null)
    if [[ $rc == 0 && $r =~ ^[0-9]+$ ]]; then round_for[$g]=$r; else sync_fail=$((sync_fail + 1)); fi
  fi
  ((g > 1)) && rm -rf "$(gendir $((g - 1)))"
done
ok '(( failed_compounds == 0 ))' "$G compounds on the writer: $failed_compounds failed: $(tail -3 "$work/batch.err")"
ok '(( sync_fail == 0 ))' "tcfs sync --json during the stream: $sync_fail failed: $(tail -3 "$work/sync.err" 2>/dev/null)"
bad=0; for f in "${names[@]}"; do cmp -s "$(gendir "$G")/$f" "$mW/set/$f" || bad=$((bad + 1)); done
ok '(( bad == 0 ))' "writer holds generation $G in all $N files ($bad differ)"
rG=${round_for[$G]:-0}
mono=1 prev=-1 map=""
for g in $(printf '%s\n' "${!round_for[@]}" | sort -n); do
  ((round_for[$g] > prev)) || mono=0
  prev=${round_for[$g]}; map+="${round_for[$g]}:$g "
done
ok '(( mono ))' "synced rounds grow with the generations (round:gen): $map"

for m in "$m1" "$m2"; do
  out=$("$T" wait "$m" "$rG" --timeout 30 2>&1); rc=$?
  ok '[[ $rc == 0 ]]' "tcfs wait $(basename "$m") $rG: rc $rc: $out"
done
# Two more whole passes per reader after the wait: the last ones see round rG.
for log in "$work/read1.log" "$work/read2.log"; do
  n0=$(wc -l < "$log" 2>/dev/null || echo 0)
  for _ in $(seq 600); do (( $(wc -l < "$log") >= n0 + 2 )) && break; sleep 0.05; done
done
touch "$work/stop-readers"
for p in "${readers[@]}"; do wait "$p"; done
readers=()

analyse() {  # log: one line of figures (awk), see the header of this file
  awk -v map="$map" -v final="$G" '
    BEGIN { n = split(map, a, " "); for (k = 1; k <= n; k++) { split(a[k], b, ":"); R[k] = b[1] + 0; Gn[k] = b[2] + 0 }
            prevmax = -1; last = -1 }
    {
      passes++; r0 = $2 + 0; r1 = $3 + 0; errs += $4
      if ($2 < 0 || $3 < 0 || r1 < r0) badround++
      if (NF < 5) next
      nd = 0; mn = 1e9; mx = -1; dec = 0; lp = -1; delete seen
      for (i = 5; i <= NF; i++) {
        g = $i + 0
        if (g < lp) dec = 1
        lp = g
        if (!(g in seen)) { seen[g] = 1; nd++ }
        if (!(g in all)) { all[g] = 1; distinct++ }
        if (g < mn) mn = g
        if (g > mx) mx = g
        if (last >= 0 && g != last) switches++
        last = g
      }
      if (dec) order++
      if (nd > 1) { if (r0 == r1) viol++; else straddle++ }
      if (prevmax >= 0 && mn < prevmax) back++
      prevmax = mx
      if (nd == 1 && r0 == r1 && $2 >= 0) {
        lo = -1; hi = 1e9
        for (k = 1; k <= n; k++) {
          if (R[k] <= r0 && Gn[k] > lo) lo = Gn[k]
          if (R[k] >= r0 && Gn[k] < hi) hi = Gn[k]
        }
        if (mn < lo || mn > hi) { mism++; if (!ex) ex = sprintf(" (round %d showed %d, expected %d..%d)", r0, mn, lo, hi) }
        rounds_seen[r0] = 1
      }
    }
    END {
      list = ""; for (g = 0; g <= final; g++) if (g in all) list = list " " g
      printf "%d %d %d %d %d %d %d %d %d %d %d%s|%s\n", passes + 0, distinct + 0, switches + 0, straddle + 0, viol + 0,
             order + 0, back + 0, mism + 0, errs + 0, badround + 0, (final in all) ? 1 : 0, ex, list
    }' "$1"
}
poll=([1]="200 ms" [2]="default")
for k in 1 2; do
  m=$work/m$k
  IFS='|' read -r figs list <<< "$(analyse "$work/read$k.log")"
  read -r passes distinct switches straddle viol order back mism errs badround sawfinal ex <<< "$figs"
  echo "follow_test: reader $k ($(basename "$m"), poll ${poll[$k]}): $passes passes, $distinct generations seen ($list ), $switches switches, $straddle passes straddling a switch, $viol violations"
  ok '(( passes >= 2 ))' "reader $k made $passes passes"
  ok '(( viol == 0 ))' "reader $k: $viol passes showed two generations within one round"
  ok '(( order == 0 && back == 0 ))' "reader $k: generations went backwards within $order passes, between $back pairs of passes"
  ok '(( mism == 0 ))' "reader $k: $mism passes showed a generation its round does not hold$ex"
  ok '(( errs == 0 && badround == 0 ))' "reader $k: $errs failed or unrecognised reads, $badround bad round brackets: $(awk '$4 != 0 || $2 < 0 || $3 < 0' "$work/read$k.log" | head -3)"
  ok '(( distinct >= 2 && sawfinal == 1 ))' "reader $k saw $distinct generations ($list ), the final one $G: $sawfinal"
done

for m in "$m1" "$m2"; do
  bad=0 wrong=0
  for f in "${names[@]}"; do
    read -r l < "$m/set/$f" 2>/dev/null; [[ ${l:-} == "gen $G" ]] || wrong=$((wrong + 1))
    cmp -s "$mW/set/$f" "$m/set/$f" || bad=$((bad + 1))
  done
  ok '(( wrong == 0 && bad == 0 ))' "follower $(basename "$m") after wait: $wrong files not at generation $G, $bad differ from the writer's"
  ok '[[ $(ls "$m/set" | tr "\n" " ") == "$(ls "$mW/set" | tr "\n" " ")" ]]' "follower $(basename "$m") lists the writer's set/"
  js=$("$T" status --json "$m")
  ok '(( $(jq -r .status.follow.round <<< "$js") >= rG ))' "status of $(basename "$m") after wait: $(jq -c .status.follow <<< "$js")"
done
out=$("$T" wait "$m1" $((rG + 1000)) --timeout 1 2>&1); rc=$?
ok '[[ $rc == 1 && $out == *"timed out"* ]]' "tcfs wait for a round that never comes gives up: rc $rc: $out"

# --- 3b. a switch waits for a quiet moment (fuse/view.h 5) -------------------
# A directory held open keeps the follower busy: the next round is shown
# only when switch_wait (500 ms) runs out, counted as forced; with nothing
# open and no request the switch is quiet.
one_round() {  # the writer: one more compound (set/extra), synced; prints the round
  printf 'extra %s\n' "$1" > "$work/extra"
  printf '{"op":"create","path":"set/extra"}\n{"op":"write","path":"set/extra","truncate":true,"from":"%s"}\n' \
    "$work/extra" > "$work/c1.ndjson"
  (cd "$mW" && "$TCFS_BATCH" run -q "$work/c1.ndjson") >> "$work/batch.err" 2>&1 || return 1
  "$T" sync "$mW" --json --timeout 60 2>> "$work/sync.err" | jq -r .round
}
sw() { "$T" status --json "$m2" | jq -r ".status.follow.switches_$1"; }
q0=$(sw quiet) f0=$(sw forced) l=
exec 3< "$m2/set"
r=$(one_round held); rc=$?
out=$("$T" wait "$m2" "${r:-0}" --timeout 30 2>&1); wrc=$?
read -r l < "$m2/set/extra" || l="(none: $(tail -2 "$work/batch.err" "$work/sync.err" 2>&1 | tr '\n' ' '))"
exec 3<&-
q1=$(sw quiet) f1=$(sw forced)
ok '[[ $rc == 0 && $wrc == 0 && $l == "extra held" ]] && (( f1 > f0 && q1 == q0 ))' \
  "a directory held open: round ${r:-?} shown after switch_wait (wait rc $wrc: $out; shows '$l'); switches quiet $q0 -> $q1, forced $f0 -> $f1"
sleep 0.2  # the release of fd 3 reaches the daemon
r=$(one_round free); rc=$?
out=$("$T" wait "$m2" "${r:-0}" --timeout 30 2>&1); wrc=$?
q2=$(sw quiet) f2=$(sw forced) l=
read -r l < "$m2/set/extra" || l="(none)"
ok '[[ $rc == 0 && $wrc == 0 && $l == "extra free" ]] && (( q2 > q1 && f2 == f1 ))' \
  "nothing open: round ${r:-?} shown at a quiet moment (wait rc $wrc: $out; shows '$l'); switches quiet $q1 -> $q2, forced $f1 -> $f2"
[[ $r =~ ^[0-9]+$ ]] && rG=$r  # the newest round from here on

# --- 3c. close-to-open across a round that shrinks a file (fuse/view.h 2) ------
# A handle opened on the old content keeps reading it whole, its fstat and
# mmap too, though the path now shows 100 bytes: the new content is another
# node (the kernel keeps the old inode's size for the old handle).
head -c 1048576 /dev/urandom > "$work/c2o.v1"
cp "$work/c2o.v1" "$mW/c2o" && r=$("$T" sync "$mW" --json --timeout 60 | jq -r .round) &&
  "$T" wait "$m2" "$r" --timeout 30 > /dev/null 2>&1 || ok false "close-to-open: the first version reaches m2"
out=$(python3 - "$m2/c2o" "$work/c2o.v1" "$mW" "$T" 2>&1 <<'PY'
import json, mmap, os, subprocess, sys
path, v1path, writer, T = sys.argv[1:5]
v1 = open(v1path, "rb").read()
fd = os.open(path, os.O_RDONLY)
assert os.pread(fd, 4096, 0) == v1[:4096], "first read"
with open(writer + "/c2o", "wb") as f:
    f.write(b"x" * 100)
r = json.loads(subprocess.run([T, "sync", writer, "--json", "--timeout", "60"], capture_output=True, text=True, check=True).stdout)["round"]
subprocess.run([T, "wait", os.path.dirname(path), str(r), "--timeout", "30"], check=True, capture_output=True)
got = {
    "path size": os.stat(path).st_size,
    "new open": open(path, "rb").read() == b"x" * 100,
    "fstat size": os.fstat(fd).st_size,
    "read at 500000": os.pread(fd, 4096, 500000) == v1[500000:504096],
    "read whole": os.pread(fd, len(v1), 0) == v1,
    "/proc fd size": os.stat("/proc/self/fd/%d" % fd).st_size,
    "mmap": mmap.mmap(fd, len(v1), prot=mmap.PROT_READ)[:] == v1,
    "same st_ino": os.stat(path).st_ino == os.fstat(fd).st_ino,
}
print(got)
want = {"path size": 100, "new open": True, "fstat size": len(v1), "read at 500000": True, "read whole": True,
        "/proc fd size": len(v1), "mmap": True, "same st_ino": True}
sys.exit(0 if got == want else 1)
PY
); rc=$?
ok '[[ $rc == 0 ]]' "close-to-open: a handle on the 1 MiB version reads it whole after a round makes the file 100 bytes: $out"
r=$(round_of "$m2"); [[ $r =~ ^[0-9]+$ ]] && rG=$r  # the newest round from here on

# --- 4. a follower made after the stream catches up --------------------------
"$T" init --store "$fs/F3" --follow --from-blobbers "${B[@]}" --ec 2+1 > "$work/f3.init" 2>&1; rc=$?
ok '[[ $rc == 0 ]]' "init --follow F3 after the stream: rc $rc: $(cat "$work/f3.init")"
m3=$work/m3
start "$fs/F3" "$m3" -o poll_interval=200
out=$("$T" wait "$m3" "$rG" --timeout 30 2>&1); rc=$?
ok '[[ $rc == 0 ]]' "tcfs wait m3 $rG: rc $rc: $out"
bad=0 wrong=0
for f in "${names[@]}"; do
  read -r l < "$m3/set/$f" 2>/dev/null; [[ ${l:-} == "gen $G" ]] || wrong=$((wrong + 1))
  cmp -s "$mW/set/$f" "$m3/set/$f" || bad=$((bad + 1))
done
ok '(( wrong == 0 && bad == 0 ))' "late follower m3: $wrong files not at generation $G, $bad differ from the writer's"

# --- 5. bad input, and a follower refuses writes -----------------------------
if ((s3)); then
  E=("s3://$TCFS_TEST_BUCKET/empty0" "s3://$TCFS_TEST_BUCKET/empty1" "s3://$TCFS_TEST_BUCKET/empty2")
else
  mkdir -p "$fs/e0" "$fs/e1" "$fs/e2"
  E=("dir://$fs/e0" "dir://$fs/e1" "dir://$fs/e2")
fi
"$T" init --store "$fs/FE" --follow --from-blobbers "${E[@]}" --ec 2+1 > "$work/err" 2>&1; rc=$?
ok '[[ $rc != 0 && $(cat "$work/err") == *"tcfs: error:"* && $(wc -c < "$work/err") -gt 20 ]]' "init --follow from empty blobbers: rc $rc: $(cat "$work/err")"
echo "follow_test: init --follow from empty blobbers says: $(cat "$work/err")"
"$T" init --store "$fs/FX" --follow --from-blobbers "${B[@]}" --ec 1+2 > "$work/err" 2>&1; rc=$?
ok '[[ $rc != 0 && -s $work/err ]]' "init --follow with --ec 1+2 over a 2+1 set: rc $rc: $(tail -1 "$work/err")"
echo "follow_test: init --follow --ec 1+2 says: $(tail -1 "$work/err")"
# What the failed init left behind does not stand in the way of doing it right.
"$T" init --store "$fs/FX" --follow --from-blobbers "${B[@]}" --ec 2+1 > "$work/err" 2>&1; rc=$?
ok '[[ $rc == 0 && $(cat "$work/err") == *"follower store at round $rG "* ]]' "init --follow again with --ec 2+1: rc $rc: $(cat "$work/err")"
"$T" init --store "$fs/FY" --follow > "$work/err" 2>&1; rc=$?
ok '[[ $rc != 0 && $(cat "$work/err") == *"--from-blobbers"* ]]' "init --follow without --from-blobbers: rc $rc: $(cat "$work/err")"

before=$(cat "$m1/set/f10")
echo overwrite 2> "$work/err" > "$m1/set/f10"; rc=$?
ok '[[ $rc != 0 && $(cat "$work/err") == *"Read-only file system"* ]]' "echo > a follower's file: rc $rc: $(cat "$work/err")"
echo new 2> "$work/err" > "$m1/set/new"; rc=$?
ok '[[ $rc != 0 && $(cat "$work/err") == *"Read-only file system"* && ! -e $m1/set/new ]]' "create on a follower: rc $rc: $(cat "$work/err")"
rm "$m1/set/f11" 2> "$work/err"; rc=$?
ok '[[ $rc != 0 && -e $m1/set/f11 ]]' "rm on a follower: rc $rc: $(cat "$work/err")"
ok '[[ $(cat "$m1/set/f10") == "$before" ]]' "the follower's file is unchanged"
printf '{"op":"write","path":"set/f12","truncate":true,"data":"gen 999\\n"}\n' > "$work/w.ndjson"
(cd "$m1" && "$TCFS_BATCH" run "$work/w.ndjson") > "$work/err" 2>&1; rc=$?
ok '[[ $rc != 0 && $(cat "$work/err") == *"follower"* && $(head -1 "$m1/set/f12") == "gen $G" ]]' "a compound on a follower: rc $rc: $(cat "$work/err")"
out=$("$T" sync "$m1" 2>&1); rc=$?
ok '[[ $rc != 0 && $out == *"follower"* ]]' "tcfs sync on a follower: rc $rc: $out"

# --- 6. time travel and gc with a follower pinned ----------------------------
# The writer again, with gc keeping only its newest round (follow.h 8) and
# rounds only when asked: what it acknowledges stays local until a sync.
stop "$mW"
start "$fs/W" "$mW" -o sync_interval=600000,gc_keep_rounds=1,gc_keep_age=0,snapshot_every=2
log=$("$T" log "$mW"); rc=$?
ok '[[ $rc == 0 && $log == *"ROUND"* && $(grep -c "^$rG " <<< "$log") == 1 ]]' "tcfs log lists round $rG: rc $rc: $(tail -2 <<< "$log")"
offline=$("$T" log --blobber "${B[@]}" --ec 2+1 2>&1); rc=$?
ok '[[ $rc == 0 && $offline == "$log" ]]' "tcfs log --blobber (no mount) lists the same rounds: rc $rc: $(diff <(echo "$log") <(echo "$offline") | head -3)"
old=()
for g in $(printf '%s\n' "${!round_for[@]}" | sort -n); do ((g < G && ${#old[@]} < 5)) && old+=("$g"); done
ok '(( ${#old[@]} >= 4 ))' "old rounds to travel to: generations ${old[*]}"
for g in "${old[@]}"; do
  r=${round_for[$g]}
  out=$("$T" init --store "$fs/T$g" --follow --at "$r" --from-blobbers "${B[@]}" --ec 2+1 2>&1); rc=$?
  ok '[[ $rc == 0 && $out == *"follower store at round $r "* ]]' "init --follow --at $r: rc $rc: $out"
  start "$fs/T$g" "$work/t$g" --at "$r"
  make_gen "$g"
  bad=0; for f in "${names[@]}"; do cmp -s "$(gendir "$g")/$f" "$work/t$g/set/$f" || bad=$((bad + 1)); done
  ok '(( bad == 0 ))' "round $r (generation $g) mounted --at $r: $bad of $N files differ"
  ok '[[ $(round_of "$work/t$g") == "$r" ]]' "the time-travel mount stays at round $r"
  [[ $g != "${old[0]}" ]] && { stop "$work/t$g"; rm -rf "$(gendir "$g")"; }
done
# The oldest stays mounted, unread since its mount but for the check above,
# and pins its round: gc keeps what it reads.
gp=${old[0]} rp=${round_for[${old[0]}]}
if ((s3 == 0)); then  # a dead follower's note (expired long ago) is removed
  for b in "${B[@]}"; do mkdir -p "${b#dir://}/n/f" && echo '{"round":1,"expires":1}' > "${b#dir://}/n/f/0dead"; done
fi
out=$("$T" gc "$mW" 2>&1); rc=$?
ok '[[ $rc == 0 && $out == *"rounds from $rp on kept"* ]]' "gc keeps the rounds from the pinned follower's ($rp) on: rc $rc: $out"
((s3 == 0)) && ok '[[ $out == *"(1 expired follower notes removed)"* && ! -e ${B[0]#dir://}/n/f/0dead ]]' "gc removes an expired follower note: $out"
bad=0; for f in "${names[@]}"; do cmp -s "$(gendir "$gp")/$f" "$work/t$gp/set/$f" || bad=$((bad + 1)); done
ok '(( bad == 0 ))' "the pinned follower reads round $rp whole after gc: $bad of $N files differ"
stop "$work/t$gp"
# A fresh follower at the pinned round after gc: every block of it is still on the blobbers.
out=$("$T" init --store "$fs/TP" --follow --at "$rp" --from-blobbers "${B[@]}" --ec 2+1 2>&1); rc=$?
ok '[[ $rc == 0 ]]' "init --follow --at $rp after gc: rc $rc: $out"
start "$fs/TP" "$work/tp" --at "$rp"
bad=0; for f in "${names[@]}"; do cmp -s "$(gendir "$gp")/$f" "$work/tp/set/$f" || bad=$((bad + 1)); done
ok '(( bad == 0 ))' "a new follower at the pinned round $rp reads it whole after gc (cold): $bad of $N files differ"
stop "$work/tp"

# --- 6b. a follower away while gc removed its next round (follow.h 9) --------
# F3 is stopped; the writer makes three rounds (a snapshot every second);
# every note but live F2's expires (rewritten as expired: F3 was away
# longer than its TTL) and gc, which
# keeps only the newest round, removes the journals F3 would need. Mounted
# again, F3 rebuilds its image from the blobbers and shows the newest round.
if ((s3 == 0)); then
  stop "$m3"
  one_round "away 1" > /dev/null; one_round "away 2" > /dev/null; rA=$(one_round "away 3")
  id2=$("$T" status --json "$m2" | jq -r .status.follow.id)  # F2 is live: its note stays, at round rA
  "$T" wait "$m2" "$rA" --timeout 30 > /dev/null
  for _ in $(seq 100); do [[ $(jq -r .round "${B[0]#dir://}/n/f/$id2" 2>/dev/null) == "$rA" ]] && break; sleep 0.1; done
  for b in "${B[@]}"; do
    for n in "${b#dir://}"/n/f/*; do [[ -e $n && ${n##*/} != "$id2" ]] && echo '{"round":1,"expires":1}' > "$n"; done
  done
  out=$("$T" gc "$mW" 2>&1); rc=$?
  ok '[[ $rc == 0 && $rA =~ ^[0-9]+$ ]]' "three rounds while F3 is away (the newest $rA), then gc: rc $rc: $out"
  start "$fs/F3" "$m3" -o poll_interval=200
  l=; read -r l < "$m3/set/extra" 2>/dev/null
  ok '[[ $(round_of "$m3") == "$rA" && $l == "extra away 3" ]] && grep -q "rebuilding its image" "$work/m3.log"' \
    "F3, back after gc removed its next round, rebuilt its image: round $(round_of "$m3") (want $rA), set/extra '$l': $(grep -h "rebuil" "$work/m3.log" | tail -2)"
  bad=0; for f in "${names[@]}"; do cmp -s "$mW/set/$f" "$m3/set/$f" || bad=$((bad + 1)); done
  ok '(( bad == 0 ))' "the rebuilt F3 holds the writer's files: $bad of $N differ"
fi

# --- 7. handover: kill -9 the writer, promote --force a follower --------------
out=$("$T" sync "$mW" --json --timeout 60 2>&1); rW=$(jq -r .round <<< "$out" 2>/dev/null)
echo "acknowledged after the last round" > "$mW/unsynced1"
printf '{"op":"create","path":"unsynced2"}\n{"op":"write","path":"unsynced2","data":"a compound after the last round"}\n' > "$work/u.ndjson"
(cd "$mW" && "$TCFS_BATCH" run -q "$work/u.ndjson") > "$work/err" 2>&1; rc=$?
ok '[[ $rc == 0 ]]' "writes acknowledged after round $rW: rc $rc: $(cat "$work/err")"
kill -9 "${pid_of[$mW]}"; wait "${pid_of[$mW]}" 2>/dev/null
umount -l "$mW" 2>/dev/null; unset "pid_of[$mW]"
stop "$m1"
out=$("$T" promote --store "$fs/F1" --force 2>&1); rc=$?
ok '[[ $rc == 0 && $out == *"now the writer"* ]]' "promote --force F1: rc $rc: $out"
mP=$work/mP
start "$fs/F1" "$mP" -o sync_interval=300
bad=0; for f in "${names[@]}"; do cmp -s "$(gendir "$G")/$f" "$mP/set/$f" 2>/dev/null || bad=$((bad + 1)); done
ok '(( bad == 0 ))' "the promoted store holds generation $G: $bad of $N files differ"
g=$((G + 1)); make_gen "$g"
for f in "${names[@]}"; do
  printf '{"op":"write","path":"set/%s","truncate":true,"from":"%s/%s"}\n' "$f" "$(gendir "$g")" "$f"
done > "$work/c.ndjson"
(cd "$mP" && "$TCFS_BATCH" run -q "$work/c.ndjson") > "$work/err" 2>&1; rc=$?
ok '[[ $rc == 0 ]]' "the stream continues on the promoted writer: rc $rc: $(cat "$work/err")"
out=$("$T" sync "$mP" --json --timeout 60 2>&1); rc=$?; rN=$(jq -r .round <<< "$out" 2>/dev/null)
ok '[[ $rc == 0 && $rN =~ ^[0-9]+$ && $rN -gt $rW ]]' "the promoted writer syncs round $rN (> $rW): rc $rc: $out"
out=$("$T" wait "$m2" "$rN" --timeout 30 2>&1); rc=$?
bad=0; for f in "${names[@]}"; do cmp -s "$(gendir "$g")/$f" "$m2/set/$f" || bad=$((bad + 1)); done
ok '[[ $rc == 0 ]] && (( bad == 0 ))' "follower F2 follows the promoted writer to round $rN: rc $rc, $bad files differ: $out"
# The old writer comes back: fenced, it refuses, keeps and exports what it acknowledged.
start "$fs/W" "$mW" -o sync_interval=600000
for _ in $(seq 200); do [[ $("$T" status "$mW" 2>/dev/null) == *FENCED* ]] && break; sleep 0.05; done
st=$("$T" status "$mW" 2>&1)
ok '[[ $st == *"FENCED"* ]]' "the restarted old writer is fenced: $(grep -A1 FENCED <<< "$st")"
echo late 2> "$work/err" > "$mW/late"; rc=$?
ok '[[ $rc != 0 && $(cat "$work/err") == *"Read-only file system"* ]]' "the fenced writer refuses a write: rc $rc: $(cat "$work/err")"
(cd "$mW" && "$TCFS_BATCH" run -q "$work/u.ndjson") > "$work/err" 2>&1; rc=$?
ok '[[ $rc != 0 && $(cat "$work/err") == *"superseded"* ]]' "the fenced writer refuses a compound: rc $rc: $(cat "$work/err")"
stop "$mW"
out=$("$T" export-unsynced "$fs/W" "$work/exported" 2>&1); rc=$?
man=$(sort "$work/exported/manifest.txt" 2>/dev/null | tr '\n' ';')
ok '[[ $rc == 0 && $man == "new unsynced1;new unsynced2;" ]]' "export-unsynced lists exactly what was acknowledged after round $rW: rc $rc: $man $out"
ok '[[ $(cat "$work/exported/tree/unsynced1") == "acknowledged after the last round" && $(cat "$work/exported/tree/unsynced2") == "a compound after the last round" ]]' \
  "export-unsynced copies their content"
# One marker per round on the chain, and a restore equals the winner's tree.
if ((s3 == 0)); then
  nm=$(ls "${B[0]#dir://}/n/r" | wc -l)
  ok '[[ $nm == "$rN" ]]' "one marker per round: $nm markers for $rN rounds"
fi
out=$("$T" init --store "$fs/RW" --from-blobbers "${B[@]}" --ec 2+1 2>&1); rc=$?
ok '[[ $rc == 0 ]]' "restore from the blobbers after the handover: rc $rc: $(tail -1 <<< "$out")"
start "$fs/RW" "$work/mr"
bad=0; for f in "${names[@]}"; do cmp -s "$mP/set/$f" "$work/mr/set/$f" || bad=$((bad + 1)); done
ok '(( bad == 0 )) && [[ ! -e $work/mr/unsynced1 ]]' "the restore equals the winner's tree: $bad of $N files differ"
stop "$work/mr"

# --- 8. blobbers unreachable, then a clean handover ---------------------------
if ((s3 == 0)); then  # every blobber gone: F2 keeps serving its round and reports why it stays
  for b in "${B[@]}"; do mv "${b#dir://}" "${b#dir://}.away"; done
  echo gone > "$mP/gone-while-away"  # a change the follower cannot see yet
  sleep 2.5  # at least two of F2's polls (1 s)
  st=$("$T" status "$m2" 2>&1)
  bad=0; for f in "${names[@]}"; do cmp -s "$(gendir "$g")/$f" "$m2/set/$f" || bad=$((bad + 1)); done
  ok '(( bad == 0 )) && [[ $st == *"STOPPED:"* ]]' "blobbers unreachable: F2 serves round $rN ($bad files differ) and says why: $(grep STOPPED <<< "$st")"
  for b in "${B[@]}"; do mv "${b#dir://}.away" "${b#dir://}"; done
fi
# A clean handover: the writer unmounts (its last round), a follower is promoted without --force.
echo "written just before the clean unmount" > "$mP/last-words"
stop "$mP"
stop "$m2"
out=$("$T" promote --store "$fs/F2" 2>&1); rc=$?
ok '[[ $rc == 0 && $out == *"now the writer"* ]]' "promote F2 after a clean unmount, no --force: rc $rc: $out"
mQ=$work/mQ
start "$fs/F2" "$mQ"
bad=0; for f in "${names[@]}"; do cmp -s "$(gendir "$g")/$f" "$mQ/set/$f" || bad=$((bad + 1)); done
ok '(( bad == 0 )) && [[ $(cat "$mQ/last-words" 2>/dev/null) == "written just before the clean unmount" ]]' \
  "the clean handover loses nothing: $bad files differ, last-words: $(cat "$mQ/last-words" 2>&1)"
echo "after the handover" > "$mQ/next"
out=$("$T" sync "$mQ" --json --timeout 60 2>&1); rc=$?
ok '[[ $rc == 0 ]]' "the new writer syncs: rc $rc: $out"
stop "$mQ"

stop "$m3"
echo "follow_test: $checks checks, $fails failed"
((fails == 0))
