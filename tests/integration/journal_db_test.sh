#!/usr/bin/env bash
# journal_db_test.sh — real databases survive power cuts on a tcfs mount
# with the endurant log (-o journal=on), on a loop-mounted XFS image (2 GiB).
# Each trial, on a fresh store:
#   * PostgreSQL: a cluster of its own (initdb --data-checksums, owned by
#     the postgres user, in a directory of the mount; unix socket in the
#     test's temp dir only, listen_addresses=''; fsync and synchronous_commit
#     on, as by default): pgbench -i, then pgbench -c 8 -j 2 reports
#     transactions and none failed;
#   * then, all at once: a client (one psql fed by a pipe) inserting ids
#     1, 2, ... each in its own committed transaction (a CHECKPOINT every
#     250), pgbench in the background, and two SQLite writers (python3's
#     sqlite3) inserting ids one per transaction: one database in WAL mode
#     with synchronous=FULL, one with the rollback journal (DELETE) and
#     synchronous=EXTRA (with FULL, SQLite does not sync the directory
#     after unlinking the journal, the commit point in that mode, so a power
#     cut may roll back the last acknowledged commit: seen here on tcfs, as
#     SQLite documents for any filesystem); each id whose commit returned
#     is recorded outside the store's filesystem;
#   * the log carried their fsyncs (tcfs status --json: records and batches
#     grew during the workload); every writer still running at the cut;
#   * the store's filesystem is cut (xfs_io -x -c shutdown) while they run;
#     every process is killed by pid, the image unmounted and mounted again,
#     tcfs mounted again (it replays the log: records replayed);
#   * PostgreSQL starts and its crash recovery succeeds; pg_amcheck
#     (--heapallindexed, every database) finds no corruption; pgbench's
#     balances agree (accounts, tellers, branches, history); the ids are
#     exactly 1..n with a <= n <= b + 1 (a: the last id acknowledged
#     before the cut, b: the last acknowledged at all);
#   * each SQLite database (sqlite3 CLI): PRAGMA integrity_check is ok; the
#     ids are exactly 1..n with a <= n <= b + 1.
# The writers go on for a moment after the cut, as programs do after the
# store's filesystem stops (a real power cut stops them too): a commit
# acknowledged then may or may not be there. SQLite's rollback journal
# shows why: its commit point is the journal's unlink, then it opens the
# directory to sync it, and a directory it cannot open (EIO once the store
# is cut) is not an error to SQLite, so such a commit can return without
# being durable (seen here, once in ten trials under ASan).
# Runs as root (else skipped, 77); PostgreSQL, sqlite3, xfs_io missing is a
# failure (tools/install-deps --test installs them).
# Environment: TCFS_BIN; PG_BIN (default: the newest
# /usr/lib/postgresql/*/bin). Options: --trials N (default 2 cuts),
# --pg-seconds S (the pgbench run before the cut, default 10),
# --mount-opts O (more -o options for every mount, e.g. writeback=off),
# --keep DIR (a failed SQLite check copies the databases and journals as
# the cut left them, before sqlite3 opens them, and the daemon's log there).
set -uo pipefail
: "${TCFS_BIN:?}"
trials=2 pg_seconds=10 mopts=journal=on keep=
while (($#)); do
  case "$1" in
    --trials) trials=$2; shift 2 ;;
    --pg-seconds) pg_seconds=$2; shift 2 ;;
    --mount-opts) mopts+=,$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    *) echo "journal_db_test: unknown argument $1" >&2; exit 2 ;;
  esac
done
here=$(cd "$(dirname "$0")" && pwd)
. "$here/mount_harness.sh"
harness_init journal_db_test journaldb
cd /  # the postgres user runs commands from here

PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
missing=
for b in initdb pg_ctl postgres psql pgbench pg_amcheck; do [[ -x ${PG_BIN:-/nonexistent}/$b ]] || missing+=" $b"; done
for b in sqlite3 xfs_io mkfs.xfs runuser python3; do command -v "$b" >/dev/null || missing+=" $b"; done
id postgres >/dev/null 2>&1 || missing+=" (user postgres)"
if [[ -n $missing ]]; then
  fail "needed programs missing:$missing (PG_BIN=${PG_BIN:-none}; tools/install-deps --test)"
  harness_summary journal_db_test
  exit 1
