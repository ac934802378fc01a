//! Tick-to-trade on the live path (target 2 of #12): the shipped hedger trading on the
//! local exchange over real HTTP and WebSocket connections on 127.0.0.1.
//!
//! A maker order rests on Binance spot (placed by hand on the account, as another
//! system's order would be; with `--maker-strategy`, by a strategy of the runtime, which is
//! then called on each fill before the hedger); the rest of the market sells into it one small
//! print at a time, at a steady rate; each print is a fill pushed on the spot private
//! stream, which the hedger hedges on Binance USD-M. The runtime times each hedge inside
//! the process, from the fill's frame read off the socket to the hedge's signed request
//! handed to the HTTP client (`venue::live::latency`), and this prints the quantiles.
//!
//! `cargo bench -p e2e --bench tick_to_trade [-- FILLS [FILLS_PER_SECOND] [--maker-strategy] [--busy-poll] [--pin[=N]] [--store]]`
//! (default 100,000 fills at 2,000 a second; `--busy-poll` sets `[live] busy_poll`, `--pin`
//! `[live] engine_core` to the last core). Both venues run with raised rate limits,
//! the runtime told of them through `connection.rate_limits`: at the documented 300
//! orders per 10 s a hedge a fill would queue behind the limit, which measures the limit.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::{guest, plugin_host, strategy, Exchange, KEY, PASSPHRASE, SECRET};
use runtime::model::Decimal;

