//! `--mode backtest`: the report's figures against the run's own summary, the same files
//! byte for byte from the same input, and the HTML rendered by headless Chromium (Debian's
//! `chromium`, installed by tests/run.sh) with its charts drawn; a screenshot is kept in
//! `target/artifacts/backtest-report.png`.

use std::path::{Path, PathBuf};
use std::process::Command;

use e2e::{recorded_venue, root, runtime_binary, strategy};
use serde_json::Value;

/// The demo's recorded BTCUSDT file on two paper venues: hello quotes on one, grid on the
/// other.
fn config(dir: &Path) -> PathBuf {
    let text = format!(
        "mode = \"paper\"\n{}{}\n[[strategy]]\nname = \"hello\"\ncomponent = \"hello\"\nparams = {{ venue = \"c\", symbol = \"BTCUSDT\", qty = \"0.01\", offset_ticks = 200 }}\n\n[[strategy]]\nname = \"grid\"\ncomponent = \"grid\"\n{}",
        recorded_venue("c", "perpetual", "USDT = \"1000000\""),
        recorded_venue("a", "spot", "USDT = \"1000000\", BTC = \"20\""),
        grid_params()
    );
    let path = dir.join("backtest.toml");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    path
}

/// The demo config's grid entry, pointed at venue `a`.
fn grid_params() -> String {
    let demo = std::fs::read_to_string(root().join("config/runtime.toml")).unwrap_or_else(|e| panic!("{e}"));
    let start = demo.find("component = \"grid\"").unwrap_or_else(|| panic!("the demo config has a grid"));
    let rest = &demo[start + "component = \"grid\"".len()..];
    let end = rest.find("[[strategy]]").unwrap_or(rest.len());
    rest[..end].replace("paper-a", "a")
}

/// Runs a backtest writing into `out`; returns the summary (stdout).
fn backtest(config: &Path, out: &Path) -> String {
    let output = Command::new(runtime_binary())
        .arg("--config")
        .arg(config)
        .args(["--mode", "backtest", "--sample-ms", "60000", "--report"])
        .arg(out)
        .args(["--strategies"])
        .args([strategy("hello"), strategy("grid")])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

fn d(v: &Value) -> runtime::model::Decimal {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not a decimal: {v}"))
}

/// `name: N` after `label` in a summary line.
fn after<'a>(line: &'a str, label: &str) -> &'a str {
    line.split(label).nth(1).and_then(|rest| rest.split([',', ' ', ';']).find(|w| !w.is_empty())).unwrap_or_else(|| panic!("no {label} in {line}"))
}

