#!/bin/sh
# tests/integration/81-ha-backends.sh - the backends of two tpsgw behind HAProxy fail one at a
# time (scripts/topology.sh): LDAP provider 1 stopped (both instances stay ready and keep
# working on provider 2; once provider 1 is back both providers converge to identical token
# DB content), then CA 1, TKS 1 and KRA 1 killed in turn while operations run: no operation
# fails and no certificate is issued twice. Enrollment is used when this build serves it,
# format otherwise (then the CA and KRA sit idle and the duplicate check has nothing to count).
. "$(dirname "$0")/lib/lib.sh"
. "$(dirname "$0")/lib/ha.sh"
it_workdir >/dev/null
W=$IT_WORKDIR
ha_up
ha_wait_health "$TPS1_STATUS" 200 10
ha_wait_health "$TPS2_STATUS" 200 10

OP=format
if "$HA_TC" --server "$PUBLIC_URL/tps/tps" --user alice --password-file "$ALICE_PW" \
    --new-pin-file "$PIN_FILE" --no-progress --emulate 1 --cuid 40907901001F90000000 enroll \
    >"$W/probe.out" 2>&1 && grep -q '^1 passed, 0 failed' "$W/probe.out"; then
    OP=enroll
fi
it_log "operation under test: $OP"

# converged_equal: both providers hold the same contextCSNs and the same token DB entries
converged_equal() {
    i=0
    while :; do
        a=$(ldapsearch -x -LLL -o nettimeout=3 -H "$LDAP1_URI" -D "$LDAP_ROOTDN" -y "$LDAP_ROOTPW_FILE" \
            -s base -b "$BASEDN" contextCSN 2>/dev/null | grep '^contextCSN' | sort)
        b=$(ldapsearch -x -LLL -o nettimeout=3 -H "$LDAP2_URI" -D "$LDAP_ROOTDN" -y "$LDAP_ROOTPW_FILE" \
            -s base -b "$BASEDN" contextCSN 2>/dev/null | grep '^contextCSN' | sort)
        if [ -n "$a" ] && [ "$a" = "$b" ]; then
            ha_dump "$LDAP1_URI" >"$W/dump1.ldif"
            ha_dump "$LDAP2_URI" >"$W/dump2.ldif"
            cmp -s "$W/dump1.ldif" "$W/dump2.ldif" && return 0
        fi
        i=$((i + 1))
        [ $i -lt 100 ] || it_fail "providers differ after 20 s: $(diff "$W/dump1.ldif" "$W/dump2.ldif" | head -20)"
        sleep 0.2
    done
}

# ---- 1. LDAP provider 1 stops: the instances stay ready and work on provider 2
ha_topo kill ldap1 TERM
sleep 1.5 # a readiness evaluation or two
[ "$(ha_health "$TPS1_STATUS")" = 200 ] && [ "$(ha_health "$TPS2_STATUS")" = 200 ] \
    || it_fail "an instance is not ready with provider 2 up: $(curl -s "http://127.0.0.1:$TPS1_STATUS/health") $(curl -s "http://127.0.0.1:$TPS2_STATUS/health")"
ha_batch 6 40907901001F91000000 $OP "$W/ldap.out"
for k in 0 1 2 3 4 5; do
    cuid=$(printf '40907901001F%08X' $((0x91000000 + k)))
    [ -n "$(ha_token "$cuid" tokenStatus "$LDAP2_URI")" ] || it_fail "card $cuid not on provider 2"
done
ha_topo restart ldap1 >/dev/null
i=0
until ldapsearch -x -LLL -o nettimeout=1 -H "$LDAP1_URI" -s base -b "" 1.1 >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 100 ] || it_fail "provider 1 did not come back"; sleep 0.1
done
converged_equal
for k in 0 1 2 3 4 5; do
    cuid=$(printf '40907901001F%08X' $((0x91000000 + k)))
    [ -n "$(ha_token "$cuid" tokenStatus "$LDAP1_URI")" ] || it_fail "card $cuid did not reach provider 1"
done
it_log "LDAP provider 1 down: 6 of 6 $OP on provider 2; providers converged, identical"

# ---- 2. CA 1, TKS 1, KRA 1 die in turn while operations run
ha_tks_delay 300
base=0x92000000
for clone in ca1 tks1 kra1; do
    first=$(printf '40907901001F%08X' $base)
    ha_batch 8 "$first" $OP "$W/$clone.out" &
    bpid=$!
    ha_wait_live 1 10 # operations are under way
    sleep 0.3
    ha_topo kill $clone KILL
    wait $bpid || it_fail "operations failed while $clone died: $(tail -20 "$W/$clone.out")"
    ha_topo restart $clone >/dev/null
    eval "p=\$$(echo $clone | tr a-z A-Z)_PORT"
    it_wait_tcp 127.0.0.1 "$p" 10
    [ $clone = tks1 ] || ha_tks_delay 300 # the restarted TKS clone forgot its fault
    it_log "$clone killed under load: 8 of 8 $OP"
    base=$((base + 0x100))
done
ha_tks_delay 0

# ---- 3. no certificate twice: each public key enrolled once, serials unique
if [ $OP = enroll ]; then
    cat "$HA_TOPO/ca1.requests" "$HA_TOPO/ca2.requests" 2>/dev/null | grep ' op=enrollment ' |
        grep ' status=0' >"$W/enrollments"
    [ -s "$W/enrollments" ] || it_fail "no enrollment reached the CA clones"
    dup=$(sed -n 's/.* pubkey=\([0-9a-f]*\).*/\1/p' "$W/enrollments" | sort | uniq -d)
    [ -z "$dup" ] || it_fail "a public key was certified twice: $dup"
    dups=$(sed -n 's/.* serial=\([0-9a-fA-F]*\).*/\1/p' "$W/enrollments" | sort | uniq -d)
    [ -z "$dups" ] || it_fail "a serial number was issued twice: $dups"
    it_log "$(wc -l <"$W/enrollments") certificates, no duplicate"
fi

# ---- 4. after the whole run both replicas hold identical token DB content
converged_equal
[ "$(grep -c '^dn: cn=40907901001F9' "$W/dump1.ldif")" -ge 30 ] || it_fail "token entries missing from the dump"
it_ok "81-ha-backends"
