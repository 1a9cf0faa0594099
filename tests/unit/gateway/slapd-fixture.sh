#!/bin/sh
# tests/unit/gateway/slapd-fixture.sh - real slapd for the token DB and LDAP-auth cmocka tests.
#   slapd-fixture.sh pair DIR [PID]    two-provider pair (tests/integration/lib/ldap.sh) with
#                                      the token DB schema, DIT, ACLs and test users
#   slapd-fixture.sh single DIR [PID]  one slapd built from LDIF, schema/database/ACLs added
#                                      at run time over ldapi (the admin path), StartTLS on
#   slapd-fixture.sh stop DIR          stops the daemons (SIGCONT first) and removes DIR
# DIR must exist and be empty; on success DIR/env holds KEY=VALUE lines for the test
# (URI1 URI2 PORT1 PORT2 PID1 PID2 BASEDN ROOTDN ROOTPW_FILE GWDN GWPW_FILE CA_FILE ...).
# With PID, a watchdog stops the daemons when that process is gone (a crashed test leaves
# nothing running). Loopback only; random ports.
set -u
TOP=$(cd "$(dirname "$0")/../../.." && pwd)
MODE=${1:?usage: slapd-fixture.sh pair|single|stop DIR [PID]}
DIR=${2:?usage: slapd-fixture.sh pair|single|stop DIR [PID]}
WATCH=${3:-}
BASEDN="dc=tps,dc=example"
GWDN="cn=tpsgw,ou=Services,$BASEDN"

# Alive and not a zombie (the daemons are orphans; PID 1 of a container may not reap them).
tdb_alive() {
    kill -0 "$1" 2>/dev/null && ! grep -q ') Z' "/proc/$1/stat" 2>/dev/null
}

tdb_stop_all() {
    for f in "$DIR"/ldap1.pid "$DIR"/ldap2.pid "$DIR"/single.pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        kill -CONT "$pid" 2>/dev/null
        kill "$pid" 2>/dev/null
    done
    for f in "$DIR"/ldap1.pid "$DIR"/ldap2.pid "$DIR"/single.pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        i=0
        while tdb_alive "$pid" && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -9 "$pid" 2>/dev/null
        rm -f "$f"
    done
    if [ -f "$DIR/watchdog.pid" ]; then
        kill "$(cat "$DIR/watchdog.pid")" 2>/dev/null
        rm -f "$DIR/watchdog.pid"
    fi
}

# Starts a watchdog that stops the daemons once process $WATCH has exited.
tdb_watchdog() {
    [ -n "$WATCH" ] || return 0
    (
        trap '' HUP
        while kill -0 "$WATCH" 2>/dev/null; do sleep 0.5; done
        for f in "$DIR"/ldap1.pid "$DIR"/ldap2.pid "$DIR"/single.pid; do
            [ -f "$f" ] && kill -CONT "$(cat "$f")" 2>/dev/null && kill "$(cat "$f")" 2>/dev/null
        done
    ) </dev/null >/dev/null 2>&1 &
    echo $! >"$DIR/watchdog.pid"
}

tdb_fail() {
    echo "slapd-fixture: $*" >&2
    for f in "$DIR"/*.log "$DIR"/ldap/node*/slapadd.log; do
        [ -f "$f" ] || continue
        echo "---- $f" >&2
        tail -20 "$f" >&2
    done
    tdb_stop_all
    exit 1
}

# The DIT, the gateway identity and the test users/groups, as an LDIF for ldapadd.
tdb_data_ldif() {
    sed -e "s|@BASEDN@|$BASEDN|g" -e "s|@GATEWAY_PASSWORD@|$GWPW|g" \
        "$TOP/conf/ldap/tokendb-base.ldif.in"
    cat <<EOF

dn: uid=alice,ou=People,$BASEDN
objectClass: inetOrgPerson
uid: alice
cn: Alice Example
sn: Example
mail: alice@example.com
userPassword: alice-secret

dn: uid=bob,ou=People,$BASEDN
objectClass: inetOrgPerson
objectClass: tpsProfileID
objectClass: cmsuser
uid: bob
cn: Bob Agent
sn: Agent
usertype: agentType
profileID: All Profiles
userPassword: bob-secret

dn: uid=carol,ou=People,$BASEDN
objectClass: inetOrgPerson
uid: carol
cn: Carol User
sn: User
userPassword: carol-secret

dn: uid=twin,ou=People,$BASEDN
objectClass: inetOrgPerson
uid: twin
cn: Twin One
sn: One
userPassword: twin-secret

dn: cn=twin2,ou=People,$BASEDN
objectClass: inetOrgPerson
uid: twin
cn: twin2
sn: Two
userPassword: twin-secret

dn: cn=TPS Agents,ou=Groups,$BASEDN
objectClass: groupOfUniqueNames
cn: TPS Agents
uniqueMember: uid=bob,ou=People,$BASEDN

EOF
}

