//! Order routing: the checks every order passes before it leaves, and the bookkeeping of
//! what each strategy has open.
//!
//! - Idempotency: a client order id is used once per venue, ever. A strategy derives ids
//!   from its intents, so a second copy of an intent is refused here instead of sent.
//! - Instrument rules (tick, lot, minimums) are checked before the venue sees the order,
//!   so a live venue never has to reject what we could have caught.
//! - Risk limits: every order is put to the [`RiskEngine`] (open orders, order notional,
//!   position, price band, rates, gross exposure, halts, the operator's grant); the router
//!   tells it what is open and what filled.
//! - Self-trade prevention on our side: an order that would trade against a resting
//!   order of the same account on that venue is refused, whatever the venue's own STP
//!   does. Only a strategy that declared self-trading, on a paper venue, is exempt.
//! - Recommend mode: the order is logged as a recommendation and never sent.

use std::collections::{HashMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::config::{Mode, RiskConfig};
use crate::market::Market;
use crate::risk::{Exposure, Proposed, RiskEngine};
use crate::stats::FeeIn;
use crate::model::{
    bounds, validate_client_order_id, Decimal, InstrumentId, OrderRequest, OrderStatus, OrderType, OrderUpdate, SelfTradePrevention, Side, StrategyId, VenueId,
};
use crate::venue::VenueEvent;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenOrder {
    pub owner: StrategyId,
    pub instrument: InstrumentId,
    pub side: Side,
    pub price: Option<Decimal>,
    /// Quantity not yet filled (zero in checkpoints written before it was kept).
    #[serde(default)]
    pub remaining: Decimal,
}

/// The open orders by (venue, client order id). The router owns them; strategies read
/// their own through the `account` import, during their calls, when the router is idle.
#[derive(Clone, Default)]
pub struct SharedOpenOrders(std::sync::Arc<std::sync::Mutex<HashMap<(VenueId, String), OpenOrder>>>);

impl SharedOpenOrders {
    /// A panic while it was held is a host bug; the map is still usable, so the poison
    /// is cleared rather than taking the host down.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(VenueId, String), OpenOrder>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An open order as the control API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenView {
    pub venue: VenueId,
    pub client_order_id: String,
    pub owner: StrategyId,
    pub instrument: InstrumentId,
    pub side: Side,
    /// None for a market order.
    pub price: Option<Decimal>,
    /// Quantity not yet filled.
    pub remaining: Decimal,
}

/// Orders kept in the in-memory journal (the most recent ones, for reports and tests).
pub const JOURNAL_KEEP: usize = 10_000;
/// Of those, the most recent ones a checkpoint carries.
pub const JOURNAL_IN_CHECKPOINT: usize = 1_000;
/// Client order ids remembered at most, whatever the window: the newest are kept.
pub const MAX_REMEMBERED_IDS: usize = 500_000;

pub struct Router {
    mode: Mode,
    risk: RiskEngine,
    /// Every (venue, client order id) sent within the id window (`risk.client_id_window_s`
    /// of event time, at most [`MAX_REMEMBERED_IDS`]), with when: never sent twice.
    used_ids: HashMap<(VenueId, String), i64>,
    /// Size at which the id set is next pruned (amortised, not on every order).
    prune_at: usize,
    open: SharedOpenOrders,
    open_count: HashMap<StrategyId, u32>,
    self_trading: HashSet<StrategyId>,
    /// Instruments each strategy declared it trades on (`orders-on`); absent: anywhere.
    orders_on: HashMap<StrategyId, Vec<InstrumentId>>,
    /// The latest orders sent (or recommended), in order, at most [`JOURNAL_KEEP`]. The
    /// durable journal is the store's: each live order is written there before it is sent.
    journal: VecDeque<JournalEntry>,
    /// The final update of orders adopted from the journal after a restart, to answer a
    /// strategy that sends the same intent again.
    finished: HashMap<(VenueId, String), OrderUpdate>,
    /// Orders adopted from the store's journal after a restart, until their intent is seen
    /// again: only these may be acknowledged without being sent.
    restored: HashMap<(VenueId, String), JournalEntry>,
}

/// An order as it left the router: the intent, before the venue answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub strategy: StrategyId,
    pub venue: VenueId,
    pub request: OrderRequest,
    pub ts_ms: i64,
    /// True when it was only recommended (recommend mode), not sent.
    pub recommended: bool,
}

