#!/bin/sh
# tests/chaos/chaos.sh - the chaos run of docs/RELIABILITY.md: emulated enrollments through
# HAProxy and two tpsgw while one instance of each pair (tpsgw, CA, KRA, TKS, LDAP) is killed
# and restarted in rotation, then tests/chaos/audit over every card, both LDAP replicas and the
# CA records. Loopback only; bounded in count and time; stops everything it started.
#
#   sh tests/chaos/chaos.sh [--cards N] [--concurrency C] [--kill-interval S]
#                           [--max-seconds T] [--signal SIG] [--roles "tps ca kra tks ldap"]
#                           [--out DIR] [--keep]
#   --cards N          enrollments in all (default 1000), each on a fresh emulated card
#   --concurrency C    cards enrolled at once: C lanes, one tokenclient per card (default 20)
#   --kill-interval S  a daemon stays down S seconds, then up S seconds before the next kill
#                      (default 5)
#   --max-seconds T    hard cap of the load phase (default 1500); the audit follows
#   --signal SIG       signal of the kills (default KILL: a crash, no clean shutdown)
#   --roles LIST       pairs to break, in rotation order (instance 1 of each, then 2 of each)
#   --backend-delay MS every CA, KRA and TKS request takes MS longer (pki-sim fault "delay",
#                      default 0), so that kills land in the middle of operations
#   --out DIR          work directory (default ${TMPDIR:-/tmp}/tpsgw-chaos.$$); kept
#   --keep             leave the topology running at the end (stop: scripts/topology.sh stop)
# BUILD (default build/release) holds bin/ with tpsgw, pki-sim, tokenclient, vtoken, chaos-card.
# Exit 0 only when the audit passes; the summary is in DIR/summary.txt.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
: "${BUILD:=build/release}"
case $BUILD in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
CARDS=1000
CONC=20
IVAL=5
MAXS=1500
SIG=KILL
ROLES="tps ca kra tks ldap"
OUT=${TMPDIR:-/tmp}/tpsgw-chaos.$$
KEEP=0
DELAY=0
while [ $# -gt 0 ]; do
    case $1 in
    --cards) CARDS=$2; shift 2 ;;
    --concurrency) CONC=$2; shift 2 ;;
    --kill-interval) IVAL=$2; shift 2 ;;
    --max-seconds) MAXS=$2; shift 2 ;;
    --signal) SIG=$2; shift 2 ;;
    --roles) ROLES=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --backend-delay) DELAY=$2; shift 2 ;;
    *) echo "usage: $0 [--cards N] [--concurrency C] [--kill-interval S] [--max-seconds T] [--signal SIG] [--roles LIST] [--out DIR] [--keep]" >&2
       exit 2 ;;
    esac
done
for v in "$CARDS" "$CONC" "$IVAL" "$MAXS" "$DELAY"; do
    case $v in '' | *[!0-9]*) echo "chaos: '$v' is not a number" >&2; exit 2 ;; esac
done
[ "$CARDS" -ge 1 ] && [ "$CARDS" -le 100000 ] && [ "$CONC" -ge 1 ] && [ "$CONC" -le 500 ] &&
    [ "$IVAL" -ge 1 ] && [ "$MAXS" -ge 10 ] || { echo "chaos: parameter out of range" >&2; exit 2; }
for b in tpsgw pki-sim tokenclient vtoken chaos-card; do
    [ -x "$BUILD/bin/$b" ] || { echo "chaos: $BUILD/bin/$b is not built (make build; chaos-card: tests/chaos/chaos.mk)" >&2; exit 1; }
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
T=$OUT/topo
CARDDIR=$OUT/cards
rm -rf "$CARDDIR" "$OUT/stop" "$OUT/events.log" "$OUT/cuids.txt"
mkdir -p "$CARDDIR"
topo() { TOPO_BIN=$BUILD/bin sh "$TOP/scripts/topology.sh" "$@"; }
log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$OUT/events.log"; }
KILLER=""
finish() {
    [ -n "$KILLER" ] && { touch "$OUT/stop"; kill "$KILLER" 2>/dev/null; wait "$KILLER" 2>/dev/null; }
    [ "$KEEP" = 1 ] || topo stop "$T" >/dev/null 2>&1
}
trap finish EXIT
trap 'exit 130' INT TERM

