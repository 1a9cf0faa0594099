#!/bin/sh
# tests/integration/48-tpsgw-recovery.sh - key recovery through the tpsgw daemon (topology of
# lib/tpsgw-enroll.sh): alice's card is enrolled (encryption key made and archived on the KRA),
# then marked lost in the token DB as the admin path does (tokenStatus PERM_LOST, tokenReason
# keyCompromise, with ldapmodify); her replacement card is enrolled: the encryption key is
# recovered from the KRA (TokenKeyRecovery, the same public key) under a new certificate, the
# signing key is new, and each key is certified exactly once per card.
set -u
. "$(dirname "$0")/lib/lib.sh"
. "$(dirname "$0")/lib/pcsc.sh"
. "$IT_TOP/tests/sim/simtest.sh"
it_need slapd ldapsearch ldapmodify curl openssl pkcs11-tool opensc-tool base64
. "$(dirname "$0")/lib/tpsgw-enroll.sh"

# keyhash PROFILE CUID: the pubkey hash of the CA enrollment of that profile for that card
keyhash() {
    cat "$W/ca1.requests" "$W/ca2.requests" | grep ' op=enrollment ' | grep " profile=$1 " \
        | grep "cuid=$2" | grep ' serial=' | sed -n 's/.* pubkey=\([0-9a-f]*\).*/\1/p'
}
serial_of() {
    cat "$W/ca1.requests" "$W/ca2.requests" | grep ' op=enrollment ' | grep " profile=$1 " \
        | grep "cuid=$2" | sed -n 's/.* serial=\([0-9]*\).*/\1/p'
}
ENC=caTokenUserEncryptionKeyEnrollment
SIG=caTokenUserSigningKeyEnrollment

# ---- 1. the first card
A=40907901001F48000001
tc $A 0 enroll --new-pin-file "$W/pin1"
[ "$(token_attr $A tokenStatus)" = ACTIVE ] || it_fail "card A not ACTIVE"
ENC_A=$(keyhash $ENC $A)
[ -n "$ENC_A" ] || it_fail "no encryption certificate for card A"

# ---- 2. card A is lost (key compromise): the admin path writes status and reason
ldapmodify -x -H "$URI1" -D "$ROOTDN" -y "$ROOTPW_FILE" >"$W/lost.log" 2>&1 <<LDIF || it_fail "ldapmodify: $(cat "$W/lost.log")"
dn: cn=$A,ou=Tokens,$BASEDN
changetype: modify
replace: tokenStatus
tokenStatus: PERM_LOST
-
replace: tokenReason
tokenReason: keyCompromise
LDIF
[ "$(token_attr $A tokenStatus)" = PERM_LOST ] || it_fail "card A not PERM_LOST"

# ---- 3. the replacement card: encryption key recovered, signing key new
B=40907901001F48000002
tc $B 0 enroll --new-pin-file "$W/pin2"
[ "$(token_attr $B tokenStatus)" = ACTIVE ] || it_fail "card B not ACTIVE"
grep -q "enroll.plan .*cuid=$B keyType=encryption action=recover" "$W/gw.log" \
    || it_fail "the encryption key of B was not planned for recovery: $(grep "enroll.plan .*cuid=$B" "$W/gw.log")"
[ "$(cat "$W/kra1.requests" "$W/kra2.requests" | grep ' op=TokenKeyRecovery ' | grep -c ' status=0')" = 1 ] \
    || it_fail "the KRA did not recover exactly one key: $(cat "$W"/kra?.requests)"
[ "$(keyhash $ENC $B)" = "$ENC_A" ] || it_fail "card B's encryption key is not card A's ($(keyhash $ENC $B) != $ENC_A)"
[ "$(serial_of $ENC $B)" != "$(serial_of $ENC $A)" ] || it_fail "card B reuses card A's certificate"
[ "$(keyhash $SIG $B)" != "$(keyhash $SIG $A)" ] || it_fail "card B's signing key is card A's"
[ "$(cert_count $B)" = 2 ] || it_fail "card B: $(cert_count $B) certificate entries"
[ "$(max_per_key)" = 2 ] || it_fail "a key certified $(max_per_key) times (the recovered key: once per card)"
[ "$(token_attr $A tokenStatus)" = PERM_LOST ] || it_fail "card A's status changed by the enroll"

# the recovered key is on card B: the card decrypts what card A's certificate encrypted
CARD=$W/cards/card-$B.vtoken
it_pcscd_start pcscd
it_vtoken_start vt "$CARD" 0
it_pcsc_wait_card 0 10
OPENSC=${OPENSC_MODULE:-/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so}
[ -f "$OPENSC" ] || it_fail "OpenSC module $OPENSC missing: run 'make deps'"
ldq "ou=Certificates,$BASEDN" "(&(tokenID=$A)(tokenKeyType=encryption))" userCertificate\;binary \
    | sed -n 's/^userCertificate;binary:: //p' | head -1 | base64 -d >"$W/a-enc.der" 2>/dev/null
[ -s "$W/a-enc.der" ] || it_fail "no DER of card A's encryption certificate in the token DB"
openssl x509 -inform DER -in "$W/a-enc.der" -noout -pubkey >"$W/a-enc.pub"
head -c 32 /dev/urandom >"$W/m"
openssl pkeyutl -encrypt -pubin -inkey "$W/a-enc.pub" -in "$W/m" -out "$W/m.enc"
pkcs11-tool --module "$OPENSC" --slot-index 0 --decrypt --login --pin "$(cat "$W/pin2")" \
    --id 02 -m RSA-PKCS -i "$W/m.enc" -o "$W/m.dec" >"$W/dec.log" 2>&1 \
    || it_fail "card B cannot decrypt: $(cat "$W/dec.log")"
cmp -s "$W/m" "$W/m.dec" || it_fail "card B does not hold card A's encryption key"
it_log "card B decrypts what card A's encryption certificate encrypted"
it_stop vt
it_stop tpsgw
if grep -qE 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' "$W/tpsgw.log"; then
    it_fail "sanitizer report from tpsgw: $(cat "$W/tpsgw.log")"
fi
it_ok "48-tpsgw-recovery"
