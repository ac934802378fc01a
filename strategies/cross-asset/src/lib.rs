//! cross-asset: delta-neutral hedging of a primary position with a correlated asset
//! (BTC-PERP hedged with ETH-PERP, say).
//!
//! The primary position is whatever the account holds on the primary instrument: every
//! account fill there moves it, whoever traded. For each configured pair the strategy keeps
//! a hedge position on the hedge instrument at a target:
//!
//! - `notional`: hedge notional = −primary notional × `factor` (a fixed ratio);
//! - `delta`: hedge notional = −primary notional × β, with β = `factor`, or a rolling
//!   beta of the primary's returns on the hedge's when `beta_window` is set. Both prices
//!   are sampled together on every `rebalance_interval`, so the returns are paired in time
//!   (pairing per trade would mix up two series that tick independently); until
//!   `beta_window` samples are in, `factor` is used.
//!
//! It trades the difference when it exceeds both `threshold_pct` of the target and
//! `min_size`, or at least `min_size` on every `rebalance_interval`; by market order, or by
//! limit order at the hedge's last price, cancelled and replaced after `limit_timeout_ms`.
//! Each pair's PnL (realised, unrealised and fees of both legs) is logged on the interval
//! and kept in the state store under `pnl`, so it can be read from outside.

use serde::{Deserialize, Serialize};
use strategy_sdk::decimal::{round_step, Rounding};
use strategy_sdk::position::Position;
use strategy_sdk::stats::{beta, RollingReturns};
use strategy_sdk::{
    export_strategy, ids, Action, Decimal, Event, Host, InstrumentInfo, LogLevel, OrderRequest, Side, Strategy, Subscriptions, TimeInForce,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Notional,
    Delta,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Execution {
    Market,
    Limit,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairParams {
    pub primary_venue: String,
    pub primary_symbol: String,
    pub hedge_venue: String,
    pub hedge_symbol: String,
    pub method: Method,
    /// The ratio (notional) or beta (delta) of hedge notional per primary notional.
    pub factor: Decimal,
    /// With `delta`: estimate beta over this many paired returns, sampled every
    /// `rebalance_interval`, instead of using `factor`.
    #[serde(default)]
    pub beta_window: Option<usize>,
    /// Deviation from the target that triggers a rebalance, in percent of the target.
    pub threshold_pct: Decimal,
    /// Smallest hedge trade, in hedge base units.
    pub min_size: Decimal,
    #[serde(default = "default_execution")]
    pub execution: Execution,
    #[serde(default = "default_timeout")]
    pub limit_timeout_ms: i64,
    /// At a fresh start, take the positions the account already holds in both instruments
    /// (the `account` import) as the pair's own, so a restart beside an open position
    /// hedges it rather than starting flat. Their entry prices are not known: PnL counts
    /// from the first prices seen. A hot swap or a resume carries the state instead.
    #[serde(default)]
    pub adopt_positions: bool,
}

fn default_execution() -> Execution {
    Execution::Market
}
fn default_timeout() -> i64 {
    5_000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub pairs: Vec<PairParams>,
    /// Rebalance and report at least this often, in ms.
    #[serde(default = "default_interval")]
    pub rebalance_interval: u64,
    #[serde(default = "default_prefix")]
    pub id_prefix: String,
}

fn default_interval() -> u64 {
    10_000
}
fn default_prefix() -> String {
    "xa".into()
}

/// A hedge order on its way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Working {
    pub id: String,
    pub side: Side,
    pub qty: Decimal,
    pub filled: Decimal,
    pub placed_ms: i64,
    pub cancel_sent: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PairState {
    pub primary: Position,
    pub hedge: Position,
    pub primary_last: Option<Decimal>,
    pub hedge_last: Option<Decimal>,
    pub primary_returns: RollingReturns,
    pub hedge_returns: RollingReturns,
    pub working: Option<Working>,
    pub seen_fills: Vec<String>,
}

/// PnL of one pair, as logged and stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairPnl {
    pub primary: String,
    pub hedge: String,
    pub realized: Decimal,
    pub unrealized: Decimal,
    pub fees: Decimal,
    pub total: Decimal,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub pairs: Vec<PairState>,
    pub seq: u64,
}

struct Pair {
    params: PairParams,
    primary: InstrumentInfo,
    hedge: InstrumentInfo,
}

pub struct CrossAsset {
    params: Params,
    pairs: Vec<Pair>,
    pub state: State,
}

impl CrossAsset {
    /// The hedge position this pair should hold now; none until both prices are known.
    pub fn target(&self, i: usize) -> Option<Decimal> {
        let (pair, s) = (&self.pairs[i], &self.state.pairs[i]);
        let (pp, hp) = (s.primary_last?, s.hedge_last?);
        if hp.is_zero() {
            return None;
        }
        let factor = match (pair.params.method, pair.params.beta_window) {
            (Method::Delta, Some(_)) if s.primary_returns.is_full() && s.hedge_returns.is_full() => {
                // β of the primary's returns on the hedge's: hedge notional per primary notional.
                beta(&s.hedge_returns, &s.primary_returns).unwrap_or(pair.params.factor)
            }
            _ => pair.params.factor,
        };
        Some(-(s.primary.qty * pp * factor) / hp)
    }

    pub fn pnl(&self, i: usize) -> PairPnl {
        let (pair, s) = (&self.pairs[i], &self.state.pairs[i]);
        let pp = s.primary_last.unwrap_or(s.primary.avg_entry);
        let hp = s.hedge_last.unwrap_or(s.hedge.avg_entry);
        let realized = s.primary.realized + s.hedge.realized;
        let unrealized = s.primary.unrealized(pp) + s.hedge.unrealized(hp);
        let fees = s.primary.fees + s.hedge.fees;
        PairPnl { primary: pair.primary.symbol.clone(), hedge: pair.hedge.symbol.clone(), realized, unrealized, fees, total: realized + unrealized - fees }
    }

    fn rebalance(&mut self, i: usize, on_interval: bool, now: i64) -> Option<Action> {
        let target = self.target(i)?;
        let (pair, s) = (&self.pairs[i], &self.state.pairs[i]);
        if let Some(w) = &s.working {
            // One hedge order at a time; a stale limit order is cancelled first.
            if pair.params.execution == Execution::Limit && !w.cancel_sent && now - w.placed_ms >= pair.params.limit_timeout_ms {
                let id = w.id.clone();
                if let Some(w) = self.state.pairs[i].working.as_mut() {
                    w.cancel_sent = true;
                }
                return Some(Action::Cancel { instrument: pair.hedge.id, client_order_id: id });
            }
            return None;
        }
        let deviation = target - s.hedge.qty;
        let threshold = (target.abs() * pair.params.threshold_pct / Decimal::ONE_HUNDRED).max(pair.params.min_size);
        let needed = if on_interval { pair.params.min_size } else { threshold };
        if deviation.abs() < needed {
            return None;
        }
        let side = if deviation > Decimal::ZERO { Side::Buy } else { Side::Sell };
        let qty = round_step(deviation.abs(), pair.hedge.lot_size, Rounding::Down);
        let price = s.hedge_last?;
        if qty < pair.hedge.min_qty || qty * price < pair.hedge.min_notional || qty.is_zero() {
            return None;
        }
        self.state.seq += 1;
        let id = ids::client_order_id(&self.params.id_prefix, &[&i.to_string(), &self.state.seq.to_string()]);
        let order = match pair.params.execution {
            Execution::Market => OrderRequest::market(id.clone(), pair.hedge.id, side, qty),
            Execution::Limit => {
                let limit = round_step(price, pair.hedge.tick_size, Rounding::passive(side));
                OrderRequest::limit(id.clone(), pair.hedge.id, side, limit, qty, TimeInForce::Gtc)
            }
        };
        self.state.pairs[i].working = Some(Working { id, side, qty, filled: Decimal::ZERO, placed_ms: now, cancel_sent: false });
        Some(Action::Place(order))
    }

    fn report(&self, host: &mut dyn Host) {
        let all: Vec<PairPnl> = (0..self.pairs.len()).map(|i| self.pnl(i)).collect();
        for p in &all {
            host.log(
                LogLevel::Info,
                &format!("{}/{} PnL: realised {} unrealised {} fees {} total {}", p.primary, p.hedge, p.realized.round_dp(4), p.unrealized.round_dp(4), p.fees.round_dp(4), p.total.round_dp(4)),
            );
        }
        host.state_set("pnl", &serde_json::to_vec(&all).unwrap_or_default());
    }
}

impl Strategy for CrossAsset {
    fn init(params: &str, host: &mut dyn Host) -> Result<(Self, Subscriptions), String> {
        let params: Params = serde_json::from_str(params).map_err(|e| format!("bad params: {e}"))?;
        if params.pairs.is_empty() {
            return Err("no pairs configured".into());
        }
        let mut pairs = Vec::new();
        let mut subs = Subscriptions { timer_interval_ms: Some(params.rebalance_interval.max(1)), ..Default::default() };
        let mut state = State::default();
        for p in &params.pairs {
            let primary = host.lookup(&p.primary_venue, &p.primary_symbol)?;
            let hedge = host.lookup(&p.hedge_venue, &p.hedge_symbol)?;
            if p.factor <= Decimal::ZERO || p.min_size <= Decimal::ZERO {
                return Err(format!("pair {}/{}: factor and min_size must be positive", primary.symbol, hedge.symbol));
            }
            subs.trades.extend([primary.id, hedge.id]);
            subs.account_fills.push(primary.id);
            let window = p.beta_window.unwrap_or(2).max(2);
            let mut pair = PairState { primary_returns: RollingReturns::new(window), hedge_returns: RollingReturns::new(window), ..Default::default() };
            if p.adopt_positions {
                pair.primary.qty = host.position(primary.id).unwrap_or_default();
                pair.hedge.qty = host.position(hedge.id).unwrap_or_default();
                host.log(LogLevel::Info, &format!("{}/{}: adopted the account's positions {} and {}", primary.symbol, hedge.symbol, pair.primary.qty, pair.hedge.qty));
            }
            state.pairs.push(pair);
            pairs.push(Pair { params: p.clone(), primary, hedge });
        }
        Ok((CrossAsset { params, pairs, state }, subs))
    }

    fn on_events(&mut self, events: &[Event], host: &mut dyn Host) -> Vec<Action> {
        let mut on_interval = false;
        for event in events {
            for (i, pair) in self.pairs.iter().enumerate() {
                let s = &mut self.state.pairs[i];
                match event {
                    Event::Trade(t) if t.instrument == pair.primary.id => s.primary_last = Some(t.price),
                    Event::Trade(t) if t.instrument == pair.hedge.id => s.hedge_last = Some(t.price),
                    Event::Timer(_) => {
                        if let (Some(p), Some(h)) = (s.primary_last, s.hedge_last) {
                            s.primary_returns.push(p);
                            s.hedge_returns.push(h);
                        }
                    }
                    Event::Fill(f) if f.instrument == pair.primary.id && !s.seen_fills.contains(&f.trade_id) => {
                        s.seen_fills.push(f.trade_id.clone());
                        if s.seen_fills.len() > 10_000 {
                            s.seen_fills.remove(0);
                        }
                        s.primary.apply_fill(f, &pair.primary);
                    }
                    Event::Fill(f) if f.is_mine() && f.instrument == pair.hedge.id => {
                        s.hedge.apply_fill(f, &pair.hedge);
                        if let Some(w) = s.working.as_mut().filter(|w| w.id == f.client_order_id) {
                            w.filled += f.qty;
                        }
                    }
                    Event::Order(u) if u.instrument == pair.hedge.id && u.status.is_final() && s.working.as_ref().is_some_and(|w| w.id == u.client_order_id) => {
                        s.working = None;
                    }
                    _ => {}
                }
            }
            if matches!(event, Event::Timer(_)) {
                on_interval = true;
            }
        }
        let now = host.now_ms();
        let actions: Vec<Action> = (0..self.pairs.len()).filter_map(|i| self.rebalance(i, on_interval, now)).collect();
        if on_interval {
            self.report(host);
        }
        actions
    }

    fn snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(&self.state).unwrap_or_default()
    }

    fn restore(&mut self, state: &[u8], _host: &mut dyn Host) -> Result<(), String> {
        let state: State = serde_json::from_slice(state).map_err(|e| format!("unreadable cross-asset state: {e}"))?;
        if state.pairs.len() != self.pairs.len() {
            return Err(format!("the saved state has {} pairs, the params {}", state.pairs.len(), self.pairs.len()));
        }
        self.state = state;
        Ok(())
    }
}

