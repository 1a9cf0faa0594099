#!/bin/sh
# scripts/topology.sh - the whole HA topology of tpsgw on loopback, for `make demo`, the HA
# integration tests and benchmarks:
#   2 slapd replicating (token DB dc=tps,dc=example + pki-sim records o=pki-sim),
#   2 clones each of CA, KRA (DRM) and TKS (pki-sim), 2 tpsgw, HAProxy in front of them,
#   and, unless TOPO_PCSC=0, a private pcscd with the vpcd driver and one vtoken card.
#
#   scripts/topology.sh start  [DIR]   start everything; returns once HAProxy serves
#   scripts/topology.sh stop   [DIR]   stop everything started there (SIGTERM, then SIGKILL)
#   scripts/topology.sh status [DIR]   one line per daemon: name, pid, up/down
#   scripts/topology.sh env    [DIR]   print DIR/topo.env (ports, URLs, files) for `eval`
#   scripts/topology.sh kill NAME [SIG] [DIR]   signal one daemon (default TERM) and, for TERM
#                                      and KILL, wait until it is gone
#   scripts/topology.sh restart NAME [DIR]      start one stopped daemon again, same config
#   scripts/topology.sh cmd NAME [DIR]          print the command line of a daemon
# NAME: ldap1 ldap2 ca1 ca2 kra1 kra2 tks1 tks2 tps1 tps2 haproxy (pcscd, vtoken: stop only).
#
# DIR (default $TOPO_DIR or /tmp/tpsgw-topo) holds everything: configs, data, NAME.pid and
# NAME.log per daemon, topo.env. Ports are picked free at start (below the ephemeral range)
# and written to topo.env, so several topologies can run at once. Settings from the
# environment: TOPO_BIN (default $BUILD_ROOT/release/bin of the tree), TOPO_PCSC (1),
# TOPO_TPS_SESSIONS (tps.maxSessions, default 16), TOPO_LB_TIMEOUT (HAProxy client/server
# timeouts, default 10m). docs/ha.md explains the layout and every port.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
CMD=${1:-}
DIR=${2:-${TOPO_DIR:-/tmp/tpsgw-topo}}
: "${BUILD_ROOT:=build}"
case $BUILD_ROOT in /*) ;; *) BUILD_ROOT=$TOP/$BUILD_ROOT ;; esac
TOPO_BIN=${TOPO_BIN:-$BUILD_ROOT/release/bin}
# lib.sh derives the tree from $0 (it lives in tests/integration/): give it ours.
BUILD=$(dirname "$TOPO_BIN")
export BUILD
PATH=$PATH:/usr/sbin:/sbin

NAMES="vtoken pcscd haproxy tps1 tps2 ca1 ca2 kra1 kra2 tks1 tks2 ldap1 ldap2"

topo_stop() {
    [ -d "$DIR" ] || return 0
    for n in $NAMES; do
        f=$DIR/$n.pid
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        kill -CONT "$pid" 2>/dev/null
        kill "$pid" 2>/dev/null
    done
    for n in $NAMES; do
        f=$DIR/$n.pid
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        i=0
        while kill -0 "$pid" 2>/dev/null && ! grep -q ') Z' "/proc/$pid/stat" 2>/dev/null &&
            [ $i -lt 60 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        kill -9 "$pid" 2>/dev/null
        rm -f "$f"
    done
}

topo_status() {
    [ -f "$DIR/topo.env" ] || { echo "no topology in $DIR"; return 1; }
    for n in $NAMES; do
        f=$DIR/$n.pid
        if [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; then
            printf '%-8s %-8s up\n' "$n" "$(cat "$f")"
        elif [ -f "$f" ]; then
            printf '%-8s %-8s down\n' "$n" "$(cat "$f")"
        fi
    done
}

# The command line of daemon $1 (what start ran), for restart.
topo_cmd() {
    . "$DIR/topo.env"
    case $1 in
    tps[12]) echo "$TOPO_BIN/tpsgw -c $DIR/$1.cfg" ;;
    ca[12]) echo "$TOPO_BIN/pki-sim --role ca --config $DIR/$1.cfg" ;;
    kra[12]) echo "$TOPO_BIN/pki-sim --role kra --config $DIR/$1.cfg" ;;
    tks[12]) echo "$TOPO_BIN/pki-sim --role tks --config $DIR/$1.cfg" ;;
    ldap[12])
        eval "_p=\$LDAP${1#ldap}_PORT"
        echo "slapd -d ${TOPO_SLAPD_DEBUG:-0} -F $LDAP_PAIR_DIR/node${1#ldap}/slapd.d -h ldap://127.0.0.1:$_p/"
        ;;
    haproxy) echo "haproxy -db -f $DIR/haproxy.cfg" ;;
    *) echo "topology: cannot restart '$1'" >&2; return 1 ;;
    esac
}

topo_kill() {
    f=$DIR/$1.pid
    [ -f "$f" ] || { echo "topology: $1 is not running" >&2; return 1; }
    pid=$(cat "$f")
    kill -CONT "$pid" 2>/dev/null
    kill "-${2:-TERM}" "$pid" 2>/dev/null
    case ${2:-TERM} in
    TERM | KILL | 9 | 15)
        i=0
        while kill -0 "$pid" 2>/dev/null && ! grep -q ') Z' "/proc/$pid/stat" 2>/dev/null; do
            i=$((i + 1))
            [ $i -lt 600 ] || { kill -9 "$pid" 2>/dev/null; break; }
            sleep 0.1
        done
        rm -f "$f"
        ;;
    esac
}

topo_restart() {
    c=$(topo_cmd "$1") || return 1
    [ -f "$DIR/$1.pid" ] && kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null &&
        { echo "topology: $1 is running" >&2; return 1; }
    # shellcheck disable=SC2086
    PATH=$PATH:/usr/sbin setsid $c >>"$DIR/$1.log" 2>&1 </dev/null &
    echo $! >"$DIR/$1.pid"
    echo "topology: restarted $1 (pid $!)"
}

case $CMD in
stop) topo_stop; exit 0 ;;
kill) DIR=${4:-${TOPO_DIR:-/tmp/tpsgw-topo}}; topo_kill "$2" "${3:-TERM}"; exit $? ;;
restart) DIR=${3:-${TOPO_DIR:-/tmp/tpsgw-topo}}; topo_restart "$2"; exit $? ;;
cmd) DIR=${3:-${TOPO_DIR:-/tmp/tpsgw-topo}}; topo_cmd "$2"; exit $? ;;
status) topo_status; exit $? ;;
env) cat "$DIR/topo.env"; exit $? ;;
start) ;;
*) echo "usage: $0 start|stop|status|env [DIR] | kill NAME [SIG] [DIR] | restart NAME [DIR]" >&2
   exit 2 ;;
esac

# ---------------------------------------------------------------- start
topo_stop
rm -rf "$DIR"
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
. "$TOP/tests/integration/lib/lib.sh"
rmdir "$IT_WORKDIR" 2>/dev/null
IT_TOP=$TOP
IT_WORKDIR=$DIR
. "$TOP/tests/integration/lib/ldap.sh"
. "$TOP/tests/integration/lib/pcsc.sh"
. "$TOP/tests/sim/simtest.sh"
SIM_BIN=$TOPO_BIN/pki-sim
W=$DIR
# A failure stops what was started, shows the logs, and leaves DIR for inspection.
it_fail() {
    echo "topology: FAIL: $*" >&2
    for f in "$DIR"/*.log; do
        [ -f "$f" ] || continue
        echo "---- $f (last 15 lines)" >&2
        tail -15 "$f" >&2
    done
    topo_stop
    exit 1
}
say() { echo "topology: $*"; }
for b in tpsgw pki-sim tokenclient vtoken; do
    [ -x "$TOPO_BIN/$b" ] || it_fail "$TOPO_BIN/$b is not built (make build)"
done
it_need slapd slapadd ldapsearch haproxy curl openssl
TPSGW=$TOPO_BIN/tpsgw

# ---- TLS material and the pki-sim keys
sim_certs >/dev/null
"$SIM_BIN" --init-ca "$DIR/pki" >/dev/null || it_fail "pki-sim --init-ca"
"$SIM_BIN" --init-kra "$DIR/pki" >/dev/null || it_fail "pki-sim --init-kra"
(umask 077 && cp "$SIM_CERTS/agent.key" "$DIR/agent.key" && cp "$SIM_CERTS/server.key" "$DIR/tls.key" &&
    echo 000102030405060708090A0B0C0D0E0F >"$DIR/shared.hex" && printf 'alice-secret\n' >"$DIR/alice.pw" &&
    printf '1234\n' >"$DIR/pin")

# ---- the replicated LDAP pair: token DB and pki-sim records
BASEDN="dc=tps,dc=example"
LDAP_SUFFIXES="$BASEDN o=pki-sim"
LDAP_PAIR_DIR=$DIR/ldap
LDAP_PAIR_INDEXES="tokenUserID,tokenID eq,pres,sub;tokenStatus,tokenType,tokenSerial,tokenKeyType,tokenOrigin eq;dateOfCreate,dateOfModify eq,pres"
export LDAP_SUFFIXES LDAP_PAIR_DIR LDAP_PAIR_INDEXES
it_ldap_pair_start >"$DIR/ldap-pair.log" 2>&1 || it_fail "LDAP pair"
GWPW=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
{
    sed -e "s|@BASEDN@|$BASEDN|g" -e "s|@GATEWAY_PASSWORD@|$GWPW|g" \
        "$TOP/conf/ldap/tokendb-base.ldif.in"
    cat <<EOF

dn: uid=alice,ou=People,$BASEDN
objectClass: inetOrgPerson
uid: alice
cn: Alice Example
sn: Example
mail: alice@example.com
userPassword: alice-secret
EOF
} | ldapadd -x -o nettimeout=3 -H "$LDAP1_URI" -D "$LDAP_ROOTDN" -y "$LDAP_ROOTPW_FILE" \
    >"$DIR/ldap-data.log" 2>&1 || it_fail "loading the token DB DIT"
ldap_wait_entry "$LDAP2_URI" "uid=alice,ou=People,$BASEDN" 20 || it_fail "DIT did not replicate"
say "LDAP providers $LDAP1_URI $LDAP2_URI replicating"

# ---- pki-sim clones: CA and KRA share records through the pair, TKS share keys
# Each clone is configured and started before the next picks its ports, so two of them can
# never pick the same free port.
sim_one() {
    sim_conf "$1" "${1%?}"
    case $1 in
    ca1) sim_store_conf ca1 "ou=ca,o=pki-sim" 1 ffff 1 9999 "$LDAP1_URI $LDAP2_URI" ;;
    ca2) sim_store_conf ca2 "ou=ca,o=pki-sim" 10000 1ffff 10000 19999 "$LDAP1_URI $LDAP2_URI" ;;
    kra1) sim_store_conf kra1 "ou=kra,o=pki-sim" 1 ffff 1 9999 "$LDAP1_URI $LDAP2_URI" ;;
    kra2) sim_store_conf kra2 "ou=kra,o=pki-sim" 10000 1ffff 10000 19999 "$LDAP1_URI $LDAP2_URI" ;;
    esac
    case $1 in
    ca?)
        printf 'pkisim.ca.signingCertFile=%s\npkisim.ca.signingKeyFile=%s\n' \
            "$DIR/pki/ca.crt" "$DIR/pki/ca.key" >>"$DIR/$1.cfg"
        ;;
    kra?)
        printf 'pkisim.kra.transportKeyFile=%s\npkisim.kra.storageKeyFile=%s\n' \
            "$DIR/pki/kra-transport.key" "$DIR/pki/kra-storage.key" >>"$DIR/$1.cfg"
        ;;
    tks?)
        cat >>"$DIR/$1.cfg" <<CFG
tps.list=0
tps.0.host=localhost
tps.0.port=7889
tps.0.userid=TPS-localhost-7889
tps.0.nickname=TPS-localhost-7889 sharedSecret
tps.0.sharedSecret_file=$DIR/shared.hex
CFG
        [ -f "$DIR/pki/kra-transport.crt" ] &&
            echo "pkisim.tks.transportCertFile=$DIR/pki/kra-transport.crt" >>"$DIR/$1.cfg"
        ;;
    esac
    sim_start "$1" "${1%?}" >>"$DIR/topology.log"
}
for n in ca1 ca2 kra1 kra2 tks1 tks2; do sim_one $n; done
hp() { echo "127.0.0.1:$(cat "$DIR/$1.port")"; }
say "pki-sim clones: ca $(hp ca1) $(hp ca2); kra $(hp kra1) $(hp kra2); tks $(hp tks1) $(hp tks2)"

# ---- ports of the balancer and of both gateways
# Free ports not handed out yet (the sims' ports are taken already: they are bound).
USED=" "
topo_port() {
    while :; do
        _tp=$(sim_port)
        case $USED in *" $_tp "*) continue ;; esac
        USED="$USED$_tp "
        TOPO_PORT=$_tp
        return 0
    done
}
topo_port; LB_HTTP=$TOPO_PORT
topo_port; LB_HTTPS=$TOPO_PORT
for i in 1 2; do
    for k in HTTP HTTPS AGENT STATUS; do topo_port; eval "TPS${i}_$k=$TOPO_PORT"; done
done
PUBLIC_URL=http://127.0.0.1:$LB_HTTP
# Which optional keys this tpsgw knows (features land at different times).
KEYS=$("$TPSGW" --keys 2>/dev/null)
knows() { printf '%s\n' "$KEYS" | grep -q "^$1"; }

# tps_conf N TKS_ORDER CA_ORDER KRA_ORDER: one instance's tpsgw.cfg. The token DB list is the
# same on both (one write target, tokendb-ha §2.2 R1); backend lists are reversed on the
# second instance to spread load (seed 002 step 4).
tps_conf() {
    i=$1
    eval "http=\$TPS${i}_HTTP https=\$TPS${i}_HTTPS agent=\$TPS${i}_AGENT status=\$TPS${i}_STATUS"
    cat <<CFG
service.bindAddress=127.0.0.1
service.unsecurePort=$http
service.securePort=$https
service.sslCertFile=$SIM_CERTS/server.crt
service.sslKeyFile=$DIR/tls.key
service.acceptProxy=true
tps.maxSessions=${TOPO_TPS_SESSIONS:-16}
tps.acceptQueue=32
tps.connection.timeout=60
tps.instanceId=tps$i
log.file=$DIR/tps$i.gw.log
log.level=info
log.audit.file=$DIR/tps$i.audit.log
log.audit.sync=false
tps.phoneHome.issuerName=tpsgw demo
tps.phoneHome.operation=$PUBLIC_URL/tps/tps
conn.tks1.hostport=$2
conn.tks1.tksSharedSymKey_file=$DIR/shared.hex
conn.tks1.SSLOn=true
conn.tks1.timeout=10
conn.tks1.connectTimeout=1000
conn.tks1.clientCertFile=$SIM_CERTS/agent.crt
conn.tks1.clientKeyFile=$DIR/agent.key
conn.tks1.caBundle=$SIM_CERTS/tls-ca.crt
conn.ca1.hostport=$3
conn.ca1.connectTimeout=1000
conn.ca1.clientCertFile=$SIM_CERTS/agent.crt
conn.ca1.clientKeyFile=$DIR/agent.key
conn.ca1.caBundle=$SIM_CERTS/tls-ca.crt
conn.drm1.hostport=$4
conn.drm1.clientCertFile=$SIM_CERTS/agent.crt
conn.drm1.clientKeyFile=$DIR/agent.key
conn.drm1.caBundle=$SIM_CERTS/tls-ca.crt
tokendb.hostport=127.0.0.1:$LDAP1_PORT 127.0.0.1:$LDAP2_PORT
tokendb.bindDN=$LDAP_ROOTDN
tokendb.bindPassword_file=$LDAP_ROOTPW_FILE
tokendb.baseDN=ou=Tokens,$BASEDN
tokendb.certBaseDN=ou=Certificates,$BASEDN
tokendb.activityBaseDN=ou=Activities,$BASEDN
tokendb.networkTimeout=1000
tokendb.opTimeout=3000
tokendb.leaseSeconds=4
tokendb.leaseWait=6000
auth.instance.1.authId=ldap1
auth.instance.1.hostport=127.0.0.1:$LDAP1_PORT 127.0.0.1:$LDAP2_PORT
auth.instance.1.baseDN=ou=People,$BASEDN
auth.instance.1.bindDN=$LDAP_ROOTDN
auth.instance.1.bindPassword_file=$LDAP_ROOTPW_FILE
auth.instance.1.timeout=3000
op.format.mappingResolver=formatMappingResolver
op.enroll.mappingResolver=enrollMappingResolver
mappingResolver.formatMappingResolver.mapping.order=0
mappingResolver.formatMappingResolver.mapping.0.target.tokenType=userKey
mappingResolver.enrollMappingResolver.mapping.order=0
mappingResolver.enrollMappingResolver.mapping.0.target.tokenType=userKey
op.format.userKey.auth.id=ldap1
op.format.userKey.issuerinfo.enable=true
op.format.userKey.issuerinfo.value=$PUBLIC_URL/tps/phoneHome
op.format.userKey.update.applet.requiredVersion=1.4.58768072
op.format.userKey.update.applet.directory=$TOP/conf/applets
op.enroll.userKey.auth.id=ldap1
op.enroll.allowMultiActiveToken.user=true
op.enroll.userKey.issuerinfo.enable=true
op.enroll.userKey.issuerinfo.value=$PUBLIC_URL/tps/phoneHome
op.enroll.userKey.update.applet.requiredVersion=1.4.58768072
op.enroll.userKey.update.applet.directory=$TOP/conf/applets
op.enroll.userKey.keyGen.signing.ca.profileId=caTokenUserSigningKeyEnrollment
op.enroll.userKey.keyGen.encryption.ca.profileId=caTokenUserEncryptionKeyEnrollment
CFG
    if knows 'op.enroll.\*.keyGen.keyType.num'; then
        cat <<CFG
op.enroll.userKey.keyGen.keyType.num=2
op.enroll.userKey.keyGen.keyType.value.0=signing
op.enroll.userKey.keyGen.keyType.value.1=encryption
op.enroll.userKey.keyGen.signing.certId=C1
op.enroll.userKey.keyGen.signing.certAttrId=c1
op.enroll.userKey.keyGen.signing.label=signing key for \$userid\$
op.enroll.userKey.keyGen.encryption.certId=C2
op.enroll.userKey.keyGen.encryption.keyUser=0
op.enroll.userKey.keyGen.encryption.serverKeygen.enable=true
op.enroll.userKey.keyGen.encryption.serverKeygen.drm.conn=drm1
op.enroll.userKey.keyGen.encryption.serverKeygen.archive=true
conn.tks1.serverKeygen=true
op.enroll.userKey.pinReset.pin.minLen=4
op.enroll.userKey.pinReset.pin.maxLen=10
CFG
    fi
    if knows 'lb.agentPort'; then
        cat <<CFG
lb.publicURL=$PUBLIC_URL
lb.agentPort=$agent
lb.statusPort=$status
lb.trustedProxies=127.0.0.1
lb.healthInterval=500
lb.probeTimeout=500
lb.drainGrace=2500
lb.drainTimeout=60000
CFG
    fi
    # the configuration-digest check between the instances, refreshed every second
    if knows 'lb.instanceRefresh'; then
        echo 'lb.instanceRefresh=1'
    fi
}
tps_conf 1 "$(hp tks1) $(hp tks2)" "$(hp ca1) $(hp ca2)" "$(hp kra1) $(hp kra2)" >"$DIR/tps1.cfg"
tps_conf 2 "$(hp tks2) $(hp tks1)" "$(hp ca2) $(hp ca1)" "$(hp kra2) $(hp kra1)" >"$DIR/tps2.cfg"
# Keys this build does not know yet are dropped (with a note), so the topology runs on every
# stage of the tree; `tpsgw -t` then checks the rest strictly.
for i in 1 2; do
    "$TPSGW" -t -c "$DIR/tps$i.cfg" >"$DIR/tps$i.check" 2>&1 && continue
    sed -n "s/.*unknown key '\([^']*\)'.*/\1/p" "$DIR/tps$i.check" | sort -u >"$DIR/tps$i.unknown"
    if [ -s "$DIR/tps$i.unknown" ]; then
        grep -v -F -f "$DIR/tps$i.unknown" "$DIR/tps$i.cfg" | grep -v "^op.enroll.userKey.keyGen" >"$DIR/tps$i.cfg.new"
        mv "$DIR/tps$i.cfg.new" "$DIR/tps$i.cfg"
        [ $i = 1 ] && say "note: this tpsgw does not know: $(tr '\n' ' ' <"$DIR/tps1.unknown")"
    fi
    "$TPSGW" -t -c "$DIR/tps$i.cfg" >"$DIR/tps$i.check" 2>&1 || it_fail "tpsgw -t tps$i: $(cat "$DIR/tps$i.check")"
