# tests/browser/admin-env.sh - the topology of the admin API and console tests (POSIX sh),
# sourced by tests/integration/70-admin-api.sh and 71-admin-console.sh after lib.sh, ldap.sh
# and tests/sim/simtest.sh:
#   adm_setup          replicated slapd pair with the token DB schema, DIT and ACLs; staff
#                      entries and role groups; two pki-sim CA clones; enrolled tokens whose
#                      certificates the CA really issued; two admin-server instances (gw1, gw2)
#   adm_call WHO GW METHOD PATH [CURL ARGS...]
#                      HTTPS request as staff certificate WHO (agent, operator, admin, norole,
#                      unknown, foreign, none) to instance GW (gw1, gw2); body in $W/out, status
#                      in $ADM_HTTP, curl exit in $ADM_RC
#   adm_csrf WHO GW    prints WHO's CSRF token (GET /tps/rest/account)
#   jget PATH [FILE]   prints a value of the JSON in FILE ($W/out): "total",
#                      "Status.name", "entries.0.TokenID"; arrays print their length
#   ca_reason SERIAL   prints the revocation reason the CA clones hold for SERIAL ("" if none)
#   tdb_attr CUID ATTR prints ATTR of token CUID read from LDAP node 2 (replicated)
# Certificates are made at test time with the openssl CLI in $ADM_CERTS: a staff CA, the
# server certificate, agent / operator / admin / norole / unknown staff certificates, and one
# from a foreign CA. Tokens: $CUID1 (ACTIVE, signing + encryption certificates), $CUID2
# (ACTIVE, one certificate), $CUID3 (ACTIVE, none), $CUID4 (ACTIVE, a user ID holding HTML:
# $ADM_EVIL_USER), 24 FORMATTED fillers A0000000000000000000..
# A0000000000000000023 of user "filler".

ADM_BASE="dc=tps,dc=example"
ADM_BIN=${ADM_BIN:-$BUILD/bin/admin-server}
CUID1=40907901001F12345678
CUID2=40907901001F00000002
CUID3=40907901001F00000003
CUID4=40907901001F00000004
ADM_EVIL_USER="x<img src=x onerror=document.title='pwned'>"

