#!/bin/sh
# scripts/deps.sh - install every Debian package the project builds, tests and demos with.
# Idempotent: does nothing (and needs no network) when all packages are already installed.
set -eu

PKGS="gcc clang make pkg-config libclang-rt-14-dev
libssl-dev libcurl4-openssl-dev libldap-dev libcmocka-dev libpcsclite-dev libhttp-parser-dev
libexpat1-dev libjson-c-dev libp11-kit-dev zlib1g-dev
openssl curl ca-certificates procps iproute2 tmux
pcscd pcsc-tools vsmartcard-vpcd opensc coolkey
slapd ldap-utils haproxy softhsm2
chromium binutils"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done
# Node.js and npm (browser tests): any installation will do; the machine image may carry its
# own Node.js package, which includes npm and conflicts with Debian's npm package.
if ! command -v node >/dev/null 2>&1; then
    missing="$missing nodejs npm"
elif ! command -v npm >/dev/null 2>&1; then
    missing="$missing npm"
fi
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing packages:$missing" >&2
    echo "deps: run 'sudo make deps' (or install them with apt-get) and try again" >&2
    exit 1
fi
echo "deps: installing$missing"
# slapd must not run its interactive configuration: the tests build their own cn=config.
echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