tdb_acl_ldif() {
    sed -e "s|@DATABASE@|$1|g" -e "s|@BASEDN@|$BASEDN|g" -e "s|@GATEWAY_DN@|$GWDN|g" \
        -e "s|@REPL_DN@|$2|g" "$TOP/conf/ldap/tokendb-acl.ldif.in"
}

tdb_secrets() {
    GWPW=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
    (umask 077 && printf '%s\n' "$GWPW" >"$DIR/gw.pw")
}

tdb_pair() {
    set +u # ldap.sh reads optional settings that may be unset
    # lib.sh computes IT_TOP from $0 (meant for tests/integration/); point it at the tree.
    . "$TOP/tests/integration/lib/lib.sh"
    . "$TOP/tests/integration/lib/ldap.sh"
    IT_TOP=$TOP
    IT_WORKDIR=$DIR
    LDAP_SUFFIXES=$BASEDN
    LDAP_PAIR_DIR=$DIR/ldap
    LDAP_PAIR_INDEXES="tokenUserID,tokenID eq,pres,sub;tokenStatus,tokenType,tokenSerial,tokenKeyType,tokenOrigin eq;dateOfCreate,dateOfModify eq,pres"
    export LDAP_SUFFIXES LDAP_PAIR_DIR LDAP_PAIR_INDEXES
    tdb_secrets
    # it_fail exits; make it stop what was started first.
    it_fail() { tdb_fail "$*"; }
    it_ldap_pair_start >"$DIR/pair.log" 2>&1 || tdb_fail "pair start failed"
    tdb_watchdog
    tdb_data_ldif | ldapadd -x -o nettimeout=3 -H "$LDAP1_URI" -D "$LDAP_ROOTDN" \
        -y "$LDAP_ROOTPW_FILE" >"$DIR/data.log" 2>&1 || tdb_fail "loading the DIT failed"
    ldap_wait_entry "$LDAP2_URI" "cn=TPS Agents,ou=Groups,$BASEDN" 20 \
        || tdb_fail "DIT did not replicate to node 2"
    # ACLs live in cn=config (not replicated): apply on each node, offline with slapmodify,
    # exactly as an admin would without ldapi access.
    for n in 1 2; do
        it_ldap_node_stop $n
        tdb_acl_ldif '{1}mdb' "$LDAP_ROOTDN" >"$DIR/acl$n.ldif"
        slapmodify -n0 -F "$LDAP_PAIR_DIR/node$n/slapd.d" -l "$DIR/acl$n.ldif" \
            >"$DIR/slapmodify$n.log" 2>&1 || tdb_fail "slapmodify of the ACLs on node $n failed"
        it_ldap_node_start $n >>"$DIR/pair.log" 2>&1
    done
    it_ldap_wait_converged 20 >>"$DIR/pair.log" 2>&1
    cat >"$DIR/env" <<EOF
URI1=$LDAP1_URI
URI2=$LDAP2_URI
PORT1=$LDAP1_PORT
PORT2=$LDAP2_PORT
PID1=$(cat "$DIR/ldap1.pid")
PID2=$(cat "$DIR/ldap2.pid")
BASEDN=$BASEDN
ROOTDN=$LDAP_ROOTDN
ROOTPW_FILE=$LDAP_ROOTPW_FILE
GWDN=$GWDN
GWPW_FILE=$DIR/gw.pw
EOF
}

