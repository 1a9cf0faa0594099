# tests/integration/lib/tpsgw-enroll.sh - the enrollment topology of the tpsgw scripts (POSIX
# sh; source after lib.sh, pcsc.sh and tests/sim/simtest.sh): the replicated slapd pair (token
# DB, users, pki-sim records below the same suffix), two pki-sim clones each of CA, KRA and TKS
# over mutual TLS, and tpsgw on plain HTTP serving enroll (userKey: a signing key made on the
# card, an encryption key made and archived on the KRA) and PIN reset; alice / alice-secret.
# Sets W, URL, TPSGW, TC, HTTP; helpers ldq, token_attr, cert_count, issued, max_per_key, tc.
# TPSGW_EXTRA_CFG: more lines for tpsgw.cfg; TPSGW_MAX_SESSIONS (default 8). Installs the EXIT trap (stops slapd, it_cleanup).
stop_all() {
    [ -n "${LDIR:-}" ] && [ -d "$LDIR" ] \
        && sh "$IT_TOP/tests/unit/gateway/slapd-fixture.sh" stop "$LDIR" >/dev/null 2>&1
    it_cleanup
}
trap stop_all EXIT INT TERM
it_workdir >/dev/null
W=$IT_WORKDIR
TPSGW=$BUILD/bin/tpsgw
TC=$BUILD/bin/tokenclient
[ -x "$TPSGW" ] && [ -x "$TC" ] && [ -x "$SIM_BIN" ] || it_fail "build tpsgw, tokenclient and pki-sim first"
export HOME="$W/home"
mkdir -p "$HOME" "$W/cards"

# ---- LDAP pair: token DB, users, and the pki-sim records (ou=ca / ou=kra below the same suffix)
LDIR=$W/ldapfix
mkdir -p "$LDIR"
sh "$IT_TOP/tests/unit/gateway/slapd-fixture.sh" pair "$LDIR" $$ >"$W/ldapfix.log" 2>&1 \
    || it_fail "slapd pair: $(tail -20 "$W/ldapfix.log")"
. "$LDIR/env"
HP1=127.0.0.1:$PORT1
HP2=127.0.0.1:$PORT2

