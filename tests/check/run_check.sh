#!/bin/sh
# make check: the reliability steps, in order. Each step prints a header, runs, and prints one
# result line with its figures and its duration; the first failing step fails the whole run.
#
#   tests/check/run_check.sh [step ...]      (default: asan tsan valgrind faults fuzz stress)
#
# Environment: MAKE (the make that runs the fuzz and stress steps), CHECK_JOBS (build and ctest
# parallelism, default 2), CHECK_STRESS_SCALE (ASYNC_SOCKET_STRESS_SCALE for the sanitizer and
# valgrind runs, percent, default 10), FUZZ_SECONDS (default 60).
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
MAKE=${MAKE:-make}
JOBS=${CHECK_JOBS:-2}
STRESS_SCALE=${CHECK_STRESS_SCALE:-10}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
STEPS=${*:-asan tsan valgrind faults fuzz stress}
SUMMARY=""

now() { date +%s; }

header() {
    printf '\n==== check step: %s ====\n' "$1"
}

# result STEP STATUS FIGURES SECONDS
result() {
    line=$(printf '%-9s %-4s %s (%ss)' "$1" "$2" "$3" "$4")
    printf '==== %s\n' "$line"
    SUMMARY="$SUMMARY$line
"
}

fail() {
    result "$1" FAIL "$2" "$(( $(now) - STEP_START ))"
    printf '\nmake check FAILED at step %s\n%s' "$1" "$SUMMARY"
    exit 1
}

# configure DIR CMAKE_ARGS...: configures and builds a test tree.
configure_and_build() {
    dir=$1
    shift
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DASYNC_SOCKET_TESTS=ON "$@" >"$dir.configure.log" 2>&1 ||
        { cat "$dir.configure.log"; return 1; }
    cmake --build "$dir" -j "$JOBS" >"$dir.build.log" 2>&1 || { tail -n 60 "$dir.build.log"; return 1; }
}

# ctest_run DIR LOG CTEST_ARGS...: runs ctest, keeps its output in LOG, prints the tail.
ctest_run() {
    dir=$1
    log=$2
    shift 2
    status=0
    (cd "$dir" && ctest --output-on-failure --no-tests=error -j "$JOBS" "$@") >"$log" 2>&1 || status=$?
    grep -E 'tests passed|tests failed|\*\*\*|Failed|Timeout' "$log" | tail -n 40 || true
    if [ "$status" -ne 0 ]; then
        # the output of each failing test (ctest --output-on-failure put it after its line)
        awk '/\*\*\*(Failed|Exception|Timeout)/ {show = 1; print; next}
             /^ *Start +[0-9]+:|^ *[0-9]+\/[0-9]+ Test +#/ {show = 0}
             show' "$log" | head -n 200
    fi
    return $status
}

# The "N tests" figure of a ctest log ("100% tests passed, 0 tests failed out of 262").
ctest_count() {
    sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$1" | tail -n 1
}

# Sanitizer reports are written to files (log_path), so they are counted even when a test that
# fails for another reason hides them in its output.
count_reports() {
    find "$1" -name 'report.*' -type f 2>/dev/null | wc -l | tr -d ' '
}

step_asan() {
    dir=build/asan
    configure_and_build "$dir" -DASYNC_SOCKET_SANITIZE=address,undefined -DASYNC_SOCKET_STRESS=ON || fail asan "build failed"
    rm -rf "$dir/reports" && mkdir -p "$dir/reports"
    export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=1:log_path=$ROOT/$dir/reports/report"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$ROOT/$dir/reports/report"
    status=0
    ASYNC_SOCKET_STRESS_SCALE=$STRESS_SCALE ctest_run "$dir" "$dir/ctest.log" || status=$?
    unset ASAN_OPTIONS UBSAN_OPTIONS
    reports=$(count_reports "$dir/reports")
    figures="$(ctest_count "$dir/ctest.log") tests (whole suite, stress scale $STRESS_SCALE%), $reports ASan/UBSan reports"
    if [ "$reports" -ne 0 ]; then
        head -n 60 "$dir"/reports/report.* || true
        fail asan "$figures"
    fi
    [ "$status" -eq 0 ] || fail asan "$figures; failing tests above ($dir/ctest.log)"
    result asan ok "$figures" "$(( $(now) - STEP_START ))"
}

step_tsan() {
    dir=build/tsan
    configure_and_build "$dir" -DASYNC_SOCKET_SANITIZE=thread -DASYNC_SOCKET_STRESS=ON || fail tsan "build failed"
    rm -rf "$dir/reports" && mkdir -p "$dir/reports"
    export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:log_path=$ROOT/$dir/reports/report"
    status=0
    ASYNC_SOCKET_STRESS_SCALE=$STRESS_SCALE ctest_run "$dir" "$dir/ctest.log" -L 'integration|stress|tls|examples' || status=$?
    unset TSAN_OPTIONS
    reports=$(count_reports "$dir/reports")
    figures="$(ctest_count "$dir/ctest.log") tests (integration, stress, tls and examples labels, stress scale $STRESS_SCALE%), $reports TSan reports"
    if [ "$reports" -ne 0 ]; then
        head -n 80 "$dir"/reports/report.* || true
        fail tsan "$figures"
    fi
    [ "$status" -eq 0 ] || fail tsan "$figures; failing tests above ($dir/ctest.log)"
    result tsan ok "$figures" "$(( $(now) - STEP_START ))"
}