done
for i in 1 2; do
    it_start tps$i "$TPSGW" -c "$DIR/tps$i.cfg" >>"$DIR/topology.log"
    eval "it_wait_tcp 127.0.0.1 \$TPS${i}_HTTP 10"
done

# ---- HAProxy
sed -e "s|@RUNDIR@|$DIR|g" -e "s|@BIND@|127.0.0.1|g" -e "s|@LB_HTTP@|$LB_HTTP|g" \
    -e "s|@LB_HTTPS@|$LB_HTTPS|g" -e "s|@TIMEOUT@|${TOPO_LB_TIMEOUT:-10m}|g" \
    -e "s|@TPS1_HTTP@|$TPS1_HTTP|g" -e "s|@TPS1_HTTPS@|$TPS1_HTTPS|g" \
    -e "s|@TPS1_AGENT@|$TPS1_AGENT|g" -e "s|@TPS1_ADMIN@|$TPS1_STATUS|g" \
    -e "s|@TPS2_HTTP@|$TPS2_HTTP|g" -e "s|@TPS2_HTTPS@|$TPS2_HTTPS|g" \
    -e "s|@TPS2_AGENT@|$TPS2_AGENT|g" -e "s|@TPS2_ADMIN@|$TPS2_STATUS|g" \
    "$TOP/conf/haproxy/haproxy.cfg.in" >"$DIR/haproxy.cfg"
