#!/usr/bin/env bash
# Deploys infra/template.yaml onto the local emulator as it would run on AWS: the five
# functions as native provided.al2023 bootstraps, the table, the queues with their event
# source mappings and dead-letter queues, Function URLs and the secrets the template reads.
#   scripts/deploy-local.sh up     build, upload, deploy; print API_URL, WEBHOOKS_URL, TOKEN
#   scripts/deploy-local.sh down   delete the stack and its table
# Settings (environment): GANTRY_STACK (gantry-local), GANTRY_LAMBDA_PROFILE (dev or
# release; dev), GANTRY_STACK_PARAMETERS (extra Key=Value template parameters).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run="$root/.run/stack"
endpoint="${AWS_ENDPOINT_URL:-http://127.0.0.1:4566}"
stack="${GANTRY_STACK:-gantry-local}"
profile="${GANTRY_LAMBDA_PROFILE:-dev}"
bin_dir="$root/target/debug"
[ "$profile" = release ] && bin_dir="$root/target/release"
bucket="${stack}-artifacts"
functions=(api webhooks ingest deployer notifier)
# The secrets the template resolves at deploy time, by their default names.
secrets=(gantry/data-key gantry/jwt-secret gantry/evidence-key gantry/job-signing-key gantry/evidence-signing-key)

export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_REGION="${AWS_REGION:-us-east-1}" AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export AWS_EC2_METADATA_DISABLED=true
aws=("$root/.venv/bin/aws" --endpoint-url "$endpoint" --region "$AWS_REGION")

say() { echo "gantry: $*" >&2; }

