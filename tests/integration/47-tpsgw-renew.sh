#!/bin/sh
# tests/integration/47-tpsgw-renew.sh - renewal inside enroll, and hung TKS / KRA clones, through
# the tpsgw daemon (topology of lib/tpsgw-enroll.sh: slapd pair, two pki-sim clones each of CA,
# KRA and TKS, tpsgw, `tokenclient --emulate 1`).
# 1. Renewal: a card is enrolled; the renewal policy (op.enroll.userKey.renewal.*, a grace
#    window of 3650 days before notAfter, so a fresh certificate is already due) is configured
#    and the token's policy in the token DB gets RENEW=YES (ldapmodify, as the admin path
#    writes it). The next enroll renews: exactly one CA renewal request per slot, no CA
#    enrollment, no KRA keygen; the new certificates (new serials) carry the SAME public keys
#    as the old ones (token DB userCertificate;binary compared with openssl, and the CA's key
#    hashes); the token DB records the new certificates, and the card holds them.
# 2. TKS clone 1 hangs after reading the next request: the enroll of a fresh card succeeds
#    through TKS clone 2 within conn.tks1.responseTimeout plus the normal enroll time; tks1
#    logged the hung request.
# 3. KRA clone 1 hangs after reading the GenerateKeyPair request (archive=true: NON_IDEMPOTENT,
#    docs/backends.md): it is never resent to KRA clone 2, the enroll fails cleanly (not
#    ACTIVE, op.end failure, enroll.reconcile audited), exactly one GenerateKeyPair request
#    reached the KRAs, no certificate was requested for the encryption key, and every
#    certificate issued for the card is recorded in the token DB.
set -u
. "$(dirname "$0")/lib/lib.sh"
. "$(dirname "$0")/lib/pcsc.sh"
. "$IT_TOP/tests/sim/simtest.sh"
it_need slapd ldapsearch ldapmodify curl openssl base64
RESP_MS=2000
TPSGW_EXTRA_CFG="conn.tks1.responseTimeout=$RESP_MS
op.enroll.userKey.renewal.keyType.num=2
op.enroll.userKey.renewal.keyType.value.0=signing
op.enroll.userKey.renewal.keyType.value.1=encryption
op.enroll.userKey.renewal.signing.enable=true
op.enroll.userKey.renewal.signing.ca.profileId=caTokenUserSigningKeyRenewal
op.enroll.userKey.renewal.signing.ca.conn=ca1
op.enroll.userKey.renewal.signing.gracePeriod.enable=true
op.enroll.userKey.renewal.signing.gracePeriod.before=3650
op.enroll.userKey.renewal.signing.gracePeriod.after=30
op.enroll.userKey.renewal.encryption.enable=true
op.enroll.userKey.renewal.encryption.ca.profileId=caTokenUserEncryptionKeyRenewal
op.enroll.userKey.renewal.encryption.ca.conn=ca1
op.enroll.userKey.renewal.encryption.gracePeriod.enable=true
op.enroll.userKey.renewal.encryption.gracePeriod.before=3650
op.enroll.userKey.renewal.encryption.gracePeriod.after=30"
. "$(dirname "$0")/lib/tpsgw-enroll.sh"

SIG=caTokenUserSigningKeyEnrollment
ENC=caTokenUserEncryptionKeyEnrollment
SIGR=caTokenUserSigningKeyRenewal
ENCR=caTokenUserEncryptionKeyRenewal
careqs() { cat "$W/ca1.requests" "$W/ca2.requests" 2>/dev/null; }
# GenerateKeyPair requests over both KRA clones, by path: a hung one is logged op=fault
kragen() { cat "$W/kra1.requests" "$W/kra2.requests" 2>/dev/null | grep -c ' path=/kra/agent/kra/GenerateKeyPair '; }
# dbcerts CUID KEYTYPE: "serial-hex spki-sha256" per certificate of the token DB, sorted
dbcerts() {
    ldq "ou=Certificates,$BASEDN" "(&(tokenID=$1)(tokenKeyType=$2))" 'userCertificate;binary' \
        | sed -n 's/^userCertificate;binary:: //p' | while read -r b; do
        printf '%s\n' "$b" | base64 -d >"$W/one.der" 2>/dev/null || continue
        s=$(openssl x509 -inform DER -in "$W/one.der" -noout -serial | sed 's/^serial=//')
        k=$(openssl x509 -inform DER -in "$W/one.der" -noout -pubkey \
            | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r | cut -c1-64)
        echo "$s $k"
    done | sort
}
now_ms() { date +%s%3N; }

