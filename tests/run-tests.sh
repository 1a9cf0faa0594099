#!/bin/sh
# tests/run-tests.sh KIND:PATH... - runs each test, keeps its output in build/test-logs/,
# prints one line per test and a closing "N passed, N failed" line. Exit 1 if any failed.
#   release:/asan:PATH   a cmocka binary        replay:NAME   fuzz corpus replay under ASan
#   integration:SCRIPT   a shell script that starts real daemons on loopback
set -u
R=${BUILD_ROOT:-build}
logs=$R/test-logs
mkdir -p "$logs"
pass=0; fail=0; failed=""
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
for t in "$@"; do
    kind=${t%%:*}; path=${t#*:}
    name=$(echo "$kind-$path" | tr '/' '_')
    log=$logs/$name.log
    start=$(date +%s)
    case $kind in
    release|asan) "$path" >"$log" 2>&1 ;;
    replay) $R/asan/fuzz/replay_"$path" tests/fuzz/corpus/"$path" >"$log" 2>&1 ;;
    integration) BUILD=$R/release sh "$path" >"$log" 2>&1 ;;
    *) echo "run-tests: unknown kind $kind" >"$log"; false ;;
    esac
    rc=$?
    secs=$(( $(date +%s) - start ))
    # A sanitizer report fails the test even if the program exited 0.
    if [ $rc -eq 0 ] && grep -qE 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' "$log"; then
        rc=99
    fi
    if [ $rc -eq 0 ]; then
        pass=$((pass + 1))
        summary=$(grep -E '^\[  PASSED  \]|passed, [0-9]+ failed|^replayed' "$log" | tail -1)
        echo "PASS  $kind $path (${secs}s) $summary"
    else
        fail=$((fail + 1))
        failed="$failed $kind:$path"
        echo "FAIL  $kind $path (exit $rc, ${secs}s) - log: $log"
        tail -40 "$log" | sed 's/^/    | /'
    fi
done
[ $fail -eq 0 ] || echo "failed:$failed"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
