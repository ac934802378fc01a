//! hedger: hedges the fills of a maker venue account with orders on a hedge venue.
//!
//! Every maker fill (seen through the account's fill stream, whoever placed the order)
//! adds to the net unhedged risk of the pair; a maker buy is hedged by a sell and the
//! reverse. When the net clears the hedge instrument's minimum quantity and notional, one
//! hedge goes out per cycle: quantity rounded down to the hedge's decimals (the rest stays
//! as risk), priced at the VWAP of the aggregated fills minus slippage for a sell, plus for
//! a buy, rounded away from the VWAP so rounding never eats the slippage allowance.
//!
//! Safety: fills are deduplicated by trade id (a fill delivered twice after a reconnect
//! counts once; ids older than the horizon are forgotten). A hedge's client order id is
//! derived from the trade ids it covers and its attempt number, so a retry or a restart
//! can never send a second hedge for the same fills. Each hedge is tracked to the end: the
//! unfilled part of a rejected, expired or cancelled hedge returns to risk and is hedged
//! again with the next attempt number.

use std::collections::{BTreeMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};
use strategy_sdk::decimal::{round_dp, Rounding};
use strategy_sdk::{
    export_strategy, ids, Action, Decimal, Event, Fill, Host, InstrumentInfo, LogLevel, OrderRequest, OrderStatus, OrderUpdate, Side, Strategy,
    Subscriptions, TimeInForce,
};

/// Params. The quoted aliases are the original system's names, so its configs port over.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(alias = "Maker Exchange")]
    pub maker_venue: String,
    #[serde(alias = "Maker Symbol")]
    pub maker_symbol: String,
    #[serde(alias = "Hedge Exchange")]
    pub hedge_venue: String,
    #[serde(alias = "Hedge Symbol")]
    pub hedge_symbol: String,
    /// Decimals of the hedge price; default: those of the hedge instrument's tick size.
    #[serde(alias = "Hedger Price Decimals", default)]
    pub price_decimals: Option<u32>,
    /// Decimals of the hedge quantity; default: those of the hedge instrument's lot size.
    #[serde(alias = "Hedger Qty Decimals", default)]
    pub qty_decimals: Option<u32>,
    /// Smallest hedge quantity, in base units; default: the hedge instrument's minimum.
    #[serde(alias = "Min Qty", default)]
    pub min_qty: Option<Decimal>,
    /// Smallest hedge notional, in quote units; default: the hedge instrument's minimum.
    #[serde(alias = "Min Amt", default)]
    pub min_notional: Option<Decimal>,
    /// Price allowance as a fraction of the VWAP (0.001 = 0.1%).
    #[serde(alias = "Slippage", default)]
    pub slippage: Decimal,
    /// How long trade ids are remembered for deduplication, in ms (default 2 h).
    #[serde(default = "default_horizon")]
    pub dedup_horizon_ms: i64,
    /// The most trade ids remembered, however recent (default 100,000). The snapshot
    /// carries them all, and a live engine with a store takes it after every hedge: at
    /// 28 bytes an id, two hours of a maker filled 21 times a second passed the host's 4 MiB
    /// snapshot limit, which ends the strategy. What a restart delivers again is the
    /// fills of the last tens of seconds (the host's reconciliation), well within this.
    #[serde(default = "default_max_ids")]
    pub dedup_max_ids: usize,
    /// Time in force of the hedges: "ioc" (default) or "gtc".
    #[serde(default = "default_tif")]
    pub time_in_force: String,
    /// Prefix of the hedges' client order ids (at most 7 characters are used).
    #[serde(default = "default_prefix")]
    pub id_prefix: String,
    /// After a hedge fails (rejected, expired, cancelled), wait this long before hedging
    /// again, in ms, so an empty book is not hammered.
    #[serde(default = "default_retry")]
    pub retry_delay_ms: i64,
}

fn default_retry() -> i64 {
    1_000
}

fn default_max_ids() -> usize {
    100_000
}

fn default_horizon() -> i64 {
    2 * 60 * 60 * 1000
}
fn default_tif() -> String {
    "ioc".into()
}
fn default_prefix() -> String {
    "hedge".into()
}

/// Unhedged maker fills, aggregated: signed quantity (+ means the maker account bought
/// and a sell hedge is owed) and the signed notional behind it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Risk {
    pub qty: Decimal,
    pub notional: Decimal,
    /// Trade ids the current risk came from, oldest first; they name the next hedge.
    pub sources: Vec<String>,
}

impl Risk {
    fn add(&mut self, qty: Decimal, price: Decimal, source: String) {
        self.qty += qty;
        self.notional += qty * price;
        self.sources.push(source);
    }

