#!/usr/bin/env bash
# Builds bacalhau, starts a local orchestrator, submits the hello-world job, describes it,
# and stops the orchestrator again. Its data lives in a temporary directory.
#
# This build has no compute role yet: the orchestrator stores and evaluates the job and, with
# no node to run it, queues it (for its QueueTimeout), exactly as upstream decides.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet --bin bacalhau
bin=target/debug/bacalhau
port=${BACALHAU_API_PORT:-1234}
data=$(mktemp -d)
export BACALHAU_API_HOST=127.0.0.1 BACALHAU_API_PORT=$port

"$bin" serve --orchestrator --api-port "$port" --data-dir "$data" >"$data/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
  "$bin" agent alive >/dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || { cat "$data/serve.log"; exit 1; }
  sleep 0.1
done
echo "== orchestrator running on port $port"

job=$("$bin" job run examples/hello.yaml --wait=false --id-only)
echo "== submitted $job"
sleep 0.5
"$bin" job describe "$job"
echo
"$bin" job list
"$bin" job stop "$job" --quiet
echo "== stopped $job; shutting the orchestrator down"
