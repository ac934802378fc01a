//! Target 3 of issue #12: what a strategy costs per event inside the sandbox against the
//! same code compiled natively, in batches of 1, 10, 100 and 1,000 events a call.
//!
//! The strategy is the shipped grid (`strategies/grid.wasm`, built by strategies/build.sh,
//! against the same crate linked into this benchmark), fed the same seeded public trades on
//! both sides: natively through the SDK's `Strategy` trait with the SDK's in-memory host;
//! in the sandbox through `StrategyInstance::on_events`, which is the engine's call (the
//! conversion to the contract's types, the component call, the guest's decoding and the
//! actions' way back). Neither side matches orders: this is the strategy's own cost. The
//! grid does not tell a quiet band here (`hold_quiet_trades` false): every batch takes its
//! whole decision path, as before contract 0.1.4, so the figures compare across windows.
//!
//! `cargo bench -p runtime --bench guest_vs_native` prints one table: medians of 5 runs of
//! 200,000 events each, in ns per event.
//!
//! A second table is the hedger's part of tick-to-trade (target 2): the shipped hedger
//! (`strategies/hedger.wasm` against the crate) called as the live engine calls it, once
//! on a maker fill (it places the hedge) and once on the hedge's own fill and final order
//! update, in ns per call, natively and in the sandbox.

use std::path::Path;
use std::time::{Duration, Instant};

use runtime::market::{EventClock, Market, SharedMarket};
use runtime::model::{Action, Decimal, Event, Fill, InstrumentId, InstrumentInfo, Liquidity, OrderStatus, OrderUpdate, PublicTrade, Side, StrategyId, VenueId};
use runtime::plugin::{GuestState, InstanceContext, PluginHost, SandboxLimits, StrategyInstance};
use strategy_sdk::harness::TestHost;
use strategy_sdk::Strategy;

const EVENTS: usize = 200_000;
const RUNS: usize = 5;

const PARAMS: &str = r#"{"venue":"spot","symbol":"BTCUSDT","order_qty":"0.01","grid_spacing_pct":"0.01","num_levels":10,
  "min_price_distance":"0.01","max_position_size":"100","capital":"100000000","max_drawdown":"0.5","stop_loss_pct":"50",
  "var_limit":"100000000","var_window":200,"max_active_orders":20,"rebalance_interval":600000,
  "volatility_reference_pct":"0.01","volatility_window":50,"hold_quiet_trades":false}"#;

fn info() -> InstrumentInfo {
    instrument(0, "spot")
}

