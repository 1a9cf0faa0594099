#!/bin/sh
# tests/integration/80-ha-instances.sh - two tpsgw behind HAProxy (scripts/topology.sh):
# readiness, agent words and /metrics of each instance; PROXY accepted only from the
# configured balancer address; operations spread over both; configuration digests: tpsgw 2
# restarted with a changed cluster-wide key makes tpsgw 1 (older configuration) drain until
# tpsgw 2 runs the same configuration again;
# tpsgw 1 killed (SIGKILL) during a run of operations: HAProxy sends the new ones to tpsgw 2,
# the client's one retry succeeds, and every card the run touched is FORMATTED with a
# success record; tpsgw 1 drained (SIGTERM): its in-flight operations finish, new ones go to
# tpsgw 2, and it exits 0.
. "$(dirname "$0")/lib/lib.sh"
. "$(dirname "$0")/lib/ha.sh"
it_workdir >/dev/null
W=$IT_WORKDIR
ha_up

# ---- 1. each instance is ready, says so to the agent, and exposes its metrics
for i in 1 2; do
    eval "st=\$TPS${i}_STATUS ag=\$TPS${i}_AGENT"
    ha_wait_health "$st" 200 10
    a=$(ha_agent "$ag")
    case $a in "up ready "*%) ;; *) it_fail "tps$i agent said '$a'" ;; esac
    curl -s --max-time 3 "http://127.0.0.1:$st/metrics" >"$W/metrics$i"
    grep -q "^tpsgw_ready{instance=\"tps$i\"} 1$" "$W/metrics$i" || it_fail "tps$i metrics: $(head "$W/metrics$i")"
    grep -q "^tpsgw_check_up{instance=\"tps$i\",check=\"tokendb\"} 1$" "$W/metrics$i" || it_fail "tps$i: no tokendb check"
    grep -q "^tpsgw_check_up{instance=\"tps$i\",check=\"tks1\"} 1$" "$W/metrics$i" || it_fail "tps$i: no tks1 check"
done
# only the balancer may speak PROXY: a peer outside lb.trustedProxies is closed unanswered
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 --interface 127.0.0.2 --haproxy-protocol \
    "http://127.0.0.1:$TPS1_HTTP/tps/phoneHome")
[ "$code" = 000 ] || it_fail "a PROXY header from 127.0.0.2 was served ($code)"
grep -q 'server.proxy_untrusted peer=127.0.0.2' "$HA_TOPO/tps1.gw.log" || it_fail "no log of the untrusted peer"
curl -s --max-time 3 "http://127.0.0.1:$TPS1_STATUS/metrics" |
    grep -q '^tpsgw_refused_total{instance="tps1",reason="untrusted_proxy"} 1$' || it_fail "refusal not counted"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 --haproxy-protocol \
    "http://127.0.0.1:$TPS1_HTTP/tps/phoneHome")
[ "$code" = 200 ] || it_fail "a PROXY header from the trusted 127.0.0.1 was refused ($code)"
it_log "both instances ready"

# ---- 2. a batch through the balancer lands on both instances
ha_batch 8 40907901001F80000000 format
n1=$(grep -c 'op.end .*op=format .*result=success' "$HA_TOPO/tps1.audit.log")
n2=$(grep -c 'op.end .*op=format .*result=success' "$HA_TOPO/tps2.audit.log")
[ "$n1" -ge 1 ] && [ "$n2" -ge 1 ] && [ $((n1 + n2)) = 8 ] || it_fail "spread: tps1=$n1 tps2=$n2"
curl -s --max-time 3 "http://127.0.0.1:$TPS1_STATUS/metrics" >"$W/metrics1"
grep -q "^tpsgw_operations_total{instance=\"tps1\",op=\"format\",result=\"success\"} $n1$" "$W/metrics1" \
    || it_fail "metrics do not count tps1's $n1 formats: $(grep operations_total "$W/metrics1")"
grep -q '^tpsgw_backend_requests_total{instance="tps1",list="tks1",clone=' "$W/metrics1" \
    || it_fail "no per-clone TKS counters in /metrics"
# the CA and KRA connectors' lists are there too, with both clones each
for l in ca1 drm1; do
    [ "$(grep -c "^tpsgw_backend_requests_total{instance=\"tps1\",list=\"$l\",clone=" "$W/metrics1")" = 2 ] \
        || it_fail "no per-clone counters of $l in /metrics: $(grep backend_requests "$W/metrics1")"
done
it_log "spread: tps1=$n1 tps2=$n2"

# ---- 2b. configuration digests (lb.instanceRefresh=1): tps2 restarted with one cluster-wide
# key changed has the newer configuration, so tps1 drains; restored, tps1 is ready again
grep -q 'lb.config_digest instance=tps1 digest=[0-9a-f]\{64\} ' "$HA_TOPO/tps1.gw.log" \
    || it_fail "tps1 logged no configuration digest"
cp "$HA_TOPO/tps2.cfg" "$W/tps2.cfg.orig"
ha_topo kill tps2 KILL
echo 'op.format.userKey.loginRequest.enable=false' >>"$HA_TOPO/tps2.cfg"
ha_topo restart tps2 >/dev/null || it_fail "cannot restart tps2"
ha_wait_agent "$TPS1_AGENT" 'up drain' 8
ha_wait_lbstate tps1 DRAIN 5
grep -q 'lb.config_mismatch action=drain instance=tps1 digest=[0-9a-f]\{64\} .*peer=tps2 peer_digest=[0-9a-f]\{64\} ' \
    "$HA_TOPO/tps1.gw.log" || it_fail "tps1 did not log lb.config_mismatch: $(grep lb.config "$HA_TOPO/tps1.gw.log")"
ha_wait_health "$TPS2_STATUS" 200 10
a=$(ha_agent "$TPS2_AGENT")
case $a in "up ready "*%) ;; *) it_fail "tps2 (the newer configuration) agent said '$a'" ;; esac
grep -q 'lb.config_mismatch action=serve instance=tps2 .*peer=tps1 ' "$HA_TOPO/tps2.gw.log" \
    || it_fail "tps2 did not log the mismatch it keeps serving through"
