#!/usr/bin/env bash
# Secrets: a job asks for a variable of the node's own environment with `env:NAME`. The node
# resolves it only when Compute.Env.AllowList allows the name (e.g. `bacalhau serve -c
# Compute.Env.AllowList=EXAMPLE_*` with EXAMPLE_TOKEN set), and the value is never stored,
# logged or reported: only the container sees it.
set -euo pipefail

bacalhau docker run -e TOKEN=env:EXAMPLE_TOKEN busybox:1.37.0 -- \
  sh -c 'echo "the job got a token of ${#TOKEN} characters"'
