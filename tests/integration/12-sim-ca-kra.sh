#!/bin/sh
# tests/integration/12-sim-ca-kra.sh - two pki-sim CA clones and two KRA clones sharing their
# records through the replicated OpenLDAP pair: real X.509 issuance from per-clone serial
# ranges, a certificate issued on one clone revoked on the other, hold and release across
# clones, renewal, retrieval; server-side key generation with archival on one KRA and
# recovery by key id and by certificate on the other; error statuses of backends §4-5.
. "$(dirname "$0")/lib/lib.sh"
. "$(dirname "$0")/lib/ldap.sh"
. "$IT_TOP/tests/sim/simtest.sh"
trap it_cleanup EXIT INT TERM
it_need curl openssl perl base64
it_workdir >/dev/null
W=$IT_WORKDIR
sim_certs
LDAP_SUFFIXES="dc=example,dc=com o=pki-sim" it_ldap_pair_start
"$SIM_BIN" --init-ca "$W/pki" || it_fail "--init-ca"
"$SIM_BIN" --init-kra "$W/pki" || it_fail "--init-kra"
[ "$(stat -c %a "$W/pki/ca.key")" = 600 ] || it_fail "CA key readable by others"

# Clone 1 writes to LDAP node 1 first, clone 2 to node 2: records cross by replication.
sim_conf ca1 ca
sim_store_conf ca1 "ou=ca,o=pki-sim" 1 ffff 1 9999 "$LDAP1_URI $LDAP2_URI"
sim_conf ca2 ca
sim_store_conf ca2 "ou=ca,o=pki-sim" 10000 1ffff 10000 19999 "$LDAP2_URI $LDAP1_URI"
for n in ca1 ca2; do
    cat >>"$W/$n.cfg" <<CFG
pkisim.ca.signingCertFile=$W/pki/ca.crt
pkisim.ca.signingKeyFile=$W/pki/ca.key
pkisim.agent.2.userid=Someone-Else
pkisim.agent.2.certFile=$SIM_CERTS/other.crt
pkisim.agent.2.groups=Token Key Service Manager Agents
CFG
done
sim_conf kra1 kra
sim_store_conf kra1 "ou=kra,o=pki-sim" 1 ffff 1 9999 "$LDAP1_URI $LDAP2_URI"
sim_conf kra2 kra
sim_store_conf kra2 "ou=kra,o=pki-sim" 10000 1ffff 10000 19999 "$LDAP2_URI $LDAP1_URI"
for n in kra1 kra2; do
    cat >>"$W/$n.cfg" <<CFG
pkisim.kra.transportKeyFile=$W/pki/kra-transport.key
pkisim.kra.storageKeyFile=$W/pki/kra-storage.key
pkisim.agent.2.userid=Someone-Else
pkisim.agent.2.certFile=$SIM_CERTS/other.crt
pkisim.agent.2.groups=Certificate Manager Agents
CFG
done
for n in ca1 ca2 kra1 kra2; do sim_start $n ${n%?}; done

ENROLL=/ca/ee/ca/profileSubmitSSLClient
# spki FILE: URL(base64(DER SubjectPublicKeyInfo)) of a private key file
spki() {
    url_of_text "$(openssl pkey -in "$1" -pubout -outform DER | base64 -w 64)"
}
# enroll CLONE KEYFILE USER [PROFILE]: sets SERIAL (hex) and writes $W/<hex>.pem
enroll() {
    sim_post "$1" $ENROLL "xml=true&tokencuid=40907901001F12345678&screenname=$3&publickey=$(spki "$2")&profileId=${4:-caTokenUserSigningKeyEnrollment}&tokentype=userKey"
    [ "$SIM_HTTP" = 200 ] && [ "$(xml_el Status)" = 0 ] || it_fail "enroll on $1: $(cat "$W/out")"
    SERIAL=$(xml_el serialno)
    { echo "-----BEGIN CERTIFICATE-----"; xml_el b64 | fold -w 64; echo "-----END CERTIFICATE-----"; } \
        >"$W/$SERIAL.pem"
    openssl verify -CAfile "$W/pki/ca.crt" "$W/$SERIAL.pem" >/dev/null \
        || it_fail "certificate $SERIAL does not verify against the CA"
}
dec() { printf '%d' "0x$1"; }
getcert() {
    sim_post "$1" /ca/ee/ca/displayBySerial "xml=true&b64CertOnly=true&serialNumber=$(dec "$2")"
}

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$W/u1.key" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/u2.key" 2>/dev/null

