# bench/tpsgw/lib.sh - shared helpers of the tpsgw benchmarks (POSIX sh, sourced; not a test).
#   bt_init NAME             work directory $W, trap that stops every daemon started here
#   bt_topo_up               scripts/topology.sh (2 slapd, pki-sim CA/KRA/TKS clones, 2 tpsgw,
#                            HAProxy) in $W/topo without PC/SC; loads topo.env into the shell
#   bt_tps_conf NAME PORT    $W/NAME.cfg: one tpsgw reached directly (no PROXY header), same
#                            back ends as tps1; then bt_cfg_set $W/NAME.cfg key=value ...
#   bt_tps_start NAME / bt_tps_stop NAME
#   bt_cfg_set FILE K=V...   replaces (or adds) keys of a tpsgw config
#   bt_enroll_cfg FILE BITS  the enroll token type of the benchmark (2 on-card keys of BITS)
#   bt_ticks PID...          utime+stime of the processes, in clock ticks (/proc/PID/stat)
#   bt_pids GROUP            pids of a group: tpsgw-direct, tpsgw-lb, slapd, pki-sim, haproxy
#   bt_batch URL N CUID OP OUTFILE   tokenclient --emulate N; sets BT_OK BT_FAIL BT_WALL
#                            BT_P50 BT_P99 BT_CLIENT_TICKS (client CPU, from /usr/bin/time)
#   bt_machine               prints CPUs, model, memory, kernel, load average at start
#   bt_fail MSG              prints the message and the tails of the logs, exits 1
# BUILD (set by bench/run-bench.sh) is the build directory holding bin/.
set -u
: "${BUILD:=build/release}"
BT_TOP=$(cd "$(dirname "$0")/../.." && pwd)
case $BUILD in /*) ;; *) BUILD=$BT_TOP/$BUILD ;; esac
BIN=$BUILD/bin
TC=$BIN/tokenclient
HZ=$(getconf CLK_TCK)
BT_NAME=bench
W=""
BT_TOPO=""
PATH=$PATH:/usr/sbin:/sbin

bt_log() {
    echo "   [$(date +%H:%M:%S)] $*" >&2
}

bt_fail() {
    echo "bench $BT_NAME: FAIL: $*" >&2
    if [ -n "$W" ]; then
        for f in "$W"/*.log "$W"/topo/tps1.gw.log; do
            [ -f "$f" ] || continue
            echo "---- $f (last 10 lines)" >&2
            tail -10 "$f" >&2
        done
    fi
    exit 1
}

bt_cleanup() {
    trap - EXIT INT TERM
    for f in "$W"/*.pid; do
        [ -f "$f" ] || continue
        kill "$(cat "$f")" 2>/dev/null
    done
    for f in "$W"/*.pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -9 "$pid" 2>/dev/null
        rm -f "$f"
    done
    if [ -n "$BT_TOPO" ] && [ -d "$BT_TOPO" ]; then
        TOPO_BIN=$BIN sh "$BT_TOP/scripts/topology.sh" stop "$BT_TOPO" >/dev/null 2>&1
    fi
    if [ "${BT_KEEP:-0}" = 1 ]; then
        echo "   kept $W" >&2
    else
        rm -rf "$W"
    fi
}

# One line on the machine, with the load average seen before this benchmark started its
# daemons (other work on the machine skews throughput and latency, less so CPU per operation).
bt_machine() {
    echo "machine: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r); load average at start: $BT_LOAD0"
}

bt_init() {
    BT_NAME=$1
    BT_LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
    W=$(mktemp -d "${TMPDIR:-/tmp}/tpsgw-bench-$1.XXXXXX")
    trap bt_cleanup EXIT
    trap 'exit 1' INT TERM
    for b in tpsgw pki-sim tokenclient; do
        [ -x "$BIN/$b" ] || bt_fail "$BIN/$b is not built: run make build (BUILD=$BUILD)"
    done
    [ -x /usr/bin/time ] || bt_fail "/usr/bin/time is missing (Debian package 'time')"
    for p in slapd haproxy curl; do
        command -v "$p" >/dev/null 2>&1 || bt_fail "'$p' is not installed: run make deps"
    done
}

# A free loopback port below the ephemeral range.
bt_port() {
    while :; do
        _p=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 12000))
        if ! ss -Htan "sport = :$_p" 2>/dev/null | grep -q .; then
            echo "$_p"
            return 0
        fi
    done
}

bt_wait_tcp() {
    _i=0
    until ss -Htln "sport = :$1" 2>/dev/null | grep -q .; do
        _i=$((_i + 1))
        [ $_i -lt 100 ] || bt_fail "nothing listens on 127.0.0.1:$1 after 10 s"
        sleep 0.1
    done
}

bt_topo() {
    TOPO_BIN=$BIN TOPO_PCSC=0 sh "$BT_TOP/scripts/topology.sh" "$@"
}

bt_topo_up() {
    [ -f "$BT_TOP/scripts/topology.sh" ] || bt_fail "scripts/topology.sh is missing"
    BT_TOPO=$W/topo
    bt_log "starting the topology (scripts/topology.sh start $BT_TOPO)"
    TOPO_TPS_SESSIONS=${BT_LB_SESSIONS:-64} bt_topo start "$BT_TOPO" >"$W/topology.out" 2>&1 ||
        bt_fail "scripts/topology.sh start: $(tail -30 "$W/topology.out")"
    . "$BT_TOPO/topo.env"
    # Without lb.statusPort/lb.agentPort in this tpsgw, HAProxy's checks (GET /health on the
    # status port, agent port) fail and it answers 503: check the TPS port itself, with a
    # PROXY header, instead (the balancer's own cost is the same).
    BT_LB_NOTE=""
    if ! "$BIN/tpsgw" --keys 2>/dev/null | grep -q '^lb.statusPort'; then
        sed -e 's/ check port [0-9]* no-check-send-proxy agent-port [0-9]*/ check check-send-proxy/' \
            -e 's/ check port [0-9]* agent-port [0-9]*/ check check-send-proxy/' \
            -e 's/ agent-check agent-inter 1s//' "$BT_TOPO/haproxy.cfg" >"$BT_TOPO/haproxy-bench.cfg"
        bt_topo kill haproxy TERM "$BT_TOPO" >/dev/null 2>&1
        haproxy -db -f "$BT_TOPO/haproxy-bench.cfg" >"$BT_TOPO/haproxy-bench.log" 2>&1 &
        echo $! >"$BT_TOPO/haproxy.pid"
        bt_wait_tcp "$LB_HTTP"
        BT_LB_NOTE="HAProxy health checks on the TPS ports (this tpsgw has no lb.statusPort)"
    fi
    # both tpsgw take the benchmark's token type too
    for i in 1 2; do
        bt_enroll_cfg "$BT_TOPO/tps$i.cfg" "${BT_KEYSIZE:-1024}"
    done
}

