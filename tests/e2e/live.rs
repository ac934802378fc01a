//! The live adapters end to end: the runtime, with the hedger, trading on the local
//! exchange over real HTTP and WebSocket connections on 127.0.0.1. Maker orders rest on
//! Binance spot; the market trades through them; every fill must be hedged exactly once
//! on Binance USD-M (or OKX), also with faults injected in the middle of it.

use std::time::{Duration, Instant};

use e2e::{guest, plugin_host, strategy, Exchange};
use runtime::engine::{Control, Engine};
use runtime::model::Decimal;
use serde_json::{json, Value};

fn d(s: &str) -> Decimal {
    s.parse().unwrap_or_else(|_| panic!("decimal {s}"))
}

fn config_text(ex: &Exchange, hedge_kind: &str, hedge_symbol: &str) -> String {
    format!(
        r#"
mode = "live"
[risk]
max_order_notional = "1000000"
{}{}
[[strategy]]
name = "maker"
component = "scripted"
params = {{ orders = [
  {{ venue = "maker", symbol = "BTCUSDT", id = "s1", side = "sell", price = "30010", qty = "0.01" }},
  {{ venue = "maker", symbol = "BTCUSDT", id = "s2", side = "sell", price = "30020", qty = "0.02" }},
  {{ venue = "maker", symbol = "BTCUSDT", id = "s3", side = "sell", price = "30030", qty = "0.03" }},
  {{ venue = "maker", symbol = "BTCUSDT", id = "b1", side = "buy", price = "29990", qty = "0.01" }},
  {{ venue = "maker", symbol = "BTCUSDT", id = "b2", side = "buy", price = "29980", qty = "0.015" }},
  {{ venue = "maker", symbol = "BTCUSDT", id = "b3", side = "buy", price = "29970", qty = "0.02" }},
] }}

[[strategy]]
name = "hedger"
component = "hedger"
params = {{ "Maker Exchange" = "maker", "Maker Symbol" = "BTCUSDT", "Hedge Exchange" = "hedge", "Hedge Symbol" = "{hedge_symbol}", "Slippage" = "0.001", "Min Amt" = "10", "Min Qty" = "0.001" }}
"#,
        ex.venue_section("maker", "binance-spot", "BTCUSDT", "BTC"),
        ex.venue_section("hedge", hedge_kind, hedge_symbol, "BTC"),
    )
}

fn start(ex: &Exchange, hedge_kind: &str, hedge_symbol: &str) -> Engine {
    Exchange::set_credentials();
    let plugin = plugin_host();
    e2e::engine(&config_text(ex, hedge_kind, hedge_symbol), &plugin, &[("scripted", &guest("scripted")), ("hedger", &strategy("hedger"))])
}

/// Runs the engine until `done` holds, for at most 60 s. Each step waits for the venues'
/// reports (or a second), so this follows events; the deadline only bounds a failure.
fn run_until(engine: &mut Engine, what: &str, done: impl FnMut(&Engine) -> bool) {
    assert!(run_for(engine, Duration::from_secs(60), done), "timed out waiting for {what}");
}

fn run_for(engine: &mut Engine, limit: Duration, mut done: impl FnMut(&Engine) -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        engine.step();
        if done(engine) {
            return true;
        }
    }
    false
}

/// The market trades until the maker orders rest: the scripted maker places them on the
/// first trade it sees, and the public stream may still be connecting.
fn until_maker_orders_rest(ex: &Exchange, mut wait: impl FnMut(&dyn Fn() -> bool) -> bool) {
    let rested = || ex.account("binance-spot")["openOrders"].as_array().is_some_and(|o| o.len() == 6);
    for _ in 0..60 {
        ex.print("binance-spot", "BTCUSDT", "30000", "0.001", "BUY");
        if wait(&rested) {
            return;
        }
    }
    panic!("the maker orders never rested");
}

fn net(account: &Value, symbol: &str) -> Decimal {
    account["trades"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["symbol"] == symbol)
        .map(|t| {
            let q = d(t["qty"].as_str().unwrap_or("0"));
            if t["side"] == "BUY" {
                q
            } else {
                -q
            }
        })
        .sum()
}

fn calls(account: &Value, call: &str) -> u64 {
    account["calls"][call].as_u64().unwrap_or(0)
}

/// Complete reconciliations of the live venue `name` so far: after restoring, after
/// connecting, periodic.
fn reconciliations(engine: &Engine, name: &str) -> u64 {
    engine.market().lock().venues.iter().find(|v| v.name() == name).and_then(|v| v.metrics()).map_or(0, |m| m.reconciliations)
}

/// Every venue in use has begun its reconciliation after its private stream connected: its
/// second read of the account's trades (the first follows the restore of the saved state).
/// From then on a push is delivered, not left for a reconciliation to find: a hedge made
/// before the hedge venue's stream was up has its fills read from the trade list and its
/// order queried, which the tests without faults count as not needed (one made while that
/// reconciliation is still under way is queried too: see [`reconciliations`]).
fn private_streams_up(ex: &Exchange) -> bool {
    let reads = |venue: &str, paths: &[&str]| {
        let account = ex.account(venue);
        paths.iter().map(|path| calls(&account, path)).sum::<u64>()
    };
    let spot = reads("binance-spot", &["GET /api/v3/myTrades"]);
    let usdm = reads("binance-usdm", &["GET /fapi/v1/userTrades"]);
    let okx = reads("okx", &["GET /api/v5/trade/fills", "GET /api/v5/trade/fills-history"]);
    spot >= 2 && usdm + okx > 0 && [usdm, okx].iter().all(|n| *n == 0 || *n >= 2)
}

/// Places the maker orders (the scripted strategy acts on its first trade), then trades
/// through them: the maker sells 0.06 and buys 0.025, a net -0.035 to be hedged. It does
/// not wait for the reconciliations after connecting to end: a test may have set faults
/// (a ban) that keep one from completing until they are over, and mean the burst to meet
/// them.
fn maker_burst(ex: &Exchange, engine: &mut Engine, between: impl FnOnce()) {
    run_until(engine, "both private streams to be up", |_| private_streams_up(ex));
    until_maker_orders_rest(ex, |rested| run_for(engine, Duration::from_secs(1), |_| rested()));
    ex.print("binance-spot", "BTCUSDT", "30040", "1", "BUY");
    between();
    ex.print("binance-spot", "BTCUSDT", "29975", "1", "SELL");
}

fn assert_hedged_once(ex: &Exchange, engine: &mut Engine, hedge_venue: &str, hedge_symbol: &str) {
    run_until(engine, "the maker fills to be hedged", |_| net(&ex.account(hedge_venue), hedge_symbol) == d("0.035"));
    let maker = ex.account("binance-spot");
    assert_eq!(net(&maker, "BTCUSDT"), d("-0.035"), "the maker's fills on the exchange");
    assert_eq!(maker["trades"].as_array().map(Vec::len), Some(5), "five maker fills");
    // Nothing more comes: a few more rounds of events, and the hedge stays exact.
    let settle = Instant::now() + Duration::from_secs(2);
    while Instant::now() < settle {
        engine.step();
    }
    let hedge = ex.account(hedge_venue);
    assert_eq!(net(&hedge, hedge_symbol), d("0.035"), "hedged exactly once: {hedge}");
    // The runtime's own account of the hedge comes to agree with the exchange: from the
    // private stream at once, or, for a push that came before the stream was subscribed,
    // from the reconciliation within its interval (10 s). A fill never delivered fails here.
    let position = |engine: &Engine| {
        let hedger = engine.slots().iter().find(|s| s.name == "hedger").unwrap_or_else(|| panic!("hedger"));
        hedger.stats.positions.values().fold(Decimal::ZERO, |acc, p| acc + p.bought - p.sold)
    };
    run_for(engine, Duration::from_secs(15), |e| position(e) == d("0.035"));
    assert_eq!(position(engine), d("0.035"), "the runtime's own account of the hedge agrees with the exchange");
}

/// No faults but garbage on the maker's private stream: counted, logged, and the
/// connection goes on (one subscription in all).
#[test]
fn hedger_hedges_spot_fills_on_usdm() {
    let ex = Exchange::start();
    let mut engine = start(&ex, "binance-usdm", "BTCUSDT");
    ex.faults("binance-spot", json!({"garbage": 3}));
    // A hedge placed while the hedge venue's reconciliation after connecting is under way
    // is one of the orders it asks about, rightly (CI once placed it there): this test
    // counts those questions, so the trading starts once both venues have reconciled.
    run_until(&mut engine, "both venues to reconcile after connecting", |e| ["maker", "hedge"].iter().all(|v| reconciliations(e, v) >= 2));
    maker_burst(&ex, &mut engine, || {});
    assert_hedged_once(&ex, &mut engine, "binance-usdm", "BTCUSDT");
    let hedge = ex.account("binance-usdm");
    assert_eq!(calls(&hedge, "GET /fapi/v1/order"), 0, "no query was needed without faults");
    // What the recommend-mode test looks for is there in live mode.
    assert!(!order_requests(&hedge).is_empty() && !order_requests(&ex.account("binance-spot")).is_empty(), "{hedge}");
    assert_eq!(calls(&ex.account("binance-spot"), "WS userDataStream.subscribe.signature"), 1, "garbage did not break the connection");
    let _ = engine.controller().send(Control::Shutdown);
}

