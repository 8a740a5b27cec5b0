#!/usr/bin/env bash
# Installs what the test suite needs besides Rust: the busybox test images (no registry is
# reachable, so they are built locally) and a Python venv with upstream's published client
# (bacalhau-apiclient) for the wire-compatibility test. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build-test-images.sh

# The API fuzz run (tests/python/fuzz_api.sh) probes the server with curl; the web UI tests
# drive Debian's headless chromium through chromedriver; the compatibility tests push to
# Debian's docker-registry.
missing=()
command -v curl >/dev/null 2>&1 || missing+=(curl)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
# IPFS tests run in a loopback-only network namespace: unshare (util-linux) and ip.
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
# A private registry on loopback for the registry-credentials test.
[ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
# A real scraper for the metrics test.
[ -x /usr/bin/prometheus ] || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} from Debian" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

requirements=tests/python/requirements.txt
stamp=.venv/.requirements-installed
if [ -x .venv/bin/pytest ] && [ -f "$stamp" ] && cmp -s "$requirements" "$stamp"; then
  exit 0
fi
if ! python3 -m venv --help >/dev/null 2>&1; then
  echo "python3 has no venv module; installing Debian's python3-venv" >&2
  apt-get update -qq && apt-get install -y -qq python3-venv
fi
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r "$requirements"
cp "$requirements" "$stamp"
