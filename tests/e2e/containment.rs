//! Containment: a strategy written by an attacker (the `hostile` test guest, whose params
//! choose the attack) cannot crash, stall or exhaust the host, nor change what a healthy
//! strategy beside it sees. Each attack is named with what the host must answer.

use std::collections::HashMap;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use e2e::{counter_state, guest, load_all, parse_config, plugin_host, synthetic_venue};
use runtime::engine::{Control, Engine, Notice};
use runtime::stats::{SlotStatus, StrategyStats};

const PRINTS: u64 = 3_000;

fn strategy(name: &str, component: &str, params: &str) -> String {
    format!("[[strategy]]\nname = \"{name}\"\ncomponent = \"{component}\"\nparams = {{ {params} }}\n")
}

fn hostile(attack: &str) -> String {
    strategy(attack, "hostile", &format!("venue = \"paper\", symbol = \"BTCUSDT\", attack = \"{attack}\""))
}

const ATTACKS: &[&str] = &[
    "none", "huge-order", "long-id", "dup-id", "log-flood", "subscribe-flood", "subscribe-unknown", "big-snapshot", "snapshot-trap", "busy", "stack-overflow", "state-flood",
    "quiet-flood", "quiet-bad-bound", "quiet-liar",
];

/// Runs a config to its end with an embedded store checkpointing every 100 batches;
/// the engine is returned before its checkpoint is cleared.
fn run(config: &str) -> (Engine, tempfile::TempDir) {
    let plugin = plugin_host();
    let components = load_all(&plugin, &[("counter", &guest("counter-v1")), ("hostile", &guest("hostile"))]);
    let mut engine = Engine::new(parse_config(config), &components, plugin).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = runtime::store::open(&runtime::store::Backend::Embedded { path: dir.path().join("state.redb") }).unwrap_or_else(|e| panic!("{e}"));
    engine.attach_store(store, 100).unwrap_or_else(|e| panic!("{e}"));
    while engine.step() {}
    (engine, dir)
}

fn healthy() -> String {
    strategy("healthy", "counter", "venue = \"paper\", symbol = \"BTCUSDT\"")
}

fn stats(engine: &Engine, name: &str) -> StrategyStats {
    engine.slots().iter().find(|s| s.name == name).map(|s| s.stats.clone()).unwrap_or_else(|| panic!("no strategy {name}"))
}

fn status(engine: &Engine, name: &str) -> SlotStatus {
    engine.slots().iter().find(|s| s.name == name).map(|s| s.status.clone()).unwrap_or_else(|| panic!("no strategy {name}"))
}

