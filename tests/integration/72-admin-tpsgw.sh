#!/bin/sh
# tests/integration/72-admin-tpsgw.sh - the admin REST API and console served by tpsgw itself
# (tps.admin.enable, service.clientCAFile; docs/admin-api.md) on the topology of
# tests/browser/admin-env.sh (replicated token DB, two pki-sim CA clones, staff certificates):
# the HTTPS listener asks for a client certificate and maps it to a role, a status change
# through tpsgw is done at the CA before the token DB, a call without a certificate or over
# plain HTTP is refused, the console comes with its CSP, and the TPS URLs still answer over
# HTTPS without a client certificate.
. "$(dirname "$0")/lib/lib.sh"
. "$(dirname "$0")/lib/ldap.sh"
. "$IT_TOP/tests/sim/simtest.sh"
. "$IT_TOP/tests/browser/admin-env.sh"
trap it_cleanup EXIT INT TERM
TPSGW=$BUILD/bin/tpsgw
[ -x "$TPSGW" ] || it_fail "$TPSGW is not built"
adm_setup

expect() { # HTTP WHAT
    [ "$ADM_HTTP" = "$1" ] || it_fail "$2: HTTP $ADM_HTTP (want $1): $(cat "$W/out")"
}

adm_tpsgw_as gw2

# --- who is calling: the agent's role, served by this tpsgw instance
adm_call agent gw2 GET /tps/rest/account
expect 200 "agent account"
[ "$(jget UserID)" = agent1 ] && [ "$(jget Roles.0)" = agent ] && [ "$(jget Roles)" = 1 ] \
    && [ "$(jget CanChangeStatus)" = true ] && [ "$(jget Served.Instance)" = gw2 ] \
    || it_fail "agent account: $(cat "$W/out")"
adm_call operator gw2 GET /tps/rest/account
[ "$(jget Roles.0)" = operator ] && [ "$(jget CanChangeStatus)" = false ] \
    || it_fail "operator account: $(cat "$W/out")"

# --- no certificate: 401; a foreign CA's certificate: no handshake; plain HTTP: 403
adm_call none gw2 GET /tps/rest/tokens
expect 401 "no certificate"
[ "$(jget Error)" = no_certificate ] || it_fail "401 error code: $(cat "$W/out")"
adm_call foreign gw2 GET /tps/rest/account
[ "$ADM_RC" != 0 ] || it_fail "a certificate of a foreign CA was accepted (HTTP $ADM_HTTP)"
ADM_HTTP=$(curl -s -o "$W/out" -D "$W/head" -w '%{http_code}' --max-time 10 \
    "http://127.0.0.1:$TG_HTTP/tps/rest/account")
expect 403 "plain HTTP"
[ "$(jget Error)" = https_required ] || it_fail "plain HTTP error code: $(cat "$W/out")"
grep -qi '^content-type: application/json' "$W/head" || it_fail "plain HTTP 403 is not JSON"

# --- TPS URLs over HTTPS without a client certificate still answer
adm_call none gw2 GET /tps/phoneHome
expect 200 "phone home over HTTPS without a client certificate"
grep -q "<Operation>https://127.0.0.1:$TG_HTTPS/tps/tps</Operation>" "$W/out" \
    || it_fail "phone home: $(cat "$W/out")"
adm_call none gw2 GET /health
expect 200 "health over HTTPS"

# --- the console, with its Content-Security-Policy
adm_call none gw2 GET /tps/ui/index.html
expect 200 "console index.html"
grep -qi "^content-security-policy: default-src 'none'" "$W/head" \
    || it_fail "console CSP: $(cat "$W/head")"
grep -qi '<html' "$W/out" || it_fail "console index.html body: $(head -c 300 "$W/out")"

# --- a status change through tpsgw: both certificates on hold at the CA, then the token DB
AGTOK=$(adm_csrf agent gw2)
adm_call agent gw2 POST "/tps/rest/tokens/$CUID1?status=SUSPENDED&reason=via%20tpsgw" \
    -H "X-TPS-CSRF: $AGTOK" -H 'Content-Type: application/json' -H "Origin: $GW2_URL"
expect 200 "suspend through tpsgw"
[ "$(jget Status.name)" = SUSPENDED ] && [ "$(jget Certificates)" = 2 ] \
    && [ "$(jget Certificates.0.Outcome)" = done ] || it_fail "suspend answer: $(cat "$W/out")"
jget Certificates.0.Clone | grep -q "127.0.0.1:$CA2_PORT" || it_fail "tpsgw did not use its first clone"
[ "$(ca_reason "$SERIAL1")" = 6 ] && [ "$(ca_reason "$SERIAL2")" = 6 ] || it_fail "not on hold at the CA"
it_ldap_wait_converged 20
[ "$(tdb_attr $CUID1 tokenStatus)" = SUSPENDED ] || it_fail "token DB after suspend"
# admin-server (gw1) sees what tpsgw did
adm_call operator gw1 GET "/tps/rest/tokens/$CUID1"
[ "$(jget Status.name)" = SUSPENDED ] || it_fail "gw1 view: $(cat "$W/out")"
grep -q "admin.status_change actor=agent1 role=agent cuid=$CUID1 from=ACTIVE to=SUSPENDED outcome=success" \
    "$W/gw2-audit.log" || it_fail "tpsgw audit: $(cat "$W/gw2-audit.log")"
! grep -qF -e "$GWPW" -e "$AGTOK" -e '-----BEGIN' "$W/gw2-audit.log" "$W/gw2-daemon.log" \
    || it_fail "a secret in tpsgw's logs"
sim_check_logs
it_ok 72-admin-tpsgw
