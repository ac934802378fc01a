#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what is missing, builds the
# strategies and test guests to components, then runs every test of the workspace.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash strategies/build.sh
cargo test --release --workspace --no-fail-fast
