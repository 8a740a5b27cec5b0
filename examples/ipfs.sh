#!/usr/bin/env bash
# Data known by content: a job publishes its results with -p ipfs, the node adds them to its
# block store (the same CIDs as Kubo's `ipfs add`), and a later job reads them by CID, here a
# path under it. Today the job that reads a CID runs on a node that holds it.
set -euo pipefail

id=$(bacalhau docker run --id-only -o data:/data -p ipfs busybox:1.37.0 -- \
  sh -c 'seq 1 100 > /data/numbers.txt')
cid=$(bacalhau job executions "$id" --output json | python3 -c '
import json, sys
print(json.load(sys.stdin)[0]["PublishedResult"]["Params"]["CID"])')
echo "published as $cid"

bacalhau docker run -i "ipfs://$cid/data/numbers.txt:/in/numbers.txt" busybox:1.37.0 -- \
  wc -l /in/numbers.txt
