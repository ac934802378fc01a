//! The shipped strategies, built to components, running in the host against paper venues
//! driven by small recorded price paths written here, with expectations computed by hand.

use std::path::{Path, PathBuf};

use e2e::{guest, journal, parse_config, plugin_host, strategy};
use runtime::engine::{check_self_trading, Control, Engine, Notice};
use runtime::market::Market;
use runtime::model::{Decimal, InstrumentId, InstrumentInfo, Side, Subscriptions, VenueId};
use runtime::venue::paper::book::Account;

fn d(s: &str) -> Decimal {
    s.parse().unwrap_or_default()
}

/// Writes a USD-M trades file: (id, price, qty, time ms, seller took liquidity).
fn csv(dir: &Path, name: &str, rows: &[(u64, &str, &str, i64, bool)]) -> PathBuf {
    let mut text = String::from("id,price,qty,quote_qty,time,is_buyer_maker\n");
    for (id, price, qty, ts, seller) in rows {
        text.push_str(&format!("{id},{price},{qty},0,{ts},{seller}\n"));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    path
}

#[allow(clippy::too_many_arguments)]
fn venue(name: &str, symbol: &str, base: &str, tick: &str, lot: &str, feed: &Path, liquidity: Option<&str>, fees: &str) -> String {
    venue_with(name, symbol, base, tick, lot, feed, liquidity, fees, "")
}

#[allow(clippy::too_many_arguments)]
fn venue_with(name: &str, symbol: &str, base: &str, tick: &str, lot: &str, feed: &Path, liquidity: Option<&str>, fees: &str, extra: &str) -> String {
    format!(
        r#"
[[venue]]
name = "{name}"
kind = "paper"
settlement = "perpetual"
maker_fee = "{fees}"
taker_fee = "{fees}"
{extra}
[[venue.instrument]]
symbol = "{symbol}"
base = "{base}"
quote = "USDT"
tick_size = "{tick}"
lot_size = "{lot}"
min_qty = "{lot}"
min_notional = "5"
feed = {{ kind = "replay", file = "{}" }}
{}
"#,
        feed.display(),
        liquidity.map(|l| format!("liquidity = {l}")).unwrap_or_default()
    )
}

fn hedge_id(parts: &[&str]) -> String {
    // The SDK's id: prefix, '-', first 96 bits of SHA-256 over length-prefixed parts.
    use std::fmt::Write;
    let mut bytes = Vec::new();
    for part in parts {
        bytes.extend_from_slice(&(part.len() as u64).to_le_bytes());
        bytes.extend_from_slice(part.as_bytes());
    }
    let digest = runtime_sha256(&bytes);
    let mut id = String::from("hedge-");
    for b in &digest[..12] {
        let _ = write!(id, "{b:02x}");
    }
    id
}

fn runtime_sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// The hedger scenario: maker fills of 0.001 @ 10000 (alone under the 15 USDT minimum),
/// 0.002 @ 9990, and later a maker sell of 0.004 @ 10020.
fn hedger_setup(dir: &Path, max_order_notional: &str) -> String {
    hedger_setup_with(dir, max_order_notional, "")
}

/// `maker_faults`: a `faults = { ... }` line for the maker venue.
fn hedger_setup_with(dir: &Path, max_order_notional: &str, maker_faults: &str) -> String {
    let prints = [
        (1, "10005", "1", 1000, false),
        (2, "10000", "0.001", 2000, true),
        (3, "9990", "0.002", 3000, true),
        (4, "10005", "1", 4500, false),
        (5, "10020", "0.004", 6000, false),
        (6, "10020", "1", 7000, false),
    ];
    let file = csv(dir, "btc.csv", &prints);
    format!(
        r#"
[risk]
max_order_notional = "{max_order_notional}"
{}{}
[[strategy]]
name = "maker"
component = "scripted"
params = {{ orders = [
  {{ venue = "mk", symbol = "BTCUSDT", id = "a", side = "buy", price = "10000", qty = "0.001" }},
  {{ venue = "mk", symbol = "BTCUSDT", id = "b", side = "buy", price = "9990", qty = "0.002" }},
  {{ at_ms = 4500, venue = "mk", symbol = "BTCUSDT", id = "c", side = "sell", price = "10020", qty = "0.004" }},
] }}

[[strategy]]
name = "hedger"
component = "hedger"
params = {{ "Maker Exchange" = "mk", "Maker Symbol" = "BTCUSDT", "Hedge Exchange" = "hg", "Hedge Symbol" = "BTCUSDT", "Slippage" = "0.001", "Min Amt" = "15" }}
"#,
        venue_with("mk", "BTCUSDT", "BTC", "0.1", "0.001", &file, None, "0", maker_faults),
        venue("hg", "BTCUSDT", "BTC", "0.1", "0.001", &file, Some(r#"{ levels = 5, step = "0.5", qty = "10" }"#), "0.0004"),
    )
}

fn hedger_engine(config: &str) -> (Engine, runtime::plugin::PluginHost) {
    let plugin = plugin_host();
    let engine = e2e::engine(config, &plugin, &[("scripted", &guest("scripted")), ("hedger", &strategy("hedger"))]);
    (engine, plugin)
}

/// Net 0.003 at VWAP 29.98 / 0.003 = 9993.33..: a sell at x 0.999 = 9983.34, rounded down
/// to the 0.1 tick. Then the maker sell: a buy of 0.004 at 10020 x 1.001 = 10030.02, up.
fn expected_hedges(first_attempt: &str) -> Vec<(String, Side, Option<Decimal>, Decimal)> {
    vec![
        (hedge_id(&["mk-1", "mk-2", first_attempt]), Side::Sell, Some(d("9983.3")), d("0.003")),
        (hedge_id(&["mk-3", "0"]), Side::Buy, Some(d("10030.1")), d("0.004")),
    ]
}

fn assert_fully_hedged(engine: &Engine) {
    let hedger = engine.slots().iter().find(|s| s.name == "hedger").unwrap_or_else(|| panic!("hedger"));
    let hedge = hedger.stats.positions.get(&InstrumentId(1)).cloned().unwrap_or_default();
    // Maker bought 0.003 and sold 0.004: the hedge bought 0.004 and sold 0.003.
    assert_eq!((hedge.sold, hedge.bought), (d("0.003"), d("0.004")));
}

#[test]
fn hedger_sends_exactly_the_expected_hedges() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (mut engine, _) = hedger_engine(&hedger_setup(dir.path(), "100000"));
    engine.run();
    assert_eq!(journal(&engine, "hedger"), expected_hedges("0"));
    assert_fully_hedged(&engine);
}

#[test]
fn duplicated_maker_fills_are_hedged_once() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // The maker venue pushes every fill twice, with the same trade id.
    let (mut engine, _) = hedger_engine(&hedger_setup_with(dir.path(), "100000", "faults = { duplicate_fills = true }"));
    engine.run();
    assert_eq!(journal(&engine, "hedger"), expected_hedges("0"));
    assert_fully_hedged(&engine);
    let state: serde_json::Value = serde_json::from_slice(&engine.snapshot_strategy("hedger").and_then(Result::ok).unwrap_or_default()).unwrap_or_default();
    assert_eq!(state["duplicates"], 3, "each of the three maker fills arrived twice");
}

#[test]
fn hedger_sends_the_same_hedges_across_a_hot_swap() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (mut engine, plugin) = hedger_engine(&hedger_setup(dir.path(), "100000"));
    let notices = engine.subscribe();
    // After the first maker fill (under the minimum, so it is risk in the old version).
    assert!(engine.step() && engine.step());
    let next = plugin.load(&strategy("hedger")).unwrap_or_else(|e| panic!("{e}"));
    engine.controller().send(Control::Swap { component: "hedger".into(), loaded: std::sync::Arc::new(next), prepared: Vec::new() }).unwrap_or_else(|e| panic!("{e}"));
    engine.run();
    let notice = notices.try_recv();
    assert!(matches!(notice, Ok(Notice::Swapped { .. })), "{notice:?}");
    assert_eq!(journal(&engine, "hedger"), expected_hedges("0"));
    assert_fully_hedged(&engine);
}

