//! Loading strategy files: components, core modules with the contract embedded, and
//! everything that must be refused with a clear reason.

use e2e::{guest, guest_core, plugin_host, synthetic_venue};
use runtime::plugin::{LoadError, PluginHost};

#[test]
fn a_component_loads_and_reports_its_version_hash() {
    let loaded = plugin_host().load(&guest("counter-v1")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.hash.len(), 12);
}

#[test]
fn a_core_module_with_embedded_wit_is_componentized_and_runs() {
    let plugin = plugin_host();
    let core = guest_core("counter-v1");
    let bytes = std::fs::read(&core).unwrap_or_default();
    assert_eq!(&bytes[4..8], &[1, 0, 0, 0], "fixture should be a core module");
    let config = format!(
        "{}\n[[strategy]]\nname = \"c\"\ncomponent = \"counter\"\nparams = {{ venue = \"paper\", symbol = \"BTCUSDT\" }}\n",
        e2e::synthetic_venue(100)
    );
    let mut engine = e2e::engine(&config, &plugin, &[("counter", &core)]);
    engine.run();
    assert_eq!(e2e::counter_state(&mut engine, "c")["count"], 100);
}

/// Contract 0.1.3's optional `packed`: a component built with the SDK exports it beside
/// `tape` (and counts every trade, the same as through `on-events`); one built against
/// 0.1.2 exports only `tape` and still takes its trades packed through it; one built
/// against 0.1.0 exports neither and gets them through `on-events` as before.
#[test]
fn sdk_components_take_batches_packed_and_older_ones_as_they_were_built() {
    let plugin = plugin_host();
    let load = |name: &str| plugin.load(&guest(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(load("counter-v1").takes_packed_batches());
    assert!(!load("contract-0-1-2").takes_packed_batches() && load("contract-0-1-2").takes_packed_trades());
    assert!(!load("contract-0-1-0").takes_packed_batches() && !load("contract-0-1-0").takes_packed_trades());
    for component in ["counter-v1", "contract-0-1-2"] {
        let config = format!("{}\n[[strategy]]\nname = \"c\"\ncomponent = \"counter\"\nparams = {{ venue = \"paper\", symbol = \"BTCUSDT\" }}\n", synthetic_venue(250));
        let mut engine = e2e::engine(&config, &plugin, &[("counter", &guest(component))]);
        engine.run();
        let state = e2e::counter_state(&mut engine, "c");
        assert_eq!(state["count"], 250, "{component}: {state}");
        // The synthetic feed numbers its prints from 1: every id arrived, once, in order.
        assert_eq!(state["id_sum"], 250 * 251 / 2, "{component}: {state}");
        assert_eq!(state["out_of_order"], 0, "{component}: {state}");
    }
    let config = format!("{}\n[[strategy]]\nname = \"c\"\ncomponent = \"old\"\nparams = {{ venue = \"paper\", symbol = \"BTCUSDT\" }}\n", synthetic_venue(10));
    let mut engine = e2e::engine(&config, &plugin, &[("old", &guest("contract-0-1-2"))]);
    engine.run();
    assert_eq!(e2e::counter_state(&mut engine, "c")["packed"], 10, "a 0.1.2 component takes its trades through tape.on-trades");
}

#[test]
fn a_wrong_contract_version_is_refused_by_name() {
    let err = plugin_host().load(&guest("wrong-version")).err();
    match err {
        Some(LoadError::Version { found, .. }) => assert_eq!(found, "trading:strategy@0.9.0"),
        other => panic!("expected a version error, got {other:?}"),
    }
    let message = plugin_host().load(&guest_core("wrong-version")).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("built against contract trading:strategy@0.9.0; this runtime speaks trading:strategy@0.1.4"), "{message}");
}

/// The right version with an export of another signature: the strategy is refused with
/// what does not match, never reported as a trap (nothing ran).
#[test]
fn an_export_of_another_signature_is_named_as_a_mismatch() {
    let config = format!("{}\n[[strategy]]\nname = \"m\"\ncomponent = \"mismatched\"\nparams = {{}}\n", synthetic_venue(10));
    let plugin = plugin_host();
    let engine = e2e::engine(&config, &plugin, &[("mismatched", &guest("wrong-signature"))]);
    let status = format!("{:?}", engine.slots()[0].status);
    assert!(status.contains("does not match the contract: its trading:strategy/strategy export is not trading:strategy@0.1.4's"), "{status}");
    assert!(!status.contains("trapped"), "{status}");
}

/// The same for the optional `tape` export (contract 0.1.2): one whose `on-trades` takes
/// something other than bytes is refused by name when the strategy starts.
#[test]
fn a_tape_export_of_another_signature_is_named_as_a_mismatch() {
    let plugin = plugin_host();
    assert!(plugin.load(&guest("wrong-tape")).is_ok_and(|loaded| loaded.takes_packed_trades()));
    assert_mismatch_named(&plugin, "wrong-tape", "trading:strategy/tape export is not trading:strategy@0.1.4's");
}

/// The same for the optional `packed` export (contract 0.1.3).
#[test]
fn a_packed_export_of_another_signature_is_named_as_a_mismatch() {
    let plugin = plugin_host();
    assert!(plugin.load(&guest("wrong-packed")).is_ok_and(|loaded| loaded.takes_packed_batches()));
    assert_mismatch_named(&plugin, "wrong-packed", "trading:strategy/packed export is not trading:strategy@0.1.4's");
}

/// The test guest `name` is refused when its strategy starts, its status naming `what`.
fn assert_mismatch_named(plugin: &PluginHost, name: &str, what: &str) {
    let config = format!("{}\n[[strategy]]\nname = \"w\"\ncomponent = \"wrong\"\nparams = {{}}\n", synthetic_venue(10));
    let engine = e2e::engine(&config, plugin, &[("wrong", &guest(name))]);
    let status = format!("{:?}", engine.slots()[0].status);
    assert!(status.contains(&format!("does not match the contract: its {what}")), "{status}");
}

#[test]
fn garbage_bytes_are_not_wasm() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("garbage.wasm");
    std::fs::write(&path, b"this is not a webassembly file at all").unwrap_or_else(|e| panic!("{e}"));
    let err = plugin_host().load(&path).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("garbage.wasm") && err.contains("not a WebAssembly file"), "{err}");
}

