#!/usr/bin/env bash
# Creates Gantry's DynamoDB table from infra/table.json, the same definition the SAM
# template declares. Idempotent. LocalStack runs this from /etc/localstack/init/ready.d
# (docker-compose mounts infra/ at /etc/infra); localstack/ministack.sh runs it after
# MiniStack's health check passes.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
table_json="${GANTRY_TABLE_JSON:-$here/../../../infra/table.json}"
table="${GANTRY_TABLE:-gantry}"

if command -v awslocal >/dev/null 2>&1; then
  aws=(awslocal)
else
  aws=(aws --endpoint-url "${AWS_ENDPOINT_URL:-http://127.0.0.1:4566}" --region "${AWS_REGION:-us-east-1}")
fi

if "${aws[@]}" dynamodb describe-table --table-name "$table" >/dev/null 2>&1; then
  echo "gantry: table $table exists"
else
  "${aws[@]}" dynamodb create-table --table-name "$table" --cli-input-json "file://$table_json" >/dev/null
  echo "gantry: table $table created"
fi
