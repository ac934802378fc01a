//! Benchmarks of the hot paths, printing figures (run `bash strategies/build.sh` first):
//!
//! - `paper/match`: a resting order taken by an incoming one on the paper venue, native;
//! - `engine/replay_1000_prints`: replaying prints through the engine into a real guest
//!   (the counter test guest): the per-event cost of the sandbox boundary included;
//! - `plugin/compile`: reading, checking and compiling a component (hot-swap preparation,
//!   off the event path), with the compile cache off; `plugin/load (cached)` the same when
//!   the compile cache has it;
//! - `live/*`: the live venues' per-message work: parsing a private execution report and a
//!   depth diff, and applying a 20-level diff to a 1,000-level local book;
//! - `plugin/swap`: the switch itself, between two batches (instantiate, init, snapshot,
//!   restore), plus the one batch it rides with; with the `hello` strategy, whose state
//!   stays the same size however often it is swapped.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use runtime::config::Config;
use runtime::engine::{Control, Engine};
use runtime::model::{Decimal, InstrumentId, InstrumentInfo, OrderRequest, OrderType, SelfTradePrevention, Side, StrategyId, TimeInForce, VenueId};
use runtime::plugin::{PluginHost, SandboxLimits};
use runtime::venue::paper::{LiquidityProfile, MarketPrint, PaperVenue, PaperVenueConfig, Settlement};
use runtime::venue::Venue;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn guest(name: &str) -> Option<PathBuf> {
    let path = root().join("target/guests").join(format!("{name}.wasm"));
    if path.is_file() {
        Some(path)
    } else {
        eprintln!("{} is missing: run strategies/build.sh to benchmark the sandbox", path.display());
        None
    }
}

fn plugin() -> PluginHost {
    PluginHost::new(SandboxLimits { call_timeout: Duration::from_millis(1000), memory_bytes: 64 << 20 }).unwrap_or_else(|e| panic!("{e:#}"))
}