# Builds the bootstraps and zips each as `bootstrap`; prints `name key` per function, where
# the key names the zip by its content so CloudFormation sees every change.
package() {
  say "building the function bootstraps ($profile profile, $(uname -m))"
  # One invocation, so every binary shares one feature resolution (and one copy of each crate).
  # `make test` asks for every target: the tests' dependencies change that resolution, and
  # building them here lets `cargo test` reuse each crate instead of compiling a second copy.
  local targets=(-p gantry-api -p gantry-webhooks -p gantry-ingest -p gantry-deployer -p gantry-notifier -p gantry-devserver --bins)
  [ "${GANTRY_BUILD_ALL_TARGETS:-}" = 1 ] && targets=(--workspace --all-targets)
  (cd "$root" && cargo build --quiet --locked --profile "$profile" "${targets[@]}")
  mkdir -p "$run"
  for name in "${functions[@]}"; do
    local work="$run/$name"
    rm -rf "$work" && mkdir -p "$work"
    strip -o "$work/bootstrap" "$bin_dir/$name"
    python3 - "$work/bootstrap" "$run/$name.zip" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[2], "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
    info = zipfile.ZipInfo("bootstrap", date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = 0o755 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    z.writestr(info, open(sys.argv[1], "rb").read())
PY
    rm -rf "$work"
    echo "$name $name-$(sha256sum "$run/$name.zip" | cut -c1-16).zip"
  done
}

upload() {
  "${aws[@]}" s3 mb "s3://$bucket" >/dev/null 2>&1 || true
  while read -r name key; do
    "${aws[@]}" s3 cp --quiet "$run/$name.zip" "s3://$bucket/$key"
    echo "$name $key"
  done
}

# Creates each secret once with a fresh random value; later deploys keep it.
ensure_secrets() {
  local name value
  for name in "${secrets[@]}"; do
    if "${aws[@]}" secretsmanager describe-secret --secret-id "$name" >/dev/null 2>&1; then
      continue
    fi
    if [ "$name" = gantry/data-key ]; then
      value="$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
    elif [ "$name" = gantry/job-signing-key ] || [ "$name" = gantry/evidence-signing-key ]; then
      # An Ed25519 PKCS#8 key (RFC 8410): the fixed prefix, then a random 32-byte seed.
      value="$(python3 -c 'import base64, os; print(base64.b64encode(bytes.fromhex("302e020100300506032b657004220420") + os.urandom(32)).decode())')"
    else
      value="$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
    fi
    # `=`: a random value may start with `-`, which the CLI would take for an option.
    "${aws[@]}" secretsmanager create-secret --name "$name" --secret-string="$value" >/dev/null
    say "secret $name created"
  done
}

# The template with each function's CodeUri pointing at its uploaded zip.
render() {
  python3 - "$root/infra/template.yaml" "$bucket" "$@" <<'PY'
import re, sys
template, bucket, pairs = sys.argv[1], sys.argv[2], sys.argv[3:]
keys = dict(zip(pairs[0::2], pairs[1::2]))
binary, done, out = None, set(), []
for line in open(template):
    m = re.match(r"\s+Binary: (\S+)\s*$", line)
    if m:
        binary = m.group(1)
    m = re.match(r"(\s+)CodeUri: \.\.\s*$", line)
    if m:
        line = f"{m.group(1)}CodeUri: s3://{bucket}/{keys[binary]}\n"
        done.add(binary)
    out.append(line)
missing = set(keys) - done
if missing:
    sys.exit(f"the template has no CodeUri for {sorted(missing)}")
sys.stdout.write("".join(out))
PY
}

output() {
  "${aws[@]}" cloudformation describe-stacks --stack-name "$stack" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}

# https://<id>.lambda-url.<region>.on.aws/ answers locally at <endpoint>/_aws/lambda-url/<id>/.
local_url() {
  local id="${1#https://}"
  echo "$endpoint/_aws/lambda-url/${id%%.*}/"
}

up() {
  local started=$SECONDS pairs=()
  ensure_secrets
  while read -r name key; do pairs+=("$name" "$key"); done < <(package | upload)
  render "${pairs[@]}" >"$run/template.yaml"
  say "deploying stack $stack"
  # shellcheck disable=SC2086
  "${aws[@]}" cloudformation deploy --stack-name "$stack" --template-file "$run/template.yaml" \
    --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND --no-fail-on-empty-changeset \
    --parameter-overrides LogLevel=info ${GANTRY_STACK_PARAMETERS:-} >/dev/null
  for name in ApiFunctionName WebhooksFunctionName IngestFunctionName DeployerFunctionName NotifierFunctionName; do
    local size
    size="$("${aws[@]}" lambda get-function --function-name "$(output "$name")" --query Configuration.CodeSize --output text)"
    # The emulator reports success even when a function's code is missing.
    [ "${size:-0}" -gt 0 ] || { say "$name has no code"; exit 1; }
  done
  local api webhooks token
  api="$(local_url "$(output ApiUrl)")"
  webhooks="$(local_url "$(output WebhooksUrl)")"
  token="$(GANTRY_JWT_SECRET="$("${aws[@]}" secretsmanager get-secret-value --secret-id gantry/jwt-secret \
    --query SecretString --output text)" "$bin_dir/mint-token" local-admin 12)"
  {
    echo "API_URL=$api"
    echo "WEBHOOKS_URL=$webhooks"
    echo "TOKEN=$token"
    for name in EventsQueueUrl EventsDeadLetterQueueUrl DeployJobsQueueUrl NotificationsQueueUrl TableName AlarmTopic \
      ApiFunctionName WebhooksFunctionName IngestFunctionName DeployerFunctionName NotifierFunctionName; do
      echo "$name=$(output "$name")"
    done
    echo "FunctionBucket=$bucket"
    for ((i = 0; i < ${#pairs[@]}; i += 2)); do echo "Code_${pairs[i]}=${pairs[i + 1]}"; done
  } >"$run/$stack.env"
  say "stack $stack deployed in $((SECONDS - started)) s; its outputs are in .run/stack/$stack.env"
  echo "API_URL=$api"
  echo "WEBHOOKS_URL=$webhooks"
  echo "TOKEN=$token"
}

down() {
  if ! "${aws[@]}" cloudformation describe-stacks --stack-name "$stack" >/dev/null 2>&1; then
    say "no stack $stack"
    return 0
  fi
  local table
  table="$(output TableName)"
  "${aws[@]}" cloudformation delete-stack --stack-name "$stack"
  "${aws[@]}" cloudformation wait stack-delete-complete --stack-name "$stack" 2>/dev/null || true
  # The table outlives the stack (DeletionPolicy: Retain); locally it goes too.
  [ -n "$table" ] && "${aws[@]}" dynamodb delete-table --table-name "$table" >/dev/null 2>&1 || true
  rm -f "$run/$stack.env"
  say "stack $stack removed"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
