"""Runs the runtime and NautilusTrader on the same seeded trades, workload by workload,
alternately, and prints ticks per second for each (median and spread) and their ratio.
Called by tests/bench/vs_nautilus.sh, which installs and builds what it needs.

    python3 vs_nautilus.py <root> <nautilus python> <trades.csv> <runs>

The runtime's time is its summary's "replayed in" (file streaming included); NautilusTrader's
is `engine.run()` alone (loading and wrangling the file excluded). Ticks per second are the
file's trades over that time, for both, whatever the number of venues replaying it.
"""

import os
import re
import statistics
import subprocess
import sys
import tempfile

VENUE = """
[[venue]]
name = "{name}"
kind = "paper"
settlement = "{settlement}"
maker_fee = "0.0002"
taker_fee = "0.0004"
balances = {{ USDT = "100000000", BTC = "1000" }}
[[venue.instrument]]
symbol = "BTCUSDT"
base = "BTC"
quote = "USDT"
tick_size = "0.01"
lot_size = "0.001"
min_qty = "0.001"
min_notional = "5"
feed = {{ kind = "replay", file = "{feed}" }}
{liquidity}
"""

GRID = """
[[strategy]]
name = "grid"
component = "grid"
[strategy.params]
venue = "spot"
symbol = "BTCUSDT"
order_qty = "0.01"
grid_spacing_pct = "{spacing}"
num_levels = 10
min_price_distance = "0.01"
max_position_size = "100"
capital = "100000000"
max_drawdown = "0.5"
stop_loss_pct = "50"
var_limit = "100000000"
var_window = 200
max_active_orders = 20
rebalance_interval = 600000
volatility_reference_pct = "0.01"
volatility_window = 50
"""

HEDGER = """
[[strategy]]
name = "hedger"
component = "hedger"
[strategy.params]
"Maker Exchange" = "spot"
"Maker Symbol" = "BTCUSDT"
"Hedge Exchange" = "perp"
"Hedge Symbol" = "BTCUSDT"
"Min Qty" = "0.001"
"Min Amt" = "10"
"Slippage" = "0.0005"
"""

HEAD = """mode = "paper"
[store]
backend = "none"
[replay]
speed = 0
[risk]
max_open_orders = 1000
max_order_notional = "100000000"
max_orders_per_s = 100000
price_band_pct = "50"
"""


def runtime_config(workload: str, feed: str) -> str:
    spot = lambda liquidity="": VENUE.format(name="spot", settlement="spot", feed=feed, liquidity=liquidity)
    if workload == "nothing":
        # `quiet`: the counter tells the runtime that no trade makes it act (contract
        # 0.1.4), as NautilusTrader's strategy, which only counts, would be entitled to.
        # It still gets every trade, batch by batch; the grid tells its band by default.
        return HEAD + VENUE.format(name="spot", settlement="perpetual", feed=feed, liquidity="") + '\n[[strategy]]\nname = "nothing"\ncomponent = "counter"\nparams = { venue = "spot", symbol = "BTCUSDT", quiet = true }\n'
    if workload == "grid":
        return HEAD + spot() + GRID.format(spacing="0.1")
    if workload == "grid-fine":
        return HEAD + spot() + GRID.format(spacing="0.01")
    perp = VENUE.format(name="perp", settlement="perpetual", feed=feed, liquidity='liquidity = { levels = 5, step = "0.5", qty = "2" }')
    return HEAD + spot() + perp + GRID.format(spacing="0.01") + HEDGER


def run_runtime(root: str, workload: str, feed: str, folder: str) -> tuple:
    path = os.path.join(folder, f"{workload}.toml")
    with open(path, "w") as f:
        f.write(runtime_config(workload, feed))
    strategies = [os.path.join(root, "target/guests/counter-v1.wasm")] if workload == "nothing" else [os.path.join(root, "strategies/grid.wasm"), os.path.join(root, "strategies/hedger.wasm")]
    if workload == "nothing":
        # The config names the component "counter".
        link = os.path.join(folder, "counter.wasm")
        if not os.path.exists(link):
            os.symlink(strategies[0], link)
        strategies = [link]
    out = subprocess.run([os.path.join(root, "target/release/runtime"), "--config", path, "--no-watch", "--strategies", *strategies], capture_output=True, text=True, check=True).stdout
    seconds = float(re.search(r"replayed in ([0-9.]+) s", out).group(1))
    orders = sum(int(n) for n in re.findall(r"orders placed (\d+)", out))
    return seconds, orders


def run_nautilus(python: str, root: str, workload: str, feed: str) -> tuple:
    out = subprocess.run([python, os.path.join(root, "tests/bench/nautilus_side.py"), feed, workload], capture_output=True, text=True, check=True).stdout
    m = re.search(r"ticks=(\d+) seconds=([0-9.]+) orders=(\d+)", out)
    return float(m.group(2)), int(m.group(3))


def main() -> None:
    root, python, feed, runs = sys.argv[1], sys.argv[2], os.path.abspath(sys.argv[3]), int(sys.argv[4])
    with open(feed) as f:
        ticks = sum(1 for _ in f) - 1
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for workload in ["nothing", "grid", "grid-fine", "hedger"]:
            ours, theirs = [], []
            for run in range(runs):
                # Alternately, so that a busy moment of the machine hits both sides.
                theirs.append(run_nautilus(python, root, workload, feed))
                ours.append(run_runtime(root, workload, feed, folder))
                print(f"{workload} run {run + 1}: NautilusTrader {theirs[-1][0]:.2f} s, runtime {ours[-1][0]:.2f} s", file=sys.stderr, flush=True)
            rows.append((workload, [ticks / s for s, _ in theirs], [ticks / s for s, _ in ours], theirs[-1][1], ours[-1][1]))
    k = lambda x: f"{x / 1000:.0f}k"
    print(f"{ticks:,} trades, medians of {runs} alternating runs (min to max)\n")
    print("| workload | NautilusTrader ticks/s | runtime ticks/s | ratio | orders (NT / runtime) |")
    print("| --- | --- | --- | --- | --- |")
    for workload, theirs, ours, nt_orders, rt_orders in rows:
        m_t, m_o = statistics.median(theirs), statistics.median(ours)
        print(f"| {workload} | {k(m_t)} ({k(min(theirs))} to {k(max(theirs))}) | {k(m_o)} ({k(min(ours))} to {k(max(ours))}) | {m_o / m_t:.1f}x | {nt_orders} / {rt_orders} |")


if __name__ == "__main__":
    main()