# ---- CA, KRA and TKS clones (CA/KRA share records through the pair; TKS developer keys)
sim_certs
"$SIM_BIN" --init-ca "$W/pki" >/dev/null || it_fail "--init-ca"
"$SIM_BIN" --init-kra "$W/pki" >/dev/null || it_fail "--init-kra"
TRANSPORT_CRT=$(ls "$W"/pki/*transport*.crt 2>/dev/null | head -1)
[ -n "$TRANSPORT_CRT" ] || it_fail "no KRA transport certificate in $W/pki: $(ls "$W/pki")"
(umask 077 && echo 000102030405060708090A0B0C0D0E0F >"$W/shared.hex" \
    && cp "$SIM_CERTS/agent.key" "$W/agent.key" && cp "$SIM_CERTS/server.key" "$W/tls.key")
LDAP_ROOTDN=$ROOTDN
LDAP_ROOTPW_FILE=$ROOTPW_FILE
i=0
for n in ca1 ca2; do
    sim_conf $n ca
    if [ $n = ca1 ]; then
        sim_store_conf $n "ou=ca,$BASEDN" 1 ffff 1 9999 "$URI1 $URI2"
    else
        sim_store_conf $n "ou=ca,$BASEDN" 10000 1ffff 10000 19999 "$URI2 $URI1"
    fi
    printf 'pkisim.ca.signingCertFile=%s\npkisim.ca.signingKeyFile=%s\n' "$W/pki/ca.crt" \
        "$W/pki/ca.key" >>"$W/$n.cfg"
done
for n in kra1 kra2; do
    sim_conf $n kra
    if [ $n = kra1 ]; then
        sim_store_conf $n "ou=kra,$BASEDN" 1 ffff 1 9999 "$URI1 $URI2"
    else
        sim_store_conf $n "ou=kra,$BASEDN" 10000 1ffff 10000 19999 "$URI2 $URI1"
    fi
    printf 'pkisim.kra.transportKeyFile=%s\npkisim.kra.storageKeyFile=%s\n' \
        "$W/pki/kra-transport.key" "$W/pki/kra-storage.key" >>"$W/$n.cfg"
done
for n in tks1 tks2; do
    sim_conf $n tks
    cat >>"$W/$n.cfg" <<CFG
pkisim.tks.transportCertFile=$TRANSPORT_CRT
tps.list=0
tps.0.host=localhost
tps.0.port=7889
tps.0.userid=TPS-localhost-7889
tps.0.nickname=TPS-localhost-7889 sharedSecret
tps.0.sharedSecret_file=$W/shared.hex
CFG
done
for n in ca1 ca2 kra1 kra2 tks1 tks2; do sim_start $n ${n%?}; done
hp() { echo "127.0.0.1:$(cat "$W/$1.port") 127.0.0.1:$(cat "$W/$2.port")"; }

# ---- tpsgw: userKey = signing key made on the card + encryption key made and archived on the KRA
HTTP=$(it_port)
(umask 077 && printf 'alice-secret\n' >"$W/alice.pw" && printf '13572468\n' >"$W/pin1" \
    && printf '86427531\n' >"$W/pin2")
conn() { # conn ID HOSTS
    cat <<CFG
conn.$1.hostport=$2
conn.$1.SSLOn=true
conn.$1.timeout=8
conn.$1.connectTimeout=2000
conn.$1.clientCertFile=$SIM_CERTS/agent.crt
conn.$1.clientKeyFile=$W/agent.key
conn.$1.caBundle=$SIM_CERTS/tls-ca.crt
CFG
}
{
    cat <<CFG
service.bindAddress=127.0.0.1
service.unsecurePort=$HTTP
tps.maxSessions=${TPSGW_MAX_SESSIONS:-8}
tps.acceptQueue=${TPSGW_MAX_SESSIONS:-8}
tps.connection.timeout=30
tps.instanceId=it46
log.file=$W/gw.log
log.level=info
log.audit.file=$W/audit.log
tps.phoneHome.issuerName=Integration
tps.phoneHome.operation=http://127.0.0.1:$HTTP/tps/tps
conn.tks1.tksSharedSymKey_file=$W/shared.hex
conn.tks1.serverKeygen=true
CFG
    conn tks1 "$(hp tks1 tks2)"
    conn ca1 "$(hp ca1 ca2)"
    echo "conn.ca1.reconcileDelay=500"
    echo "conn.ca1.callTimeout=4"
    conn drm1 "$(hp kra1 kra2)"
    cat <<CFG
tokendb.hostport=$HP1 $HP2
tokendb.bindDN=$GWDN
tokendb.bindPassword_file=$GWPW_FILE
tokendb.baseDN=ou=Tokens,$BASEDN
tokendb.certBaseDN=ou=Certificates,$BASEDN
tokendb.activityBaseDN=ou=Activities,$BASEDN
tokendb.defaultPolicy=RE_ENROLL=YES;RENEW=NO;FORCE_FORMAT=NO;PIN_RESET=YES;RESET_PIN_RESET_TO_NO=NO
auth.instance.1.authId=ldap1
auth.instance.1.hostport=$HP1 $HP2
auth.instance.1.baseDN=ou=People,$BASEDN
auth.instance.1.bindDN=$GWDN
auth.instance.1.bindPassword_file=$GWPW_FILE
auth.instance.1.retries=0
op.enroll.allowMultiActiveToken.user=true
CFG
    for op in enroll pinReset; do
        cat <<CFG
op.$op.mappingResolver=${op}Map
mappingResolver.${op}Map.mapping.order=0
mappingResolver.${op}Map.mapping.0.target.tokenType=userKey
op.$op.userKey.auth.enable=true
op.$op.userKey.auth.id=ldap1
CFG
    done
    cat <<'CFG'
op.enroll.userKey.keyGen.keyType.num=2
op.enroll.userKey.keyGen.keyType.value.0=signing
op.enroll.userKey.keyGen.keyType.value.1=encryption
op.enroll.userKey.keyGen.signing.certId=C1
op.enroll.userKey.keyGen.signing.keySize=1024
op.enroll.userKey.keyGen.signing.label=signing key for $userid$
op.enroll.userKey.keyGen.signing.ca.profileId=caTokenUserSigningKeyEnrollment
op.enroll.userKey.keyGen.encryption.certId=C2
op.enroll.userKey.keyGen.encryption.keySize=1024
op.enroll.userKey.keyGen.encryption.label=encryption key for $userid$
op.enroll.userKey.keyGen.encryption.ca.profileId=caTokenUserEncryptionKeyEnrollment
op.enroll.userKey.keyGen.encryption.serverKeygen.enable=true
op.enroll.userKey.keyGen.encryption.serverKeygen.archive=true
op.enroll.userKey.pinReset.pin.minLen=4
op.enroll.userKey.pinReset.pin.maxLen=10
op.pinReset.userKey.pinReset.pin.minLen=4
op.pinReset.userKey.pinReset.pin.maxLen=10
op.enroll.userKey.issuerinfo.enable=true
op.enroll.userKey.issuerinfo.value=http://127.0.0.1/tps/phoneHome?cuid=$cuid$
CFG
    [ -z "${TPSGW_EXTRA_CFG:-}" ] || printf '%s\n' "$TPSGW_EXTRA_CFG"
} >"$W/tpsgw.cfg"
"$TPSGW" -t -c "$W/tpsgw.cfg" >"$W/check.log" 2>&1 || it_fail "tpsgw -t: $(cat "$W/check.log")"
it_start tpsgw "$TPSGW" -c "$W/tpsgw.cfg"
it_wait_tcp 127.0.0.1 "$HTTP" 10
URL=http://127.0.0.1:$HTTP/tps/tps

ldq() { # ldq BASE FILTER ATTR...: LDIF from node 1
    _b=$1; _f=$2; shift 2
    ldapsearch -x -LLL -o ldif-wrap=no -H "$URI1" -D "$ROOTDN" -y "$ROOTPW_FILE" -b "$_b" "$_f" "$@" 2>/dev/null
}
token_attr() { ldq "cn=$1,ou=Tokens,$BASEDN" '(objectClass=*)' "$2" | sed -n "s/^$2: //p"; }
# certificate entries of a token, without open enrollment intents (tokenSerial pending:...)
cert_count() { ldq "ou=Certificates,$BASEDN" "(&(tokenID=$1)(!(tokenSerial=pending:*)))" dn | grep -c '^dn:'; }
# open enrollment intents of a token: CA calls whose outcome is not known yet
intent_count() { ldq "ou=Certificates,$BASEDN" "(&(tokenID=$1)(tokenSerial=pending:*))" dn | grep -c '^dn:'; }
# enrollment requests answered with a certificate, over both CA clones
issued() { cat "$W/ca1.requests" "$W/ca2.requests" 2>/dev/null | grep ' op=enrollment ' | grep -c ' serial='; }
# the highest number of enrollments of one public key over both clones
max_per_key() {
    cat "$W/ca1.requests" "$W/ca2.requests" 2>/dev/null | grep ' op=enrollment ' | grep ' serial=' \
        | sed -n 's/.* pubkey=\([0-9a-f]*\).*/\1/p' | sort | uniq -c | sort -rn | awk 'NR==1{print $1}'
}
# tc CUID EXPECTED_EXIT OP [args]: the desk client with one emulated card
tc() {
    _c=$1; _want=$2; _op=$3; shift 3
    "$TC" --emulate 1 --emulate-dir "$W/cards" --cuid "$_c" --server "$URL" --user alice \
        --password-file "$W/alice.pw" --no-retry "$@" "$_op" >"$W/tc.out" 2>&1
    _rc=$?
    [ "$_rc" = "$_want" ] || it_fail "tokenclient $_op $_c: exit $_rc, want $_want: $(cat "$W/tc.out"; tail -5 "$W/gw.log")"
}

