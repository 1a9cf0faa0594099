#!/bin/sh
# tests/fuzz/run-fuzz.sh SECONDS TARGET... - run each libFuzzer target for SECONDS on its
# corpus (tests/fuzz/corpus/<target>/, new inputs are kept there). Fails on any crash.
set -u
R=${BUILD_ROOT:-build}
secs=$1; shift
fail=0
for t in "$@"; do
    bin=$R/fuzz/fuzz/fuzz_$t
    corpus=tests/fuzz/corpus/$t
    mkdir -p "$corpus" $R/fuzz/artifacts/"$t"
    echo "fuzz: $t for ${secs}s"
    if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix=$R/fuzz/artifacts/"$t"/ "$corpus" >$R/fuzz/"$t".log 2>&1; then
        echo "fuzz: $t FAILED (see $R/fuzz/$t.log, artifacts in $R/fuzz/artifacts/$t/)"
        tail -30 $R/fuzz/"$t".log
        fail=1
    else
        grep -E 'stat::number_of_executed_units|stat::new_units_added' $R/fuzz/"$t".log \
            | sed "s/^/fuzz: $t /"
    fi
done
exit $fail
