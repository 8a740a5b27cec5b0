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
#   FUZZ_TIME_LIMIT    seconds before the run is killed (default 110)
#   FUZZ_TOKEN         sent as "Authorization: Bearer ..." when set
#   FUZZ_BASIC_AUTH    USER:PASS for basic authentication when set
#   FUZZ_REPORT_DIR    where to write a JUnit report (default: none)
#   FUZZ_SETTLE_SECONDS  wait before the closing liveness check (default 3)
set -euo pipefail

base=${1:?usage: $0 BASE_URL [SCHEMA]}
base=${base%/}
repo=$(cd "$(dirname "$0")/../.." && pwd)
st=$repo/.venv/bin/schemathesis
if [ ! -x "$st" ]; then
  echo "fuzz_api: $st is missing; run scripts/setup-test-env.sh" >&2
  exit 2
fi

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
  "$st" --no-color run "$schema"
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
echo "fuzz_api: ${cmd[*]}" >&2
start=$(date +%s)
set +e
timeout --kill-after=10 "${FUZZ_TIME_LIMIT:-110}" "${cmd[@]}"
rc=$?
set -e
echo "fuzz_api: schemathesis exited $rc after $(($(date +%s) - start))s" >&2
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
  echo "fuzz_api: the run went past ${FUZZ_TIME_LIMIT:-110}s and was stopped" >&2
fi
# A request can take the server down after its answer (a scheduler running away with a job):
# the server must still be alive a moment after the last request.
sleep "${FUZZ_SETTLE_SECONDS:-3}"
after=$(status_of /api/v1/agent/alive)
if [ "$after" != 200 ]; then
  echo "fuzz_api: FAILED: after the run $base/api/v1/agent/alive answered '$after' (server crashed or hangs)" >&2
  [ "$rc" != 0 ] || rc=1
fi
exit "$rc"
