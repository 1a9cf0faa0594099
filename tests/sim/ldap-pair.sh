#!/bin/sh
# tests/sim/ldap-pair.sh DIR [PORT1 PORT2] - runs the replicated OpenLDAP pair of the tests by
# hand (tests/integration/lib/ldap.sh) until Ctrl-C or SIGTERM. Writes DIR/ldap.env with
# LDAP1_URI, LDAP2_URI, LDAP_ROOTDN, LDAP_ROOTPW_FILE... for `. DIR/ldap.env`.
# LDAP_SUFFIXES may be set as for the helper (default "dc=example,dc=com o=pki-sim").
set -u
[ $# -ge 1 ] || { echo "usage: $0 DIR [PORT1 PORT2]" >&2; exit 2; }
. "$(dirname "$0")/../integration/lib/lib.sh"
. "$(dirname "$0")/../integration/lib/ldap.sh"
mkdir -p "$1"
[ -n "${IT_WORKDIR:-}" ] && rmdir "$IT_WORKDIR" 2>/dev/null # lib.sh's own, unused here
IT_WORKDIR=$(cd "$1" && pwd)
LDAP_PAIR_DIR=$IT_WORKDIR/ldap
[ $# -ge 3 ] && LDAP1_PORT=$2 && LDAP2_PORT=$3
trap 'it_cleanup; exit 0' INT TERM
it_ldap_pair_start
it_ldap_pair_info >"$IT_WORKDIR/ldap.env"
echo "LDAP pair running; settings in $IT_WORKDIR/ldap.env; Ctrl-C stops it."
cat "$IT_WORKDIR/ldap.env"
while :; do sleep 1; done
