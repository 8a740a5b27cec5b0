#!/usr/bin/env bash
# Orchestrator cluster figures beside a single orchestrator, measured in the same run on the
# same machine: submit latency (sequential) and submit rate (concurrent clients) through the
# leader and through a follower (which forwards to the leader), and failover time (leader
# killed with SIGKILL → first job acknowledged by a survivor). Jobs have no compute node to go
# to, so each is stored, scheduled and failed: every figure is the orchestrators' own path.
#
#   bench/raft.sh [SEQUENTIAL] [CONCURRENT] [CLIENTS]     (defaults 300 3000 16)
set -euo pipefail
cd "$(dirname "$0")/.."
sequential=${1:-300} concurrent=${2:-3000} clients=${3:-16}
bin=target/release/bacalhau
tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

cargo build --release -q -p bacalhau
port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
alive() {
  for _ in $(seq 1 300); do
    curl -fs "http://127.0.0.1:$1/api/v1/agent/alive" >/dev/null && return 0
    sleep 0.1
  done
  echo "the orchestrator on port $1 did not answer" >&2
  return 1
}

# One orchestrator, standing alone.
solo=$(port)
"$bin" serve --orchestrator --name solo --data-dir "$tmp/solo" --api-host 127.0.0.1 --port "$solo" \
  >"$tmp/solo.log" 2>&1 &
pids+=($!)
disown
alive "$solo"
read -r solo_p50 solo_p99 solo_rate < <(python3 bench/raft.py submit "http://127.0.0.1:$solo" \
  "$sequential" "$concurrent" "$clients" solo)
kill -9 "${pids[0]}"

# Three members.
api=() raft=()
for i in 0 1 2; do api+=("$(port)"); raft+=("$(port)"); done
for i in 0 1 2; do
  peers=()
  for j in 0 1 2; do [ "$j" != "$i" ] && peers+=("127.0.0.1:${raft[$j]}"); done
  "$bin" serve --orchestrator --name "member-$i" --data-dir "$tmp/member-$i" \
    --api-host 127.0.0.1 --port "${api[$i]}" \
    -c Orchestrator.Cluster.Host=127.0.0.1 -c "Orchestrator.Cluster.Port=${raft[$i]}" \
    -c "Orchestrator.Cluster.Peers=$(IFS=,; echo "${peers[*]}")" >"$tmp/member-$i.log" 2>&1 &
  pids+=($!)
  disown
done
for i in 0 1 2; do alive "${api[$i]}"; done
leader=""
for _ in $(seq 1 100); do
  name=$(curl -fs "http://127.0.0.1:${api[0]}/api/v1/cluster/status" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("Leader") or "")' || true)
  if [ -n "$name" ]; then leader=${name#member-}; break; fi
  sleep 0.1
done
[ -n "$leader" ] || { echo "no leader" >&2; exit 1; }
follower=$(( (leader + 1) % 3 ))
read -r lead_p50 lead_p99 lead_rate < <(python3 bench/raft.py submit "http://127.0.0.1:${api[$leader]}" \
  "$sequential" "$concurrent" "$clients" leader)
read -r fol_p50 fol_p99 fol_rate < <(python3 bench/raft.py submit "http://127.0.0.1:${api[$follower]}" \
  "$sequential" "$concurrent" "$clients" follower)

kill -9 "${pids[$((leader + 1))]}"
survivors=()
for i in 0 1 2; do [ "$i" != "$leader" ] && survivors+=("http://127.0.0.1:${api[$i]}"); done
read -r acknowledged scheduled < <(python3 bench/raft.py failover "${survivors[@]}")

ratio() { echo "scale=2; $1 / $2" | bc -l; }
echo "| submit latency p50 / p99 (sequential), 3 orchestrators, through the leader | $lead_p50 / $lead_p99 ms | 1 orchestrator: $solo_p50 / $solo_p99 ms | $(ratio "$lead_p50" "$solo_p50")× |"
echo "| submit latency p50 / p99 (sequential), 3 orchestrators, through a follower | $fol_p50 / $fol_p99 ms | 1 orchestrator: $solo_p50 / $solo_p99 ms | $(ratio "$fol_p50" "$solo_p50")× |"
echo "| submitted and scheduled /s ($concurrent jobs, $clients clients), 3 orchestrators, through the leader | $lead_rate | 1 orchestrator: $solo_rate | $(ratio "$lead_rate" "$solo_rate") |"
echo "| submitted and scheduled /s ($concurrent jobs, $clients clients), 3 orchestrators, through a follower | $fol_rate | 1 orchestrator: $solo_rate | $(ratio "$fol_rate" "$solo_rate") |"
echo "| failover: leader killed with SIGKILL → first job acknowledged / scheduled by the new leader | $acknowledged / $scheduled s | target: a new leader within 5 s | |"
