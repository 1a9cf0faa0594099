#!/bin/sh
# tests/integration/46-tpsgw-enroll.sh - enrollment and PIN reset through the tpsgw daemon on
# loopback: the replicated slapd pair (token DB, users, pki-sim records), two pki-sim clones
# each of CA, KRA and TKS over mutual TLS, tpsgw, and the real desk client (`tokenclient
# --emulate 1`) on a fresh card. The card is then served by vtoken through pcscd+vpcd and read
# with Debian's coolkey module and OpenSC's: both certificates and keys are listed, a signature
# made with the card verifies with the certificate's public key. The CA issued exactly one
# certificate per slot (request logs, token DB certificate entries); the encryption key was
# generated and archived on the KRA. PIN reset changes the PIN (old refused, new accepted).
# Then enrollments with CA 1 killed, and with CA 1 hung after reading the request: no key is
# certified twice, and the outcome is consistent (success, or a recorded failure with the
# reconciliation audit line).
set -u
. "$(dirname "$0")/lib/lib.sh"
. "$(dirname "$0")/lib/pcsc.sh"
. "$IT_TOP/tests/sim/simtest.sh"
it_need slapd ldapsearch ldapmodify curl openssl pkcs11-tool opensc-tool
COOLKEY=${COOLKEY_MODULE:-/usr/lib/pkcs11/libcoolkeypk11.so}
OPENSC=${OPENSC_MODULE:-/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so}
[ -f "$COOLKEY" ] || it_fail "coolkey module $COOLKEY missing: run 'make deps'"
[ -f "$OPENSC" ] || it_fail "OpenSC module $OPENSC missing: run 'make deps'"
. "$(dirname "$0")/lib/tpsgw-enroll.sh"

# ---- 1. enroll a fresh card
CUID=40907901001F46000001
tc $CUID 0 enroll --new-pin-file "$W/pin1"
[ "$(token_attr $CUID tokenStatus)" = ACTIVE ] || it_fail "token not ACTIVE: $(ldq "cn=$CUID,ou=Tokens,$BASEDN" '(objectClass=*)')"
[ "$(token_attr $CUID tokenUserID)" = alice ] || it_fail "token user"
[ "$(issued)" = 2 ] || it_fail "CA issued $(issued) certificates for 2 slots"
[ "$(max_per_key)" = 1 ] || it_fail "a key was certified $(max_per_key) times"
[ "$(cert_count $CUID)" = 2 ] || it_fail "token DB has $(cert_count $CUID) certificate entries, want 2"
[ "$(cat "$W/kra1.requests" "$W/kra2.requests" | grep ' op=GenerateKeyPair ' | grep -c ' status=0')" = 1 ] \
    || it_fail "the KRA did not generate exactly one key: $(cat "$W"/kra?.requests)"
grep -q 'enroll.cert_issued' "$W/audit.log" || it_fail "no enroll.cert_issued audit line"
grep -q "op.end .*op=enroll cuid=$CUID .*result=success" "$W/audit.log" || it_fail "no op.end success"
it_log "enroll: ACTIVE, 2 certificates, encryption key archived"

# ---- 2. the card as the middleware sees it (pcscd + vpcd + vtoken on the enrolled state)
CARD=$W/cards/card-$CUID.vtoken
[ -f "$CARD" ] || it_fail "no card state $CARD: $(ls "$W/cards")"
"$BUILD/bin/vtoken" --show "$CARD" >"$W/show.txt" 2>&1
grep -q 'life cycle 0F' "$W/show.txt" || it_fail "card not personalised: $(cat "$W/show.txt")"
# enroll wrote the phone-home URL (op.enroll.userKey.issuerinfo.*), $cuid$ expanded
grep -q "issuer *\"http://127.0.0.1/tps/phoneHome?cuid=$CUID\"" "$W/show.txt" \
    || it_fail "enroll did not write the issuer info: $(grep issuer "$W/show.txt")"