#[test]
fn every_fill_is_hedged_once_through_faults() {
    let ex = Exchange::start();
    let mut engine = start(&ex, "binance-usdm", "BTCUSDT");
    // The hedge venue: one 429, one 5xx that did nothing, one that executed but whose
    // answer was lost. The maker venue pushes everything twice.
    ex.faults("binance-usdm", json!({"rate_limit": 1, "fail_orders": 1, "unknown_orders": 1}));
    ex.faults("binance-spot", json!({"duplicate_pushes": true, "garbage": 3}));
    maker_burst(&ex, &mut engine, || {
        // The private stream drops between the two bursts; the second one's pushes are lost.
        ex.disconnect("binance-spot");
        ex.faults("binance-spot", json!({"duplicate_pushes": true, "drop_pushes": 1000}));
    });
    // Pushes come back for new events; the lost ones are found by the reconciliation.
    ex.faults("binance-spot", json!({"duplicate_pushes": true}));
    assert_hedged_once(&ex, &mut engine, "binance-usdm", "BTCUSDT");
    let hedge = ex.account("binance-usdm");
    assert!(calls(&hedge, "GET /fapi/v1/order") >= 2, "orders of unknown status were queried by client id: {hedge}");
    let maker = ex.account("binance-spot");
    assert!(calls(&maker, "GET /api/v3/myTrades") >= 2, "the reconnect was reconciled from the trade list: {maker}");
    let _ = engine.controller().send(Control::Shutdown);
}

/// `[live] busy_poll`, the way the tick-to-trade figures are taken: the engine's wait spins
/// on the sockets and reads its deadline between rounds. The same faults as above, every
/// fill hedged once, and the engine's waits between the steps still end when due.
#[test]
fn every_fill_is_hedged_once_with_busy_polling() {
    let ex = Exchange::start();
    Exchange::set_credentials();
    let plugin = plugin_host();
    let text = config_text(&ex, "binance-usdm", "BTCUSDT").replace("mode = \"live\"", "mode = \"live\"\n[live]\nbusy_poll = true");
    let mut engine = e2e::engine(&text, &plugin, &[("scripted", &guest("scripted")), ("hedger", &strategy("hedger"))]);
    ex.faults("binance-usdm", json!({"rate_limit": 1, "fail_orders": 1, "unknown_orders": 1}));
    ex.faults("binance-spot", json!({"duplicate_pushes": true}));
    maker_burst(&ex, &mut engine, || {});
    assert_hedged_once(&ex, &mut engine, "binance-usdm", "BTCUSDT");
    let _ = engine.controller().send(Control::Shutdown);
}

#[test]
fn hedger_hedges_spot_fills_on_okx_swaps() {
    let ex = Exchange::start();
    let mut engine = start(&ex, "okx", "BTC-USDT-SWAP");
    ex.faults("okx", json!({"fail_orders": 1}));
    maker_burst(&ex, &mut engine, || {});
    assert_hedged_once(&ex, &mut engine, "okx", "BTC-USDT-SWAP");
    let hedge = ex.account("okx");
    assert!(calls(&hedge, "GET /api/v5/trade/order") >= 1, "the 5xx placement was queried before it was resent: {hedge}");
    let _ = engine.controller().send(Control::Shutdown);
}

/// The runtime binary running a config, with what it prints collected line by line.
struct Process {
    child: std::process::Child,
    rx: std::sync::mpsc::Receiver<String>,
    lines: Vec<String>,
}

impl Process {
    fn spawn(config: &std::path::Path, state: &std::path::Path) -> Process {
        Process::spawn_with(config, state, &[], "runtime=debug,info")
    }

    fn spawn_with(config: &std::path::Path, state: &std::path::Path, extra: &[&str], log: &str) -> Process {
        use std::io::{BufRead, BufReader};
        use std::process::Stdio;
        let mut child = runtime_with_credentials(config, state, e2e::KEY, e2e::SECRET, e2e::PASSPHRASE)
            .args(["--log-format", "json"])
            .args(extra)
            .env("RUNTIME_LOG", log)
            .env("RUNTIME_CONTROL_TOKEN", e2e::control::TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let streams: Vec<Box<dyn std::io::Read + Send>> =
            [child.stderr.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>), child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>)].into_iter().flatten().collect();
        for stream in streams {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Process { child, rx, lines: Vec::new() }
    }

    /// Reads what the runtime prints until `done` holds (checked on every line, and at
    /// least every 100 ms for conditions on the exchange's side); 60 s bound a failure.
    fn wait(&mut self, what: &str, done: impl FnMut(&[String]) -> bool) {
        let all = self.wait_for(Duration::from_secs(60), what, done);
        assert!(all, "timed out waiting for {what}; the runtime printed:\n{}", self.lines.join("\n"));
    }

    fn wait_for(&mut self, limit: Duration, what: &str, mut done: impl FnMut(&[String]) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while !done(&self.lines) {
            if Instant::now() >= deadline {
                return false;
            }
            match self.rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => self.lines.push(line),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(_) => panic!("the runtime exited while waiting for {what}:\n{}", self.lines.join("\n")),
            }
        }
        true
    }

    fn connected(&mut self) {
        self.wait("both private streams to be reconciled", |l| l.iter().filter(|l| l.contains("reconciled after connecting")).count() >= 2);
    }

    /// Waits for the process to end by itself: its exit status and everything it printed.
    fn exit(&mut self) -> (std::process::ExitStatus, String) {
        let exit = self.child.wait().unwrap_or_else(|e| panic!("{e}"));
        self.lines.extend(self.rx.iter());
        (exit, self.lines.join("\n"))
    }

    fn signal(&mut self, signal: &str) -> String {
        let pid = self.child.id().to_string();
        let status = std::process::Command::new("kill").args([signal, &pid]).status().unwrap_or_else(|e| panic!("{e}"));
        assert!(status.success());
        let exit = self.child.wait().unwrap_or_else(|e| panic!("{e}"));
        self.lines.extend(self.rx.iter());
        let all = self.lines.join("\n");
        if signal == "-INT" {
            assert!(exit.success(), "the runtime exited with {exit:?}:\n{all}");
        }
        all
    }
}

/// The binary, in live mode, with every log at trace (the WebSocket library's frames
/// included, were they let through: an OKX login carries the key and passphrase): it
/// connects, trades and hedges, and shuts down on SIGINT; no key, secret or passphrase
/// appears anywhere in what it printed.
#[test]
fn the_runtime_binary_trades_live_and_never_logs_a_secret() {
    let ex = Exchange::start();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = dir.path().join("live.toml");
    std::fs::write(&config, config_text(&ex, "okx", "BTC-USDT-SWAP")).unwrap_or_else(|e| panic!("{e}"));
    let mut runtime = Process::spawn_with(&config, &dir.path().join("state.redb"), &[], "trace");
    runtime.connected();
    until_maker_orders_rest(&ex, |rested| runtime.wait_for(Duration::from_secs(1), "the maker orders", |_| rested()));
    ex.print("binance-spot", "BTCUSDT", "30040", "1", "BUY");
    ex.print("binance-spot", "BTCUSDT", "29975", "1", "SELL");
    runtime.wait("the hedge", |_| net(&ex.account("okx"), "BTC-USDT-SWAP") == d("0.035"));
    let all = runtime.signal("-INT");
    for secret in [e2e::KEY, e2e::SECRET, e2e::PASSPHRASE] {
        assert!(!all.contains(secret), "a secret was printed:\n{all}");
    }
    assert!(all.contains("instrument rules loaded from the venue"), "{all}");
    // The maker buy at 29970 was still resting: cancelled on the way out.
    assert_eq!(ex.account("binance-spot")["openOrders"], json!([]), "open orders cancelled at shutdown");
}

/// `[live] engine_core`: the binary's engine, on its main thread, runs on that core alone,
/// and every other thread of the process (the epoch ticker, the control server, the
/// output readers...) on the other cores. A core the process may not use stops the start
/// with one error naming it.
#[test]
fn the_engine_has_its_core_to_itself_and_a_core_it_may_not_use_is_refused() {
    let ex = Exchange::start();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = dir.path().join("live.toml");
    let state = dir.path().join("state.redb");
    let pinned = |core: usize| config_text(&ex, "binance-usdm", "BTCUSDT").replace("mode = \"live\"", &format!("mode = \"live\"\n[live]\nengine_core = {core}"));
    std::fs::write(&config, pinned(100_000)).unwrap_or_else(|e| panic!("{e}"));
    let (exit, all) = Process::spawn(&config, &state).exit();
    assert!(!exit.success() && all.contains("[live] engine_core = 100000: this process may only run on cores"), "{exit:?}\n{all}");
    let allowed = runtime::affinity::allowed_cores();
    let core = *allowed.last().unwrap_or_else(|| panic!("no core allowed"));
    std::fs::write(&config, pinned(core)).unwrap_or_else(|e| panic!("{e}"));
    let mut runtime = Process::spawn(&config, &state);
    if allowed.len() < 2 {
        let (exit, all) = runtime.exit();
        assert!(!exit.success() && all.contains("it is the only core this process may run on"), "{exit:?}\n{all}");
        return;
    }
    runtime.connected();
    let pid = runtime.child.id();
    // The Ctrl-C handler's thread, the last the binary starts before it runs, is started
    // from the engine's thread: it too must be off the core.
    let named = |name: &str| {
        std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten().any(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|n| n.trim() == name))
    };
    assert!(runtime.wait_for(Duration::from_secs(30), "the ctrl-c thread", |_| named("ctrl-c")), "no ctrl-c thread");
    // The engine's thread leaves its core for the instant it starts a thread, so that the
    // new one starts elsewhere (a reconciliation's first page read off the thread, right
    // after connecting): the masks are read until they hold, for at most 30 s. One that
    // stays wrong fails, with what was read.
    let masks = || -> Result<usize, String> {
        let mut others = 0;
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).map_err(|e| e.to_string())?;
        for task in tasks.flatten() {
            let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
            let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_string()).unwrap_or_default();
            let cores = cpu_list(&field("Cpus_allowed_list:"));
            if task.file_name().to_str() == Some(&pid.to_string()) {
                if cores != vec![core] {
                    return Err(format!("the engine's thread may run on {cores:?}, not on core {core} alone"));
                }
            } else if cores.is_empty() || cores.contains(&core) {
                return Err(format!("thread {:?} may run on {cores:?}, the engine's core {core} among them", field("Name:")));
            } else {
                others += 1;
            }
        }
        if others < 3 {
            return Err(format!("the runtime's other threads: {others}"));
        }
        Ok(others)
    };
    let held = runtime.wait_for(Duration::from_secs(30), "every thread on its cores", |_| masks().is_ok());
    assert!(held, "{:?}", masks());
    let all = runtime.signal("-INT");
    assert!(all.contains(&format!("the engine's thread has core {core} to itself")), "{all}");
}

