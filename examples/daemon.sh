#!/usr/bin/env bash
# A daemon job runs on every compute node that matches it, and on each node that joins later,
# until it is stopped. `job run` returns once it is running.
set -euo pipefail

id=$(bacalhau job run --id-only - <<'SPEC'
Name: heartbeat-daemon
Type: daemon
Tasks:
  - Name: main
    Engine:
      Type: docker
      Params:
        Image: busybox:1.37.0
        Parameters: [sh, -c, 'while true; do echo alive; sleep 5; done']
SPEC
)
bacalhau job executions "$id"
bacalhau job stop "$id" --reason "example done"
bacalhau job describe "$id" | grep '^State'