START=$(date +%s)
log "chaos: $CARDS cards, concurrency $CONC, kill interval ${IVAL}s, backend delay ${DELAY} ms, signal $SIG, roles: $ROLES, cap ${MAXS}s"
TOPO_PCSC=0 TOPO_TPS_SESSIONS=${TOPO_TPS_SESSIONS:-32} topo start "$T" >"$OUT/topology.out" 2>&1 ||
    { tail -30 "$OUT/topology.out"; echo "chaos: topology did not start" >&2; exit 1; }
. "$T/topo.env"
log "topology up: $PUBLIC_URL ($(($(date +%s) - START)) s)"

# delay NAME: applies the backend delay to one pki-sim (again after each restart).
delay() {
    [ "$DELAY" -gt 0 ] || return 0
    _a=$(cat "$T/$1.admin" 2>/dev/null) || return 0
    curl -s --max-time 3 -X POST "http://127.0.0.1:$_a/sim/fault?mode=delay&ms=$DELAY" >/dev/null ||
        log "cannot set the delay of $1"
}
for n in ca1 ca2 kra1 kra2 tks1 tks2; do delay $n; done

# up NAME: waits (at most 30 s) until a restarted daemon serves again.
up() {
    _i=0
    while [ $_i -lt 300 ]; do
        case $1 in
        tps1) curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$TPS1_STATUS/health" && return 0 ;;
        tps2) curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$TPS2_STATUS/health" && return 0 ;;
        ldap1) ldapsearch -x -o nettimeout=1 -H "$LDAP1_URI" -s base -b "" 1.1 >/dev/null 2>&1 && return 0 ;;
        ldap2) ldapsearch -x -o nettimeout=1 -H "$LDAP2_URI" -s base -b "" 1.1 >/dev/null 2>&1 && return 0 ;;
        *) _p=$(cat "$T/$1.port" 2>/dev/null)
           ss -Htln "sport = :$_p" 2>/dev/null | grep -q . && return 0 ;;
        esac
        sleep 0.1
        _i=$((_i + 1))
    done
    return 1
}

# The rotation: instance 1 of each role, then instance 2 of each role, again and again.
ROT=""
for i in 1 2; do for r in $ROLES; do ROT="$ROT $r$i"; done; done
NROT=$(echo $ROT | wc -w)
# Each kill takes about 2*IVAL+1 s; the loader spreads its cards over at least one
# rotation through one instance of every role, so every role is killed under load.
NROLES=$(echo $ROLES | wc -w)
MIN_LOAD=$((NROLES * (2 * IVAL + 1)))

killer() {
    _k=0
    sleep "$IVAL"
    while [ ! -f "$OUT/stop" ] && [ $_k -lt 10000 ]; do
        _now=$(date +%s)
        [ $((_now - START)) -lt "$MAXS" ] || break
        set -- $ROT
        shift $((_k % NROT))
        _n=$1
        log "kill $_n ($SIG)"
        topo kill "$_n" "$SIG" "$T" >>"$OUT/killer.log" 2>&1
        sleep "$IVAL"
        topo restart "$_n" "$T" >>"$OUT/killer.log" 2>&1
        if up "$_n"; then log "restarted $_n"; else log "RESTART FAILED $_n"; fi
        case $_n in ca? | kra? | tks?) delay "$_n" ;; esac
        _k=$((_k + 1))
        echo "$_k" >"$OUT/kills"
        [ -f "$OUT/stop" ] && break
        sleep "$IVAL"
    done
}
echo 0 >"$OUT/kills"
killer &
KILLER=$!