#[test]
fn a_rejected_hedge_is_hedged_again_once() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // The first hedge (29.95 USDT) is over the 20 USDT order limit: refused.
    let (mut engine, _) = hedger_engine(&hedger_setup(dir.path(), "20"));
    for _ in 0..3 {
        assert!(engine.step());
    }
    let hedger = engine.slots().iter().find(|s| s.name == "hedger").map(|s| s.stats.refused);
    assert_eq!(hedger, Some(1));
    assert!(journal(&engine, "hedger").is_empty());
    // The operator raises the limit; after its retry delay the hedger tries again, once.
    let raised = parse_config(&hedger_setup(dir.path(), "100000"));
    engine.controller().send(Control::Config(Box::new(raised))).unwrap_or_else(|e| panic!("{e}"));
    engine.run();
    assert_eq!(journal(&engine, "hedger"), expected_hedges("1"));
    assert_fully_hedged(&engine);
}

fn grid_config(dir: &Path, prints: &[(u64, &str, &str, i64, bool)], max_drawdown: &str, extra: &str) -> String {
    let file = csv(dir, "grid.csv", prints);
    format!(
        r#"{}
[[strategy]]
name = "grid"
component = "grid"
params = {{ venue = "g", symbol = "BTCUSDT", order_qty = "1", grid_spacing_pct = "1", num_levels = 2, max_position_size = "5", capital = "1000",
            max_drawdown = "{max_drawdown}", stop_loss_pct = "20", max_active_orders = 10, rebalance_interval = 0{extra} }}
"#,
        venue("g", "BTCUSDT", "BTC", "1", "0.1", &file, None, "0.001")
    )
}

