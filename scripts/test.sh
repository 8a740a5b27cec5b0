#!/usr/bin/env bash
# Runs every test: installs the test prerequisites, then the whole workspace's cargo tests
# (unit tests, integration tests that start the real binary, the Python client check and the
# examples). Every test binary runs even when an earlier one fails; the last lines name what
# failed and count the results. Extra arguments go to `cargo test`.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup-test-env.sh || exit 1

log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# libtest prints `test NAME ... FAILED` for each failure and `test result: ... N passed;
# M failed; ...` for each binary; cargo lists the binaries that failed at the end.
passed=$(awk '/^test result: / { for (i = 1; i < NF; i++) if ($(i + 1) ~ /^passed/) n += $i } END { print n + 0 }' "$log")
failed_tests=$(grep -E '^test .* \.\.\. FAILED$' "$log" | sed -E 's/^test (.*) \.\.\. FAILED$/\1/' | sort -u)
failed_targets=$(grep -E '^ +`.*`$' "$log" | sed -E 's/^ +`(.*)`$/\1/' | sort -u | paste -sd, - | sed 's/,/, /g')
n_failed=$(printf '%s' "$failed_tests" | grep -c . || true)
echo
if [ "$status" -ne 0 ]; then
  if [ "$n_failed" -gt 0 ]; then
    echo "failed: $(printf '%s' "$failed_tests" | paste -sd, - | sed 's/,/, /g')${failed_targets:+ (in $failed_targets)}"
  else
    echo "failed: cargo test exited $status before any test failed (a build error? see above)"
  fi
fi
echo "tests: ${passed:-0} passed, ${n_failed} failed"
exit "$status"
