//! Hot swap under a steady event stream: nothing lost, nothing twice, state carried over,
//! and a bad new version never replaces a good old one.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use e2e::{counter_state, guest, plugin_host, synthetic_venue};
use runtime::engine::{Control, Notice};
use runtime::reload::{self, Watched};

const PRINTS: u64 = 20_000;

fn counter_config(prints: u64) -> String {
    format!("{}\n[[strategy]]\nname = \"c\"\ncomponent = \"counter\"\nparams = {{ venue = \"paper\", symbol = \"BTCUSDT\" }}\n", synthetic_venue(prints))
}

/// Sum of the synthetic feed's trade ids 1..=n.
fn id_sum(n: u64) -> u64 {
    n * (n + 1) / 2
}

/// The counter's first version running on [`PRINTS`] prints, and its notices.
fn counter_v1(plugin: &runtime::plugin::PluginHost) -> (runtime::engine::Engine, std::sync::mpsc::Receiver<Notice>) {
    let mut engine = e2e::engine(&counter_config(PRINTS), plugin, &[("counter", &guest("counter-v1"))]);
    let notices = engine.subscribe();
    (engine, notices)
}

/// Every print counted once, in order, and the second version the one counting now.
fn assert_every_print_counted_once_by_v2(engine: &mut runtime::engine::Engine) {
    let state = counter_state(engine, "c");
    assert_eq!(state["count"], PRINTS);
    assert_eq!(state["id_sum"], id_sum(PRINTS));
    assert_eq!(state["out_of_order"], 0);
    assert_eq!(state["version"], "counter-v2");
    assert_eq!(state["history"], serde_json::json!(["counter-v1"]));
}