fn resting(engine: &Engine) -> usize {
    let market = engine.market().lock();
    let paper = market.venues[0].as_paper().unwrap_or_else(|| panic!("paper"));
    paper.order_book(InstrumentId(0)).map(|b| b.orders().filter(|o| o.account == Account::Main).count()).unwrap_or(0)
}

#[test]
fn grid_fills_and_pnl_match_a_hand_computation() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // Centre 100, levels 99/98 and 101/102. A seller at 99 fills the 99 bid; the grid
    // answers with a sell at 100, which a buyer at 100 fills.
    let prints = [(1, "100", "1", 1000, false), (2, "99", "1", 2000, true), (3, "100", "1", 3000, false), (4, "100", "1", 4000, false)];
    let plugin = plugin_host();
    let mut engine = e2e::engine(&grid_config(dir.path(), &prints, "0.5", ""), &plugin, &[("grid", &strategy("grid"))]);
    engine.run();
    let grid = &engine.slots()[0];
    let p = grid.stats.positions.get(&InstrumentId(0)).cloned().unwrap_or_default();
    assert_eq!((p.bought, p.sold, p.buy_notional, p.sell_notional), (d("1"), d("1"), d("99"), d("100")));
    // Maker fees at 0.1%: 0.099 + 0.100.
    assert_eq!(p.fees, d("0.199"));
    let state: serde_json::Value = serde_json::from_slice(&engine.snapshot_strategy("grid").and_then(Result::ok).unwrap_or_default()).unwrap_or_default();
    assert_eq!(state["book"]["realized"], "1");
    assert_eq!(state["book"]["fees"], "0.199");
    let placed: Vec<(Side, Option<Decimal>)> = journal(&engine, "grid").into_iter().map(|(_, s, p, _)| (s, p)).collect();
    assert_eq!(
        placed,
        vec![
            (Side::Buy, Some(d("99"))),
            (Side::Sell, Some(d("101"))),
            (Side::Buy, Some(d("98"))),
            (Side::Sell, Some(d("102"))),
            (Side::Sell, Some(d("100"))),
            (Side::Buy, Some(d("99"))),
        ]
    );
}

