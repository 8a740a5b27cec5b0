#!/usr/bin/env bash
# S3 in and out, against any S3-compatible endpoint: a job publishes plain files to a bucket
# (-p s3://... with encoding=plain), a second job reads them back as an input, and `job get`
# fetches an archive published to S3. Needs S3_ENDPOINT (e.g. http://127.0.0.1:9000) and a
# writable S3_BUCKET; the compute nodes read their AWS_* credentials from their environment.
set -euo pipefail
: "${S3_ENDPOINT:?set S3_ENDPOINT to an S3-compatible endpoint}" "${S3_BUCKET:?set S3_BUCKET}"
opts="opt=endpoint=$S3_ENDPOINT,opt=region=${AWS_REGION:-us-east-1}"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Six objects, written as plain files under s3-example/data/.
bacalhau docker run -o data:/out -p "s3://$S3_BUCKET/s3-example/,$opts,opt=encoding=plain" \
  busybox:1.37.0 -- sh -c 'for i in 1 2 3 4 5 6; do echo "record $i" > /out/part-$i.txt; done'

# Read them back as an S3 input, and publish a summary as an archive.
id=$(bacalhau docker run --id-only -i "s3://$S3_BUCKET/s3-example/data/:/inputs,$opts" \
  -o summary:/summary -p "s3://$S3_BUCKET/s3-example/results/{jobID},$opts" \
  busybox:1.37.0 -- sh -c 'cat /inputs/* | wc -l > /summary/count.txt')
bacalhau job get "$id" --output-dir "$out/results"
echo "records: $(cat "$out/results/summary/count.txt")"