fn replace_file(path: &Path, bytes: &[u8]) {
    // Write beside and rename, as a deploy would, so the watcher never sees half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap_or_else(|e| panic!("{e}"));
    std::fs::rename(&tmp, path).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn swap_mid_stream_loses_and_repeats_nothing() {
    let plugin = plugin_host();
    let (mut engine, notices) = counter_v1(&plugin);
    for _ in 0..PRINTS / 2 {
        assert!(engine.step());
    }
    // Compiled off the event path, handed over between two batches.
    let v2 = Arc::new(plugin.load(&guest("counter-v2")).unwrap_or_else(|e| panic!("{e}")));
    engine.controller().send(Control::Swap { component: "counter".into(), loaded: v2, prepared: Vec::new() }).unwrap_or_else(|e| panic!("{e}"));
    engine.run();
    match notices.try_recv() {
        Ok(Notice::Swapped { strategy, from, to, .. }) => {
            assert_eq!(strategy, "c");
            assert_ne!(from, to);
        }
        other => panic!("expected a swap notice, got {other:?}"),
    }
    assert_every_print_counted_once_by_v2(&mut engine);
    assert_eq!(engine.slots()[0].stats.events, PRINTS);
}

/// A new version that passes init and restore but traps on its first events is rolled
/// back: the previous version runs again from the state it handed over and is given every
/// event since the swap, the trapping batch included, so nothing is lost or counted twice.
#[test]
fn a_version_that_traps_on_probation_is_rolled_back_without_losing_an_event() {
    let plugin = plugin_host();
    let (mut engine, notices) = counter_v1(&plugin);
    for _ in 0..PRINTS / 2 {
        assert!(engine.step());
    }
    let v1_hash = engine.slots()[0].hash.clone();
    let bad = Arc::new(plugin.load(&guest("counter-bad")).unwrap_or_else(|e| panic!("{e}")));
    engine.controller().send(Control::Swap { component: "counter".into(), loaded: bad.clone(), prepared: Vec::new() }).unwrap_or_else(|e| panic!("{e}"));
    engine.run();
    let heard: Vec<Notice> = notices.try_iter().collect();
    assert!(matches!(&heard[0], Notice::Swapped { to, .. } if *to == bad.hash), "{heard:?}");
    match &heard[1] {
        Notice::RolledBack { strategy, from, to, reason } => {
            assert_eq!((strategy.as_str(), from, to), ("c", &bad.hash, &v1_hash));
            assert!(reason.contains("panicked"), "{reason}");
        }
        other => panic!("expected a rollback, got {other:?} in {heard:?}"),
    }
    assert!(!heard.iter().any(|n| matches!(n, Notice::StrategyFailed { .. })), "{heard:?}");
    assert_eq!(engine.slots()[0].hash, v1_hash);
    assert_eq!(engine.slots()[0].status, runtime::stats::SlotStatus::Running);
    let state = counter_state(&mut engine, "c");
    assert_eq!(state["version"], "counter-v1");
    assert_eq!(state["count"], PRINTS, "every trade counted once: {state}");
    assert_eq!(state["id_sum"], id_sum(PRINTS));
    assert_eq!(state["out_of_order"], 0);
    assert_eq!(state["foreign_key_seen"], false, "the key/value state is back as v1 handed it over");
}

/// With probation off, a new version that traps is stopped like any other.
#[test]
fn without_probation_a_trapping_new_version_is_stopped() {
    let plugin = plugin_host();
    let config = format!("[sandbox]\nswap_probation_ms = 0\n{}", counter_config(2_000));
    let mut engine = e2e::engine(&config, &plugin, &[("counter", &guest("counter-v1"))]);
    let notices = engine.subscribe();
    for _ in 0..1_000 {
        assert!(engine.step());
    }
    let bad = Arc::new(plugin.load(&guest("counter-bad")).unwrap_or_else(|e| panic!("{e}")));
    engine.controller().send(Control::Swap { component: "counter".into(), loaded: bad, prepared: Vec::new() }).unwrap_or_else(|e| panic!("{e}"));
    engine.run();
    assert!(notices.try_iter().any(|n| matches!(n, Notice::StrategyFailed { .. })));
    assert!(matches!(engine.slots()[0].status, runtime::stats::SlotStatus::Failed(_)));
}

/// A version instantiated ahead of the swap (what the file watcher does off the event path)
/// is initialised and takes over like one instantiated during it: nothing lost or repeated.
/// A preparation that failed refuses the swap with its reason, and the running version
/// stays.
#[test]
fn a_version_instantiated_ahead_takes_over_exactly_and_a_failed_one_is_refused() {
    let plugin = plugin_host();
    let (mut engine, notices) = counter_v1(&plugin);
    for _ in 0..PRINTS / 4 {
        assert!(engine.step());
    }
    let v2 = Arc::new(plugin.load(&guest("counter-v2")).unwrap_or_else(|e| panic!("{e}")));
    let mut failed = engine.preparer().prepare("counter", &v2);
    assert_eq!(failed.len(), 1, "one instance of the component runs");
    failed[0].instance = Err("could not instantiate: out of luck".into());
    engine.controller().send(Control::Swap { component: "counter".into(), loaded: v2.clone(), prepared: failed }).unwrap_or_else(|e| panic!("{e}"));
    for _ in 0..PRINTS / 4 {
        assert!(engine.step());
    }
    match notices.try_recv() {
        Ok(Notice::SwapRejected { reason, .. }) => assert!(reason.contains("out of luck"), "{reason}"),
        other => panic!("expected a refused swap, got {other:?}"),
    }
    assert_eq!(counter_state(&mut engine, "c")["version"], "counter-v1");
    // Prepared while the engine keeps going: the state it takes over is the one at the swap.
    let prepared = engine.preparer().prepare("counter", &v2);
    assert!(prepared.iter().all(|p| p.instance.is_ok()));
    for _ in 0..100 {
        assert!(engine.step());
    }
    engine.controller().send(Control::Swap { component: "counter".into(), loaded: v2, prepared }).unwrap_or_else(|e| panic!("{e}"));
    engine.run();
    assert!(matches!(notices.try_recv(), Ok(Notice::Swapped { .. })));
    assert_every_print_counted_once_by_v2(&mut engine);
}

#[test]
fn file_change_is_watched_swapped_and_a_broken_version_is_refused() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("counter.wasm");
    std::fs::copy(guest("counter-v1"), &file).unwrap_or_else(|e| panic!("{e}"));
    let plugin = plugin_host();
    let mut engine = e2e::engine(&counter_config(PRINTS), &plugin, &[("counter", &file)]);
    let notices = engine.subscribe();
    let watched = Watched { strategies: [("counter".to_string(), file.clone())].into(), config: None };
    let _reloader = reload::spawn(watched, plugin.clone(), engine.controller(), engine.preparer()).unwrap_or_else(|e| panic!("{e}"));
    let wait = Duration::from_secs(60);

    for _ in 0..5_000 {
        assert!(engine.step());
    }
    // 1. Garbage: refused at load, the running version stays.
    replace_file(&file, b"not wasm");
    assert!(engine.wait_control(wait), "no answer from the watcher about the garbage file");
    match notices.try_recv() {
        Ok(Notice::SwapRejected { component, reason }) => {
            assert_eq!(component, "counter");
            assert!(reason.contains("not a WebAssembly file"), "{reason}");
        }
        other => panic!("expected a rejected swap, got {other:?}"),
    }
    for _ in 0..5_000 {
        assert!(engine.step());
    }
    assert_eq!(counter_state(&mut engine, "c")["version"], "counter-v1");

    // 2. A component that loads but refuses to init with these params: old one stays.
    replace_file(&file, &std::fs::read(guest("misbehave")).unwrap_or_default());
    assert!(engine.wait_control(wait), "no answer from the watcher about the misfit component");
    match notices.try_recv() {
        Ok(Notice::SwapRejected { reason, .. }) => assert!(reason.contains("init refused"), "{reason}"),
        other => panic!("expected a rejected swap, got {other:?}"),
    }

    // 3. The real new version: swapped, state carried over, the stream goes on.
    replace_file(&file, &std::fs::read(guest("counter-v2")).unwrap_or_default());
    assert!(engine.wait_control(wait), "no answer from the watcher about v2");
    assert!(matches!(notices.try_recv(), Ok(Notice::Swapped { .. })));
    engine.run();
    assert_every_print_counted_once_by_v2(&mut engine);
}

