//! Strategies in Python and JavaScript: built by `strategies/build.sh` with componentize-py
//! (PyPI) and componentize-js (npm) at pinned versions, they run in the same sandbox as
//! Rust ones, with a WASI that has no capabilities.

use std::path::Path;

use e2e::{guest, journal, parse_config, plugin_host_with, recorded_venue, strategy};
use runtime::engine::Engine;
use runtime::stats::SlotStatus;

/// The examples' sandbox: Python and JavaScript carry their interpreter, which fits in
/// the default 64 MiB.
fn plugin() -> runtime::plugin::PluginHost {
    plugin_host_with(std::time::Duration::from_millis(200), 64 << 20)
}

#[test]
fn hello_in_python_and_javascript_trades_exactly_as_hello_in_rust() {
    let names = [("hello", "hello"), ("hello-py", "hello-python"), ("hello-js", "hello-js")];
    let mut config = String::from("mode = \"paper\"\n[store]\nbackend = \"none\"\n[risk]\nmax_open_orders = 200\n");
    for (i, _) in names.iter().enumerate() {
        config.push_str(&recorded_venue(&format!("v{i}"), "perpetual", "USDT = \"1000000\""));
    }
    for (i, (name, component)) in names.iter().enumerate() {
        config.push_str(&format!(
            "[[strategy]]\nname = \"{name}\"\ncomponent = \"{component}\"\nparams = {{ venue = \"v{i}\", symbol = \"BTCUSDT\", qty = \"0.01\", offset_ticks = 200 }}\ntrade_on = [\"v{i}:BTCUSDT\"]\n"
        ));
    }
    let plugin = plugin();
    let files: Vec<(&str, std::path::PathBuf)> = names.iter().map(|(_, c)| (*c, strategy(c))).collect();
    let files: Vec<(&str, &Path)> = files.iter().map(|(n, p)| (*n, p.as_path())).collect();
    let components = e2e::load_all(&plugin, &files);
    let mut engine = Engine::new(parse_config(&config), &components, plugin.clone()).unwrap_or_else(|e| panic!("{e}"));
    engine.run();

    let rust = &engine.slots()[0];
    assert!(matches!(rust.status, SlotStatus::Running), "{:?}", rust.status);
    assert!(rust.stats.placed > 100 && rust.stats.fills > 50, "the Rust hello traded: {:?}", rust.stats);
    let expected = journal(&engine, "hello");
    let position = |slot: &runtime::engine::Slot| slot.stats.positions.values().next().cloned().unwrap_or_default();
    for slot in &engine.slots()[1..] {
        assert!(matches!(slot.status, SlotStatus::Running), "{}: {:?}", slot.name, slot.status);
        let s = &slot.stats;
        let r = &rust.stats;
        assert_eq!((s.events, s.calls, s.placed, s.refused, s.rejected, s.canceled, s.fills), (r.events, r.calls, r.placed, r.refused, r.rejected, r.canceled, r.fills), "{}", slot.name);
        let (mine, theirs) = (position(slot), position(rust));
        assert_eq!((mine.bought, mine.sold, mine.buy_notional, mine.sell_notional, mine.fees), (theirs.bought, theirs.sold, theirs.buy_notional, theirs.sell_notional, theirs.fees), "{}", slot.name);
        assert_eq!(journal(&engine, &slot.name), expected, "{} sent the same orders, ids included", slot.name);
    }
}

/// Runs the binary on a config in a folder of its own; returns (success, stdout, stderr).
fn run_binary(config: &str, strategies: &[&Path]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("runtime.toml"), config).unwrap_or_else(|e| panic!("{e}"));
    let output = std::process::Command::new(e2e::runtime_binary())
        .args(["--config", "runtime.toml", "--no-watch", "--log-format", "json", "--strategies"])
        .args(strategies)
        .env("RUNTIME_LOG", "info")
        .current_dir(dir.path())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

fn probe_config(component: &str, raise: bool) -> String {
    let venue = recorded_venue("p", "perpetual", "USDT = \"1000000\"");
    format!(
        "mode = \"paper\"\n[store]\nbackend = \"none\"\n{venue}[[strategy]]\nname = \"probe\"\ncomponent = \"{component}\"\nparams = {{ venue = \"p\", symbol = \"BTCUSDT\", raise_on_trade = {raise} }}\n"
    )
}

