#!/bin/sh
# tests/integration/11-sim-tks.sh - two pki-sim TKS clones over HTTPS with client-certificate
# authentication: session keys and cryptograms of the spec vectors (developer keys, and a
# master key read from a SoftHSM2 token both clones share), key set data, encryptData,
# computeRandomData, error statuses, and refusal of callers without the agent certificate.
. "$(dirname "$0")/lib/lib.sh"
. "$IT_TOP/tests/sim/simtest.sh"
trap it_cleanup EXIT INT TERM
it_need curl openssl perl softhsm2-util
it_workdir >/dev/null  # sets IT_WORKDIR in this shell ($(...) would not)
W=$IT_WORKDIR
sim_certs

# A private SoftHSM2 token holding master key #02#01 and the TPS shared secret.
export SOFTHSM2_CONF="$W/softhsm2.conf"
mkdir -p "$W/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\n' "$W/tokens" >"$SOFTHSM2_CONF"
softhsm2-util --init-token --free --label tks-test --so-pin 87654321 --pin 1234 >/dev/null \
    || it_fail "softhsm2-util --init-token"
(umask 077 && printf 1234 >"$W/pin" && echo 0123456789ABCDEFFEDCBA9876543210 >"$W/mk.hex" \
    && echo 000102030405060708090A0B0C0D0E0F >"$W/shared.hex")
P11=/usr/lib/softhsm/libsofthsm2.so
"$SIM_BIN" --p11-import --module $P11 --token tks-test --label '#02#01' --type des3 \
    --key-file "$W/mk.hex" --pin-file "$W/pin" || it_fail "import of the master key"
"$SIM_BIN" --p11-import --module $P11 --token tks-test --label 'TPS-localhost-7889 sharedSecret' \
    --type aes --key-file "$W/shared.hex" --pin-file "$W/pin" || it_fail "import of the secret"

for n in tks1 tks2; do
    sim_conf $n tks
    cat >>"$W/$n.cfg" <<CFG
tks.defaultSlot=tks-test
pkisim.tks.pkcs11.module=$P11
pkisim.tks.pkcs11.pin_file=$W/pin
tks.defKeySet.nistSP800-108KdfOnKeyVersion=FF
tps.list=0
tps.0.host=localhost
tps.0.port=7889
tps.0.userid=TPS-localhost-7889
tps.0.nickname=TPS-localhost-7889 sharedSecret
CFG
done
# tks1 takes the shared secret from a file and knows a second agent outside the TKS group;
# tks2 reads the shared secret from the token.
cat >>"$W/tks1.cfg" <<CFG
tps.0.sharedSecret_file=$W/shared.hex
pkisim.agent.2.userid=Someone-Else
pkisim.agent.2.certFile=$SIM_CERTS/other.crt
pkisim.agent.2.groups=Certificate Manager Agents
CFG
sim_start tks1 tks
sim_start tks2 tks

CUID=$(url_of_hex 40907901001F12345678)
CSK=/tks/agent/tks/computeSessionKey

# backends §3.3/§3.6: developer keys, the wrapped S-ENC is fixed by the spec.
BODY="serversideKeygen=false&KDD=$CUID&tokencuid=$CUID&card_challenge=$(url_of_hex 1122334455667788)&host_challenge=$(url_of_hex 0102030405060708)&KeyInfo=%2301%2301&card_cryptogram=$(url_of_hex 1ACFFD8A33DC7004)&keySet=defKeySet"
for n in tks1 tks2; do
    sim_post $n $CSK "$BODY"
    [ "$SIM_HTTP" = 200 ] || it_fail "$n scp01: HTTP $SIM_HTTP"
    [ "$(sim_field status)" = 0 ] || it_fail "$n scp01: $(cat "$W/out")"
    [ "$(sim_hex hostCryptogram)" = 05757F5B4D19D6C4 ] || it_fail "$n: host cryptogram"
    [ "$(sim_hex encSessionKey)" = 9C8320888AB87CFB4034192F6A246F9E ] || it_fail "$n: S-ENC"
    [ "$(sim_hex sessionKey)" = 9C8320888AB87CFB4034192F6A246F9E ] || it_fail "$n: S-MAC"
