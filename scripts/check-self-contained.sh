#!/usr/bin/env bash
# Fails when a tracked file refers to a path outside the repository: a clone must build, test
# and read with nothing beside it. Run by .ci/run before anything else.
set -euo pipefail
cd "$(dirname "$0")/.."

pattern='\.\./shared|shared/(DESIGN|STYLE)\.md|shared/(reference|testdata)|\.\./\.\./\.\./|/work/'
if git grep -nIE "$pattern" -- . ':!scripts/check-self-contained.sh'; then
  echo "error: the tracked files above refer to paths outside the repository" >&2
  exit 1
fi
echo "self-contained: no tracked file refers to a path outside the repository"