/// Ctrl-C while the runtime is still connecting (here to a venue whose REST server
/// accepts the connection and never answers) ends it at once, saying why, with the
/// shell's code for an interrupt, instead of the signal's default death without a word.
#[test]
fn an_interrupt_while_connecting_ends_the_runtime_at_once_and_says_so() {
    let ex = Exchange::start();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let silent_addr = silent.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let (accepted_tx, accepted) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Held open, unanswered, until the test ends.
        let mut held = Vec::new();
        for stream in silent.incoming().flatten() {
            held.push(stream);
            let _ = accepted_tx.send(());
        }
    });
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = dir.path().join("live.toml");
    let text = config_text(&ex, "binance-usdm", "BTCUSDT");
    let hedge_rest = format!("rest_url = \"http://{}\"", ex.addr("binance-usdm"));
    assert_eq!(text.matches(&hedge_rest).count(), 1, "{text}");
    std::fs::write(&config, text.replace(&hedge_rest, &format!("rest_url = \"http://{silent_addr}\""))).unwrap_or_else(|e| panic!("{e}"));
    let mut runtime = Process::spawn(&config, &dir.path().join("state.redb"));
    accepted.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|e| panic!("the runtime never called the silent venue: {e}"));
    let pid = runtime.child.id().to_string();
    let status = std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success());
    let (exit, all) = runtime.exit();
    assert_eq!(exit.code(), Some(130), "{exit:?}\n{all}");
    assert!(all.contains("interrupted while starting: exiting now; no strategy has been handed an event, so no order was sent"), "{all}");
}

/// A kernel CPU list ("0-2,4") as the cores in it.
fn cpu_list(list: &str) -> Vec<usize> {
    list.split(',')
        .filter(|r| !r.is_empty())
        .flat_map(|range| {
            let (low, high) = range.split_once('-').unwrap_or((range, range));
            let (low, high) = (low.trim().parse().unwrap_or(usize::MAX), high.trim().parse().unwrap_or(0));
            low..=high
        })
        .collect()
}

/// The binary hedging on USD-M: connected, the maker orders resting, the market buys
/// through the maker's sells (0.06) and the hedge is on the exchange's books.
fn first_run_hedges_a_buy(ex: &Exchange, config: &std::path::Path, state: &std::path::Path) -> Process {
    let mut first = Process::spawn(config, state);
    first.connected();
    until_maker_orders_rest(ex, |rested| first.wait_for(Duration::from_secs(1), "the maker orders", |_| rested()));
    ex.print("binance-spot", "BTCUSDT", "30040", "1", "BUY");
    first.wait("the first hedge", |_| net(&ex.account("binance-usdm"), "BTCUSDT") == d("0.06"));
    first
}

/// kill -9 after the first hedge, fills while it is down, restart: every maker fill is
/// hedged, none twice. Orders to live venues are journalled before they leave and the
/// batch that sent them is checkpointed at once; the restart reconciles from there.
#[test]
fn a_killed_runtime_restarts_without_losing_or_repeating_a_hedge() {
    let ex = Exchange::start();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = dir.path().join("live.toml");
    let text = config_text(&ex, "binance-usdm", "BTCUSDT").replace("mode = \"live\"", "mode = \"live\"\n[store]\nbackend = \"embedded\"\ncheckpoint_every = 1000000");
    std::fs::write(&config, text).unwrap_or_else(|e| panic!("{e}"));
    let state = dir.path().join("state.redb");
    let mut first = first_run_hedges_a_buy(&ex, &config, &state);
    first.signal("-KILL");
    // The market goes on while the runtime is down.
    ex.print("binance-spot", "BTCUSDT", "29975", "1", "SELL");
    let mut second = Process::spawn(&config, &state);
    second.connected();
    second.wait("the fills made while down to be hedged", |_| net(&ex.account("binance-usdm"), "BTCUSDT") == d("0.035"));
    second.wait("the resume", |l| l.iter().any(|l| l.contains("resumed from checkpoint")));
    // Let it settle: every reconciliation done, and the hedge is still exact.
    second.wait("a quiet second", |l| l.iter().filter(|l| l.contains("reconciled")).count() >= 3);
    let all = second.signal("-INT");
    let hedge = ex.account("binance-usdm");
    assert_eq!(net(&hedge, "BTCUSDT"), d("0.035"), "hedged exactly once across the crash: {hedge}\n{all}");
    assert_eq!(net(&ex.account("binance-spot"), "BTCUSDT"), d("-0.035"));
}

/// The runtime's copy of a live venue's book, as strategies would read it.
fn runtime_book(engine: &Engine, instrument: u32) -> e2e::BookSides {
    let market = engine.market().lock();
    match market.book(runtime::model::InstrumentId(instrument), 10, 0) {
        Some(b) => (b.bids.iter().map(|l| (l.price, l.qty)).collect(), b.asks.iter().map(|l| (l.price, l.qty)).collect()),
        None => (Vec::new(), Vec::new()),
    }
}

/// Books from snapshot plus diffs on all three venues match the exchange's; a diff that
/// never arrives is noticed by its sequence number and the book rebuilt from a new
/// snapshot (Binance) or a new subscription (OKX, whose checksum is checked too).
#[test]
fn live_books_follow_the_exchange_through_a_gap() {
    let ex = Exchange::start();
    let mut engine = start(&ex, "okx", "BTC-USDT-SWAP");
    let same = |engine: &Engine, venue: &str, symbol: &str, instrument: u32| {
        let ours = runtime_book(engine, instrument);
        !ours.0.is_empty() && ours == ex.book(venue, symbol, 10)
    };
    run_until(&mut engine, "the books to be synced", |e| same(e, "binance-spot", "BTCUSDT", 0) && same(e, "okx", "BTC-USDT-SWAP", 1));
    for (venue, symbol, instrument) in [("binance-spot", "BTCUSDT", 0), ("okx", "BTC-USDT-SWAP", 1)] {
        ex.faults(venue, json!({"book_gaps": 1}));
        // The first print's diff is lost; the second's shows the gap.
        ex.print(venue, symbol, "30100", "0.5", "BUY");
        ex.print(venue, symbol, "30200", "0.5", "BUY");
        run_until(&mut engine, "the book to be rebuilt after the gap", |e| same(e, venue, symbol, instrument) && ex.book(venue, symbol, 1).1[0].0 > d("30200"));
        // Two diffs swapped: the later one shows a gap, the earlier one is then stale.
        ex.faults(venue, json!({"book_reorder": true}));
        ex.print(venue, symbol, "30300", "0.5", "BUY");
        ex.print(venue, symbol, "30400", "0.5", "BUY");
        run_until(&mut engine, "the book to be rebuilt after diffs out of order", |e| same(e, venue, symbol, instrument) && ex.book(venue, symbol, 1).1[0].0 > d("30400"));
    }
    assert!(calls(&ex.account("binance-spot"), "GET /api/v3/depth") >= 3, "a new snapshot after each gap");
    assert!(calls(&ex.account("okx"), "WS subscribe books") >= 3, "a new subscription after each gap");
    let _ = engine.controller().send(Control::Shutdown);
}

