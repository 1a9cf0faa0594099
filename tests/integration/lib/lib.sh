# tests/integration/lib/lib.sh - shared helpers of the integration scripts (POSIX sh).
#   . "$(dirname "$0")/lib/lib.sh"
#   trap it_cleanup EXIT INT TERM
#   it_need slapd haproxy          a missing program is a failure: scripts/deps.sh installs it
#   W=$(it_workdir)                a private temporary directory (kept on failure)
#   P=$(it_port)                   a free TCP port on 127.0.0.1
#   it_start NAME CMD ARGS...      starts CMD in the background, output in $W/NAME.log
#   it_wait_tcp HOST PORT SECS     waits until HOST:PORT accepts connections
#   it_fail MESSAGE                prints the message (and the daemon logs) and exits 1
# BUILD (set by tests/run-tests.sh) is the build directory holding bin/ and libraries.

: "${BUILD:=build/release}"
IT_TOP=$(cd "$(dirname "$0")/../.." && pwd)
# BUILD as an absolute path, so scripts may cd anywhere
case $BUILD in /*) ;; *) BUILD=$IT_TOP/$BUILD ;; esac
IT_PIDS=""
IT_OK=0
# One private work directory per script, made now so that W=$(it_workdir) (a subshell) and
# it_cleanup (the script's shell) agree on it.
IT_WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/tpsgw-it.XXXXXX")

it_log() {
    echo "[$(date +%H:%M:%S)] $*"
}

it_need() {
    for prog in "$@"; do
        command -v "$prog" >/dev/null 2>&1 || [ -x "/usr/sbin/$prog" ] \
            || it_fail "required program '$prog' is not installed: run 'make deps'"
    done
}

it_workdir() {
    echo "$IT_WORKDIR"
}

# A free port: random in 21000-32499 (below the kernel's ephemeral range, so an outgoing
# connection cannot take it meanwhile), not currently bound (checked with ss).
it_port() {
    while :; do
        p=$(( 21000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 11500 ))
        if ! ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then
            echo "$p"
            return 0
        fi
    done
}

# it_start NAME CMD...: the PID is recorded for it_cleanup and stored in $IT_LAST_PID.
it_start() {
    name=$1; shift
    w=$(it_workdir)
    "$@" >"$w/$name.log" 2>&1 &
    IT_LAST_PID=$!
    IT_PIDS="$IT_PIDS $IT_LAST_PID"
    echo "$IT_LAST_PID" >"$w/$name.pid"
    it_log "started $name (pid $IT_LAST_PID): $*"
}

# it_stop NAME: stops a daemon started with it_start (SIGTERM, then SIGKILL after 10 s).
it_stop() {
    w=$(it_workdir)
    [ -f "$w/$1.pid" ] || return 0
    pid=$(cat "$w/$1.pid")
    kill "$pid" 2>/dev/null
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    rm -f "$w/$1.pid"
}

it_wait_tcp() {
    host=$1; port=$2; secs=${3:-20}
    i=0
    while [ $i -lt $((secs * 10)) ]; do
        if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
            return 0
        fi
        # POSIX sh has no /dev/tcp: fall back to ss for listening sockets
        if ss -Htln "sport = :$port" 2>/dev/null | grep -q .; then
            return 0
        fi
        sleep 0.1
        i=$((i + 1))
    done
    it_fail "nothing listens on $host:$port after ${secs}s"
}

it_fail() {
    echo "FAIL: $*" >&2
    if [ -n "$IT_WORKDIR" ]; then
        for f in "$IT_WORKDIR"/*.log; do
            [ -f "$f" ] || continue
            echo "---- $f (last 30 lines)" >&2
            tail -30 "$f" >&2
        done
    fi
    exit 1
}

# it_ok: call at the end of a passing script; the work directory is then removed.
it_ok() {
    IT_OK=1
    echo "${1:-integration}: 1 passed, 0 failed"
}

it_cleanup() {
    for pid in $IT_PIDS; do
        kill "$pid" 2>/dev/null
    done
    for pid in $IT_PIDS; do
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -9 "$pid" 2>/dev/null
    done
    if [ -n "$IT_WORKDIR" ]; then
        if [ "$IT_OK" = 1 ]; then
            rm -rf "$IT_WORKDIR"
        else
            echo "kept work directory: $IT_WORKDIR" >&2
        fi
    fi
}