#[test]
fn config_change_delivers_params_and_a_bad_config_is_rejected() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config_path = dir.path().join("runtime.toml");
    let text = counter_config(1_000);
    std::fs::write(&config_path, &text).unwrap_or_else(|e| panic!("{e}"));
    let plugin = plugin_host();
    let mut engine = e2e::engine(&text, &plugin, &[("counter", &guest("counter-v1"))]);
    let notices = engine.subscribe();
    let watched = Watched { strategies: Default::default(), config: Some(config_path.clone()) };
    let _reloader = reload::spawn(watched, plugin.clone(), engine.controller(), engine.preparer()).unwrap_or_else(|e| panic!("{e}"));
    for _ in 0..100 {
        assert!(engine.step());
    }
    replace_file(&config_path, format!("{text}\n[bogus]\nkey = 1\n").as_bytes());
    assert!(engine.wait_control(Duration::from_secs(60)));
    match notices.try_recv() {
        Ok(Notice::ConfigRejected { reason }) => assert!(reason.contains("unknown field `bogus`"), "{reason}"),
        other => panic!("expected a rejected config, got {other:?}"),
    }
    let changed = text.replace("symbol = \"BTCUSDT\" }", "symbol = \"BTCUSDT\", timer_ms = 7 }");
    replace_file(&config_path, changed.as_bytes());
    assert!(engine.wait_control(Duration::from_secs(60)));
    assert_eq!(notices.try_recv().ok(), Some(Notice::ConfigApplied { changed: vec!["c".to_string()] }));
    engine.run();
    let state = counter_state(&mut engine, "c");
    assert_eq!(state["params_seen"], serde_json::json!([r#"{"symbol":"BTCUSDT","timer_ms":7,"venue":"paper"}"#]));
    assert_eq!(state["count"], 1_000);
}