# Issuance on each clone, each from its own range.
enroll ca1 "$W/u1.key" alice
S1=$SERIAL
[ "$(dec "$S1")" -ge 1 ] && [ "$(dec "$S1")" -le 65535 ] || it_fail "ca1 serial $S1 out of range"
xml_el SubjectDN | grep -qx 'UID=alice, O=Token Key User' || it_fail "subject: $(xml_el SubjectDN)"
openssl x509 -in "$W/$S1.pem" -noout -subject -ext keyUsage,extendedKeyUsage >"$W/x509.txt"
grep -q 'UID = alice' "$W/x509.txt" && grep -q 'Non Repudiation' "$W/x509.txt" \
    && grep -q 'TLS Web Client Authentication' "$W/x509.txt" || it_fail "profile: $(cat "$W/x509.txt")"
[ "$(openssl x509 -in "$W/$S1.pem" -pubkey -noout)" = "$(openssl pkey -in "$W/u1.key" -pubout)" ] \
    || it_fail "certificate is not for the key that was sent"
enroll ca2 "$W/u2.key" bob caTokenUserEncryptionKeyEnrollment
S2=$SERIAL
[ "$(dec "$S2")" -ge 65536 ] && [ "$(dec "$S2")" -le 131071 ] || it_fail "ca2 serial $S2 out of range"
enroll ca1 "$W/u2.key" bob caTokenUserSigningKeyEnrollment
S3=$SERIAL

# A certificate issued on ca1 is revoked on ca2.
it_ldap_wait_converged 10
sim_post ca2 /ca/ee/subsystem/ca/doRevoke "op=revoke&revocationReason=1&revokeAll=(certRecordId%3D$(dec "$S1"))&totalRecordCount=1"
[ "$(cat "$W/out")" = "status=0&error=" ] || it_fail "revoke on ca2: $(cat "$W/out")"
it_ldap_wait_converged 10
getcert ca1 "$S1"
[ "$(xml_el revocationReason)" = 1 ] && [ "$(xml_el serialNumber)" = "$S1" ] \
    || it_fail "getcert on ca1 after revoke on ca2: $(cat "$W/out")"
[ -n "$(xml_el certChainBase64)" ] || it_fail "getcert: no certChainBase64"
# re-revoke: keyCompromise again succeeds, another reason fails (§4.3)
sim_post ca1 /ca/ee/subsystem/ca/doRevoke "op=revoke&revocationReason=1&revokeAll=(certRecordId%3D$(dec "$S1"))&totalRecordCount=1"
[ "$(sim_field status)" = 0 ] || it_fail "re-revoke keyCompromise: $(cat "$W/out")"
sim_post ca1 /ca/ee/subsystem/ca/doRevoke "op=revoke&revocationReason=0&revokeAll=(certRecordId%3D$(dec "$S1"))&totalRecordCount=1"
[ "$(sim_field status)" = 3 ] || it_fail "re-revoke other reason: $(cat "$W/out")"

# On hold on ca1, released on ca2.
sim_post ca1 /ca/ee/subsystem/ca/doRevoke "op=revoke&revocationReason=6&revokeAll=(certRecordId%3D$(dec "$S3"))&totalRecordCount=1"
[ "$(sim_field status)" = 0 ] || it_fail "hold: $(cat "$W/out")"
it_ldap_wait_converged 10
sim_post ca2 /ca/ee/subsystem/ca/doUnrevoke "serialNumber=0x$S3"
[ "$(cat "$W/out")" = "status=0&error=" ] || it_fail "unrevoke on ca2: $(cat "$W/out")"
it_ldap_wait_converged 10
getcert ca1 "$S3"
[ -n "$(xml_el certChainBase64)" ] && [ -z "$(xml_el revocationReason)" ] \
    || it_fail "released certificate still revoked: $(cat "$W/out")"
