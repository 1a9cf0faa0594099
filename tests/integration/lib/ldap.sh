# tests/integration/lib/ldap.sh - a two-provider OpenLDAP pair on loopback (POSIX sh).
# Source it after lib.sh:
#   . "$(dirname "$0")/lib/lib.sh"; . "$(dirname "$0")/lib/ldap.sh"
#   trap it_cleanup EXIT INT TERM
#   it_ldap_pair_start              both slapd up, replication proven both ways, or it_fail
#   ldapsearch -x -H "$LDAP1_URI" -D "$LDAP_ROOTDN" -y "$LDAP_ROOTPW_FILE" -b ...
#   it_ldap_wait_converged [SECS]   waits until every suffix has equal contextCSNs on both
#   it_ldap_node_stop N / it_ldap_node_start N   stop or restart node 1 or 2 (same data)
#   it_ldap_pair_info               prints the variables below as sh assignments
#   it_ldap_pair_stop               stops both nodes (it_cleanup also does)
#
# Settings, read by it_ldap_pair_start (all optional):
#   LDAP_SUFFIXES      space-separated suffixes, default "dc=example,dc=com o=pki-sim"; the
#                      first RDN of each must be dc=, o= or ou= (the helper creates the entry)
#   LDAP_ROOTDN        root DN of every database, default "cn=Manager,<first suffix>"; it
#                      must lie under one of the suffixes (slapd checks its password there)
#   LDAP_ROOTPW        its password, default random
#   LDAP_PAIR_DIR      where configs, data and logs go, default $IT_WORKDIR/ldap
#   LDAP_PAIR_SCHEMAS  extra schema LDIF files (cn=config form), loaded after
#                      core, cosine, inetorgperson and every conf/ldap/schema/*.ldif
#   LDAP_PAIR_INDEXES  extra olcDbIndex values for every database, separated by ';'
#                      (e.g. "tokenUserID,tokenID eq,pres,sub;tokenStatus eq")
#   LDAP_PAIR_MAXSIZE  mdb map size in bytes, default 268435456
#   LDAP1_PORT LDAP2_PORT  fixed ports (default: free ports below 32768)
# Results (exported):
#   LDAP1_URI LDAP2_URI  ldap://127.0.0.1:PORT/ of node 1 and 2;  LDAP_URIS  "URI1 URI2"
#   LDAP1_PORT LDAP2_PORT LDAP_ROOTDN LDAP_ROOTPW LDAP_ROOTPW_FILE (mode 0600, no newline)
#   LDAP_SUFFIXES (as used)
# Each suffix gets its own mdb database with syncprov, olcMultiProvider and a syncrepl
# consumer of the peer; the suffix entries are created on node 1 by the helper, so callers
# add entries below them. Daemons are started with it_start (names ldap1, ldap2), so
# it_cleanup stops them.

: "${IT_TOP:?ldap.sh: source lib.sh first}"
LDAP_SLAPD=${LDAP_SLAPD:-slapd}
LDAP_MODULE_DIR=${LDAP_MODULE_DIR:-/usr/lib/ldap}
LDAP_SYS_SCHEMA_DIR=${LDAP_SYS_SCHEMA_DIR:-/etc/ldap/schema}

# ldap_port: a free loopback port below the kernel's ephemeral range (32768-60999): replication
# and clients open many short connections whose source ports could otherwise take it.
ldap_port() {
    while :; do
        _lp=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 12000 ))
        if ! ss -Htan "sport = :$_lp" 2>/dev/null | grep -q .; then
            echo "$_lp"
            return 0
        fi
    done
}

# ldap_q URI ARGS...: ldapsearch as the root DN, LDIF without comments or wrapping.
ldap_q() {
    _u=$1; shift
    ldapsearch -x -LLL -o ldif-wrap=no -o nettimeout=3 -H "$_u" -D "$LDAP_ROOTDN" \
        -y "$LDAP_ROOTPW_FILE" "$@"
}

# ldap_mod URI: ldapmodify as the root DN, LDIF on stdin (changetype in the LDIF).
ldap_mod() {
    ldapmodify -x -o nettimeout=3 -H "$1" -D "$LDAP_ROOTDN" -y "$LDAP_ROOTPW_FILE"
}

# ldap_wait_entry URI DN SECS [absent]: waits until DN exists (or is gone with "absent").
ldap_wait_entry() {
    _i=0
    while [ $_i -lt $(($3 * 10)) ]; do
        if ldap_q "$1" -s base -b "$2" 1.1 >/dev/null 2>&1; then
            [ "${4:-}" = absent ] || return 0
        else
            [ "${4:-}" = absent ] && return 0
        fi
        sleep 0.1
        _i=$((_i + 1))
    done
    return 1
}

