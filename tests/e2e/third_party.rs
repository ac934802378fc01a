//! A third-party Binance client against the local exchange: python-binance (PyPI) places,
//! queries, lists and cancels an order, and sees Binance's error codes. `tests/run.sh`
//! installs it in `target/pyenv`.

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