sim_post ca1 /ca/ee/subsystem/ca/doUnrevoke "serialNumber=$(dec "$S3")"
[ "$(sim_field status)" = 3 ] || it_fail "unrevoke of a valid certificate: $(cat "$W/out")"
sim_post ca1 /ca/ee/subsystem/ca/doRevoke "op=revoke&revocationReason=1&revokeAll=(certRecordId%3D99999)&totalRecordCount=1"
[ "$(cat "$W/out")" = "status=2&error=No certificates are revoked." ] || it_fail "unknown serial"
getcert ca2 ffff0
[ -z "$(xml_el certChainBase64)" ] || it_fail "getcert of an unknown serial"

# Renewal on ca2 of a certificate issued by ca1: same key and subject, new serial from ca2.
sim_post ca2 $ENROLL "xml=true&renewal=true&serial_num=$(dec "$S3")&profileId=caTokenUserSigningKeyRenewal"
[ "$(xml_el Status)" = 0 ] || it_fail "renewal: $(cat "$W/out")"
S4=$(xml_el serialno)
[ "$(dec "$S4")" -ge 65536 ] || it_fail "renewal serial $S4 not from ca2"
xml_el SubjectDN | grep -qx 'UID=bob, O=Token Key User' || it_fail "renewal subject"

# Enrollment errors (XML Status 1) and authorisation (§7).
sim_post ca1 $ENROLL "xml=true&tokencuid=40907901001F12345678&publickey=$(spki "$W/u1.key")&profileId=caTokenUserSigningKeyEnrollment"
[ "$(xml_el Status)" = 1 ] || it_fail "missing screenname accepted"
sim_post ca1 $ENROLL "xml=true&screenname=x&publickey=$(spki "$W/u1.key")&profileId=caNoSuchProfile"
[ "$(xml_el Status)" = 1 ] || it_fail "unknown profile accepted"
sim_post ca1 $ENROLL "xml=true&screenname=x&publickey=AAAA&profileId=caTokenUserSigningKeyEnrollment"
[ "$(xml_el Status)" = 1 ] || it_fail "bad public key accepted"
sim_post ca1 $ENROLL "xml=true&screenname=x&publickey=$(spki "$W/u1.key")&profileId=caTokenUserSigningKeyEnrollment" other
[ "$(xml_el Status)" = 1 ] && [ "$(xml_el Error)" = unauthorized ] || it_fail "enroll by a non-agent"
sim_post ca1 /ca/ee/subsystem/ca/doRevoke "op=revoke&revocationReason=1&revokeAll=(certRecordId%3D$(dec "$S2"))&totalRecordCount=1" other
[ "$(cat "$W/out")" = "status=3&error=unauthorized" ] || it_fail "revoke by a non-agent"
sim_post ca1 $ENROLL "tokencuid=40907901001F12345678&screenname=carol&publickey=$(spki "$W/u1.key")&profileId=caTokenUserSigningKeyEnrollment"
grep -q 'errorCode="0"' "$W/out" && grep -q 'outputVal="MII' "$W/out" || it_fail "HTML output"

# A restarted clone continues after the serials it issued.
it_stop ca1
sim_start ca1 ca
enroll ca1 "$W/u1.key" dave
[ "$(dec "$SERIAL")" -gt "$(dec "$S3")" ] || it_fail "serial $SERIAL reissued after restart"
# Each enrollment is logged once on the clone that received it, with its public key.
H=$(openssl pkey -in "$W/u1.key" -pubout -outform DER | openssl dgst -sha256 -r | cut -c1-16)
[ "$(grep ' op=enrollment ' "$W/ca1.requests" | grep -c "pubkey=$H")" = 6 ] \
    || it_fail "ca1 enrollment count for u1: $(grep op=enrollment "$W/ca1.requests")"