#[test]
fn a_backtest_report_matches_the_summary_and_is_the_same_every_time() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = config(dir.path());
    let summary = backtest(&config, &dir.path().join("one"));
    assert!(summary.contains(&format!("report: {}", dir.path().join("one/backtest.html").display())), "the run says where the report is: {summary}");
    let json = std::fs::read_to_string(dir.path().join("one/backtest.json")).unwrap_or_else(|e| panic!("{e}"));
    let report: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
    let prints = summary.lines().find_map(|l| l.strip_prefix("market data: ")).and_then(|l| l.split(' ').next()).map(str::to_string);
    assert_eq!(report["prints"].as_u64().map(|n| n.to_string()), prints, "{summary}");
    assert!(report["prints"].as_u64().is_some_and(|n| n > 10_000), "two venues replay the file: {summary}");

    let lines: Vec<&str> = summary.lines().collect();
    for figures in report["strategies"].as_array().unwrap_or_else(|| panic!("{report}")) {
        let name = figures["name"].as_str().unwrap_or_default();
        let at = lines.iter().position(|l| l.trim_start().starts_with(&format!("{name} ({name} @"))).unwrap_or_else(|| panic!("{name} not in {summary}"));
        let counters = lines[at + 1];
        assert_eq!(figures["orders"].as_u64().map(|n| n.to_string()).as_deref(), Some(after(counters, "orders placed")), "{name}: {counters}");
        assert_eq!(figures["fills"].as_u64().map(|n| n.to_string()).as_deref(), Some(after(counters, "fills")), "{name}: {counters}");
        let position = lines[at + 2];
        let bought: runtime::model::Decimal = after(position, "bought").parse().unwrap_or_default();
        let sold: runtime::model::Decimal = after(position, "sold").parse().unwrap_or_default();
        assert_eq!(d(&figures["volume"]), bought + sold, "{name}: {position}");
        let fees: runtime::model::Decimal = after(position, "fees").parse().unwrap_or_default();
        assert_eq!(d(&figures["fees"]).round_dp(4), fees, "{name}: {position}");
        let pnl: runtime::model::Decimal = position.rsplit(": ").next().and_then(|p| p.split(' ').next()).and_then(|p| p.parse().ok()).unwrap_or_default();
        assert_eq!(d(&figures["pnl"]).round_dp(4), pnl, "{name}: {position}");
        let equity = figures["equity"].as_array().cloned().unwrap_or_default();
        assert!(equity.len() > 100, "a sample a minute over two hours: {}", equity.len());
        assert_eq!(equity.last().map(|p| d(&p[1])), Some(d(&figures["pnl"])), "the curve ends at the PnL");
        let deepest = figures["drawdown"].as_array().into_iter().flatten().map(|p| d(&p[1])).max().unwrap_or_default();
        assert_eq!(d(&figures["max_drawdown"]), deepest);
        assert!(figures["sharpe"].is_number() && figures["sortino"].is_number(), "{name}: {figures}");
    }
    let total = &report["total"];
    let sum = |key: &str| report["strategies"].as_array().into_iter().flatten().map(|f| f[key].as_u64().unwrap_or(0)).sum::<u64>();
    assert_eq!((total["orders"].as_u64(), total["fills"].as_u64()), (Some(sum("orders")), Some(sum("fills"))));

    // Same input, same output, byte for byte.
    backtest(&config, &dir.path().join("two"));
    for file in ["backtest.json", "backtest.html"] {
        let one = std::fs::read(dir.path().join("one").join(file)).unwrap_or_default();
        let two = std::fs::read(dir.path().join("two").join(file)).unwrap_or_default();
        assert!(!one.is_empty() && one == two, "{file} differs between two runs of the same input");
    }

    // Headless Chromium renders it: the figures table and both charts are drawn.
    let html = dir.path().join("one/backtest.html");
    let chromium = |extra: &[&str]| {
        let profile = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        Command::new("chromium")
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--virtual-time-budget=10000"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(format!("file://{}", html.display()))
            .output()
            .unwrap_or_else(|e| panic!("chromium (Debian's chromium package; tests/run.sh installs it): {e}"))
    };
    let dom = String::from_utf8_lossy(&chromium(&["--dump-dom"]).stdout).into_owned();
    assert!(dom.contains("<table id=\"figures\">") && dom.contains("<td>hello</td>") && dom.contains("<td>grid</td>"), "the figures table: {}", &dom[..dom.len().min(2000)]);
    for chart in ["equity", "drawdown"] {
        let at = dom.find(&format!("id=\"{chart}\"")).unwrap_or_else(|| panic!("no {chart} chart"));
        let drawn = &dom[at..dom.len().min(at + 200_000)];
        assert!(drawn.contains("class=\"main-svg\"") && drawn.contains("class=\"scatterlayer"), "plotly drew the {chart} chart");
    }
    let artifacts = root().join("target/artifacts");
    std::fs::create_dir_all(&artifacts).unwrap_or_else(|e| panic!("{e}"));
    let shot = artifacts.join("backtest-report.png");
    let _ = std::fs::remove_file(&shot);
    chromium(&["--window-size=1300,1600", &format!("--screenshot={}", shot.display())]);
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 10_000).unwrap_or(false), "a screenshot of the report at {}", shot.display());
}
