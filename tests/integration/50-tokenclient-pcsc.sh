#!/bin/sh
# tests/integration/50-tokenclient-pcsc.sh - the desk client against the tpsgw daemon (topology
# of lib/tpsgw-enroll.sh): format and enroll a card through PC/SC (pcscd + vpcd + vtoken,
# --reader); the card pulled in the middle of an enroll (its vtoken killed) ends with exit 3 and
# a clear message; `--emulate 50` runs 50 concurrent enrollments that all succeed; and under a
# real terminal (tmux) the progress bar is drawn while the password and the PIN are not echoed.
set -u
. "$(dirname "$0")/lib/lib.sh"
. "$(dirname "$0")/lib/pcsc.sh"
. "$IT_TOP/tests/sim/simtest.sh"
it_need slapd ldapsearch curl openssl opensc-tool tmux
TPSGW_MAX_SESSIONS=64
TPSGW_EXTRA_CFG="op.format.mappingResolver=formatMap
mappingResolver.formatMap.mapping.order=0
mappingResolver.formatMap.mapping.0.target.tokenType=userKey
op.format.allowUnknownToken=true
op.format.userKey.auth.enable=true
op.format.userKey.auth.id=ldap1
op.format.userKey.update.applet.enable=false
op.format.userKey.revokeCert=true
op.format.userKey.revokeCert.reason=1"
. "$(dirname "$0")/lib/tpsgw-enroll.sh"

it_pcscd_start pcscd
R0=$(it_pcsc_reader 0)
# pc CUID EXPECTED_EXIT OP [args]: tokenclient on the reader of slot 0
pc() {
    _c=$1; _want=$2; _op=$3; shift 3
    "$TC" --server "$URL" --reader "$R0" --user alice --password-file "$W/alice.pw" --no-retry \
        "$@" "$_op" >"$W/pc.out" 2>&1
    _rc=$?
    [ "$_rc" = "$_want" ] || it_fail "tokenclient $_op on $_c: exit $_rc, want $_want: $(cat "$W/pc.out"; tail -5 "$W/gw.log")"
}

# ---- 1. format, then enroll, through PC/SC
C1=40907901001F50000001
it_vtoken_start vt1 "$W/c1.vtoken" 0 --set cuid=$C1
it_pcsc_wait_card 0 10
pc $C1 0 format
[ "$(token_attr $C1 tokenStatus)" = FORMATTED ] || it_fail "format through PC/SC: token $(token_attr $C1 tokenStatus)"
pc $C1 0 enroll --new-pin-file "$W/pin1"
[ "$(token_attr $C1 tokenStatus)" = ACTIVE ] || it_fail "enroll through PC/SC: token $(token_attr $C1 tokenStatus)"
[ "$(cert_count $C1)" = 2 ] || it_fail "enroll through PC/SC: $(cert_count $C1) certificates"
# formatting the enrolled card again revokes its two certificates (op.format.userKey.revokeCert)
pc $C1 0 format
[ "$(token_attr $C1 tokenStatus)" = FORMATTED ] || it_fail "re-format: token $(token_attr $C1 tokenStatus)"
n=$(ldq "ou=Certificates,$BASEDN" "(&(tokenID=$C1)(tokenStatus=revoked))" dn | grep -c '^dn:')
[ "$n" = 2 ] || it_fail "re-format: $n certificates marked revoked in the token DB, want 2"
[ "$(cat "$W/ca1.requests" "$W/ca2.requests" | grep -c ' op=revoke .*http=200')" = 2 ] \
    || it_fail "re-format: the CA did not revoke 2 certificates: $(grep revoke "$W"/ca?.requests)"
[ "$(grep -c "token.cert_revoked .*cuid=$C1 .*reason=1 op=format result=success" "$W/audit.log")" = 2 ] \
    || it_fail "re-format: no audit line per revoked certificate"
ldq "ou=Activities,$BASEDN" "(&(tokenID=$C1)(tokenOp=format)(tokenResult=success))" tokenMsg \
    | grep -q '2 certificates revoked' || it_fail "re-format: the activity does not say what was revoked"
pc $C1 0 enroll --new-pin-file "$W/pin1"
[ "$(token_attr $C1 tokenStatus)" = ACTIVE ] || it_fail "enroll after re-format: token $(token_attr $C1 tokenStatus)"
it_stop vt1
it_pcsc_wait_nocard 0 10
it_log "format and enroll through PC/SC ok"

# ---- 2. the card pulled mid-operation: the CA answers slowly, the card goes away meanwhile
C2=40907901001F50000002
it_vtoken_start vt2 "$W/c2.vtoken" 0 --set cuid=$C2
it_pcsc_wait_card 0 10
for n in ca1 ca2; do
    curl -s -X POST "http://127.0.0.1:$(cat "$W/$n.admin")/sim/fault?mode=delay&ms=3000&count=1&path=/ca/ee/ca/profileSubmitSSLClient" >/dev/null
