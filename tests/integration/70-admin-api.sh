#!/bin/sh
# tests/integration/70-admin-api.sh - the admin REST API (docs/admin-api.md) with curl and
# client certificates against two admin-server instances on the replicated token DB and two
# pki-sim CA clones: certificate-to-role mapping, CSRF and content-type rules, paging, status
# transitions allowed and denied, revocation / hold / release really done at the CA before the
# token DB changes, a CA outage that leaves the token as it was, the same answers on both
# instances, and the audit trail naming who did what.
. "$(dirname "$0")/lib/lib.sh"
. "$(dirname "$0")/lib/ldap.sh"
. "$IT_TOP/tests/sim/simtest.sh"
. "$IT_TOP/tests/browser/admin-env.sh"
trap it_cleanup EXIT INT TERM
adm_setup

expect() { # HTTP WHAT
    [ "$ADM_HTTP" = "$1" ] || it_fail "$2: HTTP $ADM_HTTP (want $1): $(cat "$W/out")"
}

# --- who may come in
adm_call none gw1 GET /tps/rest/tokens
expect 401 "no certificate"
[ "$(jget Error)" = no_certificate ] || it_fail "401 error code"
adm_call unknown gw1 GET /tps/rest/tokens
expect 403 "certificate without a staff entry"
[ "$(jget Error)" = unknown_user ] || it_fail "unknown user error code"
adm_call norole gw1 GET /tps/rest/tokens
expect 403 "staff without a role"
[ "$(jget Error)" = no_role ] || it_fail "no role error code"
adm_call foreign gw1 GET /tps/rest/tokens
[ "$ADM_RC" != 0 ] || it_fail "a certificate of a foreign CA was accepted (HTTP $ADM_HTTP)"

adm_call operator gw1 GET /tps/rest/account
expect 200 "operator account"
[ "$(jget UserID)" = oper1 ] && [ "$(jget Roles.0)" = operator ] && [ "$(jget Roles)" = 1 ] \
    || it_fail "operator account: $(cat "$W/out")"
[ "$(jget CanChangeStatus)" = false ] || it_fail "operator may change status"
[ "$(jget Served.Instance)" = gw1 ] || it_fail "served by: $(cat "$W/out")"
grep -qi '^x-content-type-options: nosniff' "$W/head" && grep -qi '^cache-control: no-store' "$W/head" \
    && grep -qi '^content-type: application/json; charset=utf-8' "$W/head" \
    || it_fail "security headers: $(cat "$W/head")"
adm_call admin gw2 GET /tps/rest/account
[ "$(jget Roles)" = 3 ] && [ "$(jget Served.Instance)" = gw2 ] || it_fail "admin account: $(cat "$W/out")"

# --- search and paging (28 tokens: 4 users' + 24 fillers)
adm_call operator gw1 GET '/tps/rest/tokens?size=10'
expect 200 "token list"
[ "$(jget total)" = 28 ] && [ "$(jget entries)" = 10 ] || it_fail "first page: $(cat "$W/out")"
adm_call operator gw1 GET '/tps/rest/tokens?start=20&size=10'
[ "$(jget total)" = 28 ] && [ "$(jget entries)" = 8 ] || it_fail "last page: $(cat "$W/out")"
adm_call operator gw2 GET '/tps/rest/tokens?userID=filler&status=FORMATTED&size=5&start=22'
[ "$(jget total)" = 24 ] && [ "$(jget entries)" = 2 ] || it_fail "filtered paging: $(cat "$W/out")"
adm_call operator gw1 GET '/tps/rest/tokens?filter=alic'
[ "$(jget total)" = 1 ] && [ "$(jget entries.0.TokenID)" = $CUID1 ] || it_fail "filter: $(cat "$W/out")"
adm_call operator gw1 GET '/tps/rest/tokens?filter=%3Cimg'
[ "$(jget total)" = 1 ] && [ "$(jget entries.0.UserID)" = "$ADM_EVIL_USER" ] \
    || it_fail "markup in a user ID must come back verbatim as JSON text: $(cat "$W/out")"
adm_call operator gw1 GET '/tps/rest/tokens?size=abc'
expect 400 "bad size"
adm_call operator gw1 GET "/tps/rest/tokens/$CUID1"
expect 200 "one token"
[ "$(jget Status.name)" = ACTIVE ] && [ "$(jget UserID)" = alice ] && [ "$(jget NextStates)" = 4 ] \
    || it_fail "token: $(cat "$W/out")"