# bt_cfg_set FILE key=value...: drops the keys from FILE, then appends the new values.
bt_cfg_set() {
    _f=$1
    shift
    for _kv in "$@"; do
        _k=${_kv%%=*}
        awk -v k="$_k=" 'index($0, k) != 1' "$_f" >"$_f.new"
        mv "$_f.new" "$_f"
        printf '%s\n' "$_kv" >>"$_f"
    done
}

bt_enroll_cfg() {
    bt_cfg_set "$1" op.enroll.allowMultiActiveToken.user=true \
        op.enroll.userKey.keyGen.keyType.num=2 \
        op.enroll.userKey.keyGen.keyType.value.0=signing \
        op.enroll.userKey.keyGen.keyType.value.1=encryption \
        op.enroll.userKey.keyGen.signing.certId=C1 \
        op.enroll.userKey.keyGen.signing.certAttrId=c1 \
        op.enroll.userKey.keyGen.signing.keySize="$2" \
        op.enroll.userKey.keyGen.signing.ca.profileId=caTokenUserSigningKeyEnrollment \
        op.enroll.userKey.keyGen.encryption.ca.profileId=caTokenUserEncryptionKeyEnrollment \
        op.enroll.userKey.keyGen.encryption.certId=C2 \
        op.enroll.userKey.keyGen.encryption.certAttrId=c2 \
        op.enroll.userKey.keyGen.encryption.keyUser=0 \
        op.enroll.userKey.keyGen.encryption.keySize="$2"
}

# bt_tps_conf NAME PORT: a tpsgw on PORT (plain HTTP, no PROXY header, no HTTPS, no lb ports)
# with tps1's back ends (TKS, CA, KRA clone 1 first) and token DB. It is not a member of the
# balanced cluster: it takes no part in the configuration-digest check (lb.instanceRefresh=0),
# or the topology's instances would drain in favour of its (different, newer) configuration.
bt_tps_conf() {
    grep -v -e '^lb\.' -e '^service\.' -e '^tps.instanceId=' -e '^log\.file=' \
        -e '^log\.audit\.file=' "$BT_TOPO/tps1.cfg" >"$W/$1.cfg"
    cat >>"$W/$1.cfg" <<CFG
service.bindAddress=127.0.0.1
service.unsecurePort=$2
tps.instanceId=$1
log.file=$W/$1.gw.log
log.audit.file=$W/$1.audit.log
CFG
    if "$BIN/tpsgw" --keys 2>/dev/null | grep -q '^lb.instanceRefresh'; then
        echo 'lb.instanceRefresh=0' >>"$W/$1.cfg"
    fi
    bt_enroll_cfg "$W/$1.cfg" "${BT_KEYSIZE:-1024}"
}

bt_tps_start() {
    "$BIN/tpsgw" -t -c "$W/$1.cfg" >"$W/$1.check" 2>&1 || bt_fail "tpsgw -t $1: $(cat "$W/$1.check")"
    "$BIN/tpsgw" -c "$W/$1.cfg" >"$W/$1.log" 2>&1 &
    echo $! >"$W/$1.pid"
    bt_wait_tcp "$(sed -n 's/^service.unsecurePort=//p' "$W/$1.cfg" | tail -1)"
}