    /// The average price of what is at risk.
    pub fn vwap(&self) -> Option<Decimal> {
        (!self.qty.is_zero()).then(|| self.notional / self.qty)
    }
}

/// A hedge order on its way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hedge {
    pub side: Side,
    pub qty: Decimal,
    pub filled: Decimal,
    /// The VWAP of the risk it took over; the unfilled part goes back at this price.
    pub vwap: Decimal,
    pub sources: Vec<String>,
    pub attempt: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub risk: Risk,
    pub hedges: BTreeMap<String, Hedge>,
    /// Trade ids seen, with when they were seen, oldest first.
    pub seen: VecDeque<(String, i64)>,
    /// The ids in `seen`, for the check on every fill: a busy maker sees hundreds of
    /// thousands of fills within the horizon, too many to scan. Rebuilt on restore.
    #[serde(skip)]
    pub seen_ids: HashSet<String>,
    /// Attempt number of the next hedge of the current sources.
    pub attempt: u32,
    pub hedged_qty: Decimal,
    pub duplicates: u64,
    /// No new hedge before this time (ms), after a failed one.
    pub retry_after: i64,
}

pub struct Hedger {
    params: Params,
    maker: InstrumentInfo,
    hedge: InstrumentInfo,
    price_decimals: u32,
    qty_decimals: u32,
    min_qty: Decimal,
    min_notional: Decimal,
    tif: TimeInForce,
    pub state: State,
}

impl Hedger {
    fn on_maker_fill(&mut self, fill: &Fill, host: &mut dyn Host) {
        if self.state.seen_ids.contains(&fill.trade_id) {
            self.state.duplicates += 1;
            host.log(LogLevel::Debug, &format!("duplicate maker fill {} ignored", fill.trade_id));
            return;
        }
        self.state.seen.push_back((fill.trade_id.clone(), fill.ts_ms));
        self.state.seen_ids.insert(fill.trade_id.clone());
        // A maker buy leaves us long: that is hedged by a sell, and the reverse.
        let signed = match fill.side {
            Side::Buy => fill.qty,
            Side::Sell => -fill.qty,
        };
        self.state.risk.add(signed, fill.price, fill.trade_id.clone());
    }

    fn on_hedge_fill(&mut self, fill: &Fill) {
        if let Some(hedge) = self.state.hedges.get_mut(&fill.client_order_id) {
            hedge.filled += fill.qty;
            self.state.hedged_qty += fill.qty;
        }
    }

    fn on_hedge_update(&mut self, update: &OrderUpdate, host: &mut dyn Host) {
        if !update.status.is_final() {
            return;
        }
        let Some(hedge) = self.state.hedges.remove(&update.client_order_id) else { return };
        let unfilled = hedge.qty - hedge.filled;
        if update.status == OrderStatus::Filled || unfilled <= Decimal::ZERO {
            // Said here rather than when the hedge was decided: a line formatted and handed
            // to the host on the hedge's way out delays it (about 1 µs of the call), and this
            // one says more, what was filled.
            host.log(
                LogLevel::Info,
                &format!("hedged {:?} {} {} as {} (VWAP {}, attempt {})", hedge.side, hedge.filled, self.hedge.symbol, update.client_order_id, hedge.vwap, hedge.attempt),
            );
        } else {
            host.log(
                LogLevel::Warn,
                &format!("hedge {} {:?} ({}); {unfilled} returns to risk", update.client_order_id, update.status, update.reason.clone().unwrap_or_default()),
            );
            let signed = match hedge.side {
                // An unfilled sell hedge leaves the long risk in place.
                Side::Sell => unfilled,
                Side::Buy => -unfilled,
            };
            self.state.risk.qty += signed;
            self.state.risk.notional += signed * hedge.vwap;
            let mut sources = hedge.sources;
            for source in std::mem::take(&mut self.state.risk.sources) {
                if !sources.contains(&source) {
                    sources.push(source);
                }
            }
            self.state.risk.sources = sources;
            self.state.attempt = hedge.attempt + 1;
            // A venue's ban says when it ends: one retry then, not one every delay into it.
            let after_delay = update.ts_ms.max(host.now_ms()) + self.params.retry_delay_ms;
            self.state.retry_after = after_delay.max(update.retry_after_ms().unwrap_or(i64::MIN));
        }
    }