/// A 418 from the hedge venue (point 8): nothing more is sent to it (the limiter refuses
/// locally until the ban ends), each hedge on its way when the ban began is rejected with
/// the ban's end in its reason, and the hedger then waits for that end instead of trying
/// again into the ban every retry delay (1.7 s: a 10 s ban used to cost a rejection each
/// time); after it, the hedge goes out once and the fills are hedged exactly once.
#[test]
fn a_ban_stops_all_sending_to_that_venue() {
    let ex = Exchange::start();
    let mut engine = start(&ex, "binance-usdm", "BTCUSDT");
    run_until(&mut engine, "the books to be synced", |e| !runtime_book(e, 1).0.is_empty());
    ex.faults("binance-usdm", json!({"ban_secs": 10}));
    maker_burst(&ex, &mut engine, || {});
    let rejected = |e: &Engine| e.slots().iter().find(|s| s.name == "hedger").map_or(0, |s| s.stats.rejected);
    let placements = |ex: &Exchange| {
        let hedge = ex.account("binance-usdm");
        calls(&hedge, "POST /fapi/v1/order") + calls(&hedge, "POST /fapi/v1/batchOrders")
    };
    // The hedges already on their way when the first 418 came back reach the venue (one
    // per batch of maker fills, so at most one per fill: how the burst's frames fall into
    // reads decides how many), each answered 418 and rejected. Once every one of them is
    // back, nothing more may reach the venue until the ban ends: not the hedger's retries
    // (its retry delay is 1.7 s), which the limiter refuses without sending.
    run_until(&mut engine, "every hedge sent before the ban was known to be rejected", |e| rejected(e) > 0 && rejected(e) >= placements(&ex));
    let on_their_way = placements(&ex);
    assert!(on_their_way <= 5, "at most one hedge per maker fill before the 418 came back: {}", ex.account("binance-usdm"));
    run_for(&mut engine, Duration::from_secs(3), |_| false);
    let hedge = ex.account("binance-usdm");
    assert_eq!(placements(&ex), on_their_way, "after the 418, nothing reached the venue: {hedge}");
    assert_eq!(net(&hedge, "BTCUSDT"), Decimal::ZERO);
    assert_hedged_once(&ex, &mut engine, "binance-usdm", "BTCUSDT");
    // At most one hedge per maker fill can have been on its way before the hedger heard
    // of the ban; retries into it would add one every 1.7 s of the 10.
    assert!(rejected(&engine) <= 5, "the hedger tried again into the ban: {} rejections", rejected(&engine));
    let _ = engine.controller().send(Control::Shutdown);
}

/// A stop and a start with `--fresh` (what the runtime tells an operator to do after
/// changing the strategies) within the minute: the fill made before the start is history,
/// hedged once by the first run and never again by the second.
#[test]
fn a_fresh_start_does_not_hedge_fills_made_before_it() {
    let ex = Exchange::start();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = dir.path().join("live.toml");
    std::fs::write(&config, config_text(&ex, "binance-usdm", "BTCUSDT")).unwrap_or_else(|e| panic!("{e}"));
    let state = dir.path().join("state.redb");
    let mut first = first_run_hedges_a_buy(&ex, &config, &state);
    first.signal("-INT");
    // Binance spot takes a client id again only after its order FILLED: the maker's
    // orders of the second run are named anew, as a changed strategy's would be.
    let text = std::fs::read_to_string(&config).unwrap_or_else(|e| panic!("{e}")).replace("id = \"", "id = \"again-");
    std::fs::write(&config, text).unwrap_or_else(|e| panic!("{e}"));
    let mut second = Process::spawn_with(&config, &state, &["--fresh"], "runtime=debug,info");
    second.connected();
    until_maker_orders_rest(&ex, |rested| second.wait_for(Duration::from_secs(1), "the maker orders", |_| rested()));
    // A new fill after the start is hedged; had the old one been taken for new, the
    // net would pass 0.035 on the way to 0.095 and never settle there.
    ex.print("binance-spot", "BTCUSDT", "29975", "1", "SELL");
    second.wait("the new fill's hedge", |_| net(&ex.account("binance-usdm"), "BTCUSDT") == d("0.035"));
    second.wait("a quiet second", |l| l.iter().filter(|l| l.contains("reconciled")).count() >= 3);
    let all = second.signal("-INT");
    assert_eq!(net(&ex.account("binance-usdm"), "BTCUSDT"), d("0.035"), "{all}");
    assert_eq!(net(&ex.account("binance-spot"), "BTCUSDT"), d("-0.035"));
}

/// The host clock jumps 20 s behind the venue's: the hedge is refused with -1021, the
/// clock is resynced at once and the hedge, signed again, goes through (it used to wait
/// for the five-minute resync, every hedge refused meanwhile).
#[test]
fn a_clock_jump_is_resynced_at_the_first_timestamp_error() {
    let ex = Exchange::start();
    let mut engine = start(&ex, "binance-usdm", "BTCUSDT");
    run_until(&mut engine, "the books to be synced", |e| !runtime_book(e, 1).0.is_empty());
    ex.faults("binance-usdm", json!({"clock_ms": 20_000}));
    maker_burst(&ex, &mut engine, || {});
    assert_hedged_once(&ex, &mut engine, "binance-usdm", "BTCUSDT");
    let hedge = ex.account("binance-usdm");
    assert!(calls(&hedge, "GET /fapi/v1/time") >= 2, "the clock was resynced after the refusal: {hedge}");
    let hedger = engine.slots().iter().find(|s| s.name == "hedger").map(|s| s.stats.rejected);
    assert_eq!(hedger, Some(0), "no hedge was rejected");
    let _ = engine.controller().send(Control::Shutdown);
}

/// Point 1 of the containment issue, in live mode: an order whose price x qty overflows
/// a decimal is refused by the router with the bound named, and nothing reaches the venue.
#[test]
fn an_order_beyond_the_bounds_never_reaches_a_live_venue() {
    let ex = Exchange::start();
    Exchange::set_credentials();
    let config = format!(
        "mode = \"live\"\n{}\n[[strategy]]\nname = \"maker\"\ncomponent = \"scripted\"\nparams = {{ orders = [\n  {{ venue = \"maker\", symbol = \"BTCUSDT\", id = \"huge\", side = \"buy\", price = \"100000000000000000000\", qty = \"1000000000\" }},\n] }}\n",
        ex.venue_section("maker", "binance-spot", "BTCUSDT", "BTC")
    );
    let plugin = plugin_host();
    let mut engine = e2e::engine(&config, &plugin, &[("scripted", &guest("scripted"))]);
    let refused = |e: &Engine| e.slots()[0].stats.refused > 0;
    for _ in 0..60 {
        ex.print("binance-spot", "BTCUSDT", "30000", "0.001", "BUY");
        if run_for(&mut engine, Duration::from_secs(1), refused) {
            break;
        }
    }
    assert!(refused(&engine), "the scripted order was never refused: {:?}", engine.slots()[0].stats);
    assert_eq!(engine.slots()[0].status, runtime::stats::SlotStatus::Running);
    let maker = ex.account("binance-spot");
    assert_eq!(calls(&maker, "POST /api/v3/order"), 0, "nothing was sent: {maker}");
    assert_eq!(maker["openOrders"], json!([]));
    let _ = engine.controller().send(Control::Shutdown);
}

/// `text` with every live venue reconciling every `ms`.
fn with_reconcile_interval(text: &str, ms: u64) -> String {
    text.replace("[venue.connection]\n", &format!("[venue.connection]\nreconcile_interval_ms = {ms}\n"))
}

/// The runtime with the hedger on Binance USD-M, reconciling every second, its maker
/// orders resting.
fn reconciling_every_second(ex: &Exchange) -> Engine {
    Exchange::set_credentials();
    let plugin = plugin_host();
    let text = with_reconcile_interval(&config_text(ex, "binance-usdm", "BTCUSDT"), 1000);
    let mut engine = e2e::engine(&text, &plugin, &[("scripted", &guest("scripted")), ("hedger", &strategy("hedger"))]);
    until_maker_orders_rest(ex, |rested| run_for(&mut engine, Duration::from_secs(1), |_| rested()));
    engine
}

/// The market trades through every maker order: the maker sells 0.06 and buys 0.025.
fn trade_through_the_maker_orders(ex: &Exchange) {
    ex.print("binance-spot", "BTCUSDT", "30040", "1", "BUY");
    ex.print("binance-spot", "BTCUSDT", "29975", "1", "SELL");
}

/// Point 3 of the exactly-once issue: every push on both venues is lost while the
/// connections stay up (no reconnect to trigger a reconciliation). The maker fills are
/// found by the periodic reconciliation and hedged; the hedges' final states, answered
/// ahead of their fills, wait for the fills from the trade list: the runtime's position
/// agrees with the exchange's, and nothing is hedged twice.
#[test]
fn pushes_lost_on_live_connections_are_found_by_the_periodic_reconciliation() {
    let ex = Exchange::start();
    let mut engine = reconciling_every_second(&ex);
    ex.faults("binance-spot", json!({"drop_pushes": 100_000}));
    ex.faults("binance-usdm", json!({"drop_pushes": 100_000}));
    trade_through_the_maker_orders(&ex);
    assert_hedged_once(&ex, &mut engine, "binance-usdm", "BTCUSDT");
    let maker = ex.account("binance-spot");
    assert_eq!(calls(&maker, "WS userDataStream.subscribe.signature"), 1, "no reconnect: the periodic reconciliation found the fills: {maker}");
    assert!(calls(&ex.account("binance-usdm"), "GET /fapi/v1/userTrades") >= 1, "the hedges' fills were read from the trade list");
    let _ = engine.controller().send(Control::Shutdown);
}

