#!/bin/sh
# tests/integration/40-tpsgw-format.sh - tpsgw end to end on loopback: a replicated slapd pair
# (token DB schema, DIT and users: tests/unit/gateway/slapd-fixture.sh over lib/ldap.sh), two
# pki-sim TKS clones over mutual TLS, tpsgw, and tps-testclient relaying to an in-process
# vtoken card. A format succeeds and is recorded (token entry + activity); killing the first
# TKS clone does not fail the next format; a wrong password, a wrong card key set, a bad MAC,
# a malformed message and an oversize chunk each end with the spec's END_OP status, a clear
# log line, and no FORMATTED record for a card whose format failed.
. "$(dirname "$0")/lib/lib.sh"
. "$IT_TOP/tests/sim/simtest.sh"
# The LDAP pair is stopped before it_cleanup removes the work directory holding its pid files.
stop_all() {
    [ -n "${LDIR:-}" ] && [ -d "$LDIR" ] \
        && sh "$IT_TOP/tests/unit/gateway/slapd-fixture.sh" stop "$LDIR" >/dev/null 2>&1
    it_cleanup
}
trap stop_all EXIT INT TERM
it_need slapd ldapsearch ldapadd curl openssl
it_workdir >/dev/null
W=$IT_WORKDIR
TPSGW=$BUILD/bin/tpsgw
CLIENT=$BUILD/tests/integration/tps-testclient
[ -x "$TPSGW" ] && [ -x "$CLIENT" ] && [ -x "$SIM_BIN" ] || it_fail "build tpsgw, tps-testclient and pki-sim first"

# ---- LDAP pair with the token DB and the users
LDIR=$W/ldapfix
mkdir -p "$LDIR"
sh "$IT_TOP/tests/unit/gateway/slapd-fixture.sh" pair "$LDIR" $$ >"$W/ldapfix.log" 2>&1 \
    || it_fail "slapd pair: $(tail -20 "$W/ldapfix.log")"
. "$LDIR/env"
it_log "LDAP pair at $URI1 $URI2"
HP1=127.0.0.1:$PORT1
HP2=127.0.0.1:$PORT2

# ---- two TKS clones, developer keys, the shared secret from a file
sim_certs
(umask 077 && echo 000102030405060708090A0B0C0D0E0F >"$W/shared.hex" \
    && cp "$SIM_CERTS/agent.key" "$W/agent.key")
for n in tks1 tks2; do
    sim_conf $n tks
    cat >>"$W/$n.cfg" <<CFG
tps.list=0
tps.0.host=localhost
tps.0.port=7889
tps.0.userid=TPS-localhost-7889
tps.0.nickname=TPS-localhost-7889 sharedSecret
tps.0.sharedSecret_file=$W/shared.hex
CFG
    sim_start $n tks
done

# ---- tpsgw
HTTP=$(it_port)
HTTPS=$(it_port)
while [ "$HTTPS" = "$HTTP" ]; do HTTPS=$(it_port); done
(umask 077 && printf 'alice-secret\n' >"$W/alice.pw" && printf 'wrong-secret\n' >"$W/bad.pw" \
    && cp "$SIM_CERTS/server.key" "$W/tls.key")