/// What the router remembers, for a checkpoint: ids ever used, open orders, the journal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterState {
    used_ids: Vec<(VenueId, String, i64)>,
    open: Vec<(VenueId, String, OpenOrder)>,
    journal: Vec<JournalEntry>,
}

/// What became of an order the router was asked to place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    /// Handed to the venue; its answer comes back as venue events.
    Sent,
    /// Logged as a recommendation (recommend mode).
    Recommended,
    /// Refused before it left; the update tells the strategy why.
    Refused(OrderUpdate),
}

impl Router {
    pub fn new(mode: Mode, risk: RiskConfig) -> Self {
        Router {
            mode,
            risk: RiskEngine::new(risk),
            used_ids: HashMap::new(),
            prune_at: 1024,
            open: SharedOpenOrders::default(),
            open_count: HashMap::new(),
            self_trading: HashSet::new(),
            orders_on: HashMap::new(),
            journal: VecDeque::new(),
            finished: HashMap::new(),
            restored: HashMap::new(),
        }
    }

    /// Records what a strategy declared at init: whether it crosses its own orders on
    /// purpose (paper only), and where it may place orders.
    pub fn set_permissions(&mut self, strategy: StrategyId, subscriptions: &crate::model::Subscriptions) {
        if subscriptions.self_trading {
            self.self_trading.insert(strategy);
        } else {
            self.self_trading.remove(&strategy);
        }
        if subscriptions.orders_on.is_empty() {
            self.orders_on.remove(&strategy);
        } else {
            self.orders_on.insert(strategy, subscriptions.orders_on.clone());
        }
    }

    /// New global risk limits; open orders and used ids carry over.
    pub fn set_risk(&mut self, risk: RiskConfig) {
        self.risk.set_global(risk);
    }

    /// The risk engine: per-strategy limits, grants, halts and positions.
    pub fn risk(&self) -> &RiskEngine {
        &self.risk
    }

    pub fn risk_mut(&mut self) -> &mut RiskEngine {
        &mut self.risk
    }

    /// A strategy's position on an instrument and what its open orders would add.
    pub fn exposure(&self, owner: StrategyId, instrument: InstrumentId) -> Exposure {
        let mut e = Exposure { position: self.risk.position(owner, instrument), ..Default::default() };
        for o in self.open.lock().values().filter(|o| o.owner == owner && o.instrument == instrument) {
            match o.side {
                Side::Buy => e.open_buy = e.open_buy.saturating_add(o.remaining),
                Side::Sell => e.open_sell = e.open_sell.saturating_add(o.remaining),
            }
        }
        e
    }

    /// Every strategy's worst-case exposure, as notional at the last trades, leaving out
    /// one (strategy, instrument). An instrument with no trade yet counts at its orders'
    /// prices.
    fn gross_exposure_except(&self, market: &Market, except: (StrategyId, InstrumentId)) -> Decimal {
        let mut keys: HashSet<(StrategyId, InstrumentId)> = self.risk.positions().map(|(k, _)| *k).collect();
        keys.extend(self.open.lock().values().map(|o| (o.owner, o.instrument)));
        keys.remove(&except);
        let mut gross = Decimal::ZERO;
        for (owner, instrument) in keys {
            let price = market.last_price(instrument).or_else(|| self.open.lock().values().find(|o| o.instrument == instrument).and_then(|o| o.price)).unwrap_or_default();
            gross = gross.saturating_add(self.exposure(owner, instrument).worst().saturating_mul(price));
        }
        gross
    }