it_pcscd_start pcscd
it_vtoken_start vt "$CARD" 0
it_pcsc_wait_card 0 10
# check MODULE TAG PIN: certificates and keys listed; a signature with each key verifies
check() {
    m=$1; tag=$2; pin=$3
    pkcs11-tool --module "$m" --slot-index 0 --login --pin "$pin" -O >"$W/$tag.objects" 2>&1 \
        || it_fail "$tag: listing objects: $(cat "$W/$tag.objects")"
    [ "$(grep -c 'Certificate Object' "$W/$tag.objects")" = 2 ] || it_fail "$tag: not 2 certificates: $(cat "$W/$tag.objects")"
    [ "$(grep -c 'Private Key Object' "$W/$tag.objects")" = 2 ] || it_fail "$tag: not 2 private keys: $(cat "$W/$tag.objects")"
    grep -q 'label: *signing key for alice' "$W/$tag.objects" || it_fail "$tag: label not shown"
    for id in 01 02; do
        pkcs11-tool --module "$m" --slot-index 0 --read-object --type cert --id $id \
            -o "$W/$tag.$id.der" >/dev/null 2>&1 || it_fail "$tag: cannot read certificate $id"
        openssl x509 -inform DER -in "$W/$tag.$id.der" -noout -subject | grep -q 'alice' \
            || it_fail "$tag: certificate $id is not alice's"
        openssl verify -CAfile "$W/pki/ca.crt" -purpose any \
            "$(openssl x509 -inform DER -in "$W/$tag.$id.der" -out "$W/$tag.$id.pem" && echo "$W/$tag.$id.pem")" \
            >/dev/null || it_fail "$tag: certificate $id not issued by the CA"
        head -c 32 /dev/urandom >"$W/$tag.data"
        openssl x509 -in "$W/$tag.$id.pem" -noout -pubkey >"$W/$tag.pub"
        if [ $id = 01 ]; then
            # the signing key (made on the card): a signature verifies with the certificate
            pkcs11-tool --module "$m" --slot-index 0 --sign --login --pin "$pin" --id $id \
                -m RSA-PKCS -i "$W/$tag.data" -o "$W/$tag.sig" >"$W/$tag.sign.log" 2>&1 \
                || it_fail "$tag: signing with key $id: $(cat "$W/$tag.sign.log")"
            openssl pkeyutl -verify -pubin -inkey "$W/$tag.pub" -in "$W/$tag.data" \
                -sigfile "$W/$tag.sig" >/dev/null \
                || it_fail "$tag: signature of key $id does not verify with its certificate"
        else
            # the encryption key (made by the KRA, imported): decrypts what its certificate's
            # public key encrypted
            openssl pkeyutl -encrypt -pubin -inkey "$W/$tag.pub" -in "$W/$tag.data" \
                -out "$W/$tag.enc" || it_fail "$tag: openssl encrypt"
            pkcs11-tool --module "$m" --slot-index 0 --decrypt --login --pin "$pin" --id $id \
                -m RSA-PKCS -i "$W/$tag.enc" -o "$W/$tag.dec" >"$W/$tag.dec.log" 2>&1 \
                || it_fail "$tag: decrypting with key $id: $(cat "$W/$tag.dec.log")"
            cmp -s "$W/$tag.data" "$W/$tag.dec" || it_fail "$tag: key $id does not match its certificate"
        fi
    done
    it_log "$tag: 2 certificates and keys; signature and decryption checked with the certificates"
}
# cannot_sign MODULE PIN: a login with PIN is refused
cannot_sign() {
    head -c 32 /dev/urandom >"$W/x.data"
    if pkcs11-tool --module "$1" --slot-index 0 --sign --login --pin "$2" --id 01 -m RSA-PKCS \
        -i "$W/x.data" -o "$W/x.sig" >/dev/null 2>&1; then
        it_fail "$(basename "$1"): PIN $2 accepted"
    fi
}
check "$COOLKEY" coolkey "$(cat "$W/pin1")"
check "$OPENSC" opensc "$(cat "$W/pin1")"
cannot_sign "$OPENSC" "$(cat "$W/pin2")"
it_stop vt
it_pcsc_wait_nocard 0 10

# ---- 3. PIN reset: the old PIN is refused, the new one works
tc $CUID 0 pin-reset --new-pin-file "$W/pin2"
grep -q "op.end .*op=.*cuid=$CUID .*result=success" "$W/audit.log" || it_fail "no op.end for the PIN reset"
grep -q 'token.pin_reset' "$W/audit.log" || it_fail "no token.pin_reset audit line"
it_vtoken_start vt2 "$CARD" 0
it_pcsc_wait_card 0 10
cannot_sign "$OPENSC" "$(cat "$W/pin1")"
check "$OPENSC" opensc-newpin "$(cat "$W/pin2")"
it_stop vt2
it_log "PIN reset: old PIN refused, new PIN accepted"