adm_call operator gw1 GET "/tps/rest/tokens/$CUID1/certificates"
[ "$(jget total)" = 2 ] && [ "$(jget entries.0.Status)" = active ] || it_fail "certs: $(cat "$W/out")"
adm_call operator gw1 GET "/tps/rest/certs?tokenID=$CUID2"
[ "$(jget total)" = 1 ] && [ "$(jget entries.0.SerialNumber)" = "0x$SERIAL3" ] \
    || it_fail "certs by tokenID: $(cat "$W/out")"
adm_call operator gw1 GET /tps/rest/profiles
[ "$(jget total)" = 3 ] || it_fail "profiles: $(cat "$W/out")"
adm_call operator gw1 GET /tps/rest/tokens/0000000000000000BEEF
expect 404 "unknown token"

# --- CSRF and content types on a status change
T1="/tps/rest/tokens/$CUID1"
OPTOK=$(adm_csrf operator gw1)
adm_call operator gw1 POST "$T1?status=SUSPENDED" -H "X-TPS-CSRF: $OPTOK" -H 'Content-Type: application/json'
expect 403 "operator changing a status"
adm_call agent gw1 POST "$T1?status=SUSPENDED" -H 'Content-Type: application/json'
expect 403 "no CSRF header"
[ "$(jget Error)" = csrf ] || it_fail "csrf error code"
AGTOK=$(adm_csrf agent gw1)
adm_call agent gw1 POST "$T1?status=SUSPENDED" -H "X-TPS-CSRF: $OPTOK" -H 'Content-Type: application/json'
expect 403 "someone else's CSRF token"
adm_call agent gw1 POST "$T1" -H "X-TPS-CSRF: $AGTOK" -d 'status=SUSPENDED'
expect 415 "form-encoded body"
adm_call agent gw1 POST "$T1?status=SUSPENDED" -H "X-TPS-CSRF: $AGTOK" \
    -H 'Content-Type: application/json' -H 'Origin: https://evil.example'
expect 403 "foreign Origin"
[ "$(tdb_attr $CUID1 tokenStatus)" = ACTIVE ] || it_fail "token changed by a refused request"
[ -z "$(ca_reason "$SERIAL1")" ] || it_fail "certificate revoked by a refused request"

# --- ACTIVE -> SUSPENDED on gw1: both certificates on hold at the CA, then the record
adm_call agent gw1 POST "$T1?status=SUSPENDED&reason=left%20at%20home" -H "X-TPS-CSRF: $AGTOK" \
    -H 'Content-Type: application/json' -H "Origin: $GW1_URL"
expect 200 "suspend"
[ "$(jget Status.name)" = SUSPENDED ] && [ "$(jget Certificates)" = 2 ] \
    && [ "$(jget Certificates.0.RevocationReason)" = certificateHold ] \
    && [ "$(jget Certificates.1.Outcome)" = done ] || it_fail "suspend answer: $(cat "$W/out")"
jget Certificates.0.Clone | grep -q "127.0.0.1:$CA1_PORT" || it_fail "gw1 did not use its first clone"
[ "$(ca_reason "$SERIAL1")" = 6 ] && [ "$(ca_reason "$SERIAL2")" = 6 ] || it_fail "not on hold at the CA"
it_ldap_wait_converged 20
[ "$(tdb_attr $CUID1 tokenStatus)" = SUSPENDED ] && [ "$(tdb_attr $CUID1 tokenReason)" = onHold ] \
    || it_fail "token DB after suspend"

# --- the same token seen from gw2, with gw1's CSRF token (shared key): SUSPENDED -> ACTIVE
adm_call agent gw2 GET "$T1"
[ "$(jget Status.name)" = SUSPENDED ] && [ "$(jget Served.Instance)" = gw2 ] || it_fail "gw2 view"
adm_call agent gw2 PATCH "$T1" -H "X-TPS-CSRF: $AGTOK" -H 'Content-Type: application/json' \
    --data '{"Status":"ACTIVE","Reason":"found it"}'
expect 200 "release on gw2"
[ "$(jget Certificates.0.Action)" = unrevoke ] || it_fail "release answer: $(cat "$W/out")"
jget Certificates.0.Clone | grep -q "127.0.0.1:$CA2_PORT" || it_fail "gw2 did not use its first clone"
[ -z "$(ca_reason "$SERIAL1")" ] && [ -z "$(ca_reason "$SERIAL2")" ] || it_fail "still on hold at the CA"
adm_call agent gw2 GET "/tps/rest/tokens/$CUID1/certificates"
[ "$(jget entries.0.Status)" = active ] && [ "$(jget entries.1.Status)" = active ] \
    || it_fail "cert entries after release: $(cat "$W/out")"

