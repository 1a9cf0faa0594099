#!/bin/sh
# tests/integration/30-vtoken-pcsc.sh - vtoken on a real PC/SC stack: a private pcscd with the
# vpcd driver, two cards on two slots at once, APDUs through libpcsclite (opensc-tool), card
# removal and re-insertion, pcscd restart with reconnect, and the state file (`--show`).
set -u
. "$(dirname "$0")/lib/lib.sh"
. "$(dirname "$0")/lib/pcsc.sh"
trap it_cleanup EXIT INT TERM
it_need opensc-tool
it_workdir >/dev/null
W=$IT_WORKDIR

it_pcscd_start pcscd
it_vtoken_start vt0 "$W/a.card" 0 --set cuid=40907901001F00000001
it_vtoken_start vt1 "$W/b.card" 1 --set cuid=40907901001F00000002 --set proto=3
it_pcsc_wait_card 0 10
it_pcsc_wait_card 1 10
R0=$(it_pcsc_reader 0)
R1=$(it_pcsc_reader 1)
opensc-tool -l | tee "$W/readers.txt"
grep -F "$R0" "$W/readers.txt" | grep -q Yes || it_fail "slot 0 shows no card"
grep -F "$R1" "$W/readers.txt" | grep -q Yes || it_fail "slot 1 shows no card"

# The ATR of card spec §8.4 reaches the application.
opensc-tool -r "$R0" -a >"$W/atr.txt" 2>&1 || it_fail "opensc-tool -a failed"
grep -qi '3b:96:13:81:01:ff:62:76:01:00:00:ef' "$W/atr.txt" || { cat "$W/atr.txt"; it_fail "wrong ATR"; }

# APDUs round-trip on both cards: CPLC names each card's CUID, the applet answers GET STATUS.
apdus() {
    opensc-tool -r "$1" -s 00A4040007A0000000030000 -s 80CA9F7F2D \
        -s 00A4040007627601FF000000 -s B03C000010 -s B0F2000004 -s B03C0100 2>&1
}
apdus "$R0" >"$W/apdu0.txt" || it_fail "APDUs on slot 0 failed"
apdus "$R1" >"$W/apdu1.txt" || it_fail "APDUs on slot 1 failed"
cat "$W/apdu0.txt"
grep -q '^00 00 01 00 1F' "$W/apdu0.txt" || it_fail "slot 0: CPLC does not carry CUID ...00000001"
grep -q '^00 00 02 00 1F' "$W/apdu1.txt" || it_fail "slot 1: CPLC does not carry CUID ...00000002"
grep -q '^01 01 01 04 00 00 40 00' "$W/apdu0.txt" || it_fail "slot 0: GET STATUS"
grep -q 'SW1=0x6D, SW2=0x00' "$W/apdu0.txt" || it_fail "slot 0: the OpenSC probe must answer 6D00"
# The second card speaks SCP03: card recognition data ends 03 70.
opensc-tool -r "$R1" -s 00A4040007A0000000030000 -s 80CA006600 >"$W/rec.txt" 2>&1
grep -q '04 03 70' "$W/rec.txt" || { cat "$W/rec.txt"; it_fail "slot 1: card recognition data"; }

# Both cards at once: two clients in parallel, many APDUs each.
i=0
while [ $i -lt 20 ]; do
    opensc-tool -r "$R0" -s 00A4040007627601FF000000 -s B070000004 >/dev/null 2>&1 &
    p0=$!
    opensc-tool -r "$R1" -s 00A4040007627601FF000000 -s B070000004 >/dev/null 2>&1 &
    p1=$!
    wait $p0 || it_fail "parallel APDUs on slot 0 failed"
    wait $p1 || it_fail "parallel APDUs on slot 1 failed"
    i=$((i + 1))
done

# Removing a card (its vtoken stops) shows an empty reader; restarting re-inserts it.
it_stop vt0
it_pcsc_wait_nocard 0 10
it_pcsc_wait_card 1 2
it_vtoken_start vt0 "$W/a.card" 0
it_pcsc_wait_card 0 10

# pcscd restarts on the same ports: both vtokens reconnect by themselves.
port=$IT_PCSC_PORT
it_pcscd_stop pcscd
it_pcscd_start pcscd2 "$port"
it_pcsc_wait_card 0 15
it_pcsc_wait_card 1 15
grep -q 'vtoken.disconnected' "$W/vt1.log" || it_fail "vt1 did not notice pcscd leaving"
[ "$(grep -c 'vtoken.connected' "$W/vt1.log")" -ge 2 ] || it_fail "vt1 did not reconnect"
opensc-tool -r "$R1" -s 00A4040007627601FF000000 -s B070000004 >"$W/after.txt" 2>&1 ||
    it_fail "APDUs after the pcscd restart failed"
grep -q '58 76 80 72' "$W/after.txt" || it_fail "GET VERSION after the pcscd restart"

# One card, one owner: a second vtoken on the same state file is refused.
if "$BUILD/bin/vtoken" --state "$W/b.card" --port 1 2>"$W/dup.txt"; then
    it_fail "a second vtoken served the same card"
fi
grep -q 'in use' "$W/dup.txt" || { cat "$W/dup.txt"; it_fail "no 'in use' message"; }

# The state file is readable and keeps no private material in --show.
"$BUILD/bin/vtoken" --show "$W/b.card" >"$W/show.txt" || it_fail "vtoken --show failed"
cat "$W/show.txt"
grep -q 'protocol   SCP03' "$W/show.txt" || it_fail "--show: protocol"
grep -q 'cuid       40907901001F00000002' "$W/show.txt" || it_fail "--show: cuid"
grep -q 'key set 01 AES-128 KCV enc 504A77' "$W/show.txt" || it_fail "--show: key set KCVs"
if grep -qi '404142434445' "$W/show.txt"; then it_fail "--show printed key material"; fi
[ "$(stat -c %a "$W/b.card")" = 600 ] || it_fail "state file is not mode 0600"

# --init with a config file creates a card and exits; bad settings are refused by name.
printf '# factory\nproto=2\ncuid=40907901001F00000099\nkey.version=FF\napplet.version=1.4.0000abcd\n' \
    >"$W/c.conf"
"$BUILD/bin/vtoken" --init "$W/c.card" --config "$W/c.conf" || it_fail "vtoken --init failed"
"$BUILD/bin/vtoken" --show "$W/c.card" >"$W/show-c.txt" || it_fail "--show of the new card"
grep -q 'protocol   SCP02' "$W/show-c.txt" || it_fail "--init: proto from the config file"
grep -q 'key set FF DES3-128 KCV enc 8BAF47' "$W/show-c.txt" || it_fail "--init: key version"
grep -q 'version    1.4.0000abcd' "$W/show-c.txt" || it_fail "--init: applet version"
if "$BUILD/bin/vtoken" --init "$W/d.card" --set proto=7 2>"$W/bad.txt"; then
    it_fail "vtoken accepted proto=7"
fi
grep -q "proto" "$W/bad.txt" || it_fail "the error does not name the setting"
[ ! -e "$W/d.card" ] || it_fail "a refused card left a state file"
it_ok "30-vtoken-pcsc"
