#!/bin/sh
# scripts/demo.sh - `make demo`: starts what the project has on loopback and runs it for real,
# printing what happened. `scripts/demo.sh stop` stops anything a previous run left behind.
#
# Today the demo shows the TKS key ceremony of tools/tkskey on two SoftHSM2 tokens standing
# for two TKS clones; it grows with the project towards the full topology (2 slapd, pki-sim
# clones, 2 tpsgw behind HAProxy, pcscd+vpcd with a vtoken, tokenclient enrolling a card).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
R=${BUILD_ROOT:-build}
BIN=$top/$R/release/bin
state=${DEMO_DIR:-/tmp/tpsgw-demo}

if [ "${1:-}" = stop ]; then
    if [ -f "$state/pids" ]; then
        # shellcheck disable=SC2046
        kill $(cat "$state/pids") 2>/dev/null || true
        rm -f "$state/pids"
    fi
    echo "demo: stopped"
    exit 0
fi

rm -rf "$state"
mkdir -p "$state"
echo "demo: working directory $state"
echo
echo "== TKS key ceremony: a master key made on clone 1 reaches clone 2 through shares"
for x in 1 2; do
    mkdir -p "$state/tks$x"
    printf 'directories.tokendir = %s\nobjectstore.backend = file\n' "$state/tks$x" \
        >"$state/tks$x.conf"
    SOFTHSM2_CONF=$state/tks$x.conf softhsm2-util --init-token --free --label "tks$x" \
        --so-pin 87654321 --pin 12345678 >/dev/null
done
echo 12345678 >"$state/pin"
chmod 600 "$state/pin"
tk() { n=$1; shift; SOFTHSM2_CONF=$state/tks$n.conf "$BIN/tkskey" --token "tks$n" \
    --pin-file "$state/pin" "$@"; }
echo "-- clone 1: transport key from three fresh shares (one file per custodian)"
tk 1 gen-transport --label transport --share-out "$state/share"
echo "-- clone 2: the same transport key from the three shares, each KCV checked"
tk 2 input-transport --label transport --share-in "$state/share.1,$state/share.2,$state/share.3"
echo "-- clone 1: master key version 2, wrapped for transport"
tk 1 gen-master --label '#02#01' --exportable --readable
tk 1 wrap --label '#02#01' --transport transport --out "$state/mk2.wrapped"
echo "-- clone 2: unwrapped, its KCV checked against the file before it is stored"
tk 2 unwrap --label '#02#01' --transport transport --in "$state/mk2.wrapped" --readable
echo "-- both clones list the same key:"
echo "   clone 1: $(tk 1 list | grep '#02#01')"
echo "   clone 2: $(tk 2 list | grep '#02#01')"
echo
echo "demo: done. Files are in $state."