export_strategy!(CrossAsset);

#[cfg(test)]
mod tests {
    use super::*;
    use strategy_sdk::harness::{fill, trade, Harness, TestHost};
    use strategy_sdk::{InstrumentId, OrderStatus, OrderUpdate, Whose};

    fn d(s: &str) -> Decimal {
        s.parse().unwrap_or_default()
    }

    fn harness(method: &str, execution: &str, extra: &str) -> Harness<CrossAsset> {
        let mut host = TestHost::new();
        host.add_instrument("a", "BTCUSDT", "BTC", "USDT", d("0.1"), d("0.001"), d("0.001"), d("5"));
        host.add_instrument("b", "ETHUSDT", "ETH", "USDT", d("0.01"), d("0.01"), d("0.01"), d("5"));
        let params = format!(
            r#"{{"pairs":[{{"primary_venue":"a","primary_symbol":"BTCUSDT","hedge_venue":"b","hedge_symbol":"ETHUSDT","method":"{method}","factor":"1",
                "threshold_pct":"1","min_size":"0.1","execution":"{execution}"{extra}}}],"rebalance_interval":1000}}"#
        );
        Harness::init(host, &params).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_fresh_start_can_adopt_the_positions_the_account_holds() {
        let mut host = TestHost::new();
        let btc = host.add_instrument("a", "BTCUSDT", "BTC", "USDT", d("0.1"), d("0.001"), d("0.001"), d("5"));
        let eth = host.add_instrument("b", "ETHUSDT", "ETH", "USDT", d("0.01"), d("0.01"), d("0.01"), d("5"));
        host.positions.insert(btc.id, d("2"));
        host.positions.insert(eth.id, d("-10"));
        let params = |adopt: bool| {
            format!(
                r#"{{"pairs":[{{"primary_venue":"a","primary_symbol":"BTCUSDT","hedge_venue":"b","hedge_symbol":"ETHUSDT","method":"notional","factor":"1",
                "threshold_pct":"1","min_size":"0.1","adopt_positions":{adopt}}}],"rebalance_interval":1000}}"#
            )
        };
        let mut h = Harness::<CrossAsset>::init(host, &params(true)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((h.strategy.state.pairs[0].primary.qty, h.strategy.state.pairs[0].hedge.qty), (d("2"), d("-10")));
        // 2 BTC at 100 against -10 ETH at 10: the target is -20 ETH, so it sells 10 more.
        let hedge = prices(&mut h, "100", "10", 1);
        assert!(hedge.iter().any(|a| matches!(a, Action::Place(o) if o.side == Side::Sell && o.qty == d("10"))), "{hedge:?}");
        let host = std::mem::take(&mut h.host);
        let flat = Harness::<CrossAsset>::init(host, &params(false)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(flat.strategy.state.pairs[0].primary.qty, Decimal::ZERO, "off by default");
    }

    fn prices(h: &mut Harness<CrossAsset>, btc: &str, eth: &str, ts: i64) -> Vec<Action> {
        h.feed(vec![trade(InstrumentId(0), ts as u64, d(btc), d("1"), Side::Buy, ts), trade(InstrumentId(1), ts as u64, d(eth), d("1"), Side::Buy, ts)])
    }

    fn only_place(actions: &[Action]) -> OrderRequest {
        match actions {
            [Action::Place(o)] => o.clone(),
            other => panic!("expected one order, got {other:?}"),
        }
    }

    #[test]
    fn a_primary_position_is_hedged_at_the_ratio_and_small_moves_do_not_trade() {
        let mut h = harness("notional", "market", "");
        assert!(prices(&mut h, "10000", "250", 1).is_empty(), "flat: nothing to hedge");
        // The account buys 1 BTC: hedge notional -10000 / 250 = sell 40 ETH.
        let order = only_place(&h.feed(vec![fill(InstrumentId(0), "", Whose::Others, "m1", Side::Buy, d("10000"), d("1"), 2)]));
        assert_eq!((order.side, order.qty, order.limit_price()), (Side::Sell, d("40"), None));
        h.feed(vec![
            fill(InstrumentId(1), &order.client_order_id, Whose::Mine, "h1", Side::Sell, d("250"), d("40"), 3),
            Event::Order(OrderUpdate { instrument: InstrumentId(1), owner: Whose::Mine, client_order_id: order.client_order_id.clone(), status: OrderStatus::Filled, filled_qty: d("40"), remaining_qty: Decimal::ZERO, reason: None, ts_ms: 3 }),
        ]);
        // BTC to 10010: target -40.04, a 0.04 deviation, under both 1% and 0.1 ETH.
        assert!(prices(&mut h, "10010", "250", 4).is_empty());
        // BTC to 10500: target -42, deviation 2 (4.8%): sell 2 more.
        let more = only_place(&prices(&mut h, "10500", "250", 5));
        assert_eq!((more.side, more.qty), (Side::Sell, d("2")));
    }

    #[test]
    fn pnl_matches_a_hand_computation() {
        let mut h = harness("notional", "market", "");
        prices(&mut h, "10000", "250", 1);
        let mut primary = fill(InstrumentId(0), "", Whose::Others, "m1", Side::Buy, d("10000"), d("1"), 2);
        if let Event::Fill(f) = &mut primary {
            f.fee = d("2");
        }
        let order = only_place(&h.feed(vec![primary]));
        let mut hedge = fill(InstrumentId(1), &order.client_order_id, Whose::Mine, "h1", Side::Sell, d("250"), d("40"), 3);
        if let Event::Fill(f) = &mut hedge {
            f.fee = d("1");
        }
        h.feed(vec![hedge]);
        prices(&mut h, "10100", "252", 4);
        // BTC leg +100, ETH leg -(252 - 250) x 40 = -80, fees 3: total 17.
        let pnl = h.strategy.pnl(0);
        assert_eq!((pnl.realized, pnl.unrealized, pnl.fees, pnl.total), (d("0"), d("20"), d("3"), d("17")));
        h.feed(vec![Event::Timer(1000)]);
        let stored: Vec<PairPnl> = serde_json::from_slice(&h.host.state.get("pnl").cloned().unwrap_or_default()).unwrap_or_default();
        assert_eq!(stored.first().map(|p| p.total), Some(d("17")));
    }

    #[test]
    fn delta_with_a_rolling_beta() {
        let mut h = harness("delta", "market", r#","beta_window":4"#);
        // BTC moves twice as much as ETH in relative terms: beta 2.
        let path = [("10000", "250"), ("10200", "252.5"), ("10098", "251.2375"), ("10300", "253.7625"), ("10197", "252.4937")];
        for (i, (b, e)) in path.iter().enumerate() {
            prices(&mut h, b, e, i as i64);
            // Both prices are sampled together on the interval.
            h.feed(vec![Event::Timer(1000 * i as i64)]);
        }
        let order = only_place(&h.feed(vec![fill(InstrumentId(0), "", Whose::Others, "m1", Side::Buy, d("10197"), d("1"), 10)]));
        // Hedge notional about 2 x 10197 = 20394 at ~252.49: about 80.77 ETH.
        assert_eq!(order.side, Side::Sell);
        assert!(order.qty > d("80") && order.qty < d("81.5"), "{}", order.qty);
    }

    #[test]
    fn a_stale_limit_hedge_is_cancelled_and_replaced() {
        let mut h = harness("notional", "limit", r#","limit_timeout_ms":500"#);
        prices(&mut h, "10000", "250", 1);
        let order = only_place(&h.feed(vec![fill(InstrumentId(0), "", Whose::Others, "m1", Side::Buy, d("10000"), d("1"), 2)]));
        assert_eq!(order.limit_price(), Some(d("250")));
        h.host.now_ms = 600;
        let cancel = h.feed(vec![Event::Timer(600)]);
        assert_eq!(cancel, vec![Action::Cancel { instrument: InstrumentId(1), client_order_id: order.client_order_id.clone() }]);
        let replaced = h.feed(vec![Event::Order(OrderUpdate {
            instrument: InstrumentId(1),
            owner: Whose::Mine,
            client_order_id: order.client_order_id.clone(),
            status: OrderStatus::Canceled,
            filled_qty: Decimal::ZERO,
            remaining_qty: Decimal::ZERO,
            reason: None,
            ts_ms: 601,
        })]);
        let again = only_place(&replaced);
        assert_ne!(again.client_order_id, order.client_order_id);
        assert_eq!(again.qty, d("40"));
    }
}
