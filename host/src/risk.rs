//! The risk engine: the limits the host holds over every strategy, whatever the strategy
//! itself decides. The router asks it about every order before the order can leave; the
//! engine marks each strategy's PnL to the last trades and halts one that breaches its
//! loss or drawdown limit.
//!
//! Limits come from `[risk]` and a strategy's own `[strategy.risk]` (see
//! [`crate::config::RiskConfig`]); all of them change with a config reload. A refusal
//! names the limit as it is written in the config and the figures that broke it, so an
//! operator reading one line knows what to change.

use std::collections::{HashMap, VecDeque};

use crate::config::{RiskConfig, StrategyRiskConfig};
use crate::model::{Decimal, InstrumentId, InstrumentInfo, OrderRequest, Side, StrategyId};

/// One second of event time: the window of the rate limits.
const RATE_WINDOW_MS: i64 = 1000;

/// A strategy's stake in one instrument: its position and what its open orders would add.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exposure {
    /// Net base quantity: positive long, negative short.
    pub position: Decimal,
    /// Unfilled quantity of its open buy orders.
    pub open_buy: Decimal,
    /// Unfilled quantity of its open sell orders.
    pub open_sell: Decimal,
}

impl Exposure {
    /// The largest position (either way) it could reach if every open order filled.
    pub fn worst(&self) -> Decimal {
        let long = self.position.saturating_add(self.open_buy);
        let short = self.position.saturating_sub(self.open_sell);
        long.abs().max(short.abs())
    }

    /// The same with one more order added.
    pub fn with(mut self, side: Side, qty: Decimal) -> Exposure {
        match side {
            Side::Buy => self.open_buy = self.open_buy.saturating_add(qty),
            Side::Sell => self.open_sell = self.open_sell.saturating_add(qty),
        }
        self
    }

    /// True when an order only brings the position towards zero, with the open orders on
    /// its side counted: it can neither grow nor flip the position.
    pub fn reduces(&self, side: Side, qty: Decimal) -> bool {
        match side {
            Side::Buy => self.position < Decimal::ZERO && self.open_buy.saturating_add(qty) <= -self.position,
            Side::Sell => self.position > Decimal::ZERO && self.open_sell.saturating_add(qty) <= self.position,
        }
    }
}

/// What the risk engine is shown of an order before it leaves.
pub struct Proposed<'a> {
    pub owner: StrategyId,
    pub info: &'a InstrumentInfo,
    pub request: &'a OrderRequest,
    /// The limit price, or the last trade for a market order (none before any trade).
    pub price: Option<Decimal>,
    /// The last trade on the instrument.
    pub last: Option<Decimal>,
    pub open_orders: usize,
    /// The strategy's exposure on the instrument before this order.
    pub exposure: Exposure,
    /// Every strategy's exposure on every instrument except this one (owner, instrument),
    /// as notional at the last trades; only worked out when a gross limit is set.
    pub gross_elsewhere: Option<Decimal>,
}

#[derive(Default)]
pub struct RiskEngine {
    global: RiskConfig,
    own: HashMap<StrategyId, StrategyRiskConfig>,
    /// The operator's grants (`trade_on`); absent: no bound beyond the strategy's own.
    grants: HashMap<StrategyId, Vec<InstrumentId>>,
    positions: HashMap<(StrategyId, InstrumentId), Decimal>,
    placed: HashMap<StrategyId, VecDeque<i64>>,
    cancels: HashMap<StrategyId, VecDeque<i64>>,
    halted: HashMap<StrategyId, String>,
}

impl RiskEngine {
    pub fn new(global: RiskConfig) -> Self {
        RiskEngine { global, ..Default::default() }
    }

    pub fn global(&self) -> &RiskConfig {
        &self.global
    }

    /// New global limits (a config reload); positions, windows and halts carry over.
    pub fn set_global(&mut self, global: RiskConfig) {
        self.global = global;
    }

    pub fn set_own(&mut self, strategy: StrategyId, own: StrategyRiskConfig) {
        self.own.insert(strategy, own);
    }

    /// The instruments the operator grants a strategy; none: no bound of its own.
    pub fn set_grant(&mut self, strategy: StrategyId, grant: Option<Vec<InstrumentId>>) {
        match grant {
            Some(g) => self.grants.insert(strategy, g),
            None => self.grants.remove(&strategy),
        };
    }

    /// The limits that apply to a strategy: its own entry over the global one.
    pub fn limits(&self, strategy: StrategyId) -> RiskConfig {
        self.own.get(&strategy).map_or_else(|| self.global.clone(), |own| self.global.overridden_by(own))
    }

