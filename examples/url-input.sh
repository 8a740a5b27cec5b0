#!/usr/bin/env bash
# A URL input (urlDownload): the node downloads the file into the job's input folder before the
# job starts. Here the URL is a small web server on this machine's loopback.
set -euo pipefail
dir=$(mktemp -d)
trap 'kill $server 2>/dev/null; rm -rf "$dir"' EXIT
printf 'city,population\nLisbon,545000\nPorto,232000\n' > "$dir/cities.csv"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$dir" "$port" >/dev/null 2>&1 &
server=$!
for _ in $(seq 1 50); do
  python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/')" 2>/dev/null && break
  sleep 0.1
done

bacalhau docker run -i "http://127.0.0.1:$port/cities.csv" busybox:1.37.0 -- \
  grep Porto /inputs/cities.csv
