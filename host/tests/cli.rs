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
    std::fs::write(&config, "[[venue]]\nname = \"p\"\nkind = \"paper\"\n[[strategy]]\nname = \"g\"\ncomponent = \"grid9\"\n").unwrap_or_else(|e| panic!("{e}"));
    let config = config.to_string_lossy().into_owned();
    let files = shipped();
    let out = runtime(&with_strategies(&files, &["--config", &config, "--no-watch"]));
    assert_eq!(out.status.code(), Some(2));
    let line = error_line(&out);
    assert!(line.contains("strategy g: component \"grid9\" is not among --strategies"), "{line}");
}
