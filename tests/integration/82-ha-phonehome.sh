#!/bin/sh
# tests/integration/82-ha-phonehome.sh - phone home in an HA deployment (tokendb-ha §4.3):
# the phone-home document served through HAProxy names the balancer and no instance; the
# issuer info a format writes on a card names the balancer; a card that still carries an old
# host-specific URL is rewritten to the balancer's on its next operation, and the rewrite is
# recorded (audit line and the operation's activity); an enrolled card names the balancer.
. "$(dirname "$0")/lib/lib.sh"
. "$(dirname "$0")/lib/ha.sh"
it_workdir >/dev/null
W=$IT_WORKDIR
ha_up

# ---- 1. the document names the balancer, from either instance
for k in 1 2 3 4; do
    curl -s --max-time 3 "$PUBLIC_URL/tps/phoneHome?cuid=40907901001FA0000000" >"$W/ph$k.xml"
    grep -q "<Operation>$PUBLIC_URL/tps/tps</Operation>" "$W/ph$k.xml" || it_fail "phone home: $(cat "$W/ph$k.xml")"
    for p in $TPS1_HTTP $TPS1_HTTPS $TPS2_HTTP $TPS2_HTTPS; do
        if grep -q ":$p" "$W/ph$k.xml"; then it_fail "phone home names an instance port $p"; fi
    done
done

# issuer CARDFILE: the issuer info on an emulated card, as text
issuer() {
    "$BUILD/bin/vtoken" --show "$1" | sed -n 's/^ *issuer *"\(.*\)"$/\1/p'
}
CARDS=$W/cards
mkdir -p "$CARDS"
CUID=40907901001FA0000001
CARD=$CARDS/card-$CUID.vtoken

# ---- 2. a format through the balancer writes the balancer's URL on the card
"$HA_TC" --server "$PUBLIC_URL/tps/tps" --user alice --password-file "$ALICE_PW" --no-progress \
    --emulate 1 --emulate-dir "$CARDS" --cuid $CUID format >"$W/f1.out" 2>&1 \
    || it_fail "format: $(cat "$W/f1.out")"
[ "$(issuer "$CARD")" = "$PUBLIC_URL/tps/phoneHome" ] || it_fail "issuer info after format: '$(issuer "$CARD")'"