# --- denied transitions change nothing
adm_call agent gw1 POST "$T1?status=FORMATTED" -H "X-TPS-CSRF: $AGTOK" -H 'Content-Type: application/json'
expect 409 "ACTIVE -> FORMATTED"
[ "$(jget Error)" = transition_denied ] || it_fail "denied code: $(cat "$W/out")"
adm_call agent gw1 POST "$T1?status=NONSENSE" -H "X-TPS-CSRF: $AGTOK" -H 'Content-Type: application/json'
expect 400 "unknown status"

# --- ACTIVE -> PERM_LOST (admin, JSON body, PUT): keyCompromise at the CA
ADTOK=$(adm_csrf admin gw1)
adm_call admin gw1 PUT "$T1" -H "X-TPS-CSRF: $ADTOK" -H 'Content-Type: application/json' \
    --data '{"Status":"PERM_LOST","Reason":"stolen"}'
expect 200 "lost"
[ "$(jget Certificates.0.RevocationReason)" = keyCompromise ] || it_fail "lost answer: $(cat "$W/out")"
[ "$(ca_reason "$SERIAL1")" = 1 ] && [ "$(ca_reason "$SERIAL2")" = 1 ] || it_fail "not revoked at the CA"
adm_call operator gw2 GET "/tps/rest/tokens/$CUID1"
[ "$(jget Status.name)" = PERM_LOST ] && [ "$(jget NextStates)" = 0 ] || it_fail "after lost: $(cat "$W/out")"
adm_call agent gw1 POST "$T1?status=ACTIVE" -H "X-TPS-CSRF: $AGTOK" -H 'Content-Type: application/json'
expect 409 "PERM_LOST -> ACTIVE"

# --- the CA is down: the token keeps its status, the error says so
it_stop ca1
it_stop ca2
adm_call agent gw1 POST "/tps/rest/tokens/$CUID2?status=TERMINATED" -H "X-TPS-CSRF: $AGTOK" \
    -H 'Content-Type: application/json'
expect 502 "terminate with the CA down"
[ "$(jget Error)" = ca_failed ] && jget Message | grep -q 'keeps status ACTIVE' \
    || it_fail "CA-down answer: $(cat "$W/out")"
[ "$(tdb_attr $CUID2 tokenStatus)" = ACTIVE ] || it_fail "token changed although the CA failed"
sim_start ca1 ca
sim_start ca2 ca
adm_call agent gw1 POST "/tps/rest/tokens/$CUID2?status=TERMINATED" -H "X-TPS-CSRF: $AGTOK" \
    -H 'Content-Type: application/json'
expect 200 "terminate once the CA is back"
[ "$(ca_reason "$SERIAL3")" = 1 ] || it_fail "terminated token's certificate not revoked"

# --- a token without certificates needs no CA
adm_call agent gw2 POST "/tps/rest/tokens/$CUID3?status=DAMAGED" -H "X-TPS-CSRF: $AGTOK" \
    -H 'Content-Type: application/json'
expect 200 "damaged without certificates"
[ "$(jget Certificates)" = 0 ] || it_fail "damaged answer: $(cat "$W/out")"

# --- history and audit
adm_call operator gw2 GET "/tps/rest/activities?tokenID=$CUID1"
[ "$(jget total)" = 3 ] && [ "$(jget entries.0.Operation)" = token_status_change ] \
    || it_fail "activities: $(cat "$W/out")"
jget entries.0.Message | grep -q 'ACTIVE -> PERM_LOST by admin1' || it_fail "newest first: $(cat "$W/out")"
adm_call operator gw1 GET "/tps/rest/activities?tokenID=$CUID2"
[ "$(jget total)" = 2 ] && [ "$(jget entries.1.Result)" = failure ] || it_fail "failure recorded"
grep -q "admin.status_change actor=agent1 role=agent cuid=$CUID1 from=ACTIVE to=SUSPENDED outcome=success" \
    "$W/gw1-audit.log" || it_fail "gw1 audit: $(cat "$W/gw1-audit.log")"
grep -q "admin.cert actor=agent1 cuid=$CUID1 serial=0x$SERIAL1 action=unrevoke" "$W/gw2-audit.log" \
    || it_fail "gw2 audit: $(cat "$W/gw2-audit.log")"
grep -q "admin.status_change.denied actor=oper1 role=operator" "$W/gw1-audit.log" \
    || it_fail "denied attempt not audited"
for f in "$W"/gw1-audit.log "$W"/gw2-audit.log "$W"/gw1.log "$W"/gw2.log; do
    ! grep -qF -e "$GWPW" -e "$(cat "$W/csrf.key")" -e "$AGTOK" -e '-----BEGIN' "$f" \
        || it_fail "a secret (password, CSRF key or token, PEM) in $f"
done
sim_check_logs
it_ok 70-admin-api
