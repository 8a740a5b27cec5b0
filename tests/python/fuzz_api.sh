#!/usr/bin/env bash
# Fuzzes a running API server with schemathesis against our OpenAPI document, bounded in time.
#
#   tests/python/fuzz_api.sh http://127.0.0.1:1234 [SCHEMA]
#
# SCHEMA is a file or URL; by default the server's own /api/v1/openapi.json when it serves one,
# else crates/api/src/openapi.json. Operations the server answers 404 for (routes not served by
# this build: the docs routes, the audit log) are left out with a warning. The logs WebSocket is
# always left out. Exits non-zero on any server error (5xx), crash, network error or response
# that does not conform to the document.
#
# Environment:
#   FUZZ_MAX_EXAMPLES  test cases per operation and phase (default 25)
#   FUZZ_SEED          hypothesis seed (default 1, so runs repeat; set to "random" for a new one)
#   FUZZ_WORKERS       concurrent workers (default 2)
#   FUZZ_TIME_LIMIT    seconds before the run is killed (default 300: a safety net; the run is
#                      bounded by FUZZ_MAX_EXAMPLES and takes ~100 s on a busy 2-core machine)
#   FUZZ_TOKEN         sent as "Authorization: Bearer ..." when set
#   FUZZ_BASIC_AUTH    USER:PASS for basic authentication when set
#   FUZZ_REPORT_DIR    where to write a JUnit report (default: none)
#   FUZZ_SETTLE_SECONDS  wait before the closing liveness check (default 3)
#   FUZZ_SERVER_PID    the server's process ID (same machine): fail when it exits or its resident
#                      memory passes FUZZ_MAX_RSS_MB (default 1024), during or after the run
#   FUZZ_SERVER_LOG    the server's log file: fail when it shows a panic (a panicking background
#                      task, such as a scheduler worker, answers no request with a 5xx)
set -euo pipefail

base=${1:?usage: $0 BASE_URL [SCHEMA]}
base=${base%/}
repo=$(cd "$(dirname "$0")/../.." && pwd)
python=$repo/.venv/bin/python
if [ ! -x "$repo/.venv/bin/schemathesis" ]; then
  echo "fuzz_api: $repo/.venv/bin/schemathesis is missing; run scripts/setup-test-env.sh" >&2
  exit 2
fi
# schemathesis's own entry point, with one guard: on CPython before 3.11.9 and 3.12.3,
# ast.parse deep in a stack can raise "SystemError: AST constructor recursion depth mismatch"
# (CPython gh-106905). Hypothesis calls it only to describe a lambda in a strategy's repr, and a
# seed that hits it ends the operation with a "Runtime Error" that says nothing about the
# server; the guard describes such a lambda as "lambda: <unknown>" instead.
launcher='
import sys
try:
    from hypothesis.internal import lambda_sources
    _describe = lambda_sources.lambda_description
    def _guarded(f):
        try:
            return _describe(f)
        except SystemError:
            return "lambda: <unknown>"
    lambda_sources.lambda_description = _guarded
except (ImportError, AttributeError):
    pass
from schemathesis.cli import schemathesis
sys.argv[0] = "schemathesis"
sys.exit(schemathesis())
'

curl_args=(--silent --output /dev/null --write-out '%{http_code}' --max-time 10)
auth_args=()
if [ -n "${FUZZ_TOKEN:-}" ]; then
  auth_args+=(-H "Authorization: Bearer $FUZZ_TOKEN")
  curl_args+=(-H "Authorization: Bearer $FUZZ_TOKEN")
fi
if [ -n "${FUZZ_BASIC_AUTH:-}" ]; then
  auth_args+=(-a "$FUZZ_BASIC_AUTH")
  curl_args+=(--user "$FUZZ_BASIC_AUTH")
fi
status_of() { curl "${curl_args[@]}" "$base$1" || true; }

alive=$(status_of /api/v1/agent/alive)
if [ "$alive" != 200 ]; then
  echo "fuzz_api: $base/api/v1/agent/alive answered '$alive', not 200" >&2
  exit 2
fi

schema=${2:-}
if [ -z "$schema" ]; then
  if [ "$(status_of /api/v1/openapi.json)" = 200 ]; then
    schema=$base/api/v1/openapi.json
  else
    schema=$repo/crates/api/src/openapi.json
  fi
elif [ -f "$schema" ]; then
  schema=$(cd "$(dirname "$schema")" && pwd)/$(basename "$schema")
fi

