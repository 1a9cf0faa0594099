#!/bin/sh
# bench/tpsgw/idle_sessions.sh - memory of one tpsgw holding idle sessions (make bench; not a
# test): tpsgw with tps.maxSessions above the highest level; the C helper
# bench/tpsgw/idle_sessions opens sessions (POST head + Begin Op, then silence after tpsgw's
# first request) up to each level and reads VmRSS/Threads from /proc/PID/status.
#   BUILD=build/release sh bench/tpsgw/idle_sessions.sh      (BENCH_LEVELS="100 1000 2000")
. "$(dirname "$0")/lib.sh"
bt_init idle_sessions
HELPER=$BUILD/bench/tpsgw/idle_sessions
[ -x "$HELPER" ] || bt_fail "$HELPER is not built (make bench builds it: bench/bench.mk)"
LEVELS=${BENCH_LEVELS:-100 1000 2000}
MAXL=0
for l in $LEVELS; do [ "$l" -gt "$MAXL" ] && MAXL=$l; done
SESSIONS=$((MAXL + 16))
# tpsgw holds about 2 descriptors per worker and 1 per session; the helper 1 per session
NOFILE=$((SESSIONS * 3 + MAXL + 512))
ulimit -n "$NOFILE" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge "$NOFILE" ] ||
    bt_fail "ulimit -n is $(ulimit -n), $NOFILE needed (raise the hard limit)"
bt_topo_up
# the cost of an idle worker thread: the same tpsgw with 16 workers
PORT=$(bt_port)
bt_tps_conf tps4 "$PORT"
bt_cfg_set "$W/tps4.cfg" tps.maxSessions=16 log.level=notice log.audit.sync=false
bt_tps_start tps4
sleep 1
RSS16=$(awk '/^VmRSS/ { print $2 }' "/proc/$(cat "$W/tps4.pid")/status")
bt_tps_stop tps4
PORT=$(bt_port)
bt_tps_conf tps3 "$PORT"
bt_cfg_set "$W/tps3.cfg" tps.maxSessions=$SESSIONS tps.acceptQueue=256 \
    tps.connection.timeout=300 log.level=notice log.audit.sync=false
bt_tps_start tps3
PID=$(cat "$W/tps3.pid")
sleep 1 # the worker threads start
echo "tpsgw idle sessions: tps.maxSessions=$SESSIONS (one worker thread per live session, all started at"
echo "start-up); each session: POST head + Begin Op (format), then silent after tpsgw's first request"
timeout -k 5 300 "$HELPER" --port "$PORT" --pid "$PID" $LEVELS >"$W/run.out" 2>"$W/run.err"
rc=$?
cat "$W/run.out"
bt_machine
awk 'NR > 2 && $1 > 0 && $7 == "yes" { last = $0; n = $1; rss = $2 }
     NR == 2 { rss0 = $2 }
     END { if (n) printf "per session at %d sessions: %.1f kB (VmRSS %.1f MB, of which %.1f MB before the first session)\n",
                         n, (rss - rss0) / n, rss / 1024, rss0 / 1024 }' "$W/run.out"
awk -v r16="$RSS16" -v n="$SESSIONS" 'NR == 2 { printf "idle worker threads: VmRSS %d kB with 16 workers, %d kB with %d: %.1f kB per worker\n", r16, $2, n, ($2 - r16) / (n - 16) }' "$W/run.out"
echo "tpsgw stack limit per thread: $(ulimit -s) kB virtual (RSS counts only touched pages)"
echo "command: BUILD=$BUILD BENCH_LEVELS=\"$LEVELS\" sh bench/tpsgw/idle_sessions.sh"
echo "  i.e. $HELPER --port PORT --pid TPSGW_PID $LEVELS   (ulimit -n $(ulimit -n))"
[ $rc = 0 ] || bt_fail "idle_sessions exited $rc: $(cat "$W/run.err")"
kill -0 "$PID" 2>/dev/null || bt_fail "tpsgw died during the run"
