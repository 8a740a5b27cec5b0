#!/usr/bin/env bash
# A local input: the node mounts a host folder read-only, but only one it allow-lists. Start
# the node with `bacalhau serve -c Compute.AllowListedLocalPaths=/tmp/bacalhau-examples`
# (or set EXAMPLES_DIR to a folder your node allow-lists).
set -euo pipefail
dir=${EXAMPLES_DIR:-/tmp/bacalhau-examples}/local-input
mkdir -p "$dir"
printf 'alpha\nbeta\ngamma\n' > "$dir/words.txt"

bacalhau docker run -i "file://$dir:/inputs" busybox:1.37.0 -- wc -l /inputs/words.txt
