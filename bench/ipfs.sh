#!/usr/bin/env bash
# Content-addressed data beside its floors, on loopback (release build):
#   1. `job get` of a SIZE_MIB ipfs result (every block fetched from the node's results server
#      and checked against its CID, then written out) against `job get` of the same-size
#      result published with the local publisher (one archive over HTTP), on a hybrid node;
#   2. a BITSWAP_MIB input fetched by bitswap between two compute nodes of a devstack (a job
#      reading the CID on the node that lacks it, minus the same job without the input)
#      against curl of the same bytes from the holder's results server; and `data add` of
#      that file (hash, offer, the node fetches and pins) against the same curl.
# Each figure is the median of three runs. Prints Markdown table rows: metric | ours | floor |
# ratio.
#
#   bench/ipfs.sh [SIZE_MIB] [BITSWAP_MIB]      (default 1024 256)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
bitswap_mib=${2:-256}
bin=${BIN:-target/release/bacalhau}
[ -x "$bin" ] || cargo build --release -p bacalhau >&2
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
. bench/timing.sh
mibs() { echo "scale=1; $1 / $2" | bc -l; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }
runs=3

# 1. job get: ipfs against local, one hybrid node.
port=$(free_port)
"$bin" serve --name bench-ipfs --data-dir "$work/hybrid" --api-host 127.0.0.1 --api-port "$port" \
  -c Publishers.Types.Local.Port=0 >"$work/hybrid.log" 2>&1 &
pids+=($!)
export BACALHAU_API_HOST=127.0.0.1 BACALHAU_API_PORT=$port
for _ in $(seq 100); do "$bin" agent alive >/dev/null 2>&1 && break; sleep 0.1; done
echo "writing two ${size_mib} MiB results (local, ipfs)..." >&2
write() {
  "$bin" docker run --id-only --wait-timeout-secs 1200 -o out:/out -p "$1" busybox:1.37.0 -- \
    dd if=/dev/urandom of=/out/big bs=1048576 count="$size_mib" 2>/dev/null
}
local_id=$(write local)
ipfs_id=$(write ipfs)
get() { rm -rf "$work/get"; "$bin" job get "$1" --download-timeout-secs 1200 --output-dir "$work/get"; }
local_s=$(for i in $(seq $runs); do seconds get "$local_id"; done | median)
ipfs_s=$(for i in $(seq $runs); do seconds get "$ipfs_id"; done | median)
rm -rf "$work/get"
echo "| job get of a ${size_mib} MiB \`ipfs\` result: every block checked (MiB/s) | $(mibs "$size_mib" "$ipfs_s") | \`job get\` of the same size published \`local\` (one archive over HTTP): $(mibs "$size_mib" "$local_s") | $(ratio "$local_s" "$ipfs_s") |"
kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null || true
pids=()

# 2. bitswap between two compute nodes. A cap of one byte makes the reader collect what it
# fetched after each job, so every run fetches the whole input again.
port=$(free_port)
export BACALHAU_API_PORT=$port
"$bin" devstack --computes 2 --data-dir "$work/devstack" --api-host 127.0.0.1 --api-port "$port" \
  -c Compute.IPFS.MaxStoreSize=1 -c Compute.IPFS.Listen=/ip4/127.0.0.1/tcp/0 >"$work/devstack.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  [ "$("$bin" node list --output json 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' 2>/dev/null)" = 2 ] && break
  sleep 0.1
done
# Each `data add` run gets bytes of its own: a node that holds them already fetches nothing.
for i in $(seq $runs); do head -c "${bitswap_mib}M" /dev/urandom >"$work/add-$i"; done
add_s=$(for i in $(seq $runs); do seconds "$bin" data add "$work/add-$i" --node node-0; done | median)
head -c "${bitswap_mib}M" /dev/urandom >"$work/input"
cid=$("$bin" data add "$work/input" --node node-0 2>/dev/null)
job() { "$bin" docker run --wait-timeout-secs 600 -s name=node-1 "$@" busybox:1.37.0 -- true; }
with_s=$(for i in $(seq $runs); do seconds job -i "ipfs://$cid:/in"; done | median)
without_s=$(for i in $(seq $runs); do seconds job; done | median)
fetch_s=$(echo "$with_s - $without_s" | bc -l)
# The same bytes from the holder's results server (it serves any file of its results folder).
cp "$work/input" "$work/devstack/devstack/node-0/results/local-publisher/input"
address=$("$bin" node describe node-0 --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["Info"]["ComputeNodeInfo"]["address"])')
curl_s=$(for i in $(seq $runs); do seconds curl -sf -o "$work/curl.out" "$address/input"; done | median)
cmp -s "$work/input" "$work/curl.out" || echo "bench: curl fetched other bytes" >&2
echo "| ${bitswap_mib} MiB input over bitswap between two nodes (job with the input minus job without, MiB/s) | $(mibs "$bitswap_mib" "$fetch_s") | curl of the same bytes from the holder: $(mibs "$bitswap_mib" "$curl_s") | $(ratio "$curl_s" "$fetch_s") |"
echo "| \`data add\` of ${bitswap_mib} MiB (hash, offer, node fetches and pins; MiB/s) | $(mibs "$bitswap_mib" "$add_s") | curl $(mibs "$bitswap_mib" "$curl_s") | $(ratio "$curl_s" "$add_s") |"
