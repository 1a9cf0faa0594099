#!/bin/sh
# bench/tpsgw/ops.sh - full TPS operations per second through tpsgw on loopback (make bench;
# not a test): the topology of scripts/topology.sh (2 slapd, pki-sim CA/KRA/TKS clones, 2 tpsgw
# behind HAProxy) plus one tpsgw reached directly; `tokenclient --emulate N` runs N emulated
# cards at once, ROUNDS times after a warm-up round. Reports ops/s, p50/p99 latency and CPU
# milliseconds per operation split by process (from /proc/PID/stat utime+stime before and
# after; the client's from /usr/bin/time), for RSA-1024, RSA-2048 and EC P-256 card keys when
# enroll works (else format), directly and through HAProxy, and the balancer's cost.
#   BUILD=build/release sh bench/tpsgw/ops.sh      (BENCH_N=20 BENCH_ROUNDS=3 by default;
#   BENCH_SIZES="1024 2048 ec256" picks the key rows)
. "$(dirname "$0")/lib.sh"
bt_init ops
N=${BENCH_N:-20}
ROUNDS=${BENCH_ROUNDS:-3}
CUID_N=$((0x100000))

bt_topo_up
DPORT=$(bt_port)
bt_tps_conf tps3 "$DPORT"
bt_cfg_set "$W/tps3.cfg" tps.maxSessions=64 tps.acceptQueue=64 log.audit.sync=false
bt_tps_start tps3
DIRECT=http://127.0.0.1:$DPORT/tps/tps
LB=$PUBLIC_URL/tps/tps
bt_pick_op "$DIRECT"
bt_log "operation: $BT_OP_NOTE"

next_cuid() {
    CUID_N=$((CUID_N + 0x1000))
    printf '40907901001F%08X' "$CUID_N"
}

# measure PATH URL TPSGROUP KEYS: one warm-up batch, then ROUNDS batches; appends a row.
measure() {
    bt_batch "$2" "$N" "$(next_cuid)" "$BT_OP" "$W/warm.out"
    t0_gw=$(bt_ticks $(bt_pids "$3"))
    t0_ld=$(bt_ticks $(bt_pids slapd))
    t0_sim=$(bt_ticks $(bt_pids pki-sim))
    t0_lb=$(bt_ticks $(bt_pids haproxy))
    ok=0 fail=0 wall=0 cl=0 p50s="" p99=0
    r=0
    while [ $r -lt "$ROUNDS" ]; do
        r=$((r + 1))
        bt_batch "$2" "$N" "$(next_cuid)" "$BT_OP" "$W/round.out"
        cat "$W/round.out" >>"$W/rounds.log"
        bt_log "$1 $4 round $r: $(grep -m1 '^emulated' "$W/round.out")"
        ok=$((ok + BT_OK))
        fail=$((fail + BT_FAIL))
        wall=$(awk -v a="$wall" -v b="$BT_WALL" 'BEGIN { print a + b }')
        cl=$((cl + BT_CLIENT_TICKS))
        [ "$BT_P50" = - ] || p50s="$p50s $BT_P50"
        [ "$BT_P99" = - ] || p99=$(awk -v a="$p99" -v b="$BT_P99" 'BEGIN { print (b > a) ? b : a }')
    done
    d_gw=$(($(bt_ticks $(bt_pids "$3")) - t0_gw))
    d_ld=$(($(bt_ticks $(bt_pids slapd)) - t0_ld))
    d_sim=$(($(bt_ticks $(bt_pids pki-sim)) - t0_sim))
    d_lb=$(($(bt_ticks $(bt_pids haproxy)) - t0_lb))
    p50=$(printf '%s\n' $p50s | sort -n | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : "-" }')
    echo "$1 $4 $ok $fail $wall $p50 $p99 $d_gw $d_ld $d_sim $d_lb $cl" >>"$W/rows"
}

