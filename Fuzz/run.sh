#!/bin/sh
# Runs each libFuzzer harness for SECONDS (default 60), then replays the committed corpus and
# every past crash (Fuzz/regressions). Prints one line of figures per harness and appends it to
# .build-fuzz/report.txt. Exits non-zero on any crash, timeout or allocation past the bound.
#
#   Fuzz/run.sh [SECONDS] [TARGET...]       (targets: safetensors npy idx cifar checkpoint t7)
#   JOBS=2 Fuzz/run.sh 3600 checkpoint      (parallel workers for one long run)
#   FUZZ_RUNS=10000000 Fuzz/run.sh 1800     (stop each at 10 million executions, or 30 minutes)
set -u
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
[ $# -gt 0 ] && shift
TARGETS=${*:-safetensors npy idx cifar checkpoint t7}
JOBS=${JOBS:-1}
H=.build-fuzz/harness
# The Swift runtime's own crash reporter would run under ASan; libFuzzer reports instead.
export SWIFT_BACKTRACE=enable=no
# Bound: an input is at most 64 KB (t7: 16 KB) and may not make the process allocate more than 128 MB at
# once (a gzip bomb of 64 KB expands to at most 66 MB) or hold more than 1 GB.
# The t7 target's inputs are pickles that run a whole import: 16 KB holds the smallest real
# state dict (lru1) and keeps the rate in the thousands.
FLAGS="-malloc_limit_mb=128 -rss_limit_mb=1024 -timeout=10 -print_final_stats=1"
RUNS=${FUZZ_RUNS:+-runs=$FUZZ_RUNS}
status=0
for t in $TARGETS; do
    [ -x "$H/fuzz-$t" ] || { echo "fuzz: $H/fuzz-$t missing; run Fuzz/build.sh" >&2; exit 2; }
    work=.build-fuzz/work/$t; crashes=.build-fuzz/crashes/$t
    mkdir -p "$work" "$crashes" "Fuzz/regressions/$t"
    log=.build-fuzz/fuzz-$t.log
    if [ "$t" = t7 ]; then LEN=-max_len=16384; else LEN=-max_len=65536; fi
    if [ "$JOBS" -gt 1 ]; then
        "$H/fuzz-$t" $FLAGS $LEN -max_total_time="$SECONDS_EACH" -fork="$JOBS" -artifact_prefix="$crashes/" \
            "$work" "Fuzz/corpus/$t" > "$log" 2>&1
    else
        "$H/fuzz-$t" $FLAGS $LEN $RUNS -max_total_time="$SECONDS_EACH" -artifact_prefix="$crashes/" \
            "$work" "Fuzz/corpus/$t" > "$log" 2>&1
    fi
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    # An interrupted fork-mode parent prints zeroed final stats: then the last '#N' status counts.
    [ -n "$execs" ] && [ "$execs" != 0 ] || execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
    rate=$(grep -o 'exec/s: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
    took=$(grep -o '^Done [0-9]* runs in [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
    # Fork mode's status lines carry the time fuzzed so far (an interrupted parent prints no Done line).
    [ -n "$took" ] || took=$(grep -o 'time: [0-9]*s' "$log" | tail -1 | grep -o '[0-9]*')
    rss=$(grep -o 'rss: *[0-9]*Mb' "$log" | tail -1 | grep -o '[0-9]*')
    corpus=$(ls "$work" | wc -l)
    found=$(ls "$crashes" | wc -l)
    # Every committed input and past crash, once each, must run clean.
    "$H/fuzz-$t" $FLAGS -max_len=65536 -runs=0 "Fuzz/corpus/$t" "Fuzz/regressions/$t" > "$log.replay" 2>&1
    replay=$?
    line="$(date -u +%Y-%m-%dT%H:%MZ) $t: ${execs:-0} executions in ${took:-$SECONDS_EACH}s (${rate:-0}/s, $JOBS job(s)), corpus $corpus inputs, peak rss ${rss:-?} MB, crashes/timeouts/ooms $found, replay of $(find Fuzz/corpus/$t Fuzz/regressions/$t -type f | wc -l) committed inputs $( [ $replay -eq 0 ] && echo clean || echo FAILED)"
    echo "$line"; echo "$line" >> .build-fuzz/report.txt
    if [ $rc -ne 0 ] || [ "$found" -gt 0 ] || [ $replay -ne 0 ]; then
        status=1
        echo "fuzz $t: see $log; inputs in $crashes/ (fix, then add them to Fuzz/regressions/$t/)" >&2
        grep -m3 -E 'ERROR|SUMMARY|precondition|Fatal' "$log" "$log.replay" >&2
    fi
done
exit $status