done
"$TC" --server "$URL" --reader "$R0" --user alice --password-file "$W/alice.pw" --no-retry \
    --new-pin-file "$W/pin1" enroll >"$W/pulled.out" 2>&1 &
TCPID=$!
i=0
until grep -q "enroll.plan .*cuid=$C2" "$W/gw.log"; do
    i=$((i + 1)); [ $i -lt 100 ] || it_fail "the enroll of $C2 never reached the CA"
    sleep 0.1
done
sleep 1 # the card has made its signing key; tpsgw now waits 3 s for the CA
it_stop vt2
wait $TCPID
rc=$?
[ "$rc" = 3 ] || it_fail "card pulled: tokenclient exit $rc, want 3: $(cat "$W/pulled.out")"
grep -qi 'card.*\(removed\|unreadable\|gone\|pulled\)' "$W/pulled.out" \
    || it_fail "card pulled: no clear message: $(cat "$W/pulled.out")"
[ "$(token_attr $C2 tokenStatus)" != ACTIVE ] || it_fail "card pulled: token ACTIVE"
it_pcsc_wait_nocard 0 10
it_log "card pulled: exit 3, '$(grep -i card "$W/pulled.out" | tail -1)'"

# ---- 3. fifty emulated cards at once, all enrolled
"$TC" --emulate 50 --emulate-dir "$W/cards" --cuid 40907901001F50100000 --server "$URL" \
    --user alice --password-file "$W/alice.pw" --new-pin-file "$W/pin1" --no-retry enroll \
    >"$W/load.out" 2>&1 || it_fail "--emulate 50: $(tail -20 "$W/load.out"; tail -5 "$W/gw.log")"
grep -q '50 cards, 50 succeeded, 0 failed' "$W/load.out" || it_fail "--emulate 50: $(tail -5 "$W/load.out")"
n=$(ldq "ou=Tokens,$BASEDN" '(&(tokenStatus=ACTIVE)(cn=40907901001F501*))' dn | grep -c '^dn:')
[ "$n" = 50 ] || it_fail "--emulate 50: $n tokens ACTIVE in the token DB"
[ "$(max_per_key)" = 1 ] || it_fail "--emulate 50: a key was certified twice"
it_log "50 concurrent enrollments: $(grep 'cards,' "$W/load.out")"

# ---- 4. a real terminal: progress bar drawn, password and PIN not echoed
C4=40907901001F50000004
it_vtoken_start vt4 "$W/c4.vtoken" 0 --set cuid=$C4
it_pcsc_wait_card 0 10
SESSION=tc50-$$
tmux new-session -d -s "$SESSION" -x 160 -y 40 \
    "$TC --server $URL --reader '$R0' --user alice --no-retry enroll; echo EXIT=\$?; sleep 30"
wait_pane() { # wait_pane REGEX SECS
    _i=0
    while ! tmux capture-pane -p -t "$SESSION" | grep -q "$1"; do
        _i=$((_i + 1))
        [ $_i -lt $(($2 * 10)) ] || { tmux capture-pane -p -t "$SESSION"; tmux kill-session -t "$SESSION"; it_fail "terminal: no '$1'"; }
        sleep 0.1
    done
}
wait_pane 'assword' 15
tmux send-keys -t "$SESSION" 'alice-secret' Enter
wait_pane 'New PIN' 15
tmux send-keys -t "$SESSION" '24681357' Enter
wait_pane 'again' 10
tmux send-keys -t "$SESSION" '24681357' Enter
wait_pane 'EXIT=' 30
tmux capture-pane -p -t "$SESSION" >"$W/pane.txt"
tmux kill-session -t "$SESSION"
cat "$W/pane.txt"
grep -q 'EXIT=0' "$W/pane.txt" || it_fail "terminal: enroll failed"
grep -q '\[#*\.*\] *[0-9]*%' "$W/pane.txt" || it_fail "terminal: no progress bar"
grep -q '\[########################################\] 100%' "$W/pane.txt" || it_fail "terminal: progress bar never full"
if grep -q 'alice-secret\|24681357' "$W/pane.txt"; then it_fail "terminal: a secret was echoed"; fi
[ "$(token_attr $C4 tokenStatus)" = ACTIVE ] || it_fail "terminal: token not ACTIVE"
it_stop vt4
it_log "terminal: progress bar shown, password and PIN not echoed"

it_stop tpsgw
if grep -qE 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' "$W/tpsgw.log"; then
    it_fail "sanitizer report from tpsgw: $(cat "$W/tpsgw.log")"
fi
it_ok "50-tokenclient-pcsc"
