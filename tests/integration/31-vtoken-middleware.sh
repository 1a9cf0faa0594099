#!/bin/sh
# tests/integration/31-vtoken-middleware.sh - the proof that vtoken is real enough: two cards
# personalised through their APDUs like a TPS does (SCP01 + RSA-1024 on slot 0, SCP03 +
# RSA-2048 on slot 1), then Debian's coolkey PKCS#11 module and OpenSC's module list the
# certificate and the private key, and a signature made through each verifies with the
# certificate's public key.
set -u
. "$(dirname "$0")/lib/lib.sh"
. "$(dirname "$0")/lib/pcsc.sh"
trap it_cleanup EXIT INT TERM
it_need pkcs11-tool openssl opensc-tool
COOLKEY=${COOLKEY_MODULE:-/usr/lib/pkcs11/libcoolkeypk11.so}
OPENSC=${OPENSC_MODULE:-/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so}
[ -f "$COOLKEY" ] || it_fail "coolkey module $COOLKEY missing: run 'make deps'"
[ -f "$OPENSC" ] || it_fail "OpenSC module $OPENSC missing: run 'make deps'"
PERSO=$BUILD/tests/integration/vtoken-personalise
[ -x "$PERSO" ] || it_fail "$PERSO not built"
it_workdir >/dev/null
W=$IT_WORKDIR
# private caches: coolkey and OpenSC must read the card, not a previous run
export HOME="$W/home"
mkdir -p "$HOME" "$W/c0" "$W/c1"
PIN=31415926
printf '%s\n' "$PIN" >"$W/pin"
chmod 600 "$W/pin"

it_pcscd_start pcscd
# one vtoken process serves both cards, each on its slot
cards() {
    it_vtoken_start "$1" "$W/a.card" 0 --set cuid=40907901001F00000031 \
        --state "$W/b.card" --port $((IT_PCSC_PORT + 1)) --set cuid=40907901001F00000032 \
        --set proto=3
}
cards vt
it_pcsc_wait_card 0 10
it_pcsc_wait_card 1 10

"$PERSO" --reader "$(it_pcsc_reader 0)" --pin-file "$W/pin" --out "$W/c0" --proto 1 \
    --bits 1024 --label "Card zero" --token-name "vtoken zero" || it_fail "personalise slot 0"
"$PERSO" --reader "$(it_pcsc_reader 1)" --pin-file "$W/pin" --out "$W/c1" --proto 3 \
    --bits 2048 --label "Card one" --token-name "vtoken one" || it_fail "personalise slot 1"
# the cards survive a restart of their vtoken (the middleware then reads the reloaded state)
it_stop vt
it_pcsc_wait_nocard 0 10
it_pcsc_wait_nocard 1 10
cards vt2
it_pcsc_wait_card 0 10
it_pcsc_wait_card 1 10
"$BUILD/bin/vtoken" --show "$W/a.card" | tee "$W/show0.txt"
grep -q 'life cycle 0F' "$W/show0.txt" || it_fail "slot 0 not personalised (life cycle)"
grep -q 'c1 fixed 00000091 class 1 id 1 attrs 2 label "Card zero"' "$W/show0.txt" ||
    it_fail "slot 0: z0 does not hold c1 as written"

# check MODULE SLOTINDEX LABEL CERTDIR BITS
check() {
    m=$1; slot=$2; label=$3; dir=$4; bits=$5; tag=$(basename "$m" .so)-$slot
    pkcs11-tool --module "$m" -L >"$W/$tag.slots" 2>&1 || it_fail "$tag: listing slots failed"
    pkcs11-tool --module "$m" --slot-index "$slot" --login --pin "$PIN" -O \
        >"$W/$tag.objects" 2>&1 || { cat "$W/$tag.objects"; it_fail "$tag: listing objects"; }
    cat "$W/$tag.objects"
    grep -q 'Certificate Object' "$W/$tag.objects" || it_fail "$tag: no certificate"
    grep -q 'Private Key Object' "$W/$tag.objects" || it_fail "$tag: no private key"
    grep -q "label: *$label" "$W/$tag.objects" || it_fail "$tag: label '$label' not shown"
    # the certificate read through the module is the one written
    pkcs11-tool --module "$m" --slot-index "$slot" --read-object --type cert --id 01 \
        -o "$W/$tag.der" >/dev/null 2>&1 || it_fail "$tag: cannot read the certificate"
    openssl x509 -inform DER -in "$W/$tag.der" -noout -fingerprint -sha256 >"$W/$tag.fp1"
    openssl x509 -in "$dir/cert.pem" -noout -fingerprint -sha256 >"$W/$tag.fp2"
    cmp -s "$W/$tag.fp1" "$W/$tag.fp2" || it_fail "$tag: certificate differs from the one written"
    # sign with the card's key (COMPUTE CRYPT; RSA-2048 uses the I/O-buffer form)
    head -c 32 /dev/urandom >"$W/$tag.data"
    pkcs11-tool --module "$m" --slot-index "$slot" --sign --login --pin "$PIN" --id 01 \
        -m RSA-PKCS -i "$W/$tag.data" -o "$W/$tag.sig" >"$W/$tag.sign.log" 2>&1 ||
        { cat "$W/$tag.sign.log"; it_fail "$tag: signing failed"; }
    [ "$(wc -c <"$W/$tag.sig")" -eq $((bits / 8)) ] || it_fail "$tag: signature length"
    openssl x509 -in "$dir/cert.pem" -noout -pubkey >"$W/$tag.pub"
    openssl pkeyutl -verify -pubin -inkey "$W/$tag.pub" -in "$W/$tag.data" \
        -sigfile "$W/$tag.sig" || it_fail "$tag: signature does not verify"
    # a wrong PIN is refused
    if pkcs11-tool --module "$m" --slot-index "$slot" --sign --login --pin 00000000 --id 01 \
        -m RSA-PKCS -i "$W/$tag.data" -o "$W/$tag.bad" >/dev/null 2>&1; then
        it_fail "$tag: signing with a wrong PIN worked"
    fi
    it_log "$tag: certificate listed, signature verified"
}

check "$COOLKEY" 0 "Card zero" "$W/c0" 1024
check "$COOLKEY" 1 "Card one" "$W/c1" 2048
check "$OPENSC" 0 "Card zero" "$W/c0" 1024
check "$OPENSC" 1 "Card one" "$W/c1" 2048
# wrong PINs cost tries (a good login restores them), and never block the card here
"$BUILD/bin/vtoken" --show "$W/b.card" | grep 'pin 0' | tee "$W/tries.txt"
grep -Eq 'pin 0 +tries 12[0-6] of 127$' "$W/tries.txt" || it_fail "PIN try counter"
it_ok "31-vtoken-middleware"
