#!/usr/bin/env bash
# Creates Gantry's SQS queues from infra/queues.json (dead-letter queues first), the same
# definitions the SAM template declares. Idempotent; serves LocalStack and MiniStack alike.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
queues_json="${GANTRY_QUEUES_JSON:-$here/../../../infra/queues.json}"
endpoint="${AWS_ENDPOINT_URL:-http://127.0.0.1:4566}"

if command -v awslocal >/dev/null 2>&1; then
  aws=(awslocal)
else
  # The AWS CLI v1 ignores AWS_ENDPOINT_URL for SQS, so pass it.
  aws=(aws --endpoint-url "$endpoint" --region "${AWS_REGION:-us-east-1}")
fi

python3 - "$queues_json" <<'PY' | while IFS=$'\t' read -r name attributes dead_letter max_receive; do
import json, sys
for q in json.load(open(sys.argv[1]))["Queues"]:
    dl = q.get("DeadLetter") or {}
    print("\t".join([q["Name"], json.dumps(q["Attributes"]), dl.get("Queue", "-"), str(dl.get("MaxReceiveCount", "-"))]))
PY
  if [ "$dead_letter" != "-" ]; then
    dlq_url="$("${aws[@]}" sqs get-queue-url --queue-name "$dead_letter" --query QueueUrl --output text)"
    dlq_arn="$("${aws[@]}" sqs get-queue-attributes --queue-url "$dlq_url" --attribute-names QueueArn --query Attributes.QueueArn --output text)"
    attributes="$(python3 -c 'import json,sys; a=json.loads(sys.argv[1]); a["RedrivePolicy"]=json.dumps({"deadLetterTargetArn": sys.argv[2], "maxReceiveCount": int(sys.argv[3])}); print(json.dumps(a))' "$attributes" "$dlq_arn" "$max_receive")"
  fi
  "${aws[@]}" sqs create-queue --queue-name "$name" --attributes "$attributes" >/dev/null
  echo "gantry: queue $name ready"
done
