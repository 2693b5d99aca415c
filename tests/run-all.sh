#!/usr/bin/env bash
# Runs every test suite against the binaries in $BUILD and prints one total
# line at the end, "N passed, N failed". Suites: Criterion unit tests,
# end-to-end and interop tests (pytest, the real binary over loopback), a
# short run of every fuzz target over its seed corpus, and a smoke run of
# the benchmarks so their code cannot rot (no timing is asserted).
set -u
BUILD=${BUILD:-build}
cd "$(dirname "$0")/.."
passed=0
failed=0
skipped=0
declare -a failures=()

note() { printf '\n==== %s\n' "$*"; }

# ---- unit
note "unit tests ($BUILD/unit-tests)"
out=$("$BUILD/unit-tests" -j2 --short-filename 2>&1)
rc=$?
# Component log lines (ts=...) are noise here; failures and sanitizer reports are not.
printf '%s\n' "$out" | grep -vE '^ts=|^\[----\]|^\[RUN |^\[PASS\]' | tail -200
syn=$(printf '%s\n' "$out" | grep 'Synthesis:' | tail -1)
t=$(sed -n 's/.*Passing: \([0-9]*\).*/\1/p' <<<"$syn")
f=$(sed -n 's/.*Failing: \([0-9]*\) | Crashing: \([0-9]*\).*/\1 \2/p' <<<"$syn")
passed=$((passed + ${t:-0}))
if [ -n "$f" ]; then set -- $f; failed=$((failed + $1 + $2)); fi
if [ $rc -ne 0 ] && [ -z "$syn" ]; then failed=$((failed + 1)); failures+=("unit tests crashed"); fi
[ $rc -ne 0 ] && failures+=("unit")

# ---- end-to-end and interop
note "end-to-end and interop tests (tests/e2e, tests/interop)"
export OTELITE_BIN="$PWD/$BUILD/otelite"
export OTELITE_LOADGEN="$PWD/$BUILD/otelite-loadgen"
out=$(/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/e2e tests/interop 2>&1)
rc=$?
printf '%s\n' "$out" | tail -60
last=$(printf '%s\n' "$out" | grep -E '[0-9]+ (passed|failed|error)' | tail -1)
p=$(grep -oE '[0-9]+ passed' <<<"$last" | grep -oE '[0-9]+')
f=$(grep -oE '[0-9]+ failed' <<<"$last" | grep -oE '[0-9]+')
e=$(grep -oE '[0-9]+ error' <<<"$last" | grep -oE '[0-9]+')
s=$(grep -oE '[0-9]+ skipped' <<<"$last" | grep -oE '[0-9]+')
passed=$((passed + ${p:-0}))
failed=$((failed + ${f:-0} + ${e:-0}))
skipped=$((skipped + ${s:-0}))
if [ $rc -ne 0 ] && [ $rc -ne 5 ]; then failures+=("e2e"); [ -z "$last" ] && failed=$((failed + 1)); fi

# ---- fuzz smoke: every target over its seeds plus a few thousand mutations
if [ "${SKIP_FUZZ:-0}" != 1 ] && ls tests/fuzz/*.c >/dev/null 2>&1; then
  note "fuzz smoke (make fuzz-build)"
  if make -s fuzz-build >/tmp/otelite-fuzz-build.log 2>&1; then
    for src in tests/fuzz/*.c; do
      n=$(basename "$src" .c)
      # New inputs go to the build tree; the committed seeds stay as they are.
      mkdir -p "build/fuzz/smoke/$n"
      if build/fuzz/$n -runs=3000 -max_len=8192 "build/fuzz/smoke/$n" "tests/fuzz/corpus/$n" >/tmp/otelite-fuzz-$n.log 2>&1; then
        echo "fuzz $n: ok"; passed=$((passed + 1))
      else
        echo "fuzz $n: FAILED"; tail -30 /tmp/otelite-fuzz-$n.log; failed=$((failed + 1)); failures+=("fuzz $n")
      fi
    done
  else
    tail -30 /tmp/otelite-fuzz-build.log; failed=$((failed + 1)); failures+=("fuzz build")
  fi
fi

# ---- bench smoke
if [ -f tests/bench/run.sh ]; then
  note "bench smoke"
  if BUILD=$BUILD BENCH_SMOKE=1 bash tests/bench/run.sh >/tmp/otelite-bench-smoke.log 2>&1 &&
     "$BUILD/bench-filter" 200 5 >>/tmp/otelite-bench-smoke.log 2>&1 &&
     "$BUILD/bench-store" 20000 1000 >>/tmp/otelite-bench-smoke.log 2>&1 &&
     "$BUILD/bench-datadog" 100 3 >>/tmp/otelite-bench-smoke.log 2>&1 &&
     BUILD=$BUILD /usr/bin/python3 tests/bench/bench_datadog.py --seconds 1 --runs 1 >>/tmp/otelite-bench-smoke.log 2>&1; then
    echo "bench smoke: ok"; passed=$((passed + 1))
  else
    echo "bench smoke: FAILED"; tail -30 /tmp/otelite-bench-smoke.log; failed=$((failed + 1)); failures+=("bench smoke")
  fi
fi

echo
[ ${#failures[@]} -gt 0 ] && echo "failing suites: ${failures[*]}"
if [ $skipped -gt 0 ]; then
  echo "check: $passed passed, $failed failed, $skipped skipped"
else
  echo "check: $passed passed, $failed failed"
fi
[ $failed -eq 0 ] && [ ${#failures[@]} -eq 0 ]