# ---- 3. an old card with a host-specific URL is rewritten on its next contact
OLD=http://127.0.0.1:$TPS1_HTTP/tps/phoneHome
oldhex=$(printf '%s' "$OLD" | od -An -tx1 | tr -d ' \n' | tr a-f A-F)
pad=$(printf '%448s' '' | tr ' ' 0 | cut -c1-$((448 - ${#oldhex})))
sed -i "s/^issuer .*/issuer $oldhex$pad/" "$CARD"
[ "$(issuer "$CARD")" = "$OLD" ] || it_fail "could not plant the old URL: '$(issuer "$CARD")'"
"$HA_TC" --server "$PUBLIC_URL/tps/tps" --user alice --password-file "$ALICE_PW" --no-progress \
    --emulate 1 --emulate-dir "$CARDS" --cuid $CUID format >"$W/f2.out" 2>&1 \
    || it_fail "format of the old card: $(cat "$W/f2.out")"
[ "$(issuer "$CARD")" = "$PUBLIC_URL/tps/phoneHome" ] || it_fail "old URL not rewritten: '$(issuer "$CARD")'"
grep -h 'token.issuer_rewritten' "$HA_TOPO"/tps1.audit.log "$HA_TOPO"/tps2.audit.log | grep "cuid=$CUID" |
    grep -qF "$OLD" || it_fail "no audit record of the rewrite"
ldapsearch -x -LLL -o ldif-wrap=no -o nettimeout=3 -H "$LDAP1_URI" -D "$LDAP_ROOTDN" -y "$LDAP_ROOTPW_FILE" \
    -b "ou=Activities,$BASEDN" "(&(tokenID=$CUID)(tokenMsg=*issuer info rewritten*))" dn 2>/dev/null |
    grep -q '^dn:' || it_fail "no activity records the rewrite"
# a card already right is not "rewritten" again
n=$(grep -h 'token.issuer_rewritten' "$HA_TOPO"/tps*.audit.log | grep -c "cuid=$CUID")
"$HA_TC" --server "$PUBLIC_URL/tps/tps" --user alice --password-file "$ALICE_PW" --no-progress \
    --emulate 1 --emulate-dir "$CARDS" --cuid $CUID format >"$W/f3.out" 2>&1 || it_fail "format 3"
[ "$(grep -h 'token.issuer_rewritten' "$HA_TOPO"/tps*.audit.log | grep -c "cuid=$CUID")" = "$n" ] \
    || it_fail "a card with the right URL was recorded as rewritten"
it_log "old URL $OLD rewritten to $PUBLIC_URL/tps/phoneHome and recorded"

# ---- 4. an enrolled card (formatted, then enrolled through the balancer) names the balancer
if "$HA_TC" --server "$PUBLIC_URL/tps/tps" --user alice --password-file "$ALICE_PW" \
    --new-pin-file "$PIN_FILE" --no-progress --emulate 1 --emulate-dir "$CARDS" --cuid $CUID enroll \
    >"$W/e1.out" 2>&1; then
    [ "$(issuer "$CARD")" = "$PUBLIC_URL/tps/phoneHome" ] || it_fail "issuer info after enroll: '$(issuer "$CARD")'"
    [ "$(ha_token $CUID tokenStatus)" = ACTIVE ] || it_fail "enrolled card not ACTIVE"
    it_log "enrolled card carries $(issuer "$CARD")"
elif grep -q 'status 8)' "$W/e1.out"; then
    it_log "enroll not served by this build: enrolled-card check not applicable"
else
    it_fail "enroll: $(cat "$W/e1.out")"
fi

# ---- 5. over TLS: passthrough (tpsgw's own certificate, PROXY v2 before the handshake) and
# the termination variant (conf/haproxy/haproxy-tls-termination.cfg.in: TLS ends at HAProxy,
# which re-encrypts to tpsgw)
"$HA_TC" --server "https://127.0.0.1:$LB_HTTPS/tps/tps" --cacert "$TLS_CA" --user alice \
    --password-file "$ALICE_PW" --no-progress --emulate 2 --cuid 40907901001FA1000000 format \
    >"$W/tls1.out" 2>&1 && grep -q '^2 passed, 0 failed' "$W/tls1.out" || it_fail "passthrough TLS: $(tail "$W/tls1.out")"
cat "$HA_TOPO/certs/server.crt" "$HA_TOPO/tls.key" >"$W/lb.pem"
T_HTTP=$(it_port)
T_HTTPS=$(it_port)
while [ "$T_HTTPS" = "$T_HTTP" ]; do T_HTTPS=$(it_port); done
mkdir -p "$W/term"
sed -e "s|@RUNDIR@|$W/term|g" -e "s|@BIND@|127.0.0.1|g" -e "s|@LB_HTTP@|$T_HTTP|g" \
    -e "s|@LB_HTTPS@|$T_HTTPS|g" -e "s|@TIMEOUT@|10m|g" -e "s|@LB_PEM@|$W/lb.pem|g" \
    -e "s|@TPS_CA@|$TLS_CA|g" -e "s|@TPS1_HTTPS@|$TPS1_HTTPS|g" -e "s|@TPS2_HTTPS@|$TPS2_HTTPS|g" \
    -e "s|@TPS1_ADMIN@|$TPS1_STATUS|g" -e "s|@TPS2_ADMIN@|$TPS2_STATUS|g" \
    -e "s|@TPS1_AGENT@|$TPS1_AGENT|g" -e "s|@TPS2_AGENT@|$TPS2_AGENT|g" \
    "$IT_TOP/conf/haproxy/haproxy-tls-termination.cfg.in" >"$W/term.cfg"
haproxy -c -f "$W/term.cfg" >"$W/term-check.log" 2>&1 || it_fail "termination config: $(cat "$W/term-check.log")"
it_start haproxy-term haproxy -db -f "$W/term.cfg"
it_wait_tcp 127.0.0.1 "$T_HTTPS" 10
i=0
until curl -s --max-time 2 --cacert "$TLS_CA" "https://127.0.0.1:$T_HTTPS/tps/phoneHome?cuid=x" >"$W/tph.xml" 2>/dev/null &&
    grep -q "<Operation>$PUBLIC_URL/tps/tps</Operation>" "$W/tph.xml"; do
    i=$((i + 1)); [ $i -lt 50 ] || it_fail "phone home through TLS termination: $(cat "$W/tph.xml")"; sleep 0.2
done
"$HA_TC" --server "https://127.0.0.1:$T_HTTPS/tps/tps" --cacert "$TLS_CA" --user alice \
    --password-file "$ALICE_PW" --no-progress --emulate 2 --cuid 40907901001FA2000000 format \
    >"$W/tls2.out" 2>&1 && grep -q '^2 passed, 0 failed' "$W/tls2.out" || it_fail "TLS termination: $(tail "$W/tls2.out")"
it_log "TLS passthrough and termination both serve the TPS protocol"
it_ok "82-ha-phonehome"
