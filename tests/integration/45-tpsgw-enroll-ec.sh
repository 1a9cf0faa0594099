#!/bin/sh
# tests/integration/45-tpsgw-enroll-ec.sh - EC P-256 card keys end to end (topology of
# lib/tpsgw-enroll.sh): a token type whose two keys are EC (keyGen.<kt>.alg=5, keySize=256,
# made on the card with GENERATE KEY ECC) is refused with server-side keygen, then a fresh card
# served by vtoken through pcscd+vpcd is enrolled with `tokenclient --reader`: the CA certified
# each EC key once, the token DB has both certificates; OpenSC's PKCS#11 module lists two EC
# private keys and two certificates, and an ECDSA signature made through it (COMPUTE ECC
# SIGNATURE, INS 38 in OpenSC's numbering) verifies with each certificate's public key. Debian's
# coolkey module has no ECC, so OpenSC is the middleware for EC cards.
set -u
. "$(dirname "$0")/lib/lib.sh"
. "$(dirname "$0")/lib/pcsc.sh"
. "$IT_TOP/tests/sim/simtest.sh"
it_need slapd ldapsearch curl openssl pkcs11-tool opensc-tool
OPENSC=${OPENSC_MODULE:-/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so}
[ -f "$OPENSC" ] || it_fail "OpenSC module $OPENSC missing: run 'make deps'"
. "$(dirname "$0")/lib/tpsgw-enroll.sh"

# ---- 1. the userKey token type of the lib, with EC P-256 keys made on the card
it_stop tpsgw
sed -e '/^op\.enroll\.userKey\.keyGen\./d' "$W/tpsgw.cfg" >"$W/tpsgw-ec.cfg"
cat >>"$W/tpsgw-ec.cfg" <<'CFG'
op.enroll.userKey.keyGen.keyType.num=2
op.enroll.userKey.keyGen.keyType.value.0=signing
op.enroll.userKey.keyGen.keyType.value.1=encryption
op.enroll.userKey.keyGen.signing.certId=C1
op.enroll.userKey.keyGen.signing.alg=5
op.enroll.userKey.keyGen.signing.keySize=256
op.enroll.userKey.keyGen.signing.label=signing key for $userid$
op.enroll.userKey.keyGen.signing.ca.profileId=caTokenUserSigningKeyEnrollment
op.enroll.userKey.keyGen.encryption.certId=C2
op.enroll.userKey.keyGen.encryption.alg=5
op.enroll.userKey.keyGen.encryption.keySize=256
op.enroll.userKey.keyGen.encryption.label=encryption key for $userid$
op.enroll.userKey.keyGen.encryption.ca.profileId=caTokenUserEncryptionKeyEnrollment
CFG
# EC with server-side keygen is refused when the configuration is checked, with the fix named
{ cat "$W/tpsgw-ec.cfg"; echo "op.enroll.userKey.keyGen.encryption.serverKeygen.enable=true"; } \
    >"$W/tpsgw-ec-sskg.cfg"
if "$TPSGW" -t -c "$W/tpsgw-ec-sskg.cfg" >"$W/check-sskg.log" 2>&1; then
    it_fail "tpsgw -t accepted EC keys with serverKeygen.enable=true"
fi
grep -q 'serverKeygen.enable=false' "$W/check-sskg.log" \
    || it_fail "EC + serverKeygen refused without saying what to do: $(cat "$W/check-sskg.log")"
"$TPSGW" -t -c "$W/tpsgw-ec.cfg" >"$W/check-ec.log" 2>&1 || it_fail "tpsgw -t (EC): $(cat "$W/check-ec.log")"
it_start tpsgw-ec "$TPSGW" -c "$W/tpsgw-ec.cfg"
it_wait_tcp 127.0.0.1 "$HTTP" 10
it_log "EC token type: checked (and refused with serverKeygen), tpsgw started"

# ---- 2. enroll a fresh card through PC/SC (pcscd + vpcd + vtoken)
it_pcscd_start pcscd
R0=$(it_pcsc_reader 0)
CUID=40907901001F45000001
CARD=$W/ec.vtoken
it_vtoken_start vt "$CARD" 0 --set cuid=$CUID
it_pcsc_wait_card 0 10
"$TC" --server "$URL" --reader "$R0" --user alice --password-file "$W/alice.pw" --no-retry \
    --new-pin-file "$W/pin1" enroll >"$W/pc.out" 2>&1 \
    || it_fail "enroll (EC) through PC/SC: $(cat "$W/pc.out"; tail -5 "$W/gw.log")"