fi

fsdir=$work/fs mnt=$work/mnt store=$work/fs/store sock=$work/sock
pgdata=$mnt/pg/data pglog=$work/pg.log
mkdir -p "$fsdir" "$mnt" "$sock"
chown postgres: "$sock" && chmod 700 "$sock"
pids=() daemon= pm= shmids=()
declare -A name  # pid -> which writer or client

alive() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $s != Z* ]]; }
wait_gone() {  # wait_gone SECONDS PID...: true once none is alive
  local t=$1 p left; shift
  for _ in $(seq $((t * 10))); do
    left=0
    for p in "$@"; do alive "$p" && left=1; done
    ((left)) || return 0
    sleep 0.1
  done
  return 1
}
fuse_abort() {  # the last resort for a hung mount: abort its FUSE connection
  local minor
  minor=$(mount_minor "$mnt")
  [[ -n $minor ]] || return 0
  mountpoint -q /sys/fs/fuse/connections || mount -t fusectl none /sys/fs/fuse/connections 2>/dev/null
  echo 1 > "/sys/fs/fuse/connections/$minor/abort" 2>/dev/null
}
is_postmaster() { [[ $(readlink "/proc/$1/exe" 2>/dev/null) == "$(readlink -f "$PG_BIN/postgres")" ]]; }
kill_pg() {  # the postmaster started last and its children, by pid; stopped first, it forks no more
  local kids=
  [[ $pm =~ ^[0-9]+$ ]] && ((pm > 1)) && kill -0 "$pm" 2>/dev/null || return 0
  if alive "$pm"; then
    is_postmaster "$pm" || return 0  # a stale pid, not ours
    kill -STOP "$pm"
    kids=$(pgrep -P "$pm" | tr '\n' ' ')
    kill -9 $kids "$pm" 2>/dev/null
  fi
  wait_gone 10 $kids "$pm" || return 1
  # A new postmaster takes a zombie for a live one: wait until it is reaped
  # (by init here, which may take seconds).
  for _ in $(seq 300); do kill -0 "$pm" 2>/dev/null || return 0; sleep 0.1; done
  return 1
}
kill_all() {  # writers, clients, the cluster and the daemon; then the mount
  local p
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  kill_pg
  [[ -n $daemon ]] && kill -9 "$daemon" 2>/dev/null
  if ! wait_gone 10 "${pids[@]}" $daemon; then
    fuse_abort
    wait_gone 10 "${pids[@]}" $daemon || echo "journal_db_test: processes left: $(for p in "${pids[@]}" $daemon; do alive "$p" && echo -n "$p "; done)"
  fi
  for p in "${pids[@]}" $daemon; do wait "$p" 2>/dev/null; done
  pids=() daemon=
  if is_mounted "$mnt"; then timeout 20 umount "$mnt" 2>/dev/null || { fuse_abort; umount -l "$mnt"; }; fi
} 2>/dev/null  # not bash's notices of the jobs killed
drop_shm() {  # the SysV segments of clusters killed with -9 and not started again
  local id
  for id in "${shmids[@]}"; do
    [[ $(ipcs -m | awk -v i="$id" '$2 == i { print $3 "/" $6 }') == postgres/0 ]] && ipcrm -m "$id" 2>/dev/null
  done
  shmids=()
}
pg_adopt() {  # the postmaster of an interrupted pg_start: from its pid file, else its socket's lock file
  local pidf
  pidf=$(timeout 5 cat "$pgdata/postmaster.pid" 2>/dev/null)
  [[ -n $pidf ]] || pidf=$(cat "$sock"/.s.PGSQL.*.lock 2>/dev/null)
  [[ -n $pm ]] || pm=$(sed -n 1p <<< "$pidf")
  shmids+=($(sed -n 7p <<< "$pidf" | awk '{ print $2 }'))
}
test_cleanup() {
  pg_adopt
  kill_all
  drop_shm
  is_mounted "$fsdir" && { umount "$fsdir" 2>/dev/null || umount -l "$fsdir"; }
}

truncate -s 2G "$work/img" && mkfs.xfs -q -m reflink=1 "$work/img" || exit 1
mount -o loop "$work/img" "$fsdir" || exit 1

