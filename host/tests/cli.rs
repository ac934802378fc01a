//! The `runtime` binary as an operator meets it: the demo, modes, log formats, and one
//! clear error line for each kind of bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn runtime<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runtime"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run the runtime binary: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The shipped components, as the README's demo command passes them.
fn shipped() -> Vec<String> {
    let dir = root().join("strategies");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .map(|p| format!("strategies/{}", p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no strategies/*.wasm: run strategies/build.sh first (the README's test command does)");
    files
}

/// A state file of its own for each run, so tests running side by side never share one.
fn private_state() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("runtime-cli-{}-{n}.redb", std::process::id())).to_string_lossy().into_owned()
}

fn with_strategies<'a>(files: &'a [String], rest: &[&'a str]) -> Vec<String> {
    let mut args = vec!["--strategies".to_string()];
    args.extend(files.iter().cloned());
    args.extend(rest.iter().map(|s| s.to_string()));
    args.extend(["--state".to_string(), private_state(), "--fresh".to_string()]);
    args
}

/// The last line on stderr: where the one error line of a failed start is.
fn error_line(output: &Output) -> String {
    text(&output.stderr).lines().last().unwrap_or_default().to_string()
}

/// The fill count on the summary line of one strategy.
fn fills_of(summary: &str, strategy: &str) -> Option<u64> {
    let at = summary.find(&format!("  {strategy} ("))?;
    let rest = &summary[at..];
    let line = rest.lines().nth(1)?;
    line.split("fills ").nth(1)?.split(';').next()?.trim().parse().ok()
}

#[test]
fn the_demo_runs_to_the_end_of_the_sample_and_summarises() {
    let files = shipped();
    let out = runtime(&with_strategies(&files, &["--no-watch"]));
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "exit {:?}\n{}", out.status, text(&out.stderr));
    assert!(stdout.contains("=== Run summary (paper mode) ==="), "{stdout}");
    // Four BTCUSDT replays and the ETH series derived from the same 9,999 prints.
    assert!(stdout.contains("market data: 39996 prints"), "{stdout}");
    assert!(!stdout.contains("STOPPED") && !stdout.contains("NOT STARTED"), "{stdout}");
    for strategy in ["grid", "hedger", "hello", "cross-asset", "self-trade"] {
        let fills = fills_of(&stdout, strategy);
        assert!(fills.is_some_and(|n| n > 0), "{strategy} should trade in the demo: {fills:?}\n{stdout}");
    }
}

#[test]
fn recommend_mode_decides_and_logs_but_never_sends() {
    let files = shipped();
    let out = runtime(&with_strategies(&files, &["--no-watch", "--mode", "recommend"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("(recommend mode)"), "{stdout}");
    for strategy in ["grid", "hedger", "hello", "cross-asset", "self-trade"] {
        assert_eq!(fills_of(&stdout, strategy), Some(0), "{strategy} must not trade in recommend mode:\n{stdout}");
    }
    assert!(text(&out.stderr).contains("recommend: place (not sent)"));
}

#[test]
fn json_logs_are_one_object_a_line() {
    let files = shipped();
    let out = runtime(&with_strategies(&files, &["--no-watch", "--log-format", "json"]));
    assert!(out.status.success());
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(!lines.is_empty());
    for line in lines {
        let value: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(value.get("level").is_some(), "{line}");
    }
}

#[test]
fn help_explains_the_options() {
    let out = runtime(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for needle in ["--strategies", "--config", "--mode", "--speed", "--log-format", "--no-watch", "hot-swaps"] {
        assert!(help.contains(needle), "help lacks {needle}:\n{help}");
    }
}

#[test]
fn an_unknown_flag_is_named() {
    let out = runtime(&["--strategies", "x.wasm", "--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unexpected argument '--bogus'"), "{}", text(&out.stderr));
}

#[test]
fn a_missing_strategy_file_is_one_clear_line() {
    let out = runtime(&["--strategies", "strategies/nope.wasm", "--no-watch"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(error_line(&out), "error: strategies/nope.wasm: cannot read: No such file or directory (os error 2)");
}

#[test]
fn garbage_wasm_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let bad = dir.path().join("bad.wasm");
    std::fs::write(&bad, b"garbage").unwrap_or_else(|e| panic!("{e}"));
    let bad = bad.to_string_lossy().into_owned();
    let out = runtime(&["--strategies", &bad, "--no-watch"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(error_line(&out), format!("error: {bad}: not a WebAssembly file (it does not start with the \\0asm magic)"));
}

#[test]
fn a_malformed_config_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "mode = \"paper\"\n[sandbox]\ncall_timeout_ms = \"soon\"\n").unwrap_or_else(|e| panic!("{e}"));
    let config = config.to_string_lossy().into_owned();
    let files = shipped();
    let out = runtime(&with_strategies(&files, &["--config", &config, "--no-watch"]));
    assert_eq!(out.status.code(), Some(2));
    let line = error_line(&out);
    assert!(line.starts_with(&format!("error: {config}: ")), "{line}");
    assert!(line.contains("line 3") && line.contains("call_timeout_ms"), "{line}");
}

#[test]
fn a_strategy_whose_component_was_not_loaded_is_named() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = dir.path().join("runtime.toml");
    std::fs::write(&config, format!("{}[[strategy]]\nname = \"g\"\ncomponent = \"grid9\"\n", paper_venue(10))).unwrap_or_else(|e| panic!("{e}"));
    let config = config.to_string_lossy().into_owned();
    let files = shipped();
    let out = runtime(&with_strategies(&files, &["--config", &config, "--no-watch"]));
    assert_eq!(out.status.code(), Some(2));
    let line = error_line(&out);
    assert!(line.contains("strategy g: component \"grid9\" is not among --strategies"), "{line}");
}

/// A paper venue with BTCUSDT on a synthetic feed of `prints` trades.
fn paper_venue(prints: u64) -> String {
    format!(
        r#"
[[venue]]
name = "paper"
kind = "paper"
balances = {{ USDT = "1000000", BTC = "10" }}
[[venue.instrument]]
symbol = "BTCUSDT"
base = "BTC"
quote = "USDT"
tick_size = "0.1"
lot_size = "0.001"
min_qty = "0.001"
min_notional = "5"
feed = {{ kind = "synthetic", seed = 42, start_price = "10000", start_ms = 1600000000000, interval_ms = 1, count = {prints} }}
liquidity = {{ levels = 5, step = "0.5", qty = "1" }}
"#
    )
}

fn hostile_guest() -> String {
    let path = root().join("target/guests/hostile.wasm");
    assert!(path.is_file(), "{} is missing: run strategies/build.sh", path.display());
    path.to_string_lossy().into_owned()
}

fn hostile(name: &str, attack: &str) -> String {
    format!("[[strategy]]\nname = \"{name}\"\ncomponent = \"hostile\"\nparams = {{ venue = \"paper\", symbol = \"BTCUSDT\", attack = \"{attack}\" }}\n")
}

/// Runs the binary on a config text with the hostile guest loaded.
fn run_config(text: &str, extra: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = dir.path().join("runtime.toml");
    std::fs::write(&config, text).unwrap_or_else(|e| panic!("{e}"));
    let config = config.to_string_lossy().into_owned();
    let mut args = vec!["--strategies".to_string(), hostile_guest(), "--config".to_string(), config, "--no-watch".to_string(), "--state".to_string(), private_state(), "--fresh".to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    runtime(&args)
}

#[test]
fn a_truncated_core_module_is_one_clear_line_not_a_crash() {
    let core = std::fs::read(root().join("target/guests/core/counter-v1.wasm")).unwrap_or_else(|e| panic!("{e} (run strategies/build.sh)"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let bad = dir.path().join("cut.wasm");
    std::fs::write(&bad, &core[..core.len() / 2]).unwrap_or_else(|e| panic!("{e}"));
    let bad = bad.to_string_lossy().into_owned();
    let out = runtime(&["--strategies", &bad, "--no-watch"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let line = error_line(&out);
    assert!(line.starts_with(&format!("error: {bad}: a core module that cannot be made a component")), "{line}");
}

/// Each bad value is refused at start with one line naming it, never a hang, a panic or
/// a silent fallback.
#[test]
fn out_of_range_config_values_are_refused_by_name() {
    let venue = paper_venue(10);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let folder = dir.path().to_string_lossy().into_owned();
    let cases: Vec<(String, &str)> = vec![
        (format!("[sandbox]\nmemory_limit_mb = 17592186044416\n{venue}"), "memory_limit_mb 17592186044416 must be 1 to 4096"),
        (venue.replace("levels = 5", "levels = 4000000000"), "liquidity levels 4000000000 must be 1 to 1000"),
        (venue.replace("step = \"0.5\"", "step = \"79228162514264337593543950335\""), "liquidity step or qty is beyond the host's bounds"),
        (venue.replace("start_price = \"10000\"", "start_price = \"79228162514264337593543950335\""), "start_price 79228162514264337593543950335 is beyond the host's bound"),
        (format!("[risk]\nmax_order_notional = \"-5\"\n{venue}"), "risk.max_order_notional must be positive"),
        (venue.replace("USDT = \"1000000\"", "USDT = \"-1\""), "balance USDT = -1 is outside 0"),
        (venue.replace("symbol = \"BTCUSDT\"", "symbol = \"\""), "instrument symbol \"\" must be 1 to 32"),
        (venue.replace("tick_size = \"0.1\"", "tick_size = \"0.00000000000000000000000000001\""), "has more digits than an exact decimal holds"),
        (venue.replace("feed = { kind = \"synthetic\", seed = 42, start_price = \"10000\", start_ms = 1600000000000, interval_ms = 1, count = 10 }", &format!("feed = {{ kind = \"replay\", file = \"{folder}\" }}")), "is not a regular file"),
        (String::new(), "no [[venue]]: there is nothing to run"),
    ];
    for (config, expected) in cases {
        let out = run_config(&config, &[]);
        assert_eq!(out.status.code(), Some(2), "{expected}: {}", text(&out.stderr));
        let line = error_line(&out);
        assert!(line.contains(expected), "expected {expected:?} in {line:?}");
    }
}

#[test]
fn a_config_that_is_a_fifo_is_refused_not_waited_on() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let fifo = dir.path().join("runtime.toml");
    assert!(Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success()));
    let fifo = fifo.to_string_lossy().into_owned();
    let out = runtime(&["--config", &fifo, "--no-watch"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(error_line(&out), format!("error: {fifo}: cannot read: not a regular file"));
}

#[test]
fn a_run_whose_every_strategy_is_refused_exits_non_zero() {
    let out = run_config(&format!("{}{}", paper_venue(10), hostile("h", "subscribe-unknown")), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let line = error_line(&out);
    assert!(line.contains("no strategy could start") && line.contains("unknown instrument handle 987654"), "{line}");
}

/// A guest logging 2,000 lines of 4 KiB on every print: the log is cut at the budget, the
/// drops are counted, and a newline in a guest message cannot forge a host line.
#[test]
fn a_log_flood_is_bounded_and_cannot_forge_lines() {
    let out = run_config(&format!("{}{}", paper_venue(200), hostile("flood", "log-flood")), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    // Unbounded, this run would write 200 x 2,000 x 4 KiB = 1.6 GB.
    assert!(stderr.len() < 2 << 20, "{} bytes of log", stderr.len());
    assert!(stderr.contains("log budget exceeded"), "{}", &stderr[..stderr.len().min(2000)]);
    assert!(stderr.contains("hello\\nINFO runtime: forged host line"), "the newline is escaped");
    assert!(!stderr.lines().any(|l| l.starts_with("INFO runtime: forged")), "a guest forged a host log line");
}