    /// One hedge for the whole net risk, if it clears the minimums.
    fn cycle(&mut self, now: i64) -> Vec<Action> {
        if now < self.state.retry_after {
            return Vec::new();
        }
        let risk = &self.state.risk;
        let Some(vwap) = risk.vwap() else { return Vec::new() };
        let side = if risk.qty > Decimal::ZERO { Side::Sell } else { Side::Buy };
        let qty = round_dp(risk.qty.abs(), self.qty_decimals, Rounding::Down);
        if qty.is_zero() || qty < self.min_qty || qty * vwap < self.min_notional {
            return Vec::new();
        }
        let slipped = match side {
            Side::Sell => vwap * (Decimal::ONE - self.params.slippage),
            Side::Buy => vwap * (Decimal::ONE + self.params.slippage),
        };
        let price = round_dp(slipped, self.price_decimals, Rounding::aggressive(side));
        let attempt = self.state.attempt.to_string();
        let mut parts: Vec<&str> = risk.sources.iter().map(String::as_str).collect();
        parts.push(&attempt);
        let id = ids::client_order_id(&self.params.id_prefix, &parts);
        let signed = match side {
            Side::Sell => qty,
            Side::Buy => -qty,
        };
        let hedge = Hedge { side, qty, filled: Decimal::ZERO, vwap, sources: std::mem::take(&mut self.state.risk.sources), attempt: self.state.attempt };
        self.state.risk.qty -= signed;
        self.state.risk.notional -= signed * vwap;
        if self.state.risk.qty.is_zero() {
            self.state.risk.notional = Decimal::ZERO;
        } else {
            // The rounding remainder stays as risk and keeps naming the fills it came from.
            self.state.risk.sources = hedge.sources.clone();
        }
        self.state.attempt = 0;
        self.state.hedges.insert(id.clone(), hedge);
        vec![Action::Place(OrderRequest::limit(id, self.hedge.id, side, price, qty, self.tif))]
    }

    fn forget_old(&mut self, now: i64) {
        let max = self.params.dedup_max_ids;
        while self.state.seen.front().is_some_and(|(_, ts)| now - ts > self.params.dedup_horizon_ms) || self.state.seen.len() > max {
            // An id enters `seen` only when it is not there: it leaves the set with it.
            if let Some((id, _)) = self.state.seen.pop_front() {
                self.state.seen_ids.remove(&id);
            }
        }
    }
}

/// Decimal places of a step such as a tick size: 0.01 -> 2.
fn decimals_of(step: Decimal) -> u32 {
    step.normalize().scale()
}

impl Strategy for Hedger {
    fn init(params: &str, host: &mut dyn Host) -> Result<(Self, Subscriptions), String> {
        let params: Params = serde_json::from_str(params).map_err(|e| format!("bad params: {e}"))?;
        let maker = host.lookup(&params.maker_venue, &params.maker_symbol)?;
        let hedge = host.lookup(&params.hedge_venue, &params.hedge_symbol)?;
        if maker.id == hedge.id {
            return Err("the maker and hedge instruments are the same".into());
        }
        if params.dedup_max_ids == 0 {
            return Err("dedup_max_ids must be at least 1".into());
        }
        if params.slippage < Decimal::ZERO || params.slippage >= Decimal::ONE {
            return Err(format!("slippage {} must be a fraction in [0, 1)", params.slippage));
        }
        let tif = match params.time_in_force.to_ascii_lowercase().as_str() {
            "ioc" => TimeInForce::Ioc,
            "gtc" => TimeInForce::Gtc,
            other => return Err(format!("time_in_force {other:?} must be ioc or gtc")),
        };
        let hedger = Hedger {
            price_decimals: params.price_decimals.unwrap_or(decimals_of(hedge.tick_size)),
            qty_decimals: params.qty_decimals.unwrap_or(decimals_of(hedge.lot_size)),
            min_qty: params.min_qty.unwrap_or(hedge.min_qty),
            min_notional: params.min_notional.unwrap_or(hedge.min_notional),
            tif,
            params,
            state: State::default(),
            maker: maker.clone(),
            hedge,
        };
        let retry = hedger.params.retry_delay_ms.max(1) as u64;
        let subscriptions = Subscriptions {
            account_fills: vec![maker.id],
            // The timer brings a failed hedge back after its retry delay.
            timer_interval_ms: Some(retry),
            orders_on: vec![hedger.hedge.id],
            ..Default::default()
        };
        Ok((hedger, subscriptions))
    }

