# Gantry: `make dev` runs the API locally, `make test` runs every check. Both install
# and start what they need (Python tools in .venv, the MiniStack emulator on :4566).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# Local runs never reach AWS: static credentials, a region, no instance metadata,
# and every SDK call to the emulator.
export AWS_ACCESS_KEY_ID ?= test
export AWS_SECRET_ACCESS_KEY ?= test
export AWS_REGION ?= us-east-1
export AWS_DEFAULT_REGION ?= $(AWS_REGION)
export AWS_EC2_METADATA_DISABLED := true
export AWS_ENDPOINT_URL ?= http://127.0.0.1:4566
export GANTRY_TABLE ?= gantry
# A development key for sealing secrets at rest; deployments read theirs from Secrets Manager.
export GANTRY_DATA_KEY ?= ZGV2ZWxvcG1lbnQtb25seS1kYXRhLWtleS0zMmJ5dGU=
# The HS256 key of the tokens the devserver issues; deployments read theirs from Secrets Manager.
export GANTRY_JWT_SECRET ?= development-only-jwt-secret-change-me
# The key evidence records are signed with; deployments read theirs from Secrets Manager.
export GANTRY_EVIDENCE_KEY ?= development-only-evidence-key-change-me
# An Ed25519 key for development only (PKCS#8, base64 of the DER).
export GANTRY_JOB_SIGNING_KEY ?= MC4CAQAwBQYDK2VwBCIEIJBe0KJ+yNQm7wIlQdlrnOcJz9cXwXj/V+y7HnUaLQ8n
# The Ed25519 key the devserver signs evidence with, for development only; its public half
# is served at /.well-known/gantry/evidence-keys.json.
export GANTRY_EVIDENCE_SIGNING_KEY ?= MC4CAQAwBQYDK2VwBCIEIH4opUBylDMnBCQ9beoipy830zQazBEvf7RV08jnFL1k

EMULATOR := localstack/ministack.sh
VENV := .venv

.PHONY: help setup emulator-up emulator-down dev deploy-local deploy-local-down test lint schema build-lambda build-agent lambda-report

help:
	@echo "make dev     run the devserver on http://127.0.0.1:8080/graphql against the local emulator"
	@echo "make deploy-local       deploy infra/template.yaml onto the local emulator, every function a native Lambda"
	@echo "make deploy-local-down  remove that stack"
	@echo "make test    run every check: template lint, unit and end-to-end tests, and the deployed stack's suite"
	@echo "make schema  regenerate schema.graphql from the code"
	@echo "make build-lambda   arm64 Lambda packages for AWS; make lambda-report: their sizes and init times"
	@echo "make build-agent    the pull agent as static binaries for x86_64 and aarch64"

setup:
	@scripts/install-system-deps.sh
	@$(EMULATOR) install

emulator-up: setup
	@$(EMULATOR) start

emulator-down:
	@$(EMULATOR) stop

dev: emulator-up
	cargo build --quiet -p gantry-devserver
	@echo "Gantry devserver: http://127.0.0.1:8080/graphql and the dashboard at http://localhost:8080/ui (open the links it prints; Ctrl-C stops it)"
	GANTRY_EVENTS_QUEUE_URL="$${GANTRY_EVENTS_QUEUE_URL:-$$($(VENV)/bin/aws --endpoint-url $(AWS_ENDPOINT_URL) sqs get-queue-url --queue-name gantry-events --query QueueUrl --output text)}" \
	GANTRY_DEPLOY_QUEUE_URL="$${GANTRY_DEPLOY_QUEUE_URL:-$$($(VENV)/bin/aws --endpoint-url $(AWS_ENDPOINT_URL) sqs get-queue-url --queue-name gantry-deploy-jobs --query QueueUrl --output text)}" \
	GANTRY_NOTIFY_QUEUE_URL="$${GANTRY_NOTIFY_QUEUE_URL:-$$($(VENV)/bin/aws --endpoint-url $(AWS_ENDPOINT_URL) sqs get-queue-url --queue-name gantry-notifications --query QueueUrl --output text)}" \
	  ./target/debug/devserver

# The SAM stack on the emulator: functions as native provided.al2023 bootstraps behind Function
# URLs and SQS event source mappings. Prints API_URL, WEBHOOKS_URL and TOKEN.
deploy-local: emulator-up
	@scripts/deploy-local.sh up

deploy-local-down:
	@scripts/deploy-local.sh down

# rustfmt, clippy (warnings are errors), file and function sizes, and cfn-lint.
lint: setup
	@scripts/lint.sh
	$(VENV)/bin/cfn-lint infra/template.yaml

# Starts the emulator unless one is already up, and a private dockerd; deploys the stack the
# `stack` suite drives (with short queue timeouts, so retries and dead-lettering take seconds);
# and removes or stops what it started afterwards.
TEST_STACK := gantry-test
test: setup
	@python3 scripts/check-self-contained.py
	@scripts/lint.sh
	@started=0; \
	if ! $(EMULATOR) status >/dev/null 2>&1; then $(EMULATOR) start; started=1; else $(EMULATOR) start; fi; \
	export GANTRY_TEST_DOCKER_HOST="$$(scripts/dockerd.sh start)"; \
	export GANTRY_STACK=$(TEST_STACK) GANTRY_STACK_ENV="$(CURDIR)/.run/stack/$(TEST_STACK).env"; \
	trap 'GANTRY_STACK=$(TEST_STACK) scripts/deploy-local.sh down; scripts/dockerd.sh stop; if [ $$started = 1 ]; then $(EMULATOR) stop; fi' EXIT; \
	$(VENV)/bin/cfn-lint infra/template.yaml; \
	echo "cfn-lint: infra/template.yaml is clean"; \
	GANTRY_BUILD_ALL_TARGETS=1 GANTRY_STACK_PARAMETERS="IngestTimeout=10 EventsVisibilityTimeout=10 SlackSigningSecret=stack-test-slack-signing-secret-0123 OtlpEndpoint=http://127.0.0.1:14318" scripts/deploy-local.sh up >/dev/null; \
	cargo test --workspace --locked --no-fail-fast

schema:
	cargo run --quiet -p gantry-graphql --bin print-schema > schema.graphql

# The packages for AWS: target/lambda/<function>/bootstrap.zip, arm64 (cargo-lambda and zig,
# installed into .venv by the script).
build-lambda:
	@scripts/build-lambda.sh

# The pull agent as static binaries for x86_64 and aarch64: target/agent/<arch>/gantry-agent.
build-agent:
	@scripts/build-agent.sh

# Each package's zipped size and each bootstrap's init time (built again for this machine).
lambda-report: build-lambda
	@scripts/build-lambda.sh --x86-64
	@python3 scripts/lambda-report.py --zips target/lambda --bootstraps target/lambda-x86_64