    /// The loss and drawdown limits alone, without building the whole [`RiskConfig`]:
    /// they are checked after every batch.
    pub fn loss_limits(&self, strategy: StrategyId) -> (Option<Decimal>, Option<Decimal>) {
        let own = self.own.get(&strategy);
        (own.and_then(|o| o.max_loss).or(self.global.max_loss), own.and_then(|o| o.max_drawdown).or(self.global.max_drawdown))
    }

    pub fn position(&self, strategy: StrategyId, instrument: InstrumentId) -> Decimal {
        self.positions.get(&(strategy, instrument)).copied().unwrap_or_default()
    }

    /// Every strategy's position, for the gross exposure.
    pub fn positions(&self) -> impl Iterator<Item = (&(StrategyId, InstrumentId), &Decimal)> {
        self.positions.iter()
    }

    /// After a restart: positions come back from the checkpointed statistics.
    pub fn seed_position(&mut self, strategy: StrategyId, instrument: InstrumentId, net: Decimal) {
        self.positions.insert((strategy, instrument), net);
    }

    /// A fill of one of `strategy`'s orders. Saturating: a venue's figures are not trusted.
    /// A fee paid in the base asset (`base_fee`) leaves that much less held.
    pub fn on_fill(&mut self, strategy: StrategyId, instrument: InstrumentId, side: Side, qty: Decimal, base_fee: Decimal) {
        let p = self.positions.entry((strategy, instrument)).or_default();
        *p = match side {
            Side::Buy => p.saturating_add(qty),
            Side::Sell => p.saturating_sub(qty),
        }
        .saturating_sub(base_fee);
    }

    pub fn halted(&self, strategy: StrategyId) -> Option<&str> {
        self.halted.get(&strategy).map(String::as_str)
    }

    pub fn halt(&mut self, strategy: StrategyId, reason: String) {
        self.halted.insert(strategy, reason);
    }

    /// Lifts a halt; false when the strategy was not halted.
    pub fn resume(&mut self, strategy: StrategyId) -> bool {
        self.halted.remove(&strategy).is_some()
    }

    /// The gross limit, when set: the router then works out `gross_elsewhere`.
    pub fn gross_limit(&self) -> Option<Decimal> {
        self.global.max_gross_exposure
    }

    /// Every pre-trade limit, in the order an operator would look: the grant, a halt, the
    /// order's own size and price, then what it adds to the strategy's and everyone's
    /// exposure, then the order rate. The first breach is the answer.
    pub fn check(&mut self, p: &Proposed, now_ms: i64) -> Result<(), String> {
        let limits = self.limits(p.owner);
        let (info, request) = (p.info, p.request);
        let at = format!("{} on {}", info.symbol, info.venue_name);
        if self.grants.get(&p.owner).is_some_and(|g| !g.contains(&request.instrument)) {
            return Err(format!("risk: {at} is not granted to this strategy by its config (trade_on)"));
        }
        if let Some(reason) = self.halted.get(&p.owner) {
            if !limits.halt_allows_reducing {
                return Err(format!("risk: the strategy is halted ({reason}); no orders until it is resumed"));
            }
            if !p.exposure.reduces(request.side, request.qty) {
                return Err(format!(
                    "risk: the strategy is halted ({reason}); only orders that reduce its position are taken (position {}, open buys {}, open sells {})",
                    p.exposure.position, p.exposure.open_buy, p.exposure.open_sell
                ));
            }
        }
        if p.open_orders as u32 >= limits.max_open_orders {
            return Err(format!("risk: {} open orders is the limit (risk.max_open_orders)", limits.max_open_orders));
        }
        if let (Some(limit), Some(price)) = (limits.max_order_notional, p.price) {
            let notional = price.saturating_mul(request.qty);
            if notional > limit {
                return Err(format!("risk: notional {notional} exceeds risk.max_order_notional {limit}"));
            }
        }
        if let (Some(band), Some(limit_price), Some(last)) = (limits.price_band_pct, request.limit_price(), p.last) {
            if last > Decimal::ZERO {
                let off = (limit_price - last).abs().checked_div(last).unwrap_or(Decimal::MAX).saturating_mul(Decimal::ONE_HUNDRED);
                if off > band {
                    return Err(format!("risk: price {limit_price} is {}% from the last trade {last}, beyond risk.price_band_pct {band}%", off.round_dp(2).normalize()));
                }
            }
        }
        let after = p.exposure.with(request.side, request.qty);
        if let (Some(limit), Some(price)) = (limits.max_position_notional, p.price) {
            let notional = after.worst().saturating_mul(price);
            if notional > limit {
                return Err(format!(
                    "risk: {at}: position {} with open buys {} and sells {} would reach {} ({notional} at {price}), beyond risk.max_position_notional {limit}",
                    p.exposure.position,
                    after.open_buy,
                    after.open_sell,
                    after.worst()
                ));
            }
        }
        if let (Some(limit), Some(elsewhere), Some(price)) = (self.global.max_gross_exposure, p.gross_elsewhere, p.price) {
            // Only an order that adds to the exposure is held to it: one that reduces it
            // must stay possible when the limit is already reached.
            let before = p.exposure.worst().saturating_mul(price);
            let gross = elsewhere.saturating_add(after.worst().saturating_mul(price));
            if gross > limit && after.worst() > p.exposure.worst() {
                return Err(format!("risk: gross exposure would be {gross} (this instrument {before} before the order), beyond risk.max_gross_exposure {limit}"));
            }
        }
        if let Some(limit) = limits.max_orders_per_s {
            let recent = recent(self.placed.entry(p.owner).or_default(), now_ms);
            if recent >= limit as usize {
                return Err(format!("risk: {recent} orders in the last second is the limit (risk.max_orders_per_s {limit})"));
            }
        }
        Ok(())
    }

