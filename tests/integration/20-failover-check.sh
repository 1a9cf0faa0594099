#!/bin/sh
# tests/integration/20-failover-check.sh - failover-check against loopback clones made with
# `openssl s_server`: one refusing (nothing listens), one that reads the request and never
# answers, one with a certificate from another CA, one requiring a client certificate and
# answering 200. Checks the per-endpoint lines, the answering endpoint, the exit codes, the
# deadline, and that libfailover.so exports only fo_* symbols.
set -u
. "$(dirname "$0")/lib/lib.sh"
trap it_cleanup EXIT INT TERM
it_need openssl nm

FC="$BUILD/bin/failover-check"
[ -x "$FC" ] || it_fail "$FC is not built: run 'make build'"
W=$(it_workdir)

# ---- a test PKI: CA, server (SAN IP 127.0.0.1), client, and a rogue self-signed server ----
(
    cd "$W" || exit 1
    EC="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
    openssl req -x509 $EC -days 2 -subj /CN=it-ca -keyout ca.key -out ca.crt &&
    openssl req $EC -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
        -keyout srv.key -out srv.csr &&
    openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
        -copy_extensions copyall -out srv.crt &&
    openssl req $EC -subj /CN=tps-it -addext extendedKeyUsage=clientAuth \
        -keyout cli.key -out cli.csr &&
    openssl x509 -req -in cli.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
        -copy_extensions copyall -out cli.crt &&
    openssl req -x509 $EC -days 2 -subj /CN=127.0.0.1 \
        -addext subjectAltName=IP:127.0.0.1 -keyout rogue.key -out rogue.crt
) >"$W/pki.log" 2>&1 || it_fail "could not make the test PKI (see $W/pki.log)"
mkdir -p "$W/www" && printf 'status=0\n' >"$W/www/getStatus"
mkfifo "$W/hold" # stdin of the hanging server: open read-write, it never sees EOF

P_REF=$(it_port)
P_OK=$(it_port)
P_HANG=$(it_port)
P_ROGUE=$(it_port)

# The good clone: serves files (-WWW), demands a client certificate of our CA.
it_start ok sh -c 'cd "$1/www" && exec openssl s_server -accept "127.0.0.1:$2" \
    -cert ../srv.crt -key ../srv.key -CAfile ../ca.crt -Verify 1 -verify_return_error \
    -WWW -quiet' sh "$W" "$P_OK"
# The hung clone: completes TLS, reads the request, never answers.
it_start hang sh -c 'exec openssl s_server -accept "127.0.0.1:$2" -cert "$1/srv.crt" \
    -key "$1/srv.key" -quiet 0<>"$1/hold"' sh "$W" "$P_HANG"
# The rogue clone: certificate from another CA.
it_start rogue sh -c 'cd "$1/www" && exec openssl s_server -accept "127.0.0.1:$2" \
    -cert ../rogue.crt -key ../rogue.key -WWW -quiet' sh "$W" "$P_ROGUE"
it_wait_tcp 127.0.0.1 "$P_OK" 10
it_wait_tcp 127.0.0.1 "$P_HANG" 10
it_wait_tcp 127.0.0.1 "$P_ROGUE" 10

TLSARGS="--cert $W/cli.crt --key $W/cli.key --cacert $W/ca.crt"
OUT="$W/out.txt"

# expect RC PATTERN... -- CMD: runs CMD, checks its exit code and that each pattern appears.
expect() {
    want=$1; shift
    pats=""
    while [ "$1" != "--" ]; do pats="$pats
$1"; shift; done
    shift
    "$@" >"$OUT" 2>&1
    rc=$?
    sed 's/^/    | /' "$OUT"
    [ "$rc" -eq "$want" ] || it_fail "exit $rc, expected $want: $*"
    echo "$pats" | while IFS= read -r p; do
        [ -z "$p" ] && continue
        grep -qF -- "$p" "$OUT" || { echo "missing: $p"; exit 1; }
    done || it_fail "output of '$*' lacks an expected line"
}

it_log "1. refused, hung, good: the walk reaches the good clone; one line per endpoint"
t0=$(date +%s)
expect 0 "1 127.0.0.1:$P_REF" "refused" \
    "2 127.0.0.1:$P_HANG" "timed out after sending" \
    "3 127.0.0.1:$P_OK" "HTTP 200" "answered: 127.0.0.1:$P_OK (HTTP 200)" -- \
    "$FC" $TLSARGS --timeout 0.5 --path /getStatus \
    "127.0.0.1:$P_REF 127.0.0.1:$P_HANG 127.0.0.1:$P_OK"
t1=$(date +%s)
[ $((t1 - t0)) -le 3 ] || it_fail "walk took $((t1 - t0)) s with a 0.5 s response timeout"

it_log "2. the good clone first: later endpoints are not tried"
expect 0 "1 127.0.0.1:$P_OK" "HTTP 200" "2 127.0.0.1:$P_REF" "not tried" -- \
    "$FC" $TLSARGS --path /getStatus "127.0.0.1:$P_OK,127.0.0.1:$P_REF"

it_log "3. refused and rogue certificate: nobody answered, exit 1"
expect 1 "refused" "TLS error" "answered: none" "all 2 clones failed" -- \
    "$FC" $TLSARGS --timeout 1 --path /getStatus "127.0.0.1:$P_REF 127.0.0.1:$P_ROGUE"

it_log "4. the deadline bounds the whole walk"
t0=$(date +%s)
expect 1 "timed out" "answered: none" -- \
    "$FC" $TLSARGS --timeout 5 --deadline 0.6 --path /getStatus \
    "127.0.0.1:$P_HANG 127.0.0.1:$P_OK"
t1=$(date +%s)
[ $((t1 - t0)) -le 2 ] || it_fail "deadline 0.6 s, walk took $((t1 - t0)) s"

it_log "5. --each: every endpoint on its own"
expect 0 "1 127.0.0.1:$P_ROGUE" "TLS error" "2 127.0.0.1:$P_OK" "HTTP 200" \
    "answered: 127.0.0.1:$P_OK" -- \
    "$FC" $TLSARGS --each --timeout 0.5 --path /getStatus \
    "127.0.0.1:$P_ROGUE 127.0.0.1:$P_OK"

it_log "6. no client certificate: the good clone refuses the handshake (TLS alert)"
expect 1 "TLS error" "answered: none" -- \
    "$FC" --cacert "$W/ca.crt" --timeout 1 --path /getStatus "127.0.0.1:$P_OK"

it_log "7. usage errors exit 2 and say why"
expect 2 "missing port" -- "$FC" --path /x "ca1.example.com"
expect 2 "brackets" -- "$FC" --path /x "::1:8443"
expect 2 "usage" -- "$FC" "127.0.0.1:$P_OK"
expect 2 "expects seconds" -- "$FC" --timeout abc --path /x "127.0.0.1:$P_OK"
expect 0 "usage" -- "$FC" --help

it_log "8. libfailover.so exports only fo_* symbols"
[ -f "$BUILD/libfailover.so" ] || it_fail "$BUILD/libfailover.so is not built"
extra=$(nm -D --defined-only "$BUILD/libfailover.so" | awk '$2 != "A" && $3 !~ /^fo_/ {print $3}')
[ -z "$extra" ] || it_fail "libfailover.so exports non-fo_ symbols: $extra"
nm -D --defined-only "$BUILD/libfailover.so" | grep -q ' T fo_req_perform' \
    || it_fail "libfailover.so does not export fo_req_perform"

it_ok "20-failover-check"
