//! grid: grid trading with risk management.
//!
//! The grid is `num_levels` resting orders a side around a reference price, spaced by
//! `grid_spacing_pct` of it, widened or narrowed by recent realised volatility when a
//! reference volatility is configured, never closer than `min_price_distance`; levels near
//! a configured support (buys) or resistance (sells) snap to it. A filled level is answered
//! by the opposite order one level away, which is how the grid earns its spacing. The grid
//! re-centres every `rebalance_interval` ms and whenever the price leaves it.
//!
//! Risk, checked on every batch and before every order:
//! - `max_position_size`: no order that could take the position past it;
//! - `max_drawdown`: equity (capital + realised + unrealised − fees) falling this fraction
//!   below its peak halts the grid and cancels everything, until new params arrive;
//! - `stop_loss_pct`: the price this percent against the average entry closes the position;
//! - `var_limit`: no new exposure whose value at risk (historical or parametric, over
//!   `var_window` returns) would exceed it, in quote currency, and none before there are
//!   `var_window` returns to estimate it from;
//! - `max_active_orders`;
//! - on perpetuals, `funding_rate` above `funding_threshold` shifts the grid against the
//!   side that pays funding.
//!
//! Between its decisions the grid tells the runtime which prices cannot make it act (the
//! contract's `quiet`): inside its range, short of its stop, and where no equity the band
//! allows could reach the drawdown. The runtime then holds those trades and hands them
//! over together, batch by batch as they were, so the grid decides exactly as if called
//! for each, without a call for each (`hold_quiet_trades`, on by default).

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use strategy_sdk::decimal::{round_step, Rounding};
use strategy_sdk::position::Position;
use strategy_sdk::stats::{value_at_risk, RollingReturns, VarMethod};
use strategy_sdk::{
    export_strategy, ids, Action, Decimal, Event, Fill, Host, InstrumentInfo, LogLevel, OrderRequest, QuietBand, Side, Strategy, Subscriptions, TimeInForce,
};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub venue: String,
    pub symbol: String,
    /// Quantity of each grid order, in base units.
    pub order_qty: Decimal,
    /// Distance between levels, in percent of the reference price.
    pub grid_spacing_pct: Decimal,
    /// Levels a side.
    pub num_levels: u32,
    /// Smallest distance between levels, in price units (default: one tick).
    #[serde(default)]
    pub min_price_distance: Option<Decimal>,
    /// Largest absolute position, in base units.
    pub max_position_size: Decimal,
    /// Capital the drawdown is measured against, in quote units.
    pub capital: Decimal,
    /// Largest fall of equity from its peak, as a fraction (0.05 = 5%).
    pub max_drawdown: Decimal,
    /// Loss from the average entry that closes the position, in percent.
    pub stop_loss_pct: Decimal,
    /// Largest value at risk of the position, in quote units; none: no VaR check.
    #[serde(default)]
    pub var_limit: Option<Decimal>,
    #[serde(default = "default_var_window")]
    pub var_window: usize,
    #[serde(default = "default_confidence")]
    pub var_confidence: Decimal,
    #[serde(default = "default_var_method")]
    pub var_method: VarMethod,
    pub max_active_orders: u32,
    /// Re-centre at least this often, in ms (0: only when the price leaves the grid).
    pub rebalance_interval: u64,
    /// Per-trade volatility (stdev of returns, in percent) at which the spacing is as
    /// configured; above it the grid widens, below it narrows (x0.5 to x3). None: fixed.
    #[serde(default)]
    pub volatility_reference_pct: Option<Decimal>,
    #[serde(default = "default_vol_window")]
    pub volatility_window: usize,
    #[serde(default)]
    pub support_levels: Vec<Decimal>,
    #[serde(default)]
    pub resistance_levels: Vec<Decimal>,
    /// A level within this percent of the spacing from a support/resistance snaps to it.
    #[serde(default = "default_snap")]
    pub snap_pct: Decimal,
    /// Funding rate per period on a perpetual (positive: longs pay).
    #[serde(default)]
    pub funding_rate: Decimal,
    #[serde(default = "default_funding_threshold")]
    pub funding_threshold: Decimal,
    #[serde(default = "default_prefix")]
    pub id_prefix: String,
    /// Tell the runtime which trades cannot make the grid act, so it holds them (see the
    /// module's doc); false: every trade is its own call, as before contract 0.1.4.
    #[serde(default = "default_true")]
    pub hold_quiet_trades: bool,
}

fn default_true() -> bool {
    true
}

