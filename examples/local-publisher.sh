#!/usr/bin/env bash
# Results: -o names a folder the job writes, -p local keeps the results on the node (served
# over HTTP), and `job get` downloads them: stdout, stderr, exitCode and one folder per -o.
set -euo pipefail
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

id=$(bacalhau docker run --id-only -o primes:/outputs -p local busybox:1.37.0 -- \
  sh -c 'for n in 2 3 5 7 11 13; do echo $n; done > /outputs/primes.txt; echo done')
bacalhau job get "$id" --output-dir "$out/results"
echo "stdout: $(cat "$out/results/stdout")"
echo "primes: $(paste -sd' ' "$out/results/primes/primes.txt")"