[ "$(grep -c ' op=enrollment ' "$W/ca2.requests")" = 1 ] || it_fail "ca2 enrollment count"

# --- KRA ---
KEYGEN=/kra/agent/kra/GenerateKeyPair
RECOVER=/kra/agent/kra/TokenKeyRecovery
# wrap_hex HEX: RSA PKCS#1 v1.5 under the transport certificate, as the TKS does, URL+HASH
wrap_hex() {
    url_of_hex "$(echo "$1" | perl -ne 'chomp; print pack("H*", $_)' \
        | openssl pkeyutl -encrypt -certin -inkey "$W/pki/kra-transport.crt" \
        -pkeyopt rsa_padding_mode:pkcs1 | od -An -tx1 | tr -d ' \n')"
}
DHALF=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
DKEY=$DHALF$(echo "$DHALF" | cut -c1-16)
AKEY=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')

sim_post kra1 $KEYGEN "archive=true&tokencuid=40907901001F12345678&userid=alice&keytype=RSA&keysize=2048&drm_trans_desKey=$(wrap_hex "$DKEY")"
[ "$(sim_field status)" = 0 ] || it_fail "GenerateKeyPair: $(cat "$W/out")"
PUB=$(sim_field public_key)
IV=$(sim_hex iv_param)
sim_hex wrapped_priv_key | perl -ne 'chomp; print pack("H*", $_)' \
    | openssl enc -d -des-ede3-cbc -K "$DKEY" -iv "$IV" >"$W/k1.p8" || it_fail "unwrap of the key"
[ "$(openssl pkey -inform DER -in "$W/k1.p8" -pubout -outform DER | base64 -w0)" = "$PUB" ] \
    || it_fail "private key does not match public_key"
KEYID=$(sed -n 's/.* op=GenerateKeyPair .*keyid=\([0-9]*\).*/\1/p' "$W/kra1.requests" | tail -1)
[ -n "$KEYID" ] && [ "$KEYID" -le 65535 ] || it_fail "no key id in kra1's range: $KEYID"
it_ldap_wait_converged 10

# Recovery on kra2 by key id, AES session key with CBC.
sim_post kra2 $RECOVER "tokencuid=40907901001F12345678&userid=alice&keyid=$KEYID&drm_trans_aesKey=$(wrap_hex "$AKEY")&drm_aes_wrapAlg=CBC"
[ "$(sim_field status)" = 0 ] || it_fail "recovery by keyid on kra2: $(cat "$W/out")"
tr '&' '\n' <"$W/out" | cut -d= -f1 | tr '\n' ' ' | grep -q '^status wrapped_priv_key public_key iv_param $' \
    || it_fail "recovery field order: $(tr '&' '\n' <"$W/out" | cut -d= -f1 | tr '\n' ' ')"
sim_hex wrapped_priv_key | perl -ne 'chomp; print pack("H*", $_)' \
    | openssl enc -d -aes-128-cbc -K "$AKEY" -iv 00000000000000000000000000000000 >"$W/k2.p8" \
    || it_fail "unwrap of the recovered key"
cmp -s "$W/k1.p8" "$W/k2.p8" || it_fail "recovered key differs from the generated one"

# ... and on kra1 with the default AES wrapping, KWP (RFC 5649).
sim_post kra1 $RECOVER "tokencuid=40907901001F12345678&userid=alice&keyid=$KEYID&drm_trans_aesKey=$(wrap_hex "$AKEY")"
[ "$(sim_field status)" = 0 ] || it_fail "recovery with KWP: $(cat "$W/out")"
[ "$(sim_hex iv_param | wc -c)" = 16 ] || it_fail "KWP iv_param is not 8 bytes"
sim_hex wrapped_priv_key | perl -ne 'chomp; print pack("H*", $_)' \
    | openssl enc -d -id-aes128-wrap-pad -K "$AKEY" -iv A65959A6 >"$W/k4.p8" \
    || it_fail "KWP unwrap of the recovered key"
