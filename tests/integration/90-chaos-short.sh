#!/bin/sh
# tests/integration/90-chaos-short.sh - the short chaos run of `make check` (docs/RELIABILITY.md):
# 48 emulated enrollments through HAProxy and two tpsgw while tpsgw 1, CA 1, KRA 1, TKS 1 and
# LDAP 1 are each killed (SIGKILL) and restarted once, then the consistency audit
# (tests/chaos/audit): every operation succeeded or failed cleanly and on record, no key
# certified twice, every card matches its token DB record, both replicas identical. Fails if
# the audit finds anything. The full-length run is `make chaos`.
set -u
. "$(dirname "$0")/lib/lib.sh"
trap it_cleanup EXIT INT TERM
it_need slapd haproxy ldapsearch curl perl
[ -x "$BUILD/bin/chaos-card" ] || it_fail "$BUILD/bin/chaos-card not built (tests/chaos/chaos.mk)"
W=$(it_workdir)
# one kill of each role: 5 roles x (1 s down + 1 s up + restart), under ~2 minutes in all
BUILD=$BUILD sh "$IT_TOP/tests/chaos/chaos.sh" --cards "${CHAOS_SHORT_CARDS:-48}" --concurrency 6 \
    --kill-interval 1 --backend-delay 150 --max-seconds 90 --out "$W/chaos" >"$W/chaos.log" 2>&1
rc=$?
cat "$W/chaos.log"
kills=$(cat "$W/chaos/kills" 2>/dev/null || echo 0)
[ "$kills" -ge 5 ] || it_fail "only $kills kills: not every role was killed under load"
[ $rc = 0 ] || it_fail "chaos audit failed (exit $rc): $(grep -E '^(R[0-9]|  R|AUDIT)' "$W/chaos.log" | head -30)"
grep -q '^AUDIT PASS' "$W/chaos.log" || it_fail "no audit verdict"
it_ok "90-chaos-short"