fn default_var_window() -> usize {
    100
}
fn default_confidence() -> Decimal {
    Decimal::new(95, 2)
}
fn default_var_method() -> VarMethod {
    VarMethod::Historical
}
fn default_vol_window() -> usize {
    50
}
fn default_snap() -> Decimal {
    Decimal::from(50)
}
fn default_funding_threshold() -> Decimal {
    Decimal::new(1, 4)
}
fn default_prefix() -> String {
    "grid".into()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GridOrder {
    pub side: Side,
    pub price: Decimal,
    pub qty: Decimal,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// Position, average entry, realised PnL and fees, from our fills.
    pub book: Position,
    pub peak_equity: Option<Decimal>,
    /// The grid's own halt (its drawdown or stop loss); lifted by a params change.
    pub halted: Option<String>,
    /// The host's risk engine or the operator halted us; lifted by their resume. The
    /// host cancels the resting orders itself, and new ones would only be refused.
    #[serde(default)]
    pub host_halted: bool,
    pub center: Option<Decimal>,
    pub spacing: Decimal,
    pub last_price: Option<Decimal>,
    pub last_rebalance_ms: i64,
    /// Orders placed and not yet known to be done.
    pub orders: BTreeMap<String, GridOrder>,
    /// Increments with every order: part of each deterministic id.
    pub seq: u64,
    pub vol_returns: RollingReturns,
    pub var_returns: RollingReturns,
    pub var_blocks: u64,
}

#[derive(Clone)]
pub struct Grid {
    params: Params,
    info: InstrumentInfo,
    pub state: State,
    /// The quiet band told to the runtime last; none when none is. Not part of the
    /// state: a new version's runtime side starts without a band.
    declared: Option<QuietBand>,
    /// The lowest and highest prices of the batches inside the band since the peak was
    /// last brought up to date (see [`Grid::fold_peak`]).
    unfolded: Option<(Decimal, Decimal)>,
    /// The prices of the batches inside the band that the returns windows have not taken
    /// yet (see [`Grid::take_prices`]), none of them zero; at most one more than the
    /// longer window keeps, since older ones' returns would have left both windows.
    untaken: VecDeque<Decimal>,
    /// Whether prices were dropped from the front of `untaken`.
    untaken_cut: bool,
}

impl Grid {
    /// Capital plus realised and unrealised PnL less fees, at the last price; none when
    /// it does not fit a decimal, which halts the grid (its risk can no longer be told).
    pub fn equity(&self) -> Option<Decimal> {
        self.equity_at(self.state.last_price.unwrap_or(self.state.book.avg_entry))
    }

    /// Equity with the position marked at `price`: the one sum the drawdown test, the
    /// quiet band and the folded peak all take, so they cannot disagree.
    fn equity_at(&self, price: Decimal) -> Option<Decimal> {
        let book = &self.state.book;
        let unrealized = book.qty.checked_mul(price.checked_sub(book.avg_entry)?)?;
        self.params.capital.checked_add(book.realized.checked_add(unrealized)?.checked_sub(book.fees)?)
    }

    fn on_fill(&mut self, fill: &Fill) {
        self.state.book.apply_fill(fill, &self.info);
    }

    fn next_id(&mut self, kind: &str) -> String {
        self.state.seq += 1;
        ids::client_order_id(&self.params.id_prefix, &[kind, &self.state.seq.to_string()])
    }

    fn pending(&self, side: Side) -> Decimal {
        self.state.orders.values().filter(|o| o.side == side).map(|o| o.qty).sum()
    }

    /// Whether an order passes the grid's own limits; says why not.
    fn allowed(&self, side: Side, qty: Decimal, price: Decimal) -> Result<(), String> {
        if self.state.orders.len() as u32 >= self.params.max_active_orders {
            return Err("max_active_orders".into());
        }
        let worst = match side {
            Side::Buy => self.state.book.qty + self.pending(Side::Buy) + qty,
            Side::Sell => self.state.book.qty - self.pending(Side::Sell) - qty,
        };
        if worst.abs() > self.params.max_position_size {
            return Err(format!("max_position_size: the position could reach {worst}"));
        }
        if let Some(limit) = self.params.var_limit.filter(|_| worst.abs() > self.state.book.qty.abs()) {
            // No estimate yet (fewer than var_window returns): no new exposure either.
            if !self.state.var_returns.is_full() {
                return Err(format!("var_limit: {} of {} returns needed for a VaR estimate", self.state.var_returns.len(), self.params.var_window));
            }
            let var = value_at_risk(&self.state.var_returns, worst * price, self.params.var_confidence, self.params.var_method);
            if let Some(var) = var.filter(|v| *v > limit) {
                return Err(format!("var_limit: VaR {} > {limit}", var.round_dp(2)));
            }
        }
        Ok(())
    }

    fn place(&mut self, side: Side, price: Decimal, qty: Decimal, kind: &str, host: &mut dyn Host) -> Option<Action> {
        if price <= Decimal::ZERO || qty < self.info.min_qty || qty * price < self.info.min_notional {
            return None;
        }
        if let Err(why) = self.allowed(side, qty, price) {
            if why.starts_with("var_limit") {
                self.state.var_blocks += 1;
            }
            host.log(LogLevel::Debug, &format!("grid {side:?} {qty} at {price} not placed: {why}"));
            return None;
        }
        let id = self.next_id(kind);
        self.state.orders.insert(id.clone(), GridOrder { side, price, qty });
        Some(Action::Place(OrderRequest::limit(id, self.info.id, side, price, qty, TimeInForce::Gtc)))
    }

    fn spacing(&self, center: Decimal) -> Decimal {
        let mut pct = self.params.grid_spacing_pct;
        if let (Some(reference), Some(vol)) = (self.params.volatility_reference_pct, self.state.vol_returns.stdev()) {
            if reference > Decimal::ZERO && self.state.vol_returns.is_full() {
                let factor = (vol * Decimal::ONE_HUNDRED / reference).max(Decimal::new(5, 1)).min(Decimal::from(3));
                pct *= factor;
            }
        }
        let min = self.params.min_price_distance.unwrap_or(self.info.tick_size).max(self.info.tick_size);
        round_step((center * pct / Decimal::ONE_HUNDRED).max(min), self.info.tick_size, Rounding::Up)
    }

    fn snap(&self, price: Decimal, spacing: Decimal, anchors: &[Decimal]) -> Decimal {
        let reach = spacing * self.params.snap_pct / Decimal::ONE_HUNDRED;
        anchors.iter().copied().filter(|a| (*a - price).abs() <= reach).min_by_key(|a| (*a - price).abs()).unwrap_or(price)
    }

    /// Cancels the grid and lays it out again around `price`.
    fn recenter(&mut self, price: Decimal, now: i64, host: &mut dyn Host) -> Vec<Action> {
        let mut actions = vec![Action::CancelAll(Some(self.info.id))];
        self.state.orders.clear();
        let spacing = self.spacing(price);
        let skew = if self.params.funding_rate > self.params.funding_threshold {
            -round_step(spacing / Decimal::TWO, self.info.tick_size, Rounding::Down)
        } else if self.params.funding_rate < -self.params.funding_threshold {
            round_step(spacing / Decimal::TWO, self.info.tick_size, Rounding::Down)
        } else {
            Decimal::ZERO
        };
        let center = price + skew;
        self.state.center = Some(center);
        self.state.spacing = spacing;
        self.state.last_rebalance_ms = now;
        let qty = round_step(self.params.order_qty, self.info.lot_size, Rounding::Down);
        let (mut bids, mut asks) = (Vec::new(), Vec::new());
        for k in 1..=self.params.num_levels {
            let offset = spacing * Decimal::from(k);
            let bid = self.snap(round_step(center - offset, self.info.tick_size, Rounding::Down), spacing, &self.params.support_levels);
            let ask = self.snap(round_step(center + offset, self.info.tick_size, Rounding::Up), spacing, &self.params.resistance_levels);
            // Two levels snapped to one price would double the size there: keep one.
            if !bids.contains(&bid) {
                bids.push(bid);
                actions.extend(self.place(Side::Buy, bid, qty, "b", host));
            }
            if !asks.contains(&ask) {
                asks.push(ask);
                actions.extend(self.place(Side::Sell, ask, qty, "s", host));
            }
        }
        host.log(LogLevel::Info, &format!("grid centred at {center} spacing {spacing}, {} orders", self.state.orders.len()));
        actions
    }

    fn grid_range(&self) -> Option<(Decimal, Decimal)> {
        let center = self.state.center?;
        let reach = self.state.spacing * Decimal::from(self.params.num_levels);
        Some((center - reach, center + reach))
    }

    /// The prices strictly between which a batch of trades alone cannot make the grid act,
    /// as its state stands after a batch; none when there are none to promise (no grid, a
    /// position with no positive entry, arithmetic past a decimal's range, or a drawdown
    /// the band's own prices could reach). Each bound is that of a test `decide` makes on
    /// every batch, so a price inside passes all of them:
    /// - the range: outside it the grid re-centres;
    /// - the stop: long, a price at or below `entry − entry·stop/100` stops; short, at or
    ///   above `entry + entry·stop/100` (taken only when that division is exact);
    /// - the drawdown: the peak can rise to the best equity inside the band, and the test
    ///   must still fail at the worst, which for a position's linear equity are the bounds.
    ///
    /// A halted grid (its own halt or the host's) acts on nothing but params and resumes,
    /// so it is quiet at every price: the whole range of a decimal, told as no bounds.
    fn quiet_band(&self) -> Option<(Decimal, Decimal)> {
        if !self.params.hold_quiet_trades {
            return None;
        }
        self.state.last_price?;
        if self.state.halted.is_some() || self.state.host_halted {
            return Some((Decimal::MIN, Decimal::MAX));
        }
        let (mut low, mut high) = self.grid_range()?;
        let book = &self.state.book;
        if !book.qty.is_zero() && !book.avg_entry.is_zero() {
            if book.avg_entry < Decimal::ZERO {
                return None;
            }
            let product = book.avg_entry.checked_mul(self.params.stop_loss_pct)?;
            let reach = product.checked_div(Decimal::ONE_HUNDRED)?;
            if reach.checked_mul(Decimal::ONE_HUNDRED)? != product {
                return None;
            }
            if book.qty > Decimal::ZERO {
                low = low.max(book.avg_entry.checked_sub(reach)?);
            } else {
                high = high.min(book.avg_entry.checked_add(reach)?);
            }
        }
        if low >= high {
            return None;
        }
        let peak = self.state.peak_equity?;
        let (at_low, at_high) = (self.equity_at(low)?, self.equity_at(high)?);
        let best = peak.max(at_low).max(at_high);
        let worst = at_low.min(at_high);
        if best > Decimal::ZERO && best.checked_sub(worst)? >= self.params.max_drawdown.checked_mul(best)? {
            return None;
        }
        Some((low, high))
    }

    /// Tells the runtime the band when it changed.
    fn declare(&mut self, host: &mut dyn Host) {
        let bound = |d: Decimal, edge: Decimal| (d != edge).then_some(d);
        let band = self.quiet_band().map(|(low, high)| QuietBand { instrument: self.info.id, low: bound(low, Decimal::MIN), high: bound(high, Decimal::MAX) });
        if band == self.declared {
            return;
        }
        match band {
            Some(b) => host.set_quiet(b.instrument, b.low, b.high),
            None => host.clear_quiet(self.info.id),
        }
        self.declared = band;
    }

    /// Whether every event of the batch is a trade inside the band told to the runtime:
    /// a batch it held, or one it would have.
    fn inside_band(&self, events: &[Event]) -> bool {
        let Some(band) = &self.declared else { return false };
        !events.is_empty() && events.iter().all(|e| matches!(e, Event::Trade(t) if band.holds(t)))
    }
}

impl Strategy for Grid {
    fn init(params: &str, host: &mut dyn Host) -> Result<(Self, Subscriptions), String> {
        let params: Params = serde_json::from_str(params).map_err(|e| format!("bad params: {e}"))?;
        let info = host.lookup(&params.venue, &params.symbol)?;
        if params.num_levels == 0 || params.grid_spacing_pct <= Decimal::ZERO || params.order_qty <= Decimal::ZERO {
            return Err("num_levels, grid_spacing_pct and order_qty must be positive".into());
        }
        if params.max_drawdown <= Decimal::ZERO || params.max_drawdown >= Decimal::ONE {
            return Err(format!("max_drawdown {} must be a fraction in (0, 1)", params.max_drawdown));
        }
        let state = State {
            vol_returns: RollingReturns::new(params.volatility_window),
            var_returns: RollingReturns::new(params.var_window),
            ..Default::default()
        };
        let subscriptions = Subscriptions {
            trades: vec![info.id],
            timer_interval_ms: (params.rebalance_interval > 0).then_some(params.rebalance_interval),
            ..Default::default()
        };
        Ok((Grid { params, info, state, declared: None, unfolded: None, untaken: VecDeque::new(), untaken_cut: false }, subscriptions))
    }

    fn on_events(&mut self, events: &[Event], host: &mut dyn Host) -> Vec<Action> {
        // A batch inside the band changes nothing the band was drawn from but the peak,
        // which the band allowed for: it stands, and the batch takes the short way.
        if self.inside_band(events) {
            self.follow(events);
            return Vec::new();
        }
        self.fold_peak();
        self.take_prices();
        let actions = self.decide(events, host);
        self.declare(host);
        actions
    }

    fn snapshot(&self) -> Vec<u8> {
        if self.unfolded.is_some() || !self.untaken.is_empty() {
            let mut grid = self.clone();
            grid.fold_peak();
            grid.take_prices();
            return serde_json::to_vec(&grid.state).unwrap_or_default();
        }
        serde_json::to_vec(&self.state).unwrap_or_default()
    }

    fn restore(&mut self, state: &[u8], _host: &mut dyn Host) -> Result<(), String> {
        self.state = serde_json::from_slice(state).map_err(|e| format!("unreadable grid state: {e}"))?;
        // What was followed short of the state belonged to the state replaced.
        self.unfolded = None;
        self.untaken.clear();
        self.untaken_cut = false;
        Ok(())
    }
}

impl Grid {
    /// A batch inside the band: what `decide` would do with it, which is to follow the
    /// prices and raise the peak, and nothing else (the band's promise). Both are done
    /// later, when something reads them:
    /// - the peak from the batches' lowest and highest prices: the position does not
    ///   change between them, so equity is a straight line in the price and its highest
    ///   point over them is at one of the two (when halted, `decide` leaves the peak alone);
    /// - the returns from the prices kept in `untaken`: a return's division is most of
    ///   what following a price costs, and a long quiet stretch needs only the last
    ///   window's worth of them.
    fn follow(&mut self, events: &[Event]) {
        let keep = self.state.vol_returns.capacity().max(self.state.var_returns.capacity()).saturating_add(1);
        for event in events {
            if let Event::Trade(t) = event {
                self.state.last_price = Some(t.price);
                if t.price.is_zero() {
                    // No return is taken from a zero price, so one would change which
                    // prices the windows need: it goes in at once, after those before it.
                    self.take_prices();
                    self.follow_trade(t.price);
                } else {
                    if self.untaken.len() >= keep {
                        self.untaken.pop_front();
                        self.untaken_cut = true;
                    }
                    self.untaken.push_back(t.price);
                }
                if self.state.halted.is_none() && !self.state.host_halted {
                    let (low, high) = self.unfolded.get_or_insert((t.price, t.price));
                    *low = (*low).min(t.price);
                    *high = (*high).max(t.price);
                }
            }
        }
    }

    fn follow_trade(&mut self, price: Decimal) {
        self.state.last_price = Some(price);
        // Both windows follow the same prices: one division serves both.
        let step = self.state.vol_returns.next_step(price);
        let var_step = if self.state.var_returns.last_price() == self.state.vol_returns.last_price() { step } else { self.state.var_returns.next_step(price) };
        self.state.vol_returns.push_step(price, step);
        self.state.var_returns.push_step(price, var_step);
    }

    /// Hands the prices followed inside the band to the returns windows, as `decide`
    /// would have one by one. When the oldest were dropped, every return the windows hold
    /// now would have left them: the windows start again from the first price kept, and
    /// the `keep - 1` returns after it (none from a zero price: there are none) fill both.
    fn take_prices(&mut self) {
        if self.untaken.is_empty() {
            return;
        }
        let mut prices = std::mem::take(&mut self.untaken);
        if std::mem::take(&mut self.untaken_cut) {
            if let Some(first) = prices.pop_front() {
                self.state.vol_returns.push_step(first, None);
                self.state.var_returns.push_step(first, None);
            }
        }
        for price in prices.drain(..) {
            self.follow_trade(price);
        }
        self.untaken = prices;
    }

    /// The peak as `decide` would have left it after each of the batches inside the band.
    fn folded_peak(&self) -> Option<Decimal> {
        let (low, high) = self.unfolded?;
        let peak = self.state.peak_equity?;
        Some(peak.max(self.equity_at(low)?).max(self.equity_at(high)?))
    }

    /// Brings the peak up to date before anything can change the position.
    fn fold_peak(&mut self) {
        if let Some(peak) = self.folded_peak() {
            self.state.peak_equity = Some(peak);
        }
        self.unfolded = None;
    }

    /// What a batch makes the grid do: everything but the band.
    fn decide(&mut self, events: &[Event], host: &mut dyn Host) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut rebalance_due = false;
        for event in events {
            match event {
                Event::Trade(t) if t.instrument == self.info.id => self.follow_trade(t.price),
                Event::Fill(fill) if fill.is_mine() && fill.instrument == self.info.id => {
                    self.on_fill(fill);
                    let answered = self.state.orders.get(&fill.client_order_id).cloned();
                    if let Some(order) = answered {
                        if self.state.halted.is_none() && !self.state.host_halted {
                            // The opposite order one level away earns the spacing.
                            let (side, price) = match order.side {
                                Side::Buy => (Side::Sell, fill.price + self.state.spacing),
                                Side::Sell => (Side::Buy, fill.price - self.state.spacing),
                            };
                            actions.extend(self.place(side, price, fill.qty, "r", host));
                        }
                    }
                }
                Event::Order(update) if update.instrument == self.info.id && update.status.is_final() => {
                    self.state.orders.remove(&update.client_order_id);
                }
                Event::Timer(_) => rebalance_due = true,
                Event::Halted(halt) => {
                    host.log(LogLevel::Warn, &format!("halted by the host: {}; the grid stands still until resumed", halt.reason));
                    self.state.host_halted = true;
                }
                Event::Resumed => {
                    // Rebuilt around the market as it is now, not where it was at the halt.
                    self.state.host_halted = false;
                    self.state.center = None;
                }
                Event::Params(_) => {
                    if self.state.halted.take().is_some() {
                        host.log(LogLevel::Warn, "params changed: the grid resumes");
                    }
                    self.state.center = None;
                }
                _ => {}
            }
        }
        let Some(last) = self.state.last_price else { return actions };
        if self.state.halted.is_some() || self.state.host_halted {
            return actions;
        }
        let Some(equity) = self.equity() else {
            let reason = "equity does not fit a decimal".to_string();
            host.log(LogLevel::Error, &format!("grid halted: {reason}"));
            self.state.halted = Some(reason);
            self.state.orders.clear();
            return vec![Action::CancelAll(Some(self.info.id))];
        };
        let peak = *self.state.peak_equity.get_or_insert(equity);
        let peak = peak.max(equity);
        self.state.peak_equity = Some(peak);
        // The loss from the peak against max_drawdown of the peak: the fraction's test
        // without a division on every batch (the peak is positive here).
        if peak > Decimal::ZERO && peak - equity >= self.params.max_drawdown * peak {
            let reason = format!("drawdown {} from peak {peak} reached max_drawdown {}", (peak - equity).round_dp(4), self.params.max_drawdown);
            host.log(LogLevel::Error, &format!("grid halted: {reason}"));
            self.state.halted = Some(reason);
            self.state.orders.clear();
            return vec![Action::CancelAll(Some(self.info.id))];
        }
        let s = &self.state.book;
        if !s.qty.is_zero() && !s.avg_entry.is_zero() {
            let against = if s.qty > Decimal::ZERO { s.avg_entry - last } else { last - s.avg_entry };
            // `against / avg_entry` in percent reaching stop_loss_pct, tested without a
            // division on every batch where the entry is positive (a price always is).
            let stopped = if s.avg_entry > Decimal::ZERO {
                against * Decimal::ONE_HUNDRED >= self.params.stop_loss_pct * s.avg_entry
            } else {
                against / s.avg_entry * Decimal::ONE_HUNDRED >= self.params.stop_loss_pct
            };
            if stopped {
                let adverse = against / s.avg_entry;
                host.log(LogLevel::Warn, &format!("stop loss: price {last} is {}% against the entry {}", (adverse * Decimal::ONE_HUNDRED).round_dp(2), s.avg_entry));
                let side = if s.qty > Decimal::ZERO { Side::Sell } else { Side::Buy };
                let qty = s.qty.abs();
                self.state.orders.clear();
                let id = self.next_id("stop");
                self.state.center = None;
                return vec![Action::CancelAll(Some(self.info.id)), Action::Place(OrderRequest::market(id, self.info.id, side, qty))];
            }
        }
        let outside = self.grid_range().is_none_or(|(low, high)| last < low || last > high);
        // The clock is asked only when it can matter, not on every batch: it is a call to
        // the host (the grid workload replayed 6% faster without it, BENCHMARKS.md).
        if outside || rebalance_due {
            let now = host.now_ms();
            let interval_passed = self.params.rebalance_interval > 0 && now - self.state.last_rebalance_ms >= self.params.rebalance_interval as i64;
            if outside || interval_passed {
                actions = self.recenter(last, now, host);
            }
        }
        actions
    }
}

