#!/usr/bin/env bash
# Builds the four functions' packages for AWS Lambda (arm64, provided.al2023, glibc 2.34)
# with cargo-lambda and zig, as target/lambda/<function>/bootstrap.zip, in the `lambda`
# profile. Installs what it needs: the pinned tools into .venv and Rust's aarch64 target.
#   scripts/build-lambda.sh [--x86-64]   (--x86-64: for this machine, as the init-time report runs them)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/build-tools.sh
. "$root/scripts/build-tools.sh"

arch=(--arm64)
target=aarch64-unknown-linux-gnu
out="$root/target/lambda"
if [ "${1:-}" = --x86-64 ]; then
  arch=(--x86-64)
  target=x86_64-unknown-linux-gnu
  out="$root/target/lambda-x86_64"
fi
rustup target list --installed | grep -qx "$target" || rustup target add "$target"

cd "$root"
PATH="$venv/bin:$PATH" cargo lambda build --profile lambda "${arch[@]}" --output-format zip \
  --lambda-dir "$out" -p gantry-api -p gantry-webhooks -p gantry-ingest -p gantry-deployer -p gantry-notifier
for name in api webhooks ingest deployer notifier; do
  ls -l "$out/$name/bootstrap.zip" | awk -v n="$name" '{ printf "gantry: %-9s %s bytes\n", n, $5 }' >&2
done