start_daemon() {  # mount options...
  TCFS_LOG=info "$TCFS_BIN" mount --store "$store" -f "$@" "$mnt" >> "$work/daemon.log" 2>&1 &
  daemon=$!
  for _ in $(seq 100); do is_mounted "$mnt" && return 0; kill -0 "$daemon" 2>/dev/null || break; sleep 0.05; done
  return 1
}
stop_daemon() {
  if is_mounted "$mnt"; then timeout 30 umount "$mnt" 2>/dev/null || { fuse_abort; umount -l "$mnt"; }; fi
  wait_gone 30 "$daemon" || kill -9 "$daemon" 2>/dev/null
  wait "$daemon" 2>/dev/null
  daemon=
}
tail_of() { echo "    --- last lines of $(basename "$1"):"; tail -n "${2:-15}" "$1" 2>/dev/null | sed 's/^/    /'; }
checkl() {  # checkl LOG WHAT CMD...: check, and show the end of LOG when it fails
  local log=$1 what=$2; shift 2
  if "$@"; then pass "$what"; else fail "$what"; tail_of "$log"; fi
}
pgrun() { local t=$1; shift; timeout -k 5 "$t" runuser -u postgres -- "$@"; }
psql_() { timeout -k 5 60 "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$sock" -U postgres -d postgres "$@"; }
pg_start() {  # the cluster on $pgdata; sets pm (the postmaster) and notes its shared memory segment
  local rc pidf
  pgrun 150 "$PG_BIN/pg_ctl" -D "$pgdata" -l "$pglog" -w -t 120 start > "$work/pg_ctl.out" 2>&1
  rc=$?
  pidf=$(timeout 10 cat "$pgdata/postmaster.pid" 2>/dev/null)  # also after a failed start: what to kill
  pm=$(sed -n 1p <<< "$pidf")
  [[ $pm =~ ^[0-9]+$ ]] || pm=
  shmids+=($(sed -n 7p <<< "$pidf" | awk '{ print $2 }'))
  ((rc == 0)) && [[ -n $pm ]]
}
pg_stop() {
  local rc
  pgrun 90 "$PG_BIN/pg_ctl" -D "$pgdata" -m fast -w -t 60 stop > "$work/pg_ctl.out" 2>&1
  rc=$?
  kill_pg
  pm=
  return "$rc"
}
journal_stat() {  # journal_stat TAG: records|batches from tcfs status (its output in $work/status-TAG.out)
  local f=$work/status-$1.out s=$SECONDS
  timeout 20 "$TCFS_BIN" status --json "$mnt" > "$f" 2>&1
  echo "rc $? after $((SECONDS - s)) s" >> "$f"
  python3 -c 'import json,sys; j=json.loads(sys.stdin.read().rsplit("rc ", 1)[0])["status"].get("journal", {}); print("%d|%d" % (j.get("records", -1), j.get("batches", -1)))' < "$f" 2>/dev/null
}
replayed() { grep -o '[0-9]* records replayed' "$work/daemon.log" | tail -1 | grep -o '^[0-9]*'; }
last_ack() { local a; a=$(tail -n 1 "$1" 2>/dev/null); echo "${a:-0}"; }
acks_at_least() { local f; for f in "${@:2}"; do (($(last_ack "$f") >= $1)) || return 1; done; }
ids_ok() {  # ids_ok BEFORE AFTER "count|min|max": the ids are exactly 1..n, BEFORE <= n <= AFTER + 1
  local a=$1 b=$2 c lo hi
  IFS='|' read -r c lo hi <<< "$3"
  [[ $a =~ ^[0-9]+$ && $b =~ ^[0-9]+$ && $c =~ ^[0-9]+$ && $lo =~ ^[0-9]+$ && $hi =~ ^[0-9]+$ ]] || return 1
  ((c == hi && (c == 0 || lo == 1) && hi >= a && hi <= b + 1))
}

# The writers: pg (one psql fed by a pipe; "\echo ack N" follows each COMMIT
# and ON_ERROR_STOP ends psql at the first error, so an ack is a commit that
# returned) and sqlite MODE SYNC (python3's sqlite3). Each appends the ids whose
# commit returned to ACKLOG, line-buffered, and stops at the first error.
cat > "$work/dbwriter.py" <<'EOF'
import sqlite3, subprocess, sys

