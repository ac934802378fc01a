//! The soak: the runtime trading against the local exchange for a while at a steady event
//! rate, with a fault every few seconds, then the invariants checked on the exchange's own
//! books. A grid makes a market on Binance spot, the hedger hedges every maker fill on
//! Binance USD-M, and a strategy that panics after a while runs beside them. State goes to
//! a real Redis, which is restarted as one of the faults.
//!
//! Faults, in turn: the maker's private stream dropped; a hedge placement that fails
//! without executing and one whose answer is lost; pushes sent twice; pushes lost, then
//! the stream dropped (the reconnect's reconciliation must find them); the hedger
//! hot-swapped; the config reloaded with new grid params; Redis restarted.
//!
//! Invariants at the end: every maker fill hedged exactly once (the hedge venue's net is
//! minus the maker's), no client order id executed beyond its order's quantity (nothing
//! sent twice), the runtime's own account of the hedge equal to the venue's, and nothing
//! of ours left open after the shutdown.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use runtime::engine::{Control, Engine};
use runtime::stats::SlotStatus;
use runtime::model::Decimal;
use serde_json::{json, Value};

use crate::{guest, plugin_host, strategy, Exchange, RedisServer};

/// What a soak run did and found.
#[derive(Debug, Default)]
pub struct Report {
    pub seconds: f64,
    pub prints: u64,
    pub batches: u64,
    pub maker_fills: usize,
    pub hedge_fills: usize,
    pub maker_net: Decimal,
    pub hedge_net: Decimal,
    pub runtime_hedge_position: Decimal,
    pub faults: HashMap<&'static str, u64>,
    pub open_after_shutdown: usize,
    /// Client order ids whose executions were checked against what was sent.
    pub ids_checked: usize,
    /// Client order ids that executed more than their order's quantity.
    pub over_executed: Vec<String>,
    pub trapped: bool,
    /// Containment invariants that did not hold, in words: the host and the healthy
    /// strategies kept going, nothing executed twice, nothing left open.
    pub broken: Vec<String>,
    /// Exactly-once hedging invariants that did not hold: every maker fill hedged once,
    /// the runtime's account equal to the venue's.
    pub unhedged: Vec<String>,
}

impl Report {
    pub fn all_hold(&self) -> bool {
        self.broken.is_empty() && self.unhedged.is_empty()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut faults: Vec<_> = self.faults.iter().collect();
        faults.sort();
        writeln!(f, "soak: {:.1} s, {} prints ({:.0}/s), {} batches", self.seconds, self.prints, self.prints as f64 / self.seconds.max(0.001), self.batches)?;
        writeln!(f, "  maker fills {} (net {}), hedge fills {} (net {}), runtime's hedge position {}", self.maker_fills, self.maker_net, self.hedge_fills, self.hedge_net, self.runtime_hedge_position)?;
        writeln!(f, "  faults: {}", faults.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", "))?;
        writeln!(f, "  client ids checked against what was sent: {}, executed beyond it: {}", self.ids_checked, self.over_executed.len())?;
        writeln!(f, "  trapping strategy stopped: {}; open orders after shutdown: {}", self.trapped, self.open_after_shutdown)?;
        let broken: Vec<&String> = self.broken.iter().chain(&self.unhedged).collect();
        if broken.is_empty() {
            write!(f, "  invariants: all hold")
        } else {
            write!(f, "  INVARIANTS BROKEN: {}", broken.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("; "))
        }
    }
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap_or_default()
}

/// Our net position on `venue` as the exchange books it, and the number of fills.
fn net(account: &Value, symbol: &str) -> (Decimal, usize) {
    let trades: Vec<&Value> = account["trades"].as_array().into_iter().flatten().filter(|t| t["symbol"] == symbol).collect();
    let net = trades.iter().fold(Decimal::ZERO, |acc, t| {
        let q = d(t["qty"].as_str().unwrap_or("0"));
        if t["side"] == "BUY" {
            acc + q
        } else {
            acc - q
        }
    });
    (net, trades.len())
}

fn config(ex: &Exchange, num_levels: u32) -> String {
    format!(
        r#"
mode = "live"
[risk]
max_order_notional = "1000000"
{maker}{hedge}
[[strategy]]
name = "grid"
component = "grid"
[strategy.params]
venue = "maker"
symbol = "BTCUSDT"
order_qty = "0.01"
grid_spacing_pct = "0.02"
num_levels = {num_levels}
max_position_size = "5"
capital = "10000000"
max_drawdown = "0.5"
stop_loss_pct = "50"
max_active_orders = 20
rebalance_interval = 0

[[strategy]]
name = "hedger"
component = "hedger"
[strategy.params]
"Maker Exchange" = "maker"
"Maker Symbol" = "BTCUSDT"
"Hedge Exchange" = "hedge"
"Hedge Symbol" = "BTCUSDT"
# The hedger never hedges worse than the fills' VWAP by more than its slippage: over a
# long walk the market leaves that band and the risk waits, by design. The soak checks
# exactly-once delivery, not that policy, so the band is wide.
"Slippage" = "0.05"
"Min Amt" = "10"
"Min Qty" = "0.001"

[[strategy]]
name = "trapper"
component = "misbehave"
params = {{ venue = "maker", symbol = "BTCUSDT", fault = "panic", after = 1000, bid = "20000", qty = "0.001" }}
"#,
        maker = ex.venue_section("maker", "binance-spot", "BTCUSDT", "BTC"),
        hedge = ex.venue_section("hedge", "binance-usdm", "BTCUSDT", "BTC"),
    )
}