/// What the hostile guest recorded: trades counted, rejection reasons received.
fn seen(engine: &mut Engine, name: &str) -> serde_json::Value {
    let bytes = engine.snapshot_strategy(name).unwrap_or_else(|| panic!("{name} is not running")).unwrap_or_else(|t| panic!("{t}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_attack_is_contained_and_the_healthy_strategy_sees_a_clean_run() {
    let (mut clean, _d1) = run(&format!("{}{}", synthetic_venue(PRINTS), healthy()));
    let attacks: String = ATTACKS.iter().map(|a| hostile(a)).collect();
    let (mut attacked, _d2) = run(&format!("{}{}{attacks}", synthetic_venue(PRINTS), healthy()));

    // The healthy strategy's run is the clean run's, event for event.
    assert_eq!(counter_state(&mut attacked, "healthy"), counter_state(&mut clean, "healthy"));
    assert_eq!(stats(&attacked, "healthy"), stats(&clean, "healthy"));
    assert_eq!(counter_state(&mut attacked, "healthy")["count"], PRINTS);

    // 1. Orders whose notional overflows a decimal: refused with the bound named.
    let huge = seen(&mut attacked, "huge-order");
    let reasons: Vec<&str> = huge["rejected"].as_array().map(|r| r.iter().filter_map(|v| v.as_str()).collect()).unwrap_or_default();
    assert_eq!(reasons.len(), 3, "{huge}");
    assert!(reasons.iter().all(|r| r.contains("beyond the host's bound")), "{reasons:?}");

    // A 1 MiB client id is refused, and the reason does not carry it back.
    let long = seen(&mut attacked, "long-id");
    let reason = long["rejected"][0].as_str().unwrap_or_default();
    assert!(reason.contains("1 to 32 characters") && reason.len() < 200, "{}", &reason[..reason.len().min(300)]);

    // 16. One client id twice in one batch: the second copy is refused, seen by the strategy.
    let dup = seen(&mut attacked, "dup-id");
    assert_eq!(dup["rejected"].as_array().map(Vec::len), Some(1), "{dup}");
    assert!(dup["rejected"][0].as_str().unwrap_or_default().contains("duplicate client order id"), "{dup}");
    assert_eq!((stats(&attacked, "dup-id").placed, stats(&attacked, "dup-id").refused), (1, 1));

    // 6. A log flood is cut at the budget and counted.
    assert_eq!(status(&attacked, "log-flood"), SlotStatus::Running);
    assert!(stats(&attacked, "log-flood").log_dropped > 1_000, "{:?}", stats(&attacked, "log-flood"));

    // 5. One instrument subscribed 20,000 times is one subscription.
    assert_eq!(seen(&mut attacked, "subscribe-flood")["trades"], PRINTS);
    assert_eq!(stats(&attacked, "subscribe-flood").events, stats(&attacked, "none").events);
    match status(&attacked, "subscribe-unknown") {
        SlotStatus::Refused(reason) => assert!(reason.contains("unknown instrument handle 987654"), "{reason}"),
        other => panic!("subscribe-unknown: {other:?}"),
    }

    // 7. A snapshot over the limit, and a panic in snapshot, stop that strategy only.
    let failed = |name: &str| match status(&attacked, name) {
        SlotStatus::Failed(reason) => reason,
        other => panic!("{name} should have been stopped, is {other:?}"),
    };
    assert!(failed("big-snapshot").contains("snapshot is 8388608 bytes; the limit is 4194304"), "{}", failed("big-snapshot"));
    assert!(failed("snapshot-trap").contains("panicked"), "{}", failed("snapshot-trap"));
    // 17. The trap's cause, not wasmtime's header line.
    assert!(failed("stack-overflow").contains("call stack exhausted"), "{}", failed("stack-overflow"));
    assert!(failed("state-flood").contains("more than 10000 keys"), "{}", failed("state-flood"));
    // Quiet bands (contract 0.1.4): a band on a 65th instrument, a bound that is no decimal.
    assert!(failed("quiet-flood").contains("quiet.set: a band on a 65th instrument; the limit is 64"), "{}", failed("quiet-flood"));
    assert!(failed("quiet-bad-bound").contains("quiet.set: the low bound of instrument 0 is not a decimal"), "{}", failed("quiet-bad-bound"));
    // A strategy that breaks its promise to ignore trades: its trades were held and handed
    // over in far fewer calls, every one of them, and every order it placed went out.
    assert_eq!(status(&attacked, "quiet-liar"), SlotStatus::Running);
    assert_eq!(seen(&mut attacked, "quiet-liar")["trades"], PRINTS);
    let liar = stats(&attacked, "quiet-liar");
    assert_eq!((liar.placed, liar.canceled), (PRINTS / 500, PRINTS / 500 - 1), "{liar:?}");
    // Its trades, and its orders' updates: each accepted, all but the last canceled.
    assert_eq!(liar.events, PRINTS + liar.placed + liar.canceled, "{liar:?}");
    assert!(liar.calls < PRINTS / 10, "{liar:?}");
    // Each stopped strategy trapped once, and the metrics say so; the healthy one none.
    let (reply, answer) = std::sync::mpsc::channel();
    let _ = attacked.controller().send(runtime::engine::Control::Query { what: runtime::engine::Query::Metrics, reply });
    attacked.step();
    let metrics = answer.recv_timeout(std::time::Duration::from_secs(5)).unwrap_or_default();
    let metrics = metrics.as_str().unwrap_or_default();
    for name in ["big-snapshot", "snapshot-trap", "stack-overflow", "state-flood", "quiet-flood", "quiet-bad-bound", "healthy"] {
        let traps = u64::from(matches!(status(&attacked, name), SlotStatus::Failed(_)));
        assert_eq!(stats(&attacked, name).traps, traps, "{name}");
        assert!(metrics.contains(&format!("runtime_strategy_traps_total{{strategy=\"{name}\"}} {traps}\n")), "{name}: {metrics}");
    }

    // 10. A strategy that keeps itself busy does not hold checkpoints back.
    assert_eq!(status(&attacked, "busy"), SlotStatus::Running);
    assert!(stats(&attacked, "busy").refused > PRINTS, "{:?}", stats(&attacked, "busy"));
    assert_eq!(attacked.checkpoints_written(), clean.checkpoints_written());
    assert!(clean.checkpoints_written() >= PRINTS / 100 - 1, "{}", clean.checkpoints_written());
}

#[test]
fn a_trap_in_snapshot_during_a_swap_is_reported_as_what_happened() {
    let config = format!("{}{}{}", synthetic_venue(200), healthy(), hostile("snapshot-trap"));
    let plugin = plugin_host();
    let files = [("counter", guest("counter-v1")), ("hostile", guest("hostile"))];
    let files: Vec<(&str, &std::path::Path)> = files.iter().map(|(n, p)| (*n, p.as_path())).collect();
    let mut engine = e2e::engine(&config, &plugin, &files);
    let notices = engine.subscribe();
    for _ in 0..50 {
        assert!(engine.step());
    }
    let next = Arc::new(plugin.load(&guest("hostile")).unwrap_or_else(|e| panic!("{e}")));
    engine.controller().send(Control::Swap { component: "hostile".into(), loaded: next, prepared: Vec::new() }).unwrap_or_else(|e| panic!("{e}"));
    engine.run();
    let all: Vec<Notice> = notices.try_iter().collect();
    let rejected = all.iter().find_map(|n| match n {
        Notice::SwapRejected { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    let reason = rejected.unwrap_or_else(|| panic!("no swap notice: {all:?}"));
    assert!(reason.contains("it is stopped"), "{reason}");
    assert!(!reason.contains("stays"), "the log must not say the dead version runs on: {reason}");
    assert!(matches!(status(&engine, "snapshot-trap"), SlotStatus::Failed(_)));
    assert_eq!(status(&engine, "healthy"), SlotStatus::Running);
    assert_eq!(counter_state(&mut engine, "healthy")["count"], 200);
}

/// The reloader reads regular files of a bounded size only, survives a module that makes
/// the componentizer panic, reacts to content changes only, and refuses a config that
/// changes what needs a restart.
#[test]
fn the_reloader_survives_hostile_files() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("counter.wasm");
    std::fs::copy(guest("counter-v1"), &file).unwrap_or_else(|e| panic!("{e}"));
    let config_path = dir.path().join("runtime.toml");
    let text = format!("{}{}", synthetic_venue(100_000), strategy("c", "counter", "venue = \"paper\", symbol = \"BTCUSDT\""));
    std::fs::write(&config_path, &text).unwrap_or_else(|e| panic!("{e}"));
    let plugin = plugin_host();
    let components: HashMap<_, _> = load_all(&plugin, &[("counter", &file)]);
    let mut engine = Engine::new(parse_config(&text), &components, plugin.clone()).unwrap_or_else(|e| panic!("{e}"));
    let notices = engine.subscribe();
    let watched = runtime::reload::Watched { strategies: [("counter".to_string(), file.clone())].into(), config: Some(config_path.clone()) };
    let _reloader = runtime::reload::spawn(watched, plugin.clone(), engine.controller(), engine.preparer()).unwrap_or_else(|e| panic!("{e}"));
    let wait = Duration::from_secs(60);
    let next_notice = |engine: &mut Engine| {
        assert!(engine.wait_control(wait), "no answer from the reloader");
        notices.try_recv().unwrap_or_else(|e| panic!("{e}"))
    };
    let swap_rejected = |n: Notice| match n {
        Notice::SwapRejected { reason, .. } => reason,
        other => panic!("expected a refused swap, got {other:?}"),
    };
    let config_rejected = |n: Notice| match n {
        Notice::ConfigRejected { reason } => reason,
        other => panic!("expected a refused config, got {other:?}"),
    };

    // 13. A truncated core module: refused, and the reloader lives on.
    let core = std::fs::read(e2e::guest_core("counter-v2")).unwrap_or_default();
    write_over(&file, &core[..core.len() / 3]);
    let reason = swap_rejected(next_notice(&mut engine));
    assert!(reason.contains("counter.wasm"), "{reason}");

    // 14. A FIFO and a link to /dev/zero where the strategy was: refused, nothing blocks.
    let tmp = file.with_extension("tmp");
    let made = std::process::Command::new("mkfifo").arg(&tmp).status().unwrap_or_else(|e| panic!("mkfifo: {e}"));
    assert!(made.success());
    std::fs::rename(&tmp, &file).unwrap_or_else(|e| panic!("{e}"));
    assert!(swap_rejected(next_notice(&mut engine)).contains("not a regular file"));
    std::os::unix::fs::symlink("/dev/zero", &tmp).unwrap_or_else(|e| panic!("{e}"));
    std::fs::rename(&tmp, &file).unwrap_or_else(|e| panic!("{e}"));
    assert!(swap_rejected(next_notice(&mut engine)).contains("not a regular file"));

    // 12. An empty config (an editor's truncation) and one cut after its venue: refused.
    write_over(&config_path, b"");
    assert!(config_rejected(next_notice(&mut engine)).contains("no [[venue]]"));
    write_over(&config_path, synthetic_venue(100_000).as_bytes());
    let reason = config_rejected(next_notice(&mut engine));
    assert!(reason.contains("strategy c removed") && reason.contains("needs a restart"), "{reason}");

    // 11. A real change is applied once; reading the file does not make it change again.
    write_over(&config_path, text.replace("symbol = \"BTCUSDT\" }", "symbol = \"BTCUSDT\", timer_ms = 9 }").as_bytes());
    assert_eq!(next_notice(&mut engine), Notice::ConfigApplied { changed: vec!["c".to_string()] });
    assert!(!engine.wait_control(Duration::from_secs(2)), "the config was applied again though it did not change: {:?}", notices.try_recv());

    // After all that, the reloader still swaps a good version in.
    write_over(&file, &std::fs::read(guest("counter-v2")).unwrap_or_default());
    assert!(matches!(next_notice(&mut engine), Notice::Swapped { .. }));
    for _ in 0..100 {
        assert!(engine.step());
    }
    assert_eq!(counter_state(&mut engine, "c")["version"], "counter-v2");
}

/// Writes beside and renames, as a deploy would.
fn write_over(path: &std::path::Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap_or_else(|e| panic!("{e}"));
    std::fs::rename(&tmp, path).unwrap_or_else(|e| panic!("{e}"));
}

/// Point 8: a strategy that uses five new client ids on every print, for 3,000 prints. The
/// router remembers the ids of the window (one second of event time here) and of open
/// orders, not all 15,000; a checkpoint carries at most the latest 1,000 journal entries.
#[test]
fn the_memory_of_client_ids_is_bounded_by_its_window() {
    let config = format!("[risk]\nclient_id_window_s = 1\n{}{}", synthetic_venue(PRINTS), hostile("id-flood"));
    let (engine, _dir) = run(&config);
    let placed = stats(&engine, "id-flood").placed;
    assert!(placed >= 5 * (PRINTS - 1), "{:?}", stats(&engine, "id-flood"));
    let remembered = engine.remembered_ids() as u64;
    // One second of prints (1,000 at one a millisecond) at the rate it placed, and the
    // prune lags by at most a doubling of the set: a third of the ids, at most two.
    let per_print = placed / PRINTS;
    assert!(remembered <= 2 * per_print * 1_000 + 1_024, "{remembered} ids remembered of {placed}");
    assert!(remembered >= 5, "{remembered}");
    assert_eq!(status(&engine, "id-flood"), SlotStatus::Running);
    assert!(engine.journal().len() <= runtime::router::JOURNAL_KEEP);
}

// The binary as an operator meets it: one clear line for each hostile input, never a
// crash, a hang or a silent fallback.

fn binary<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(e2e::runtime_binary()).args(args).current_dir(e2e::root()).env("NO_COLOR", "1").output().unwrap_or_else(|e| panic!("cannot run the runtime binary: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The last line on stderr: where the one error line of a failed start is.
fn error_line(output: &Output) -> String {
    text(&output.stderr).lines().last().unwrap_or_default().to_string()
}

/// Runs the binary on a config text with the hostile guest loaded, in a folder of its own.
fn run_config(config_text: &str, extra: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = dir.path().join("runtime.toml");
    std::fs::write(&config, config_text).unwrap_or_else(|e| panic!("{e}"));
    let hostile = guest("hostile").to_string_lossy().into_owned();
    let state = dir.path().join("state.redb").to_string_lossy().into_owned();
    let config = config.to_string_lossy().into_owned();
    let mut args = vec!["--strategies", &hostile, "--config", &config, "--no-watch", "--state", &state, "--fresh"];
    args.extend(extra);
    binary(&args)
}

#[test]
fn a_truncated_core_module_is_one_clear_line_not_a_crash() {
    let core = std::fs::read(e2e::guest_core("counter-v1")).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let bad = dir.path().join("cut.wasm");
    std::fs::write(&bad, &core[..core.len() / 2]).unwrap_or_else(|e| panic!("{e}"));
    let bad = bad.to_string_lossy().into_owned();
    let out = binary(&["--strategies", &bad, "--no-watch"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let line = error_line(&out);
    assert!(line.starts_with(&format!("error: {bad}: a core module that cannot be made a component")), "{line}");
}

/// Each bad value is refused at start with one line naming it, never a hang, a panic or
/// a silent fallback.
#[test]
fn out_of_range_config_values_are_refused_by_name() {
    let venue = synthetic_venue(10);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let folder = dir.path().to_string_lossy().into_owned();
    let cases: Vec<(String, &str)> = vec![
        (format!("[sandbox]\nmemory_limit_mb = 17592186044416\n{venue}"), "memory_limit_mb 17592186044416 must be 1 to 4096"),
        (venue.replace("levels = 5", "levels = 4000000000"), "liquidity levels 4000000000 must be 1 to 1000"),
        (venue.replace("step = \"0.5\"", "step = \"79228162514264337593543950335\""), "liquidity step or qty is beyond the host's bounds"),
        (venue.replace("start_price = \"10000\"", "start_price = \"79228162514264337593543950335\""), "start_price 79228162514264337593543950335 is beyond the host's bound"),
        (format!("[risk]\nmax_order_notional = \"-5\"\n{venue}"), "risk.max_order_notional -5 must be positive"),
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
    let out = binary(&["--config", &fifo, "--no-watch"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(error_line(&out), format!("error: {fifo}: cannot read: not a regular file"));
}

#[test]
fn a_run_whose_every_strategy_is_refused_exits_non_zero() {
    let out = run_config(&format!("{}{}", synthetic_venue(10), hostile("subscribe-unknown")), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let line = error_line(&out);
    assert!(line.contains("no strategy could start") && line.contains("unknown instrument handle 987654"), "{line}");
}

/// A guest logging 2,000 lines of 4 KiB on every print: the log is cut at the budget, the
/// drops are counted, and a newline in a guest message cannot forge a host line.
#[test]
fn a_log_flood_is_bounded_and_cannot_forge_lines() {
    let out = run_config(&format!("{}{}", synthetic_venue(200), hostile("log-flood")), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    // Unbounded, this run would write 200 x 2,000 x 4 KiB = 1.6 GB.
    assert!(stderr.len() < 2 << 20, "{} bytes of log", stderr.len());
    assert!(stderr.contains("log budget exceeded"), "{}", &stderr[..stderr.len().min(2000)]);
    assert!(stderr.contains("hello\\nINFO runtime: forged host line"), "the newline is escaped");
    assert!(!stderr.lines().any(|l| l.starts_with("INFO runtime: forged")), "a guest forged a host log line");
}