/// The maker venue's clock jumps 20 s ahead while its pushes are lost: the fills are in
/// its trade list only, and the reconciliation's first page is refused with -1021. The
/// page is read again once the clock is resynced, not left for the five-minute resync
/// (every reconciliation until then would be refused the same way, and the fills would
/// wait for it unhedged).
#[test]
fn a_trade_list_page_refused_for_its_timestamp_is_read_again_after_a_resync() {
    let ex = Exchange::start();
    let mut engine = reconciling_every_second(&ex);
    // The clock moves just after a reconciliation ends, so the first signed call to meet it
    // is the next one's trade list page (a second later), not a call of one under way.
    let before = reconciliations(&engine, "maker");
    assert!(run_for(&mut engine, Duration::from_secs(10), |e| reconciliations(e, "maker") > before), "a reconciliation of the maker ended");
    let resyncs_before = calls(&ex.account("binance-spot"), "GET /api/v3/time");
    ex.faults("binance-spot", json!({"drop_pushes": 100_000, "clock_ms": 20_000}));
    trade_through_the_maker_orders(&ex);
    assert_hedged_once(&ex, &mut engine, "binance-usdm", "BTCUSDT");
    let maker = ex.account("binance-spot");
    assert!(calls(&maker, "GET /api/v3/time") > resyncs_before, "the maker's clock was resynced after the refused page: {maker}");
    assert_eq!(calls(&maker, "WS userDataStream.subscribe.signature"), 1, "no reconnect: the trade list found the fills: {maker}");
    // The runtime's own count of answers: the page was refused (400, -1021), and the
    // resync it led to came before the reconciliation's next signed call, the open orders,
    // which was not refused (had the page not been read again, that call would have met
    // the same refusal and resynced instead).
    let answers = |path: &str, status: u16| {
        let market = engine.market().lock();
        let metrics = market.venues.iter().find(|v| v.name() == "maker").and_then(|v| v.metrics()).unwrap_or_else(|| panic!("the maker's metrics"));
        metrics.requests.iter().filter(|((method, endpoint, code), _)| method == "GET" && endpoint.ends_with(path) && *code == status).map(|(_, n)| *n).sum::<u64>()
    };
    assert!(answers("/api/v3/myTrades", 400) >= 1, "the trade list page was refused for its timestamp");
    assert_eq!(answers("/api/v3/openOrders", 400), 0, "the refused page resynced the clock itself");
    let _ = engine.controller().send(Control::Shutdown);
}

/// The maker venue's trade list shows a fill only 5 s after it happened, and the pushes
/// are lost: the reconciliations that run meanwhile (every second) see nothing and move
/// their starting point on, and the fills must still be found when they appear, by the
/// margin each reconciliation looks back (10 s). Without it they would never be hedged.
#[test]
fn a_fill_that_reaches_the_trade_list_late_is_still_found() {
    let ex = Exchange::start();
    let mut engine = reconciling_every_second(&ex);
    ex.faults("binance-spot", json!({"drop_pushes": 100_000, "trade_list_lag_ms": 5_000}));
    trade_through_the_maker_orders(&ex);
    assert_hedged_once(&ex, &mut engine, "binance-usdm", "BTCUSDT");
    let maker = ex.account("binance-spot");
    assert_eq!(calls(&maker, "WS userDataStream.subscribe.signature"), 1, "no reconnect: the trade list found the fills: {maker}");
    let _ = engine.controller().send(Control::Shutdown);
}

/// Point 2: kill -9 while a hedge is partly filled and the runtime has not heard of its
/// fill (the hedge venue's pushes are lost; the hedge filled 0.004 of 0.01 and expired).
/// The restart must not take the fill for someone else's: its owner comes from the
/// checkpoint, so the strategy is told 0.004 filled and hedges the other 0.006, not 0.01.
#[test]
fn a_kill_during_a_partly_filled_hedge_does_not_over_hedge_on_restart() {
    let ex = Exchange::start();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = dir.path().join("live.toml");
    let text = config_text(&ex, "binance-usdm", "BTCUSDT").replace("mode = \"live\"", "mode = \"live\"\n[store]\nbackend = \"embedded\"\ncheckpoint_every = 1000000");
    std::fs::write(&config, with_reconcile_interval(&text, 3_600_000)).unwrap_or_else(|e| panic!("{e}"));
    let state = dir.path().join("state.redb");
    let mut first = Process::spawn(&config, &state);
    first.connected();
    until_maker_orders_rest(&ex, |rested| first.wait_for(Duration::from_secs(1), "the maker orders", |_| rested()));
    ex.faults("binance-usdm", json!({"drop_pushes": 100_000, "partial_fill": "0.004"}));
    // Through the first maker sell only (0.01 at 30010): one hedge of 0.01.
    ex.print("binance-spot", "BTCUSDT", "30010", "1", "BUY");
    first.wait("the partial hedge", |_| net(&ex.account("binance-usdm"), "BTCUSDT") == d("0.004"));
    first.signal("-KILL");
    ex.faults("binance-usdm", json!({}));
    let mut second = Process::spawn(&config, &state);
    second.connected();
    second.wait("the rest of the hedge", |_| net(&ex.account("binance-usdm"), "BTCUSDT") == d("0.01"));
    second.wait("a quiet second", |l| l.iter().filter(|l| l.contains("reconciled")).count() >= 4);
    let all = second.signal("-INT");
    assert_eq!(net(&ex.account("binance-usdm"), "BTCUSDT"), d("0.01"), "hedged exactly once across the crash: {}\n{all}", ex.account("binance-usdm"));
    assert_eq!(net(&ex.account("binance-spot"), "BTCUSDT"), d("-0.01"));
}

