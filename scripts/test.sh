#!/usr/bin/env bash
# The project's test command: installs what it needs, builds every crate
# (the end-to-end tests load the built cdylibs), then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --workspace --all-targets
cargo test --workspace "$@"