adm_certs() {
    ADM_CERTS=$W/adm
    mkdir -p "$ADM_CERTS"
    (
        cd "$ADM_CERTS" || exit 1
        umask 077
        ossl() { openssl "$@" 2>/dev/null; }
        ossl req -x509 -newkey rsa:2048 -nodes -keyout staff-ca.key -out staff-ca.crt -days 30 \
            -subj "/O=Example/CN=TPS Staff CA" \
            -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
        ossl req -x509 -newkey rsa:2048 -nodes -keyout foreign-ca.key -out foreign-ca.crt -days 30 \
            -subj "/O=Elsewhere/CN=Foreign CA" \
            -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
        leaf() { # NAME CA SUBJECT EXT
            ossl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$3"
            printf '%s\n' "$4" >"$1.ext"
            ossl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -days 30 \
                -out "$1.crt" -extfile "$1.ext"
            openssl x509 -in "$1.crt" -outform DER -out "$1.der"
            rm -f "$1.csr" "$1.ext"
        }
        leaf server staff-ca "/O=Example/CN=localhost" \
            "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
        for u in agent:agent1:Agent_One operator:oper1:Olga_Operator admin:admin1:Ada_Admin \
            norole:nobody:No_Role unknown:ghost:Ghost; do
            n=${u%%:*}; rest=${u#*:}; uid=${rest%%:*}; cn=$(echo "${rest#*:}" | tr _ ' ')
            leaf "$n" staff-ca "/O=Example/OU=People/UID=$uid/CN=$cn" "extendedKeyUsage=clientAuth"
        done
        leaf foreign foreign-ca "/O=Example/OU=People/UID=agent1/CN=Agent One" \
            "extendedKeyUsage=clientAuth"
        chmod 0644 ./*.crt ./*.der
    ) || it_fail "cannot make the staff certificates"
}

# The staff entries (certificate in userCertificate;binary) and the role groups.
adm_staff_ldif() {
    for u in agent:agent1:Agent_One operator:oper1:Olga_Operator admin:admin1:Ada_Admin \
        norole:nobody:No_Role; do
        n=${u%%:*}; rest=${u#*:}; uid=${rest%%:*}; cn=$(echo "${rest#*:}" | tr _ ' ')
        cat <<EOF
dn: uid=$uid,ou=People,$ADM_BASE
objectClass: inetOrgPerson
objectClass: tpsProfileID
uid: $uid
cn: $cn
sn: ${cn#* }
profileID: All Profiles
userCertificate;binary:< file://$ADM_CERTS/$n.der

EOF
    done
    cat <<EOF
dn: cn=TPS Agents,ou=Groups,$ADM_BASE
objectClass: groupOfUniqueNames
cn: TPS Agents
uniqueMember: uid=agent1,ou=People,$ADM_BASE
uniqueMember: uid=admin1,ou=People,$ADM_BASE

dn: cn=TPS Operators,ou=Groups,$ADM_BASE
objectClass: groupOfUniqueNames
cn: TPS Operators
uniqueMember: uid=oper1,ou=People,$ADM_BASE
uniqueMember: uid=admin1,ou=People,$ADM_BASE

dn: cn=Administrators,ou=Groups,$ADM_BASE
objectClass: groupOfNames
cn: Administrators
member: uid=admin1,ou=People,$ADM_BASE

EOF
}

adm_token_ldif() { # CUID USER STATUS TYPE
    cat <<EOF
dn: cn=$1,ou=Tokens,$ADM_BASE
objectClass: tokenRecord
cn: $1
tokenUserID: $2
tokenStatus: $3
tokenType: $4
tokenAppletID: 1.4.58768072
keyInfo: 0101
tokenPolicy: RE_ENROLL=YES;RENEW=NO;FORCE_FORMAT=NO;PIN_RESET=NO;RESET_PIN_RESET_TO_NO=NO
modified: 0
dateOfCreate: 20260101120000Z
dateOfModify: 20260101120000Z

EOF
}

# adm_enroll CLONE CUID USER KEYTYPE PROFILE N: a certificate issued by the CA for a fresh key,
# written to the token DB as the enrollment would (tokendb §1.2 tokenCert).
adm_enroll() {
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$W/k$6.key" 2>/dev/null
    _spki=$(url_of_text "$(openssl pkey -in "$W/k$6.key" -pubout -outform DER | base64 -w 64)")
    sim_post "$1" /ca/ee/ca/profileSubmitSSLClient \
        "xml=true&tokencuid=$2&screenname=$3&publickey=$_spki&profileId=$5&tokentype=userKey"
    [ "$SIM_HTTP" = 200 ] && [ "$(xml_el Status)" = 0 ] || it_fail "enroll on $1: $(cat "$W/out")"
    _serial=$(xml_el serialno)
    { echo "-----BEGIN CERTIFICATE-----"; xml_el b64 | fold -w 64; echo "-----END CERTIFICATE-----"; } \
        >"$W/cert$6.pem"
    openssl x509 -in "$W/cert$6.pem" -outform DER -out "$W/cert$6.der"
    _issuer=$(openssl x509 -in "$W/cert$6.pem" -noout -issuer -nameopt RFC2253 | sed 's/^issuer=//')
    _subject=$(openssl x509 -in "$W/cert$6.pem" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
    _na=$(date -u -d "$(openssl x509 -in "$W/cert$6.pem" -noout -enddate | cut -d= -f2)" +%Y%m%d%H%M%SZ)
    _nb=$(date -u -d "$(openssl x509 -in "$W/cert$6.pem" -noout -startdate | cut -d= -f2)" +%Y%m%d%H%M%SZ)
    cat <<EOF >>"$W/certs.ldif"
dn: cn=20260101120000$(printf '%06d' "$6")Z.it.$(printf '%020d' "$6"),ou=Certificates,$ADM_BASE
objectClass: tokenCert
cn: 20260101120000$(printf '%06d' "$6")Z.it.$(printf '%020d' "$6")
tokenID: $2
tokenUserID: $3
tokenOrigin: $2
tokenSerial: 0x$_serial
tokenStatus: active
tokenKeyType: $4
tokenType: userKey
tokenIssuer: $_issuer
tokenSubject: $_subject
tokenNotBefore: $_nb
tokenNotAfter: $_na
dateOfCreate: 20260101120000Z
dateOfModify: 20260101120000Z
userCertificate;binary:< file://$W/cert$6.der

EOF
    echo "$_serial" >"$W/serial$6"
}

adm_gw_conf() { # NAME CA_HOSTPORTS
    cat >"$W/$1.cfg" <<EOF
tps.instanceId=$1
log.audit.file=$W/$1-audit.log
log.level=info
tokendb.hostport=$LDAP1_URI $LDAP2_URI
tokendb.bindDN=cn=tpsgw,ou=Services,$ADM_BASE
tokendb.bindPassword_file=$W/gw.pw
tokendb.baseDN=ou=Tokens,$ADM_BASE
tokendb.certBaseDN=ou=Certificates,$ADM_BASE
tokendb.activityBaseDN=ou=Activities,$ADM_BASE
tps.admin.consoleDir=$IT_TOP/web/console
tps.admin.csrfKey_file=$W/csrf.key
tps.admin.profiles=userKey,soKey,cleanToken
conn.ca1.hostport=$2
conn.ca1.clientCertFile=$SIM_CERTS/agent.crt
conn.ca1.clientKeyFile=$SIM_CERTS/agent.key
conn.ca1.caBundle=$SIM_CERTS/tls-ca.crt
conn.ca1.callTimeout=10
conn.ca1.connectTimeout=2000
EOF
}

adm_setup() {
    it_need curl openssl perl slapd slapmodify ldapadd
    [ -x "$ADM_BIN" ] || it_fail "$ADM_BIN is not built (make build; see gateway.mk)"
    it_workdir >/dev/null
    W=$IT_WORKDIR
    sim_certs
    adm_certs
    LDAP_SUFFIXES="$ADM_BASE o=pki-sim"
    LDAP_ROOTDN="cn=Manager,$ADM_BASE"
    LDAP_PAIR_INDEXES="tokenUserID,tokenID eq,pres,sub;tokenStatus,tokenType,tokenSerial,tokenKeyType,tokenOrigin eq;dateOfCreate,dateOfModify eq,pres"
    export LDAP_SUFFIXES LDAP_ROOTDN LDAP_PAIR_INDEXES
    it_ldap_pair_start
    GWPW=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
    (umask 077 && printf '%s\n' "$GWPW" >"$W/gw.pw" \
        && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$W/csrf.key")
    {
        sed -e "s|@BASEDN@|$ADM_BASE|g" -e "s|@GATEWAY_PASSWORD@|$GWPW|g" \
            "$IT_TOP/conf/ldap/tokendb-base.ldif.in"
        echo
        adm_staff_ldif
    } >"$W/dit.ldif"
    ldapadd -x -o nettimeout=3 -H "$LDAP1_URI" -D "$LDAP_ROOTDN" -y "$LDAP_ROOTPW_FILE" \
        -f "$W/dit.ldif" >"$W/dit.log" 2>&1 || it_fail "loading the DIT: $(tail -3 "$W/dit.log")"
    ldap_wait_entry "$LDAP2_URI" "cn=Administrators,ou=Groups,$ADM_BASE" 20 \
        || it_fail "the DIT did not replicate"
    # The token DB ACLs (conf/ldap/tokendb-acl.ldif.in) on both nodes: the gateway identity
    # reads staff and groups and writes tokens; nothing else is open.
    for n in 1 2; do
        it_ldap_node_stop $n
        sed -e "s|@DATABASE@|{1}mdb|g" -e "s|@BASEDN@|$ADM_BASE|g" \
            -e "s|@GATEWAY_DN@|cn=tpsgw,ou=Services,$ADM_BASE|g" -e "s|@REPL_DN@|$LDAP_ROOTDN|g" \
            "$IT_TOP/conf/ldap/tokendb-acl.ldif.in" >"$W/acl$n.ldif"
        slapmodify -n0 -F "$LDAP_PAIR_DIR/node$n/slapd.d" -l "$W/acl$n.ldif" \
            >"$W/slapmodify$n.log" 2>&1 || it_fail "ACLs on node $n: $(tail -3 "$W/slapmodify$n.log")"
        it_ldap_node_start $n
    done

    # Two CA clones sharing their records through the pair (tests/sim).
    "$SIM_BIN" --init-ca "$W/pki" >/dev/null || it_fail "pki-sim --init-ca"
    sim_conf ca1 ca
    sim_store_conf ca1 "ou=ca,o=pki-sim" 1 ffff 1 9999 "$LDAP1_URI $LDAP2_URI"
    sim_conf ca2 ca
    sim_store_conf ca2 "ou=ca,o=pki-sim" 10000 1ffff 10000 19999 "$LDAP2_URI $LDAP1_URI"
    for n in ca1 ca2; do
        printf 'pkisim.ca.signingCertFile=%s\npkisim.ca.signingKeyFile=%s\n' \
            "$W/pki/ca.crt" "$W/pki/ca.key" >>"$W/$n.cfg"
        sim_start $n ca
    done
    CA1_PORT=$(cat "$W/ca1.port")
    CA2_PORT=$(cat "$W/ca2.port")

    # Tokens: CUID1 with two certificates, CUID2 with one, CUID3 without; paging fillers.
    : >"$W/certs.ldif"
    adm_enroll ca1 $CUID1 alice signing caTokenUserSigningKeyEnrollment 1
    adm_enroll ca2 $CUID1 alice encryption caTokenUserEncryptionKeyEnrollment 2
    adm_enroll ca1 $CUID2 bob signing caTokenUserSigningKeyEnrollment 3
    SERIAL1=$(cat "$W/serial1"); SERIAL2=$(cat "$W/serial2"); SERIAL3=$(cat "$W/serial3")
    {
        adm_token_ldif $CUID1 alice ACTIVE userKey
        adm_token_ldif $CUID2 bob ACTIVE userKey
        adm_token_ldif $CUID3 carol ACTIVE userKey
        adm_token_ldif $CUID4 "$ADM_EVIL_USER" ACTIVE userKey
        i=0
        while [ $i -lt 24 ]; do
            adm_token_ldif "A00000000000000000$(printf '%02d' $i)" filler FORMATTED soKey
            i=$((i + 1))
        done
        cat "$W/certs.ldif"
    } >"$W/tokens.ldif"
    ldapadd -x -o nettimeout=3 -H "$LDAP1_URI" -D "$LDAP_ROOTDN" -y "$LDAP_ROOTPW_FILE" \
        -f "$W/tokens.ldif" >"$W/tokens.log" 2>&1 || it_fail "loading tokens: $(tail -3 "$W/tokens.log")"
    it_ldap_wait_converged 20

    # Two instances: each lists the clones in its own order (backends §10).
    adm_gw_conf gw1 "127.0.0.1:$CA1_PORT 127.0.0.1:$CA2_PORT"
    adm_gw_conf gw2 "127.0.0.1:$CA2_PORT 127.0.0.1:$CA1_PORT"
    GW1_PORT=$(sim_port)
    GW2_PORT=$(sim_port)
    while [ "$GW2_PORT" = "$GW1_PORT" ]; do GW2_PORT=$(sim_port); done
    for g in gw1 gw2; do
        eval "_p=\$$(echo $g | tr a-z A-Z)_PORT"
        it_start "$g" "$ADM_BIN" --config "$W/$g.cfg" --port "$_p" --cert "$ADM_CERTS/server.crt" \
            --key "$ADM_CERTS/server.key" --client-ca "$ADM_CERTS/staff-ca.crt"
        it_wait_tcp 127.0.0.1 "$_p" 10
    done
    GW1_URL="https://127.0.0.1:$GW1_PORT"
    GW2_URL="https://127.0.0.1:$GW2_PORT"
    export GW1_URL GW2_URL
    it_log "admin topology up: gw1 $GW1_URL gw2 $GW2_URL; CA clones $CA1_PORT $CA2_PORT"
}

adm_call() {
    _who=$1; _gw=$2; _m=$3; _p=$4
    shift 4
    if [ "$_gw" = gw1 ]; then _u=$GW1_URL; else _u=$GW2_URL; fi
    case $_who in
    none) set -- "$@" ;;
    *) set -- --cert "$ADM_CERTS/$_who.crt" --key "$ADM_CERTS/$_who.key" "$@" ;;
    esac
    ADM_HTTP=$(curl -s -o "$W/out" -D "$W/head" -w '%{http_code}' --max-time 30 \
        --cacert "$ADM_CERTS/staff-ca.crt" -X "$_m" "$@" "$_u$_p")
    ADM_RC=$?
}

adm_csrf() {
    adm_call "$1" "$2" GET /tps/rest/account
    [ "$ADM_HTTP" = 200 ] || it_fail "account of $1 on $2: HTTP $ADM_HTTP $(cat "$W/out")"
    jget csrfToken
}

jget() {
    perl -MJSON::PP -e '
        local $/; open(my $f, "<", $ARGV[1]) or die; my $v = decode_json(<$f>);
        for my $k (split /\./, $ARGV[0]) {
            $v = ref($v) eq "ARRAY" ? $v->[$k] : $v->{$k};
        }
        if (ref($v) eq "ARRAY") { print scalar(@$v); }
        elsif (ref($v) eq "HASH") { print "{}"; }
        elsif (JSON::PP::is_bool($v)) { print $v ? "true" : "false"; }
        elsif (defined $v) { print $v; }' "$1" "${2:-$W/out}"
}

ca_reason() {
    sim_post ca2 /ca/ee/ca/displayBySerial "xml=true&b64CertOnly=true&serialNumber=$(printf '%d' "0x$1")"
    xml_el revocationReason
}

tdb_attr() {
    ldap_q "$LDAP2_URI" -b "cn=$1,ou=Tokens,$ADM_BASE" -s base "$2" | sed -n "s/^$2: //p"
}

# adm_tpsgw_as GW: replaces admin-server GW (gw1 or gw2) by tpsgw itself, with the same
# instance name, clone order, audit file ($W/GW-audit.log) and URL (GW1_URL / GW2_URL), over
# HTTP and HTTPS with client certificates against the staff CA (the TKS is never called).
# Sets TG_HTTP, TG_HTTPS; the daemon's log is $W/GW-daemon.log.
adm_tpsgw_as() {
    _g=$1
    TPSGW=$BUILD/bin/tpsgw
    [ -x "$TPSGW" ] || it_fail "$TPSGW is not built"
    it_stop "$_g"
    TG_HTTP=$(it_port)
    TG_HTTPS=$(it_port)
    while [ "$TG_HTTPS" = "$TG_HTTP" ]; do TG_HTTPS=$(it_port); done
    (umask 077 && echo 000102030405060708090A0B0C0D0E0F >"$W/shared.hex")
    if [ "$_g" = gw1 ]; then
        adm_gw_conf gw1 "127.0.0.1:$CA1_PORT 127.0.0.1:$CA2_PORT"
    else
        adm_gw_conf gw2 "127.0.0.1:$CA2_PORT 127.0.0.1:$CA1_PORT"
    fi
    # tpsgw's tokendb.hostport is a host:port list, not LDAP URIs
    hostport() { echo "$1" | sed -e 's|^ldap://||' -e 's|/$||'; }
    sed -i "s|^tokendb.hostport=.*|tokendb.hostport=$(hostport "$LDAP1_URI") $(hostport "$LDAP2_URI")|" \
        "$W/$_g.cfg"
    cat >>"$W/$_g.cfg" <<EOF
service.bindAddress=127.0.0.1
service.unsecurePort=$TG_HTTP
service.securePort=$TG_HTTPS
service.sslCertFile=$ADM_CERTS/server.crt
service.sslKeyFile=$ADM_CERTS/server.key
service.clientCAFile=$ADM_CERTS/staff-ca.crt
tps.maxSessions=4
tps.phoneHome.operation=https://127.0.0.1:$TG_HTTPS/tps/tps
log.file=$W/$_g-daemon.log
conn.tks1.hostport=127.0.0.1:9
conn.tks1.SSLOn=false
conn.tks1.tksSharedSymKey_file=$W/shared.hex
EOF
    "$TPSGW" -t -c "$W/$_g.cfg" >"$W/$_g-check.log" 2>&1 \
        || it_fail "tpsgw -t: $(cat "$W/$_g-check.log")"
    # -t builds the admin stack too: a bad admin setting is refused before start
    { grep -v '^tps.admin.certMap=' "$W/$_g.cfg"; echo "tps.admin.certMap=serialNumber"; } \
        >"$W/$_g-bad.cfg"
    if "$TPSGW" -t -c "$W/$_g-bad.cfg" >"$W/$_g-bad.log" 2>&1; then
        it_fail "tpsgw -t accepted tps.admin.certMap=serialNumber"
    fi
    grep -q "admin API: .*tps.admin.certMap" "$W/$_g-bad.log" \
        || it_fail "tpsgw -t: $(cat "$W/$_g-bad.log")"
    it_start "tpsgw-$_g" "$TPSGW" -c "$W/$_g.cfg"
    it_wait_tcp 127.0.0.1 "$TG_HTTPS" 10
    if [ "$_g" = gw1 ]; then
        GW1_URL="https://127.0.0.1:$TG_HTTPS"
    else
        GW2_URL="https://127.0.0.1:$TG_HTTPS"
    fi
    export GW1_URL GW2_URL
    it_log "$_g is now tpsgw: https://127.0.0.1:$TG_HTTPS"
}
