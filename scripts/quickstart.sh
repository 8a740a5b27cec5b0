#!/usr/bin/env bash
# Builds bacalhau and the busybox test image, starts a local hybrid node (orchestrator +
# compute), runs the hello-world job in Docker, describes it, and stops the node again. Its
# data lives in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build-test-images.sh
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
"$bin" docker run --name hello-world busybox:1.37.0 -- echo Hello World
echo
"$bin" job describe hello-world
