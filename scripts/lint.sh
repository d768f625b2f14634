#!/usr/bin/env bash
# The house rules every change is held to, first in `make test`: rustfmt, clippy with every
# warning an error (no function over 80 lines: clippy.toml), no source file over 600
# lines, and no import circle between a crate's top-level modules.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v rustup >/dev/null 2>&1; then
    rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked --quiet -- -D warnings
python3 scripts/check-sizes.py
python3 scripts/import-graph.py --strict
