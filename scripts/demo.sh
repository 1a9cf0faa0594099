#!/bin/sh
# scripts/demo.sh - `make demo`: the whole HA topology on loopback (scripts/topology.sh: 2 slapd
# replicating, 2 clones each of CA, KRA and TKS, 2 tpsgw, HAProxy, pcscd + vpcd with a vtoken
# card), then tokenclient over PC/SC phones home and enrolls the card through HAProxy (format
# when this build's gateway does not serve enrollment yet), and a summary of what happened:
# which instance served, which clones answered, the certificate subject, what coolkey's
# PKCS#11 module sees on the card, and that both LDAP replicas hold the token. Last, the TKS
# key ceremony of tools/tkskey on two SoftHSM2 tokens.
#   scripts/demo.sh          run it (the topology stays up afterwards for you to explore)
#   scripts/demo.sh stop     stop everything it started (make demo-stop; Ctrl-C does it too)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
: "${BUILD_ROOT:=build}"
case $BUILD_ROOT in /*) ;; *) BUILD_ROOT=$top/$BUILD_ROOT ;; esac
BIN=$BUILD_ROOT/release/bin
state=${DEMO_DIR:-/tmp/tpsgw-demo}
topo="$top/scripts/topology.sh"
COOLKEY=${COOLKEY_MODULE:-/usr/lib/pkcs11/libcoolkeypk11.so}

if [ "${1:-}" = stop ]; then
    TOPO_BIN=$BIN sh "$topo" stop "$state/topo"
    echo "demo: stopped"
    exit 0
fi

stop_all() {
    TOPO_BIN=$BIN sh "$topo" stop "$state/topo" >/dev/null 2>&1
}
trap 'echo; echo "demo: interrupted, stopping everything"; stop_all; exit 130' INT TERM
fail() {
    echo "demo: FAILED: $*" >&2
    echo "demo: logs are in $state/topo; stopping everything" >&2
    stop_all
    exit 1
}

stop_all # a previous demo's daemons, before their PID files go
rm -rf "$state"
mkdir -p "$state"
echo "== 1. Topology on 127.0.0.1 (about 10 s)"
TOPO_BIN=$BIN sh "$topo" start "$state/topo" || fail "the topology did not start"
. "$state/topo/topo.env"
export PCSCLITE_CSOCK_NAME
echo

echo "== 2. The card, as tokenclient sees it through PC/SC (no URL on a fresh card)"
"$BIN/tokenclient" status 2>&1 | sed 's/^/   /'
echo

# Request-log sizes now, to tell afterwards which clones answered this operation.
for n in ca1 ca2 kra1 kra2 tks1 tks2; do
    eval "before_$n=$(cat "$TOPO_DIR/$n.requests" 2>/dev/null | wc -l)"
done

tc() {
    "$BIN/tokenclient" --user alice --password-file "$ALICE_PW" --new-pin-file "$PIN_FILE" \
        --timeout 60 "$@"
}
echo "== 3. tokenclient formats the card through HAProxy (the phone-home URL given once)"
tc --phone-home "$PUBLIC_URL/tps/phoneHome" format >"$state/format.out" 2>&1 ||
    { sed 's/^/   /' "$state/format.out"; fail "format"; }
sed 's/^/   /' "$state/format.out"
echo "   the card now carries the balancer's phone-home URL:"
"$BIN/tokenclient" status 2>&1 | sed 's/^/     /'
echo

echo "== 4. tokenclient enrolls the card, finding the TPS through the card's own URL"
OP=enroll
if ! tc enroll >"$state/enroll.out" 2>&1; then
    sed 's/^/   /' "$state/enroll.out"
    grep -qi 'not served\|(status 8)' "$state/enroll.out" || fail "enroll"
    echo "   (this build's gateway does not serve enrollment yet: the card stays formatted)"
    OP=format
else
    sed 's/^/   /' "$state/enroll.out"
fi
echo

echo "== 5. Summary"
echo "   operations:       format, then $OP, of card $CARD_CUID"
for f in "$TOPO_DIR"/tps1.audit.log "$TOPO_DIR"/tps2.audit.log; do
    grep 'op.end' "$f" 2>/dev/null | grep "cuid=$CARD_CUID" |
        sed -n "s/.* op=\([a-z]*\) .*result=\([a-z]*\).*/   served by:        $(basename "$f" .audit.log): \1 \2/p"