/// What a print sells into the maker order, and what each hedge buys back.
const FILL_QTY: &str = "0.001";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let fills: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let rate: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2_000).max(1);
    // By default the maker bid is placed by hand on the account, as another system's
    // order would be, and the hedger alone runs. With `--maker-strategy` a strategy of the
    // runtime places it, and is called on each fill before the hedger (the setup of the
    // first measurements).
    let maker_strategy = std::env::args().any(|a| a == "--maker-strategy");
    let busy_poll = std::env::args().any(|a| a == "--busy-poll");
    // With `--pin` (`--pin=N`), `[live] engine_core` gives the engine's thread (this one)
    // the last core (core N) to itself; the local exchange, which stands in for a venue on
    // another machine, and the printer run on the others.
    let pin = std::env::args().find_map(|a| match a.strip_prefix("--pin") {
        Some("") => runtime::affinity::allowed_cores().last().copied(),
        Some(core) => core.strip_prefix('=').and_then(|c| c.parse().ok()),
        None => None,
    });
    // With `--store`, checkpoints go to an embedded store, as the binary's default config
    // has them: each batch that sent an order is checkpointed once its orders are out.
    let with_store = std::env::args().any(|a| a == "--store");

    let mut setup = local_exchange::Setup::demo(KEY, SECRET, PASSPHRASE);
    let raised = local_exchange::Limits { weight_per_minute: 50_000_000, orders_per_10s: 10_000_000, ban_after: 5 };
    setup.spot.limits = raised;
    setup.usdm.limits = raised;
    let plenty: Decimal = "1000000000".parse().unwrap_or_default();
    for venue in [&mut setup.spot, &mut setup.usdm] {
        venue.balances.insert("BTC".into(), plenty);
        venue.balances.insert("USDT".into(), plenty);
    }
    let ex = Exchange::start_with(setup);
    Exchange::set_credentials();

    // The maker bids for all the fills at once; every print sells into it at its price.
    let maker_qty = Decimal::from(fills) * FILL_QTY.parse::<Decimal>().unwrap_or_default() + Decimal::ONE;
    let limits = "[venue.connection]\nrate_limits = [{ counts = \"orders\", seconds = 10, max = 10000000 }, { counts = \"weight\", seconds = 60, max = 50000000 }]\n";
    let config = format!(
        r#"
mode = "live"
[live]
busy_poll = {busy_poll}
{}
[risk]
max_order_notional = "100000000"
{}{}
{}
[[strategy]]
name = "hedger"
component = "hedger"
params = {{ "Maker Exchange" = "maker", "Maker Symbol" = "BTCUSDT", "Hedge Exchange" = "hedge", "Hedge Symbol" = "BTCUSDT", "Slippage" = "0.001", "Min Amt" = "10", "Min Qty" = "0.001" }}
"#,
        pin.map(|core| format!("engine_core = {core}")).unwrap_or_default(),
        ex.venue_section("maker", "binance-spot", "BTCUSDT", "BTC").replace("[venue.connection]\n", limits),
        ex.venue_section("hedge", "binance-usdm", "BTCUSDT", "BTC").replace("[venue.connection]\n", limits),
        if maker_strategy {
            format!("[[strategy]]\nname = \"maker\"\ncomponent = \"scripted\"\nparams = {{ orders = [ {{ venue = \"maker\", symbol = \"BTCUSDT\", id = \"bid\", side = \"buy\", price = \"29990\", qty = \"{maker_qty}\" }} ] }}\n")
        } else {
            String::new()
        },
    );
    let plugin = plugin_host();
    let mut engine = e2e::engine_unlogged(&config, &plugin, &[("scripted", &guest("scripted")), ("hedger", &strategy("hedger"))]);
    let store_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    if with_store {
        let store = runtime::store::open(&runtime::store::Backend::Embedded { path: store_dir.path().join("runtime.redb") }).unwrap_or_else(|e| panic!("{e}"));
        engine.attach_store(store, runtime::config::StoreConfig::default().checkpoint_every).unwrap_or_else(|e| panic!("{e}"));
    }

    // The scripted maker bids on the first trade it sees; the public stream may still be
    // connecting, so the market trades until the bid rests.
    let rested = || ex.account("binance-spot")["openOrders"].as_array().is_some_and(|o| o.len() == 1);
    if !maker_strategy {
        ex.place_by_hand("binance-spot", "BTCUSDT", "BUY", "29990", &maker_qty.to_string(), "maker-bid");
    }
    let mut waited = 0;
    while !rested() {
        assert!(waited < 60, "the maker's bid never rested");
        waited += 1;
        ex.print("binance-spot", "BTCUSDT", "30000", "0.001", "BUY");
        let until = Instant::now() + Duration::from_secs(1);
        while Instant::now() < until && !rested() {
            engine.step();
        }
    }

    let hedge_instrument = engine.market().lock().lookup("hedge", "BTCUSDT").map(|i| i.id).unwrap_or_else(|| panic!("the hedge instrument"));
    let hedged = |engine: &runtime::engine::Engine| {
        engine.slots().iter().find(|s| s.name == "hedger").and_then(|s| s.stats.positions.get(&hedge_instrument)).map_or(Decimal::ZERO, |p| p.sold)
    };
    // One fill hedged before the measured ones: both streams are up then (its hedge is in
    // the figures, one among the many).
    let warm = hedged(&engine);
    ex.print("binance-spot", "BTCUSDT", "29990", FILL_QTY, "SELL");
    let until = Instant::now() + Duration::from_secs(60);
    while hedged(&engine) == warm {
        assert!(Instant::now() < until, "the first fill was never hedged");
        engine.step();
    }
    let before = hedged(&engine);
    let expected = before + Decimal::from(fills) * FILL_QTY.parse::<Decimal>().unwrap_or_default();

    // The rest of the market, on a thread of its own at a steady rate: a spot print into
    // the bid per fill, and now and then a USD-M print that renews the hedge venue's
    // background liquidity, which the hedges take.
    let spot = ex.printer("binance-spot");
    let usdm = ex.printer("binance-usdm");
    let printed = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let (printed_by, done_by) = (printed.clone(), done.clone());
    let started = Instant::now();
    let (preempted_before, blocked_before) = (preempted(), blocked());
    let printer = std::thread::Builder::new().name("printer".into()).spawn(move || {
        runtime::affinity::keep_off_engine_core();
        let every = Duration::from_nanos(1_000_000_000 / rate);
        for n in 0..fills {
            let due = started + every * n as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            spot.print("BTCUSDT", "29990", FILL_QTY, "SELL");
            if n % 1_000 == 999 {
                usdm.print("BTCUSDT", "30000", "0.001", "BUY");
            }
            printed_by.store(n + 1, Ordering::Relaxed);
        }
        done_by.store(true, Ordering::Relaxed);
    });
    let printer = printer.unwrap_or_else(|e| panic!("the printer thread: {e}"));

    let deadline = Instant::now() + Duration::from_secs(600) + Duration::from_secs(fills / rate * 4);
    // Every 10 s, the window's figures: whether a long run gets slower as it goes.
    let hedge_metrics = |engine: &runtime::engine::Engine| {
        let market = engine.market().lock();
        market.venues.iter().find(|v| v.name() == "hedge").and_then(|v| v.metrics()).unwrap_or_else(|| panic!("the hedge venue's metrics"))
    };
    let us = |d: Duration| d.as_nanos() as f64 / 1000.0;
    let first = hedge_metrics(&engine);
    let mut window_start = (Instant::now(), first.tick_to_trade, first.decided);
    while hedged(&engine) < expected {
        assert!(Instant::now() < deadline, "timed out: {} of {fills} printed, {} of {expected} BTC hedged", printed.load(Ordering::Relaxed), hedged(&engine));
        engine.step();
        if window_start.0.elapsed() >= Duration::from_secs(10) {
            let now = hedge_metrics(&engine);
            let (w, d) = (now.tick_to_trade.since(&window_start.1), now.decided.since(&window_start.2));
            println!(
                "  window to {:>5.1} s: {:>6} hedges  p50 {:.1} us  p90 {:.1} us  p99 {:.1} us  (to the venue: p50 {:.1} us)",
                started.elapsed().as_secs_f64(),
                w.count(),
                us(w.quantile(0.5)),
                us(w.quantile(0.9)),
                us(w.quantile(0.99)),
                us(d.quantile(0.5))
            );
            window_start = (Instant::now(), now.tick_to_trade, now.decided);
        }
    }
    let elapsed = started.elapsed();
    printer.join().unwrap_or_else(|_| panic!("the printer thread panicked"));
    assert!(done.load(Ordering::Relaxed));

    let metrics = hedge_metrics(&engine);
    let t = &metrics.tick_to_trade;
    let hedge_account = ex.account("binance-usdm");
    let hedges_on_exchange = hedge_account["trades"].as_array().map_or(0, |t| t.iter().filter(|t| t["side"] == "SELL").count());
    println!("tick-to-trade, fill frame read -> hedge request handed to the HTTP client, {} hedges of {fills} fills in {:.1} s ({:.0} fills/s asked, {:.0} achieved):", t.count(), elapsed.as_secs_f64(), rate, fills as f64 / elapsed.as_secs_f64());
    println!("  p50 {:.1} us  p90 {:.1} us  p99 {:.1} us  p99.9 {:.1} us  max {:.1} us", us(t.quantile(0.5)), us(t.quantile(0.9)), us(t.quantile(0.99)), us(t.quantile(0.999)), us(t.max()));
    println!(
        "  targets (#12): p50 <= 20 us, p99 <= 100 us; busy_poll = {busy_poll}; engine_core = {}; store = {}",
        pin.map_or("none".to_string(), |c| c.to_string()),
        if with_store { "embedded" } else { "none" }
    );
    // The tail against the times the kernel took the engine's thread off its core for
    // another (the exchange and its printer share this machine's cores).
    println!(
        "  hedges over 1 ms: {}, over 10 ms: {}; the engine's thread was preempted {} times in the run, and blocked {} times (waiting in the kernel: a lock or a sleep)",
        t.over(Duration::from_millis(1)),
        t.over(Duration::from_millis(10)),
        preempted().saturating_sub(preempted_before),
        blocked().saturating_sub(blocked_before)
    );
    for slot in engine.slots() {
        println!("  calls of {}: {} mean {:.1} us", slot.name, slot.call_latency.count(), slot.call_latency.sum() / slot.call_latency.count().max(1) as f64 * 1e6);
    }
    let e = &metrics.decided;
    println!(
        "  of which to the order handed to the venue (stream task, engine, strategies, risk): p50 {:.1} us  p90 {:.1} us  p99 {:.1} us  p99.9 {:.1} us",
        us(e.quantile(0.5)),
        us(e.quantile(0.9)),
        us(e.quantile(0.99)),
        us(e.quantile(0.999))
    );
    println!("  hedge round trip (request sent to answer read): {} calls, mean {:.1} us", metrics.round_trip.count(), metrics.round_trip.sum() / metrics.round_trip.count().max(1) as f64 * 1e6);
    println!("  sell trades on the hedge venue's books: {hedges_on_exchange}; hedged {} BTC, all of the fills", hedged(&engine));
    // The reconciliations' reads of the trade lists, which share the engine's machine and
    // the venues' rate limits with the hedges: a periodic one every 10 s per venue.
    let trade_lists = |venue: &str, call: &str| ex.account(venue)["calls"][call].as_u64().unwrap_or(0);
    println!(
        "  trade lists read: maker {}, hedge {}",
        trade_lists("binance-spot", "GET /api/v3/myTrades"),
        trade_lists("binance-usdm", "GET /fapi/v1/userTrades")
    );
    // Fills that reach the runtime together are one batch, and the hedger hedges them
    // with one order: fewer hedges than fills says how often that happened.
    // The first fill's hedge, before the measured ones, is timed too.
    println!("  fills hedged together in a batch: {}", (fills + 1).saturating_sub(t.count()));
    assert!(t.count() > 0 && t.count() <= fills + 1, "each hedge timed once: {} for {fills} fills and the first", t.count());
}

/// Involuntary context switches of the calling thread so far (Linux; 0 elsewhere).
fn preempted() -> u64 {
    context_switches("nonvoluntary_ctxt_switches:")
}

/// Voluntary context switches of the calling thread so far: each a wait in the kernel.
fn blocked() -> u64 {
    context_switches("voluntary_ctxt_switches:")
}

fn context_switches(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix(field)).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}
