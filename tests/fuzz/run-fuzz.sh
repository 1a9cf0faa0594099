#!/bin/bash
# tests/fuzz/run-fuzz.sh SECONDS TARGET... - the fuzz campaign: each libFuzzer target runs for
# SECONDS on its corpus (tests/fuzz/corpus/<target>/; new inputs are kept there), FUZZ_JOBS
# targets at a time (default 1). Prints one line per target (executions, corpus growth, peak
# RSS; the corpus is then minimised with -merge=1) and fails when any target crashed, leaked, timed out or ran out of memory; the
# reproducer is in $BUILD_ROOT/fuzz/artifacts/<target>/.
set -u
R=${BUILD_ROOT:-build}
jobs=${FUZZ_JOBS:-1}
secs=$1; shift
mkdir -p "$R/fuzz/status"

run_one() {
    t=$1
    bin=$R/fuzz/fuzz/fuzz_$t
    corpus=tests/fuzz/corpus/$t
    log=$R/fuzz/$t.log
    mkdir -p "$corpus" "$R/fuzz/artifacts/$t"
    before=$(ls "$corpus" | wc -l)
    if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$R/fuzz/artifacts/$t/" "$corpus" >"$log" 2>&1; then
        # keep the corpus minimal: what covers the same edges replaces what grew
        rm -rf "$R/fuzz/min/$t" && mkdir -p "$R/fuzz/min/$t"
        "$bin" -merge=1 "$R/fuzz/min/$t" "$corpus" >"$R/fuzz/$t.merge.log" 2>&1 &&
            rm -rf "$corpus" && mv "$R/fuzz/min/$t" "$corpus"
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
        after=$(ls "$corpus" | wc -l)
        printf 'fuzz: %-12s ok      %6ss %12s execs  corpus %5s -> %-5s peak %s MB\n' \
            "$t" "$secs" "$execs" "$before" "$after" "$rss" >"$R/fuzz/status/$t"
    else
        { printf 'fuzz: %-12s FAILED  see %s, reproducer in %s/fuzz/artifacts/%s/\n' \
              "$t" "$log" "$R" "$t"
          grep -E 'ERROR|SUMMARY|artifact' "$log" | head -8; } >"$R/fuzz/status/$t"
    fi
}

running=0
for t in "$@"; do
    rm -f "$R/fuzz/status/$t"
    echo "fuzz: $t for ${secs}s"
    run_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait

fail=0
for t in "$@"; do
    if [ -f "$R/fuzz/status/$t" ]; then
        cat "$R/fuzz/status/$t"
        grep -q FAILED "$R/fuzz/status/$t" && fail=1
    else
        echo "fuzz: $t did not report"; fail=1
    fi
done
exit $fail