    /// What a checkpoint keeps: the ids within the window, open orders, and the latest
    /// [`JOURNAL_IN_CHECKPOINT`] journal entries, so its size is bounded however long the
    /// runtime has run.
    pub fn save_state(&mut self, now_ms: i64) -> RouterState {
        self.prune_ids(now_ms);
        let mut used_ids: Vec<(VenueId, String, i64)> = self.used_ids.iter().map(|((v, id), ts)| (*v, id.clone(), *ts)).collect();
        used_ids.sort();
        let mut open: Vec<(VenueId, String, OpenOrder)> = self.open.lock().iter().map(|((v, id), o)| (*v, id.clone(), o.clone())).collect();
        open.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let skip = self.journal.len().saturating_sub(JOURNAL_IN_CHECKPOINT);
        RouterState { used_ids, open, journal: self.journal.iter().skip(skip).cloned().collect() }
    }

    pub fn load_state(&mut self, state: RouterState) {
        self.used_ids = state.used_ids.into_iter().map(|(v, id, ts)| ((v, id), ts)).collect();
        self.prune_at = (self.used_ids.len() * 2).max(1024);
        self.open_count.clear();
        for (_, _, order) in &state.open {
            *self.open_count.entry(order.owner).or_default() += 1;
        }
        *self.open.lock() = state.open.into_iter().map(|(v, id, o)| ((v, id), o)).collect();
        self.journal = state.journal.into();
    }

    /// Forgets ids used longer ago than the window (event time), and the oldest beyond
    /// [`MAX_REMEMBERED_IDS`]; ids of orders still open are always kept.
    fn prune_ids(&mut self, now_ms: i64) {
        let window_ms = i64::try_from(self.risk.global().client_id_window_s.saturating_mul(1000)).unwrap_or(i64::MAX);
        let horizon = now_ms.saturating_sub(window_ms);
        let open = self.open.lock();
        self.used_ids.retain(|key, ts| *ts >= horizon || open.contains_key(key));
        if self.used_ids.len() > MAX_REMEMBERED_IDS {
            let mut times: Vec<i64> = self.used_ids.values().copied().collect();
            let cut = times.len() - MAX_REMEMBERED_IDS;
            let (_, oldest_kept, _) = times.select_nth_unstable(cut);
            let oldest_kept = *oldest_kept;
            tracing::warn!(remembered = self.used_ids.len(), "more client order ids within the window than the router keeps; forgetting the oldest");
            self.used_ids.retain(|key, ts| *ts >= oldest_kept || open.contains_key(key));
        }
        self.prune_at = (self.used_ids.len() * 2).max(1024);
    }

    /// Client order ids the router remembers now.
    pub fn remembered_ids(&self) -> usize {
        self.used_ids.len()
    }

    /// The latest orders sent or recommended, oldest first (at most [`JOURNAL_KEEP`]).
    pub fn journal(&self) -> &VecDeque<JournalEntry> {
        &self.journal
    }

    fn record(&mut self, entry: JournalEntry) {
        if self.journal.len() >= JOURNAL_KEEP {
            self.journal.pop_front();
        }
        self.journal.push_back(entry);
    }

    pub fn open_orders(&self, owner: StrategyId) -> usize {
        self.open_count.get(&owner).copied().unwrap_or(0) as usize
    }

