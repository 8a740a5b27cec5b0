#!/usr/bin/env bash
# Builds bacalhau, starts a local hybrid node (orchestrator + compute), runs a job to
# completion, describes it, and stops the node again. Its data lives in a temporary directory.
#
# This build's only engine is noop (Docker and WebAssembly are to come), so the job runs the
# whole path (submit, schedule, run on the compute node, report back) without a container.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet --bin bacalhau
bin=target/debug/bacalhau
port=${BACALHAU_API_PORT:-1234}
data=$(mktemp -d)
export BACALHAU_API_HOST=127.0.0.1 BACALHAU_API_PORT=$port

"$bin" serve --api-port "$port" --data-dir "$data" >"$data/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
  "$bin" node list 2>/dev/null | grep -q CONNECTED && break
  kill -0 $server 2>/dev/null || { cat "$data/serve.log"; exit 1; }
  sleep 0.1
done
echo "== hybrid node running on port $port"
"$bin" node list
echo
"$bin" job run examples/noop.yaml
echo
"$bin" job describe hello-noop