# key_cfg FILE KEYS: the benchmark's token type for KEYS, both keys made on the card (card
# keys: no KRA, so the rows compare like with like): 1024, 2048 = RSA (alg 2); ec256 = EC
# P-256 (keyGen.<keyType>.alg=5, keySize=256, GENERATE KEY ECC).
SSKG=op.enroll.userKey.keyGen.encryption.serverKeygen.enable
key_cfg() {
    case $2 in
    ec*) bt_enroll_cfg "$1" "${2#ec}"; alg=5 ;;
    *) bt_enroll_cfg "$1" "$2"; alg=2 ;;
    esac
    bt_cfg_set "$1" op.enroll.userKey.keyGen.signing.alg=$alg \
        op.enroll.userKey.keyGen.encryption.alg=$alg "$SSKG=false"
}

if [ "$BT_OP" = enroll ]; then SIZES=${BENCH_SIZES:-1024 2048 ec256}; else SIZES=-; fi
for bits in $SIZES; do
    if [ "$bits" != - ]; then
        BT_KEYSIZE=${bits#ec}
        bt_tps_stop tps3
        key_cfg "$W/tps3.cfg" "$bits"
        bt_tps_start tps3
        for i in 1 2; do key_cfg "$BT_TOPO/tps$i.cfg" "$bits"; done
        bt_lb_tps_restart
        case $bits in ec*) keys=EC-P${bits#ec} ;; *) keys=RSA-$bits ;; esac
    else
        keys=-
    fi
    measure direct "$DIRECT" tpsgw-direct "$keys"
    measure haproxy "$LB" tpsgw-lb "$keys"
done

echo "tpsgw full operations: $BT_OP_NOTE"
echo "keys: both keys of every row made on the card (RSA: GENERATE KEY, EC P-256: GENERATE KEY ECC); no KRA"
echo "load: tokenclient --emulate $N (N cards at once), $ROUNDS rounds per row after 1 warm-up round;"
echo "      p50 = median of the rounds' p50, p99 = worst round's p99; CPU = ms of CPU per succeeded op"
bt_machine
[ -n "$BT_LB_NOTE" ] && echo "note: $BT_LB_NOTE"
awk -v hz="$HZ" '
function ms(t) { return $3 > 0 ? sprintf("%.1f", t * 1000 / hz / $3) : "-" }
BEGIN {
    printf "%-8s %-8s %5s %5s %7s %8s %8s | %7s %6s %7s %7s %6s %6s\n", "path", "keys", "ok",
        "fail", "ops/s", "p50 ms", "p99 ms", "tpsgw", "slapd", "pki-sim", "haproxy", "client",
        "total"
}
{
    ops = $5 > 0 ? $3 / $5 : 0
    tot = $8 + $9 + $10 + $11 + $12
    printf "%-8s %-8s %5d %5d %7.1f %8s %8s | %7s %6s %7s %7s %6s %6s\n", $1, $2, $3, $4, ops,
        $6, $7, ms($8), ms($9), ms($10), ms($11), ms($12), ms(tot)
    rate[$2, $1] = ops
    lbcpu[$2] = ms($11)
    keys[$2] = 1
}
END {
    for (k in keys)
        if (rate[k, "direct"] > 0)
            printf "balancer cost (%s): ops/s through HAProxy / direct = %.2f; HAProxy CPU %s ms/op\n",
                k, rate[k, "haproxy"] / rate[k, "direct"], lbcpu[k]
}' "$W/rows"
fails=$(awk '{ s += $4 } END { print s + 0 }' "$W/rows")
if [ "$fails" -gt 0 ]; then
    echo "failed operations: $fails; first reasons:"
    grep '^card ' "$W/rounds.log" | sed 's/^card [0-9]*: //' | sort | uniq -c | sort -rn | head -5
fi
echo "command: BUILD=$BUILD BENCH_N=$N BENCH_ROUNDS=$ROUNDS BENCH_SIZES=\"${SIZES}\" sh bench/tpsgw/ops.sh"
echo "  per round: tokenclient --server URL --user alice --password-file F --new-pin-file F \\"
echo "      --no-progress --timeout 60 --emulate $N --cuid CUID $BT_OP"
echo "  URL: direct = http://127.0.0.1:PORT/tps/tps (tpsgw), haproxy = $PUBLIC_URL/tps/tps (2 tpsgw)"
awk '$3 > 0 { found = 1 } END { exit !found }' "$W/rows" || bt_fail "no operation succeeded"
