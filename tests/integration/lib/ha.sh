# tests/integration/lib/ha.sh - helpers of the HA scripts (8*-ha-*.sh) over scripts/topology.sh
# (POSIX sh; source after lib.sh):
#   ha_up                       starts the whole topology in $IT_WORKDIR/topo (no PC/SC unless
#                               HA_PCSC=1) and loads its topo.env; it_cleanup stops it
#   ha_topo CMD ARGS...         scripts/topology.sh CMD ARGS... on that directory
#   ha_tc ARGS...               tokenclient through the balancer as alice (output: $W/tc.out)
#   ha_batch N CUID OP [FILE]   N emulated cards at once; fails unless "N passed, 0 failed"
#   ha_agent PORT               prints the agent-check line of a tpsgw
#   ha_wait_agent PORT GLOB SECS    waits until that line matches the shell pattern GLOB
#   ha_health PORT              prints the HTTP code of GET /health on a status port
#   ha_wait_health PORT CODE SECS   waits until /health answers CODE
#   ha_served N CUID            how many op.end lines of tps N name that CUID
#   ha_token CUID ATTR [URI]    one attribute of a token entry (default provider 1)
#   ha_tks_delay MS             every TKS call of both clones takes MS longer (0: normal)
#   ha_dump URI                 the token DB subtree as sorted LDIF (for convergence checks)
#   ha_lbstate SERVER           HAProxy's status of be_tps_http/SERVER ("UP", "DOWN",
#                               "DRAIN (agent)", ...)
#   ha_wait_lbstate SERVER STATE SECS   waits until that status is STATE or "STATE (...)"
#   ha_live N                   tpsgw_sessions_live of instance N (from its /metrics)

HA_TOPO=$IT_WORKDIR/topo
HA_TC=$BUILD/bin/tokenclient

ha_topo() {
    _c=$1
    shift
    TOPO_BIN=$BUILD/bin sh "$IT_TOP/scripts/topology.sh" "$_c" "$@" "$HA_TOPO"
}

ha_up() {
    it_need slapd haproxy curl perl ldapsearch
    [ -x "$HA_TC" ] || it_fail "$HA_TC not built"
    # shellcheck disable=SC2064
    trap "TOPO_BIN=$BUILD/bin sh '$IT_TOP/scripts/topology.sh' stop '$HA_TOPO' >/dev/null 2>&1; it_cleanup" EXIT INT TERM
    TOPO_PCSC=${HA_PCSC:-0} TOPO_BIN=$BUILD/bin sh "$IT_TOP/scripts/topology.sh" start "$HA_TOPO" \
        >"$IT_WORKDIR/topology.out" 2>&1 || it_fail "topology: $(tail -40 "$IT_WORKDIR/topology.out")"
    . "$HA_TOPO/topo.env"
    it_log "topology up: balancer $PUBLIC_URL"
}

ha_tc() {
    "$HA_TC" --server "$PUBLIC_URL/tps/tps" --user alice --password-file "$ALICE_PW" \
        --new-pin-file "$PIN_FILE" --no-progress --timeout 60 "$@" >"$IT_WORKDIR/tc.out" 2>&1
}

ha_batch() {
    _out=${4:-$IT_WORKDIR/batch.out}
    "$HA_TC" --server "$PUBLIC_URL/tps/tps" --user alice --password-file "$ALICE_PW" \
        --new-pin-file "$PIN_FILE" --no-progress --timeout 60 --emulate "$1" --cuid "$2" "$3" \
        >"$_out" 2>&1
    _rc=$?
    grep -q "^$1 passed, 0 failed" "$_out" && [ $_rc = 0 ] ||
        it_fail "batch of $1 $3 from $2: exit $_rc: $(tail -20 "$_out")"
}

ha_agent() {
    perl -MIO::Socket::INET -e '
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $ARGV[0], Timeout => 3)
            or exit 1;
        local $/; my $l = <$s>; print $l;' "$1"
}

ha_wait_agent() {
    _i=0
    while :; do
        # shellcheck disable=SC2254
        case $(ha_agent "$1") in $2) break ;; esac
        _i=$((_i + 1))
        [ $_i -lt $(($3 * 10)) ] || it_fail "agent port $1 says '$(ha_agent "$1")', not '$2', after $3 s"
        sleep 0.1
    done
}

ha_health() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://127.0.0.1:$1/health"
}

ha_wait_health() {
    _i=0
    while [ "$(ha_health "$1")" != "$2" ]; do
        _i=$((_i + 1))
        [ $_i -lt $(($3 * 10)) ] || it_fail "status port $1: /health is not $2 after $3 s"
        sleep 0.1
    done
}

ha_served() {
    grep 'op.end' "$HA_TOPO/tps$1.audit.log" 2>/dev/null | grep -c "cuid=$2"
}

ha_token() {
    ldapsearch -x -LLL -o ldif-wrap=no -o nettimeout=3 -H "${3:-$LDAP1_URI}" -D "$LDAP_ROOTDN" \
        -y "$LDAP_ROOTPW_FILE" -b "cn=$1,ou=Tokens,$BASEDN" -s base "$2" 2>/dev/null |
        sed -n "s/^$2: //p"
}

ha_tks_delay() {
    for _a in "$TKS1_ADMIN" "$TKS2_ADMIN"; do
        if [ "$1" = 0 ]; then
            curl -s --max-time 3 -X POST "http://127.0.0.1:$_a/sim/fault?mode=none" >/dev/null
        else
            curl -s --max-time 3 -X POST "http://127.0.0.1:$_a/sim/fault?mode=delay&ms=$1" >/dev/null
        fi || it_fail "cannot set the TKS fault"
    done
}

# Entries under the token DB root, operational attributes excluded, one sorted block each.
ha_dump() {
    ldapsearch -x -LLL -o ldif-wrap=no -o nettimeout=3 -H "$1" -D "$LDAP_ROOTDN" \
        -y "$LDAP_ROOTPW_FILE" -b "$BASEDN" '(objectClass=*)' '*' 2>/dev/null |
        perl -e 'local $/ = ""; my @e; while (<>) { my @l = sort split /\n/; push @e, join("\n", @l) . "\n"; }
                 print join("\n", sort @e);'
}

ha_lbstate() {
    perl -MIO::Socket::UNIX -e '
        my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or exit 1;
        print $s "show stat\n";
        while (<$s>) { my @f = split /,/; print "$f[17]\n" if $f[0] eq "be_tps_http" && $f[1] eq $ARGV[1]; }' \
        "$HA_TOPO/haproxy.sock" "$1"
}

ha_wait_lbstate() {
    _i=0
    while :; do
        case $(ha_lbstate "$1") in "$2" | "$2 "*) break ;; esac
        _i=$((_i + 1))
        [ $_i -lt $(($3 * 10)) ] || it_fail "HAProxy: $1 is '$(ha_lbstate "$1")', not $2, after $3 s"
        sleep 0.1
    done
}

ha_live() {
    eval "_sp=\$TPS$1_STATUS"
    curl -s --max-time 2 "http://127.0.0.1:$_sp/metrics" | sed -n 's/^tpsgw_sessions_live{[^}]*} //p'
}

# ha_wait_live N SECS: waits until instance N serves at least one session.
ha_wait_live() {
    _i=0
    while [ "$(ha_live "$1")" = 0 ] || [ -z "$(ha_live "$1")" ]; do
        _i=$((_i + 1))
        [ $_i -lt $(($2 * 20)) ] || it_fail "tps$1 got no session in $2 s"
        sleep 0.05
    done
}