fn instrument(id: u32, venue: &str) -> InstrumentInfo {
    InstrumentInfo {
        id: InstrumentId(id),
        venue: VenueId(id),
        venue_name: venue.into(),
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

/// An instance of `loaded` on a market of `instruments`, initialised with `params`.
fn started(plugin: &PluginHost, loaded: &runtime::plugin::LoadedComponent, name: &str, instruments: Vec<InstrumentInfo>, clock: &EventClock, params: &str) -> StrategyInstance {
    let ctx = InstanceContext {
        id: StrategyId(0),
        name: name.into(),
        market: SharedMarket::new(Market::new(instruments, Vec::new())),
        clock: clock.clone(),
        seed: 1,
        kv: GuestState::default(),
        open_orders: Default::default(),
    };
    let mut instance = plugin.instantiate(loaded, ctx).unwrap_or_else(|e| panic!("instantiate {name}: {e}"));
    match instance.init(params) {
        Ok(Ok(_)) => instance,
        other => panic!("{name} init: {other:?}"),
    }
}

fn sandboxed(plugin: &PluginHost, loaded: &runtime::plugin::LoadedComponent, trades: &[PublicTrade], batch: usize) -> f64 {
    let clock = EventClock::default();
    let mut instance = started(plugin, loaded, "grid", vec![info()], &clock, PARAMS);
    let events: Vec<Event> = trades.iter().cloned().map(Event::Trade).collect();
    let started = Instant::now();
    let mut actions = 0;
    for chunk in events.chunks(batch) {
        if let Some(Event::Trade(t)) = chunk.last() {
            clock.advance_to(t.ts_ms);
        }
        actions += instance.on_events(chunk, &[]).unwrap_or_else(|e| panic!("on_events: {e}")).len();
    }
    let elapsed = started.elapsed();
    assert!(actions > 0, "the grid placed nothing in the sandbox: the benchmark would measure nothing");
    elapsed.as_nanos() as f64 / trades.len() as f64
}

const HEDGER_PARAMS: &str = r#"{"maker_venue":"a","maker_symbol":"BTCUSDT","hedge_venue":"b","hedge_symbol":"BTCUSDT","slippage":"0.001"}"#;
const FILLS: usize = 5_000;

/// The maker fill `i` (another system's order: no client id of ours), 0.01 BTC bought.
fn maker_fill<O>(i: usize, owner: O) -> Fill<O> {
    Fill {
        instrument: InstrumentId(0),
        client_order_id: String::new(),
        owner,
        trade_id: (100_000_000 + i).to_string(),
        side: Side::Buy,
        price: Decimal::new(960_000 + (i % 100) as i64, 2),
        qty: Decimal::new(1, 2),
        fee: Decimal::ZERO,
        fee_asset: "BNB".into(),
        liquidity: Liquidity::Maker,
        ts_ms: 1_600_000_000_000 + i as i64,
    }
}

/// The hedge's own fill and its final update, for the hedge `placed` of fill `i`.
fn hedge_done<O: Copy>(i: usize, placed: &runtime::model::OrderRequest, owner: O) -> (Fill<O>, OrderUpdate<O>) {
    let ts_ms = 1_600_000_000_000 + i as i64;
    let fill = Fill {
        instrument: placed.instrument,
        client_order_id: placed.client_order_id.clone(),
        owner,
        trade_id: (200_000_000 + i).to_string(),
        side: placed.side,
        price: Decimal::new(958_000, 2),
        qty: placed.qty,
        fee: Decimal::ZERO,
        fee_asset: "USDT".into(),
        liquidity: Liquidity::Taker,
        ts_ms,
    };
    let update = OrderUpdate {
        instrument: placed.instrument,
        client_order_id: placed.client_order_id.clone(),
        owner,
        status: OrderStatus::Filled,
        filled_qty: placed.qty,
        remaining_qty: Decimal::ZERO,
        reason: None,
        ts_ms,
    };
    (fill, update)
}

/// ns per call: (the maker fill's, the hedge's fill and update's).
fn hedger_native() -> (f64, f64) {
    let mut host = TestHost::new();
    for venue in ["a", "b"] {
        let i = instrument(0, venue);
        host.add_instrument(venue, "BTCUSDT", "BTC", "USDT", i.tick_size, i.lot_size, i.min_qty, i.min_notional);
    }
    let (mut hedger, _) = hedger::Hedger::init(HEDGER_PARAMS, &mut host).unwrap_or_else(|e| panic!("native init: {e}"));
    let (mut on_fill, mut on_done) = (Duration::ZERO, Duration::ZERO);
    for i in 0..FILLS {
        host.now_ms = 1_600_000_000_000 + i as i64;
        let fill = strategy_sdk::Event::Fill(maker_fill(i, strategy_sdk::Whose::Others));
        let started = Instant::now();
        let actions = hedger.on_events(&[fill], &mut host);
        on_fill += started.elapsed();
        let Some(strategy_sdk::Action::Place(placed)) = actions.first() else { panic!("fill {i} was not hedged natively: {actions:?}") };
        let (fill, update) = hedge_done(i, placed, strategy_sdk::Whose::Mine);
        let started = Instant::now();
        hedger.on_events(&[strategy_sdk::Event::Fill(fill), strategy_sdk::Event::Order(update)], &mut host);
        on_done += started.elapsed();
    }
    (on_fill.as_nanos() as f64 / FILLS as f64, on_done.as_nanos() as f64 / FILLS as f64)
}

/// The hedger in the sandbox fed `fills` maker fills, each hedged and then done: ns per
/// call (the maker fill's, the hedge's fill and update's), and the instance after them.
fn hedger_sandboxed(plugin: &PluginHost, loaded: &runtime::plugin::LoadedComponent, fills: usize) -> (f64, f64, StrategyInstance) {
    let clock = EventClock::default();
    let mut instance = started(plugin, loaded, "hedger", vec![instrument(0, "a"), instrument(1, "b")], &clock, HEDGER_PARAMS);
    let (mut on_fill, mut on_done) = (Duration::ZERO, Duration::ZERO);
    for i in 0..fills {
        clock.advance_to(1_600_000_000_000 + i as i64);
        let fill = Event::Fill(maker_fill(i, None));
        let started = Instant::now();
        let actions = instance.on_events(&[fill], &[]).unwrap_or_else(|e| panic!("on_events: {e}"));
        on_fill += started.elapsed();
        let Some(Ok(Action::Place(placed))) = actions.first() else { panic!("fill {i} was not hedged in the sandbox: {actions:?}") };
        let (fill, update) = hedge_done(i, placed, Some(StrategyId(0)));
        let started = Instant::now();
        instance.on_events(&[Event::Fill(fill), Event::Order(update)], &[]).unwrap_or_else(|e| panic!("on_events: {e}"));
        on_done += started.elapsed();
    }
    (on_fill.as_nanos() as f64 / fills as f64, on_done.as_nanos() as f64 / fills as f64, instance)
}

/// The hedger's snapshot after `fills` maker fills: (bytes, µs). A live engine with a
/// store takes every strategy's snapshot after each batch that placed orders, and the
/// hedger's holds the trade ids of its deduplication horizon.
fn hedger_snapshot(plugin: &PluginHost, loaded: &runtime::plugin::LoadedComponent, fills: usize) -> (usize, f64) {
    let (_, _, mut instance) = hedger_sandboxed(plugin, loaded, fills);
    let started = Instant::now();
    let bytes = instance.snapshot().unwrap_or_else(|e| panic!("snapshot: {e}")).len();
    (bytes, started.elapsed().as_secs_f64() * 1e6)
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

    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../strategies/hedger.wasm");
    let loaded = plugin.load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    println!();
    println!("hedger strategy, {FILLS} maker fills a run, medians of {RUNS} runs, ns per call");
    println!("| call | native | sandboxed | ratio |");
    println!("| --- | --- | --- | --- |");
    let native: Vec<(f64, f64)> = (0..RUNS).map(|_| hedger_native()).collect();
    let sandboxed: Vec<(f64, f64)> = (0..RUNS).map(|_| hedger_sandboxed(&plugin, &loaded, FILLS)).map(|(f, d, _)| (f, d)).collect();
    let (nf, nd) = (median(native.iter().map(|r| r.0).collect()), median(native.iter().map(|r| r.1).collect()));
    let (sf, sd) = (median(sandboxed.iter().map(|r| r.0).collect()), median(sandboxed.iter().map(|r| r.1).collect()));
    println!("| a maker fill (places the hedge) | {nf:.0} | {sf:.0} | {:.2}x |", sf / nf);
    println!("| the hedge's fill and final update | {nd:.0} | {sd:.0} | {:.2}x |", sd / nd);

    println!();
    println!("hedger snapshot (taken after every batch that placed orders when a store is attached)");
    println!("| maker fills within the horizon | bytes | time |");
    println!("| --- | --- | --- |");
    for fills in [1_000, 10_000, 50_000] {
        let (bytes, micros) = hedger_snapshot(&plugin, &loaded, fills);
        println!("| {fills} | {bytes} | {micros:.0} us |");
    }
}