    fn on_events(&mut self, events: &[Event], host: &mut dyn Host) -> Vec<Action> {
        for event in events {
            match event {
                Event::Fill(fill) if fill.instrument == self.maker.id && !fill.is_mine() => self.on_maker_fill(fill, host),
                Event::Fill(fill) if fill.instrument == self.hedge.id && fill.is_mine() => self.on_hedge_fill(fill),
                Event::Order(update) if update.instrument == self.hedge.id => self.on_hedge_update(update, host),
                Event::Params(_) => host.log(LogLevel::Warn, "hedger params changed: they take effect on the next hot swap or restart"),
                _ => {}
            }
        }
        // One clock read for the call: each is a crossing of the sandbox, on the hedge's way.
        let now = host.now_ms();
        self.forget_old(now);
        self.cycle(now)
    }

    fn snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(&self.state).unwrap_or_default()
    }

    fn restore(&mut self, state: &[u8], _host: &mut dyn Host) -> Result<(), String> {
        self.state = serde_json::from_slice(state).map_err(|e| format!("unreadable hedger state: {e}"))?;
        self.state.seen_ids = self.state.seen.iter().map(|(id, _)| id.clone()).collect();
        Ok(())
    }
}

export_strategy!(Hedger);

#[cfg(test)]
mod tests {
    use super::*;
    use strategy_sdk::harness::{fill, Harness, TestHost};
    use strategy_sdk::{InstrumentId, Whose};

    fn d(s: &str) -> Decimal {
        s.parse().unwrap_or_default()
    }

    const PARAMS: &str = r#"{"Maker Exchange":"a","Maker Symbol":"BTCUSDT","Hedge Exchange":"b","Hedge Symbol":"BTCUSDT","Slippage":"0.001","Min Amt":"5"}"#;

    fn harness() -> Harness<Hedger> {
        harness_with(PARAMS).unwrap_or_else(|e| panic!("{e}"))
    }

    fn harness_with(params: &str) -> Result<Harness<Hedger>, String> {
        let mut host = TestHost::new();
        host.add_instrument("a", "BTCUSDT", "BTC", "USDT", d("0.01"), d("0.0001"), d("0.0001"), d("1"));
        host.add_instrument("b", "BTCUSDT", "BTC", "USDT", d("0.1"), d("0.001"), d("0.001"), d("5"));
        Harness::init(host, params)
    }

    fn maker(trade: &str, side: Side, price: &str, qty: &str, ts: i64) -> Event {
        fill(InstrumentId(0), "grid-1", Whose::Others, trade, side, d(price), d(qty), ts)
    }