done
printf '   clones answered:  '
for n in ca1 ca2 kra1 kra2 tks1 tks2; do
    eval "b=\$before_$n"
    now=$(cat "$TOPO_DIR/$n.requests" 2>/dev/null | wc -l)
    [ "$now" -gt "$b" ] && printf '%s(%d) ' "$n" $((now - b))
done
echo
echo "   phone home:       $(curl -s --max-time 3 "$PUBLIC_URL/tps/phoneHome?cuid=$CARD_CUID" | sed -n 's:.*<Operation>\(.*\)</Operation>.*:Operation = \1:p')"
echo "   the card now (tokenclient status over PC/SC):"
"$BIN/tokenclient" status 2>&1 | sed 's/^/     /'
for i in 1 2; do
    eval "uri=\$LDAP${i}_URI"
    st=$(ldapsearch -x -LLL -o ldif-wrap=no -o nettimeout=3 -H "$uri" -D "$LDAP_ROOTDN" \
        -y "$LDAP_ROOTPW_FILE" -b "cn=$CARD_CUID,ou=Tokens,$BASEDN" -s base tokenStatus tokenUserID 2>/dev/null |
        sed -n 's/^\(tokenStatus\|tokenUserID\): //p' | tr '\n' ' ')
    echo "   LDAP replica $i:   ${st:-token entry ABSENT} ($uri)"
done
if [ -f "$COOLKEY" ] && command -v pkcs11-tool >/dev/null 2>&1; then
    echo "   coolkey PKCS#11 ($COOLKEY) sees:"
    pkcs11-tool --module "$COOLKEY" -L 2>&1 | sed -n 's/^\(Slot\|  token label\|  token serial\|  token flags\).*/&/p' | sed 's/^/     /'
    pkcs11-tool --module "$COOLKEY" -O 2>&1 | grep -E 'Object;|label:|subject:|ID:' | sed 's/^/     /'
    subj=$(pkcs11-tool --module "$COOLKEY" -O 2>/dev/null | sed -n 's/^ *subject: *DN: *//p' | head -1)
    echo "   certificate:      ${subj:-none on the card (a formatted card holds no certificate)}"
fi
echo

echo "== 6. TKS key ceremony: a master key made on clone 1 reaches clone 2 through shares"
if command -v softhsm2-util >/dev/null 2>&1 && [ -x "$BIN/tkskey" ]; then
    for x in 1 2; do
        mkdir -p "$state/tks$x"
        printf 'directories.tokendir = %s\nobjectstore.backend = file\n' "$state/tks$x" >"$state/tks$x.conf"
        SOFTHSM2_CONF=$state/tks$x.conf softhsm2-util --init-token --free --label "tks$x" \
            --so-pin 87654321 --pin 12345678 >/dev/null
    done
    (umask 077 && echo 12345678 >"$state/hsm.pin")
    tk() { n=$1; shift; SOFTHSM2_CONF=$state/tks$n.conf "$BIN/tkskey" --token "tks$n" \
        --pin-file "$state/hsm.pin" "$@"; }
    tk 1 gen-transport --label transport --share-out "$state/share" >/dev/null &&
        tk 2 input-transport --label transport --share-in "$state/share.1,$state/share.2,$state/share.3" >/dev/null &&
        tk 1 gen-master --label '#02#01' --exportable --readable >/dev/null &&
        tk 1 wrap --label '#02#01' --transport transport --out "$state/mk2.wrapped" >/dev/null &&
        tk 2 unwrap --label '#02#01' --transport transport --in "$state/mk2.wrapped" --readable >/dev/null ||
        fail "key ceremony"
    echo "   clone 1: $(tk 1 list | grep '#02#01')"
    echo "   clone 2: $(tk 2 list | grep '#02#01')"
else
    echo "   (softhsm2-util or tkskey missing: skipped)"
fi
echo
echo "demo: done. The topology is still running (settings: $TOPO_DIR/topo.env);"
echo "      try: PCSCLITE_CSOCK_NAME=$PCSCLITE_CSOCK_NAME $BIN/tokenclient status"
echo "      stop it with: make demo-stop"