# ---- 4. CA 1 killed: the enroll goes to CA 2 (nothing reached CA 1), one certificate per key
it_stop ca1
before=$(issued)
CUID2=40907901001F46000002
tc $CUID2 0 enroll --new-pin-file "$W/pin1"
[ "$(token_attr $CUID2 tokenStatus)" = ACTIVE ] || it_fail "enroll with CA 1 down: not ACTIVE"
[ "$(( $(issued) - before ))" = 2 ] || it_fail "with CA 1 down: $(( $(issued) - before )) certificates issued"
[ "$(max_per_key)" = 1 ] || it_fail "with CA 1 down: a key was certified twice"
[ "$(cert_count $CUID2)" = 2 ] || it_fail "with CA 1 down: $(cert_count $CUID2) certificate entries"
[ "$(intent_count $CUID2)" = 0 ] || it_fail "with CA 1 down: enrollment intents left open"
it_log "enroll with CA 1 killed: through CA 2, one certificate per key"

# ---- 5. CA 1 hangs after reading the request: never re-sent to CA 2 blindly
sim_start ca1 ca
# a fresh daemon: its breaker still remembers CA 1 as dead
it_stop tpsgw
it_start tpsgw2 "$TPSGW" -c "$W/tpsgw.cfg"
it_wait_tcp 127.0.0.1 "$HTTP" 10
curl -s -X POST "http://127.0.0.1:$(cat "$W/ca1.admin")/sim/fault?mode=hang-request&ms=20000&count=1&path=/ca/ee/ca/profileSubmitSSLClient" >/dev/null
before=$(issued)
CUID3=40907901001F46000003
"$TC" --emulate 1 --emulate-dir "$W/cards" --cuid $CUID3 --server "$URL" --user alice \
    --password-file "$W/alice.pw" --new-pin-file "$W/pin1" --no-retry enroll >"$W/tc.out" 2>&1
rc=$?
[ "$(max_per_key)" = 1 ] || it_fail "CA 1 hung: a key was certified twice"
hung=$(cat "$W/ca1.requests" | grep -c ' fault=hang-request')
[ "$hung" -ge 1 ] || it_fail "the hang fault was not applied: $(cat "$W/ca1.requests")"
st=$(token_attr $CUID3 tokenStatus)
if [ "$rc" = 0 ]; then
    [ "$st" = ACTIVE ] || it_fail "CA 1 hung: success but token $st"
    [ "$(cert_count $CUID3)" = 2 ] || it_fail "CA 1 hung: success with $(cert_count $CUID3) certificate entries"
    it_log "enroll with CA 1 hung: success (reconciled), one certificate per key"
else
    [ "$st" != ACTIVE ] || it_fail "CA 1 hung: failure but token ACTIVE"
    grep -q "op.end .*cuid=$CUID3 .*result=failure" "$W/audit.log" || it_fail "CA 1 hung: failure not audited"
    grep -q "enroll.reconcile .*cuid=$CUID3" "$W/audit.log" \
        || grep -q "session.end .*cuid=$CUID3 .*status=10" "$W/gw.log" \
        || it_fail "CA 1 hung: failure without a reconcile record: $(grep $CUID3 "$W/audit.log")"
    # every certificate the CA issued for this card is recorded in the token DB
    [ "$(( $(issued) - before ))" = "$(cert_count $CUID3)" ] \
        || it_fail "CA 1 hung: $(( $(issued) - before )) issued, $(cert_count $CUID3) recorded"
    # the call whose outcome is unknown stays recorded as an open intent for reconciliation
    [ "$(intent_count $CUID3)" -ge 1 ] || it_fail "CA 1 hung: no open enrollment intent recorded"
    it_log "enroll with CA 1 hung: clean recorded failure (exit $rc), no duplicate:" \
        "$(grep "op.end .*cuid=$CUID3" "$W/audit.log" | sed 's/.* why=//' | cut -c1-240)"
fi

if grep -q "$(cat "$W/pin1")\|$(cat "$W/pin2")\|alice-secret" "$W/gw.log" "$W/audit.log"; then
    it_fail "a PIN or password reached the logs"
fi
it_stop tpsgw2
if grep -qE 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' "$W/tpsgw.log" "$W/tpsgw2.log"; then
    it_fail "sanitizer report from tpsgw: $(cat "$W/tpsgw.log" "$W/tpsgw2.log")"
fi
it_ok "46-tpsgw-enroll"
