#!/bin/sh
# tests/integration/49-tpsgw-keychange.sh - key changeover end to end on loopback: a key
# ceremony with tkskey between two SoftHSM2 tokens (one per TKS clone: transport key from
# shares, master key version 2 made on clone 1 and unwrapped on clone 2, same KCV), two pki-sim
# TKS clones reading their master key from their own token, the token DB on a slapd pair, and
# tpsgw configured for key version 2. A factory card (version 1) is upgraded on its next
# format; later formats authenticate with version 2 through either clone while the other is
# down; tpsgw killed between PUT KEY and the DB update (the TPSGW_TEST_ABORT_AFTER_PUT_KEY
# hook of gateway/keychange.h) leaves a pending record, and the next contact recovers.
. "$(dirname "$0")/lib/lib.sh"
. "$IT_TOP/tests/sim/simtest.sh"
trap '[ -n "${LDIR:-}" ] && sh "$IT_TOP/tests/unit/gateway/slapd-fixture.sh" stop "$LDIR" >/dev/null 2>&1; it_cleanup' EXIT INT TERM
it_need slapd ldapsearch ldapadd softhsm2-util curl openssl
it_workdir >/dev/null
W=$IT_WORKDIR
TPSGW=$BUILD/bin/tpsgw
TKSKEY=$BUILD/bin/tkskey
CLIENT=$BUILD/tests/integration/tps-testclient
VTOKEN=$BUILD/bin/vtoken
P11=${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
for b in "$TPSGW" "$TKSKEY" "$CLIENT" "$VTOKEN" "$SIM_BIN"; do
    [ -x "$b" ] || it_fail "build $b first"
done

# ---- the key ceremony: one SoftHSM2 token per TKS clone
echo 12345678 >"$W/pin"; chmod 600 "$W/pin"
for n in 1 2; do
    mkdir -p "$W/hsm$n"
    printf 'directories.tokendir = %s\nobjectstore.backend = file\n' "$W/hsm$n" >"$W/hsm$n.conf"
    SOFTHSM2_CONF=$W/hsm$n.conf softhsm2-util --init-token --free --label "tks$n" \
        --so-pin 87654321 --pin 12345678 >/dev/null || it_fail "softhsm2 token $n"
done
K1() { SOFTHSM2_CONF=$W/hsm1.conf "$TKSKEY" --module "$P11" --token tks1 --pin-file "$W/pin" "$@"; }
K2() { SOFTHSM2_CONF=$W/hsm2.conf "$TKSKEY" --module "$P11" --token tks2 --pin-file "$W/pin" "$@"; }
K1 gen-transport --label transport --share-out "$W/share" >"$W/ceremony.log" 2>&1 \
    || it_fail "gen-transport: $(cat "$W/ceremony.log")"
K2 input-transport --label transport --share-in "$W/share.1,$W/share.2,$W/share.3" \
    >>"$W/ceremony.log" 2>&1 || it_fail "input-transport: $(cat "$W/ceremony.log")"
K1 gen-master --label '#02#01' --exportable --readable >>"$W/ceremony.log" 2>&1 \
    || it_fail "gen-master: $(cat "$W/ceremony.log")"
K1 wrap --label '#02#01' --transport transport --out "$W/mk2.wrapped" >>"$W/ceremony.log" 2>&1 \
    || it_fail "wrap: $(cat "$W/ceremony.log")"
K2 unwrap --label '#02#01' --transport transport --in "$W/mk2.wrapped" --readable \
    >>"$W/ceremony.log" 2>&1 || it_fail "unwrap: $(cat "$W/ceremony.log")"
kcv1=$(K1 kcv --label '#02#01' | sed 's/.*kcv //')
kcv2=$(K2 kcv --label '#02#01' | sed 's/.*kcv //')
[ -n "$kcv1" ] && [ "$kcv1" = "$kcv2" ] || it_fail "master key KCVs differ: '$kcv1' / '$kcv2'"
K2 verify --label '#02#01' --kcv "$(echo "$kcv1" | tr -d ' ')" || it_fail "verify on clone 2"
it_log "master key #02#01 on both clones, KCV $kcv1"

# ---- LDAP pair with the token DB
LDIR=$W/ldapfix
mkdir -p "$LDIR"
sh "$IT_TOP/tests/unit/gateway/slapd-fixture.sh" pair "$LDIR" $$ >"$W/ldapfix.log" 2>&1 \
    || it_fail "slapd pair: $(tail -20 "$W/ldapfix.log")"
. "$LDIR/env"

# ---- two TKS clones, each reading #02#01 from its own token
sim_certs
(umask 077 && echo 000102030405060708090A0B0C0D0E0F >"$W/shared.hex" \
    && cp "$SIM_CERTS/agent.key" "$W/agent.key")
tks_start() { # tks_start N: (re)starts clone N on its saved configuration
    # (after a restart, tpsgw's libfailover skips the clone until its breaker closes: ~5 s)
    SOFTHSM2_CONF=$W/hsm$1.conf "$SIM_BIN" --role tks --config "$W/tks$1.cfg" --check \
        || it_fail "pki-sim tks$1: config refused"
    it_start "tks$1" env SOFTHSM2_CONF="$W/hsm$1.conf" "$SIM_BIN" --role tks --config "$W/tks$1.cfg"
    it_wait_tcp 127.0.0.1 "$(cat "$W/tks$1.port")" 10
}
for n in 1 2; do
    sim_conf "tks$n" tks
    cat >>"$W/tks$n.cfg" <<CFG
tps.list=0
tps.0.host=localhost
tps.0.port=7889
tps.0.userid=TPS-localhost-7889
tps.0.nickname=TPS-localhost-7889 sharedSecret
tps.0.sharedSecret_file=$W/shared.hex
tks.defaultSlot=tks$n
tks.defKeySet.mk_mappings.#02#01=tks$n:#02#01
pkisim.tks.pkcs11.module=$P11
pkisim.tks.pkcs11.pin_file=$W/pin
CFG
    tks_start $n
done

# ---- tpsgw, changeover to version 2 for userKey
HTTP=$(it_port)
HTTPS=$(it_port)
while [ "$HTTPS" = "$HTTP" ]; do HTTPS=$(it_port); done
(umask 077 && cp "$SIM_CERTS/server.key" "$W/tls.key")
cat >"$W/tpsgw.cfg" <<CFG
service.bindAddress=127.0.0.1
service.unsecurePort=$HTTP
service.securePort=$HTTPS
service.sslCertFile=$SIM_CERTS/server.crt
service.sslKeyFile=$W/tls.key
tps.maxSessions=4
tps.connection.timeout=30
tps.instanceId=it49
log.file=$W/gw.log
log.level=info
log.audit.file=$W/audit.log
tps.phoneHome.issuerName=Integration
tps.phoneHome.operation=http://127.0.0.1:$HTTP/tps/tps
conn.tks1.hostport=127.0.0.1:$(cat "$W/tks1.port") 127.0.0.1:$(cat "$W/tks2.port")
conn.tks1.tksSharedSymKey_file=$W/shared.hex
conn.tks1.SSLOn=true
conn.tks1.timeout=10
conn.tks1.connectTimeout=2000
conn.tks1.clientCertFile=$SIM_CERTS/agent.crt
conn.tks1.clientKeyFile=$W/agent.key
conn.tks1.caBundle=$SIM_CERTS/tls-ca.crt
tokendb.hostport=127.0.0.1:$PORT1 127.0.0.1:$PORT2
tokendb.bindDN=$GWDN
tokendb.bindPassword_file=$GWPW_FILE
tokendb.baseDN=ou=Tokens,$BASEDN
tokendb.certBaseDN=ou=Certificates,$BASEDN
tokendb.activityBaseDN=ou=Activities,$BASEDN
tokendb.leaseSeconds=3
op.format.mappingResolver=formatMappingResolver
mappingResolver.formatMappingResolver.mapping.order=0
mappingResolver.formatMappingResolver.mapping.0.target.tokenType=userKey
op.format.userKey.auth.enable=false
op.format.userKey.issuerinfo.enable=true
op.format.userKey.issuerinfo.value=http://127.0.0.1:$HTTP/tps/phoneHome
op.format.userKey.update.applet.requiredVersion=1.4.58768072
op.format.userKey.update.applet.directory=$IT_TOP/conf/applets
op.format.userKey.update.symmetricKeys.enable=true
op.format.userKey.update.symmetricKeys.requiredVersion=2
CFG
"$TPSGW" -t -c "$W/tpsgw.cfg" >"$W/check.log" 2>&1 || it_fail "tpsgw -t: $(cat "$W/check.log")"
gw_start() {
    it_start tpsgw "$@" "$TPSGW" -c "$W/tpsgw.cfg"
    it_wait_tcp 127.0.0.1 "$HTTP" 10
}
gw_start env

# client CARD EXPECTED_EXIT [args...]: one format of the card kept in $W/CARD.card
client() {
    _card=$1; _want=$2; shift 2
    "$CLIENT" --port "$HTTP" --state "$W/$_card.card" "$@" >"$W/last.out" 2>&1
    _rc=$?
    [ "$_rc" = "$_want" ] || it_fail "client $_card $*: exit $_rc, want $_want: $(cat "$W/last.out")"
}
format_ok() {
    client "$1" 0 --ext "tokenType=userKey" ${2:+--set cuid=$2}
    grep -qx 'END_OP operation=5 result=0 message=0' "$W/last.out" \
        || it_fail "format of $1: $(cat "$W/last.out")"
}
card_default() { # the default key set of a card, from its state file
    "$VTOKEN" --show "$W/$1.card" | sed -n 's/^ *default key set //p'
}
token_attr() { # token_attr CUID ATTR
    ldapsearch -x -LLL -o ldif-wrap=no -H "$URI1" -D "$ROOTDN" -y "$ROOTPW_FILE" \
        -b "cn=$1,ou=Tokens,$BASEDN" -s base "$2" 2>/dev/null | sed -n "s/^$2: //p"
}
kc_activities() { # kc_activities CUID RESULT: key_changeover activities of the token
    ldapsearch -x -LLL -o ldif-wrap=no -H "$URI1" -D "$ROOTDN" -y "$ROOTPW_FILE" \
        -b "ou=Activities,$BASEDN" "(&(tokenID=$1)(tokenOp=key_changeover)(tokenResult=$2))" dn \
        2>/dev/null | grep -c '^dn:'
}
starts() { # how many changeovers tpsgw began for CUID
    grep -c "keychange.start .*cuid=$1 " "$W/gw.log"
}
session_calls() { # computeSessionKey requests clone N saw with KeyInfo #02#01
    grep -c 'computeSessionKey.*keyInfo=0201' "$W/tks$1.requests" 2>/dev/null
}

# ---- 1. a factory card (developer keys, version 01) is upgraded on its next format
CUID=40907901001F12345678
client card1 0 --ext "tokenType=userKey"
grep -qx 'END_OP operation=5 result=0 message=0' "$W/last.out" || it_fail "format 1: $(cat "$W/last.out")"
[ "$(card_default card1)" = 02 ] || it_fail "card not at key set 02: $("$VTOKEN" --show "$W/card1.card")"
"$VTOKEN" --show "$W/card1.card" | grep -q 'key set 01 ' && it_fail "factory key set still on the card"
[ "$(starts $CUID)" = 1 ] || it_fail "expected one changeover in gw.log"
grep -q "keychange.done .*cuid=$CUID from=0101 to=0201" "$W/gw.log" || it_fail "no keychange.done line"
grep -q "token.key_changeover .*cuid=$CUID from=0101 to=0201 result=success" "$W/audit.log" \
    || it_fail "no audit line for the changeover"
grep -q "token.key_changeover_required .*cuid=$CUID" "$W/audit.log" || it_fail "no 'changeover required' audit line"
[ "$(token_attr $CUID keyInfo)" = 0201 ] || it_fail "token record keyInfo is not 0201"
[ "$(token_attr $CUID tokenStatus)" = FORMATTED ] || it_fail "token record not FORMATTED"
[ "$(kc_activities $CUID success)" = 1 ] || it_fail "no key_changeover activity in the token DB"
token_attr $CUID extensions | grep -q '^pendingKeyInfo=' && it_fail "pendingKeyInfo left after the changeover"
grep -q 'createKeySetData' "$W/tks1.requests" || it_fail "tks1 saw no createKeySetData"
it_log "factory card upgraded to version 2"

# ---- 2. later formats authenticate with version 2, through either clone
format_ok card1
[ "$(starts $CUID)" = 1 ] || it_fail "a card at version 2 was changed over again"
it_stop tks1
before=$(session_calls 2)
format_ok card1
[ "$(session_calls 2)" -gt "$before" ] || it_fail "tks2 did not derive the version-2 session keys"
tks_start 1
sleep 6 # the breaker libfailover opened on tks1 while it was down
it_stop tks2
before=$(session_calls 1)
format_ok card1
[ "$(session_calls 1)" -gt "$before" ] || it_fail "tks1 did not derive the version-2 session keys"
tks_start 2
sleep 6
[ "$(starts $CUID)" = 1 ] || it_fail "unexpected changeover with a clone down"
it_log "version 2 works through tks1 alone and tks2 alone"

# a second factory card is upgraded while tks1 is down: tks2's copy of the key does it
it_stop tks1
CUID2=40907901001F22222222
format_ok card2 $CUID2
[ "$(card_default card2)" = 02 ] || it_fail "card2 not upgraded through tks2"
tks_start 1

# ---- 3. tpsgw dies between PUT KEY and the DB update; the next contact recovers
CUID3=40907901001F33333333
it_stop tpsgw
gw_start env TPSGW_TEST_ABORT_AFTER_PUT_KEY=$CUID3
client card3 2 --ext "tokenType=userKey" --set cuid=$CUID3
pid=$(cat "$W/tpsgw.pid")
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
kill -0 "$pid" 2>/dev/null && it_fail "tpsgw survived the test hook"
it_stop tpsgw
grep -q "keychange.test_abort .*cuid=$CUID3" "$W/gw.log" || it_fail "the test hook did not fire"
[ "$(card_default card3)" = 02 ] || it_fail "PUT KEY did not reach card3 before the crash"
[ "$(token_attr $CUID3 keyInfo)" != 0201 ] || it_fail "keyInfo written although tpsgw died first"
token_attr $CUID3 extensions | grep -q '^pendingKeyInfo=0201&pendingSince=' \
    || it_fail "no pendingKeyInfo=0201 on $CUID3 after the crash (extensions: $(token_attr $CUID3 extensions))"
sleep 4 # the dead instance's operation lease (tokendb.leaseSeconds=3) expires
gw_start env
format_ok card3 $CUID3
[ "$(starts $CUID3)" = 1 ] || it_fail "the recovered card was changed over again"
[ "$(token_attr $CUID3 keyInfo)" = 0201 ] || it_fail "keyInfo not settled after recovery"
token_attr $CUID3 extensions | grep -q '^pendingKeyInfo=' && it_fail "pendingKeyInfo left after recovery"
it_log "crash between PUT KEY and the DB update recovered on the next contact"

if grep -qE 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' "$W/tpsgw.log"; then
    it_fail "sanitizer report from tpsgw: $(cat "$W/tpsgw.log")"
fi
sim_check_logs
it_ok "49-tpsgw-keychange"
