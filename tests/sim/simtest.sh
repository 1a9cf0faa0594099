# tests/sim/simtest.sh - helpers of the pki-sim integration scripts (POSIX sh), sourced after
# tests/integration/lib/lib.sh:
#   sim_certs                     TLS material in $SIM_CERTS (tests/sim/mkcerts.sh)
#   sim_conf NAME ROLE            writes $W/NAME.cfg with the listener, TLS and agent keys;
#                                 add role keys with: echo key=value >>"$W/NAME.cfg"
#   sim_start NAME ROLE           starts pki-sim on $W/NAME.cfg, waits for both ports
#   sim_post NAME PATH BODY [CERT]  POST as the agent (or as CERT: other, foreign, none);
#                                 body in $W/out, HTTP code in $SIM_HTTP, curl exit in $SIM_RC
#   sim_field NAME                prints form field NAME of $W/out (raw, still %-encoded)
#   sim_hex NAME                  prints field NAME of $W/out as upper-case hex
#   sim_admin NAME METHOD PATH    calls the admin endpoint of instance NAME
#   hash_of_hex HEX               prints the HASH encoding (#XX...) of HEX
# Ports are in $W/NAME.port and $W/NAME.admin.

SIM_BIN=${SIM_BIN:-$BUILD/bin/pki-sim}

# sim_port: a free loopback port below the kernel's ephemeral range (32768-60999), so that the
# source port of some short-lived client connection cannot take it before pki-sim binds it.
sim_port() {
    while :; do
        _sp=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 12000 ))
        if ! ss -Htan "sport = :$_sp" 2>/dev/null | grep -q .; then
            echo "$_sp"
            return 0
        fi
    done
}

sim_certs() {
    it_workdir >/dev/null; SIM_CERTS=$IT_WORKDIR/certs
    sh "$IT_TOP/tests/sim/mkcerts.sh" "$SIM_CERTS" || it_fail "mkcerts.sh failed"
}

sim_conf() {
    it_workdir >/dev/null; _w=$IT_WORKDIR
    _p=$(sim_port)
    _a=$(sim_port)
    echo "$_p" >"$_w/$1.port"
    echo "$_a" >"$_w/$1.admin"
    cat >"$_w/$1.cfg" <<CFG
pkisim.instanceId=$1
service.securePort=$_p
pkisim.adminPort=$_a
pkisim.tls.certFile=$SIM_CERTS/server.crt
pkisim.tls.keyFile=$SIM_CERTS/server.key
pkisim.tls.caBundle=$SIM_CERTS/tls-ca.crt
pkisim.agent.1.userid=TPS-localhost-7889
pkisim.agent.1.certFile=$SIM_CERTS/agent.crt
pkisim.agent.1.groups=Certificate Manager Agents, Data Recovery Manager Agents, Token Key Service Manager Agents
pkisim.requestLog=$_w/$1.requests
pkisim.log=$_w/$1.diag
CFG
}

sim_start() {
    it_workdir >/dev/null; _w=$IT_WORKDIR
    "$SIM_BIN" --role "$2" --config "$_w/$1.cfg" --check || it_fail "pki-sim $1: config refused"
    it_start "$1" "$SIM_BIN" --role "$2" --config "$_w/$1.cfg"
    it_wait_tcp 127.0.0.1 "$(cat "$_w/$1.port")" 10
    it_wait_tcp 127.0.0.1 "$(cat "$_w/$1.admin")" 10
}

sim_post() {
    it_workdir >/dev/null; _w=$IT_WORKDIR
    _who=${4:-agent}
    set -- "$1" "$2" "$3"
    if [ "$_who" = none ]; then
        _c=""
    else
        _c="--cert $SIM_CERTS/$_who.crt --key $SIM_CERTS/$_who.key"
    fi
    # shellcheck disable=SC2086
    SIM_HTTP=$(curl -s -o "$_w/out" -w '%{http_code}' --max-time "${SIM_MAXTIME:-20}" \
        --cacert "$SIM_CERTS/tls-ca.crt" $_c -H 'Content-Type: application/x-www-form-urlencoded' \
        --data-binary "$3" "https://127.0.0.1:$(cat "$_w/$1.port")$2")
    SIM_RC=$?
}

sim_field() {
    { cat "$IT_WORKDIR/out"; echo; } | tr '&' '\n' | sed -n "s/^$1=//p" | head -1
}

sim_hex() {
    sim_field "$1" | perl -ne 'chomp; s/\+/ /g; s/%([0-9A-Fa-f]{2})/chr hex $1/ge; print uc unpack("H*", $_)'
}

sim_admin() {
    curl -s --max-time 5 -X "$2" "http://127.0.0.1:$(cat "$IT_WORKDIR/$1.admin")$3"
}

hash_of_hex() {
    echo "$1" | sed 's/\(..\)/#\1/g'
}

# url_of_hash HASH: %-escapes the '#' for a form body (the servlet form-decodes first).
url_of_hex() {
    echo "$1" | sed 's/\(..\)/%23\1/g'
}

# url_of_text TEXT: form-encodes TEXT (base64 bodies carry '+', '/' and '=').
url_of_text() {
    printf '%s' "$1" | perl -pe 's/([^A-Za-z0-9._~-])/sprintf("%%%02X", ord $1)/ge'
}

# xml_el NAME: the text of the first <NAME> element of $W/out.
xml_el() {
    { cat "$IT_WORKDIR/out"; echo; } | sed -n "s:.*<$1>\([^<]*\)</$1>.*:\1:p" | head -1
}

# sim_store_conf NAME BASEDN SERIAL_BEGIN SERIAL_END REQ_BEGIN REQ_END URIS: the LDAP keys.
sim_store_conf() {
    cat >>"$IT_WORKDIR/$1.cfg" <<CFG
internaldb.ldapconn.uri=$7
internaldb.basedn=$2
internaldb.ldapauth.bindDN=$LDAP_ROOTDN
internaldb.ldapauth.bindPW_file=$LDAP_ROOTPW_FILE
dbs.beginSerialNumber=$3
dbs.endSerialNumber=$4
dbs.beginRequestNumber=$5
dbs.endRequestNumber=$6
CFG
}

# sim_check_logs: fails when a daemon's output holds a sanitizer report (ASan builds).
sim_check_logs() {
    for _f in "$IT_WORKDIR"/*.log "$IT_WORKDIR"/*.diag; do
        [ -f "$_f" ] || continue
        if grep -qE 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' "$_f"; then
            it_fail "sanitizer report in $_f"
        fi
    done
}