done

# card spec §5.2 on the card's own challenges.
sim_post tks2 $CSK "serversideKeygen=false&tokencuid=$CUID&card_challenge=$(url_of_hex B969B0CA37272F89)&host_challenge=$(url_of_hex 2FB79FB704FA60E8)&KeyInfo=%2301%2301&card_cryptogram=$(url_of_hex 1FC1D8148FF13457)"
[ "$(sim_hex hostCryptogram)" = 6F473DED1B8BC3EA ] || it_fail "§5.2 host cryptogram: $(cat "$W/out")"

# card spec §5.3: master key #02#01 from the SoftHSM2 token (VISA2 diversification).
for n in tks1 tks2; do
    sim_post $n $CSK "serversideKeygen=false&KDD=$CUID&tokencuid=$CUID&card_challenge=$(url_of_hex B969B0CA37272F89)&host_challenge=$(url_of_hex 2FB79FB704FA60E8)&KeyInfo=%2302%2301&card_cryptogram=$(url_of_hex 98B1331F89C8C112)"
    [ "$(sim_field status)" = 0 ] || it_fail "$n master key: $(cat "$W/out")"
    [ "$(sim_hex hostCryptogram)" = 5DE0189907E81A8F ] || it_fail "$n master key: host cryptogram"
done
# ... and the PUT KEY key set data that moves a developer card to version 2.
sim_post tks2 /tks/agent/tks/createKeySetData "newKeyInfo=%2302%2301&KDD=$CUID&tokencuid=$CUID&KeyInfo=%2301%2301&keySet=defKeySet&protocol=1"
[ "$(sim_hex keySetData)" = 028110"63F8D0B8D6857D529F6C40C1DF1CE323"03A35F3D8110"35046C15A9ED96070E2CE61ADF00DFB7"036C73BA8110"6F3C5C865B9084559AB45BF38549B8A5"0374DDDC ] \
    || it_fail "key set data: $(cat "$W/out")"
# a version whose master key the token lacks: status 1
sim_post tks1 $CSK "serversideKeygen=false&KDD=$CUID&tokencuid=$CUID&card_challenge=$(url_of_hex B969B0CA37272F89)&host_challenge=$(url_of_hex 2FB79FB704FA60E8)&KeyInfo=%2303%2301&card_cryptogram=$(url_of_hex 98B1331F89C8C112)"
[ "$(cat "$W/out")" = status=1 ] || it_fail "missing master key: $(cat "$W/out")"

# card spec §5.5 (shipped EMV profile): SCP03 host cryptogram.
sim_post tks1 $CSK "serversideKeygen=false&KDD=$CUID&tokencuid=$CUID&card_challenge=$(url_of_hex B969B0CA37272F89)&host_challenge=$(url_of_hex 2FB79FB704FA60E8)&KeyInfo=%2301%2303%2300&protocol=3&card_cryptogram=$(url_of_hex 937AC68E513FDEE3)"
[ "$(sim_hex hostCryptogram)" = 321BA95CC487A401 ] || it_fail "scp03: $(cat "$W/out")"
# SCP02 ENC session key (backends §3.4) unwrapped with the shared secret.
sim_post tks2 $CSK "serversideKeygen=false&KDD=$CUID&tokencuid=$CUID&KeyInfo=%23FF%2302&keySet=defKeySet&protocol=2&sequenceCounter=%2300%2310&derivationConstant=%2301%2382"
[ "$(sim_field status)" = 0 ] || it_fail "scp02: $(cat "$W/out")"
K=$(sim_hex sessionKey | perl -ne 'print pack("H*", $_)' | openssl enc -d -aes-128-cbc -nopad \
    -K 000102030405060708090A0B0C0D0E0F -iv 00000000000000000000000000000000 | od -An -tx1 \
    | perl -ne 'for (split) { printf "%02X", hex($_) & 0xFE }')