export_strategy!(Grid);

#[cfg(test)]
mod tests {
    use super::*;
    use strategy_sdk::harness::{fill, order_update, trade, Harness, TestHost};
    use strategy_sdk::{InstrumentId, OrderStatus, Whose};

    fn d(s: &str) -> Decimal {
        s.parse().unwrap_or_default()
    }

    /// Base params with `extra` (a JSON fragment starting with a comma) overriding them.
    fn params(extra: &str) -> String {
        let base = r#"{"venue":"p","symbol":"BTCUSDT","order_qty":"1","grid_spacing_pct":"1","num_levels":2,"max_position_size":"5","capital":"1000",
               "max_drawdown":"0.01","stop_loss_pct":"20","max_active_orders":10,"rebalance_interval":0}"#;
        let mut value: serde_json::Value = serde_json::from_str(base).unwrap_or_default();
        let extra: serde_json::Value = serde_json::from_str(&format!("{{{}}}", extra.trim_start_matches(','))).unwrap_or_default();
        if let (Some(map), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
            map.extend(extra.clone());
        }
        value.to_string()
    }

    fn harness(extra: &str) -> Harness<Grid> {
        let mut host = TestHost::new();
        host.add_instrument("p", "BTCUSDT", "BTC", "USDT", d("1"), d("0.1"), d("0.1"), d("1"));
        Harness::init(host, &params(extra)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The grid's promise to the runtime, checked by the harness at every batch: a batch
    /// of trades alone inside the band it told makes it do nothing. And its short way
    /// through such batches decides exactly as the long one: a twin without bands
    /// (`hold_quiet_trades` false) takes the same actions at every batch and ends with
    /// the same state, peak included. A random walk through a small matcher (the grid's
    /// resting orders fill when the price crosses them, its market orders at once) drives
    /// them through fills, re-centres, stops and drawdown halts, with bands that are wide,
    /// cut by the stop, or withdrawn near the drawdown.
    #[test]
    fn no_trade_inside_the_quiet_band_makes_the_grid_act() {
        let cases = [
            ("", 1u64),
            (r#","max_drawdown":"0.3","stop_loss_pct":"1.5""#, 2),
            (r#","max_drawdown":"0.002","max_position_size":"50""#, 3),
            (r#","grid_spacing_pct":"0.3","num_levels":4,"stop_loss_pct":"0.7","max_position_size":"50""#, 4),
            (r#","volatility_window":3,"var_window":5,"var_limit":"8","volatility_reference_pct":"0.5","max_position_size":"50""#, 5),
        ];
        let (mut held, mut fills, mut stops, mut halts, mut cut) = (0, 0, 0, 0, 0);
        for (extra, seed) in cases {
            let mut h = harness(extra);
            let mut twin = harness(&format!(r#"{extra},"hold_quiet_trades":false"#));
            let mut resting: Vec<(String, Side, Decimal, Decimal)> = Vec::new();
            let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let mut price = d("100");
            for n in 1..=3000u64 {
                rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                let step = Decimal::from((rng >> 33) % 21) / Decimal::from(10) - Decimal::ONE;
                price = (price + step).max(d("10"));
                let print = trade(InstrumentId(0), n, price, d("1"), Side::Buy, n as i64);
                let Event::Trade(t) = &print else { unreachable!() };
                if h.host.holds(t) {
                    held += 1;
                }
                let mut batch = vec![print];
                resting.retain(|(id, side, at, qty)| {
                    let crossed = match side {
                        Side::Buy => price <= *at,
                        Side::Sell => price >= *at,
                    };
                    if crossed {
                        batch.push(fill(InstrumentId(0), id, Whose::Mine, &format!("t{n}{id}"), *side, *at, *qty, n as i64));
                        batch.push(order_update(InstrumentId(0), id, OrderStatus::Filled, *qty, Decimal::ZERO, None, n as i64));
                        fills += 1;
                    }
                    !crossed
                });
                let actions = h.feed(batch.clone());
                assert_eq!(actions, twin.feed(batch), "batch {n} of case {seed}");
                if h.strategy.untaken_cut {
                    cut += 1;
                }
                for action in actions {
                    match action {
                        Action::CancelAll(_) => resting.clear(),
                        Action::Place(o) => match o.limit_price() {
                            Some(at) => resting.push((o.client_order_id.clone(), o.side, at, o.qty)),
                            None => {
                                stops += 1;
                                let id = o.client_order_id.clone();
                                let done = vec![fill(InstrumentId(0), &id, Whose::Mine, &format!("m{n}"), o.side, price, o.qty, n as i64), order_update(InstrumentId(0), &id, OrderStatus::Filled, o.qty, Decimal::ZERO, None, n as i64)];
                                assert_eq!(h.feed(done.clone()), twin.feed(done));
                            }
                        },
                        Action::Cancel { client_order_id, .. } => resting.retain(|(id, ..)| *id != client_order_id),
                    }
                }
                if h.strategy.state.halted.is_some() {
                    halts += 1;
                    assert_eq!(h.feed(vec![Event::Params("{}".into())]), twin.feed(vec![Event::Params("{}".into())]));
                }
                if n % 500 == 0 {
                    assert_eq!(String::from_utf8_lossy(&h.strategy.snapshot()), String::from_utf8_lossy(&twin.strategy.snapshot()), "batch {n} of case {seed}");
                }
            }
            assert!(twin.host.quiet.is_empty());
        }
        assert!(held > 3000 && fills > 100 && stops > 0 && halts > 0 && cut > 0, "the walk did not reach every case: {held} held, {fills} fills, {stops} stops, {halts} halts, {cut} quiet stretches longer than the windows");
    }

    fn places(actions: &[Action]) -> Vec<(Side, Decimal)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Place(o) => Some((o.side, o.limit_price().unwrap_or_default())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn levels_around_the_reference_price() {
        let mut h = harness("");
        let actions = h.feed(vec![trade(InstrumentId(0), 1, d("100"), d("1"), Side::Buy, 0)]);
        assert_eq!(actions.first(), Some(&Action::CancelAll(Some(InstrumentId(0)))));
        assert_eq!(places(&actions), vec![(Side::Buy, d("99")), (Side::Sell, d("101")), (Side::Buy, d("98")), (Side::Sell, d("102"))]);
    }

    #[test]
    fn the_timer_recentres_once_the_interval_has_passed_and_not_before() {
        let mut h = harness(r#","rebalance_interval":1000"#);
        assert_eq!(h.subscriptions.timer_interval_ms, Some(1000));
        assert!(!places(&h.feed(vec![trade(InstrumentId(0), 1, d("100"), d("1"), Side::Buy, 0)])).is_empty(), "laid out at the first trade");
        // Inside the grid, no timer: nothing; a timer before the interval: nothing.
        assert_eq!(h.feed(vec![trade(InstrumentId(0), 2, d("101"), d("1"), Side::Buy, 500)]), vec![]);
        assert_eq!(h.feed(vec![Event::Timer(999)]), vec![]);
        // A trade inside the grid after the interval, without the timer: still nothing.
        assert_eq!(h.feed(vec![trade(InstrumentId(0), 3, d("101"), d("1"), Side::Buy, 1000)]), vec![]);
        // The timer once the interval has passed: re-centred on the last price, 101 (its
        // spacing, 1% of 101, rounded up onto the tick: 2).
        let actions = h.feed(vec![Event::Timer(1000)]);
        assert_eq!(actions.first(), Some(&Action::CancelAll(Some(InstrumentId(0)))));
        assert_eq!(places(&actions)[..2], [(Side::Buy, d("99")), (Side::Sell, d("103"))]);
        // And a timer right after it waits for the next interval.
        assert_eq!(h.feed(vec![Event::Timer(1500)]), vec![]);
    }

    #[test]
    fn levels_snap_to_support_and_resistance_and_respect_min_distance() {
        let mut h = harness(r#","min_price_distance":"1.5""#);
        let actions = h.feed(vec![trade(InstrumentId(0), 1, d("100"), d("1"), Side::Buy, 0)]);
        // Spacing 1% of 100 = 1, raised to the 1.5 minimum, rounded up onto the tick: 2.
        assert_eq!(places(&actions), vec![(Side::Buy, d("98")), (Side::Sell, d("102")), (Side::Buy, d("96")), (Side::Sell, d("104"))]);
        let mut h = harness(r#","support_levels":["98.6"],"resistance_levels":["101.4"]"#);
        let actions = h.feed(vec![trade(InstrumentId(0), 1, d("100"), d("1"), Side::Buy, 0)]);
        assert_eq!(places(&actions)[..2], [(Side::Buy, d("98.6")), (Side::Sell, d("101.4"))]);
    }

    #[test]
    fn volatility_widens_the_grid() {
        let mut h = harness(r#","volatility_reference_pct":"0.5","volatility_window":4"#);
        // Returns of about ±2%: four times the reference, so spacing x3 (the cap).
        let prices = ["100", "102", "100", "102", "100"];
        let events = prices.iter().enumerate().map(|(i, p)| trade(InstrumentId(0), i as u64, d(p), d("1"), Side::Buy, i as i64)).collect();
        let actions = h.feed(events);
        assert_eq!(places(&actions)[..2], [(Side::Buy, d("97")), (Side::Sell, d("103"))]);
    }

    #[test]
    fn a_fill_is_answered_one_level_away_and_pnl_is_exact() {
        let mut h = harness(r#","max_drawdown":"0.5""#);
        let grid = h.feed(vec![trade(InstrumentId(0), 1, d("100"), d("1"), Side::Buy, 0)]);
        let Some(Action::Place(bid)) = grid.get(1).cloned() else { panic!("no bid: {grid:?}") };
        let answer = h.feed(vec![fill(InstrumentId(0), &bid.client_order_id, Whose::Mine, "f1", Side::Buy, d("99"), d("1"), 1)]);
        assert_eq!(places(&answer), vec![(Side::Sell, d("100"))]);
        let Some(Action::Place(ask)) = answer.first().cloned() else { panic!() };
        h.feed(vec![fill(InstrumentId(0), &ask.client_order_id, Whose::Mine, "f2", Side::Sell, d("100"), d("1"), 2)]);
        assert_eq!(h.strategy.state.book.qty, Decimal::ZERO);
        assert_eq!(h.strategy.state.book.realized, d("1"));
    }

    #[test]
    fn drawdown_halts_and_cancels() {
        let mut h = harness("");
        let grid = h.feed(vec![trade(InstrumentId(0), 1, d("100"), d("1"), Side::Buy, 0)]);
        let Some(Action::Place(bid)) = grid.get(1).cloned() else { panic!() };
        h.feed(vec![fill(InstrumentId(0), &bid.client_order_id, Whose::Mine, "f1", Side::Buy, d("99"), d("2"), 1)]);
        // Long 2 from 99: at 93, equity is 1000 - 12 = 988, 1.2% under the peak.
        let actions = h.feed(vec![trade(InstrumentId(0), 2, d("93"), d("1"), Side::Sell, 2)]);
        assert_eq!(actions, vec![Action::CancelAll(Some(InstrumentId(0)))]);
        assert!(h.strategy.state.halted.is_some());
        assert!(h.feed(vec![trade(InstrumentId(0), 3, d("80"), d("1"), Side::Sell, 3)]).is_empty(), "halted: nothing more");
    }

    #[test]
    fn a_host_halt_stills_the_grid_until_the_resume_rebuilds_it_around_the_market() {
        let mut h = harness(r#","max_drawdown":"0.5""#);
        let grid = h.feed(vec![trade(InstrumentId(0), 1, d("100"), d("1"), Side::Buy, 0)]);
        let Some(Action::Place(bid)) = grid.get(1).cloned() else { panic!("no bid: {grid:?}") };
        assert!(h.feed(vec![Event::Halted(strategy_sdk::Halt { reason: "halted by the operator".into(), reducing_allowed: true })]).is_empty());
        let filled = h.feed(vec![fill(InstrumentId(0), &bid.client_order_id, Whose::Mine, "f1", Side::Buy, d("99"), d("1"), 1)]);
        assert!(places(&filled).is_empty(), "no answer to a fill while halted: {filled:?}");
        assert_eq!(h.strategy.state.book.qty, d("1"), "fills still count");
        assert!(h.feed(vec![trade(InstrumentId(0), 2, d("90"), d("1"), Side::Sell, 2)]).is_empty());
        let rebuilt = h.feed(vec![Event::Resumed]);
        assert!(!places(&rebuilt).is_empty() && places(&rebuilt).iter().all(|(_, price)| (*price - d("90")).abs() < d("10")), "{rebuilt:?}");
    }

    #[test]
    fn stop_loss_closes_the_position() {
        let mut h = harness(r#","max_drawdown":"0.9","stop_loss_pct":"5""#);
        h.feed(vec![trade(InstrumentId(0), 1, d("100"), d("1"), Side::Buy, 0)]);
        h.strategy.state.orders.insert("x".into(), GridOrder { side: Side::Buy, price: d("99"), qty: d("1") });
        h.feed(vec![fill(InstrumentId(0), "x", Whose::Mine, "f1", Side::Buy, d("99"), d("1"), 1)]);
        let actions = h.feed(vec![trade(InstrumentId(0), 2, d("94"), d("1"), Side::Sell, 2)]);
        assert!(matches!(actions.last(), Some(Action::Place(o)) if o.side == Side::Sell && o.qty == d("1") && o.limit_price().is_none()), "{actions:?}");
    }

    /// Both limits are reached at their bound exactly ("reaches", not "passes"), long and
    /// short: the tests without divisions decide as the fractions do.
    #[test]
    fn the_stop_and_the_drawdown_are_reached_at_their_bounds_exactly() {
        let stop_sells = |actions: &[Action]| matches!(actions.last(), Some(Action::Place(o)) if o.limit_price().is_none());
        for (side, short_of_it, at_it) in [(Side::Buy, "95.01", "95"), (Side::Sell, "104.99", "105")] {
            let mut h = harness(r#","max_drawdown":"0.9","stop_loss_pct":"5""#);
            h.feed(vec![trade(InstrumentId(0), 1, d("100"), d("1"), Side::Buy, 0)]);
            h.feed(vec![fill(InstrumentId(0), "x", Whose::Mine, "f1", side, d("100"), d("1"), 1)]);
            assert!(!stop_sells(&h.feed(vec![trade(InstrumentId(0), 2, d(short_of_it), d("1"), Side::Sell, 2)])), "{side:?}: 4.99% against is not the stop");
            assert!(stop_sells(&h.feed(vec![trade(InstrumentId(0), 3, d(at_it), d("1"), Side::Sell, 3)])), "{side:?}: 5% against is the stop");
        }
        // Capital 1000, max_drawdown 0.01: long 1 from 100, the peak stays 1000.
        let mut h = harness("");
        h.feed(vec![trade(InstrumentId(0), 1, d("100"), d("1"), Side::Buy, 0)]);
        h.feed(vec![fill(InstrumentId(0), "x", Whose::Mine, "f1", Side::Buy, d("100"), d("1"), 1)]);
        h.feed(vec![trade(InstrumentId(0), 2, d("90.01"), d("1"), Side::Sell, 2)]);
        assert!(h.strategy.state.halted.is_none(), "9.99 under a peak of 1000 is short of 1%");
        assert_eq!(h.feed(vec![trade(InstrumentId(0), 3, d("90"), d("1"), Side::Sell, 3)]), vec![Action::CancelAll(Some(InstrumentId(0)))]);
        assert!(h.strategy.state.halted.is_some(), "10 under a peak of 1000 is 1%");
    }

    #[test]
    fn var_limit_blocks_new_exposure() {
        let volatile = ["100", "103", "99", "104", "98", "103", "100"];
        let events = |p: &[&str]| p.iter().enumerate().map(|(i, p)| trade(InstrumentId(0), i as u64, d(p), d("1"), Side::Buy, i as i64)).collect::<Vec<_>>();
        let mut tight = harness(r#","var_limit":"1","var_window":6"#);
        assert!(places(&tight.feed(events(&volatile))).is_empty());
        assert!(tight.strategy.state.var_blocks > 0);
        let mut loose = harness(r#","var_limit":"100","var_window":6"#);
        assert_eq!(places(&loose.feed(events(&volatile))).len(), 4);
    }

    #[test]
    fn funding_skews_the_grid_against_the_paying_side() {
        let mut h = harness(r#","funding_rate":"0.0005","grid_spacing_pct":"2""#);
        let actions = h.feed(vec![trade(InstrumentId(0), 1, d("100"), d("1"), Side::Buy, 0)]);
        // Longs pay: centre 100 - 1 = 99, spacing 2.
        assert_eq!(places(&actions)[..2], [(Side::Buy, d("97")), (Side::Sell, d("101"))]);
    }

    #[test]
    fn state_survives_a_swap() {
        let mut h = harness("");
        h.feed(vec![trade(InstrumentId(0), 1, d("100"), d("1"), Side::Buy, 0)]);
        let orders = h.strategy.state.orders.len();
        h.swap(&params("")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(h.strategy.state.orders.len(), orders);
        assert_eq!(h.strategy.state.center, Some(d("100")));
    }
}