def pg(psql, sock, acklog, pidfile):
    p = subprocess.Popen([psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", sock,
                          "-U", "postgres", "-d", "postgres"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    with open(pidfile, "w") as f:
        f.write("%d\n" % p.pid)
    ack = open(acklog, "a", buffering=1)
    i = 0
    try:
        while True:
            i += 1
            cmd = "BEGIN; INSERT INTO ids VALUES (%d, md5('%d'), repeat('x', 200)); COMMIT;\n\\echo ack %d\n" % (i, i, i)
            if i % 250 == 0:
                cmd += "CHECKPOINT;\n"
            p.stdin.write(cmd)
            p.stdin.flush()
            line = p.stdout.readline()
            if line != "ack %d\n" % i:
                print("pg writer: stopped at %d (psql said %r)" % (i, line), file=sys.stderr)
                break
            ack.write("%d\n" % i)
    except OSError as e:
        print("pg writer: stopped at %d: %s" % (i, e), file=sys.stderr)
    p.kill()
    p.wait()

def lite(db, mode, sync, acklog):
    c = sqlite3.connect(db, isolation_level=None, timeout=30)
    got = c.execute("PRAGMA journal_mode=%s" % mode).fetchone()[0]
    if got.lower() != mode.lower():
        sys.exit("sqlite writer: journal_mode %s, not %s" % (got, mode))
    c.execute("PRAGMA synchronous=%s" % sync)
    got = c.execute("PRAGMA synchronous").fetchone()[0]
    if got != {"FULL": 2, "EXTRA": 3}[sync]:
        sys.exit("sqlite writer: synchronous %s, not %s" % (got, sync))
    c.execute("CREATE TABLE IF NOT EXISTS ids (id INTEGER PRIMARY KEY, v TEXT, pad BLOB)")
    c.execute("CREATE INDEX IF NOT EXISTS ids_v ON ids(v)")
    ack = open(acklog, "a", buffering=1)
    i = 0
    try:
        while True:
            i += 1
            c.execute("BEGIN")
            c.execute("INSERT INTO ids VALUES (?, hex(randomblob(8)), randomblob(300))", (i,))
            c.execute("COMMIT")
            ack.write("%d\n" % i)
    except (sqlite3.Error, OSError) as e:
        print("sqlite writer %s: stopped at %d: %s" % (mode, i, e), file=sys.stderr)

if sys.argv[1] == "pg":
    pg(*sys.argv[2:6])
else:
    lite(*sys.argv[2:6])
EOF

for t in $(seq "$trials"); do
  T="trial $t"
  rm -rf "$store" "$work"/ack-* "$work"/*.err "$work"/*.out "$work/psql.pid"
  : > "$work/daemon.log"
  : > "$pglog"; chown postgres: "$pglog"
  start_daemon -o "$mopts" || { fail "$T: mount: $(tail -3 "$work/daemon.log")"; kill_all; continue; }
  mkdir -p "$mnt/pg" && chown postgres: "$mnt/pg" && chmod 700 "$mnt/pg"

  # --- PostgreSQL: a cluster, pgbench ---------------------------------------
  if ! pgrun 120 "$PG_BIN/initdb" -D "$pgdata" -U postgres --auth=trust --data-checksums > "$work/initdb.out" 2>&1; then
    fail "$T: initdb on the mount"; tail_of "$work/initdb.out"; kill_all; continue
  fi
  cat >> "$pgdata/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$sock'
shared_buffers = 32MB
max_connections = 40
max_wal_size = 64MB
min_wal_size = 32MB
fsync = on
synchronous_commit = on
full_page_writes = on
EOF
  if ! pg_start; then fail "$T: PostgreSQL starts on the mount"; tail_of "$pglog"; kill_all; continue; fi
  pass "$T: initdb and start on the mount (postmaster $pm)"
  timeout -k 5 120 "$PG_BIN/pgbench" -h "$sock" -U postgres -i -s 2 postgres > "$work/pgbench-i.out" 2>&1
  checkl "$work/pgbench-i.out" "$T: pgbench -i -s 2" test $? = 0
  timeout -k 5 $((pg_seconds + 60)) "$PG_BIN/pgbench" -h "$sock" -U postgres -c 8 -j 2 -T "$pg_seconds" postgres > "$work/pgbench.out" 2>&1
  rc=$?
  done_tx=$(awk -F': ' '/number of transactions actually processed/ { print $2 }' "$work/pgbench.out" | cut -d/ -f1)
  failed_tx=$(awk -F': ' '/number of failed transactions/ { print $2 }' "$work/pgbench.out" | cut -d' ' -f1)
  checkl "$work/pgbench.out" "$T: pgbench -c 8 -j 2 -T $pg_seconds: ${done_tx:-no} transactions, ${failed_tx:-?} failed" \
    test "$rc" = 0 -a "${done_tx:-0}" -gt 0 -a "${failed_tx:-x}" = 0
  psql_ -c "CREATE TABLE ids (id bigint PRIMARY KEY, v text NOT NULL, pad text); CREATE INDEX ids_v ON ids (v)" > "$work/psql.out" 2>&1
  checkl "$work/psql.out" "$T: the ids table" test $? = 0

  # --- the workload, then the cut ---------------------------------------------
  before=$(journal_stat before)
  python3 "$work/dbwriter.py" pg "$PG_BIN/psql" "$sock" "$work/ack-pg" "$work/psql.pid" 2> "$work/writer-pg.err" &
  pids+=($!) name[$!]=writer-pg
  for m in wal delete; do
    python3 "$work/dbwriter.py" sqlite "$mnt/$m.db" "$m" "$([[ $m == wal ]] && echo FULL || echo EXTRA)" "$work/ack-$m" 2> "$work/writer-$m.err" &
    pids+=($!) name[$!]=writer-$m
  done
  "$PG_BIN/pgbench" -h "$sock" -U postgres -n -c 4 -j 2 -T 600 postgres > "$work/pgbench-bg.err" 2>&1 &
  pids+=($!) name[$!]=pgbench-bg
  for _ in $(seq 100); do [[ -s $work/psql.pid ]] && break; sleep 0.05; done
  [[ -s $work/psql.pid ]] && p=$(cat "$work/psql.pid") && pids+=("$p") name[$p]=psql
  for _ in $(seq 600); do acks_at_least 300 "$work"/ack-{pg,wal,delete} && break; sleep 0.1; done
  sleep "$((RANDOM % 3 + 1)).$((RANDOM % 10))"
  stopped=
  for p in "${pids[@]}"; do alive "$p" || stopped+=" ${name[$p]}"; done
  ((${#pids[@]} == 5)) || stopped+=" (psql never started)"
  after=$(journal_stat after)
  declare -A pre=()  # acknowledged before the cut (a partly written last line reads lower: safe)
  for w in pg wal delete; do pre[$w]=$(last_ack "$work/ack-$w"); done
  xfs_io -x -c shutdown "$fsdir"
  sleep 0.5
  kill_all
  acks="pg ${pre[pg]}..$(last_ack "$work/ack-pg"), wal ${pre[wal]}..$(last_ack "$work/ack-wal"),\
 delete ${pre[delete]}..$(last_ack "$work/ack-delete")"
  pm=
  umount "$fsdir" 2>/dev/null || { sleep 1; umount "$fsdir"; } || umount -l "$fsdir"
  check "$T: every writer acknowledged 300 commits or more before the cut ($acks)" \
    test "${pre[pg]}" -ge 300 -a "${pre[wal]}" -ge 300 -a "${pre[delete]}" -ge 300
  expect "$T: the writers and clients (3 writers, psql, pgbench) still running at the cut" "" "$stopped"
  for p in $stopped; do p=${p/psql/writer-pg}; [[ -f $work/$p.err ]] && tail_of "$work/$p.err" 5; done
  IFS='|' read -r r0 b0 <<< "$before"
  IFS='|' read -r r1 b1 <<< "$after"
  what="$T: the log carried the commits (records $r0 -> $r1, batches $b0 -> $b1)"
  if [[ ${r0:-x} =~ ^[0-9]+$ && ${r1:-x} =~ ^[0-9]+$ ]] && ((r1 > r0 && b1 > b0)); then pass "$what"; else
    fail "$what"; tail_of "$work/status-before.out" 8; tail_of "$work/status-after.out" 8
  fi
  if ! timeout 60 mount -o loop "$work/img" "$fsdir"; then fail "$T: remount the image"; break; fi
  start_daemon -o "$mopts" || { fail "$T: mount after the cut: $(tail -3 "$work/daemon.log")"; kill_all; continue; }
  check "$T: the mount replayed $(replayed) records" test "$(replayed)" -gt 0

  # --- PostgreSQL after the cut -------------------------------------------------
  : > "$pglog"
  if pg_start; then
    pass "$T: PostgreSQL starts after the cut"
    checkl "$pglog" "$T: PostgreSQL's crash recovery ran: $(grep -o 'redo done at [0-9A-F/]*' "$pglog" | head -1)" \
      grep -q 'automatic recovery in progress' "$pglog"
    timeout -k 5 300 "$PG_BIN/pg_amcheck" -h "$sock" -U postgres --all --install-missing --heapallindexed > "$work/amcheck.out" 2>&1
    rc=$?
    expect "$T: pg_amcheck --all --heapallindexed finds no corruption$( ((rc)) && echo ": $(head -5 "$work/amcheck.out" | tr '\n' ' ')")" 0 "$rc"
    sums=$(psql_ -c "SELECT (SELECT sum(abalance) FROM pgbench_accounts) || ' ' || (SELECT sum(tbalance) FROM pgbench_tellers) || ' ' ||
                            (SELECT sum(bbalance) FROM pgbench_branches) || ' ' || (SELECT coalesce(sum(delta), 0) FROM pgbench_history)" 2>&1)
    read -r s1 s2 s3 s4 <<< "$sums"
    check "$T: pgbench's balances agree (accounts, tellers, branches, history: $sums)" \
      test -n "${s4:-}" -a "${s1:-x}" = "${s2:-y}" -a "${s2:-y}" = "${s3:-z}" -a "${s3:-z}" = "${s4:-w}"
    got=$(psql_ -c "SELECT count(*) || '|' || coalesce(min(id), 0) || '|' || coalesce(max(id), 0) FROM ids" 2>&1)
    a=${pre[pg]} b=$(last_ack "$work/ack-pg")
    check "$T: PostgreSQL: every id acknowledged before the cut there, nothing invented (count|min|max $got, $a acknowledged before the cut, $b in all)" \
      ids_ok "$a" "$b" "$got"
    pg_stop || fail "$T: PostgreSQL stops: $(tail -2 "$work/pg_ctl.out")"
  else
    fail "$T: PostgreSQL starts after the cut (crash recovery)"
    tail_of "$pglog" 30
    kill_pg; pm=
  fi

  # --- SQLite after the cut -------------------------------------------------------
  rm -rf "$work/cut" && mkdir "$work/cut" && cp -a "$mnt"/*.db* "$work/cut/" 2>/dev/null
  for m in wal delete; do
    out=$(timeout -k 5 120 sqlite3 "$mnt/$m.db" "PRAGMA integrity_check;" 2>&1)
    expect "$T: SQLite ($m): integrity_check" ok "$out"
    got=$(timeout -k 5 60 sqlite3 "$mnt/$m.db" "SELECT count(*) || '|' || ifnull(min(id), 0) || '|' || ifnull(max(id), 0) FROM ids;" 2>&1)
    a=${pre[$m]} b=$(last_ack "$work/ack-$m")
    if ! check "$T: SQLite ($m): every id acknowledged before the cut there, nothing invented (count|min|max $got, $a acknowledged before the cut, $b in all)" \
      ids_ok "$a" "$b" "$got"; then
      echo "    as the cut left it: $(cd "$work/cut" && ls -l --full-time "$m".db* | tr '\n' ';')"
      [[ -n $keep ]] && mkdir -p "$keep/trial-$t" && cp -a "$work/cut" "$work/daemon.log" "$work"/ack-* "$keep/trial-$t/"
    fi
  done
  expect "$T: SQLite (wal) is still in WAL mode" wal "$(timeout 60 sqlite3 "$mnt/wal.db" 'PRAGMA journal_mode;' 2>&1)"
  stop_daemon
  drop_shm
done

harness_summary journal_db_test