# Writes the cn=config LDIF of node N (1 or 2) to stdout.
ldap_node_ldif() {
    _n=$1
    _peer=$((3 - _n))
    _d=$LDAP_PAIR_DIR/node$_n
    eval "_peer_port=\$LDAP${_peer}_PORT"
    sed -e "s|@SERVER_ID@|$_n|g" -e "s|@RUN_DIR@|$_d/run|g" \
        -e "s|@MODULE_DIR@|$LDAP_MODULE_DIR|g" "$IT_TOP/conf/ldap/pair-node.ldif.in"
    for _s in "$LDAP_SYS_SCHEMA_DIR/core.ldif" "$LDAP_SYS_SCHEMA_DIR/cosine.ldif" \
        "$LDAP_SYS_SCHEMA_DIR/inetorgperson.ldif" "$IT_TOP"/conf/ldap/schema/*.ldif \
        ${LDAP_PAIR_SCHEMAS:-}; do
        [ -f "$_s" ] || continue
        cat "$_s"
        echo
    done
    _db=1
    for _suffix in $LDAP_SUFFIXES; do
        mkdir -p "$_d/data$_db"
        # rid: unique per consumer on this node, at most 3 digits
        _rid=$(printf '%03d' $((_db * 10 + _peer)))
        # slapd takes olcRootPW only where the root DN is under the suffix; the other
        # databases keep the same olcRootDN and the bind is checked by the first.
        _pwdel='/^olcRootPW:/d'
        case $LDAP_ROOTDN in *",$_suffix") _pwdel='/^olcRootPW-keep:/d' ;; esac
        sed -e "s|@DB@|$_db|g" -e "s|@SUFFIX@|$_suffix|g" -e "s|@DATA_DIR@|$_d/data$_db|g" \
            -e "s|@ROOTDN@|$LDAP_ROOTDN|g" -e "s|@ROOTPW@|$LDAP_ROOTPW|g" \
            -e "s|@RID@|$_rid|g" -e "s|@PEER_URI@|ldap://127.0.0.1:$_peer_port/|g" \
            -e "s|@MAXSIZE@|${LDAP_PAIR_MAXSIZE:-268435456}|g" \
            -e "$_pwdel" "$IT_TOP/conf/ldap/pair-db.ldif.in" | awk -v idx="${LDAP_PAIR_INDEXES:-}" '
            /^olcSyncrepl:/ && idx != "" {
                n = split(idx, a, ";")
                for (i = 1; i <= n; i++) if (a[i] != "") print "olcDbIndex: " a[i]
            }
            { print }'
        _db=$((_db + 1))
    done
}

# The LDIF of the entry named by a suffix, from its first RDN.
ldap_suffix_entry() {
    _rdn=${1%%,*}
    _attr=${_rdn%%=*}
    _val=${_rdn#*=}
    echo "dn: $1"
    echo "changetype: add"
    case $_attr in
    dc) printf 'objectClass: domain\ndc: %s\n' "$_val" ;;
    o) printf 'objectClass: organization\no: %s\n' "$_val" ;;
    ou) printf 'objectClass: organizationalUnit\nou: %s\n' "$_val" ;;
    *) it_fail "ldap.sh: suffix '$1': first RDN must be dc=, o= or ou=" ;;
    esac
    echo
}

# it_ldap_node_start N: starts node N from its existing config and waits until it answers.
it_ldap_node_start() {
    eval "_p=\$LDAP$1_PORT"
    it_start "ldap$1" "$LDAP_SLAPD" -d "${TOPO_SLAPD_DEBUG:-0}" -F "$LDAP_PAIR_DIR/node$1/slapd.d" \
        -h "ldap://127.0.0.1:$_p/"
    _i=0
    until ldap_q "ldap://127.0.0.1:$_p/" -s base -b "" 1.1 >/dev/null 2>&1; do
        _i=$((_i + 1))
        [ $_i -lt 200 ] || it_fail "ldap node $1 does not answer on port $_p after 20 s"
        sleep 0.1
    done
}

# it_ldap_node_stop N: stops node N (SIGTERM; its data stays for a restart).
it_ldap_node_stop() {
    it_stop "ldap$1"
}

it_ldap_pair_start() {
    it_need "$LDAP_SLAPD" slapadd ldapsearch ldapmodify
    LDAP_SUFFIXES=${LDAP_SUFFIXES:-"dc=example,dc=com o=pki-sim"}
    for s in $LDAP_SUFFIXES; do
        case ${s%%=*} in
        dc | o | ou) ;;
        *) it_fail "ldap.sh: suffix '$s': its first RDN must be dc=, o= or ou=" ;;
        esac
    done
    # shellcheck disable=SC2086
    set -- $LDAP_SUFFIXES
    LDAP_ROOTDN=${LDAP_ROOTDN:-"cn=Manager,$1"}
    LDAP_ROOTPW=${LDAP_ROOTPW:-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')}
    it_workdir >/dev/null # in this shell: $(it_workdir) would make a new directory each time
    LDAP_PAIR_DIR=${LDAP_PAIR_DIR:-$IT_WORKDIR/ldap}
    LDAP1_PORT=${LDAP1_PORT:-$(ldap_port)}
    LDAP2_PORT=${LDAP2_PORT:-$(ldap_port)}
    while [ "$LDAP2_PORT" = "$LDAP1_PORT" ]; do LDAP2_PORT=$(ldap_port); done
    LDAP1_URI="ldap://127.0.0.1:$LDAP1_PORT/"
    LDAP2_URI="ldap://127.0.0.1:$LDAP2_PORT/"
    LDAP_URIS="$LDAP1_URI $LDAP2_URI"
    mkdir -p "$LDAP_PAIR_DIR"
    LDAP_ROOTPW_FILE=$LDAP_PAIR_DIR/rootpw
    (umask 077 && printf '%s' "$LDAP_ROOTPW" >"$LDAP_ROOTPW_FILE")
    export LDAP1_URI LDAP2_URI LDAP_URIS LDAP1_PORT LDAP2_PORT LDAP_ROOTDN LDAP_ROOTPW \
        LDAP_ROOTPW_FILE LDAP_SUFFIXES

    for n in 1 2; do
        d=$LDAP_PAIR_DIR/node$n
        rm -rf "$d"
        mkdir -p "$d/slapd.d" "$d/run"
        (umask 077 && ldap_node_ldif $n >"$d/config.ldif")
        slapadd -n0 -F "$d/slapd.d" -l "$d/config.ldif" >"$d/slapadd.log" 2>&1 \
            || it_fail "slapadd of node $n config failed: $(tail -5 "$d/slapadd.log")"
    done
    it_ldap_node_start 1
    it_ldap_node_start 2

    # Node 1 -> node 2: the suffix entries, written on node 1 only.
    for s in $LDAP_SUFFIXES; do
        ldap_suffix_entry "$s" | ldap_mod "$LDAP1_URI" >/dev/null \
            || it_fail "cannot add suffix entry '$s' on node 1"
    done
    for s in $LDAP_SUFFIXES; do
        ldap_wait_entry "$LDAP2_URI" "$s" 20 \
            || it_fail "replication node 1 -> 2 does not work: '$s' absent on node 2"
    done
    # Node 2 -> node 1: a probe entry per suffix, written on node 2, then deleted there.
    for s in $LDAP_SUFFIXES; do
        printf 'dn: cn=pair-probe,%s\nchangetype: add\nobjectClass: organizationalRole\ncn: pair-probe\n\n' \
            "$s" | ldap_mod "$LDAP2_URI" >/dev/null || it_fail "cannot add probe under '$s' on node 2"
    done
    for s in $LDAP_SUFFIXES; do
        ldap_wait_entry "$LDAP1_URI" "cn=pair-probe,$s" 20 \
            || it_fail "replication node 2 -> 1 does not work under '$s'"
        printf 'dn: cn=pair-probe,%s\nchangetype: delete\n\n' "$s" | ldap_mod "$LDAP2_URI" >/dev/null \
            || it_fail "cannot delete probe under '$s' on node 2"
    done
    for s in $LDAP_SUFFIXES; do
        ldap_wait_entry "$LDAP1_URI" "cn=pair-probe,$s" 20 absent \
            || it_fail "delete of the probe under '$s' did not replicate to node 1"
    done
    it_ldap_wait_converged 20
    it_log "ldap pair up: $LDAP1_URI $LDAP2_URI suffixes: $LDAP_SUFFIXES"
}

# ldap_csns URI SUFFIX: the sorted contextCSN values of SUFFIX on URI.
ldap_csns() {
    ldap_q "$1" -s base -b "$2" contextCSN 2>/dev/null | grep '^contextCSN:' | sort
}

# it_ldap_wait_converged [SECS]: waits until both nodes hold equal, non-empty contextCSN sets
# for every suffix (both nodes have seen the same changes).
it_ldap_wait_converged() {
    _secs=${1:-20}
    _i=0
    while :; do
        _ok=1
        for _s in $LDAP_SUFFIXES; do
            _a=$(ldap_csns "$LDAP1_URI" "$_s")
            _b=$(ldap_csns "$LDAP2_URI" "$_s")
            if [ -z "$_a" ] || [ "$_a" != "$_b" ]; then
                _ok=0
                break
            fi
        done
        [ $_ok = 1 ] && return 0
        _i=$((_i + 1))
        [ $_i -lt $((_secs * 10)) ] || it_fail "ldap pair not converged after ${_secs}s ($_s)"
        sleep 0.1
    done
}

it_ldap_pair_info() {
    cat <<EOF
LDAP1_URI='$LDAP1_URI'
LDAP2_URI='$LDAP2_URI'
LDAP_URIS='$LDAP_URIS'
LDAP_ROOTDN='$LDAP_ROOTDN'
LDAP_ROOTPW='$LDAP_ROOTPW'
LDAP_ROOTPW_FILE='$LDAP_ROOTPW_FILE'
LDAP_SUFFIXES='$LDAP_SUFFIXES'
EOF
}

it_ldap_pair_stop() {
    it_ldap_node_stop 1
    it_ldap_node_stop 2
}
