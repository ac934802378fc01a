//! Two runtime processes share one Redis: one collects (replays the recorded trades and
//! publishes them on the market data bus), the other trades on its own paper venue driven
//! by what the first publishes.

use std::path::Path;
use std::process::{Command, Output};

use e2e::{root, runtime_binary, RedisServer};

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    path
}

fn instrument(feed: &str, extra: &str) -> String {
    format!(
        "[[venue.instrument]]\nsymbol = \"BTCUSDT\"\nbase = \"BTC\"\nquote = \"USDT\"\ntick_size = \"0.01\"\nlot_size = \"0.001\"\nmin_qty = \"0.001\"\nmin_notional = \"5\"\nfeed = {feed}\n{extra}\n"
    )
}

fn redis_cli(redis: &RedisServer, args: &[&str]) -> String {
    let out = Command::new("redis-cli").args(["-p", &redis.port.to_string()]).args(args).output().unwrap_or_else(|e| panic!("redis-cli: {e}"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn check(out: &Output, who: &str) -> String {
    assert!(out.status.success(), "{who} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn one_process_collects_another_trades_on_its_prints() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let common = format!("[store]\nbackend = \"none\"\n[bus]\nurl = \"{}\"\nmaxlen = 20000\n", redis.url());
    let recorded = root().join("config/market-data/BTCUSDT-trades-2020-02-22.csv");
    let collector = write(
        dir.path(),
        "collector.toml",
        &format!(
            "{common}[[venue]]\nname = \"binance-rec\"\nkind = \"paper\"\n{}",
            instrument(&format!("{{ kind = \"replay\", file = \"{}\" }}", recorded.display()), "publish = true")
        ),
    );
    let trader = write(
        dir.path(),
        "trader.toml",
        &format!(
            "{common}[[venue]]\nname = \"mirror\"\nkind = \"paper\"\nsettlement = \"perpetual\"\nbalances = {{ USDT = \"100000\" }}\n{}\n[[strategy]]\nname = \"hello\"\ncomponent = \"hello\"\nparams = {{ venue = \"mirror\", symbol = \"BTCUSDT\", qty = \"0.01\", offset_ticks = 200 }}\n",
            instrument(
                r#"{ kind = "bus", venue = "binance-rec", symbol = "BTCUSDT", idle_timeout_ms = 60000 }"#,
                r#"liquidity = { levels = 5, step = "0.5", qty = "2" }"#
            )
        ),
    );
    // The trader starts first and waits on the stream; the collector then publishes.
    let trading = Command::new(runtime_binary())
        .arg("--strategies")
        .arg(e2e::strategy("hello"))
        .arg("--config")
        .arg(&trader)
        .arg("--no-watch")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let collected = Command::new(runtime_binary()).arg("--config").arg(&collector).arg("--no-watch").output().unwrap_or_else(|e| panic!("{e}"));
    check(&collected, "the collector");
    let traded = trading.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    let summary = check(&traded, "the trader");

    assert!(summary.contains("market data: 9999 prints"), "the trader saw every published print:\n{summary}");
    let fills: u64 = summary.split("fills ").nth(1).and_then(|s| s.split(';').next()).and_then(|n| n.trim().parse().ok()).unwrap_or(0);
    assert!(fills > 0, "hello traded on the mirrored prints:\n{summary}");
    // 9,999 prints and the end marker, within the stream's bound; the latest print kept.
    assert_eq!(redis_cli(&redis, &["XLEN", "md:binance-rec:BTCUSDT:trades"]), "10000");
    assert_eq!(redis_cli(&redis, &["HGET", "md:binance-rec:BTCUSDT:last", "id"]), "42387942");
    // The end marker comes after the last print, not before the last batch's prints.
    let last = redis_cli(&redis, &["XREVRANGE", "md:binance-rec:BTCUSDT:trades", "+", "-", "COUNT", "2"]);
    let lines: Vec<&str> = last.lines().collect();
    assert_eq!(lines.get(1..3), Some(&["end", "1"][..]), "the newest entry is the end marker: {last}");
    assert!(last.contains("42387942"), "and the one before it is the last print: {last}");
}
