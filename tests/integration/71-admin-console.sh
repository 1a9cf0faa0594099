#!/bin/sh
# tests/integration/71-admin-console.sh - the security-officer console (web/console/) in
# headless Chromium (Debian's chromium, driven by playwright-core from tests/browser/) against
# tpsgw itself and an admin-server instance on the replicated token DB and two pki-sim CA
# clones: log in with
# a client certificate, find an enrolled token, mark it lost, see its certificates revoked
# (checked at the CA too), see it from the other instance as an operator. Screenshots in
# $BUILD_ROOT/test-artifacts/admin-console/.
. "$(dirname "$0")/lib/lib.sh"
. "$(dirname "$0")/lib/ldap.sh"
. "$IT_TOP/tests/sim/simtest.sh"
. "$IT_TOP/tests/browser/admin-env.sh"
trap it_cleanup EXIT INT TERM
it_need node npm chromium

# playwright-core, pinned in package-lock.json; nothing else is installed at test time.
if [ ! -d "$IT_TOP/tests/browser/node_modules/playwright-core" ]; then
    (cd "$IT_TOP/tests/browser" && npm ci --no-audit --no-fund) >"$(it_workdir)/npm.log" 2>&1 \
        || it_fail "npm ci in tests/browser failed: $(tail -5 "$(it_workdir)/npm.log")"
fi

adm_setup
# the first instance is tpsgw itself: the agent's part of the browser run (log in with a
# client certificate, find the token, mark it lost, see its certificates revoked) is served
# by tpsgw; the operator looks from the other instance (admin-server)
adm_tpsgw_as gw1
ARTIFACTS=$IT_TOP/${BUILD_ROOT:-build}/test-artifacts/admin-console
rm -rf "$ARTIFACTS"
mkdir -p "$ARTIFACTS"
export ADM_CERTS CUID1 ARTIFACTS ADM_EVIL_USER
export CHROMIUM="${CHROMIUM:-$(command -v chromium)}"
# Chromium may reach only loopback here: no proxy from the environment.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
(cd "$IT_TOP/tests/browser" && TMPDIR=$W node console.test.mjs) >"$W/console.log" 2>&1 \
    || { cat "$W/console.log"; it_fail "console test failed (screenshots in $ARTIFACTS)"; }
cat "$W/console.log"

# What the browser did is what the CA and the token DB hold.
[ "$(ca_reason "$SERIAL1")" = 1 ] && [ "$(ca_reason "$SERIAL2")" = 1 ] \
    || it_fail "certificates not revoked (keyCompromise) at the CA"
it_ldap_wait_converged 20
[ "$(tdb_attr $CUID1 tokenStatus)" = PERM_LOST ] || it_fail "token DB does not say PERM_LOST"
grep -q "admin.status_change actor=agent1 role=agent cuid=$CUID1 from=ACTIVE to=PERM_LOST outcome=success" \
    "$W/gw1-audit.log" || it_fail "audit line missing: $(cat "$W/gw1-audit.log")"
for f in 01-login 02-search 03-token 04-confirm 05-revoked 06-operator-gw2 07-no-role; do
    [ -s "$ARTIFACTS/$f.png" ] || it_fail "screenshot $f.png missing"
done
sim_check_logs
it_ok 71-admin-console
