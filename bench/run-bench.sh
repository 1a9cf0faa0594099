#!/bin/sh
# bench/run-bench.sh BENCH... - runs each benchmark (an executable or a .sh script), printing
# its figures and the command that produced them. Benchmarks are never tests: they report,
# they do not fail on a slow machine, but they do fail when the thing measured breaks.
set -u
R=${BUILD_ROOT:-build}
export BUILD="$R/release"
fail=0
for b in "$@"; do
    echo "== bench: $b"
    echo "   command: BUILD=$BUILD $b"
    case $b in
    *.sh) sh "$b" || fail=1 ;;
    *) "$b" || fail=1 ;;
    esac
done
exit $fail
