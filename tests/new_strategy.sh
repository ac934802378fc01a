#!/usr/bin/env bash
# A newcomer's first strategy, as `runtime new` writes it, in Rust, Python and JavaScript:
# the Rust one's own tests pass, each builds on its own (Rust reusing the wasm32 standard
# library already built), and a paper run finds each by its name under strategies/ and
# trades with it. Run by tests/run.sh after the suite (it
# needs the target folder unlocked); expects the runtime binary and strategies built.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch" strategies/newcomer.wasm strategies/newcomer-py.wasm strategies/newcomer-js.wasm' EXIT

./target/release/runtime new newcomer --dir "$scratch"
(cd "$scratch/newcomer" && CARGO_TARGET_DIR="$root/target" cargo test --release 2>&1 | grep "^test result")
./target/release/runtime new newcomer-py --lang python --dir "$scratch"
./target/release/runtime new newcomer-js --lang js --dir "$scratch"
for project in newcomer newcomer-py newcomer-js; do
    bash strategies/build.sh "$scratch/$project" | tail -1
    sed "s/@COMPONENT@/$project/" > "$scratch/run.toml" <<'TOML'
[store]
backend = "none"
[[venue]]
name = "paper"
kind = "paper"
balances = { USDT = "1000000", BTC = "10" }
[[venue.instrument]]
symbol = "BTCUSDT"
base = "BTC"
quote = "USDT"
tick_size = "0.1"
lot_size = "0.001"
min_qty = "0.001"
min_notional = "5"
feed = { kind = "synthetic", seed = 7, start_price = "10000", start_ms = 1600000000000, interval_ms = 10, count = 5000 }
liquidity = { levels = 5, step = "0.5", qty = "1" }
[[strategy]]
name = "first"
component = "@COMPONENT@"
params = { venue = "paper", symbol = "BTCUSDT", qty = "0.01" }
TOML
    summary=$(./target/release/runtime --config "$scratch/run.toml" --no-watch 2>"$scratch/log")
    echo "$summary" | grep -q "first ($project @.*): running" || { echo "new_strategy.sh: $project did not run:"; echo "$summary"; cat "$scratch/log"; exit 1; }
    placed=$(echo "$summary" | sed -n 's/.*placed \([0-9]*\).*/\1/p' | head -1)
    [ "${placed:-0}" -gt 0 ] || { echo "new_strategy.sh: $project placed no order:"; echo "$summary"; exit 1; }
    echo "new_strategy.sh: runtime new -> build.sh -> a paper run: $project placed $placed orders"
done
