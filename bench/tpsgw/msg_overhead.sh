#!/bin/sh
# bench/tpsgw/msg_overhead.sh - per-message overhead of tpsgw (make bench; not a test): the
# topology's back ends (slapd pair, pki-sim TKS clones) and one tpsgw on plain HTTP; the C
# client bench/tpsgw/msg_overhead runs BENCH_FORMATS formats in sequence, answering every
# TOKEN_PDU at once from an in-process card, and reports the gap between a response leaving
# the client and the next request arriving (median, p99), apart from exchanges holding a TKS call.
#   BUILD=build/release sh bench/tpsgw/msg_overhead.sh        (BENCH_FORMATS=60 by default)
. "$(dirname "$0")/lib.sh"
bt_init msg_overhead
HELPER=$BUILD/bench/tpsgw/msg_overhead
[ -x "$HELPER" ] || bt_fail "$HELPER is not built (make bench builds it: bench/bench.mk)"
COUNT=${BENCH_FORMATS:-60}
bt_topo_up
PORT=$(bt_port)
bt_tps_conf tps3 "$PORT"
bt_cfg_set "$W/tps3.cfg" tps.maxSessions=4 log.level=notice log.audit.sync=false
bt_tps_start tps3
# warm-up: LDAP and TKS connections, page cache
timeout -k 5 60 "$HELPER" --port "$PORT" --user alice --password-file "$ALICE_PW" --count 3 --cuid-base 6FFF0000 \
    >"$W/warm.out" 2>&1 || bt_fail "warm-up formats failed: $(tail -5 "$W/warm.out")"
timeout -k 5 300 "$HELPER" --port "$PORT" --user alice --password-file "$ALICE_PW" --count "$COUNT" \
    >"$W/run.out" 2>&1
rc=$?
cat "$W/run.out"
bt_machine
echo "command: BUILD=$BUILD BENCH_FORMATS=$COUNT sh bench/tpsgw/msg_overhead.sh"
echo "  i.e. $HELPER --port PORT --user alice --password-file F --count $COUNT"
echo "  against one tpsgw (HTTP, tps.maxSessions=4, log.level=notice) with 2 TKS clones over mutual TLS"
[ $rc = 0 ] || bt_fail "msg_overhead exited $rc"