fn config(prints: u64) -> Config {
    config_with(prints, "counter", r#"{ venue = "paper", symbol = "BTCUSDT" }"#)
}

fn config_with(prints: u64, component: &str, params: &str) -> Config {
    let text = format!(
        r#"
[[venue]]
name = "paper"
kind = "paper"
settlement = "perpetual"
[[venue.instrument]]
symbol = "BTCUSDT"
base = "BTC"
quote = "USDT"
tick_size = "0.1"
lot_size = "0.001"
feed = {{ kind = "synthetic", seed = 1, start_price = "10000", start_ms = 0, interval_ms = 1, count = {prints} }}
liquidity = {{ levels = 5, step = "0.5", qty = "1" }}
[[strategy]]
name = "c"
component = "{component}"
params = {params}
"#
    );
    Config::parse(&text, &root()).unwrap_or_else(|e| panic!("{e}"))
}

fn paper(c: &mut Criterion) {
    let info = InstrumentInfo {
        id: InstrumentId(0),
        venue: VenueId(0),
        venue_name: "p".into(),
        symbol: "BTCUSDT".into(),
        base_asset: "BTC".into(),
        quote_asset: "USDT".into(),
        tick_size: Decimal::new(1, 1),
        lot_size: Decimal::new(1, 3),
        min_qty: Decimal::new(1, 3),
        min_notional: Decimal::ZERO,
        paper: true,
    };
    let mut venue = PaperVenue::new(PaperVenueConfig {
        id: VenueId(0),
        name: "p".into(),
        settlement: Settlement::Perpetual,
        maker_fee: Decimal::new(2, 4),
        taker_fee: Decimal::new(4, 4),
        balances: Default::default(),
        fees_in_received: false,
        faults: Default::default(),
    });
    venue.add_instrument(info.clone(), None);
    let mut n = 0u64;
    let mut events = Vec::new();
    c.bench_function("paper/match (rest + take)", |b| {
        b.iter(|| {
            n += 2;
            let order = |id: u64, side| OrderRequest {
                client_order_id: format!("o{id}"),
                instrument: InstrumentId(0),
                side,
                order_type: OrderType::Limit { price: Decimal::new(100_000, 1), time_in_force: TimeInForce::Gtc },
                qty: Decimal::new(1, 3),
            };
            venue.submit(StrategyId(0), &order(n, Side::Sell), SelfTradePrevention::None, 0, None);
            venue.submit(StrategyId(1), &order(n + 1, Side::Buy), SelfTradePrevention::None, 0, None);
            events.clear();
            venue.drain_events(&mut events);
        })
    });

    // A print on a venue with background liquidity (5 levels a side, as the demo's), with
    // 20 orders of ours resting away from the market, as a grid's would: the ladder is
    // withdrawn and quoted again around every print.
    let mut liquid = PaperVenue::new(PaperVenueConfig { name: "l".into(), ..venue.config().clone() });
    liquid.add_instrument(info, Some(LiquidityProfile { levels: 5, step: Decimal::new(5, 1), qty: Decimal::from(2) }));
    for k in 1..=10i64 {
        for (side, price) in [(Side::Buy, 9_000 - 10 * k), (Side::Sell, 11_000 + 10 * k)] {
            let request = OrderRequest {
                client_order_id: format!("g{k}{side:?}"),
                instrument: InstrumentId(0),
                side,
                order_type: OrderType::Limit { price: Decimal::from(price), time_in_force: TimeInForce::Gtc },
                qty: Decimal::new(1, 3),
            };
            liquid.submit(StrategyId(0), &request, SelfTradePrevention::None, 0, None);
        }
    }
    let mut cents = 1_000_000i64;
    c.bench_function("paper/print with a 5-level ladder", |b| {
        b.iter(|| {
            n += 1;
            cents += [30, -20, 10, -30, 20, -10][(n % 6) as usize];
            let print = MarketPrint { trade_id: n, price: Decimal::new(cents, 2), qty: Decimal::new(5, 3), aggressor: if n.is_multiple_of(2) { Side::Buy } else { Side::Sell }, ts_ms: 1_600_000_000_000 + n as i64 };
            liquid.replay_print(InstrumentId(0), &print);
            events.clear();
            liquid.drain_events(&mut events);
        })
    });
}

fn sandbox(c: &mut Criterion) {
    let (Some(v1), Some(v2)) = (guest("counter-v1"), guest("counter-v2")) else { return };
    let plugin = plugin();
    let loaded = Arc::new(plugin.load(&v1).unwrap_or_else(|e| panic!("{e}")));
    let components = [("counter".to_string(), loaded)].into_iter().collect();

    c.bench_function("engine/replay_1000_prints (counter guest)", |b| {
        b.iter_batched(
            || Engine::new(config(1_000), &components, plugin.clone()).unwrap_or_else(|e| panic!("{e}")),
            |mut engine| engine.run(),
            BatchSize::SmallInput,
        )
    });

    // The engine reads RUNTIME_COMPILE_CACHE when it is made: one without the cache, to
    // measure compiling, beside the cached one above.
    std::env::set_var("RUNTIME_COMPILE_CACHE", "off");
    let uncached = self::plugin();
    std::env::remove_var("RUNTIME_COMPILE_CACHE");
    c.bench_function("plugin/compile (read, check, compile)", |b| b.iter(|| uncached.load(&v2).unwrap_or_else(|e| panic!("{e}"))));
    c.bench_function("plugin/load (cached: read, check, load compiled)", |b| b.iter(|| plugin.load(&v2).unwrap_or_else(|e| panic!("{e}"))));

    let hello = root().join("strategies/hello.wasm");
    if !hello.is_file() {
        eprintln!("{} is missing: run strategies/build.sh", hello.display());
        return;
    }
    let next = Arc::new(plugin.load(&hello).unwrap_or_else(|e| panic!("{e}")));
    let components = [("hello".to_string(), next.clone())].into_iter().collect();
    let params = r#"{ venue = "paper", symbol = "BTCUSDT", qty = "0.01" }"#;
    let mut engine = Engine::new(config_with(10_000_000, "hello", params), &components, plugin.clone()).unwrap_or_else(|e| panic!("{e}"));
    let control = engine.controller();
    c.bench_function("plugin/swap (between two batches, with one batch)", |b| {
        b.iter(|| {
            let _ = control.send(Control::Swap { component: "hello".into(), loaded: next.clone(), prepared: Vec::new() });
            engine.step()
        })
    });
}

fn live(c: &mut Criterion) {
    use runtime::venue::live::book::{Diff, LocalBook, Sequencing};
    let report = include_str!("../src/venue/binance/test_data/spot_execution_report_trade.json");
    c.bench_function("live/parse executionReport", |b| b.iter(|| runtime::venue::binance::websocket::parse_spot(report).map(|r| r.filled_qty)));
    let trade = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1672515782136,"s":"BTCUSDT","t":12345,"p":"30000.10","q":"0.001","T":1672515782136,"m":true,"M":true}}"#;
    c.bench_function("live/parse public trade", |b| b.iter(|| runtime::venue::binance::rest::parse_public_trade(trade).map(|t| t.price)));
    c.bench_function("live/parse public trade (through a JSON tree)", |b| b.iter(|| runtime::venue::binance::rest::parse_public_trade_tree(trade).map(|t| t.price)));
    c.bench_function("live/parse executionReport (through a JSON tree)", |b| b.iter(|| runtime::venue::binance::websocket::parse_spot_tree(report).map(|r| r.filled_qty)));
    let levels = |n: usize, first: i64, step: i64| (0..n).map(|i| (Decimal::new(first + step * i as i64, 1), Decimal::new(1 + i as i64, 3))).collect::<Vec<_>>();
    let update = serde_json::json!({"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": 1001, "u": 1020,
        "b": levels(10, 299_990, -1).iter().map(|(p, q)| [p.to_string(), q.to_string()]).collect::<Vec<_>>(),
        "a": levels(10, 300_010, 1).iter().map(|(p, q)| [p.to_string(), q.to_string()]).collect::<Vec<_>>()})
    .to_string();
    c.bench_function("live/parse depthUpdate (20 levels)", |b| b.iter(|| runtime::venue::binance::rest::parse_depth_update(&update).map(|(_, d, _)| d.last)));
    // A USD-M placement's query as the adapter signs it: keyed once (as the adapters do) and
    // keyed for every request (as they did).
    let secret = runtime::secrets::Secret::new("2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9");
    let key = runtime::secrets::HmacKey::new(&secret);
    let payload = "symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=IOC&quantity=0.001&price=9581.2&newClientOrderId=hedger-hedge-000123&selfTradePreventionMode=EXPIRE_MAKER&newOrderRespType=RESULT&recvWindow=5000&timestamp=1606825200000";
    c.bench_function("live/sign order (key made once)", |b| b.iter(|| runtime::venue::binance::common::sign(&key, payload)));
    c.bench_function("live/sign order (key made per request)", |b| b.iter(|| runtime::venue::binance::common::sign(&runtime::secrets::HmacKey::new(&secret), payload)));
    let mut book = LocalBook::new(Sequencing::BinanceSpot);
    book.snapshot(1000, levels(500, 299_999, -1), levels(500, 300_001, 1)).unwrap_or_else(|e| panic!("{e}"));
    let (_, template, _) = runtime::venue::binance::rest::parse_depth_update(&update).unwrap_or_else(|e| panic!("{e}"));
    let mut next = 1001u64;
    c.bench_function("live/apply diff (20 levels into 1,000)", |b| {
        b.iter(|| {
            let diff = Diff { first: next, last: next, previous: None, ..template.clone() };
            next += 1;
            book.apply(diff).map(|_| book.levels(5).0.len())
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = paper, live, sandbox
}
criterion_main!(benches);
