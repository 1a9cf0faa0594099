#!/bin/sh
# tests/integration/73-admin-so.sh - security-officer operations (tps-protocol §5.4,
# op.<op>.<type>.officerOnly, docs/tpsgw.md "Security officers") on the enrollment topology
# of lib/tpsgw-enroll.sh, with tpsgw also on HTTPS asking for staff client certificates: an
# officer (staff entry in ou=People, member of "TPS Officers") formats a user's card
# (`tokenclient so format-user`, type soCleanUserToken) and enrolls it for alice
# (`so enroll-user`, userKey, made officer-only here); a staff user outside the group, a
# client without a certificate, and plain HTTP get END_OP status 26 (tokenclient exit 10).
# The audit names the officer and the card's user.
set -u
. "$(dirname "$0")/lib/lib.sh"
. "$(dirname "$0")/lib/pcsc.sh"
. "$IT_TOP/tests/sim/simtest.sh"
it_need slapd ldapsearch ldapadd curl openssl
W=$IT_WORKDIR
SO=$W/so
mkdir -p "$SO"

# ---- staff certificates (openssl CLI): a staff CA, tpsgw's server certificate, officer1
# (an officer) and clerk1 (staff, not an officer)
(
    cd "$SO" || exit 1
    umask 077
    ossl() { openssl "$@" 2>/dev/null; }
    ossl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 \
        -subj "/O=Example/CN=TPS Staff CA" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
    leaf() { # NAME SUBJECT EXT
        ossl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2"
        printf '%s\n' "$3" >"$1.ext"
        ossl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
            -out "$1.crt" -extfile "$1.ext"
        openssl x509 -in "$1.crt" -outform DER -out "$1.der"
    }
    leaf server "/O=Example/CN=localhost" "subjectAltName=IP:127.0.0.1
extendedKeyUsage=serverAuth"
    leaf officer "/O=Example/OU=People/UID=officer1/CN=Olive Officer" "extendedKeyUsage=clientAuth"
    leaf clerk "/O=Example/OU=People/UID=clerk1/CN=Carl Clerk" "extendedKeyUsage=clientAuth"
    chmod 0644 ./*.crt ./*.der
) || it_fail "cannot make the staff certificates"

HTTPS=$(it_port)
TPSGW_EXTRA_CFG="service.securePort=$HTTPS
service.sslCertFile=$SO/server.crt
service.sslKeyFile=$SO/server.key
service.clientCAFile=$SO/ca.crt
tps.admin.enable=true
op.format.soCleanUserToken.officerOnly=true
op.format.soCleanUserToken.auth.enable=false
op.format.soCleanUserToken.update.applet.requiredVersion=1.4.58768072
op.format.soCleanUserToken.update.applet.directory=$IT_TOP/conf/applets
op.enroll.userKey.officerOnly=true"
. "$(dirname "$0")/lib/tpsgw-enroll.sh"
it_wait_tcp 127.0.0.1 "$HTTPS" 10
SURL=https://127.0.0.1:$HTTPS/tps/tps

# ---- the staff entries and the officers group (read by tpsgw at each officer operation)
{
    for u in officer:officer1 clerk:clerk1; do
        cat <<EOF
dn: uid=${u#*:},ou=People,$BASEDN
objectClass: inetOrgPerson
uid: ${u#*:}
cn: ${u#*:}
sn: ${u#*:}
userCertificate;binary:< file://$SO/${u%%:*}.der

EOF
    done
    cat <<EOF
dn: cn=TPS Officers,ou=Groups,$BASEDN
objectClass: groupOfUniqueNames
cn: TPS Officers
uniqueMember: uid=officer1,ou=People,$BASEDN

EOF
} >"$SO/staff.ldif"
ldapadd -x -H "$URI1" -D "$ROOTDN" -y "$ROOTPW_FILE" -f "$SO/staff.ldif" >"$SO/ldapadd.log" 2>&1 \
    || it_fail "staff entries: $(cat "$SO/ldapadd.log")"

# so WANT CUID CERT ARGS...: the desk client over https with one emulated card; CERT "-" = none
so() {
    _want=$1; _c=$2; _who=$3; shift 3
    if [ "$_who" = - ]; then set -- --cacert "$SO/ca.crt" "$@"
    else set -- --cacert "$SO/ca.crt" --cert "$SO/$_who.crt" --key "$SO/$_who.key" "$@"; fi
    "$TC" --emulate 1 --emulate-dir "$W/cards" --cuid "$_c" --server "$SURL" --user alice \
        --password-file "$W/alice.pw" --no-retry "$@" >"$W/tc.out" 2>&1
    _rc=$?
    [ "$_rc" = "$_want" ] || it_fail "tokenclient $* ($_who, $_c): exit $_rc, want $_want: $(cat "$W/tc.out"; tail -5 "$W/gw.log")"
}
# last_end CUID: the op.end audit line of the card's last operation
last_end() { grep "op.end" "$W/audit.log" | grep "cuid=$1" | tail -1; }

C1=40907901001F73000001
C2=40907901001F73000002

# ---- 1. an officer formats a user's card, then enrolls it for alice
so 0 $C1 officer so format-user
last_end $C1 | grep -q "op=format .*officer=officer1 type=soCleanUserToken .*result=success" \
    || it_fail "format audit: $(last_end $C1)"
grep -q "officer.check .*op=format cuid=$C1 type=soCleanUserToken .*officer=officer1 .*outcome=allowed" \
    "$W/audit.log" || it_fail "no officer.check audit line for the format"
so 0 $C1 officer so enroll-user --new-pin-file "$W/pin1"
last_end $C1 | grep -q "op=enroll .*user=alice officer=officer1 type=userKey .*result=success" \
    || it_fail "enroll audit: $(last_end $C1)"
[ "$(token_attr $C1 tokenStatus)" = ACTIVE ] || it_fail "token $C1 not ACTIVE"
[ "$(token_attr $C1 tokenUserID)" = alice ] || it_fail "token $C1 user"
# the token DB activities of both operations name the officer
for op in format enrollment; do
    ldq "ou=Activities,$BASEDN" "(&(tokenID=$C1)(tokenOp=$op)(tokenResult=success))" tokenMsg \
        | grep -q '^tokenMsg: .*; officer officer1$' \
        || it_fail "the $op activity does not name the officer: $(ldq "ou=Activities,$BASEDN" "(tokenID=$C1)" tokenOp tokenMsg)"
done

# ---- 2. a staff user outside the officers group: status 26 for format and enroll
so 10 $C2 clerk so format-user
grep -q "DISABLED_TOKEN" "$W/tc.out" || it_fail "clerk format: $(cat "$W/tc.out")"
last_end $C2 | grep -q "op=format .*officer=- .*result=failure status=26 why=.*officer check.*clerk1 is not in group 'TPS Officers'" \
    || it_fail "clerk format audit: $(last_end $C2)"
so 10 $C2 clerk so enroll-user --new-pin-file "$W/pin1"
last_end $C2 | grep -q "op=enroll .*result=failure status=26 why=.*officer check" \
    || it_fail "clerk enroll audit: $(last_end $C2)"
grep -q "officer.refused .*cuid=$C2 .*clerk1" "$W/gw.log" || it_fail "no officer.refused log line"

# ---- 3. no client certificate (tokenclient's so subcommand demands one: the plain format
# command with the officer-only type), then plain HTTP with the officer's certificate
so 10 $C2 - --token-type soCleanUserToken format
last_end $C2 | grep -q "status=26 why=.*officer check.*no verified client certificate" \
    || it_fail "no-certificate audit: $(last_end $C2)"
"$TC" --emulate 1 --emulate-dir "$W/cards" --cuid $C2 --server "$URL" --no-retry \
    --token-type soCleanUserToken format >"$W/tc.out" 2>&1
[ $? = 10 ] || it_fail "plain HTTP officer-only format: $(cat "$W/tc.out")"
last_end $C2 | grep -q "status=26 why=.*officer check.*plain HTTP" \
    || it_fail "plain HTTP audit: $(last_end $C2)"
[ "$(token_attr $C2 tokenStatus)" != ACTIVE ] || it_fail "a refused operation enrolled $C2"

# ---- 4. userKey is officer-only here: alice cannot enroll her own card over plain HTTP
tc $C2 10 enroll --new-pin-file "$W/pin1"
! grep -qF -e '-----BEGIN' "$W/audit.log" "$W/gw.log" || it_fail "a PEM block in tpsgw's logs"
it_ok 73-admin-so