/// wit-component turns a module with no contract into an empty component, which is then
/// refused for not exporting the strategy interface.
#[test]
fn a_core_module_without_the_contract_is_refused() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("bare.wasm");
    // The smallest valid core module: magic and version, no sections.
    std::fs::write(&path, b"\0asm\x01\0\0\0").unwrap_or_else(|e| panic!("{e}"));
    match plugin_host().load(&path) {
        Err(LoadError::NotStrategy { path: p }) => assert!(p.ends_with("bare.wasm")),
        Err(other) => panic!("expected a not-a-strategy error, got {other}"),
        Ok(_) => panic!("a bare module must not load"),
    }
}

#[test]
fn a_truncated_component_is_invalid() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("cut.wasm");
    let bytes = std::fs::read(guest("counter-v1")).unwrap_or_default();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap_or_else(|e| panic!("{e}"));
    match plugin_host().load(&path) {
        Err(LoadError::Invalid { .. }) => {}
        Err(other) => panic!("expected an invalid-component error, got {other}"),
        Ok(_) => panic!("half a component must not load"),
    }
}

#[test]
fn a_missing_file_is_named() {
    let err = plugin_host().load(std::path::Path::new("no/such/strategy.wasm")).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.starts_with("no/such/strategy.wasm: cannot read"), "{err}");
}

#[test]
fn a_malformed_market_data_line_is_reported_with_its_place_and_the_replay_goes_on() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("trades.csv");
    std::fs::write(&file, "id,price,qty,quote_qty,time,is_buyer_maker\n1,100,1,100,1000,false\n2,oops,1,100,2000,false\n3,101,1,101,3000,true\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let config = format!(
        "[[venue]]\nname = \"p\"\nkind = \"paper\"\n[[venue.instrument]]\nsymbol = \"BTCUSDT\"\nbase = \"BTC\"\nquote = \"USDT\"\ntick_size = \"1\"\nlot_size = \"1\"\nfeed = {{ kind = \"replay\", file = \"{}\" }}\n[[strategy]]\nname = \"c\"\ncomponent = \"counter\"\nparams = {{ venue = \"p\", symbol = \"BTCUSDT\" }}\n",
        file.display()
    );
    let plugin = plugin_host();
    let mut engine = e2e::engine(&config, &plugin, &[("counter", &guest("counter-v1"))]);
    engine.run();
    assert_eq!(engine.stats.prints, 2);
    assert_eq!(engine.stats.feed_errors, 1);
    let first = engine.stats.first_feed_errors.first().cloned().unwrap_or_default();
    assert!(first.ends_with("trades.csv:3: price \"oops\" is not a decimal"), "{first}");
    assert_eq!(e2e::counter_state(&mut engine, "c")["count"], 2);
}

/// The shipped live config parses and refers to its credentials, never holds them.
#[test]
fn the_live_example_config_is_valid_and_holds_no_secret() {
    let config = runtime::config::Config::load(&e2e::root().join("config/live-local.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.venues.len(), 2);
    for venue in &config.venues {
        for reference in [&venue.connection.api_key, &venue.connection.api_secret].into_iter().flatten() {
            assert!(reference.starts_with("env:"), "{reference}");
        }
    }
    let inline = std::fs::read_to_string(e2e::root().join("config/live-local.toml")).unwrap_or_default().replace("\"env:LOCAL_EXCHANGE_KEY\"", "\"LOCAL_EXCHANGE_KEY\"");
    let refused = runtime::config::Config::parse(&inline, &e2e::root());
    let refused = refused.err().unwrap_or_default();
    assert!(refused.contains("must be a reference") && !refused.contains("LOCAL_EXCHANGE_KEY"), "an inline key is refused without being echoed: {refused}");
}

/// Without `--strategies`, a component the config names is found as
/// `strategies/<name>.wasm`; one that is not there is named with where it was looked for.
#[test]
fn the_config_finds_its_components_under_strategies_by_name() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir(dir.path().join("strategies")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(e2e::strategy("hello"), dir.path().join("strategies/hello.wasm")).unwrap_or_else(|e| panic!("{e}"));
    let config = |component: &str| {
        format!(
            "[store]\nbackend = \"none\"\n{}\n[[strategy]]\nname = \"h\"\ncomponent = \"{component}\"\nparams = {{ venue = \"paper\", symbol = \"BTCUSDT\", qty = \"0.01\" }}\n",
            synthetic_venue(200)
        )
    };
    let run = |component: &str| {
        std::fs::write(dir.path().join("runtime.toml"), config(component)).unwrap_or_else(|e| panic!("{e}"));
        std::process::Command::new(e2e::runtime_binary())
            .args(["--config", "runtime.toml", "--no-watch"])
            .current_dir(dir.path())
            .output()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let found = run("hello");
    let stdout = String::from_utf8_lossy(&found.stdout);
    assert!(found.status.success() && stdout.contains("h (hello @"), "{stdout}\n{}", String::from_utf8_lossy(&found.stderr));
    let missing = run("nowhere");
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success() && stderr.contains("component \"nowhere\" is not among --strategies (loaded: ) and there is no strategies/nowhere.wasm"), "{stderr}");
}