    /// `journal` is called for an order bound for a live venue after every check and
    /// before the venue sees it; if it cannot write the entry durably, the order is
    /// refused rather than sent unrecorded.
    pub fn place(&mut self, market: &mut Market, owner: StrategyId, request: &OrderRequest, now_ms: i64, journal: &mut dyn FnMut(&JournalEntry) -> Result<(), String>) -> Routed {
        let refuse = |reason: String| {
            Routed::Refused(OrderUpdate {
                instrument: request.instrument,
                client_order_id: request.client_order_id.clone(),
                owner: Some(owner),
                status: OrderStatus::Rejected,
                filled_qty: Decimal::ZERO,
                remaining_qty: Decimal::ZERO,
                reason: Some(reason),
                ts_ms: now_ms,
            })
        };
        if let Err(reason) = validate_client_order_id(&request.client_order_id) {
            return refuse(reason);
        }
        // Borrowed, not cloned (five strings on every order's way out): the borrow ends
        // where the venue is taken mutably below.
        let Some(info) = market.instrument(request.instrument) else {
            return refuse(format!("unknown instrument handle {}", request.instrument.0));
        };
        let key = (info.venue, request.client_order_id.clone());
        if self.used_ids.contains_key(&key) {
            // The same intent again, from a strategy restored to a point before it sent
            // it: already sent (journalled before the restart), so acknowledged once
            // without sending; the venue's reconciliation reports what became of it. Any
            // other reuse, a second copy within one batch included, is refused.
            let same = self.restored.get(&key).is_some_and(|e| e.strategy == owner && e.request == *request && !e.recommended);
            if same {
                self.restored.remove(&key);
                tracing::info!(strategy = owner.0, client_order_id = %request.client_order_id, venue = %info.venue_name, "already sent before the restart; not sent again");
                return match self.finished.remove(&key) {
                    Some(update) => Routed::Refused(update),
                    None => Routed::Sent,
                };
            }
            return refuse(format!(
                "duplicate client order id {}: already used on {}; the same intent is never sent twice",
                request.client_order_id, info.venue_name
            ));
        }
        if self.orders_on.get(&owner).is_some_and(|allowed| !allowed.contains(&request.instrument)) {
            return refuse(format!("{} on {} is not among the instruments this strategy declared in orders-on", info.symbol, info.venue_name));
        }
        let self_trading = self.self_trading.contains(&owner);
        if self_trading && !info.paper {
            return refuse(format!(
                "refused: this strategy crosses its own orders, which on a live venue ({}) is wash trading, a form of market manipulation; it runs on paper venues only",
                info.venue_name
            ));
        }
        // Bounded first: every product and sum below is then safe from overflow.
        if let Err(reason) = bounds::check(request.limit_price().or(market.last_price(request.instrument)), request.qty) {
            return refuse(format!("{} on {}: {reason}", info.symbol, info.venue_name));
        }
        if let Err(reason) = check_rules(request, info, market.last_price(request.instrument)) {
            return refuse(reason);
        }
        let last = market.last_price(request.instrument);
        let gross_elsewhere = self.risk.gross_limit().map(|_| self.gross_exposure_except(market, (owner, request.instrument)));
        let proposed = Proposed {
            owner,
            info,
            request,
            price: request.limit_price().or(last),
            last,
            open_orders: self.open_orders(owner),
            exposure: self.exposure(owner, request.instrument),
            gross_elsewhere,
        };
        if let Err(reason) = self.risk.check(&proposed, now_ms) {
            return refuse(reason);
        }
        let stp = if self_trading && info.paper { SelfTradePrevention::None } else { SelfTradePrevention::ExpireTaker };
        if stp != SelfTradePrevention::None {
            if let Some(id) = self.would_cross_own(info.venue, request) {
                return refuse(format!("self-trade prevention: would trade against the account's own resting order {id}"));
            }
        }
        if self.mode == Mode::Recommend {
            tracing::info!(strategy = owner.0, venue = %info.venue_name, symbol = %info.symbol, side = %request.side, qty = %request.qty,
                price = ?request.limit_price(), client_order_id = %request.client_order_id, "recommend: place (not sent)");
            self.used_ids.insert(key, now_ms);
            self.record(JournalEntry { strategy: owner, venue: info.venue, request: request.clone(), ts_ms: now_ms, recommended: true });
            self.risk.placed(owner, now_ms);
            self.maybe_prune(now_ms);
            return Routed::Recommended;
        }
        let trigger = market.trigger;
        let (venue_id, paper) = (info.venue, info.paper);
        let Some(venue) = market.venues.get_mut(venue_id.0 as usize) else {
            let name = market.instrument(request.instrument).map(|i| i.venue_name.clone()).unwrap_or_default();
            return refuse(format!("venue {name} is not connected"));
        };
        let entry = JournalEntry { strategy: owner, venue: venue_id, request: request.clone(), ts_ms: now_ms, recommended: false };
        if !paper {
            if let Err(reason) = journal(&entry) {
                return refuse(format!("not sent: the order journal could not be written ({reason})"));
            }
        }
        self.adopt(entry);
        venue.submit(owner, request, stp, now_ms, trigger);
        self.risk.placed(owner, now_ms);
        self.maybe_prune(now_ms);
        Routed::Sent
    }