fn probe(component: &str) -> serde_json::Value {
    let plugin = plugin();
    let mut engine = Engine::new(parse_config(&probe_config(component, false)), &e2e::load_all(&plugin, &[(component, &guest(component))]), plugin.clone()).unwrap_or_else(|e| panic!("{e}"));
    engine.run();
    e2e::counter_state(&mut engine, "probe")
}

/// time.time() and Date.now() are the event clock: the recorded trades' time, not today's.
fn assert_on_the_event_clock(found: &serde_json::Value) {
    let trade_ms = found["trade_ms"].as_i64().unwrap_or(0);
    assert!(trade_ms > 1_582_000_000_000 && trade_ms < 1_583_000_000_000, "{found}");
    assert_eq!(found["wall_ms"], found["clock_ms"], "{found}");
    assert!(found["wall_ms"].as_i64().unwrap_or(0) >= trade_ms, "{found}");
}

#[test]
fn a_python_strategy_has_no_files_network_environment_or_real_clock() {
    let found = probe("wasi-python");
    let refused = |what: &str| assert_eq!(found[what]["ok"], false, "{what} must fail: {found}");
    refused("read_file");
    refused("socket");
    // No preopened directory: the root cannot be listed.
    refused("list_root");
    assert_eq!(found["environment"], serde_json::json!({"ok": true, "value": {}}), "{found}");
    assert_eq!(found["argv"]["value"].as_array().map(|a| a.iter().all(|v| v.as_str().is_some_and(|s| s.is_empty() || s == "python"))), Some(true), "{found}");
    // Sleeping on the monotonic clock returns at once, without the event clock moving.
    assert_eq!(found["sleep_seconds"], serde_json::json!({"ok": true, "value": 0.0}), "{found}");
    assert_eq!(found["urandom_len"]["value"], 16, "{found}");
    assert!(found["random"]["value"].as_f64().is_some(), "{found}");
    assert_on_the_event_clock(&found);
    assert_eq!(probe("wasi-python")["random"], found["random"], "random is seeded per instance: a replay draws the same");
}

#[test]
fn a_javascript_strategy_runs_on_the_event_clock_with_seeded_randomness() {
    let found = probe("wasi-js");
    assert!(found["random"].as_f64().is_some_and(|r| (0.0..1.0).contains(&r)), "{found}");
    assert_on_the_event_clock(&found);
    assert_eq!(probe("wasi-js")["random"], found["random"], "Math.random is seeded per instance: a replay draws the same");
}

/// Runs `component` so that it throws at its first trade; checks that what it printed is in
/// the log and that the summary's trap has `exception`.
fn printed_and_named(component: &str, exception: &str) {
    let (ok, stdout, stderr) = run_binary(&probe_config(component, true), &[&guest(component)]);
    assert!(ok, "the host outlives the strategy:\n{stdout}\n{stderr}");
    let lines: Vec<serde_json::Value> = stderr.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let logged = |stream: &str, text: &str| {
        lines.iter().any(|l| l["fields"]["stream"] == stream && l["fields"]["strategy"] == "probe" && l["fields"]["message"].as_str().is_some_and(|m| m.contains(text)))
    };
    assert!(logged("stdout", &format!("{component}: hello on stdout")), "{stderr}");
    assert!(logged("stderr", &format!("{component}: hello on stderr")), "{stderr}");
    assert!(logged("stderr", exception), "the traceback is in the log: {stderr}");
    let summary = stdout.lines().find(|l| l.contains(&format!("probe ({component} @"))).unwrap_or_else(|| panic!("{stdout}"));
    assert!(summary.contains("STOPPED") && summary.contains(exception), "the trap names the exception: {summary}");
}

#[test]
fn what_a_python_strategy_prints_is_logged_and_its_exception_named_when_it_traps() {
    printed_and_named("wasi-python", "ZeroDivisionError: division by zero");
}

#[test]
fn what_a_javascript_strategy_prints_is_logged_and_its_exception_named_when_it_traps() {
    printed_and_named("wasi-js", "can't access property \"boom\" of null");
}