step_valgrind() {
    dir=build/valgrind
    command -v valgrind >/dev/null 2>&1 || fail valgrind "valgrind is not installed (make check installs it)"
    # Every test command runs under memcheck (CMake puts the emulator in front of each test
    # executable). Definite and indirect leaks count as errors, so either fails the test.
    configure_and_build "$dir" -DASYNC_SOCKET_VALGRIND=ON || fail valgrind "build failed"
    rm -rf "$dir/reports" && mkdir -p "$dir/reports"
    status=0
    ASYNC_SOCKET_STRESS_SCALE=$STRESS_SCALE ctest_run "$dir" "$dir/ctest.log" -L integration || status=$?
    # The example server is started by a Python driver, which puts memcheck in front of it.
    integration_status=$status
    CHAT_SERVER_WRAPPER="valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --log-file=$ROOT/$dir/reports/memcheck.%p" \
        ctest_run "$dir" "$dir/ctest.examples.log" -L examples || status=$?
    [ "$integration_status" -eq 0 ] || status=$integration_status
    runs=$(find "$dir/reports" -name 'memcheck.*' -type f | wc -l | tr -d ' ')
    errors=$(cat "$dir"/reports/memcheck.* 2>/dev/null | sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' | awk '{s += $1} END {print s + 0}')
    definite=$(cat "$dir"/reports/memcheck.* 2>/dev/null | sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' | tr -d , | awk '{s += $1} END {print s + 0}')
    indirect=$(cat "$dir"/reports/memcheck.* 2>/dev/null | sed -n 's/.*indirectly lost: \([0-9,]*\) bytes.*/\1/p' | tr -d , | awk '{s += $1} END {print s + 0}')
    figures="$(ctest_count "$dir/ctest.log") integration tests and $(ctest_count "$dir/ctest.examples.log") runs of the example server in $runs processes: $errors errors, $definite bytes definitely lost, $indirect bytes indirectly lost"
    if [ "$errors" -ne 0 ] || [ "$definite" -ne 0 ] || [ "$indirect" -ne 0 ]; then
        grep -l -E 'ERROR SUMMARY: [1-9]|(definitely|indirectly) lost: [1-9]' "$dir"/reports/memcheck.* | head -n 3 | xargs cat || true
        fail valgrind "$figures"
    fi
    [ "$status" -eq 0 ] || fail valgrind "$figures; failing tests above ($dir/ctest.log)"
    [ "$runs" -gt 0 ] || fail valgrind "no test ran under memcheck"
    result valgrind ok "$figures" "$(( $(now) - STEP_START ))"
}

step_faults() {
    # The sweeps run in the ASan tree, so a leak or a use after free on an error path is caught
    # there too; the whole executable runs in one process so that its summary covers every sweep.
    dir=build/asan
    configure_and_build "$dir" -DASYNC_SOCKET_SANITIZE=address,undefined -DASYNC_SOCKET_STRESS=ON || fail faults "build failed"
    log="$dir/faults.log"
    status=0
    ASAN_OPTIONS="detect_leaks=1:halt_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
        timeout 600 "$dir/async_socket_faults_ut" >"$log" 2>&1 || status=$?
    grep -E 'sweep|FAILED|PASSED|ERROR' "$log" | grep -v '^\[ *RUN' || true
    [ "$status" -eq 0 ] || { tail -n 40 "$log"; fail faults "async_socket_faults_ut failed ($log)"; }
    summary=$(grep '^fault sweep:' "$log" | tail -n 1)
    [ -n "$summary" ] || fail faults "no 'fault sweep:' summary line in $log"
    result faults ok "${summary#fault sweep: }" "$(( $(now) - STEP_START ))"
}

# run_logged LOG COMMAND...: runs the command with its output shown and kept in LOG; returns the
# command's status (not the status of the tee that shows it).
run_logged() {
    log=$1
    shift
    rm -f "$log.rc"
    { "$@" 2>&1; echo $? >"$log.rc"; } | tee "$log"
    return "$(cat "$log.rc" 2>/dev/null || echo 1)"
}

step_fuzz() {
    status=0
    run_logged build/fuzz.log "$MAKE" --no-print-directory fuzz FUZZ_SECONDS="$FUZZ_SECONDS" || status=$?
    [ "$status" -eq 0 ] || fail fuzz "make fuzz failed (build/fuzz.log)"
    # the fuzz target's own count line, else libFuzzer's closing "Done N runs in S second(s)"
    execs=$(grep -i -E 'executions' build/fuzz.log | tail -n 1 || true)
    [ -n "$execs" ] || execs=$(grep -o -E 'Done [0-9]+ runs in [0-9]+ second' build/fuzz.log | tail -n 1 || true)
    result fuzz ok "${execs:-executions: see build/fuzz.log} (FUZZ_SECONDS=$FUZZ_SECONDS)" "$(( $(now) - STEP_START ))"
}

step_stress() {
    status=0
    run_logged build/stress.log "$MAKE" --no-print-directory stress || status=$?
    [ "$status" -eq 0 ] || fail stress "make stress failed (build/stress.log)"
    result stress ok "figures above (build/stress.log)" "$(( $(now) - STEP_START ))"
}

mkdir -p build
CHECK_START=$(now)
for step in $STEPS; do
    case $step in
        asan|tsan|valgrind|faults|fuzz|stress) ;;
        *) echo "unknown check step '$step' (steps: asan tsan valgrind faults fuzz stress)" >&2; exit 2 ;;
    esac
done
for step in $STEPS; do
    header "$step"
    STEP_START=$(now)
    "step_$step"
done
printf '\nmake check passed (%ss):\n%s' "$(( $(now) - CHECK_START ))" "$SUMMARY"