/// How a soak runs.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub duration: Duration,
    pub fault_every: Duration,
    /// The market's prints a second; 0 for as fast as the exchange takes them.
    pub rate: u32,
    pub seed: u64,
    /// Only this kind of fault (0 to 6, in the order of the module's list), every time:
    /// to find which fault breaks an invariant.
    pub only_fault: Option<usize>,
}

/// Runs the soak: prints from a seeded walk at the given rate, a fault every so often.
pub fn run(settings: Settings) -> Report {
    let Settings { duration, fault_every, rate, seed, only_fault } = settings;
    let ex = Exchange::start();
    Exchange::set_credentials();
    let mut redis = RedisServer::start();
    let plugin = plugin_host();
    let components = crate::load_all(&plugin, &[("grid", &strategy("grid")), ("hedger", &strategy("hedger")), ("misbehave", &guest("misbehave"))]);
    let mut engine = Engine::new(crate::parse_config(&config(&ex, 4)), &components, plugin.clone()).unwrap_or_else(|e| panic!("{e}"));
    let store = runtime::store::open(&runtime::store::Backend::Redis { url: redis.url(), namespace: "soak".into() }).unwrap_or_else(|e| panic!("{e}"));
    engine.attach_store(store, 50).unwrap_or_else(|e| panic!("{e}"));

    let mut report = Report::default();
    let started = Instant::now();
    // The rest of the market, on a thread of its own: a seeded walk of up to 5 USDT a
    // print, both sides, paced at `rate` (a load generator's pacing, not a wait for
    // anything).
    let stop = Arc::new(AtomicBool::new(false));
    let printer = {
        let (printer, stop) = (ex.printer("binance-spot"), stop.clone());
        // The hedge venue trades too, at the same prices, now and then: its background
        // liquidity is re-quoted around each print, and without them the hedges would use
        // it up over a long run and expire unfilled (a 600 s soak left 0.33 BTC waiting).
        let hedge_printer = ex.printer("binance-usdm");
        std::thread::spawn(move || {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut price = d("30000");
            let mut prints = 0u64;
            let began = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                if rate > 0 {
                    let due = began + Duration::from_secs_f64(prints as f64 / f64::from(rate));
                    if let Some(ahead) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(ahead);
                    }
                }
                price += Decimal::from(rng.random_range(-50i64..=50)) * d("0.1");
                let side = if rng.random_bool(0.5) { "BUY" } else { "SELL" };
                printer.print("BTCUSDT", &price.to_string(), "0.03", side);
                if prints.is_multiple_of(10) {
                    hedge_printer.print("BTCUSDT", &price.to_string(), "0.001", side);
                }
                prints += 1;
            }
            prints
        })
    };
    let mut next_fault = started + fault_every;
    let mut fault_no = 0usize;
    let mut pending_disconnect = false;
    while started.elapsed() < duration {
        engine.step();
        if pending_disconnect {
            ex.disconnect("binance-spot");
            ex.faults("binance-spot", json!({}));
            pending_disconnect = false;
        }
        if Instant::now() < next_fault {
            continue;
        }
        next_fault += fault_every;
        ex.faults("binance-spot", json!({}));
        ex.faults("binance-usdm", json!({}));
        let faults = &mut report.faults;
        match only_fault.unwrap_or(fault_no % 7) {
            0 => {
                ex.disconnect("binance-spot");
                count(faults, "private stream dropped");
            }
            1 => {
                ex.faults("binance-usdm", json!({"fail_orders": 1, "unknown_orders": 1}));
                count(faults, "hedge placement failed or answer lost");
            }
            2 => {
                ex.faults("binance-spot", json!({"duplicate_pushes": true}));
                count(faults, "pushes twice");
            }
            3 => {
                ex.faults("binance-spot", json!({"drop_pushes": 3}));
                pending_disconnect = true;
                count(faults, "pushes lost, then the stream dropped");
            }
            4 => {
                let next = plugin.load(&strategy("hedger")).unwrap_or_else(|e| panic!("{e}"));
                let _ = engine.controller().send(Control::Swap { component: "hedger".into(), loaded: Arc::new(next), prepared: Vec::new() });
                count(faults, "hedger hot-swapped");
            }
            5 => {
                let levels = 3 + (fault_no / 7 % 3) as u32;
                let _ = engine.controller().send(Control::Config(Box::new(crate::parse_config(&config(&ex, levels)))));
                count(faults, "config reloaded");
            }
            _ => {
                redis.restart();
                count(faults, "Redis restarted");
            }
        }
        fault_no += 1;
    }
    stop.store(true, Ordering::Relaxed);
    report.prints = printer.join().unwrap_or_default();
    ex.faults("binance-spot", json!({}));
    ex.faults("binance-usdm", json!({}));

    // Settle: the market has stopped; every maker fill must come to be hedged, and stay
    // so for two seconds of the runtime at work: orders the grid sent just before the
    // market stopped may still fill on arrival, and their hedges must follow before the
    // runtime stops (fills after a stop are the next start's work, not this run's).
    let settle = Instant::now() + Duration::from_secs(30);
    let hedged = |ex: &Exchange| net(&ex.account("binance-usdm"), "BTCUSDT").0 == -net(&ex.account("binance-spot"), "BTCUSDT").0;
    let mut hedged_since: Option<Instant> = None;
    while Instant::now() < settle && hedged_since.is_none_or(|at| at.elapsed() < Duration::from_secs(2)) {
        engine.step();
        hedged_since = if hedged(&ex) { hedged_since.or(Some(Instant::now())) } else { None };
    }
    let trades_at_settle = [("binance-spot", net(&ex.account("binance-spot"), "BTCUSDT").1), ("binance-usdm", net(&ex.account("binance-usdm"), "BTCUSDT").1)];
    // Ours cancelled on the way out, as at any shutdown; dropping the engine waits for the
    // live venues' queued cancels to go out.
    let _ = engine.controller().send(Control::Shutdown);
    engine.run();
    report.seconds = started.elapsed().as_secs_f64();
    report.batches = engine.stats.batches;
    let slot = |name: &str| engine.slots().iter().find(|s| s.name == name).map(|s| (s.status.clone(), s.stats.clone()));
    report.runtime_hedge_position = slot("hedger").map(|(_, stats)| stats.positions.values().fold(Decimal::ZERO, |acc, p| acc + p.net())).unwrap_or_default();
    report.trapped = slot("trapper").is_some_and(|(status, _)| matches!(status, SlotStatus::Failed(_)));
    let stopped: Vec<String> = ["grid", "hedger"]
        .iter()
        .filter_map(|name| match slot(name).map(|(status, _)| status) {
            Some(SlotStatus::Failed(reason) | SlotStatus::Refused(reason)) => Some(format!("{name} stopped: {reason}")),
            _ => None,
        })
        .collect();
    let sent: HashMap<String, Decimal> = engine.journal().iter().map(|e| (e.request.client_order_id.clone(), e.request.qty)).collect();
    drop(engine);

    let maker = ex.account("binance-spot");
    let hedge = ex.account("binance-usdm");
    for ((venue, before), account) in trades_at_settle.iter().zip([&maker, &hedge]) {
        let after: Vec<&Value> = account["trades"].as_array().into_iter().flatten().filter(|t| t["symbol"] == "BTCUSDT").skip(*before).collect();
        if !after.is_empty() {
            report.unhedged.push(format!("{venue} traded while the runtime stopped: {after:?}"));
        }
    }
    (report.maker_net, report.maker_fills) = net(&maker, "BTCUSDT");
    (report.hedge_net, report.hedge_fills) = net(&hedge, "BTCUSDT");
    report.open_after_shutdown = [&maker, &hedge].iter().map(|a| a["openOrders"].as_array().map(Vec::len).unwrap_or(0)).sum();

    // Nothing sent twice: no client id executed beyond the quantity it was sent with. The
    // journal keeps the latest orders: older ids (a long soak) are not checked here.
    let mut executed: HashMap<String, Decimal> = HashMap::new();
    for t in [&maker, &hedge].iter().flat_map(|a| a["trades"].as_array().into_iter().flatten()) {
        *executed.entry(t["clientOrderId"].as_str().unwrap_or_default().to_string()).or_default() += d(t["qty"].as_str().unwrap_or("0"));
    }
    report.ids_checked = executed.keys().filter(|id| sent.contains_key(*id)).count();
    report.over_executed = executed.iter().filter(|(id, q)| sent.get(*id).is_some_and(|s| *q > s)).map(|(id, q)| format!("{id} executed {q}")).collect();

    if report.hedge_net != -report.maker_net {
        report.unhedged.push(format!("hedge net {} is not minus the maker's {}", report.hedge_net, report.maker_net));
    }
    if report.runtime_hedge_position != report.hedge_net {
        report.unhedged.push(format!("the runtime's hedge position {} differs from the venue's {}", report.runtime_hedge_position, report.hedge_net));
    }
    if !report.over_executed.is_empty() {
        report.broken.push(format!("orders executed beyond what was sent: {:?}", report.over_executed));
    }
    if report.open_after_shutdown > 0 {
        let open: Vec<&Value> = [&maker, &hedge].iter().flat_map(|a| a["openOrders"].as_array().into_iter().flatten()).collect();
        report.broken.push(format!("{} orders left open after the shutdown: {open:?}", report.open_after_shutdown));
    }
    if !report.trapped {
        report.broken.push("the trapping strategy was not stopped".into());
    }
    report.broken.extend(stopped);
    if report.maker_fills == 0 {
        report.broken.push("the maker never traded: the soak tested nothing".into());
    }
    report
}

fn count(faults: &mut HashMap<&'static str, u64>, name: &'static str) {
    *faults.entry(name).or_default() += 1;
}