# ---- 1. renewal: same keys, new certificates
A=40907901001F47000001
t0=$(now_ms)
tc $A 0 enroll --new-pin-file "$W/pin1"
T_ENROLL=$(( $(now_ms) - t0 ))
[ "$(token_attr $A tokenStatus)" = ACTIVE ] || it_fail "card A not ACTIVE"
[ "$(issued)" = 2 ] || it_fail "first enroll: $(issued) certificates issued for 2 slots"
dbcerts $A signing >"$W/a-sig.0"
dbcerts $A encryption >"$W/a-enc.0"
[ "$(wc -l <"$W/a-sig.0")" = 1 ] && [ "$(wc -l <"$W/a-enc.0")" = 1 ] \
    || it_fail "first enroll: token DB certificates: $(cat "$W/a-sig.0" "$W/a-enc.0")"
"$BUILD/bin/vtoken" --show "$W/cards/card-$A.vtoken" >"$W/show.0" 2>&1
it_log "card A enrolled in ${T_ENROLL} ms"

# the policy the admin path writes: renewal allowed
ldapmodify -x -H "$URI1" -D "$ROOTDN" -y "$ROOTPW_FILE" >"$W/pol.log" 2>&1 <<LDIF || it_fail "ldapmodify: $(cat "$W/pol.log")"
dn: cn=$A,ou=Tokens,$BASEDN
changetype: modify
replace: tokenPolicy
tokenPolicy: RE_ENROLL=YES;RENEW=YES;FORCE_FORMAT=NO;PIN_RESET=YES;RESET_PIN_RESET_TO_NO=NO
LDIF
enr0=$(careqs | grep -c ' op=enrollment ')
gen0=$(kragen)
tc $A 0 enroll --new-pin-file "$W/pin1"
[ "$(token_attr $A tokenStatus)" = ACTIVE ] || it_fail "renewal: card A not ACTIVE"
for kt in signing encryption; do
    grep -q "enroll.plan .*cuid=$A keyType=$kt action=renew" "$W/gw.log" \
        || it_fail "renewal: $kt not planned for renewal: $(grep "enroll.plan .*cuid=$A" "$W/gw.log")"
done
[ "$(careqs | grep -c ' op=enrollment ')" = "$enr0" ] \
    || it_fail "renewal: the CA got $(( $(careqs | grep -c ' op=enrollment ') - enr0 )) enrollment requests"
[ "$(kragen)" = "$gen0" ] || it_fail "renewal: the KRA generated a key: $(cat "$W"/kra?.requests)"
for pr in $SIGR $ENCR; do
    n=$(careqs | grep ' op=renewal ' | grep -c " profile=$pr ")
    [ "$n" = 1 ] || it_fail "renewal: $n $pr requests reached the CA, want 1: $(careqs | grep ' op=renewal ')"
    careqs | grep ' op=renewal ' | grep " profile=$pr " | grep -q "cuid=$A .*status=0 .*serial=" \
        || it_fail "renewal: $pr not answered with a certificate: $(careqs | grep ' op=renewal ')"
done
# the CA's key hashes: each renewal certified the key its enrollment certified
for pair in "$SIG $SIGR" "$ENC $ENCR"; do
    set -- $pair
    e=$(careqs | grep ' op=enrollment ' | grep " profile=$1 " | grep "cuid=$A" \
        | sed -n 's/.* pubkey=\([0-9a-f]*\).*/\1/p')
    r=$(careqs | grep ' op=renewal ' | grep " profile=$2 " | sed -n 's/.* pubkey=\([0-9a-f]*\).*/\1/p')
    [ -n "$e" ] && [ "$e" = "$r" ] || it_fail "renewal: $2 certified key '$r', $1 certified '$e'"