    /// An order passed and left (or was recommended): it counts towards the order rate.
    pub fn placed(&mut self, strategy: StrategyId, now_ms: i64) {
        if self.limits(strategy).max_orders_per_s.is_some() {
            self.placed.entry(strategy).or_default().push_back(now_ms);
        }
    }

    /// A strategy asks to cancel `count` orders: refused whole when that would go over
    /// its cancel rate, otherwise counted.
    pub fn cancels(&mut self, strategy: StrategyId, count: usize, now_ms: i64) -> Result<(), String> {
        let Some(limit) = self.limits(strategy).max_cancels_per_s else { return Ok(()) };
        let window = self.cancels.entry(strategy).or_default();
        let recent = recent(window, now_ms);
        if recent.saturating_add(count) > limit as usize {
            return Err(format!("risk: {count} more cancels after {recent} in the last second would pass risk.max_cancels_per_s {limit}"));
        }
        window.extend(std::iter::repeat_n(now_ms, count));
        Ok(())
    }
}

/// Entries of a rate window within the last second, older ones dropped.
fn recent(window: &mut VecDeque<i64>, now_ms: i64) -> usize {
    while window.front().is_some_and(|t| *t <= now_ms.saturating_sub(RATE_WINDOW_MS)) {
        window.pop_front();
    }
    window.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{OrderType, TimeInForce, VenueId};

    fn d(s: &str) -> Decimal {
        s.parse().unwrap_or_default()
    }

    fn info() -> InstrumentInfo {
        InstrumentInfo {
            id: InstrumentId(0),
            venue: VenueId(0),
            venue_name: "paper".into(),
            symbol: "BTCUSDT".into(),
            base_asset: "BTC".into(),
            quote_asset: "USDT".into(),
            tick_size: d("0.1"),
            lot_size: d("0.001"),
            min_qty: d("0.001"),
            min_notional: d("5"),
            paper: true,
        }
    }

    fn order(side: Side, price: &str, qty: &str) -> OrderRequest {
        OrderRequest { client_order_id: "o".into(), instrument: InstrumentId(0), side, order_type: OrderType::Limit { price: d(price), time_in_force: TimeInForce::Gtc }, qty: d(qty) }
    }

    /// An order of strategy 0 with the last trade at 10000.
    fn proposed<'a>(info: &'a InstrumentInfo, request: &'a OrderRequest, exposure: Exposure, gross_elsewhere: &str) -> Proposed<'a> {
        Proposed { owner: StrategyId(0), info, request, price: request.limit_price(), last: Some(d("10000")), open_orders: 0, exposure, gross_elsewhere: Some(d(gross_elsewhere)) }
    }

    fn check(risk: &mut RiskEngine, request: &OrderRequest, exposure: Exposure, now_ms: i64) -> Result<(), String> {
        let info = info();
        risk.check(&proposed(&info, request, exposure, "0"), now_ms)
    }

    #[test]
    fn a_position_limit_counts_open_orders_and_names_itself() {
        let mut risk = RiskEngine::new(RiskConfig { max_position_notional: Some(d("10000")), ..Default::default() });
        let flat = Exposure::default();
        assert!(check(&mut risk, &order(Side::Buy, "10000", "1"), flat, 0).is_ok());
        let open = Exposure { position: d("0.5"), open_buy: d("0.4"), open_sell: Decimal::ZERO };
        let err = check(&mut risk, &order(Side::Buy, "10000", "0.2"), open, 0).err().unwrap_or_default();
        assert!(err.contains("risk.max_position_notional 10000") && err.contains("11000"), "{err}");
        // The other side brings it back: allowed.
        assert!(check(&mut risk, &order(Side::Sell, "10000", "0.5"), open, 0).is_ok());
    }

    #[test]
    fn a_strategy_entry_overrides_the_global_limit() {
        let mut risk = RiskEngine::new(RiskConfig { max_order_notional: Some(d("100")), ..Default::default() });
        assert!(check(&mut risk, &order(Side::Buy, "10000", "0.02"), Exposure::default(), 0).is_err());
        risk.set_own(StrategyId(0), StrategyRiskConfig { max_order_notional: Some(d("1000")), ..Default::default() });
        assert!(check(&mut risk, &order(Side::Buy, "10000", "0.02"), Exposure::default(), 0).is_ok());
    }

    #[test]
    fn the_price_band_refuses_a_fat_finger() {
        let mut risk = RiskEngine::new(RiskConfig { price_band_pct: Some(d("5")), ..Default::default() });
        assert!(check(&mut risk, &order(Side::Buy, "10400", "0.01"), Exposure::default(), 0).is_ok());
        let err = check(&mut risk, &order(Side::Buy, "11000", "0.01"), Exposure::default(), 0).err().unwrap_or_default();
        assert!(err.contains("10%") && err.contains("risk.price_band_pct 5%"), "{err}");
    }

    #[test]
    fn order_and_cancel_rates_are_per_second_of_event_time() {
        let mut risk = RiskEngine::new(RiskConfig { max_orders_per_s: Some(2), max_cancels_per_s: Some(3), ..Default::default() });
        let o = order(Side::Buy, "10000", "0.01");
        for t in [0, 500] {
            assert!(check(&mut risk, &o, Exposure::default(), t).is_ok());
            risk.placed(StrategyId(0), t);
        }
        let err = check(&mut risk, &o, Exposure::default(), 999).err().unwrap_or_default();
        assert!(err.contains("risk.max_orders_per_s 2"), "{err}");
        assert!(check(&mut risk, &o, Exposure::default(), 1000).is_ok(), "the first one left the window");
        assert!(risk.cancels(StrategyId(0), 2, 0).is_ok());
        assert!(risk.cancels(StrategyId(0), 2, 10).err().unwrap_or_default().contains("risk.max_cancels_per_s 3"));
        assert!(risk.cancels(StrategyId(0), 1, 10).is_ok());
        assert!(risk.cancels(StrategyId(0), 3, 1010).is_ok());
    }

    #[test]
    fn a_halted_strategy_may_only_reduce() {
        let mut risk = RiskEngine::new(RiskConfig::default());
        risk.halt(StrategyId(0), "risk.max_loss 100 reached".into());
        let long = Exposure { position: d("0.5"), ..Default::default() };
        assert!(check(&mut risk, &order(Side::Sell, "10000", "0.5"), long, 0).is_ok());
        let err = check(&mut risk, &order(Side::Sell, "10000", "0.6"), long, 0).err().unwrap_or_default();
        assert!(err.contains("halted (risk.max_loss 100 reached)") && err.contains("only orders that reduce"), "{err}");
        assert!(check(&mut risk, &order(Side::Buy, "10000", "0.1"), long, 0).is_err());
        risk.set_own(StrategyId(0), StrategyRiskConfig { halt_allows_reducing: Some(false), ..Default::default() });
        assert!(check(&mut risk, &order(Side::Sell, "10000", "0.1"), long, 0).is_err());
        assert!(risk.resume(StrategyId(0)));
        assert!(check(&mut risk, &order(Side::Buy, "10000", "0.1"), long, 0).is_ok());
    }

    #[test]
    fn gross_exposure_counts_everyone_and_lets_reductions_through() {
        let mut risk = RiskEngine::new(RiskConfig { max_gross_exposure: Some(d("20000")), ..Default::default() });
        let info = info();
        let buy = order(Side::Buy, "10000", "1");
        assert!(risk.check(&proposed(&info, &buy, Exposure::default(), "10000"), 0).is_ok());
        let err = risk.check(&proposed(&info, &buy, Exposure::default(), "15000"), 0).err().unwrap_or_default();
        assert!(err.contains("risk.max_gross_exposure 20000") && err.contains("25000"), "{err}");
        let long = Exposure { position: d("1"), ..Default::default() };
        let sell = order(Side::Sell, "10000", "0.5");
        assert!(risk.check(&proposed(&info, &sell, long, "15000"), 0).is_ok());
    }

    #[test]
    fn a_grant_bounds_where_a_strategy_trades() {
        let mut risk = RiskEngine::new(RiskConfig::default());
        risk.set_grant(StrategyId(0), Some(vec![InstrumentId(3)]));
        let err = check(&mut risk, &order(Side::Buy, "10000", "0.01"), Exposure::default(), 0).err().unwrap_or_default();
        assert!(err.contains("BTCUSDT on paper is not granted") && err.contains("trade_on"), "{err}");
        risk.set_grant(StrategyId(0), None);
        assert!(check(&mut risk, &order(Side::Buy, "10000", "0.01"), Exposure::default(), 0).is_ok());
    }
}