cmp -s "$W/k1.p8" "$W/k4.p8" || it_fail "key recovered with KWP differs"

# Recovery on kra2 by the certificate the CA issued for the archived key.
sim_post ca2 $ENROLL "xml=true&tokencuid=40907901001F12345678&screenname=alice&publickey=$(url_of_text "$PUB")&profileId=caTokenUserEncryptionKeyEnrollment"
[ "$(xml_el Status)" = 0 ] || it_fail "enroll of the archived key: $(cat "$W/out")"
CERT=$(xml_el b64)
sim_post kra2 $RECOVER "tokencuid=40907901001F12345678&userid=alice&cert=$(url_of_text "$CERT")&drm_trans_desKey=$(wrap_hex "$DKEY")"
[ "$(sim_field status)" = 0 ] || it_fail "recovery by cert: $(cat "$W/out")"
sim_hex wrapped_priv_key | perl -ne 'chomp; print pack("H*", $_)' \
    | openssl enc -d -des-ede3-cbc -K "$DKEY" -iv "$(sim_hex iv_param)" >"$W/k3.p8"
cmp -s "$W/k1.p8" "$W/k3.p8" || it_fail "key recovered by certificate differs"

# archive=false: a key pair, but nothing to recover; EC keys.
sim_post kra2 $KEYGEN "archive=false&tokencuid=40907901001F12345678&userid=bob&keytype=EC&eckeycurve=nistp256&drm_trans_desKey=$(wrap_hex "$DKEY")"
[ "$(sim_field status)" = 0 ] || it_fail "EC keygen: $(cat "$W/out")"
grep -q 'op=GenerateKeyPair .*archive=false.*keyid=' "$W/kra2.requests" && it_fail "archived with archive=false"

# KRA errors (§5.2) and authorisation.
sim_post kra1 $RECOVER "tokencuid=40907901001F12345678&userid=alice&drm_trans_desKey=$(wrap_hex "$DKEY")"
[ "$(cat "$W/out")" = status=3 ] || it_fail "neither cert nor keyid: $(cat "$W/out")"
sim_post kra1 $RECOVER "tokencuid=40907901001F12345678&userid=alice&keyid=65000&drm_trans_desKey=$(wrap_hex "$DKEY")"
[ "$(cat "$W/out")" = status=8 ] || it_fail "unknown keyid: $(cat "$W/out")"
sim_post kra1 $RECOVER "tokencuid=40907901001F12345678&userid=alice&cert=%21%21%21&drm_trans_desKey=$(wrap_hex "$DKEY")"
[ "$(cat "$W/out")" = status=5 ] || it_fail "unparsable cert: $(cat "$W/out")"
sim_post kra1 $RECOVER "tokencuid=40907901001F12345678&userid=alice&cert=AAAA&drm_trans_desKey=$(wrap_hex "$DKEY")"
[ "$(cat "$W/out")" = status=6 ] || it_fail "undecodable cert: $(cat "$W/out")"
sim_post kra1 $KEYGEN "tokencuid=40907901001F12345678&drm_trans_desKey=$(wrap_hex "$DKEY")"
[ "$SIM_HTTP" = 500 ] || it_fail "keygen without userid: HTTP $SIM_HTTP"
sim_post kra1 $KEYGEN "tokencuid=40907901001F12345678&userid=a&drm_trans_desKey=%2301%2302"
[ "$(cat "$W/out")" = status=4 ] || it_fail "bad transport key: $(cat "$W/out")"
sim_post kra1 $KEYGEN "tokencuid=40907901001F12345678&userid=a&drm_trans_desKey=$(wrap_hex "$DKEY")" other
[ "$(cat "$W/out")" = unauthorized= ] || it_fail "keygen by a non-KRA agent: $(cat "$W/out")"

sim_check_logs
it_ok "12-sim-ca-kra"
