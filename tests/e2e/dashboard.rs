//! The live dashboard (`GET /` on the control listener), end to end in headless Chromium
//! driven by playwright-core (tests/dashboard/check.mjs): during a replay its values appear
//! and update, its chart is drawn, halt is refused without the token and works with it, and
//! the API agrees that the strategy is halted. The screenshot is kept in
//! `target/artifacts/dashboard.png`.

use std::process::{Command, Stdio};
use std::time::Duration;

use e2e::control::{drain_log, free_port, ControlApi, TOKEN};
use e2e::{root, runtime_binary, strategy, synthetic_venue};
use serde_json::{json, Value};

#[test]
fn the_dashboard_shows_a_live_run_and_halts_a_strategy_with_the_token() {
    let modules = root().join("target/js-tests/node_modules");
    assert!(modules.join("playwright-core").is_dir(), "{} is missing: tests/run.sh installs playwright-core there", modules.display());
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = format!(
        "[store]\nbackend = \"none\"\n[replay]\nspeed = 1\n{}\n[[strategy]]\nname = \"hello\"\ncomponent = \"hello\"\nparams = {{ venue = \"paper\", symbol = \"BTCUSDT\", qty = \"0.01\", offset_ticks = 20 }}\n",
        synthetic_venue(10_000_000)
    );
    let path = dir.path().join("runtime.toml");
    std::fs::write(&path, config).unwrap_or_else(|e| panic!("{e}"));
    let port = free_port();
    let mut child = Command::new(runtime_binary())
        .arg("--strategies")
        .arg(strategy("hello"))
        .arg("--config")
        .arg(&path)
        .args(["--no-watch", "--control", &format!("127.0.0.1:{port}")])
        .env("RUNTIME_CONTROL_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let (log, listening) = drain_log(&mut child);
    listening.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| panic!("the control API never started"));

    let artifacts = root().join("target/artifacts");
    std::fs::create_dir_all(&artifacts).unwrap_or_else(|e| panic!("{e}"));
    let shot = artifacts.join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    let output = Command::new("node")
        .arg(root().join("tests/dashboard/check.mjs"))
        .args([format!("http://127.0.0.1:{port}/"), TOKEN.to_string(), "hello".to_string(), shot.display().to_string(), modules.display().to_string()])
        .output()
        .unwrap_or_else(|e| panic!("node: {e}"));
    let api = ControlApi::new(port);
    let state = api.get("/api/strategies")["strategies"][0]["state"].clone();
    let _ = api.call("POST", "/api/kill", Some(TOKEN), Some(json!({})));
    let _ = child.wait();
    let log = log.join().unwrap_or_default();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}\nruntime log:\n{log}", String::from_utf8_lossy(&output.stderr));
    let seen: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert!(seen["later"].as_u64() > seen["prints"].as_u64(), "the values updated: {seen}");
    assert!(seen["message"].as_str().is_some_and(|m| m.contains("halted hello")), "{seen}");
    assert_eq!(state, "halted", "the API agrees with the page");
    assert!(log.contains("control API: refused, no bearer token"), "the click without the token was refused by the runtime, not only by the page");
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 10_000).unwrap_or(false), "a screenshot at {}", shot.display());
}
