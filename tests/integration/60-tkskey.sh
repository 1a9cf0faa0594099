#!/bin/sh
# tests/integration/60-tkskey.sh - a key ceremony between two SoftHSM2 tokens (two TKS clones):
# transport key from shares on both, master key version 2 on clone 1, moved to clone 2,
# same KCV on both; then every refusal an operator can meet, with its exit code.
. "$(dirname "$0")/lib/lib.sh"
trap it_cleanup EXIT INT TERM
it_need softhsm2-util
W=$(it_workdir)
K="$BUILD/bin/tkskey"
[ -x "$K" ] || it_fail "$K not built"

for x in a b; do
    mkdir -p "$W/$x"
    printf 'directories.tokendir = %s\nobjectstore.backend = file\n' "$W/$x" >"$W/$x.conf"
    SOFTHSM2_CONF=$W/$x.conf softhsm2-util --init-token --free --label "tks$x" \
        --so-pin 87654321 --pin 12345678 >/dev/null || it_fail "softhsm2 init $x"
done
echo 12345678 >"$W/pin"; chmod 600 "$W/pin"
A() { SOFTHSM2_CONF=$W/a.conf "$K" --token tksa --pin-file "$W/pin" "$@"; }
B() { SOFTHSM2_CONF=$W/b.conf "$K" --token tksb --pin-file "$W/pin" "$@"; }
expect_rc() { # expect_rc WANT CMD...
    want=$1; shift
    "$@" >"$W/out" 2>&1; got=$?
    [ "$got" = "$want" ] || { cat "$W/out"; it_fail "'$*' exited $got, want $want"; }
}

it_log "transport key: three shares on clone 1, typed back on clone 2"
A gen-transport --label transport --share-out "$W/share" >"$W/gen.out" || it_fail "gen-transport"
cat "$W/gen.out"
for i in 1 2 3; do
    [ "$(stat -c %a "$W/share.$i")" = 600 ] || it_fail "share file $i is not mode 600"
done
B input-transport --label transport --share-in "$W/share.1,$W/share.2,$W/share.3" \
    >"$W/in.out" || { cat "$W/in.out"; it_fail "input-transport"; }
ta=$(A kcv --label transport); tb=$(B kcv --label transport)
[ "$ta" = "$tb" ] || it_fail "transport KCVs differ: $ta / $tb"

it_log "master key version 2 on clone 1, wrapped, unwrapped on clone 2"
A gen-master --label '#02#01' --exportable --readable || it_fail "gen-master"
A wrap --label '#02#01' --transport transport --out "$W/mk.wrapped" || it_fail "wrap"
grep -q '^format: kwp' "$W/mk.wrapped" || it_fail "wrapped file has no kwp header"
B unwrap --label '#02#01' --transport transport --in "$W/mk.wrapped" --readable || it_fail "unwrap"
ka=$(A kcv --label '#02#01' | sed 's/.*kcv //'); kb=$(B kcv --label '#02#01' | sed 's/.*kcv //')
[ -n "$ka" ] && [ "$ka" = "$kb" ] || it_fail "master KCVs differ: '$ka' / '$kb'"
B verify --label '#02#01' --kcv "$(echo "$ka" | tr -d ' ')" || it_fail "verify by KCV"
B list | grep -q '^#02#01 *des2 *16' || it_fail "list does not show the master key"
# no key material in anything the tool printed
if grep -qi "$(sed -n 's/^wrapped: //p' "$W/mk.wrapped")" "$W/gen.out" "$W/in.out"; then
    it_fail "wrapped key bytes printed"
fi

it_log "refusals and their exit codes"
expect_rc 7 B unwrap --label '#02#01' --transport transport --in "$W/mk.wrapped"   # exists
sed 's/^kcv: .*/kcv: 000000/' "$W/mk.wrapped" >"$W/bad.wrapped"
expect_rc 6 B unwrap --label '#09#01' --transport transport --in "$W/bad.wrapped"  # KCV mismatch
B list | grep -q '#09#01' && it_fail "a key with a bad KCV was stored"
expect_rc 6 B verify --label '#02#01' --kcv 000000
expect_rc 5 A wrap --label '#02#01' --transport transport --out "$W/t.wrapped" --format tkstool
expect_rc 8 A kcv --label nosuchkey
echo 0000 >"$W/badpin"; chmod 600 "$W/badpin"
expect_rc 4 env SOFTHSM2_CONF="$W/a.conf" "$K" --token tksa --pin-file "$W/badpin" list
chmod 644 "$W/badpin"
expect_rc 4 env SOFTHSM2_CONF="$W/a.conf" "$K" --token tksa --pin-file "$W/badpin" list
grep -q 'readable by others' "$W/out" || it_fail "world-readable PIN file not refused clearly"
expect_rc 3 env SOFTHSM2_CONF="$W/a.conf" "$K" --token nosuchtoken --pin-file "$W/pin" list
printf 'share: 0011\nkcv: 000000\n' >"$W/short"; chmod 600 "$W/short"
expect_rc 10 B input-transport --label t2 --share-in "$W/short,$W/short,$W/short"
cp "$W/share.1" "$W/share.x"; sed -i 's/^kcv: .*/kcv: 0000 00/' "$W/share.x"
expect_rc 6 B input-transport --label t2 --share-in "$W/share.x,$W/share.2,$W/share.3"
# no terminal to confirm on (setsid drops it) and no --yes: refused, nothing deleted
expect_rc 12 setsid -w env SOFTHSM2_CONF="$W/b.conf" "$K" --token tksb --pin-file "$W/pin" \
    delete --label '#02#01'
B list | grep -q '^#02#01 ' || it_fail "unconfirmed delete removed the key"

it_log "rename and delete with --yes"
B rename --label '#02#01' --to '#02#01-old' --yes || it_fail rename
B delete --label '#02#01-old' --yes || it_fail delete
B list | grep -q '#02#01' && it_fail "deleted key still listed"
it_ok tkskey
