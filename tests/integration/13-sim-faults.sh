#!/bin/sh
# tests/integration/13-sim-faults.sh - pki-sim fault injection, set at start from the config
# and at run time through the admin endpoint: delay, hang after accept, hang after reading the
# request, close, reset, HTTP status, wrong content, request counts and path filters; the
# request log and /sim/stats; plain HTTP only when configured.
. "$(dirname "$0")/lib/lib.sh"
. "$IT_TOP/tests/sim/simtest.sh"
trap it_cleanup EXIT INT TERM
it_need curl openssl
it_workdir >/dev/null
W=$IT_WORKDIR
sim_certs
RND=/tks/agent/tks/computeRandomData

sim_conf tks1 tks
PLAIN=$(sim_port)
cat >>"$W/tks1.cfg" <<CFG
pkisim.workers=3
pkisim.fault.mode=http
pkisim.fault.code=503
pkisim.fault.count=1
service.unsecurePort=$PLAIN
pkisim.plainHttp.userid=TPS-localhost-7889
CFG
sim_start tks1 tks
fault() {
    r=$(sim_admin tks1 POST "/sim/fault?$1")
    echo "$r" | grep -q "^fault.mode=" || it_fail "admin refused '$1': $r"
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# From the config: HTTP 503 once, then normal service.
sim_post tks1 $RND "dataNumBytes=8"
[ "$SIM_HTTP" = 503 ] || it_fail "configured fault: HTTP $SIM_HTTP"
sim_post tks1 $RND "dataNumBytes=8"
[ "$SIM_HTTP" = 200 ] && [ "$(sim_field status)" = 0 ] || it_fail "after count=1: HTTP $SIM_HTTP"

# delay
fault "mode=delay&ms=700"
t0=$(now_ms)
sim_post tks1 $RND "dataNumBytes=8"
t1=$(now_ms)
[ "$SIM_HTTP" = 200 ] && [ $((t1 - t0)) -ge 700 ] || it_fail "delay: HTTP $SIM_HTTP in $((t1 - t0)) ms"

# hang after accept: no TLS handshake, the client times out; admin still answers.
fault "mode=hang-accept&ms=60000"
SIM_MAXTIME=1 sim_post tks1 $RND "dataNumBytes=8"
[ "$SIM_RC" = 28 ] && [ "$SIM_HTTP" = 000 ] || it_fail "hang-accept: rc $SIM_RC HTTP $SIM_HTTP"
SIM_MAXTIME=1 sim_post tks1 $RND "dataNumBytes=8"
SIM_MAXTIME=1 sim_post tks1 $RND "dataNumBytes=8"
sim_admin tks1 GET /sim/stats | grep -q '^fault.mode=hang-accept$' || it_fail "admin blocked by hangs"
fault "mode=none"
sim_post tks1 $RND "dataNumBytes=8"
[ "$SIM_HTTP" = 200 ] || it_fail "after hang-accept cleared: HTTP $SIM_HTTP (workers still hung?)"

# hang after reading the request: logged as received, never answered.
fault "mode=hang-request&ms=60000"
before=$(grep -c 'fault=hang-request' "$W/tks1.requests")
SIM_MAXTIME=1 sim_post tks1 $RND "dataNumBytes=8"
[ "$SIM_RC" = 28 ] || it_fail "hang-request: rc $SIM_RC"
[ "$(grep -c 'fault=hang-request' "$W/tks1.requests")" = $((before + 1)) ] \
    || it_fail "hang-request not logged"
fault "mode=none"

# close after reading the request (plain HTTP shows it best: an empty reply), over TLS too.
fault "mode=close&count=2"
SIM_HTTP=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --data-binary dataNumBytes=8 \
    "http://127.0.0.1:$PLAIN$RND")
rc=$?
[ $rc = 52 ] || it_fail "close over HTTP: curl rc $rc"
sim_post tks1 $RND "dataNumBytes=8"
[ "$SIM_RC" != 0 ] && [ "$SIM_HTTP" = 000 ] || it_fail "close over TLS: rc $SIM_RC HTTP $SIM_HTTP"
sim_post tks1 $RND "dataNumBytes=8"
[ "$SIM_HTTP" = 200 ] || it_fail "after close count=2: HTTP $SIM_HTTP"

# reset: RST instead of a response
fault "mode=reset&count=1"
curl -s -o /dev/null --max-time 5 --data-binary dataNumBytes=8 "http://127.0.0.1:$PLAIN$RND"
rc=$?
[ $rc = 56 ] || it_fail "reset: curl rc $rc"

# an HTTP status, only on one path
fault "mode=http&code=404&path=/tks/agent/tks/encryptData"
sim_post tks1 $RND "dataNumBytes=8"
[ "$SIM_HTTP" = 200 ] || it_fail "path filter hit another path: HTTP $SIM_HTTP"
sim_post tks1 /tks/agent/tks/encryptData "data=&tokencuid=%2340%2390%2379%2301%2300%231F%2312%2334%2356%2378&KeyInfo=%2301%2301"
[ "$SIM_HTTP" = 404 ] || it_fail "path filter: HTTP $SIM_HTTP"
fault "mode=http&code=500"
sim_post tks1 $RND "dataNumBytes=8"
[ "$SIM_HTTP" = 500 ] || it_fail "http 500: HTTP $SIM_HTTP"

# wrong content: HTTP 200 with a body that is not the servlet's answer
fault "mode=garbage"
sim_post tks1 $RND "dataNumBytes=8"
[ "$SIM_HTTP" = 200 ] && ! grep -q 'status=' "$W/out" && grep -q '<html>' "$W/out" \
    || it_fail "garbage: HTTP $SIM_HTTP $(cat "$W/out")"
# an application status: HTTP 200, status=N and nothing else
fault "mode=status&code=2&count=1"
sim_post tks1 $RND "dataNumBytes=8"
[ "$SIM_HTTP" = 200 ] && [ "$(cat "$W/out")" = status=2 ] || it_fail "status fault: $(cat "$W/out")"
sim_post tks1 $RND "dataNumBytes=8"
[ "$(sim_field status)" = 0 ] || it_fail "after status count=1"
fault "mode=none"

# Plain HTTP (configured for this test) answers as the configured agent.
curl -s -o "$W/out" --max-time 5 --data-binary dataNumBytes=4 "http://127.0.0.1:$PLAIN$RND"
[ "$(sim_field status)" = 0 ] || it_fail "plain HTTP: $(cat "$W/out")"

# Admin errors, stats and the request log.
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$(cat "$W/tks1.admin")/sim/fault?mode=explode")" = 400 ] \
    || it_fail "admin accepted an unknown mode"
STATS=$(sim_admin tks1 GET /sim/stats)
echo "$STATS" | grep -q '^op.computeRandomData=' || it_fail "stats: $STATS"
echo "$STATS" | grep -q '^faults_applied=13$' || it_fail "faults_applied: $STATS"
[ "$(grep -c 'op=computeRandomData.*http=200' "$W/tks1.requests")" = "$(echo "$STATS" | sed -n 's/^op.computeRandomData=//p')" ] \
    || it_fail "request log and stats disagree"

# Plain HTTP needs an explicit identity: a config without it is refused.
sim_conf bad tks
echo "service.unsecurePort=$(sim_port)" >>"$W/bad.cfg"
"$SIM_BIN" --role tks --config "$W/bad.cfg" --check 2>"$W/bad.err" && it_fail "plain HTTP without identity"
grep -q 'pkisim.plainHttp.userid' "$W/bad.err" || it_fail "no reason given: $(cat "$W/bad.err")"

sim_check_logs
it_ok "13-sim-faults"
