#!/usr/bin/env bash
# metrics_test.sh — a real Prometheus server scrapes a tcfs mount (issue
# 15, Metrics). Runs as root with TCFS_BIN and TCFS_BATCH set (meson does
# both); skipped (77) without the prometheus binary. The store and its
# directory blobber live on a loop XFS image of bounded size in a private
# temp dir; the mount, the daemon and Prometheus are stopped by pid.
#
# Checked, through Prometheus's HTTP query API after it scraped the mount:
#  - the target is up, with -o metrics=127.0.0.1:0 (a free port) read
#    back from `tcfs status --json`; a fresh mount's counters are there
#    at 0 before anything happened;
#  - N committed compounds and one rolled back one, exactly, with their
#    operation counts;
#  - M bytes written through the mount, exactly, and read back;
#  - one `tcfs sync` round: rounds +1, uploaded bytes >= M, blobber puts
#    counted, no blobber errors;
#  - FUSE requests by kind (create), errors by op and errno (an rmdir
#    of a directory that is not empty: ENOTEMPTY);
# and without Prometheus:
#  - `tcfs metrics MOUNTPOINT` prints the same committed count;
#  - `tcfs stats --once --json` shows the compounds, and requests and
#    bytes per second while a writer runs through its whole interval;
#    `tcfs stats` in a terminal (tmux, read back with capture-pane) draws
#    one screen with every section, redraws it in place, ends on Ctrl-C;
#  - progress bars: `tcfs scrub --progress` ends with a full bar of its
#    objects, `tcfs gc` into a file draws none, `tcfs sync --progress`
#    ends full, `tcfs init --from-blobbers --progress` ends with a full
#    bar of the journals, `tcfs scrub` in a terminal draws one by default;
#  - a taken port given as -o metrics=ADDR:PORT fails the mount, naming
#    it; a malformed value is a usage error (exit 2); nothing is mounted.
: "${TCFS_BATCH:?set TCFS_BATCH to the tcfs-batch binary}"
. "$(dirname "$0")/mount_harness.sh"
harness_needs_root metrics_test
PROM=${PROMETHEUS:-$(command -v prometheus || echo /usr/bin/prometheus)}
if [[ ! -x $PROM ]]; then
  echo "metrics_test: no prometheus binary (apt-get install prometheus, or tools/install-deps --test); skipped"
  exit 77
fi
harness_init metrics_test metrics
fs=$work/fs store=$work/fs/store mp=$work/mnt blob=$work/fs/blob
prom_pid= loopdev=

test_cleanup() {
  [[ -n $prom_pid ]] && { kill "$prom_pid" 2>/dev/null; wait "$prom_pid" 2>/dev/null; }
  stop_tcfs "$mp" "$store"
  stop_tcfs "$work/mnt2" "$work/fs/store2"
  umount "$fs" 2>/dev/null || umount -l "$fs" 2>/dev/null
}

mkdir -p "$mp"
xfs_image 512M "$fs"
mkdir -p "$blob"
"$TCFS_BIN" init --store "$store" --blobber "dir://$blob" > /dev/null || { echo "FAIL - tcfs init"; exit 1; }
# No rounds of its own: the test's `tcfs sync` makes the one round.
timeout 60 "$TCFS_BIN" mount --store "$store" -o metrics=127.0.0.1:0,sync_interval=86400000 "$mp" ||
  { echo "FAIL - tcfs mount"; exit 1; }
check "the mount is up" is_mounted "$mp"