cat >"$W/tpsgw.cfg" <<CFG
service.bindAddress=127.0.0.1
service.unsecurePort=$HTTP
service.securePort=$HTTPS
service.sslCertFile=$SIM_CERTS/server.crt
service.sslKeyFile=$W/tls.key
tps.maxSessions=4
tps.connection.timeout=30
tps.instanceId=it40
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
tokendb.hostport=$HP1 $HP2
tokendb.bindDN=$GWDN
tokendb.bindPassword_file=$GWPW_FILE
tokendb.baseDN=ou=Tokens,$BASEDN
tokendb.certBaseDN=ou=Certificates,$BASEDN
tokendb.activityBaseDN=ou=Activities,$BASEDN
auth.instance.1.authId=ldap1
auth.instance.1.hostport=$HP1 $HP2
auth.instance.1.baseDN=ou=People,$BASEDN
auth.instance.1.bindDN=$GWDN
auth.instance.1.bindPassword_file=$GWPW_FILE
auth.instance.1.retries=1
op.format.mappingResolver=formatMappingResolver
mappingResolver.formatMappingResolver.mapping.order=0
mappingResolver.formatMappingResolver.mapping.0.target.tokenType=userKey
op.format.userKey.auth.enable=true
op.format.userKey.auth.id=ldap1
op.format.userKey.issuerinfo.enable=true
op.format.userKey.issuerinfo.value=http://127.0.0.1:$HTTP/tps/phoneHome
op.format.userKey.update.applet.requiredVersion=1.4.58768072
op.format.userKey.update.applet.directory=$IT_TOP/conf/applets
CFG
"$TPSGW" -t -c "$W/tpsgw.cfg" >"$W/check.log" 2>&1 || it_fail "tpsgw -t: $(cat "$W/check.log")"
# -t refuses a broken file, naming file, line and key
{ grep -v '^tps.maxSessions=' "$W/tpsgw.cfg"; echo "tps.maxSessions=0"; echo "tps.bogus=1"; } >"$W/bad.cfg"
if "$TPSGW" -t -c "$W/bad.cfg" >"$W/bad.log" 2>&1; then it_fail "tpsgw -t accepted a bad file"; fi
grep -q "bad.cfg:[0-9]*: unknown key 'tps.bogus'" "$W/bad.log" || it_fail "tpsgw -t: $(cat "$W/bad.log")"
grep -q "bad.cfg:[0-9]*: key 'tps.maxSessions'" "$W/bad.log" || it_fail "tpsgw -t: $(cat "$W/bad.log")"
# started with a soft descriptor limit too low for its sessions: tpsgw raises it itself
it_start tpsgw sh -c 'ulimit -Sn 256 && exec "$0" -c "$1"' "$TPSGW" "$W/tpsgw.cfg"
it_wait_tcp 127.0.0.1 "$HTTP" 10
soft=$(awk '/^Max open files/ {print $4}' "/proc/$IT_LAST_PID/limits")
[ "$soft" -gt 256 ] || it_fail "tpsgw kept the soft descriptor limit at $soft (want > 256)"
[ "$(curl -s --max-time 5 "http://127.0.0.1:$HTTP/health")" = ok ] || it_fail "/health"
curl -s --max-time 5 "http://127.0.0.1:$HTTP/tps/phoneHome?cuid=x" | grep -q "<Operation>http://127.0.0.1:$HTTP/tps/tps</Operation>" \
    || it_fail "/tps/phoneHome"
[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$HTTP/tps/tps")" = 405 ] \
    || it_fail "GET /tps/tps is not 405"
it_wait_tcp 127.0.0.1 "$HTTPS" 10
[ "$(curl -s --max-time 5 --cacert "$SIM_CERTS/tls-ca.crt" "https://127.0.0.1:$HTTPS/health")" = ok ] \
    || it_fail "/health over HTTPS"

# client CARDFILE EXPECTED_EXIT [args...]: runs one operation, keeps its output in $W/last.out
client() {
    _card=$1; _want=$2; shift 2
    "$CLIENT" --port "$HTTP" --state "$W/$_card.card" "$@" >"$W/last.out" 2>&1
    _rc=$?
    [ "$_rc" = "$_want" ] || it_fail "client $_card $*: exit $_rc, want $_want: $(cat "$W/last.out")"
}
end_op() {
    grep '^END_OP' "$W/last.out"
}
token_attr() { # token_attr CUID ATTR
    ldapsearch -x -LLL -o ldif-wrap=no -H "$URI1" -D "$ROOTDN" -y "$ROOTPW_FILE" \
        -b "cn=$1,ou=Tokens,$BASEDN" -s base "$2" 2>/dev/null | sed -n "s/^$2: //p"
}
activities() { # activities CUID RESULT
    ldapsearch -x -LLL -o ldif-wrap=no -H "$URI1" -D "$ROOTDN" -y "$ROOTPW_FILE" \
        -b "ou=Activities,$BASEDN" "(&(tokenID=$1)(tokenOp=format)(tokenResult=$2))" dn \
        2>/dev/null | grep -c '^dn:'
}

CUID=40907901001F12345678
# ---- 1. a format succeeds: applet upgrade, issuer info, token DB records
client card1 0 --user alice --password-file "$W/alice.pw" \
    --ext "tokenType=userKey&statusUpdate=true" \
    --set applet.version=1.4.0000abcd --set applet.upgrade=1.4.58768072
end_op | grep -qx 'END_OP operation=5 result=0 message=0' || it_fail "format: $(cat "$W/last.out")"
grep -qx 'STATUS 100' "$W/last.out" || it_fail "no STATUS 100"
[ "$(token_attr $CUID tokenStatus)" = FORMATTED ] || it_fail "token entry not FORMATTED"
[ "$(token_attr $CUID tokenUserID)" = alice ] || it_fail "token entry user"
[ "$(activities $CUID success)" -ge 1 ] || it_fail "no success activity"
grep -q 'op.end .*result=success' "$W/audit.log" || it_fail "no audit line"
grep -q 'token.applet_upgraded' "$W/audit.log" || it_fail "no audit line for the applet upgrade"
it_log "format 1 ok"

# ---- 2. the first TKS clone dies: the next format still succeeds through tks2
it_stop tks1
client card1 0 --user alice --password-file "$W/alice.pw"
end_op | grep -qx 'END_OP operation=5 result=0 message=0' || it_fail "format without tks1: $(cat "$W/last.out")"
it_log "format with tks1 down ok"
# the same over HTTPS, on /nk_service
"$CLIENT" --port "$HTTPS" --tls "$SIM_CERTS/tls-ca.crt" --path /nk_service --state "$W/card1.card" \
    --user alice --password-file "$W/alice.pw" >"$W/last.out" 2>&1 || it_fail "format over HTTPS: $(cat "$W/last.out")"
end_op | grep -qx 'END_OP operation=5 result=0 message=0' || it_fail "format over HTTPS: $(cat "$W/last.out")"
# extended login (ESC style) through the same LDAP bind
client card1 0 --user alice --password-file "$W/alice.pw" \
    --ext "tokenType=userKey&extendedLoginRequest=true&clientVersion=ESC+1.0.1"
grep -q 'login.ok .*user=alice' "$W/gw.log" || it_fail "no login.ok line"

# ---- 3. failures: END_OP status, log line, no FORMATTED record of the failed card
fails_before=$(activities $CUID failure)
client card1 1 --user alice --password-file "$W/bad.pw"
end_op | grep -qx 'END_OP operation=5 result=1 message=14' || it_fail "wrong password: $(cat "$W/last.out")"
grep -q 'session.end .*status=14 .*not authenticated' "$W/gw.log" || it_fail "no log line for the wrong password"

client card1 1 --user alice --password-file "$W/alice.pw" --corrupt-mac 1
end_op | grep -qx 'END_OP operation=5 result=1 message=19' || it_fail "bad MAC: $(cat "$W/last.out")"
grep -q 'session.end .*status=19 .*answered 6982' "$W/gw.log" || it_fail "no log line for the bad MAC"

client card1 1 --garbage
end_op | grep -qx 'END_OP operation=5 result=1 message=1' || it_fail "malformed: $(cat "$W/last.out")"
grep -q 'session.end .*status=1 .*malformed message' "$W/gw.log" || it_fail "no log line for the malformed message"

client card1 1 --oversize
end_op | grep -qx 'END_OP operation=5 result=1 message=1' || it_fail "oversize: $(cat "$W/last.out")"
grep -q 'session.end .*status=1 .*chunk larger' "$W/gw.log" || it_fail "no log line for the oversize chunk"
[ "$(activities $CUID failure)" -gt "$fails_before" ] || it_fail "no failure activity recorded"

# a card holding other keys than the TKS derives: wrong card cryptogram
CUID2=40907901001F99999999
client card2 1 --user alice --password-file "$W/alice.pw" --set cuid=$CUID2 \
    --set key.enc=000102030405060708090A0B0C0D0E0F --set key.mac=000102030405060708090A0B0C0D0E0F \
    --set key.kek=000102030405060708090A0B0C0D0E0F
end_op | grep -qx 'END_OP operation=5 result=1 message=17' || it_fail "wrong cryptogram: $(cat "$W/last.out")"
grep -q 'session.end .*cuid=40907901001F99999999 .*status=17 .*cryptogram' "$W/gw.log" \
    || it_fail "no log line for the wrong cryptogram"
[ "$(token_attr $CUID2 tokenStatus)" != FORMATTED ] || it_fail "failed card recorded FORMATTED"
[ "$(activities $CUID2 success)" = 0 ] || it_fail "failed card has a success activity"
# the good card is still FORMATTED and unchanged by the failures
[ "$(token_attr $CUID tokenStatus)" = FORMATTED ] || it_fail "token entry changed by failures"
if grep -qi 'secret\|password=' "$W/gw.log" "$W/audit.log"; then
    it_fail "a secret reached the logs"
fi
# a clean stop on SIGTERM, and no sanitizer report from the daemon
it_stop tpsgw
if grep -qE 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' "$W/tpsgw.log"; then
    it_fail "sanitizer report from tpsgw: $(cat "$W/tpsgw.log")"
fi
grep -q 'server.stop' "$W/gw.log" || it_fail "tpsgw did not log its stop"
it_ok "40-tpsgw-format"
