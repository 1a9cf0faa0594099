#!/bin/sh
# tests/sim/mkcerts.sh DIR - the TLS material of a pki-sim test, made with the openssl CLI:
#   tls-ca.{key,crt}       CA that issues the server and client certificates below
#   server.{key,crt}       pki-sim's TLS server certificate (localhost, IP 127.0.0.1)
#   agent.{key,crt}        the TPS subsystem certificate (the configured agent)
#   other.{key,crt}        issued by the same CA, but not the configured agent
#   foreign-ca.crt, foreign.{key,crt}   a client certificate from a CA pki-sim does not trust
set -eu
D=$1
mkdir -p "$D"
cd "$D"
umask 077
ossl() { openssl "$@" 2>/dev/null; }
ossl req -x509 -newkey rsa:2048 -nodes -keyout tls-ca.key -out tls-ca.crt -days 30 \
    -subj "/O=Example/OU=pki-sim tests/CN=TLS CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
ossl req -x509 -newkey rsa:2048 -nodes -keyout foreign-ca.key -out foreign-ca.crt -days 30 \
    -subj "/O=Elsewhere/CN=Foreign CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
# leaf NAME CA SUBJECT EXT
leaf() {
    ossl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$3"
    printf '%s\n' "$4" >"$1.ext"
    ossl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -days 30 \
        -out "$1.crt" -extfile "$1.ext"
    rm -f "$1.csr" "$1.ext"
}
leaf server tls-ca "/O=Example/CN=localhost" \
    "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
leaf agent tls-ca "/O=Example/OU=pki-tps/CN=Subsystem Certificate TPS-localhost-7889" \
    "extendedKeyUsage=clientAuth"
leaf other tls-ca "/O=Example/OU=pki-tps/CN=Someone Else" "extendedKeyUsage=clientAuth"
leaf foreign foreign-ca "/O=Elsewhere/CN=Subsystem Certificate TPS-localhost-7889" \
    "extendedKeyUsage=clientAuth"
chmod 0644 ./*.crt