if grep 'lb.config_mismatch' "$HA_TOPO/tps1.gw.log" "$HA_TOPO/tps2.gw.log" | grep -q loginRequest; then
    it_fail "a configuration value reached the log"
fi
curl -s --max-time 3 "http://127.0.0.1:$TPS1_STATUS/metrics" |
    grep -q '^tpsgw_config_mismatch{instance="tps1"} 1$' || it_fail "tps1 metrics: no tpsgw_config_mismatch 1"
curl -s --max-time 3 "http://127.0.0.1:$TPS1_STATUS/health" | grep -q '^ok draining (config mismatch: tps2 ' \
    || it_fail "tps1 /health: '$(curl -s --max-time 3 "http://127.0.0.1:$TPS1_STATUS/health")'"
ha_topo kill tps2 KILL
cp "$W/tps2.cfg.orig" "$HA_TOPO/tps2.cfg"
ha_topo restart tps2 >/dev/null || it_fail "cannot restart tps2"
ha_wait_agent "$TPS1_AGENT" 'up ready *%' 8
grep -q 'lb.config_match action=ready instance=tps1 ' "$HA_TOPO/tps1.gw.log" || it_fail "tps1 did not log lb.config_match"
curl -s --max-time 3 "http://127.0.0.1:$TPS1_STATUS/metrics" |
    grep -q '^tpsgw_config_mismatch{instance="tps1"} 0$' || it_fail "tps1 metrics: mismatch not cleared"
ha_wait_lbstate tps1 UP 5
ha_wait_health "$TPS2_STATUS" 200 10
ha_wait_lbstate tps2 UP 10
it_log "configuration digests: tps1 drained while tps2 ran a newer configuration, ready again after"

# ---- 3. tpsgw 1 dies (SIGKILL) while operations run
ha_tks_delay 700 # each operation now takes over a second: the kill lands mid-operation
ha_batch 12 40907901001F81000000 format "$W/kill.out" &
bpid=$!
ha_wait_live 1 10
sleep 0.3
ha_topo kill tps1 KILL
wait $bpid || it_fail "the run during the kill failed: $(tail -20 "$W/kill.out")"
ha_wait_lbstate tps1 DOWN 10
ha_tks_delay 0
# no card half-done without a record: every card of the run is FORMATTED, with a success
for k in 0 1 2 3 4 5 6 7 8 9 10 11; do
    cuid=$(printf '40907901001F%08X' $((0x81000000 + k)))
    [ "$(ha_token "$cuid" tokenStatus)" = FORMATTED ] || it_fail "card $cuid is not FORMATTED after the kill"
    [ "$(ha_served 2 "$cuid")" -ge 1 ] || [ "$(grep -c "cuid=$cuid .*result=success" "$HA_TOPO/tps1.audit.log")" -ge 1 ] \
        || it_fail "card $cuid has no success record"
done
it_log "kill of tpsgw 1 during a run: 12 of 12 formatted"

# ---- 4. drain: tpsgw 1 runs again as our child, gets work, then SIGTERM
"$BUILD/bin/tpsgw" -c "$HA_TOPO/tps1.cfg" >>"$HA_TOPO/tps1.log" 2>&1 &
tpid=$!
IT_PIDS="$IT_PIDS $tpid" # it_cleanup stops it if the script fails
ha_wait_health "$TPS1_STATUS" 200 10
ha_wait_lbstate tps1 UP 15
ha_tks_delay 700
ha_batch 10 40907901001F82000000 format "$W/drain1.out" &
b1=$!
ha_wait_live 1 10
sleep 0.2
kill -TERM $tpid
[ "$(ha_agent "$TPS1_AGENT")" = drain ] || it_fail "agent of a draining tps1: '$(ha_agent "$TPS1_AGENT")'"
ha_wait_lbstate tps1 DRAIN 5
ha_batch 6 40907901001F83000000 format "$W/drain2.out"
wait $b1 || it_fail "in-flight operations failed during the drain: $(tail -20 "$W/drain1.out")"
i=0
while kill -0 $tpid 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 300 ] || it_fail "draining tpsgw 1 did not exit in 30 s"; sleep 0.1
done
wait $tpid
rc=$?
[ $rc = 0 ] || it_fail "drained tpsgw 1 exited $rc"
ha_tks_delay 0
grep -q 'lb.drain .*live=[1-9]' "$HA_TOPO/tps1.gw.log" || it_fail "tps1 had no operation in flight at SIGTERM"
grep 'op.end' "$HA_TOPO/tps1.audit.log" | grep -q 'cuid=40907901001F8200' \
    || it_fail "no operation of the first batch ran on tps1"
if grep 'op.end' "$HA_TOPO/tps1.audit.log" | grep -q 'cuid=40907901001F8300'; then
    it_fail "a new operation went to the draining tpsgw 1"
fi
if grep 'cuid=40907901001F8200' "$HA_TOPO/tps1.audit.log" | grep -q 'result=failure'; then
    it_fail "an in-flight operation failed on the draining tpsgw 1"
fi
it_log "drain: in-flight finished on tps1, new went to tps2, exit 0"
for f in "$HA_TOPO"/tps*.log; do
    if grep -qE 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' "$f"; then
        it_fail "sanitizer report in $f"
    fi
done
it_ok "80-ha-instances"
