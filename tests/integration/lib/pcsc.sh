# tests/integration/lib/pcsc.sh - PC/SC without hardware: a private pcscd with the vpcd reader
# driver, and vtoken cards on its slots (POSIX sh; source after lib.sh).
#   . "$(dirname "$0")/lib/lib.sh"; . "$(dirname "$0")/lib/pcsc.sh"
#   it_pcscd_start NAME [PORT]      private pcscd (own mount namespace, own vpcd channel):
#                                   sets IT_PCSC_PORT (slot 0; slot 1 is +1) and exports
#                                   PCSCLITE_CSOCK_NAME so every PC/SC client of the script
#                                   (opensc-tool, pkcs11-tool, tokenclient) talks to it
#   it_vtoken_start NAME STATE SLOT [vtoken options...]
#                                   vtoken serving STATE on slot SLOT (0 or 1) of that pcscd
#   it_pcsc_wait_card SLOT SECS     waits until the reader of SLOT shows a card
#   it_pcsc_wait_nocard SLOT SECS   waits until it shows none
#   it_pcscd_stop NAME              stops pcscd (it_cleanup does it too)
# Call `it_workdir >/dev/null; W=$IT_WORKDIR` (not W=$(it_workdir)) before these helpers.
# Several scripts (and a system pcscd on /run/pcscd) can run at once: each pcscd binds its
# own run directory over /run/pcscd inside its own mount namespace and listens for cards on
# its own pair of ports, so nothing is shared (test-environment: "second pcscd").

IT_VPCD_DRIVER=${IT_VPCD_DRIVER:-/usr/lib/pcsc/drivers/serial/libifdvpcd.so}

# An even port P with P and P+1 unused by any TCP socket: vpcd's slot s listens on
# CHANNELID + s and binds without SO_REUSEADDR, so the pair stays below the ephemeral range.
it_pcsc_ports() {
    while :; do
        p=$(( 21000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 11000 ))
        p=$((p - p % 2))
        if ! ss -Htan "sport = :$p" 2>/dev/null | grep -q . &&
            ! ss -Htan "sport = :$((p + 1))" 2>/dev/null | grep -q .; then
            echo "$p"
            return 0
        fi
    done
}

# lib.sh's it_workdir sets IT_WORKDIR only when run in the current shell (not in $(...)):
# call it once here so every helper and it_start agree on one directory.
it_pcsc_workdir() {
    it_workdir >/dev/null
    echo "$IT_WORKDIR"
}

it_pcscd_start() {
    name=$1
    it_workdir >/dev/null
    w=$IT_WORKDIR
    it_need pcscd unshare opensc-tool
    [ -f "$IT_VPCD_DRIVER" ] || it_fail "vpcd driver $IT_VPCD_DRIVER missing: run 'make deps'"
    IT_PCSC_PORT=${2:-$(it_pcsc_ports)}
    mkdir -p "$w/$name.conf" "$w/$name.run" /run/pcscd
    hexport=$(printf '0x%04X' "$IT_PCSC_PORT")
    cat >"$w/$name.conf/vpcd" <<CONF
FRIENDLYNAME "Virtual PCD"
DEVICENAME   /dev/null:$hexport
LIBPATH      $IT_VPCD_DRIVER
CHANNELID    $hexport
CONF
    # unshare execs (no fork): the recorded PID is pcscd's own
    it_start "$name" unshare -m --propagation private sh -c \
        "mount --bind '$w/$name.run' /run/pcscd && exec pcscd --foreground -c '$w/$name.conf'"
    PCSCLITE_CSOCK_NAME="$w/$name.run/pcscd.comm"
    export PCSCLITE_CSOCK_NAME
    i=0
    while [ ! -S "$PCSCLITE_CSOCK_NAME" ]; do
        i=$((i + 1))
        [ $i -lt 100 ] || it_fail "pcscd $name: no socket $PCSCLITE_CSOCK_NAME after 10 s"
        kill -0 "$IT_LAST_PID" 2>/dev/null || it_fail "pcscd $name exited"
        sleep 0.1
    done
    it_wait_tcp 127.0.0.1 "$IT_PCSC_PORT" 10
    it_log "pcscd $name: socket $PCSCLITE_CSOCK_NAME, vpcd slots on $IT_PCSC_PORT and $((IT_PCSC_PORT + 1))"
}

it_pcscd_stop() {
    it_stop "$1"
}

# it_vtoken_start NAME STATE SLOT [options]: BUILD holds bin/vtoken.
it_vtoken_start() {
    name=$1; state=$2; slot=$3; shift 3
    [ -x "$BUILD/bin/vtoken" ] || it_fail "$BUILD/bin/vtoken not built"
    it_start "$name" "$BUILD/bin/vtoken" --log-level info --state "$state" \
        --port $((IT_PCSC_PORT + slot)) "$@"
}

# The reader name of a slot, as pcscd lists it: "Virtual PCD 00 0<slot>".
it_pcsc_reader() {
    echo "Virtual PCD 00 0$1"
}

# it_pcsc_wait_card SLOT SECS: `opensc-tool -l` shows "Yes" (card present) for the slot.
it_pcsc_wait_card() {
    r=$(it_pcsc_reader "$1"); secs=${2:-10}
    i=0
    while [ $i -lt $((secs * 5)) ]; do
        if opensc-tool -l 2>/dev/null | grep -F "$r" | grep -q 'Yes'; then
            return 0
        fi
        sleep 0.2
        i=$((i + 1))
    done
    opensc-tool -l >&2 || true
    it_fail "no card in reader '$r' after ${secs}s"
}

it_pcsc_wait_nocard() {
    r=$(it_pcsc_reader "$1"); secs=${2:-10}
    i=0
    while [ $i -lt $((secs * 5)) ]; do
        if opensc-tool -l 2>/dev/null | grep -F "$r" | grep -q 'No'; then
            return 0
        fi
        sleep 0.2
        i=$((i + 1))
    done
    it_fail "reader '$r' still shows a card after ${secs}s"
}
