//! Held trades (contract 0.1.4's `quiet`): a strategy that promises that trades inside a
//! band change nothing it decides is not called for each of them. The host holds them and
//! hands them over together, batch by batch as they were, before anything else reaches
//! the strategy and before its state is taken. Every trade still arrives once, in order;
//! the hold is bounded in count and in time; a hot swap hands what is held to the new
//! version; and the shipped grid decides exactly as it does when it holds nothing.

use std::io::Write;
use std::sync::Arc;

use e2e::{counter_state, guest, plugin_host, replay_venue, synthetic_venue};
use runtime::engine::{Control, Engine};

fn counter(name: &str, quiet: bool) -> String {
    format!("[[strategy]]\nname = \"{name}\"\ncomponent = \"counter\"\nparams = {{ venue = \"paper\", symbol = \"BTCUSDT\", quiet = {quiet} }}\n")
}

fn slot_stats(engine: &Engine, name: &str) -> runtime::stats::StrategyStats {
    engine.slots().iter().find(|s| s.name == name).map(|s| s.stats.clone()).unwrap_or_else(|| panic!("no strategy {name}"))
}

/// One synthetic print a millisecond: a quiet counter and a plain one beside it count
/// the same trades, in order, and see them as the same batches, the quiet one in about a
/// call a second of market time (the hold's time bound) instead of one a print. A
/// snapshot in the middle of the run counts every print so far: the held ones are handed
/// over before it is taken. A hot swap in the middle hands the held trades to the new
/// version, which counts on without a loss or a repeat.
#[test]
fn held_trades_arrive_once_in_order_as_their_batches_and_in_few_calls() {
    const PRINTS: u64 = 20_000;
    let plugin = plugin_host();
    let config = format!("{}{}{}", synthetic_venue(PRINTS), counter("quiet", true), counter("plain", false));
    let mut engine = e2e::engine(&config, &plugin, &[("counter", &guest("counter-v1"))]);
    for _ in 0..5_321 {
        assert!(engine.step());
    }
    assert!(engine.slots()[0].stats.calls < 10, "{:?}", engine.slots()[0].stats);
    let mid = counter_state(&mut engine, "quiet");
    assert_eq!((mid["count"].as_u64(), mid["batches"].as_u64()), (Some(5_321), Some(5_321)), "{mid}");
    for _ in 0..1_234 {
        assert!(engine.step());
    }
    let v2 = Arc::new(plugin.load(&guest("counter-v2")).unwrap_or_else(|e| panic!("{e}")));
    engine.controller().send(Control::Swap { component: "counter".into(), loaded: v2, prepared: Vec::new() }).unwrap_or_else(|e| panic!("{e}"));
    engine.run();
    let (quiet, plain) = (counter_state(&mut engine, "quiet"), counter_state(&mut engine, "plain"));
    assert_eq!(quiet["count"], PRINTS);
    assert_eq!(quiet["id_sum"], PRINTS * (PRINTS + 1) / 2);
    assert_eq!(quiet["out_of_order"], 0);
    assert_eq!(quiet["version"], "counter-v2");
    for field in ["count", "id_sum", "out_of_order", "batches"] {
        assert_eq!(quiet[field], plain[field], "{field}");
    }
    let (held, each) = (slot_stats(&engine, "quiet"), slot_stats(&engine, "plain"));
    assert_eq!((held.events, each.events), (PRINTS, PRINTS));
    assert_eq!(each.calls, PRINTS);
    // About one call per 1,000 ms of market time, the swap and the snapshot adding theirs.
    assert!((20..=25).contains(&held.calls), "{held:?}");
}

/// Five prints a millisecond: the hold's count bound (1,024 trades) ends a hold before its
/// time bound does, so the quiet counter is called about every 205 ms of market time, and
/// still counts every print.
#[test]
fn a_hold_ends_at_1024_trades() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("trades.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap_or_else(|e| panic!("{e}")));
    let mut id = 0u64;
    for ms in 0..2_000u64 {
        for k in 0..5u64 {
            id += 1;
            writeln!(out, "{id},{}.{k},0.01,1,{},true", 10_000 + ms % 7, 1_600_000_000_000 + ms).unwrap_or_else(|e| panic!("{e}"));
        }
    }
    out.flush().unwrap_or_else(|e| panic!("{e}"));
    drop(out);
    let config = format!("{}{}", replay_venue("paper", "spot", r#"USDT = "1000000", BTC = "10""#, &file, None), counter("quiet", true));
    let plugin = plugin_host();
    let mut engine = e2e::engine(&config, &plugin, &[("counter", &guest("counter-v1"))]);
    while engine.step() {}
    let state = counter_state(&mut engine, "quiet");
    assert_eq!((state["count"].as_u64(), state["id_sum"].as_u64()), (Some(id), Some(id * (id + 1) / 2)));
    // 2,000 batches of five: a batch is never split, so a hold ends at 1,025 trades.
    assert_eq!(state["batches"], 2_000);
    let stats = slot_stats(&engine, "quiet");
    assert!((9..=11).contains(&stats.calls), "{stats:?}");
}

/// The shipped grid on the demo's recorded trades, with and without telling the runtime
/// its quiet band: the same orders at the same prices, the same fills and PnL, in a
/// fraction of the calls (this grid is busy: about 1,000 fills in 15,270 prints).
#[test]
fn the_grid_decides_the_same_whether_or_not_its_trades_are_held() {
    let run = |hold: bool| {
        let params = format!(
            r#"venue = "paper", symbol = "BTCUSDT", order_qty = "0.01", grid_spacing_pct = "0.02", num_levels = 5, max_position_size = "1", capital = "100000", max_drawdown = "0.2", stop_loss_pct = "2", max_active_orders = 20, rebalance_interval = 60000, volatility_reference_pct = "0.01", hold_quiet_trades = {hold}"#
        );
        let config = format!("{}[[strategy]]\nname = \"grid\"\ncomponent = \"grid\"\nparams = {{ {params} }}\n", e2e::recorded_venue("paper", "spot", r#"USDT = "1000000", BTC = "10""#));
        let plugin = plugin_host();
        let mut engine = e2e::engine(&config, &plugin, &[("grid", &e2e::strategy("grid"))]);
        engine.run();
        let stats = slot_stats(&engine, "grid");
        (e2e::journal(&engine, "grid"), engine.pnl_of(&engine.slots()[0]), stats)
    };
    let (held_orders, held_pnl, held) = run(true);
    let (orders, pnl, each) = run(false);
    assert!(orders.len() > 50, "{}", orders.len());
    assert_eq!(held_orders, orders);
    assert_eq!(held_pnl, pnl);
    assert_eq!((held.placed, held.fills, held.canceled, held.events), (each.placed, each.fills, each.canceled, each.events));
    assert!(held.calls * 2 < each.calls, "{held:?} against {each:?}");
}