haproxy -c -f "$DIR/haproxy.cfg" >"$DIR/haproxy-check.log" 2>&1 || it_fail "haproxy -c: $(cat "$DIR/haproxy-check.log")"
it_start haproxy haproxy -db -f "$DIR/haproxy.cfg" >>"$DIR/topology.log"
it_wait_tcp 127.0.0.1 "$LB_HTTP" 10

cat >"$DIR/topo.env" <<EOF
TOPO_DIR='$DIR'
TOPO_BIN='$TOPO_BIN'
PUBLIC_URL='$PUBLIC_URL'
LB_HTTP=$LB_HTTP
LB_HTTPS=$LB_HTTPS
TPS1_HTTP=$TPS1_HTTP
TPS1_HTTPS=$TPS1_HTTPS
TPS1_AGENT=$TPS1_AGENT
TPS1_STATUS=$TPS1_STATUS
TPS2_HTTP=$TPS2_HTTP
TPS2_HTTPS=$TPS2_HTTPS
TPS2_AGENT=$TPS2_AGENT
TPS2_STATUS=$TPS2_STATUS
LDAP1_URI='$LDAP1_URI'
LDAP2_URI='$LDAP2_URI'
LDAP1_PORT=$LDAP1_PORT
LDAP2_PORT=$LDAP2_PORT
LDAP_ROOTDN='$LDAP_ROOTDN'
LDAP_ROOTPW_FILE='$LDAP_ROOTPW_FILE'
LDAP_SUFFIXES='$LDAP_SUFFIXES'
LDAP_PAIR_DIR='$LDAP_PAIR_DIR'
BASEDN='$BASEDN'
TLS_CA='$SIM_CERTS/tls-ca.crt'
CA_CERT='$DIR/pki/ca.crt'
ALICE_PW='$DIR/alice.pw'
PIN_FILE='$DIR/pin'
EOF
for n in ca1 ca2 kra1 kra2 tks1 tks2; do
    echo "$(echo $n | tr a-z A-Z)_ADMIN=$(cat "$DIR/$n.admin")" >>"$DIR/topo.env"
    echo "$(echo $n | tr a-z A-Z)_PORT=$(cat "$DIR/$n.port")" >>"$DIR/topo.env"