done
# the token DB: the new certificates are recorded, for the same keys, with new serials
for kt in sig enc; do
    [ $kt = sig ] && ktn=signing || ktn=encryption
    dbcerts $A $ktn >"$W/a-$kt.1"
    old_s=$(cut -d' ' -f1 "$W/a-$kt.0"); old_k=$(cut -d' ' -f2 "$W/a-$kt.0")
    new=$(grep -v "^$old_s " "$W/a-$kt.1")
    [ "$(printf '%s\n' "$new" | grep -c .)" = 1 ] \
        || it_fail "renewal: token DB $ktn certificates $(cat "$W/a-$kt.1"), before $(cat "$W/a-$kt.0")"
    [ "${new#* }" = "$old_k" ] || it_fail "renewal: the new $ktn certificate has another key ($new, old $old_k)"
    rs=$(careqs | grep ' op=renewal ' | grep " profile=$( [ $kt = sig ] && echo $SIGR || echo $ENCR) " \
        | sed -n 's/.* serial=\([0-9]*\).*/\1/p')
    [ "$(printf '%d' "0x${new%% *}")" = "$rs" ] \
        || it_fail "renewal: token DB $ktn serial ${new%% *} is not the CA's renewal serial $rs"
    eval "NEW_$kt=\$rs"
done
[ "$(intent_count $A)" = 0 ] || it_fail "renewal: open enrollment intents"
# the card holds the renewed certificates (z0 rewritten): its state differs and names them
"$BUILD/bin/vtoken" --show "$W/cards/card-$A.vtoken" >"$W/show.1" 2>&1
grep -q 'life cycle 0F' "$W/show.1" || it_fail "renewal: card not personalised: $(cat "$W/show.1")"
[ "$(grep '^  key ' "$W/show.0")" = "$(grep '^  key ' "$W/show.1")" ] \
    || it_fail "renewal: the card's keys changed: $(grep '^  key ' "$W/show.0" "$W/show.1")"
z0v() { sed -n 's/.* z0: format [0-9]* version \([0-9]*\) .*/\1/p' "$1"; }
[ "$(z0v "$W/show.1")" -gt "$(z0v "$W/show.0")" ] 2>/dev/null \
    || it_fail "renewal: z0 not rewritten (version $(z0v "$W/show.0") -> $(z0v "$W/show.1"))"
# the public keys in slots 3 (signing) and 5 (encryption) are those of the renewed certificates
for pair in "3 sig" "5 enc"; do
    set -- $pair
    card=$(sed -n "s/^  key $1 .* spki-sha256 \([0-9A-Fa-f]*\).*/\1/p" "$W/show.1" | tr 'A-F' 'a-f')
    cert=$(grep -v "^$(cut -d' ' -f1 "$W/a-$2.0") " "$W/a-$2.1" | cut -d' ' -f2)
    [ -n "$card" ] && [ "${cert#"$card"}" != "$cert" ] \
        || it_fail "renewal: card key $1 ($card) is not the key of the renewed certificate ($cert)"
done
grep -q "op.end .*op=enroll cuid=$A .*result=success" "$W/audit.log" || it_fail "renewal: no op.end success"
it_log "renewal: one renewal per slot (serials $NEW_sig, $NEW_enc), same keys, recorded"

# ---- 2. TKS clone 1 hangs after reading the next request: tks2 answers after the timeout
curl -s -X POST "http://127.0.0.1:$(cat "$W/tks1.admin")/sim/fault?mode=hang-request&ms=20000&count=1&path=/tks/" \
    >/dev/null || it_fail "tks1 fault"
C=40907901001F47000002
t0=$(now_ms)
tc $C 0 enroll --new-pin-file "$W/pin1"
dt=$(( $(now_ms) - t0 ))
[ "$(token_attr $C tokenStatus)" = ACTIVE ] || it_fail "TKS 1 hung: card C not ACTIVE"
[ "$(cert_count $C)" = 2 ] || it_fail "TKS 1 hung: $(cert_count $C) certificate entries"
grep -q ' fault=hang-request' "$W/tks1.requests" || it_fail "TKS 1 hung: tks1 logged no hung request: $(cat "$W/tks1.requests")"
grep -q ' status=0' "$W/tks2.requests" || it_fail "TKS 1 hung: tks2 answered nothing"
limit=$(( RESP_MS + 2 * T_ENROLL + 3000 ))
[ "$dt" -le "$limit" ] || it_fail "TKS 1 hung: the enroll took $dt ms (timeout $RESP_MS ms, normal $T_ENROLL ms)"
[ "$dt" -ge "$RESP_MS" ] || it_fail "TKS 1 hung: $dt ms, less than the per-clone timeout: was the hang applied?"
curl -s -X POST "http://127.0.0.1:$(cat "$W/tks1.admin")/sim/fault?mode=none" >/dev/null
it_log "TKS 1 hung: enrolled through TKS 2 in $dt ms"