bt_tps_stop() {
    [ -f "$W/$1.pid" ] || return 0
    _pid=$(cat "$W/$1.pid")
    kill "$_pid" 2>/dev/null
    _i=0
    while kill -0 "$_pid" 2>/dev/null && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
    kill -9 "$_pid" 2>/dev/null
    wait "$_pid" 2>/dev/null
    rm -f "$W/$1.pid"
}

# Restarts tps1 and tps2 of the topology (after their config changed).
bt_lb_tps_restart() {
    for i in 1 2; do
        bt_topo kill tps$i TERM "$BT_TOPO" >/dev/null 2>&1
        bt_topo restart tps$i "$BT_TOPO" >/dev/null 2>&1 || bt_fail "cannot restart tps$i"
    done
    eval "bt_wait_tcp \$TPS1_HTTP; bt_wait_tcp \$TPS2_HTTP"
    # HAProxy marks a restarted server up again after its checks (rise 2, inter 1 s)
    _i=0
    until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$PUBLIC_URL/tps/phoneHome")" = 200 ]; do
        _i=$((_i + 1))
        [ $_i -lt 100 ] || bt_fail "HAProxy does not serve after restarting tps1/tps2"
        sleep 0.1
    done
    sleep 2.5
}

bt_ticks() {
    _t=0
    for _p in "$@"; do
        # fields 14 and 15 after the ")" that ends the command name
        _v=$(sed 's/.*) //' "/proc/$_p/stat" 2>/dev/null | awk '{print $12 + $13}')
        _t=$((_t + ${_v:-0}))
    done
    echo "$_t"
}

bt_pids() {
    case $1 in
    tpsgw-direct) cat "$W/tps3.pid" 2>/dev/null ;;
    tpsgw-lb) cat "$BT_TOPO/tps1.pid" "$BT_TOPO/tps2.pid" 2>/dev/null ;;
    slapd) cat "$BT_TOPO/ldap1.pid" "$BT_TOPO/ldap2.pid" 2>/dev/null ;;
    pki-sim) for n in ca1 ca2 kra1 kra2 tks1 tks2; do cat "$BT_TOPO/$n.pid" 2>/dev/null; done ;;
    haproxy) cat "$BT_TOPO/haproxy.pid" 2>/dev/null ;;
    esac
}

# bt_batch URL N CUID OP OUT
bt_batch() {
    _out=$5
    # bounded: --timeout per message, and the whole batch at most BENCH_BATCH_TIMEOUT s
    /usr/bin/time -f '%U %S' -o "$_out.time" timeout -k 5 "${BENCH_BATCH_TIMEOUT:-300}" \
        "$TC" --server "$1" --user alice \
        --password-file "$ALICE_PW" --new-pin-file "$PIN_FILE" --no-progress --timeout 60 \
        --emulate "$2" --cuid "$3" "$4" >"$_out" 2>&1
    grep -q 'passed,' "$_out" || bt_fail "tokenclient gave no summary: $(tail -5 "$_out")"
    # shellcheck disable=SC2046
    set -- $(sed -n 's/^emulated [a-z-]*: \([0-9]*\) cards, \([0-9]*\) succeeded, \([0-9]*\) failed, \([0-9.]*\) s wall, \([0-9.]*\) ops\/s.*/\2 \3 \4 \5/p' "$_out") \
        $(sed -n 's/^latency ms: p50 \([0-9.]*\) .* p99 \([0-9.]*\) .*/\1 \2/p' "$_out")
    BT_OK=${1:-0} BT_FAIL=${2:-0} BT_WALL=${3:-0} BT_P50=${5:--} BT_P99=${6:--}
    # the wall time to the millisecond: succeeded / (ops/s)
    if [ "$BT_OK" -gt 0 ] 2>/dev/null; then
        BT_WALL=$(awk -v n="$BT_OK" -v r="$4" 'BEGIN { printf "%.3f", (r > 0 ? n / r : 0) }')
    fi
    BT_CLIENT_TICKS=$(tail -1 "$_out.time" 2>/dev/null | awk -v hz="$HZ" '{ printf "%d", ($1 + $2) * hz + 0.5 }')
    : "${BT_CLIENT_TICKS:=0}"
}

# bt_pick_op URL: enroll when a single enroll succeeds, else format (BT_OP, BT_OP_NOTE).
bt_pick_op() {
    for _try in 0 1 2; do
        bt_batch "$1" 1 "40907901001F0FFFFF0$_try" enroll "$W/probe.out"
        [ "$BT_OK" = 1 ] && break
    done
    if [ "$BT_OK" = 1 ]; then
        BT_OP=enroll
        BT_OP_NOTE="enroll (2 keys made on the card, 2 CA enrollments per operation)"
    else
        BT_OP=format
        BT_OP_NOTE="format: 3 single enrolls failed here ($(grep -m1 '^card 0:' "$W/probe.out"))"
    fi
}