done

# ---- ready: both instances healthy as HAProxy sees them (phone home answered through it)
i=0
until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$PUBLIC_URL/tps/phoneHome")" = 200 ]; do
    i=$((i + 1))
    [ $i -lt 100 ] || it_fail "HAProxy does not serve the phone-home document after 20 s"
    sleep 0.2
done
say "tpsgw 1 (http $TPS1_HTTP, agent $TPS1_AGENT, status $TPS1_STATUS) and tpsgw 2 (http $TPS2_HTTP, agent $TPS2_AGENT, status $TPS2_STATUS) behind HAProxy $PUBLIC_URL (https 127.0.0.1:$LB_HTTPS)"

# ---- PC/SC: a private pcscd with vpcd, and one vtoken card on slot 0
if [ "${TOPO_PCSC:-1}" = 1 ]; then
    it_pcscd_start pcscd >>"$DIR/topology.log" 2>&1
    it_vtoken_start vtoken "$DIR/card.state" 0 --set cuid=40907901001F00C0FFEE >>"$DIR/topology.log"
    it_pcsc_wait_card 0 15
    cat >>"$DIR/topo.env" <<EOF
PCSCLITE_CSOCK_NAME='$PCSCLITE_CSOCK_NAME'
CARD_STATE='$DIR/card.state'
CARD_CUID=40907901001F00C0FFEE
EOF
    say "pcscd with vpcd (socket $PCSCLITE_CSOCK_NAME), vtoken card 40907901001F00C0FFEE in slot 0"
fi
say "up; settings in $DIR/topo.env; stop with: $0 stop $DIR"
exit 0
