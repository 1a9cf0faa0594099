#!/bin/sh
# tests/integration/10-sim-ldap-pair.sh - the OpenLDAP pair helper (lib/ldap.sh): both nodes
# replicate both ways, every schema file loads, a stopped node catches up after a restart.
. "$(dirname "$0")/lib/lib.sh"
. "$(dirname "$0")/lib/ldap.sh"
trap it_cleanup EXIT INT TERM

it_ldap_pair_start
eval "$(it_ldap_pair_info)"
[ -n "$LDAP1_URI" ] && [ -n "$LDAP2_URI" ] && [ "$LDAP1_URI" != "$LDAP2_URI" ] \
    || it_fail "pair info lacks distinct URIs"
[ "$(stat -c %a "$LDAP_ROOTPW_FILE")" = 600 ] || it_fail "root password file is not mode 0600"

# An inetOrgPerson written on node 1 is readable on node 2.
ldap_mod "$LDAP1_URI" >/dev/null <<LDIF || it_fail "add on node 1"
dn: uid=alice,dc=example,dc=com
changetype: add
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: Example

LDIF
ldap_wait_entry "$LDAP2_URI" "uid=alice,dc=example,dc=com" 10 || it_fail "alice absent on node 2"

# A modify on node 2 shows on node 1.
ldap_mod "$LDAP2_URI" >/dev/null <<LDIF || it_fail "modify on node 2"
dn: uid=alice,dc=example,dc=com
changetype: modify
replace: sn
sn: Changed

LDIF
i=0
until ldap_q "$LDAP1_URI" -s base -b "uid=alice,dc=example,dc=com" sn | grep -q '^sn: Changed$'; do
    i=$((i + 1)); [ $i -lt 100 ] || it_fail "modify on node 2 not seen on node 1"; sleep 0.1
done

# The project schema (conf/ldap/schema/pkisim.ldif) is loaded: a pki-sim record is accepted
# in the second suffix, and a record missing a MUST attribute is refused.
ldap_mod "$LDAP1_URI" >/dev/null <<LDIF || it_fail "pkisimCertRecord refused"
dn: cn=1,o=pki-sim
changetype: add
objectClass: pkisimCertRecord
cn: 1
pkisimSerial: 1
pkisimStatus: VALID
pkisimCertB64: AAAA

LDIF
if ldap_mod "$LDAP1_URI" >/dev/null 2>&1 <<LDIF; then it_fail "schema check missing"; fi
dn: cn=2,o=pki-sim
changetype: add
objectClass: pkisimCertRecord
cn: 2
pkisimSerial: 2

LDIF
ldap_wait_entry "$LDAP2_URI" "cn=1,o=pki-sim" 10 || it_fail "pki-sim record absent on node 2"
it_ldap_wait_converged 10

# Node 2 stopped: an add and a delete on node 1 reach it when it restarts.
it_ldap_node_stop 2
ldap_mod "$LDAP1_URI" >/dev/null <<LDIF || it_fail "changes while node 2 is down"
dn: uid=bob,dc=example,dc=com
changetype: add
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: Example

dn: uid=alice,dc=example,dc=com
changetype: delete

LDIF
it_ldap_node_start 2
ldap_wait_entry "$LDAP2_URI" "uid=bob,dc=example,dc=com" 20 || it_fail "bob never reached node 2"
ldap_wait_entry "$LDAP2_URI" "uid=alice,dc=example,dc=com" 20 absent \
    || it_fail "delete of alice never reached node 2"
it_ldap_wait_converged 20

# Node 1 stopped: node 2 still takes writes, node 1 catches up.
it_ldap_node_stop 1
ldap_mod "$LDAP2_URI" >/dev/null <<LDIF || it_fail "write on node 2 while node 1 is down"
dn: uid=carol,dc=example,dc=com
changetype: add
objectClass: inetOrgPerson
uid: carol
cn: Carol
sn: Example

LDIF
it_ldap_node_start 1
ldap_wait_entry "$LDAP1_URI" "uid=carol,dc=example,dc=com" 20 || it_fail "carol never reached node 1"
it_ldap_wait_converged 20

it_ldap_pair_stop
it_ok "10-sim-ldap-pair"
