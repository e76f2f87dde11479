#!/usr/bin/env bash
# Run every test suite and print one final line "N passed, N failed".
#
#   scripts/run-tests.sh            all suites
#   scripts/run-tests.sh unit       C unit + golden tests only
#   scripts/run-tests.sh integration
#   scripts/run-tests.sh fuzz       the short fuzz run (FUZZ_SECONDS, default 60)
#
# Every suite speaks TAP; this script shows each suite's output and counts
# "ok" / "not ok" lines across all of them. Exit status 0 only when nothing
# failed and every suite ran to its end.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

what=${1:-all}
passed=0
failed=0
broken=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# run_suite NAME CMD...: show its TAP output, add up its results.
run_suite() {
    local name=$1; shift
    echo "== $name"
    "$@" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    local ok nok
    ok=$(grep -cE '^ok ' "$log")
    nok=$(grep -cE '^not ok ' "$log")
    passed=$((passed + ok))
    failed=$((failed + nok))
    if [ "$rc" -ne 0 ] && [ "$nok" -eq 0 ]; then
        echo "!! $name exited $rc without a failing test: counted as one failure"
        failed=$((failed + 1))
        broken=1
    fi
}

if [ "$what" = all ] || [ "$what" = unit ]; then
    for t in build/tests/test_*; do
        [ -x "$t" ] && run_suite "unit: ${t##*/}" "$t"
    done
    # The same unit and golden tests under AddressSanitizer + UBSan.
    if command -v clang >/dev/null; then
        if make --no-print-directory asan >/dev/null; then
            for t in build/asan/tests/test_*; do
                [ -x "$t" ] && run_suite "unit (asan+ubsan): ${t##*/}" \
                    env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 "$t"
            done
        else
            echo "!! asan build failed"; failed=$((failed + 1)); broken=1
        fi
    fi
fi

# A short libFuzzer run over the core pipeline; one TAP result.
fuzz_suite() {
    local secs=${FUZZ_SECONDS:-60} out
    out=$(mktemp)
    if make --no-print-directory fuzz FUZZ_SECONDS="$secs" >"$out" 2>&1; then
        echo "ok 1 - fuzz: ${secs} s over the parser and pairing found no crash, leak, UB or split dependence"
        grep -E '^(Done|stat::number_of_executed_units)' "$out" | sed 's/^/# /'
    else
        echo "not ok 1 - fuzz: ${secs} s over the parser and pairing"
        tail -40 "$out" | sed 's/^/# /'
    fi
    echo "1..1"
    rm -f "$out"
}

if { [ "$what" = all ] || [ "$what" = fuzz ]; } && command -v clang >/dev/null; then
    run_suite "fuzz" fuzz_suite
fi

if [ "$what" = all ] || [ "$what" = integration ]; then
    run_suite "integration (bats)" bats --tap tests/integration
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$broken" -eq 0 ]