# ---- load: CONC lanes, each enrolling one fresh card after the other (one tokenclient per
# card, so each card's exit status is known); card k of lane j is card number j + k*CONC.
# A lane paces its cards so that the load lasts at least MIN_LOAD s, lanes staggered, so
# operations are in flight whenever a daemon is killed.
BASE=$((0xA0000000))
PER_LANE=$(((CARDS + CONC - 1) / CONC))
i=0
while [ $i -lt "$CARDS" ]; do printf '40907901001F%08X\n' $((BASE + i)); i=$((i + 1)); done >"$OUT/cuids.txt"
LOAD_START=$(date +%s)
lane() {
    _j=$1
    _k=0
    while [ $_k -lt "$PER_LANE" ]; do
        _idx=$((_j + _k * CONC))
        [ $_idx -lt "$CARDS" ] || break
        # pace: card k of the lane starts no earlier than its share of MIN_LOAD
        _want=$((LOAD_START + (MIN_LOAD * (_k * CONC + _j)) / (PER_LANE * CONC)))
        while [ "$(date +%s)" -lt "$_want" ]; do sleep 0.2; done
        if [ $(($(date +%s) - START)) -ge "$MAXS" ]; then
            echo "$_idx capped" >>"$OUT/lane-$_j.res"
            break
        fi
        _c=$(printf '40907901001F%08X' $((BASE + _idx)))
        "$BUILD/bin/tokenclient" --server "$PUBLIC_URL/tps/tps" --user alice \
            --password-file "$ALICE_PW" --new-pin-file "$PIN_FILE" --no-progress --timeout 60 \
            --emulate 1 --emulate-dir "$CARDDIR" --cuid "$_c" enroll >"$OUT/clients/$_c.out" 2>&1
        echo "$_c $?" >>"$OUT/lane-$_j.res"
        _k=$((_k + 1))
    done
}
rm -rf "$OUT/clients" "$OUT"/lane-*.res
mkdir -p "$OUT/clients"
LANES=""
j=0
while [ $j -lt "$CONC" ]; do
    lane $j &
    LANES="$LANES $!"
    j=$((j + 1))
done
# progress, every 10 s, until every lane is done (each lane stops by itself at the cap)
while :; do
    alive=0
    for p in $LANES; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 1 ] || break
    sleep 1
    el=$(($(date +%s) - LOAD_START))
    [ $((el % 10)) = 0 ] && log "load: $(cat "$OUT"/lane-*.res 2>/dev/null | grep -c ' 0$') succeeded, $(cat "$OUT"/lane-*.res 2>/dev/null | grep -vc ' 0$') failed, kills $(cat "$OUT/kills")"
done
for p in $LANES; do wait "$p"; done
done_n=$(cat "$OUT"/lane-*.res 2>/dev/null | grep -vc ' capped$')
b=$CONC
LOAD_END=$(date +%s)
touch "$OUT/stop"
log "load done: $done_n cards in $CONC lanes, $((LOAD_END - START)) s; waiting for the killer to restore its daemon"
i=0
while kill -0 "$KILLER" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
kill "$KILLER" 2>/dev/null
wait "$KILLER" 2>/dev/null
KILLER=""
# whatever is still down (a kill interrupted) comes back before the audit
for n in $ROT; do
    if [ ! -f "$T/$n.pid" ] || ! kill -0 "$(cat "$T/$n.pid")" 2>/dev/null; then
        topo restart "$n" "$T" >>"$OUT/killer.log" 2>&1
        up "$n" || log "RESTART FAILED $n"
    fi
done
KILLS=$(cat "$OUT/kills")
log "kills: $KILLS ($(grep -c ' kill ' "$OUT/events.log") issued, $(grep -c 'RESTART FAILED' "$OUT/events.log") failed restarts)"

passed=$(cat "$OUT"/lane-*.res 2>/dev/null | grep -c ' 0$')
failed=$(cat "$OUT"/lane-*.res 2>/dev/null | grep -v ' capped$' | grep -vc ' 0$')
cat "$OUT"/lane-*.res | grep -v ' capped$' | sort >"$OUT/client-results"
cut -d' ' -f1 "$OUT/client-results" >"$OUT/cuids.txt"
echo "$passed $failed" >"$OUT/client-totals"
log "client: $passed succeeded, $failed failed (after the client's single retry)"

sh "$TOP/tests/chaos/audit" --topo "$T" --cards "$CARDDIR" --cuids "$OUT/cuids.txt" \
    --client-totals "$OUT/client-totals" --client-results "$OUT/client-results" --out "$OUT/audit" >"$OUT/audit.txt" 2>&1
arc=$?
cat "$OUT/audit.txt"
{
    echo "chaos run $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n) ($(nproc) CPUs, $(uname -r))"
    echo "command: sh tests/chaos/chaos.sh --cards $CARDS --concurrency $CONC --kill-interval $IVAL --max-seconds $MAXS --backend-delay $DELAY --signal $SIG --roles \"$ROLES\""
    echo "cards attempted: $done_n in $CONC lanes; load phase $((LOAD_END - START)) s; kills: $KILLS"
    echo "client: $passed succeeded, $failed failed"
    grep -E '^(AUDIT|R[0-9]|  )' "$OUT/audit.txt"
} >"$OUT/summary.txt"
log "summary: $OUT/summary.txt"
exit $arc