# Always out: the WebSocket upgrade (a plain GET is not a WebSocket handshake).
excludes=(--exclude-path /api/v1/orchestrator/jobs/{id}/logs)
for path in /api/v1/openapi.json /swagger/doc.json /api/v1/orchestrator/audit; do
  if [ "$(status_of "$path")" = 404 ]; then
    echo "fuzz_api: WARNING: $base$path answers 404 (not served by this build); leaving it out" >&2
    excludes+=(--exclude-path "$path")
  fi
done

seed=${FUZZ_SEED:-1}
seed_args=()
if [ "$seed" != random ]; then
  seed_args=(--seed "$seed")
fi
report_args=()
if [ -n "${FUZZ_REPORT_DIR:-}" ]; then
  mkdir -p "$FUZZ_REPORT_DIR"
  report_args=(--report junit --report-dir "$(cd "$FUZZ_REPORT_DIR" && pwd)")
fi

# Run from a scratch directory so nothing (hypothesis files, reports) lands in the repository.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cd "$scratch"

cmd=(
  "$python" -c "$launcher" --no-color run "$schema"
  --url "$base"
  --phases examples,coverage,fuzzing,stateful
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance
  --max-examples "${FUZZ_MAX_EXAMPLES:-25}"
  --workers "${FUZZ_WORKERS:-2}"
  --generation-database none
  --request-timeout 10
  --suppress-health-check all
  "${seed_args[@]}"
  "${excludes[@]}"
  "${auth_args[@]}"
  "${report_args[@]}"
)
echo "fuzz_api: schemathesis ${cmd[*]:3}" >&2
# With the server's PID, watch its memory: a request can set off work that runs away after the
# answer (a scheduler looping over a huge Count), which no status code shows.
server_pid=${FUZZ_SERVER_PID:-}
max_rss_kib=$((${FUZZ_MAX_RSS_MB:-1024} * 1024))
rss_of() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || true; }
over=$scratch/rss-over

server_log=${FUZZ_SERVER_LOG:-}
log_offset=0
if [ -n "$server_log" ] && [ -f "$server_log" ]; then
  log_offset=$(stat -c %s "$server_log")
fi

start=$(date +%s)
set +e
timeout --kill-after=10 "${FUZZ_TIME_LIMIT:-300}" "${cmd[@]}" &
run_pid=$!
monitor_pid=
if [ -n "$server_pid" ]; then
  (
    while kill -0 "$run_pid" 2>/dev/null; do
      rss=$(rss_of "$server_pid")
      if [ -n "$rss" ] && [ "$rss" -gt "$max_rss_kib" ]; then
        echo "$rss" >"$over"
        kill "$run_pid" 2>/dev/null
        break
      fi
      sleep 1
    done
  ) &
  monitor_pid=$!
fi
wait "$run_pid"
rc=$?
[ -z "$monitor_pid" ] || wait "$monitor_pid" 2>/dev/null
set -e
echo "fuzz_api: schemathesis exited $rc after $(($(date +%s) - start))s" >&2
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
  echo "fuzz_api: the run went past ${FUZZ_TIME_LIMIT:-300}s and was stopped" >&2
fi
if [ -f "$over" ]; then
  echo "fuzz_api: FAILED: server $server_pid grew to $(($(cat "$over") / 1024)) MiB (limit ${FUZZ_MAX_RSS_MB:-1024}); run stopped" >&2
  rc=1
fi
# A request can take the server down after its answer: it must still answer, and (with its PID)
# stay within its memory limit, a moment after the last request.
sleep "${FUZZ_SETTLE_SECONDS:-3}"
after=$(status_of /api/v1/agent/alive)
if [ "$after" != 200 ]; then
  echo "fuzz_api: FAILED: after the run $base/api/v1/agent/alive answered '$after' (server crashed or hangs)" >&2
  [ "$rc" != 0 ] || rc=1
fi
if [ -n "$server_pid" ]; then
  rss=$(rss_of "$server_pid")
  if [ -z "$rss" ]; then
    echo "fuzz_api: FAILED: server process $server_pid is gone after the run" >&2
    [ "$rc" != 0 ] || rc=1
  elif [ "$rss" -gt "$max_rss_kib" ]; then
    echo "fuzz_api: FAILED: server $server_pid uses $((rss / 1024)) MiB after the run (limit ${FUZZ_MAX_RSS_MB:-1024})" >&2
    [ "$rc" != 0 ] || rc=1
  fi
fi
if [ -n "$server_log" ]; then
  # Only what the server wrote during this run.
  panics=$(tail -c +"$((log_offset + 1))" "$server_log" 2>/dev/null | grep -a -A1 "panicked at" | head -20 || true)
  if [ -n "$panics" ]; then
    echo "fuzz_api: FAILED: the server panicked during the run ($server_log):" >&2
    echo "$panics" >&2
    [ "$rc" != 0 ] || rc=1
  fi
fi
exit "$rc"
