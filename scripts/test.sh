#!/usr/bin/env bash
# Runs every test: installs the test prerequisites, then the whole workspace's cargo tests
# (unit tests, integration tests that start the real binary, and the Python client check).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-test-env.sh
cargo test --workspace "$@"