    fn placed(actions: &[Action]) -> Vec<(String, Side, Decimal, Decimal)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Place(o) => Some((o.client_order_id.clone(), o.side, o.limit_price().unwrap_or_default(), o.qty)),
                _ => None,
            })
            .collect()
    }

    fn update(id: &str, status: OrderStatus, filled: &str) -> Event {
        Event::Order(OrderUpdate {
            instrument: InstrumentId(1),
            owner: Whose::Mine,
            client_order_id: id.into(),
            status,
            filled_qty: d(filled),
            remaining_qty: Decimal::ZERO,
            reason: Some("test".into()),
            ts_ms: 0,
        })
    }

    #[test]
    fn aggregates_below_threshold_then_hedges_at_vwap_less_slippage() {
        let mut h = harness();
        // 0.0004 x 10000 = 4 USDT: under the 5 USDT minimum, so it waits.
        assert!(h.feed(vec![maker("t1", Side::Buy, "10000", "0.0004", 1_000)]).is_empty());
        // Net 0.0012 at VWAP 12.08 / 0.0012 = 10066.66..; a sell hedge of 0.001 (rounded
        // down) at VWAP x 0.999 = 10056.6.
        let actions = h.feed(vec![maker("t2", Side::Buy, "10100", "0.0008", 1_001)]);
        let id = ids::client_order_id("hedge", &["t1", "t2", "0"]);
        assert_eq!(placed(&actions), vec![(id, Side::Sell, d("10056.6"), d("0.001"))]);
        assert_eq!(h.strategy.state.risk.qty, d("0.0002"), "the rounding remainder stays as risk");
    }

    #[test]
    fn a_duplicate_fill_counts_once() {
        let mut h = harness();
        h.feed(vec![maker("t1", Side::Buy, "10000", "0.002", 1_000)]);
        let again = h.feed(vec![maker("t1", Side::Buy, "10000", "0.002", 1_001)]);
        assert!(placed(&again).is_empty());
        assert_eq!(h.strategy.state.duplicates, 1);
        assert_eq!(h.strategy.state.risk.qty, Decimal::ZERO);
    }

    #[test]
    fn a_rejected_hedge_is_hedged_again_once_with_a_new_id() {
        let mut h = harness();
        let first = placed(&h.feed(vec![maker("t1", Side::Sell, "10000", "0.002", 1_000)]));
        // A maker sell is hedged by a buy: 10000 x 1.001 = 10010.0.
        assert_eq!(first, vec![(ids::client_order_id("hedge", &["t1", "0"]), Side::Buy, d("10010"), d("0.002"))]);
        assert!(placed(&h.feed(vec![update(&first[0].0, OrderStatus::Rejected, "0")])).is_empty(), "waits for the retry delay");
        h.host.now_ms = 2_000;
        let retry = placed(&h.feed(vec![Event::Timer(2_000)]));
        assert_eq!(retry, vec![(ids::client_order_id("hedge", &["t1", "1"]), Side::Buy, d("10010"), d("0.002"))]);
        // The retry fills: nothing more is sent.
        let done = h.feed(vec![
            fill(InstrumentId(1), &retry[0].0, Whose::Mine, "h1", Side::Buy, d("10005"), d("0.002"), 1_002),
            update(&retry[0].0, OrderStatus::Filled, "0.002"),
        ]);
        assert!(placed(&done).is_empty());
        let info: Vec<&str> = h.host.logs.iter().filter(|(level, _)| *level == LogLevel::Info).map(|(_, line)| line.as_str()).collect();
        assert_eq!(info, [format!("hedged Buy 0.002 BTCUSDT as {} (VWAP 10000, attempt 1)", retry[0].0)], "one line a hedge, once it is done, none when it is decided");
        assert_eq!(h.strategy.state.hedged_qty, d("0.002"));
        assert!(h.strategy.state.hedges.is_empty());
    }

    #[test]
    fn a_partial_fill_returns_only_the_rest() {
        let mut h = harness();
        let first = placed(&h.feed(vec![maker("t1", Side::Buy, "10000", "0.005", 1_000)]));
        h.feed(vec![fill(InstrumentId(1), &first[0].0, Whose::Mine, "h1", Side::Sell, d("9990"), d("0.003"), 1_001), update(&first[0].0, OrderStatus::Expired, "0.003")]);
        h.host.now_ms = 2_001;
        let retry = placed(&h.feed(vec![Event::Timer(2_001)]));
        assert_eq!(retry, vec![(ids::client_order_id("hedge", &["t1", "1"]), Side::Sell, d("9990"), d("0.002"))]);
    }

    #[test]
    fn old_trade_ids_are_forgotten_after_the_horizon() {
        let mut h = harness();
        h.feed(vec![maker("t1", Side::Buy, "10000", "0.002", 0)]);
        h.host.now_ms = 2 * 60 * 60 * 1000 + 1;
        h.feed(vec![]);
        assert!(h.strategy.state.seen.is_empty());
        assert!(h.strategy.state.seen_ids.is_empty(), "the index forgets with the list");
        // Forgotten means hedged again if the venue repeats it that late.
        assert_eq!(placed(&h.feed(vec![maker("t1", Side::Buy, "10000", "0.002", 2 * 60 * 60 * 1000 + 2)])).len(), 1);
    }

    #[test]
    fn at_most_dedup_max_ids_are_remembered() {
        let mut h = harness_with(&PARAMS.replace('}', r#","dedup_max_ids":3}"#)).unwrap_or_else(|e| panic!("{e}"));
        for (n, id) in ["t1", "t2", "t3", "t4"].iter().enumerate() {
            h.feed(vec![maker(id, Side::Buy, "10000", "0.002", 1_000 + n as i64)]);
        }
        let seen: Vec<&str> = h.strategy.state.seen.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(seen, ["t2", "t3", "t4"], "the oldest id goes first");
        assert_eq!(h.strategy.state.seen_ids.len(), 3, "the index forgets with the list");
        assert!(placed(&h.feed(vec![maker("t4", Side::Buy, "10000", "0.002", 1_005)])).is_empty(), "a remembered id is a duplicate");
        assert_eq!(h.strategy.state.duplicates, 1);
        assert!(harness_with(&PARAMS.replace('}', r#","dedup_max_ids":0}"#)).is_err_and(|e| e.contains("dedup_max_ids")));
    }

    #[test]
    fn state_survives_a_swap() {
        let mut h = harness();
        h.feed(vec![maker("t1", Side::Buy, "10000", "0.0004", 1_000)]);
        h.swap(PARAMS).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(h.strategy.state.risk.qty, d("0.0004"));
        assert!(placed(&h.feed(vec![maker("t1", Side::Buy, "10000", "0.0004", 1_001)])).is_empty(), "still a duplicate after the swap");
    }
}