tdb_single() {
    command -v slapd >/dev/null 2>&1 || [ -x /usr/sbin/slapd ] || tdb_fail "slapd is not installed"
    PATH=$PATH:/usr/sbin
    tdb_secrets
    ROOTDN="cn=Manager,$BASEDN"
    ROOTPW=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
    (umask 077 && printf '%s' "$ROOTPW" >"$DIR/root.pw")
    mkdir -p "$DIR/slapd.d" "$DIR/data" "$DIR/run"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
        -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
        -keyout "$DIR/key.pem" -out "$DIR/cert.pem" >"$DIR/openssl.log" 2>&1 \
        || tdb_fail "cannot make a TLS certificate"
    PORT=$(tdb_port)
    PORTS=$(tdb_port)
    while [ "$PORTS" = "$PORT" ]; do PORTS=$(tdb_port); done
    LDAPI="ldapi://$(printf '%s' "$DIR/run/ldapi" | sed 's|/|%2F|g')"
    {
        cat <<EOF
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: $DIR/run/slapd.pid
olcLogLevel: none
olcTLSCertificateFile: $DIR/cert.pem
olcTLSCertificateKeyFile: $DIR/key.pem

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

EOF
        for s in core cosine inetorgperson; do cat "/etc/ldap/schema/$s.ldif"; echo; done
        cat <<EOF
dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by dn.exact=gidNumber=$(id -g)+uidNumber=$(id -u),cn=peercred,cn=external,cn=auth manage by * none

EOF
    } >"$DIR/config.ldif"
    slapadd -n0 -F "$DIR/slapd.d" -l "$DIR/config.ldif" >"$DIR/slapadd.log" 2>&1 \
        || tdb_fail "slapadd of cn=config failed"
    slapd -d 0 -F "$DIR/slapd.d" -h "ldap://127.0.0.1:$PORT/ ldaps://127.0.0.1:$PORTS/ $LDAPI" >"$DIR/single.log" 2>&1 &
    echo $! >"$DIR/single.pid"
    tdb_watchdog
    i=0
    until ldapsearch -x -LLL -o nettimeout=1 -H "ldap://127.0.0.1:$PORT/" -s base -b "" 1.1 \
        >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 200 ] || tdb_fail "slapd does not answer on port $PORT"
        sleep 0.1
    done
    # The admin path on a running server: schema, database, ACLs through ldapi + EXTERNAL.
    ldapadd -Y EXTERNAL -H "$LDAPI" -f "$TOP/conf/ldap/schema/tokendb.ldif" \
        >"$DIR/schema.log" 2>&1 || tdb_fail "ldapadd of conf/ldap/schema/tokendb.ldif failed"
    ldapadd -Y EXTERNAL -H "$LDAPI" >"$DIR/db.log" 2>&1 <<EOF || tdb_fail "adding the database failed"
dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: $BASEDN
olcDbDirectory: $DIR/data
olcDbMaxSize: 67108864
olcRootDN: $ROOTDN
olcRootPW: $ROOTPW
olcDbIndex: objectClass eq
olcDbIndex: uid eq
olcDbIndex: tokenUserID,tokenID eq,pres,sub
olcDbIndex: tokenStatus,tokenType,tokenSerial,tokenKeyType,tokenOrigin eq
olcDbIndex: dateOfCreate,dateOfModify eq,pres
EOF
    tdb_acl_ldif '{1}mdb' "$ROOTDN" | ldapmodify -Y EXTERNAL -H "$LDAPI" >"$DIR/acl.log" 2>&1 \
        || tdb_fail "ldapmodify of the ACLs failed"
    {
        printf 'dn: %s\nobjectClass: domain\ndc: tps\n\n' "$BASEDN"
        tdb_data_ldif
    } | ldapadd -x -o nettimeout=3 -H "ldap://127.0.0.1:$PORT/" -D "$ROOTDN" -y "$DIR/root.pw" \
        >"$DIR/data.log" 2>&1 || tdb_fail "loading the DIT failed"
    cat >"$DIR/env" <<EOF
URI1=ldap://127.0.0.1:$PORT/
PORT1=$PORT
PORTS=$PORTS
PID1=$(cat "$DIR/single.pid")
BASEDN=$BASEDN
ROOTDN=$ROOTDN
ROOTPW_FILE=$DIR/root.pw
GWDN=$GWDN
GWPW_FILE=$DIR/gw.pw
CA_FILE=$DIR/cert.pem
EOF
}

# A free TCP port on 127.0.0.1: random in 21000-32499, below the kernel's ephemeral range
# (an outgoing connection could hold a port there without listening on it), not bound now.
tdb_port() {
    while :; do
        p=$((21000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 11500))
        if ! ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then
            echo "$p"
            return 0
        fi
    done
}

case $MODE in
pair) tdb_pair ;;
single) tdb_single ;;
stop)
    tdb_stop_all
    case $DIR in
    /tmp/* | "${TMPDIR:-/tmp}"/*) rm -rf "$DIR" ;;
    esac
    ;;
*) echo "usage: slapd-fixture.sh pair|single|stop DIR [PID]" >&2; exit 2 ;;
esac
exit 0