#[test]
fn grid_drawdown_halts_and_cancels() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // Long 1 at 99 and 1 at 98; at 90 equity is 1000 - 17 = 983: 1.7% down, over 1%.
    let prints = [(1, "100", "1", 1000, false), (2, "99", "1", 2000, true), (3, "90", "1", 3000, true), (4, "91", "1", 4000, false), (5, "95", "1", 5000, false)];
    let plugin = plugin_host();
    let mut engine = e2e::engine(&grid_config(dir.path(), &prints, "0.01", ""), &plugin, &[("grid", &strategy("grid"))]);
    for _ in 0..3 {
        assert!(engine.step());
    }
    assert_eq!(resting(&engine), 0, "halted: everything cancelled");
    let sent = journal(&engine, "grid").len();
    engine.run();
    assert_eq!(journal(&engine, "grid").len(), sent, "nothing sent after the halt");
    let state: serde_json::Value = serde_json::from_slice(&engine.snapshot_strategy("grid").and_then(Result::ok).unwrap_or_default()).unwrap_or_default();
    assert!(state["halted"].as_str().unwrap_or_default().contains("max_drawdown"), "{}", state["halted"]);
}

#[test]
fn grid_var_limit_blocks_new_exposure() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let prints: Vec<(u64, &str, &str, i64, bool)> =
        ["100", "103", "99", "104", "98", "103", "100", "101"].iter().enumerate().map(|(i, p)| (i as u64 + 1, *p, "0.1", 1000 * (i as i64 + 1), false)).collect();
    let plugin = plugin_host();
    let run = |limit: &str| {
        let mut engine = e2e::engine(&grid_config(dir.path(), &prints, "0.5", &format!(r#", var_limit = "{limit}", var_window = 3"#)), &plugin, &[("grid", &strategy("grid"))]);
        engine.run();
        journal(&engine, "grid").len()
    };
    assert_eq!(run("1"), 0, "VaR of one unit at ~3% moves is ~3 USDT: over a 1 USDT limit");
    assert!(run("100") > 0);
}

#[test]
fn cross_asset_hedges_at_the_ratio_and_its_pnl_is_exact() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let btc = csv(dir.path(), "btc.csv", &[(1, "10000", "1", 1000, false), (2, "10000", "1", 2000, true), (3, "10010", "0.001", 3000, false)]);
    let eth = csv(dir.path(), "eth.csv", &[(1, "250", "1", 1000, false), (2, "250", "1", 2000, false), (3, "250", "1", 3000, false)]);
    let config = format!(
        r#"{}{}
[[strategy]]
name = "owner"
component = "scripted"
params = {{ orders = [ {{ venue = "p", symbol = "BTCUSDT", id = "long", side = "buy", price = "10000", qty = "1" }} ] }}

[[strategy]]
name = "xa"
component = "cross-asset"
params = {{ rebalance_interval = 1000, pairs = [ {{ primary_venue = "p", primary_symbol = "BTCUSDT", hedge_venue = "h", hedge_symbol = "ETHUSDT",
            method = "notional", factor = "1", threshold_pct = "1", min_size = "0.1" }} ] }}
"#,
        venue("p", "BTCUSDT", "BTC", "0.1", "0.001", &btc, None, "0"),
        venue("h", "ETHUSDT", "ETH", "0.01", "0.01", &eth, Some(r#"{ levels = 3, step = "0.01", qty = "1000" }"#), "0.0004"),
    );
    let plugin = plugin_host();
    let mut engine = e2e::engine(&config, &plugin, &[("scripted", &guest("scripted")), ("cross-asset", &strategy("cross-asset"))]);
    engine.run();
    // Long 1 BTC at 10000 = 10000 USDT; at 250 that is 40 ETH to sell. At 10010 the target
    // is 40.04: a 0.04 deviation, under 1% and 0.1 ETH, so nothing more is sent.
    let sent = journal(&engine, "xa");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!((sent[0].1, sent[0].2, sent[0].3), (Side::Sell, None, d("40")));
    // The market sell takes the best bid, 249.99. PnL: BTC +10 (10010 - 10000), ETH
    // -0.4 ((250 - 249.99) x 40), fees 0.0004 x 40 x 249.99 = 3.99984: total 5.60016.
    let pnl: serde_json::Value = serde_json::from_slice(&engine.state_value("xa", "pnl").unwrap_or_default()).unwrap_or_default();
    assert_eq!(pnl[0]["unrealized"].as_str().map(d), Some(d("9.6")));
    assert_eq!(pnl[0]["fees"].as_str().map(d), Some(d("3.99984")));
    assert_eq!(pnl[0]["total"].as_str().map(d), Some(d("5.60016")));
}

#[test]
fn self_trade_follows_the_reference_prints_within_the_divergence() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // A triangle wave: 2 USDT a print, at most 20 (0.2%) a second, under the 0.5% divergence.
    let reference: Vec<(u64, String, i64)> = (0..600).map(|i| (i + 1, format!("{}", 10000 + ((i as i64 % 40) - 20).abs() * 2), 1000 + 100 * i as i64)).collect();
    let rows: Vec<(u64, &str, &str, i64, bool)> = reference.iter().map(|(id, p, ts)| (*id, p.as_str(), "0.05", *ts, id % 2 == 0)).collect();
    let file = csv(dir.path(), "ref.csv", &rows);
    let empty = csv(dir.path(), "none.csv", &[]);
    let config = format!(
        r#"{}{}
[[strategy]]
name = "flow"
component = "self-trade"
params = {{ "Follow Exchange" = "ref", "Follow Symbol" = "BTCUSDT", "Maker Exchange" = "demo", "Maker Symbol" = "BTCUSDT", "Price Decimals" = 1,
            "Qty Decimals" = 3, "Interval" = 1000, "Qty Multiplier" = "1", "Price Divergence" = "0.005", "Max Amt Per Order" = "5000", "Min Qty" = "0.001", "Min Amt" = "10" }}
"#,
        venue("ref", "BTCUSDT", "BTC", "0.1", "0.001", &file, None, "0"),
        venue("demo", "BTCUSDT", "BTC", "0.1", "0.001", &empty, None, "0"),
    );
    let plugin = plugin_host();
    let mut engine = e2e::engine(&config, &plugin, &[("self-trade", &strategy("self-trade"))]);
    engine.run();
    let market = engine.market().lock();
    let made = market.recent_trades(InstrumentId(1), 1000);
    assert!(made.len() >= 50, "one trade a second for a minute: {}", made.len());
    let mut previous: Option<Decimal> = None;
    for trade in &made {
        // The reference's last print before this round's timer.
        let followed = reference.iter().rev().find(|(_, _, ts)| *ts < trade.ts_ms).map(|(_, p, _)| d(p)).unwrap_or_default();
        let gap = (trade.price - followed).abs();
        assert!(gap <= followed * d("0.005"), "self-trade at {} strays from the followed {} by {gap}", trade.price, followed);
        if let Some(prev) = previous {
            assert!((trade.price - prev).abs() <= prev * d("0.005"), "a step from {prev} to {} is over the divergence", trade.price);
            assert_ne!(trade.price, prev, "an unchanged price is nudged by a tick");
        }
        previous = Some(trade.price);
    }
    let flow = &engine.slots()[0].stats;
    assert_eq!(flow.fills as usize, 2 * made.len(), "each round is one maker and one taker fill");
}

#[test]
fn self_trading_is_refused_on_a_live_venue() {
    let info = |paper: bool| InstrumentInfo {
        id: InstrumentId(0),
        venue: VenueId(0),
        venue_name: "binance-spot".into(),
        symbol: "BTCUSDT".into(),
        base_asset: "BTC".into(),
        quote_asset: "USDT".into(),
        tick_size: d("0.01"),
        lot_size: d("0.001"),
        min_qty: d("0.001"),
        min_notional: d("5"),
        paper,
    };
    let subs = Subscriptions { orders_on: vec![InstrumentId(0)], self_trading: true, ..Default::default() };
    let live = Market::new(vec![info(false)], Vec::new());
    let err = check_self_trading(&live, &subs).err().unwrap_or_default();
    assert!(err.contains("wash trading") && err.contains("binance-spot"), "{err}");
    assert!(check_self_trading(&Market::new(vec![info(true)], Vec::new()), &subs).is_ok());
    let undeclared = Subscriptions { self_trading: true, ..Default::default() };
    assert!(check_self_trading(&live, &undeclared).is_err(), "self-trading without orders-on is refused");
}

/// What the scripted guest last read through the `account` import (the last entry of its
/// snapshot).
fn scripted_account(engine: &mut Engine, name: &str) -> serde_json::Value {
    let bytes = engine.snapshot_strategy(name).unwrap_or_else(|| panic!("no strategy {name}")).unwrap_or_else(|t| panic!("{t}"));
    let seen: Vec<serde_json::Value> = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}"));
    seen.last().map(|entry| entry["account"].clone()).unwrap_or_else(|| panic!("empty snapshot"))
}

/// The `account` import (contract 0.1.1): a strategy reads the account's balances on its
/// venue, what it holds of an instrument, and its own open orders, as the host knows them.
#[test]
fn a_strategy_reads_the_account_balances_position_and_its_open_orders() {
    let config = format!(
        r#"{}
[[strategy]]
name = "s"
component = "scripted"
params = {{ orders = [
  {{ venue = "paper", symbol = "BTCUSDT", id = "a1", side = "buy", price = "9000", qty = "0.01" }},
] }}
"#,
        e2e::synthetic_venue(500)
    );
    let plugin = plugin_host();
    let mut engine = e2e::engine(&config, &plugin, &[("scripted", &guest("scripted"))]);
    engine.run();
    let account = &scripted_account(&mut engine, "s");
    assert_eq!(account["open_orders"], serde_json::json!([{"instrument": 0, "client_order_id": "a1", "side": "buy", "price": "9000", "remaining": "0.01"}]), "{account}");
    assert_eq!(account["position"], "10", "the spot account's BTC: {account}");
    let usdt = account["balances"].as_array().and_then(|l| l.iter().find(|b| b["asset"] == "USDT")).cloned().unwrap_or_default();
    assert_eq!(usdt["total"], "1000000", "{account}");
    // The bid holds its price and the most its fee could be (0.01 x 9000 x 1.0004).
    assert_eq!(usdt["available"].as_str().map(d), Some(d("999909.964")), "{account}");
}

/// The `account` import's lists are capped: an account with 1,202 assets answers 1,000.
#[test]
fn the_account_import_answers_at_most_a_thousand_entries() {
    let many: String = (0..1200).map(|i| format!(", A{i} = \"1\"")).collect();
    let venue = e2e::synthetic_venue(50).replace("balances = { USDT = \"1000000\", BTC = \"10\" }", &format!("balances = {{ USDT = \"1000000\", BTC = \"10\"{many} }}"));
    assert!(venue.contains("A1199"), "the venue's balances were not replaced");
    let config = format!(
        "{venue}\n[[strategy]]\nname = \"s\"\ncomponent = \"scripted\"\nparams = {{ orders = [ {{ venue = \"paper\", symbol = \"BTCUSDT\", id = \"a1\", side = \"buy\", price = \"9000\", qty = \"0.01\" }} ] }}\n"
    );
    let plugin = plugin_host();
    let mut engine = e2e::engine(&config, &plugin, &[("scripted", &guest("scripted"))]);
    engine.run();
    let account = &scripted_account(&mut engine, "s");
    assert_eq!(account["balances"].as_array().map(Vec::len), Some(1000), "{}", account["balances"].as_array().map(Vec::len).unwrap_or_default());
}
