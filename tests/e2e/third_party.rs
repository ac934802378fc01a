//! Third-party clients against the local exchange: python-binance, python-okx and ccxt
//! (PyPI) trade on it and see the venues' error codes. `tests/run.sh` installs them in
//! `target/pyenv`.

use e2e::{root, Exchange, KEY, SECRET};

#[test]
fn python_binance_trades_on_the_local_exchange() {
    let python = root().join("target/pyenv/bin/python");
    assert!(python.is_file(), "{} is missing: run tests/run.sh, which installs python-binance there", python.display());
    let ex = Exchange::start();
    let output = std::process::Command::new(&python)
        .arg(root().join("tests/python/binance_client.py"))
        .arg(ex.addr("binance-spot").to_string())
        .args([KEY, SECRET])
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "python-binance failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("as documented"), "{stdout}");
    let account = ex.account("binance-spot");
    assert_eq!(account["calls"]["DELETE /api/v3/order"], 1, "the cancel reached the exchange: {account}");
}

#[test]
fn python_okx_trades_on_the_local_exchange() {
    let python = root().join("target/pyenv/bin/python");
    assert!(python.is_file(), "{} is missing: run tests/run.sh, which installs python-okx there", python.display());
    let ex = Exchange::start();
    let output = std::process::Command::new(&python)
        .arg(root().join("tests/python/okx_client.py"))
        .arg(ex.addr("okx").to_string())
        .args([KEY, SECRET, e2e::PASSPHRASE])
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "python-okx failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("as documented"), "{stdout}");
    let account = ex.account("okx");
    assert_eq!(account["calls"]["POST /api/v5/trade/cancel-order"], 1, "the cancel reached the exchange: {account}");
}

#[test]
fn ccxt_trades_on_the_local_exchange() {
    let python = root().join("target/pyenv/bin/python");
    assert!(python.is_file(), "{} is missing: run tests/run.sh, which installs ccxt there", python.display());
    let ex = Exchange::start();
    let output = std::process::Command::new(&python)
        .arg(root().join("tests/python/ccxt_client.py"))
        .args([ex.addr("binance-spot").to_string(), ex.addr("binance-usdm").to_string(), ex.addr("okx").to_string()])
        .args([KEY, SECRET, e2e::PASSPHRASE])
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "ccxt failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("ccxt: binance, binanceusdm and okx as documented"), "{stdout}");
    for (venue, cancel) in [("binance-spot", "DELETE /api/v3/order"), ("binance-usdm", "DELETE /fapi/v1/order"), ("okx", "POST /api/v5/trade/cancel-order")] {
        let account = ex.account(venue);
        assert!(account["calls"][cancel].as_u64().unwrap_or(0) >= 1, "{venue}: the cancel reached the exchange: {account}");
    }
}