    fn maybe_prune(&mut self, now_ms: i64) {
        if self.used_ids.len() >= self.prune_at {
            self.prune_ids(now_ms);
        }
    }

    /// An order journalled after the last checkpoint, after a restart: booked as sent,
    /// and its final state kept for a strategy that sends the same intent again.
    pub fn adopt_restored(&mut self, entry: JournalEntry) {
        self.restored.insert((entry.venue, entry.request.client_order_id.clone()), entry.clone());
        self.adopt(entry);
    }

    /// Books an order as sent: its id used, open, journalled. Also how orders journalled
    /// after the last checkpoint come back after a restart.
    pub fn adopt(&mut self, entry: JournalEntry) {
        let key = (entry.venue, entry.request.client_order_id.clone());
        self.used_ids.insert(key.clone(), entry.ts_ms);
        let r = &entry.request;
        if self.open.lock().insert(key, OpenOrder { owner: entry.strategy, instrument: r.instrument, side: r.side, price: r.limit_price(), remaining: r.qty }).is_none() {
            *self.open_count.entry(entry.strategy).or_default() += 1;
        }
        self.record(entry);
    }

    fn would_cross_own(&self, venue: VenueId, request: &OrderRequest) -> Option<String> {
        self.open.lock().iter().find_map(|((v, id), o)| {
            let crosses = *v == venue
                && o.instrument == request.instrument
                && o.side != request.side
                && match (request.side, request.limit_price(), o.price) {
                    (_, _, None) => false,
                    (_, None, Some(_)) => true,
                    (Side::Buy, Some(limit), Some(resting)) => resting <= limit,
                    (Side::Sell, Some(limit), Some(resting)) => resting >= limit,
                };
            crosses.then(|| id.clone())
        })
    }

    /// Whether `owner` has this order open (what a cancel of it would reach).
    pub fn is_open(&self, market: &Market, owner: StrategyId, instrument: InstrumentId, client_order_id: &str) -> bool {
        let Some(info) = market.instrument(instrument) else { return false };
        self.open.lock().get(&(info.venue, client_order_id.to_string())).is_some_and(|o| o.owner == owner)
    }

    /// Asks the venue to cancel one order of `owner`. Unknown ids are ignored: the order
    /// may have filled in the meantime, and its fill is already on the way.
    pub fn cancel(&mut self, market: &mut Market, owner: StrategyId, instrument: InstrumentId, client_order_id: &str, now_ms: i64) {
        if self.mode == Mode::Recommend {
            tracing::info!(strategy = owner.0, client_order_id, "recommend: cancel (not sent)");
            return;
        }
        if !self.is_open(market, owner, instrument, client_order_id) {
            return;
        }
        let Some(venue_id) = market.instrument(instrument).map(|i| i.venue) else { return };
        if let Some(venue) = market.venues.get_mut(venue_id.0 as usize) {
            venue.cancel(owner, instrument, client_order_id, now_ms);
        }
    }

    /// Cancels every open order of `owner`, on one instrument or everywhere.
    pub fn cancel_all(&mut self, market: &mut Market, owner: StrategyId, instrument: Option<InstrumentId>, now_ms: i64) {
        let targets = self.open_ids(owner, instrument);
        for (instrument, id) in targets {
            self.cancel(market, owner, instrument, &id, now_ms);
        }
    }

