#!/usr/bin/env bash
# The Swift test suite once under AddressSanitizer (issue 17): the C kernels do pointer arithmetic, and a read past a
# buffer that happens to land in mapped memory passes the ordinary tests. A benchmark-like job, not part of the test
# command (it rebuilds everything instrumented into .build-asan/ and runs about three times slower).
#
#   scripts/test-asan.sh [FILTER]      # FILTER: a swift test --filter regex (default: every test)
#
# Leak detection is off: the Swift runtime's metadata caches and the tests' process-lifetime singletons read as
# leaks. Writes the log to .build-asan/asan-test.log and fails on any AddressSanitizer report or failed test.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=.build-asan
mkdir -p "$scratch"
# The PostgreSQL store's tests need a server, as in scripts/test.sh.
if ! scripts/postgres.sh status; then trap 'scripts/postgres.sh stop' EXIT; fi
export ATTEND_TEST_POSTGRES="$(scripts/postgres.sh start)"
swift build --build-tests --sanitize=address --scratch-path "$scratch"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1"
filter=()
if [ $# -gt 0 ]; then filter=(--filter "$1"); fi
set +e
swift test --skip-build --sanitize=address --scratch-path "$scratch" "${filter[@]}" 2>&1 | tee "$scratch/asan-test.log"
status=${PIPESTATUS[0]}
set -e
if grep -q "ERROR: AddressSanitizer" "$scratch/asan-test.log"; then echo "error: AddressSanitizer reported an error (above)" >&2; exit 1; fi
if [ "$status" -ne 0 ]; then echo "error: the tests failed under AddressSanitizer (exit $status)" >&2; exit "$status"; fi
grep -E "Executed [0-9]+ tests" "$scratch/asan-test.log" | tail -1
echo "no AddressSanitizer report"
