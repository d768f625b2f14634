#!/usr/bin/env bash
# Builds gantry-agent as static binaries (musl) for x86_64 and aarch64 with zig (through
# cargo-lambda's zig toolchain, installed into .venv as for the Lambda packages):
# target/agent/<arch>/gantry-agent.
#   scripts/build-agent.sh [x86_64|aarch64 ...]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/build-tools.sh
. "$root/scripts/build-tools.sh"

arches=("$@")
[ ${#arches[@]} -eq 0 ] && arches=(x86_64 aarch64)
cd "$root"
for arch in "${arches[@]}"; do
  target="$arch-unknown-linux-musl"
  rustup target list --installed | grep -qx "$target" || rustup target add "$target"
  PATH="$venv/bin:$PATH" cargo lambda build --release --target "$target" -p gantry-agent --bin gantry-agent \
    --lambda-dir "target/agent-build/$arch"
  mkdir -p "target/agent/$arch"
  cp "target/agent-build/$arch/gantry-agent/bootstrap" "target/agent/$arch/gantry-agent"
  ls -l "target/agent/$arch/gantry-agent" | awk -v a="$arch" '{ printf "gantry: gantry-agent %s: %s bytes\n", a, $5 }' >&2
done
