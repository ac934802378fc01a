//! Target 3 of issue #12: what a strategy costs per event inside the sandbox against the
//! same code compiled natively, in batches of 1, 10, 100 and 1,000 events a call.
//!
//! The strategy is the shipped grid (`strategies/grid.wasm`, built by strategies/build.sh,
//! against the same crate linked into this benchmark), fed the same seeded public trades on
//! both sides: natively through the SDK's `Strategy` trait with the SDK's in-memory host;
//! in the sandbox through `StrategyInstance::on_events`, which is the engine's call (the
//! conversion to the contract's types, the component call, the guest's decoding and the
//! actions' way back). Neither side matches orders: this is the strategy's own cost.
//!
//! `cargo bench -p runtime --bench guest_vs_native` prints one table: medians of 5 runs of
//! 20,000 events each, in ns per event.

use std::path::Path;
use std::time::{Duration, Instant};

use runtime::market::{EventClock, Market, SharedMarket};
use runtime::model::{Decimal, Event, InstrumentId, InstrumentInfo, PublicTrade, Side, StrategyId, VenueId};
use runtime::plugin::{GuestState, InstanceContext, PluginHost, SandboxLimits};
use strategy_sdk::harness::TestHost;
use strategy_sdk::Strategy;

const EVENTS: usize = 20_000;
const RUNS: usize = 5;

const PARAMS: &str = r#"{"venue":"spot","symbol":"BTCUSDT","order_qty":"0.01","grid_spacing_pct":"0.01","num_levels":10,
  "min_price_distance":"0.01","max_position_size":"100","capital":"100000000","max_drawdown":"0.5","stop_loss_pct":"50",
  "var_limit":"100000000","var_window":200,"max_active_orders":20,"rebalance_interval":600000,
  "volatility_reference_pct":"0.01","volatility_window":50}"#;

fn info() -> InstrumentInfo {
    InstrumentInfo {
        id: InstrumentId(0),
        venue: VenueId(0),
        venue_name: "spot".into(),
        symbol: "BTCUSDT".into(),
        base_asset: "BTC".into(),
        quote_asset: "USDT".into(),
        tick_size: Decimal::new(1, 2),
        lot_size: Decimal::new(1, 3),
        min_qty: Decimal::new(1, 3),
        min_notional: Decimal::from(5),
        paper: true,
    }
}

/// A seeded random walk of trades around 9,600, a tick of 0.01, 0 to 50 ms apart.
fn trades(count: usize) -> Vec<PublicTrade> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut cents, mut ts) = (960_000i64, 1_600_000_000_000i64);
    (0..count)
        .map(|i| {
            cents += (next() % 7) as i64 - 3;
            ts += (next() % 51) as i64;
            let aggressor = if next() % 2 == 0 { Side::Buy } else { Side::Sell };
            PublicTrade { instrument: InstrumentId(0), trade_id: i as u64, price: Decimal::new(cents, 2), qty: Decimal::new(1 + (next() % 2000) as i64, 3), aggressor, ts_ms: ts }
        })
        .collect()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn native(trades: &[PublicTrade], batch: usize) -> f64 {
    let mut host = TestHost::new();
    let i = info();
    host.add_instrument("spot", "BTCUSDT", "BTC", "USDT", i.tick_size, i.lot_size, i.min_qty, i.min_notional);
    let (mut grid, _) = grid::Grid::init(PARAMS, &mut host).unwrap_or_else(|e| panic!("native init: {e}"));
    let events: Vec<strategy_sdk::Event> = trades.iter().cloned().map(strategy_sdk::Event::Trade).collect();
    let started = Instant::now();
    let mut actions = 0;
    for chunk in events.chunks(batch) {
        host.now_ms = chunk.last().map_or(0, |e| if let strategy_sdk::Event::Trade(t) = e { t.ts_ms } else { 0 });
        actions += grid.on_events(chunk, &mut host).len();
    }
    let elapsed = started.elapsed();
    assert!(actions > 0, "the grid placed nothing natively: the benchmark would measure nothing");
    elapsed.as_nanos() as f64 / trades.len() as f64
}

fn sandboxed(plugin: &PluginHost, loaded: &runtime::plugin::LoadedComponent, trades: &[PublicTrade], batch: usize) -> f64 {
    let clock = EventClock::default();
    let ctx = InstanceContext {
        id: StrategyId(0),
        name: "grid".into(),
        market: SharedMarket::new(Market::new(vec![info()], Vec::new())),
        clock: clock.clone(),
        seed: 1,
        kv: GuestState::default(),
        open_orders: Default::default(),
    };
    let mut instance = plugin.instantiate(loaded, ctx).unwrap_or_else(|e| panic!("instantiate: {e}"));
    match instance.init(PARAMS) {
        Ok(Ok(_)) => {}
        other => panic!("grid init: {other:?}"),
    }
    let events: Vec<Event> = trades.iter().cloned().map(Event::Trade).collect();
    let started = Instant::now();
    let mut actions = 0;
    for chunk in events.chunks(batch) {
        if let Some(Event::Trade(t)) = chunk.last() {
            clock.advance_to(t.ts_ms);
        }
        actions += instance.on_events(chunk).unwrap_or_else(|e| panic!("on_events: {e}")).len();
    }
    let elapsed = started.elapsed();
    assert!(actions > 0, "the grid placed nothing in the sandbox: the benchmark would measure nothing");
    elapsed.as_nanos() as f64 / trades.len() as f64
}

fn main() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../strategies/grid.wasm");
    if !path.is_file() {
        eprintln!("{} is missing: run strategies/build.sh first", path.display());
        std::process::exit(1);
    }
    let plugin = PluginHost::new(SandboxLimits { call_timeout: Duration::from_secs(10), memory_bytes: 64 << 20 }).unwrap_or_else(|e| panic!("{e:#}"));
    let loaded = plugin.load(&path).unwrap_or_else(|e| panic!("{e}"));
    let trades = trades(EVENTS);
    println!("grid strategy, {EVENTS} trades a run, medians of {RUNS} runs, ns per event");
    println!("| batch | native | sandboxed | ratio |");
    println!("| --- | --- | --- | --- |");
    for batch in [1, 10, 100, 1000] {
        let n = median((0..RUNS).map(|_| native(&trades, batch)).collect());
        let s = median((0..RUNS).map(|_| sandboxed(&plugin, &loaded, &trades, batch)).collect());
        println!("| {batch} | {n:.0} | {s:.0} | {:.2}x |", s / n);
    }
}
