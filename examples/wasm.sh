#!/usr/bin/env bash
# WebAssembly jobs: `wasm run` sends a local module with the job (WebAssembly text is compiled
# by the CLI first); arguments after the module, and -e variables, go to it. The node runs it
# in wasmtime with WASI preview 1, without Docker.
set -euo pipefail
cd "$(dirname "$0")/.."

bacalhau wasm run testdata/wasm/noop.wat
# The module exits with the code it is given; the job fails and says so.
if bacalhau wasm run -e EXIT_CODE=3 testdata/wasm/exit_code.wat; then
  echo "expected the job to fail" >&2
  exit 1
fi
