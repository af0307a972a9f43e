#!/bin/sh
# Runs the libFuzzer target for a given time on a copy of the seed corpus and prints one line:
#     fuzz: N executions in S s, 0 crashes
# Usage: tests/fuzz/run_fuzz.sh FUZZER SECONDS WORKDIR
# The seeds are copied to WORKDIR/corpus, where libFuzzer adds what it finds (never into the
# source tree); a crashing input is written to WORKDIR/artifacts/. Exits non-zero on a crash.
set -u
fuzzer=$1
seconds=$2
workdir=$3
seeds=$(dirname "$0")/corpus

rm -rf "$workdir/corpus"
mkdir -p "$workdir/corpus" "$workdir/artifacts"
cp "$seeds"/* "$workdir/corpus/"
log="$workdir/fuzz.log"

started=$(date +%s)
# -timeout: one input that takes 10 s has hung (each one is bounded to a few ms of waits).
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$workdir/artifacts/" "$workdir/corpus" >"$log" 2>&1
status=$?

executions=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
elapsed=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
coverage=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
# libFuzzer prints "Done N runs in S second(s)" only when the time is up, not after a crash
[ -n "$elapsed" ] || elapsed=$(( $(date +%s) - started ))
if [ "$status" -ne 0 ]; then
    tail -n 60 "$log"
    echo "fuzz: ${executions:-?} executions in $elapsed s, 1 crash (input in $workdir/artifacts/, log $log)"
    exit 1
fi
echo "fuzz: ${executions:-?} executions in $elapsed s, 0 crashes (${coverage:-cov: ?}, corpus $(ls "$workdir/corpus" | wc -l) inputs)"
