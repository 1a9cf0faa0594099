#!/bin/sh
# bench/tpsgw/failover.sh - what a failing back-end clone costs under load (make bench; not a
# test): one tpsgw with the topology's clones (TKS, CA, KRA: clone 1 first in every list) runs
# batches of `tokenclient --emulate N`; for clone 1 of each service in turn: refused (the
# process is stopped: connection refused), hung (pki-sim hang-request: reads the request,
# never answers), slow (pki-sim delay). Each row: succeeded/failed operations, p50/p99 latency
# and what they add to the healthy baseline. tpsgw restarts between rows (fresh breakers).
#   BUILD=build/release sh bench/tpsgw/failover.sh   (BENCH_N=20, BENCH_SLOW_MS=300)
. "$(dirname "$0")/lib.sh"
bt_init failover
N=${BENCH_N:-20}
SLOW_MS=${BENCH_SLOW_MS:-300}
HANG_MS=30000
CUID_N=$((0x200000))

bt_topo_up
PORT=$(bt_port)
URL=http://127.0.0.1:$PORT/tps/tps
bt_tps_conf tps3 "$PORT"
# deadlines of one call over all clones, seconds (a hung non-idempotent CA call waits them out)
bt_cfg_set "$W/tps3.cfg" tps.maxSessions=64 tps.acceptQueue=64 log.audit.sync=false \
    conn.tks1.timeout=10 conn.ca1.timeout=15 conn.drm1.timeout=15
bt_tps_start tps3
bt_pick_op "$URL"
SERVICES=tks
KRA_NOTE="KRA: not exercised (format does not call it)"
if [ "$BT_OP" = enroll ]; then
    SERVICES="tks ca"
    # the encryption key generated and archived on the KRA, so enroll calls it too
    bt_tps_stop tps3
    cp "$W/tps3.cfg" "$W/tps3-card.cfg"
    bt_cfg_set "$W/tps3.cfg" conn.tks1.serverKeygen=true \
        op.enroll.userKey.keyGen.encryption.serverKeygen.enable=true \
        op.enroll.userKey.keyGen.encryption.serverKeygen.archive=true
    bt_tps_start tps3
    bt_batch "$URL" 1 40907901001F0EEEEE00 enroll "$W/probe-kra.out"
    if [ "$BT_OK" = 1 ]; then
        SERVICES="tks ca kra"
        KRA_NOTE="encryption key generated and archived on the KRA (serverKeygen)"
    else
        KRA_NOTE="KRA: not exercised (server-side keygen failed: $(grep -m1 '^card 0:' "$W/probe-kra.out"))"
        bt_tps_stop tps3
        cp "$W/tps3-card.cfg" "$W/tps3.cfg"
        bt_tps_start tps3
    fi
fi
bt_log "operation: $BT_OP_NOTE; $KRA_NOTE"

next_cuid() {
    CUID_N=$((CUID_N + 0x1000))
    printf '40907901001F%08X' "$CUID_N"
}

admin() { # admin SERVICE QUERY
    _a=$(sed -n "s/^$(echo "$1" | tr a-z A-Z)1_ADMIN=//p" "$BT_TOPO/topo.env")
    curl -s --max-time 5 -X POST "http://127.0.0.1:$_a/sim/fault?$2" >/dev/null ||
        bt_fail "cannot set the fault of $1 1 (admin port $_a)"
}

# row SERVICE FAULT: fault on, a fresh tpsgw, one batch, fault off; appends to $W/rows
row() {
    case $2 in
    refused) bt_topo kill "${1}1" TERM "$BT_TOPO" >/dev/null 2>&1 ;;
    hung) admin "$1" "mode=hang-request&ms=$HANG_MS" ;;
    slow) admin "$1" "mode=delay&ms=$SLOW_MS" ;;
    esac
    bt_tps_stop tps3
    bt_tps_start tps3
    t0=$(date +%s.%N)
    bt_batch "$URL" "$N" "$(next_cuid)" "$BT_OP" "$W/row.out"
    el=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    why=$(grep '^card ' "$W/row.out" | sed 's/^card [0-9]*: //' | sort | uniq -c | sort -rn |
        head -1 | awk '{ $1 = $1 "x"; print }' | tr ' ' '~')
    echo "$1 $2 $BT_OK $BT_FAIL $BT_P50 $BT_P99 $el ${why:--}" >>"$W/rows"
    bt_log "$1 $2: $(grep -m1 '^emulated' "$W/row.out")"
    case $2 in
    refused)
        bt_topo restart "${1}1" "$BT_TOPO" >/dev/null 2>&1 || bt_fail "cannot restart ${1}1"
        bt_wait_tcp "$(sed -n "s/^$(echo "$1" | tr a-z A-Z)1_PORT=//p" "$BT_TOPO/topo.env")"
        ;;
    hung | slow) admin "$1" mode=none ;;
    esac
}

# warm-up, then the healthy baseline
bt_batch "$URL" "$N" "$(next_cuid)" "$BT_OP" "$W/warm.out"
row healthy none
for s in $SERVICES; do
    for f in refused hung slow; do
        row "$s" "$f"
    done
done
row healthy again

echo "back-end clone failures under load: $BT_OP_NOTE; $KRA_NOTE"
bt_machine
echo "load: tokenclient --emulate $N per row (N cards at once) against one tpsgw; the fault is on clone 1,"
echo "      first in every list; refused = process stopped, hung = pki-sim hang-request (${HANG_MS} ms),"
echo "      slow = pki-sim delay ${SLOW_MS} ms; deadlines: conn.tks1.timeout=10 conn.ca1.timeout=15"
echo "      conn.drm1.timeout=15 s, connectTimeout 1000 ms; + = added to the healthy row's p50/p99"
awk '
NR == 1 { b50 = $5; b99 = $6 }
function d(v, b) { return (v == "-" || b == "-") ? "-" : sprintf("%+.0f", v - b) }
BEGIN {
    printf "%-8s %-8s %4s %5s %9s %9s %8s %8s %7s  %s\n", "service", "fault", "ok", "fail",
        "p50 ms", "p99 ms", "+p50", "+p99", "wall s", "failures (first reason)"
}
{
    gsub("~", " ", $8)
    printf "%-8s %-8s %4d %5d %9s %9s %8s %8s %7s  %s\n", $1, $2, $3, $4, $5, $6, d($5, b50),
        d($6, b99), $7, $8
}' "$W/rows"
echo "command: BUILD=$BUILD BENCH_N=$N BENCH_SLOW_MS=$SLOW_MS sh bench/tpsgw/failover.sh"
echo "  per row: tokenclient --server http://127.0.0.1:PORT/tps/tps --user alice --password-file F \\"
echo "      --new-pin-file F --no-progress --timeout 60 --emulate $N --cuid CUID $BT_OP"
echo "  faults: scripts/topology.sh kill NAME / restart NAME; curl -X POST 'http://127.0.0.1:ADMIN/sim/fault?mode=...'"
awk 'NR == 1 && $3 == 0 { exit 1 }' "$W/rows" || bt_fail "the healthy baseline had no success"