# ---- 3. KRA clone 1 hangs on GenerateKeyPair (archive=true): never resent, clean failure
curl -s -X POST "http://127.0.0.1:$(cat "$W/kra1.admin")/sim/fault?mode=hang-request&ms=20000&count=1&path=/kra/agent/kra/GenerateKeyPair" \
    >/dev/null || it_fail "kra1 fault"
D=40907901001F47000003
gen0=$(kragen)
g2=$(grep -c ' path=/kra/agent/kra/GenerateKeyPair ' "$W/kra2.requests")
"$TC" --emulate 1 --emulate-dir "$W/cards" --cuid $D --server "$URL" --user alice \
    --password-file "$W/alice.pw" --new-pin-file "$W/pin1" --no-retry enroll >"$W/tc.out" 2>&1
rc=$?
grep ' path=/kra/agent/kra/GenerateKeyPair ' "$W/kra1.requests" | grep -q ' fault=hang-request' \
    || it_fail "KRA 1 hung: the fault was not applied: $(cat "$W/kra1.requests")"
[ "$(( $(kragen) - gen0 ))" = 1 ] \
    || it_fail "KRA 1 hung: $(( $(kragen) - gen0 )) GenerateKeyPair requests (archive=true is never resent): $(cat "$W"/kra?.requests)"
[ "$(grep -c ' path=/kra/agent/kra/GenerateKeyPair ' "$W/kra2.requests")" = "$g2" ] || it_fail "KRA 1 hung: resent to KRA 2"
[ "$rc" != 0 ] || it_fail "KRA 1 hung: the enroll succeeded without a key from the KRA"
[ "$(token_attr $D tokenStatus)" != ACTIVE ] || it_fail "KRA 1 hung: failure but token ACTIVE"
grep -q "op.end .*cuid=$D .*result=failure" "$W/audit.log" || it_fail "KRA 1 hung: failure not audited"
grep "enroll.reconcile .*cuid=$D .*keyType=encryption" "$W/audit.log" | grep -q 'archived key' \
    || it_fail "KRA 1 hung: no enroll.reconcile for the archived key: $(grep reconcile "$W/audit.log")"
grep -q "session.end .*cuid=$D .*status=39" "$W/gw.log" \
    || it_fail "KRA 1 hung: not status 39: $(grep "$D" "$W/gw.log" | tail -5)"
[ "$(careqs | grep ' op=enrollment ' | grep " profile=$ENC " | grep -c "cuid=$D")" = 0 ] \
    || it_fail "KRA 1 hung: an encryption certificate was requested for card D"
[ "$(careqs | grep ' op=enrollment ' | grep "cuid=$D" | grep -c ' serial=')" = "$(cert_count $D)" ] \
    || it_fail "KRA 1 hung: issued for D and token DB entries differ: $(careqs | grep "cuid=$D")"
[ "$(ldq "ou=Certificates,$BASEDN" "(&(tokenID=$D)(tokenKeyType=encryption))" dn | grep -c '^dn:')" = 0 ] \
    || it_fail "KRA 1 hung: an encryption certificate entry for D"
[ "$(max_per_key)" = 1 ] || it_fail "a key was certified $(max_per_key) times by enrollment"
it_log "KRA 1 hung: clean failure (exit $rc), one GenerateKeyPair:" \
    "$(grep "op.end .*cuid=$D" "$W/audit.log" | sed 's/.* why=//' | cut -c1-200)"

if grep -q "$(cat "$W/pin1")\|alice-secret" "$W/gw.log" "$W/audit.log"; then
    it_fail "a PIN or password reached the logs"
fi
it_stop tpsgw
if grep -qE 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' "$W/tpsgw.log"; then
    it_fail "sanitizer report from tpsgw: $(cat "$W/tpsgw.log")"
fi
it_ok "47-tpsgw-renew"
