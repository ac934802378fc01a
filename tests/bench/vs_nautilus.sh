#!/usr/bin/env bash
# The side-by-side benchmark of issue #12: the runtime and NautilusTrader 1.231.0 on the
# same seeded 1,000,000 BTCUSDT trades, four workloads, alternating runs; prints the
# table (medians and spread) that BENCHMARKS.md publishes. Not part of the test command:
# it times things, and timings belong to benchmarks, not tests.
#
#   bash tests/bench/vs_nautilus.sh [runs=3] [trades=1000000]
#
# Installs nautilus_trader==1.231.0 from PyPI into target/nautilus (it needs Python 3.12:
# pyenv's, or python3.12 on the PATH), builds the strategies and the runtime if missing,
# and writes the trades file into target/bench/.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
runs=${1:-3}
count=${2:-1000000}

python312=$(ls ~/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null | tail -1 || true)
[ -n "$python312" ] || python312=$(command -v python3.12 || true)
[ -n "$python312" ] || { echo "vs_nautilus.sh: NautilusTrader 1.231 needs Python 3.12 (pyenv install 3.12, or python3.12 on the PATH)" >&2; exit 1; }
if ! target/nautilus/bin/python -c "import nautilus_trader, sys; sys.exit(nautilus_trader.__version__ != '1.231.0')" 2>/dev/null; then
    echo "vs_nautilus.sh: installing nautilus_trader 1.231.0 in target/nautilus"
    rm -rf target/nautilus
    "$python312" -m venv target/nautilus
    target/nautilus/bin/pip install -q --disable-pip-version-check "nautilus_trader==1.231.0"
fi
[ -f strategies/grid.wasm ] && [ -f strategies/hedger.wasm ] && [ -f target/guests/counter-v1.wasm ] || bash strategies/build.sh
# The same build as tests/run.sh's (binaries with the tests: one feature set), so neither
# recompiles the host after the other.
cargo build --release --workspace --bins --tests
mkdir -p target/bench
trades="target/bench/trades-$count.csv"
[ -f "$trades" ] || python3 tests/bench/generate.py "$trades" "$count" 7
echo "vs_nautilus.sh: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
python3 tests/bench/vs_nautilus.py "$root" target/nautilus/bin/python "$trades" "$runs"
