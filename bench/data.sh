#!/usr/bin/env bash
# `bacalhau job get` of a large result against curl of the same archive, on loopback: a
# hybrid node (release build) runs a Docker job that writes SIZE_MIB of random bytes with
# the local publisher; the archive is then fetched three times each way and the median kept.
# Then an S3 input (from moto) against boto3 downloading the same object.
# Prints Markdown table rows: metric | ours | floor | ratio.
#
#   bench/data.sh [SIZE_MIB]      (default 1024)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
bin=${BIN:-target/release/bacalhau}
[ -x "$bin" ] || cargo build --release -p bacalhau >&2
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" serve --name bench-data --data-dir "$work/node" --api-host 127.0.0.1 --api-port "$port" \
  -c Publishers.Types.Local.Port=0 >"$work/node.log" 2>&1 &
node_pid=$!
trap 'kill $node_pid 2>/dev/null; rm -rf "$work"' EXIT
export BACALHAU_API_HOST=127.0.0.1 BACALHAU_API_PORT=$port
for _ in $(seq 100); do "$bin" agent alive >/dev/null 2>&1 && break; sleep 0.1; done

echo "writing a ${size_mib} MiB result..." >&2
id=$("$bin" docker run --id-only --wait-timeout-secs 1200 -o out:/out -p local busybox:1.37.0 -- \
  dd if=/dev/urandom of=/out/big bs=1048576 count="$size_mib" 2>/dev/null)
url=$(curl -sf "http://127.0.0.1:$port/api/v1/orchestrator/jobs/$id/results" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["Items"][0]["Params"]["URL"])')
bytes=$(curl -sfI "$url" | tr -d '\r' | awk 'tolower($1)=="content-length:" {print $2}')

. bench/timing.sh
runs=3
curl_s=$(for i in $(seq $runs); do rm -f "$work/c.tgz"; seconds curl -sf -o "$work/c.tgz" "$url"; done | median)
raw_s=$(for i in $(seq $runs); do rm -rf "$work/raw$i"; seconds "$bin" job get "$id" --raw --output-dir "$work/raw$i"; rm -rf "$work/raw$i"; done | median)
full_s=$(for i in $(seq $runs); do rm -rf "$work/full$i"; seconds "$bin" job get "$id" --output-dir "$work/full$i"; rm -rf "$work/full$i"; done | median)
mibs() { echo "scale=1; $bytes / 1048576 / $1" | bc -l; }
ratio() { echo "scale=2; $curl_s / $1" | bc -l; }
echo "| job get --raw, ${size_mib} MiB result (MiB/s) | $(mibs "$raw_s") | curl $(mibs "$curl_s") | $(ratio "$raw_s") |"
echo "| job get (download + unpack + merge, MiB/s of archive) | $(mibs "$full_s") | curl $(mibs "$curl_s") | $(ratio "$full_s") |"

# S3 input download against boto3, from the same moto server (the test venv's; made by
# scripts/setup-test-env.sh): a job reading the object minus the same job without it,
# against boto3's download_file of the object.
venv=.venv/bin
if [ ! -x "$venv/moto_server" ]; then
  echo "| S3 input download | not measured: run scripts/setup-test-env.sh for moto | | |"
  exit 0
fi
s3_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$venv/moto_server" -H 127.0.0.1 -p "$s3_port" >"$work/moto.log" 2>&1 &
moto_pid=$!
trap 'kill $node_pid $moto_pid 2>/dev/null; rm -rf "$work"' EXIT
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
endpoint="http://127.0.0.1:$s3_port"
for _ in $(seq 100); do curl -sf "$endpoint" >/dev/null 2>&1 && break; sleep 0.1; done
s3_mib=$(( size_mib < 512 ? size_mib : 512 ))
head -c "${s3_mib}M" /dev/urandom >"$work/object"
"$venv/python" - "$endpoint" "$work/object" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1])
s3.create_bucket(Bucket="bench")
s3.upload_file(sys.argv[2], "bench", "data/object")
PY
boto_s=$(for i in $(seq $runs); do seconds "$venv/python" -c "import boto3,sys; boto3.client('s3', endpoint_url='$endpoint').download_file('bench', 'data/object', '$work/boto.out')"; done | median)
# The node reads the credentials from its environment: restart it with them.
kill $node_pid; wait $node_pid 2>/dev/null || true
"$bin" serve --name bench-data --data-dir "$work/node" --api-host 127.0.0.1 --api-port "$port" \
  -c Publishers.Types.Local.Port=0 >"$work/node.log" 2>&1 &
node_pid=$!
for _ in $(seq 100); do "$bin" agent alive >/dev/null 2>&1 && break; sleep 0.1; done
job() { "$bin" docker run --wait-timeout-secs 600 "$@" busybox:1.37.0 -- true; }
with_s=$(for i in $(seq $runs); do seconds job -i "s3://bench/data/object,opt=endpoint=$endpoint"; done | median)
without_s=$(for i in $(seq $runs); do seconds job; done | median)
ours_s=$(echo "$with_s - $without_s" | bc -l)
s3_bytes=$((s3_mib * 1048576))
echo "| S3 input download, ${s3_mib} MiB from moto (job with the input minus job without, MiB/s) | $(echo "scale=1; $s3_bytes / 1048576 / $ours_s" | bc -l) | boto3 download_file $(echo "scale=1; $s3_bytes / 1048576 / $boto_s" | bc -l) | $(echo "scale=2; $boto_s / $ours_s" | bc -l) |"