    /// Every open order, sorted by venue and id.
    pub fn open_list(&self) -> Vec<OpenView> {
        let mut list: Vec<OpenView> = self
            .open
            .lock()
            .iter()
            .map(|((venue, id), o)| OpenView { venue: *venue, client_order_id: id.clone(), owner: o.owner, instrument: o.instrument, side: o.side, price: o.price, remaining: o.remaining })
            .collect();
        list.sort_by(|a, b| (a.venue, &a.client_order_id).cmp(&(b.venue, &b.client_order_id)));
        list
    }

    /// The open orders, for the strategies' `account` import.
    pub fn shared_open_orders(&self) -> SharedOpenOrders {
        self.open.clone()
    }

    /// Client ids of `owner`'s open orders, on one instrument or everywhere.
    pub fn open_ids(&self, owner: StrategyId, instrument: Option<InstrumentId>) -> Vec<(InstrumentId, String)> {
        self.open.lock().iter().filter(|(_, o)| o.owner == owner && instrument.is_none_or(|i| i == o.instrument)).map(|((_, id), o)| (o.instrument, id.clone())).collect()
    }

    /// Keeps the open-order book and the positions in step with what venues report.
    pub fn on_venue_event(&mut self, market: &Market, event: &VenueEvent) {
        if let VenueEvent::Fill(fill) = event {
            let Some(owner) = fill.owner else { return };
            let info = market.instrument(fill.instrument);
            let base_fee = if FeeIn::of(&fill.fee_asset, info) == FeeIn::Base { fill.fee } else { Decimal::ZERO };
            self.risk.on_fill(owner, fill.instrument, fill.side, fill.qty, base_fee);
            if let Some(info) = info {
                if let Some(order) = self.open.lock().get_mut(&(info.venue, fill.client_order_id.clone())) {
                    order.remaining = order.remaining.saturating_sub(fill.qty).max(Decimal::ZERO);
                }
            }
            return;
        }
        let VenueEvent::Order(update) = event else { return };
        if !update.status.is_final() {
            return;
        }
        let Some(info) = market.instrument(update.instrument) else { return };
        let key = (info.venue, update.client_order_id.clone());
        if self.restored.contains_key(&key) {
            self.finished.insert(key.clone(), update.clone());
        }
        if let Some(order) = self.open.lock().remove(&key) {
            if let Some(count) = self.open_count.get_mut(&order.owner) {
                *count = count.saturating_sub(1);
            }
        }
    }
}

/// The instrument's rules, in words an operator understands.
fn check_rules(request: &OrderRequest, info: &crate::model::InstrumentInfo, last_price: Option<Decimal>) -> Result<(), String> {
    let at = format!("{} on {}", info.symbol, info.venue_name);
    if request.qty <= Decimal::ZERO {
        return Err(format!("{at}: qty {} must be positive", request.qty));
    }
    if !is_multiple(request.qty, info.lot_size) {
        return Err(format!("{at}: qty {} is not a multiple of the lot size {}", request.qty, info.lot_size));
    }
    if request.qty < info.min_qty {
        return Err(format!("{at}: qty {} is below the minimum {}", request.qty, info.min_qty));
    }
    let reference = match request.order_type {
        OrderType::Limit { price, .. } => {
            if price <= Decimal::ZERO {
                return Err(format!("{at}: price {price} must be positive"));
            }
            if !is_multiple(price, info.tick_size) {
                return Err(format!("{at}: price {price} is not a multiple of the tick size {}", info.tick_size));
            }
            Some(price)
        }
        OrderType::Market => last_price,
    };
    if let Some(price) = reference {
        if price * request.qty < info.min_notional {
            return Err(format!("{at}: notional {} is below the minimum {}", price * request.qty, info.min_notional));
        }
    }
    Ok(())
}

/// A step of zero (a venue that states none) constrains nothing.
fn is_multiple(value: Decimal, step: Decimal) -> bool {
    step <= Decimal::ZERO || value.checked_rem(step).is_some_and(|r| r.is_zero())
}