addr=$("$TCFS_BIN" status "$mp" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"].get("metrics",""))')
if [[ $addr =~ ^http://(127\.0\.0\.1:[0-9]+)/metrics$ ]]; then
  pass "tcfs status --json names the endpoint ($addr)"
  target=${BASH_REMATCH[1]}
else
  fail "tcfs status --json names the endpoint (got '$addr')"
  exit 1
fi
check "the endpoint answers with tcfs metrics" bash -c "curl -sf '$addr' | grep -q '^# TYPE tcfs_fuse_request_duration_seconds histogram'"
# Before any compound, read or write: the series are there, at 0 (an alert
# on a rate needs no first event).
fresh=$(curl -sf "$addr")
for series in 'tcfs_compound_duration_seconds_count{outcome="committed"}' 'tcfs_compound_duration_seconds_count{outcome="rolled_back"}' \
  tcfs_compounds_recovered_total tcfs_fuse_written_bytes_total tcfs_fuse_read_bytes_total tcfs_lock_wait_seconds_count \
  tcfs_fetch_wait_seconds_count tcfs_sync_failures_total; do
  expect "a fresh mount shows $series at 0" 0 "$(awk -v s="$series" '$1 == s { print $2 }' <<< "$fresh")"
done

# A free loopback port for Prometheus.
prom_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/prom.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: tcfs
    static_configs:
      - targets: ['$target']
EOF
"$PROM" --config.file="$work/prom.yml" --storage.tsdb.path="$work/prom" \
  --web.listen-address="127.0.0.1:$prom_port" > "$work/prom.log" 2>&1 &
prom_pid=$!
api=http://127.0.0.1:$prom_port/api/v1

# q EXPR: the value of a one-sample instant query, or "" (none, or error).
q() {
  curl -sf --max-time 5 "$api/query" --data-urlencode "query=$1" |
    python3 -c 'import json,sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if len(r) == 1 else "")' 2>/dev/null
}
# wait_for EXPR WANT: waits (up to 60 s) until q EXPR is WANT, as numbers; prints the last value.
wait_for() {
  local v=
  for _ in $(seq 120); do
    v=$(q "$1")
    [[ -n $v ]] && python3 -c "import sys; sys.exit(0 if float('$v') == float('$2') else 1)" && { echo "$v"; return 0; }
    sleep 0.5
  done
  echo "$v"
  return 1
}

v=$(wait_for 'up{job="tcfs"}' 1) && pass "Prometheus scrapes the mount (up = 1)" || { fail "Prometheus scrapes the mount (up = '$v'); its log:"; tail -5 "$work/prom.log"; exit 1; }
sync0=$(wait_for 'tcfs_sync_rounds_total' "$(curl -sf "$addr" | awk '$1 == "tcfs_sync_rounds_total" { print $2 }')")

# Known work: N compounds of 3 operations, one compound that fails (rolled
# back), M bytes written through the mount and read back.
N=7 M=$((3 * 1048576 + 4096))
for i in $(seq "$N"); do
  printf '{"op":"mkdir","path":"d%d"}\n{"op":"create","path":"d%d/f"}\n{"op":"write","path":"d%d/f","data":"x%d"}\n' \
    "$i" "$i" "$i" "$i" | "$TCFS_BATCH" -q -C "$mp" run - || fail "compound $i"
done
printf '{"op":"create","path":"new"}\n{"op":"remove","path":"no-such-file"}\n' | "$TCFS_BATCH" -q -C "$mp" run - 2> /dev/null &&
  fail "the compound with a missing file fails"
head -c "$M" /dev/urandom > "$work/data"
dd if="$work/data" of="$mp/big" bs=64k conv=fsync status=none || fail "dd to the mount"
sync; echo 3 > /proc/sys/vm/drop_caches
cmp -s "$work/data" "$mp/big" || fail "the file reads back"
rmdir "$mp/d1" 2> /dev/null && fail "rmdir of a directory that is not empty fails"
timeout 120 "$TCFS_BIN" sync "$mp" > /dev/null || fail "tcfs sync"

v=$(wait_for 'tcfs_compound_duration_seconds_count{outcome="committed"}' "$N") &&
  pass "compounds committed: $v" || fail "compounds committed: want $N, Prometheus has '$v'"
v=$(wait_for 'tcfs_compound_duration_seconds_count{outcome="rolled_back"}' 1) &&
  pass "compounds rolled back: $v" || fail "compounds rolled back: want 1, Prometheus has '$v'"
v=$(wait_for 'tcfs_compound_operations_sum' $((3 * N + 2))) &&
  pass "operations in compounds: $v" || fail "operations in compounds: want $((3 * N + 2)), Prometheus has '$v'"
v=$(wait_for 'tcfs_fuse_written_bytes_total' "$M") &&
  pass "bytes written through the mount: $v" || fail "bytes written through the mount: want $M, Prometheus has '$v'"
v=$(wait_for 'tcfs_fuse_read_bytes_total >= bool '"$M" 1) &&
  pass "bytes read through the mount >= $M" || fail "bytes read through the mount: want >= $M ($(q tcfs_fuse_read_bytes_total))"
v=$(wait_for 'tcfs_sync_rounds_total - '"${sync0:-0}"' >= bool 1' 1) &&
  pass "tcfs sync made a round (rounds: $(q tcfs_sync_rounds_total), before: $sync0)" || fail "a sync round counted (rounds: '$(q tcfs_sync_rounds_total)', before: $sync0)"
v=$(wait_for 'tcfs_sync_uploaded_bytes_total >= bool '"$M" 1) &&
  pass "uploaded bytes >= $M" || fail "uploaded bytes: want >= $M ($(q tcfs_sync_uploaded_bytes_total))"
v=$(wait_for 'sum(tcfs_blobber_request_duration_seconds_count{op="put"}) > bool 0' 1) &&
  pass "blobber puts counted ($(q 'sum(tcfs_blobber_request_duration_seconds_count{op="put"})'))" || fail "blobber puts counted"
expect "no blobber errors" 0 "$(q 'sum(tcfs_blobber_errors_total) or vector(0)')"
v=$(wait_for 'tcfs_fuse_request_duration_seconds_count{op="create"} >= bool 1' 1) &&
  pass "FUSE creates counted ($(q 'tcfs_fuse_request_duration_seconds_count{op="create"}'))" || fail "FUSE creates counted"
v=$(wait_for 'tcfs_fuse_errors_total{op="rmdir",errno="ENOTEMPTY"}' 1) &&
  pass "the failed rmdir counted by op and errno" || fail "the failed rmdir counted by op and errno: want 1, have '$v'"
v=$(wait_for 'tcfs_sync_oldest_unsynced_seconds' 0) && pass "nothing unsynced after tcfs sync" ||
  fail "nothing unsynced after tcfs sync (oldest: '$v' s)"

got=$("$TCFS_BIN" metrics "$mp" | awk '$1 == "tcfs_compound_duration_seconds_count{outcome=\"committed\"}" { print $2 }')
expect "tcfs metrics MOUNTPOINT (control socket) shows the compounds" "$N" "$got"

# tcfs stats: one sample as JSON while a writer runs for all of it.
( while :; do dd if=/dev/zero of="$mp/busy" bs=64k count=16 conv=fsync status=none; done ) &
busy=$!
js=$(timeout 30 "$TCFS_BIN" stats "$mp" --once --json --interval 1)
kill "$busy"; wait "$busy" 2> /dev/null
stat_of() { python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$js" "$1" 2>/dev/null; }
expect "tcfs stats --json: compounds committed in all" "$N" "$(stat_of 'int(j["compounds"]["committed_total"])')"
expect "tcfs stats --json: requests and bytes written per second while a writer runs" True \
  "$(stat_of 'j["fuse"]["requests_per_s"] > 0 and j["fuse"]["written_bytes_per_s"] > 0 and j["fuse"]["by_op_per_s"].get("write_buf", j["fuse"]["by_op_per_s"].get("write", 0)) > 0')"
expect "tcfs stats --json: the sync and blobber figures" "True 0 ok" \
  "$(stat_of '"sync" in j and j["sync"]["round"] >= 1, j["blobbers"][0]["blobber"], j["blobbers"][0]["health"]' | tr -d "(),'")"
# The live view in a terminal: tmux runs it, its screen is read back.
if command -v tmux > /dev/null; then
  sess=tcfs-stats-$$
  tmux new-session -d -s "$sess" -x 150 -y 30 "'$TCFS_BIN' stats '$mp' --interval 0.5; sleep 30"
  screen=$(tmux_screen "$sess" "^blobber 0")
  check "tcfs stats on a terminal: one screen with every section" bash -c '
    s=$1; grep -q "^tcfs stats '"$mp"'" <<< "$s" && grep -q "^requests " <<< "$s" && grep -q "^compounds .* '"$N"' committed in all" <<< "$s" &&
    grep -q "^sync       round [0-9]" <<< "$s" && grep -q "^blobber 0  ok" <<< "$s"' _ "$screen" || echo "$screen"
  sleep 1.2  # two more refreshes: the screen is redrawn in place, not appended
  screen=$(tmux capture-pane -p -t "$sess" 2> /dev/null)
  expect "tcfs stats on a terminal: redrawn in place (one header on the screen)" 1 "$(grep -c '^tcfs stats ' <<< "$screen")"
  pane=$(tmux display-message -p -t "$sess" '#{pane_pid}')  # the pane's shell; tcfs stats is its child
  check "tcfs stats runs in the pane" pgrep -P "$pane" -x tcfs
  tmux send-keys -t "$sess" C-c
  for _ in $(seq 50); do pgrep -P "$pane" -x tcfs > /dev/null || break; sleep 0.1; done
  check "tcfs stats ends on Ctrl-C" bash -c "! pgrep -P '$pane' -x tcfs"
  tmux kill-session -t "$sess" 2> /dev/null
fi

# Progress bars (tools/tcfs/progress.h): forced with --progress into a
# file, none by default there, and by default on a terminal.
n_obj=$("$TCFS_BIN" scrub "$mp" --progress 2> "$work/scrub.err" | sed -n 's/^tcfs scrub: \([0-9]*\) objects.*/\1/p')
last=$(tr '\r' '\n' < "$work/scrub.err" | grep -v '^ *$' | tail -1)
check "tcfs scrub --progress ends with a full bar of its objects ($n_obj)" \
  grep -qE "^scrub \[#{24}\] 100%  $n_obj/$n_obj" <<< "$last"
"$TCFS_BIN" gc "$mp" > /dev/null 2> "$work/gc.err"
expect "tcfs gc, stderr not a terminal: no bar" 0 "$(wc -c < "$work/gc.err")"
head -c 48M /dev/urandom > "$mp/progress-file"
"$TCFS_BIN" sync "$mp" --progress > /dev/null 2> "$work/sync.err"
last=$(tr '\r' '\n' < "$work/sync.err" | grep -v '^ *$' | tail -1)
check "tcfs sync --progress: the bar, when a poll saw the round, ends full ('$last')" \
  bash -c '[[ -z $1 || $1 =~ ^sync\ \[#{24}\]\ 100%\ \ [0-9.]+\ MiB/[0-9.]+\ MiB ]]' _ "$last"
"$TCFS_BIN" init --store "$work/fs/restored" --from-blobbers "dir://$blob" --progress > /dev/null 2> "$work/init.err" ||
  fail "tcfs init --from-blobbers"
last=$(tr '\r' '\n' < "$work/init.err" | grep -v '^ *$' | tail -1)
check "tcfs init --from-blobbers --progress ends with a full bar of the journals loaded" \
  grep -qE "^restore journals \[#{24}\] 100%  ([1-9][0-9]*)/\1" <<< "$last"
rm -rf "$work/fs/restored"
if command -v tmux > /dev/null; then
  sess=tcfs-scrub-$$
  tmux new-session -d -s "$sess" -x 150 -y 10 "'$TCFS_BIN' scrub '$mp'; sleep 30"
  screen=$(tmux_screen "$sess" "^tcfs scrub: ")
  check "tcfs scrub on a terminal draws its bar by default" grep -qE "^scrub \[#{24}\] 100%" <<< "$screen"
  tmux kill-session -t "$sess" 2> /dev/null
fi

# A taken port fails a mount that asked for it; nothing gets mounted.
mkdir -p "$work/mnt2"
out=$(timeout 60 "$TCFS_BIN" mount --store "$work/fs/store2" -o "metrics=127.0.0.1:$prom_port" "$work/mnt2" 2>&1); rc=$?
if ((rc != 0)) && grep -q "metrics=127.0.0.1:$prom_port" <<< "$out" && ! is_mounted "$work/mnt2"; then
  pass "a taken metrics port fails the mount, naming it"
else
  fail "a taken metrics port fails the mount (rc $rc: $out)"
fi
out=$(timeout 60 "$TCFS_BIN" mount --store "$work/fs/store2" -o metrics=nowhere "$work/mnt2" 2>&1); rc=$?
if ((rc == 2)) && grep -q "ADDR:PORT" <<< "$out" && ! is_mounted "$work/mnt2"; then
  pass "a malformed metrics= is a usage error"
else
  fail "a malformed metrics= is a usage error (rc $rc: $out)"
fi

harness_summary metrics_test
