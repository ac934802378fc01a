#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what is missing, builds the
# strategies and test guests to components, then runs every test of the workspace.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash strategies/build.sh
# A real redis-server for the state store tests (started by the tests on free ports).
if ! command -v redis-server >/dev/null; then
    echo "tests/run.sh: installing redis-server"
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
# Widely used third-party Binance and OKX clients, to test the local exchange's faithfulness.
if [ ! -x target/pyenv/bin/python ] || ! target/pyenv/bin/python -c "import binance, okx, ccxt" 2>/dev/null; then
    echo "tests/run.sh: installing python-binance, python-okx and ccxt in target/pyenv"
    if ! python3 -c "import ensurepip, venv" 2>/dev/null; then
        sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
        $sudo apt-get update -qq
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    rm -rf target/pyenv
    python3 -m venv target/pyenv
    target/pyenv/bin/pip install -q --disable-pip-version-check "python-binance==1.0.37" "python-okx==0.4.4" "ccxt==4.5.90"
fi
# Headless Chromium renders the backtest report in its test.
if ! command -v chromium >/dev/null; then
    echo "tests/run.sh: installing chromium"
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# playwright-core drives that Chromium through the dashboard's test (no browser download).
if ! grep -q '"version": "1.65.1"' target/js-tests/node_modules/playwright-core/package.json 2>/dev/null; then
    echo "tests/run.sh: installing playwright-core 1.65.1 (npm) in target/js-tests"
    if ! command -v npm >/dev/null; then
        sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
        $sudo apt-get update -qq
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    fi
    mkdir -p target/js-tests
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix target/js-tests --no-audit --no-fund --silent playwright-core@1.65.1
fi
# The end-to-end tests run the binary itself (crash recovery). Built together with the
# tests, so that the host is compiled once with one set of features (a build of the
# binaries alone would resolve features without the dev-dependencies', and compile it twice).
cargo build --release --workspace --bins --tests
status=0
cargo test --release --workspace --no-fail-fast || status=$?
bash tests/new_strategy.sh || status=$?
[ "$status" -eq 0 ] || exit "$status"
# Lints: warnings are errors, so none creep in.
if cargo clippy --version >/dev/null 2>&1; then
    cargo clippy --release --workspace --all-targets -- -D warnings
else
    echo "tests/run.sh: clippy is not installed; lints skipped"
fi