/// Point 4: reconciliation reads every page. More fills than one page holds (120 on OKX,
/// whose pages are 100 newest first; 1,050 on Binance USD-M, 1,000 oldest first) come
/// back whole and once each from the adapters, over HTTP from the local exchange.
#[test]
fn fills_are_read_back_page_by_page() {
    use runtime::model::{OrderRequest, OrderType, SelfTradePrevention, Side, TimeInForce};
    use runtime::venue::live::protocol::{Exchange as _, NewOrder};
    use runtime::secrets::Secret;
    let ex = Exchange::start();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    let sell = |symbol: &str, id: &str, qty: &str| NewOrder {
        symbol: symbol.into(),
        request: OrderRequest {
            client_order_id: id.into(),
            instrument: runtime::model::InstrumentId(0),
            side: Side::Sell,
            order_type: OrderType::Limit { price: d("30010"), time_in_force: TimeInForce::Gtc },
            qty: d(qty),
        },
        stp: SelfTradePrevention::ExpireTaker,
        trigger: None,
    };
    let distinct = |reports: &[runtime::venue::report::OrderReport]| {
        let ids: std::collections::HashSet<&str> = reports.iter().filter_map(|r| r.execution.as_ref().map(|e| e.trade_id.as_str())).collect();
        ids.len()
    };

    let okx_addr = ex.addr("okx");
    let okx = runtime::venue::okx::rest::Okx::new(
        runtime::venue::okx::rest::Endpoints { rest: format!("http://{okx_addr}"), private_ws: String::new(), public_ws: String::new() },
        runtime::venue::okx::rest::Credentials { api_key: Secret::new(e2e::KEY), secret: Secret::new(e2e::SECRET), passphrase: Secret::new(e2e::PASSPHRASE) },
        "cash",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    rt.block_on(okx.server_time()).unwrap_or_else(|e| panic!("{e}"));
    let placed = rt.block_on(okx.place(&[sell("BTC-USDT", "pages1", "0.5")]));
    assert!(placed[0].is_ok(), "{placed:?}");
    for _ in 0..120 {
        ex.print("okx", "BTC-USDT", "30010", "0.0001", "BUY");
    }
    let fills = rt.block_on(okx.fills_since("BTC-USDT", 0)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((fills.len(), distinct(&fills)), (120, 120), "every OKX fill, once");
    assert!(calls(&ex.account("okx"), "GET /api/v5/trade/fills") >= 2, "more than one page was read");

    let usdm_addr = ex.addr("binance-usdm");
    let usdm = runtime::venue::binance::rest::Binance::new(
        runtime::venue::binance::rest::Flavor::UsdM,
        runtime::venue::binance::rest::Endpoints { rest: format!("http://{usdm_addr}"), private_ws: String::new(), public_ws: String::new() },
        Secret::new(e2e::KEY),
        Secret::new(e2e::SECRET),
        5000,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    rt.block_on(usdm.server_time()).unwrap_or_else(|e| panic!("{e}"));
    let placed = rt.block_on(usdm.place(&[sell("BTCUSDT", "pages2", "2")]));
    assert!(placed[0].is_ok(), "{placed:?}");
    let printer = ex.printer("binance-usdm");
    for _ in 0..1050 {
        printer.print("BTCUSDT", "30010", "0.001", "BUY");
    }
    let fills = rt.block_on(usdm.fills_since("BTCUSDT", 0)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((fills.len(), distinct(&fills)), (1050, 1050), "every USD-M fill, once");
    assert!(calls(&ex.account("binance-usdm"), "GET /fapi/v1/userTrades") >= 2, "more than one page was read");
}

/// Point 9: a wrong secret is refused at the first signed request, and the runtime stops
/// there with the venue's code and a non-zero exit, instead of saying "strategy started"
/// and retrying the private stream forever; the secret is printed nowhere.
#[test]
fn bad_credentials_stop_the_start_with_the_venues_code() {
    let ex = Exchange::start();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = dir.path().join("live.toml");
    std::fs::write(&config, config_text(&ex, "binance-usdm", "BTCUSDT")).unwrap_or_else(|e| panic!("{e}"));
    let wrong = "WrongSecretWrongSecretWrongSecretWrongSecretWrongSecretWrongSec";
    let out = runtime_with_credentials(&config, &dir.path().join("state.redb"), e2e::KEY, wrong, e2e::PASSPHRASE)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("credentials refused by the venue") && all.contains("-1022"), "the venue's code is named: {all}");
    assert!(!all.contains("strategy started"), "{all}");
    assert!(!all.contains(wrong) && !all.contains(e2e::SECRET), "a secret was printed: {all}");
}

/// The binary on `config`, every log at trace (unless the caller says otherwise), with
/// these credentials in the variables the config names.
fn runtime_with_credentials(config: &std::path::Path, state: &std::path::Path, key: &str, secret: &str, passphrase: &str) -> std::process::Command {
    let mut command = std::process::Command::new(e2e::runtime_binary());
    command
        .arg("--config")
        .arg(config)
        .arg("--state")
        .arg(state)
        .arg("--strategies")
        .arg(strategy("hedger"))
        .arg(guest("scripted"))
        .args(["--no-watch"])
        .env("RUNTIME_LOG", "trace")
        .env("E2E_LIVE_KEY", key)
        .env("E2E_LIVE_SECRET", secret)
        .env("E2E_LIVE_PASSPHRASE", passphrase);
    command
}

/// An API key that cannot travel in an HTTP header (here pasted in two lines) would fail
/// every request: the start stops at once, naming the venue and the
/// key, not its text, on both venue families.
#[test]
fn a_key_that_cannot_be_a_header_stops_the_start() {
    let ex = Exchange::start();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = dir.path().join("live.toml");
    for (hedge_kind, hedge_symbol, variable) in [("binance-usdm", "BTCUSDT", "E2E_LIVE_KEY"), ("okx", "BTC-USDT-SWAP", "E2E_LIVE_PASSPHRASE")] {
        // The maker (Binance spot) takes the key as it is; the OKX hedge gets the broken
        // passphrase only, so its check is the one that speaks.
        let two_lines = |text: &str| format!("{}\n{}", &text[..text.len() / 2], &text[text.len() / 2..]);
        let maker_key = if variable == "E2E_LIVE_KEY" { two_lines(e2e::KEY) } else { e2e::KEY.to_string() };
        let passphrase = if variable == "E2E_LIVE_PASSPHRASE" { two_lines(e2e::PASSPHRASE) } else { e2e::PASSPHRASE.to_string() };
        std::fs::write(&config, config_text(&ex, hedge_kind, hedge_symbol)).unwrap_or_else(|e| panic!("{e}"));
        let out = runtime_with_credentials(&config, &dir.path().join("state.redb"), &maker_key, e2e::SECRET, &passphrase)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        // Bounded: a runtime that started anyway is a failure, not a hang.
        let pid = out.id().to_string();
        let (done, ended) = std::sync::mpsc::channel();
        std::thread::spawn(move || done.send(out.wait_with_output()));
        let out = ended.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| {
            let _ = std::process::Command::new("kill").args(["-KILL", &pid]).status();
            panic!("{hedge_kind}: the runtime started with a key that cannot be a header")
        });
        let out = out.unwrap_or_else(|e| panic!("{e}"));
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success(), "{all}");
        let what = if variable == "E2E_LIVE_KEY" { "the API key cannot be sent in an HTTP header" } else { "the passphrase cannot be sent in an HTTP header" };
        assert!(all.contains(what), "{hedge_kind}: {all}");
        // The passphrase's second half ("ssphrase") is in the message's own words.
        for printed in [e2e::KEY, &e2e::KEY[..32], &e2e::KEY[32..], e2e::PASSPHRASE, &e2e::PASSPHRASE[..8]] {
            assert!(!all.contains(printed), "{hedge_kind}: a secret was printed: {all}");
        }
        assert!(!all.contains("strategy started"), "{hedge_kind}: {all}");
    }
}

/// Point 6: a hedge held by the venue past our request timeout, then executed late. The
/// client times out (10 s), the query finds no order, the hedge is sent again with the
/// same id and fills; the late original must then be refused by the venue (its receive
/// window, or OKX's `expTime`, has passed), so the fills are hedged exactly once.
fn late_execution_is_refused(hedge_kind: &str, hedge_symbol: &str) {
    let ex = Exchange::start();
    let mut engine = start(&ex, hedge_kind, hedge_symbol);
    run_until(&mut engine, "the books to be synced", |e| !runtime_book(e, 1).0.is_empty());
    ex.faults(hedge_kind, json!({"late_order_ms": 11_000}));
    maker_burst(&ex, &mut engine, || {});
    assert_hedged_once(&ex, &mut engine, hedge_kind, hedge_symbol);
    // The late original is processed 11 s after it was sent, whatever the hedge did
    // meanwhile; the exchange says when it has been.
    run_until(&mut engine, "the late original to be processed", |_| ex.account(hedge_kind)["lateServed"] == 1);
    let hedge = ex.account(hedge_kind);
    let placements = calls(&hedge, "POST /fapi/v1/order") + calls(&hedge, "POST /fapi/v1/batchOrders") + calls(&hedge, "POST /api/v5/trade/order") + calls(&hedge, "POST /api/v5/trade/batch-orders");
    assert!(placements >= 2, "the hedge was sent again after the timeout: {hedge}");
    assert_eq!(net(&hedge, hedge_symbol), d("0.035"), "the late original did not execute: {hedge}");
    let _ = engine.controller().send(Control::Shutdown);
}

#[test]
fn a_late_execution_after_a_timeout_is_refused_on_binance() {
    late_execution_is_refused("binance-usdm", "BTCUSDT");
}

#[test]
fn a_late_execution_after_a_timeout_is_refused_on_okx() {
    late_execution_is_refused("okx", "BTC-USDT-SWAP");
}

/// Point 7: the orders of one strategy call leave together, in USD-M batches of up to 5
/// (six orders: one batch of five and one single order), journalled to the store first.
#[test]
fn orders_given_together_go_out_in_usdm_batches() {
    let ex = Exchange::start();
    Exchange::set_credentials();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = format!(
        "mode = \"live\"\n[risk]\nmax_order_notional = \"1000000\"\n{}\n[[strategy]]\nname = \"maker\"\ncomponent = \"scripted\"\nparams = {{ orders = [\n{}] }}\n",
        ex.venue_section("perp", "binance-usdm", "BTCUSDT", "BTC"),
        (1..=6).map(|i| format!("  {{ venue = \"perp\", symbol = \"BTCUSDT\", id = \"g{i}\", side = \"sell\", price = \"{}\", qty = \"0.001\" }},\n", 30100 + i * 10)).collect::<String>()
    );
    let plugin = plugin_host();
    let mut engine = e2e::engine(&config, &plugin, &[("scripted", &guest("scripted"))]);
    let store = runtime::store::embedded::Embedded::open(&dir.path().join("state.redb")).unwrap_or_else(|e| panic!("{e}"));
    engine.attach_store(Box::new(store), 1_000_000).unwrap_or_else(|e| panic!("{e}"));
    let rested = || ex.account("binance-usdm")["openOrders"].as_array().is_some_and(|o| o.len() == 6);
    for _ in 0..60 {
        ex.print("binance-usdm", "BTCUSDT", "30000", "0.001", "BUY");
        if run_for(&mut engine, Duration::from_secs(1), |_| rested()) {
            break;
        }
    }
    assert!(rested(), "the six orders never rested: {}", ex.account("binance-usdm"));
    let account = ex.account("binance-usdm");
    assert_eq!((calls(&account, "POST /fapi/v1/batchOrders"), calls(&account, "POST /fapi/v1/order")), (1, 1), "one batch of five and one order: {account}");
    let _ = engine.controller().send(Control::Shutdown);
}

/// An order partly filled before a kill -9 and filled in full after the restart: its final
/// state is delivered at once, not held for the fills delivered before the crash (their
/// quantity is saved with the checkpoint), and never delivered short with an error after
/// the reconciliations give up on them.
#[test]
fn an_order_filled_across_a_restart_ends_without_waiting() {
    let ex = Exchange::start();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = dir.path().join("live.toml");
    let text = config_text(&ex, "binance-usdm", "BTCUSDT").replace("mode = \"live\"", "mode = \"live\"\n[store]\nbackend = \"embedded\"\ncheckpoint_every = 1000000");
    std::fs::write(&config, with_reconcile_interval(&text, 500)).unwrap_or_else(|e| panic!("{e}"));
    let state = dir.path().join("state.redb");
    let mut first = Process::spawn(&config, &state);
    first.connected();
    until_maker_orders_rest(&ex, |rested| first.wait_for(Duration::from_secs(1), "the maker orders", |_| rested()));
    // Half of the first maker sell (0.005 of 0.01 at 30010) fills and is hedged.
    ex.print("binance-spot", "BTCUSDT", "30010", "0.005", "BUY");
    first.wait("the first half's hedge", |_| net(&ex.account("binance-usdm"), "BTCUSDT") == d("0.005"));
    first.signal("-KILL");
    let mut second = Process::spawn(&config, &state);
    second.connected();
    second.wait("the resume", |l| l.iter().any(|l| l.contains("resumed from checkpoint")));
    ex.print("binance-spot", "BTCUSDT", "30010", "0.005", "BUY");
    second.wait("the second half's hedge", |_| net(&ex.account("binance-usdm"), "BTCUSDT") == d("0.01"));
    // Four reconciliations later (more than the three a held state waits), nothing was
    // delivered short.
    let before = second.lines.iter().filter(|l| l.contains("reconciled")).count();
    second.wait("four more reconciliations", |l| l.iter().filter(|l| l.contains("reconciled")).count() >= before + 8);
    let all = second.signal("-INT");
    assert!(!all.contains("more filled than its trade list shows"), "a final state was held for fills delivered before the crash:\n{all}");
    assert_eq!(net(&ex.account("binance-usdm"), "BTCUSDT"), d("0.01"));
}

/// Order requests that reached a venue of the local exchange: any placement, batch or
/// cancel, over REST or the WebSocket API (queries, account and listen key calls are not).
fn order_requests(account: &Value) -> Vec<String> {
    account["calls"]
        .as_object()
        .map(|calls| {
            calls
                .keys()
                .filter(|k| {
                    let lower = k.to_ascii_lowercase();
                    (["post ", "delete ", "put "].iter().any(|m| lower.starts_with(m)) || lower.starts_with("ws order")) && lower.contains("order")
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Recommend mode against real venues: the strategies decide and the runtime logs and
/// journals their orders as recommendations, and not one order request reaches any venue.
#[test]
fn recommend_mode_sends_no_order_to_any_venue() {
    let ex = Exchange::start();
    Exchange::set_credentials();
    let plugin = plugin_host();
    let config = config_text(&ex, "binance-usdm", "BTCUSDT").replace("mode = \"live\"", "mode = \"recommend\"");
    let mut engine = e2e::engine(&config, &plugin, &[("scripted", &guest("scripted")), ("hedger", &strategy("hedger"))]);
    let mut printed = 0;
    run_until(&mut engine, "the maker's six recommendations", |engine| {
        if printed < 50 && engine.journal().len() < 6 {
            // The scripted maker decides on a trade; print until its stream carries one.
            ex.print("binance-spot", "BTCUSDT", "30000", "0.001", "BUY");
            printed += 1;
        }
        engine.journal().len() >= 6
    });
    let settle = Instant::now() + Duration::from_secs(1);
    while Instant::now() < settle {
        engine.step();
    }
    assert!(engine.journal().iter().all(|e| e.recommended), "recommended, not sent: {:?}", engine.journal());
    assert_eq!(engine.journal().len(), 6);
    for venue in ["binance-spot", "binance-usdm"] {
        let account = ex.account(venue);
        assert_eq!(order_requests(&account), Vec::<String>::new(), "{venue} received order requests: {account}");
        assert_eq!(account["openOrders"].as_array().map(Vec::len), Some(0), "{venue}: {account}");
        assert!(calls(&account, if venue == "binance-spot" { "GET /api/v3/exchangeInfo" } else { "GET /fapi/v1/exchangeInfo" }) > 0, "{venue}: the venue was connected: {account}");
    }
}

/// The kill switch on live venues: every resting order of the runtime is cancelled on the
/// exchange and each cancel confirmed before the report says so; nothing is left open.
#[test]
fn the_kill_switch_leaves_nothing_open_on_the_exchange() {
    let ex = Exchange::start();
    let mut engine = start(&ex, "binance-usdm", "BTCUSDT");
    until_maker_orders_rest(&ex, |rested| run_for(&mut engine, Duration::from_secs(1), |_| rested()));
    let _ = engine.controller().send(Control::Kill { why: "test".into(), account: None, reply: None });
    assert!(!engine.step(), "the run ends at the kill switch");
    let report = engine.kill_report().cloned().unwrap_or_else(|| panic!("no kill report"));
    assert_eq!(report.stopped, vec!["maker".to_string(), "hedger".to_string()]);
    assert_eq!(report.cancelled.len(), 6, "{report:?}");
    assert!(report.not_confirmed.is_empty(), "{report:?}");
    assert!(report.account.is_empty(), "not asked for: {report:?}");
    let account = ex.account("binance-spot");
    assert_eq!(account["openOrders"].as_array().map(Vec::len), Some(0), "{account}");
    assert_eq!(calls(&account, "DELETE /api/v3/order"), 6, "one cancel per order: {account}");
    assert_eq!(calls(&account, "DELETE /api/v3/openOrders"), 0, "{account}");
}

/// The kill switch asked to clear the whole account: the runtime's orders are cancelled
/// one by one and confirmed, then each venue's own cancel-all takes what others placed
/// (here an order placed by hand), and the report says what each venue answered.
#[test]
fn the_kill_switch_can_clear_the_whole_account_through_the_venues_cancel_all() {
    let ex = Exchange::start();
    let mut engine = start(&ex, "binance-usdm", "BTCUSDT");
    until_maker_orders_rest(&ex, |rested| run_for(&mut engine, Duration::from_secs(1), |_| rested()));
    ex.place_by_hand("binance-spot", "BTCUSDT", "BUY", "20000", "0.001", "by-hand-1");
    ex.place_by_hand("binance-usdm", "BTCUSDT", "SELL", "40000", "0.001", "by-hand-2");
    let _ = engine.controller().send(Control::Kill { why: "test".into(), account: Some(true), reply: None });
    assert!(!engine.step(), "the run ends at the kill switch");
    let report = engine.kill_report().cloned().unwrap_or_else(|| panic!("no kill report"));
    assert_eq!(report.cancelled.len(), 6, "the runtime's own, confirmed one by one: {report:?}");
    assert!(report.not_confirmed.is_empty(), "{report:?}");
    assert_eq!(report.account.len(), 2, "one line per live venue and instrument: {report:?}");
    assert!(report.account.iter().all(|line| line.ends_with("BTCUSDT: every open order of the account cancelled (venue cancel-all)")), "{report:?}");
    for (venue, path) in [("binance-spot", "DELETE /api/v3/openOrders"), ("binance-usdm", "DELETE /fapi/v1/allOpenOrders")] {
        let account = ex.account(venue);
        assert_eq!(account["openOrders"].as_array().map(Vec::len), Some(0), "{venue}: {account}");
        assert_eq!(calls(&account, path), 1, "{venue}: {account}");
    }
    assert_eq!(calls(&ex.account("binance-spot"), "DELETE /api/v3/order"), 6, "the runtime's own went first, one by one");
}

/// The operator's view of live accounts (`/api/positions`): what each venue says the
/// account holds, refreshed with the periodic reconciliation; after a hedge, the USD-M
/// position is the one the exchange booked.
#[test]
fn the_positions_view_shows_what_each_live_account_holds() {
    let ex = Exchange::start();
    Exchange::set_credentials();
    let plugin = plugin_host();
    let text = with_reconcile_interval(&config_text(&ex, "binance-usdm", "BTCUSDT"), 500);
    let mut engine = e2e::engine(&text, &plugin, &[("scripted", &guest("scripted")), ("hedger", &strategy("hedger"))]);
    let control = engine.controller();
    let ask = |engine: &mut Engine| -> Value {
        let (reply, answer) = std::sync::mpsc::channel();
        let _ = control.send(Control::Query { what: runtime::engine::Query::Positions, reply });
        engine.step();
        answer.recv_timeout(Duration::from_secs(5)).unwrap_or_else(|e| panic!("no answer: {e}"))
    };
    let venue = |view: &Value, name: &str| view["balances"].as_array().and_then(|l| l.iter().find(|v| v["venue"] == name).cloned()).unwrap_or_else(|| panic!("no {name}: {view}"));
    let first = ask(&mut engine);
    let spot = venue(&first, "maker");
    assert!(spot["balances"]["USDT"]["total"].as_str().is_some_and(|t| d(t) > Decimal::ZERO), "{spot}");
    assert!(spot["balances"]["BTC"]["total"].as_str().is_some_and(|t| d(t) > Decimal::ZERO), "{spot}");
    assert!(spot["as_of_ms"].as_i64().is_some_and(|t| t > 0), "{spot}");
    assert_eq!(venue(&first, "hedge")["positions"], json!({}), "nothing held on the hedge venue yet: {first}");
    until_maker_orders_rest(&ex, |rested| run_for(&mut engine, Duration::from_secs(1), |_| rested()));
    ex.print("binance-spot", "BTCUSDT", "30010", "0.005", "BUY");
    run_until(&mut engine, "the hedge", |_| net(&ex.account("binance-usdm"), "BTCUSDT") == d("0.005"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let view = ask(&mut engine);
        let hedge = venue(&view, "hedge");
        if hedge["positions"]["BTCUSDT"].as_str().is_some_and(|q| d(q) == d("0.005")) {
            break;
        }
        assert!(Instant::now() < deadline, "the account view never showed the hedge: {view}");
    }
}

/// The kill switch over the control API against the binary on live venues: the runtime's
/// six orders cancelled one by one and confirmed, then each venue's cancel-all takes an
/// order placed by hand; the report comes back over HTTP, the process ends by itself with
/// status 0, and nothing is left open on either venue.
#[test]
fn the_kill_switch_over_http_leaves_nothing_open_on_either_venue() {
    let ex = Exchange::start();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = dir.path().join("live.toml");
    std::fs::write(&config, config_text(&ex, "binance-usdm", "BTCUSDT")).unwrap_or_else(|e| panic!("{e}"));
    let port = e2e::control::free_port();
    let mut runtime = Process::spawn_with(&config, &dir.path().join("state.redb"), &["--control", &format!("127.0.0.1:{port}")], "runtime=debug,info");
    runtime.connected();
    until_maker_orders_rest(&ex, |rested| runtime.wait_for(Duration::from_secs(1), "the maker orders", |_| rested()));
    ex.place_by_hand("binance-usdm", "BTCUSDT", "SELL", "40000", "0.001", "by-hand-1");
    let api = e2e::control::ControlApi::new(port);
    let report = api.post("/api/kill", json!({"account": true}));
    assert_eq!(report["cancelled"].as_array().map(Vec::len), Some(6), "{report}");
    assert_eq!(report["not_confirmed"], json!([]), "{report}");
    assert_eq!(report["account"], json!([
        "maker/BTCUSDT: every open order of the account cancelled (venue cancel-all)",
        "hedge/BTCUSDT: every open order of the account cancelled (venue cancel-all)",
    ]), "{report}");
    let (status, printed) = runtime.exit();
    assert!(status.success(), "{status:?}:\n{printed}");
    for venue in ["binance-spot", "binance-usdm"] {
        assert_eq!(ex.account(venue)["openOrders"], json!([]), "{venue}");
    }
}

/// One sample of the Prometheus text: `name{labels}` exactly as printed.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' '))).and_then(|v| v.trim().parse().ok())
}

/// `GET /metrics` on live venues, checked against what the exchange itself counted: the
/// requests by endpoint and status, the rate-limit window in use, the order round trips,
/// the private and public message lag, and each strategy's call latency against its calls.
#[test]
fn the_metrics_count_what_the_venues_saw() {
    let ex = Exchange::start();
    Exchange::set_credentials();
    let plugin = plugin_host();
    // The hedge venue paced by windows of its own (an account with raised limits).
    let config = config_text(&ex, "binance-usdm", "BTCUSDT").replace(
        "name = \"hedge\"\nkind = \"binance-usdm\"\n[venue.connection]\n",
        "name = \"hedge\"\nkind = \"binance-usdm\"\n[venue.connection]\nrate_limits = [{ counts = \"orders\", seconds = 10, max = 3000 }, { counts = \"weight\", seconds = 60, max = 24000 }]\n",
    );
    assert!(config.contains("max = 3000"));
    let mut engine = e2e::engine(&config, &plugin, &[("scripted", &guest("scripted")), ("hedger", &strategy("hedger"))]);
    until_maker_orders_rest(&ex, |rested| run_for(&mut engine, Duration::from_secs(1), |_| rested()));
    ex.print("binance-spot", "BTCUSDT", "30010", "0.005", "BUY");
    run_until(&mut engine, "the hedge", |_| net(&ex.account("binance-usdm"), "BTCUSDT") == d("0.005"));
    let control = engine.controller();
    let scrape = |engine: &mut Engine| {
        let (reply, answer) = std::sync::mpsc::channel();
        let _ = control.send(Control::Query { what: runtime::engine::Query::Metrics, reply });
        engine.step();
        let scraped = answer.recv_timeout(Duration::from_secs(5)).unwrap_or_else(|e| panic!("no answer: {e}"));
        scraped.as_str().unwrap_or_default().to_string()
    };
    // The exchange books the hedge (and may push its fill) before its HTTP answer reaches
    // the runtime, which is when the round trip is counted: wait for that answer.
    // Likewise the hedge's fill, pushed on the hedge venue's private stream, is read by
    // another task than the answer, and the hedge's tick-to-trade is counted just after its
    // round trip: wait for all three.
    let hedge_answered = |text: &str| {
        sample(text, r#"runtime_venue_order_round_trip_seconds_count{venue="hedge"}"#).is_some_and(|n| n >= 1.0)
            && sample(text, r#"runtime_venue_private_lag_seconds_count{venue="hedge"}"#).is_some_and(|n| n >= 1.0)
            && sample(text, r#"runtime_venue_tick_to_trade_seconds_count{venue="hedge"}"#).is_some_and(|n| n >= 1.0)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut text = scrape(&mut engine);
    while !hedge_answered(&text) && Instant::now() < deadline {
        text = scrape(&mut engine);
    }
    let text = text.as_str();

    let spot_orders = calls(&ex.account("binance-spot"), "POST /api/v3/order");
    assert!(spot_orders >= 6, "the maker's orders reached the exchange");
    assert_eq!(sample(text, r#"runtime_venue_requests_total{venue="maker",method="POST",endpoint="/api/v3/order",status="200"}"#), Some(spot_orders as f64), "{text}");
    let hedges = calls(&ex.account("binance-usdm"), "POST /fapi/v1/order") + calls(&ex.account("binance-usdm"), "POST /fapi/v1/batchOrders");
    assert!(hedges >= 1);
    let round_trips = sample(text, r#"runtime_venue_order_round_trip_seconds_count{venue="hedge"}"#).unwrap_or(0.0);
    assert_eq!(round_trips, hedges as f64, "one round trip per placement call: {text}");
    assert!(sample(text, r#"runtime_venue_private_lag_seconds_count{venue="hedge"}"#).unwrap_or(0.0) >= 1.0, "the hedge's fill came on the private stream: {text}");
    assert!(sample(text, r#"runtime_venue_public_lag_seconds_count{venue="maker"}"#).unwrap_or(0.0) >= 1.0, "the print came on the public stream: {text}");
    let weight = sample(text, r#"runtime_venue_rate_limit_used{venue="maker",counts="weight",window_seconds="60"}"#).unwrap_or(0.0);
    assert!(weight >= spot_orders as f64, "every order weighs at least 1: {text}");
    assert_eq!(sample(text, r#"runtime_venue_rate_limit_max{venue="maker",counts="weight",window_seconds="60"}"#), Some(6000.0), "{text}");
    assert_eq!(sample(text, r#"runtime_venue_reconnects_total{venue="maker"}"#), Some(0.0), "{text}");
    for strategy in ["maker", "hedger"] {
        let calls = sample(text, &format!(r#"runtime_strategy_calls_total{{strategy="{strategy}"}}"#));
        assert!(calls.is_some_and(|c| c >= 1.0), "{text}");
        assert_eq!(sample(text, &format!(r#"runtime_strategy_call_duration_seconds_count{{strategy="{strategy}"}}"#)), calls, "one latency sample per call: {text}");
        assert_eq!(sample(text, &format!(r#"runtime_strategy_call_duration_seconds_bucket{{le="+Inf",strategy="{strategy}"}}"#)), calls, "{text}");
    }
    assert!(text.contains("# TYPE runtime_checkpoint_duration_seconds histogram"), "{text}");
    // The configured windows replace the documented ones (300 orders per 10 s, 1,200 a
    // minute, 2,400 weight a minute).
    let max = |counts: &str, seconds: u32| sample(text, &format!(r#"runtime_venue_rate_limit_max{{venue="hedge",counts="{counts}",window_seconds="{seconds}"}}"#));
    assert_eq!((max("orders", 10), max("weight", 60), max("orders", 60)), (Some(3000.0), Some(24000.0), None), "{text}");
    // Tick-to-trade: the hedge came from a fill pushed on the maker's private stream, so it
    // is timed, once; the maker's orders came from a public trade, so they are not.
    assert_eq!(sample(text, r#"runtime_venue_tick_to_trade_seconds_count{venue="hedge"}"#), Some(hedges as f64), "{text}");
    assert_eq!(sample(text, r#"runtime_venue_tick_to_trade_seconds_count{venue="maker"}"#), Some(0.0), "{text}");
    assert_eq!(sample(text, r#"runtime_venue_tick_to_trade_seconds_bucket{le="+Inf",venue="hedge"}"#), Some(hedges as f64), "{text}");
}

/// Placements do not queue behind each other's answers: the maker's six orders, given
/// in one call to a venue without a batch endpoint (Binance spot), are six requests that
/// the exchange serves side by side while it holds every answer back. Sent one after the
/// other, at most one placement would be there at a time.
#[test]
fn placements_wait_for_their_answers_side_by_side() {
    let ex = Exchange::start();
    let mut engine = start(&ex, "binance-usdm", "BTCUSDT");
    ex.faults("binance-spot", json!({"stall_ms": 1500}));
    until_maker_orders_rest(&ex, |rested| run_for(&mut engine, Duration::from_secs(2), |_| rested()));
    let maker = ex.account("binance-spot");
    assert_eq!(calls(&maker, "POST /api/v3/order"), 6, "{maker}");
    let most = maker["maxConcurrentRequests"].as_u64().unwrap_or(0);
    assert!(most >= 6, "the six placements were at the exchange together: at most {most} requests at once");
    ex.faults("binance-spot", json!({}));
    // Nothing was lost or doubled by sending them together: each order rests once.
    assert_eq!(maker["openOrders"].as_array().map(Vec::len), Some(6), "{maker}");
}

/// A replay at full speed beside a live venue never waits, so the live venue's tasks get
/// their turn at every batch (they run on the engine's thread): an order a strategy sends
/// to the live venue at the replay's first print is at the exchange long before the
/// replay ends, not held until the engine next waits.
#[test]
fn a_live_order_leaves_during_a_full_speed_replay_beside_it() {
    let ex = Exchange::start();
    Exchange::set_credentials();
    const PRINTS: u64 = 50_000;
    let config = format!(
        r#"
mode = "live"
[risk]
max_order_notional = "1000000"
{}{}
[[strategy]]
name = "maker"
component = "scripted"
params = {{ orders = [
  {{ venue = "paper", symbol = "BTCUSDT", id = "never", side = "buy", price = "1", qty = "0.001", at_ms = 9999999999999 }},
  {{ venue = "maker", symbol = "BTCUSDT", id = "b1", side = "buy", price = "29990", qty = "0.01" }},
] }}
"#,
        e2e::synthetic_venue(PRINTS),
        ex.venue_section("maker", "binance-spot", "BTCUSDT", "BTC"),
    );
    let plugin = plugin_host();
    let mut engine = e2e::engine(&config, &plugin, &[("scripted", &guest("scripted"))]);
    let rested = || ex.account("binance-spot")["openOrders"].as_array().is_some_and(|o| o.len() == 1);
    let mut steps = 0u64;
    loop {
        assert!(engine.step(), "the run ended");
        steps += 1;
        if steps.is_multiple_of(500) && rested() {
            break;
        }
        assert!(engine.stats.prints < PRINTS, "the replay ended ({} prints) before the live order reached the exchange", engine.stats.prints);
    }
    assert!(engine.stats.prints < PRINTS, "seen at the exchange only after the replay: {} prints", engine.stats.prints);
    let _ = engine.controller().send(Control::Shutdown);
    engine.run();
}
