#!/usr/bin/env bash
# The demo: builds what is missing, then runs the runtime on the paper venue with the
# shipped strategies and config/runtime.toml, replaying recorded BTCUSDT trades, and
# writes its report (config/reports/backtest.html and .json; the last line says where).
# The runtime finds the components the config names in strategies/.
# Extra arguments go to the runtime (try --speed 60, or --mode recommend).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash strategies/build.sh
cargo build --release -p runtime --bin runtime
exec ./target/release/runtime --config config/runtime.toml --report config/reports "$@"