[ "$(token_attr $CUID tokenStatus)" = ACTIVE ] || it_fail "EC enroll: token $(token_attr $CUID tokenStatus)"
[ "$(cert_count $CUID)" = 2 ] || it_fail "EC enroll: $(cert_count $CUID) certificate entries, want 2"
[ "$(issued)" = 2 ] || it_fail "EC enroll: CA issued $(issued) certificates for 2 slots"
[ "$(max_per_key)" = 1 ] || it_fail "EC enroll: a key was certified $(max_per_key) times"
grep -q "op.end .*op=enroll cuid=$CUID .*result=success" "$W/audit.log" || it_fail "no op.end success"
"$BUILD/bin/vtoken" --show "$CARD" >"$W/show.txt" 2>&1
[ "$(grep -c 'private EC-256' "$W/show.txt")" = 2 ] || it_fail "card has not 2 EC-256 private keys: $(cat "$W/show.txt")"
it_log "EC enroll through PC/SC: ACTIVE, 2 certificates, 2 EC-256 key pairs on the card"

# ---- 3. the middleware: list, ECDSA-sign through the card, verify with the certificate
# check MODULE TAG PIN
check() {
    m=$1; tag=$2; pin=$3
    pkcs11-tool --module "$m" --slot-index 0 --login --pin "$pin" -O >"$W/$tag.objects" 2>&1 \
        || it_fail "$tag: listing objects: $(cat "$W/$tag.objects")"
    [ "$(grep -c 'Certificate Object' "$W/$tag.objects")" = 2 ] || it_fail "$tag: not 2 certificates: $(cat "$W/$tag.objects")"
    [ "$(grep -c 'Private Key Object; EC' "$W/$tag.objects")" = 2 ] || it_fail "$tag: not 2 EC private keys: $(cat "$W/$tag.objects")"
    for id in 01 02; do
        pkcs11-tool --module "$m" --slot-index 0 --read-object --type cert --id $id \
            -o "$W/$tag.$id.der" >/dev/null 2>&1 || it_fail "$tag: cannot read certificate $id"
        openssl x509 -inform DER -in "$W/$tag.$id.der" -out "$W/$tag.$id.pem" \
            || it_fail "$tag: certificate $id unreadable"
        openssl verify -CAfile "$W/pki/ca.crt" -purpose any "$W/$tag.$id.pem" >/dev/null \
            || it_fail "$tag: certificate $id not issued by the CA"
        openssl x509 -in "$W/$tag.$id.pem" -noout -text | grep -q 'NIST CURVE: P-256' \
            || it_fail "$tag: certificate $id is not for a P-256 key"
        openssl x509 -in "$W/$tag.$id.pem" -noout -pubkey >"$W/$tag.pub"
        # the public key object is the certificate's key
        pkcs11-tool --module "$m" --slot-index 0 --read-object --type pubkey --id $id \
            -o "$W/$tag.$id.pubkey.der" >/dev/null 2>&1 || it_fail "$tag: cannot read public key $id"
        openssl pkey -pubin -in "$W/$tag.pub" -outform DER -out "$W/$tag.$id.certkey.der"
        cmp -s "$W/$tag.$id.pubkey.der" "$W/$tag.$id.certkey.der" \
            || it_fail "$tag: public key object $id differs from its certificate's key"
        [ $id = 01 ] || continue # the encryption key (derive only) does not sign
        head -c 100 /dev/urandom >"$W/$tag.data"
        openssl dgst -sha256 -binary "$W/$tag.data" >"$W/$tag.hash"
        pkcs11-tool --module "$m" --slot-index 0 --sign --login --pin "$pin" --id $id \
            -m ECDSA --signature-format openssl -i "$W/$tag.hash" -o "$W/$tag.sig" \
            >"$W/$tag.sign.log" 2>&1 || it_fail "$tag: ECDSA with key $id: $(cat "$W/$tag.sign.log")"
        openssl pkeyutl -verify -pubin -inkey "$W/$tag.pub" -in "$W/$tag.hash" \
            -sigfile "$W/$tag.sig" >/dev/null \
            || it_fail "$tag: ECDSA signature of key $id does not verify with its certificate"
    done
    it_log "$tag: 2 EC keys and certificates; an ECDSA signature verifies with the certificate"
}
check "$OPENSC" opensc "$(cat "$W/pin1")"
# a wrong PIN does not sign
head -c 32 /dev/urandom >"$W/x.hash"
if pkcs11-tool --module "$OPENSC" --slot-index 0 --sign --login --pin "$(cat "$W/pin2")" \
    --id 01 -m ECDSA -i "$W/x.hash" -o "$W/x.sig" >/dev/null 2>&1; then
    it_fail "opensc: ECDSA with a wrong PIN accepted"
fi
# Debian's coolkey 1.1.0 predates ECC in coolkey (its libckyapplet has no COMPUTE ECC
# SIGNATURE and it reads every key as RSA, so it loads no object of an EC token): EC cards
# are used through OpenSC (docs/vtoken.md).
it_stop vt
it_pcsc_wait_nocard 0 10

if grep -q "$(cat "$W/pin1")\|alice-secret" "$W/gw.log" "$W/audit.log"; then
    it_fail "a PIN or password reached the logs"
fi
it_stop tpsgw-ec
if grep -qE 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' "$W/tpsgw-ec.log" "$W/vt.log"; then
    it_fail "sanitizer report: $(cat "$W/tpsgw-ec.log" "$W/vt.log")"
fi
it_ok "45-tpsgw-enroll-ec"