[ "$K" = "$(echo 9DCFBA55D0D2D1F93A76F4E664AC7557 | perl -ne 'chomp; for (unpack "(A2)*") { printf "%02X", hex($_) & 0xFE }')" ] \
    || it_fail "scp02 ENC session key: $K"

# encryptData (random plaintext returned) and computeRandomData.
sim_post tks1 /tks/agent/tks/encryptData "data=&tokencuid=$CUID&KDD=$CUID&KeyInfo=%2301%2301&keySet=defKeySet&protocol=1"
D=$(sim_hex data)
[ ${#D} = 32 ] || it_fail "encryptData: $(cat "$W/out")"
E=$(echo "$D" | perl -ne 'chomp; print pack("H*", $_)' | openssl enc -e -des-ede3 -nopad \
    -K 404142434445464748494A4B4C4D4E4F4041424344454647 | od -An -tx1 | tr -d ' \n' \
    | tr a-f A-F)
[ "$(sim_hex encryptedData)" = "$E" ] || it_fail "encryptData ciphertext"
sim_post tks2 /tks/agent/tks/computeRandomData "dataNumBytes=16"
[ "$(sim_field status)" = 0 ] && [ "$(sim_hex randomData | wc -c)" = 32 ] \
    || it_fail "computeRandomData: $(cat "$W/out")"
sim_post tks2 /tks/agent/tks/computeRandomData "dataNumBytes=2000"
[ "$(cat "$W/out")" = status=1 ] || it_fail "computeRandomData size check"

# Bad requests: no serversideKeygen (servlet error), short CUID (status 3).
sim_post tks1 $CSK "tokencuid=$CUID&card_challenge=$(url_of_hex 1122334455667788)&host_challenge=$(url_of_hex 0102030405060708)&KeyInfo=%2301%2301&card_cryptogram=$(url_of_hex 1ACFFD8A33DC7004)"
[ "$SIM_HTTP" = 500 ] || it_fail "missing serversideKeygen: HTTP $SIM_HTTP"
sim_post tks1 $CSK "serversideKeygen=false&tokencuid=%2340%2390&card_challenge=$(url_of_hex 1122334455667788)&host_challenge=$(url_of_hex 0102030405060708)&KeyInfo=%2301%2301&card_cryptogram=$(url_of_hex 1ACFFD8A33DC7004)"
[ "$(cat "$W/out")" = status=3 ] || it_fail "short CUID: $(cat "$W/out")"

# Authentication (backends §7): only the configured agent certificate gets an answer.
sim_post tks2 /tks/agent/tks/computeRandomData "dataNumBytes=8" other
[ "$SIM_HTTP" = 401 ] || it_fail "unmapped certificate: HTTP $SIM_HTTP"
sim_post tks1 /tks/agent/tks/computeRandomData "dataNumBytes=8" other
[ "$SIM_HTTP" = 200 ] && [ "$(cat "$W/out")" = unauthorized= ] \
    || it_fail "agent outside the TKS group: HTTP $SIM_HTTP $(cat "$W/out")"
sim_post tks1 /tks/agent/tks/computeRandomData "dataNumBytes=8" foreign
[ "$SIM_RC" != 0 ] && [ "$SIM_HTTP" = 000 ] || it_fail "foreign CA accepted (HTTP $SIM_HTTP)"
sim_post tks1 /tks/agent/tks/computeRandomData "dataNumBytes=8" none
[ "$SIM_RC" != 0 ] && [ "$SIM_HTTP" = 000 ] || it_fail "no client certificate accepted"
STATS=$(sim_admin tks1 GET /sim/stats)
echo "$STATS" | grep -qx 'tls_rejected=2' || it_fail "stats: $STATS"

# Every processed request is logged once, with its operation.
[ "$(grep -c ' op=scp01 ' "$W/tks1.requests")" = 5 ] || it_fail "tks1 request log: $(cat "$W/tks1.requests")"
[ "$(grep -c ' op=scp01 ' "$W/tks2.requests")" = 3 ] || it_fail "tks2 request log"
grep -q 'op=unauthenticated' "$W/tks2.requests" || it_fail "401 not logged"

sim_check_logs
it_ok "11-sim-tks"
