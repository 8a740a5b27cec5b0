#!/usr/bin/env bash
# Parallel work: Count 3 with an S3 input partitioned by object runs three executions (on three
# nodes), and each object goes to exactly one of them. Needs S3_ENDPOINT, S3_BUCKET and at
# least three compute nodes (`bacalhau devstack --compute-nodes 3`).
set -euo pipefail
: "${S3_ENDPOINT:?set S3_ENDPOINT to an S3-compatible endpoint}" "${S3_BUCKET:?set S3_BUCKET}"
opts="opt=endpoint=$S3_ENDPOINT,opt=region=${AWS_REGION:-us-east-1}"

# Nine objects to share out.
bacalhau docker run -o data:/out -p "s3://$S3_BUCKET/partitions/,$opts,opt=encoding=plain" \
  busybox:1.37.0 -- sh -c 'for i in 1 2 3 4 5 6 7 8 9; do echo $i > /out/object-$i; done' >/dev/null

id=$(bacalhau job run --id-only - <<SPEC
Name: s3-partitions
Type: batch
Count: 3
Tasks:
  - Name: main
    Engine:
      Type: docker
      Params:
        Image: busybox:1.37.0
        Parameters: [sh, -c, 'echo "partition \$BACALHAU_PARTITION_INDEX: \$(ls /inputs | paste -sd" " -)"']
    InputSources:
      - Target: /inputs
        Source:
          Type: s3
          Params:
            Bucket: $S3_BUCKET
            Key: partitions/data/
            Endpoint: $S3_ENDPOINT
            Partition: {Type: object}
SPEC
)
bacalhau job executions "$id"
# Each execution's output names the objects it was given.
for execution in $(bacalhau job executions "$id" --output json | python3 -c '
import json, sys
for e in json.load(sys.stdin): print(e["ID"])'); do
  bacalhau job logs -e "$execution" "$id"
done
