//! The embedded paper venue: an exchange simulator that a newcomer can trade against with
//! no keys and no network.
//!
//! Each instrument has a real price-time-priority book ([`book::OrderBook`]). The recorded
//! (or synthetic) market drives it: every print first trades against our resting orders
//! that it would have reached, then the background liquidity that stands in for the rest
//! of the market is re-quoted around it. Strategy orders therefore match against a real
//! book, with partial fills, maker/taker fees, balances and exchange-like rejections in
//! the words Binance uses, so that strategy code meets the same answers as live.

pub mod book;

use std::collections::{BTreeMap, HashMap};

use rustc_hash::FxHashMap;

use book::{Account, Front, OrderBook, RestingOrder};
use serde::{Deserialize, Serialize};

use crate::model::{
    bounds,
    BookSnapshot, Decimal, Fill, InstrumentId, InstrumentInfo, Liquidity, OrderRequest, OrderStatus, OrderType, OrderUpdate,
    PublicTrade, SelfTradePrevention, Side, StrategyId, TimeInForce, VenueId,
};
use crate::venue::{Venue, VenueEvent};

/// Background liquidity re-quoted around each print: `levels` a side, `step` apart in
/// price, `qty` each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiquidityProfile {
    pub levels: u32,
    pub step: Decimal,
    pub qty: Decimal,
}

/// How the venue settles: a spot venue holds funds for open orders and refuses what the
/// account cannot pay; a perpetual venue lets positions go short and long freely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    Spot,
    Perpetual,
}

#[derive(Debug, Clone)]
pub struct PaperVenueConfig {
    pub id: VenueId,
    pub name: String,
    pub settlement: Settlement,
    pub maker_fee: Decimal,
    pub taker_fee: Decimal,
    pub balances: BTreeMap<String, Decimal>,
    /// Spot only: each side pays its fee in the asset it receives (a buyer in the base
    /// asset), as Binance and OKX spot charge; otherwise every fee is in the quote asset.
    pub fees_in_received: bool,
    /// Misbehaviour to inject, to test what sits above a venue.
    pub faults: Faults,
}

/// Faults the simulator can inject, the way real venues misbehave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Report every fill twice, with the same trade id, as an at-least-once push does
    /// after a reconnect.
    pub duplicate_fills: bool,
}

/// A balance of one asset: `locked` is held for open orders and not available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Balance {
    pub total: Decimal,
    pub locked: Decimal,
}

impl Balance {
    pub fn available(&self) -> Decimal {
        self.total - self.locked
    }
}

/// A recorded or synthetic trade of the real market, to be replayed on the venue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketPrint {
    pub trade_id: u64,
    pub price: Decimal,
    pub qty: Decimal,
    pub aggressor: Side,
    pub ts_ms: i64,
}

impl MarketPrint {
    /// Whether the print is one the host can replay: positive, within the price, quantity
    /// and time bounds. Every market data source checks its prints with this, and the
    /// venue checks again before its arithmetic.
    pub fn check(&self) -> Result<(), String> {
        if self.price <= Decimal::ZERO {
            return Err(format!("price {} is not positive", self.price));
        }
        if self.qty <= Decimal::ZERO {
            return Err(format!("qty {} is not positive", self.qty));
        }
        bounds::check(Some(self.price), self.qty)?;
        if !(bounds::EARLIEST_MS..=bounds::LATEST_MS).contains(&self.ts_ms) {
            return Err(format!("time {} is not between 1970 and 2100", self.ts_ms));
        }
        Ok(())
    }
}

/// Everything of a paper venue that changes while it runs: its books, balances and
/// counters. Saved in checkpoints, so a restarted runtime resumes the same exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaperState {
    /// Per instrument: resting orders in book order (best price first, FIFO within a
    /// level) and the last price.
    pub books: Vec<(InstrumentId, Vec<RestingOrder>, Option<Decimal>)>,
    pub balances: Vec<(Account, String, Balance)>,
    pub fees_collected: BTreeMap<String, Decimal>,
    pub next_order_id: u64,
    pub next_trade_id: u64,
}

struct Instrument {
    info: InstrumentInfo,
    book: OrderBook,
    liquidity: Option<LiquidityProfile>,
    last_price: Option<Decimal>,
    /// A buyer pays its fee in the base asset (see [`PaperVenueConfig::fees_in_received`]).
    fees_in_received: bool,
}

/// An incoming order while it walks the book.
struct Taker {
    order_id: u64,
    account: Account,
    owner: Option<StrategyId>,
    client_order_id: String,
    side: Side,
    limit: Option<Decimal>,
    original_qty: Decimal,
    remaining: Decimal,
    stp: SelfTradePrevention,
    lock_per_unit: Decimal,
    /// Whether its trades go on the public tape (a replayed print is published as itself).
    publish: bool,
}

impl Taker {
    /// What rests of it at `price`, its limit.
    fn resting(self, price: Decimal) -> RestingOrder {
        RestingOrder {
            order_id: self.order_id,
            account: self.account,
            owner: self.owner,
            client_order_id: self.client_order_id,
            side: self.side,
            price,
            original_qty: self.original_qty,
            remaining: self.remaining,
            stp: self.stp,
            lock_per_unit: self.lock_per_unit,
        }
    }
}

pub struct PaperVenue {
    config: PaperVenueConfig,
    /// By the host's own ids, hashed with Fx: looked up several times per print.
    instruments: FxHashMap<InstrumentId, Instrument>,
    balances: BTreeMap<(Account, String), Balance>,
    fees_collected: BTreeMap<String, Decimal>,
    /// The main account's resting orders by id, to find them in their book (the venue's
    /// own ids, so Fx). The background is not here: it is withdrawn whole.
    resting: FxHashMap<u64, (InstrumentId, Side, Decimal)>,
    /// Open orders of the main account by client order id.
    by_client_id: HashMap<String, u64>,
    next_order_id: u64,
    next_trade_id: u64,
    events: Vec<VenueEvent>,
}

/// Binance's words for the rejections the simulator makes, so strategies see the same
/// reasons on paper as live.
pub mod reasons {
    pub const UNKNOWN_SYMBOL: &str = "Invalid symbol.";
    pub const PRICE_FILTER: &str = "Filter failure: PRICE_FILTER";
    pub const LOT_SIZE: &str = "Filter failure: LOT_SIZE";
    pub const NOTIONAL: &str = "Filter failure: NOTIONAL";
    pub const WOULD_TAKE: &str = "Order would immediately match and take.";
    pub const INSUFFICIENT: &str = "Account has insufficient balance for requested action.";
    pub const DUPLICATE: &str = "Duplicate order sent.";
    pub const NO_PRICE: &str = "Market order with no reference price: the book is empty.";
    pub const IOC_EXPIRED: &str = "Unfilled remainder of an IOC or market order";
    pub const FOK_EXPIRED: &str = "Fill-or-kill order could not be filled in full";
    pub const STP_EXPIRED: &str = "Self-trade prevention";
    pub const CANCELED: &str = "Canceled by request";
}

fn is_multiple(value: Decimal, step: Decimal) -> bool {
    step <= Decimal::ZERO || value.checked_rem(step).is_some_and(|r| r.is_zero())
}

impl PaperVenue {
    pub fn new(config: PaperVenueConfig) -> Self {
        let balances = config
            .balances
            .iter()
            .map(|(asset, amount)| ((Account::Main, asset.clone()), Balance { total: *amount, locked: Decimal::ZERO }))
            .collect();
        PaperVenue {
            config,
            instruments: FxHashMap::default(),
            balances,
            fees_collected: BTreeMap::new(),
            resting: FxHashMap::default(),
            by_client_id: HashMap::new(),
            next_order_id: 1,
            next_trade_id: 1,
            events: Vec::new(),
        }
    }

    /// Lists an instrument, with the background liquidity its replay should keep around
    /// each print (none: only our own orders and the prints trade).
    pub fn add_instrument(&mut self, info: InstrumentInfo, liquidity: Option<LiquidityProfile>) {
        let fees_in_received = self.config.fees_in_received && self.config.settlement == Settlement::Spot;
        self.instruments.insert(info.id, Instrument { info, book: OrderBook::default(), liquidity, last_price: None, fees_in_received });
    }

    /// A trade id from the venue's own sequence, for a trade made outside it (an
    /// exchange built on this venue prints the rest of the market's trades with it), so
    /// one id space covers every trade.
    pub fn take_trade_id(&mut self) -> u64 {
        let id = self.next_trade_id;
        self.next_trade_id += 1;
        id
    }

    /// Overrides the venue's fee asset rule for one instrument: a venue listing spot pairs
    /// and contracts side by side charges contracts in their margin asset.
    pub fn set_fees_in_received(&mut self, instrument: InstrumentId, on: bool) {
        if let Some(i) = self.instruments.get_mut(&instrument) {
            i.fees_in_received = on && self.config.settlement == Settlement::Spot;
        }
    }

    /// The venue's changing state, for a checkpoint.
    pub fn save_state(&self) -> PaperState {
        let mut ids: Vec<&InstrumentId> = self.instruments.keys().collect();
        ids.sort();
        PaperState {
            books: ids
                .into_iter()
                .filter_map(|id| self.instruments.get(id).map(|i| (*id, i.book.orders().cloned().collect(), i.last_price)))
                .collect(),
            balances: self.balances.iter().map(|((a, asset), b)| (*a, asset.clone(), *b)).collect(),
            fees_collected: self.fees_collected.clone(),
            next_order_id: self.next_order_id,
            next_trade_id: self.next_trade_id,
        }
    }

    /// Puts the venue back in a saved state; its instruments must already be listed.
    pub fn load_state(&mut self, state: PaperState) {
        self.resting.clear();
        self.by_client_id.clear();
        for inst in self.instruments.values_mut() {
            inst.book = OrderBook::default();
            inst.last_price = None;
        }
        for (id, orders, last_price) in state.books {
            let Some(inst) = self.instruments.get_mut(&id) else { continue };
            inst.last_price = last_price;
            for order in orders {
                // The background is the book's own (withdrawn whole at the next print):
                // only the main account's orders are found by id.
                if order.account == Account::Main {
                    self.resting.insert(order.order_id, (id, order.side, order.price));
                    self.by_client_id.insert(order.client_order_id.clone(), order.order_id);
                }
                inst.book.rest(order);
            }
        }
        self.balances = state.balances.into_iter().map(|(a, asset, b)| ((a, asset), b)).collect();
        self.fees_collected = state.fees_collected;
        self.next_order_id = state.next_order_id;
        self.next_trade_id = state.next_trade_id;
    }

    pub fn config(&self) -> &PaperVenueConfig {
        &self.config
    }

    /// The main account's balances.
    pub fn balances(&self) -> BTreeMap<String, Balance> {
        self.balances.iter().filter(|((a, _), _)| *a == Account::Main).map(|((_, asset), b)| (asset.clone(), *b)).collect()
    }

    /// Balances of every account, including the simulated rest of the market.
    pub fn all_balances(&self) -> &BTreeMap<(Account, String), Balance> {
        &self.balances
    }

    pub fn fees_collected(&self) -> &BTreeMap<String, Decimal> {
        &self.fees_collected
    }

    pub fn last_price(&self, instrument: InstrumentId) -> Option<Decimal> {
        self.instruments.get(&instrument).and_then(|i| i.last_price)
    }

    /// The book itself, for invariant checks.
    pub fn order_book(&self, instrument: InstrumentId) -> Option<&OrderBook> {
        self.instruments.get(&instrument).map(|i| &i.book)
    }

    /// Replays one print of the real market: it trades with our resting orders it would
    /// have reached, is published on the tape, and the background liquidity is re-quoted
    /// around it (which fills our orders the market moved through).
    pub fn replay_print(&mut self, instrument: InstrumentId, print: &MarketPrint) {
        // Feeds bound their prints; a print beyond the bounds would make the background
        // quotes' arithmetic overflow, so it is not replayed whatever its source.
        if print.check().is_err() {
            return;
        }
        let Some(inst) = self.instruments.get_mut(&instrument) else { return };
        // The old background goes first, so the print only meets orders of ours.
        inst.book.clear_background();
        let mut taker = self.market_taker(print.aggressor, print.price, print.qty, false);
        self.walk(instrument, &mut taker, print.ts_ms);
        self.events.push(VenueEvent::Trade(PublicTrade {
            instrument,
            trade_id: print.trade_id,
            price: print.price,
            qty: print.qty,
            aggressor: print.aggressor,
            ts_ms: print.ts_ms,
        }));
        let Some(inst) = self.instruments.get_mut(&instrument) else { return };
        inst.last_price = Some(print.price);
        let (tick, profile) = (inst.info.tick_size, inst.liquidity.clone());
        if let Some(profile) = profile {
            let ticks = LadderTicks::of(print.price, profile.step, tick);
            for k in 1..=profile.levels {
                let (bid, ask) = ticks.as_ref().and_then(|t| t.level(k, tick)).unwrap_or_else(|| quote(print.price, profile.step, tick, k));
                for (side, price) in [(Side::Buy, bid), (Side::Sell, ask)] {
                    if price <= Decimal::ZERO {
                        continue;
                    }
                    let mut order = self.market_taker(side, price, profile.qty, true);
                    // Most quotes meet nothing of ours: they join the background at once.
                    let Some(inst) = self.instruments.get_mut(&instrument) else { return };
                    if !inst.book.would_trade(side, price) {
                        inst.book.rest(order.resting(price));
                        continue;
                    }
                    self.walk(instrument, &mut order, print.ts_ms);
                    if order.remaining > Decimal::ZERO {
                        self.rest(instrument, order);
                    }
                }
            }
        }
    }

    fn market_taker(&mut self, side: Side, price: Decimal, qty: Decimal, publish: bool) -> Taker {
        Taker {
            order_id: self.take_order_id(),
            account: Account::Market,
            owner: None,
            client_order_id: String::new(),
            side,
            limit: Some(price),
            original_qty: qty,
            remaining: qty,
            stp: SelfTradePrevention::ExpireTaker,
            lock_per_unit: Decimal::ZERO,
            publish,
        }
    }

    fn take_order_id(&mut self) -> u64 {
        let id = self.next_order_id;
        self.next_order_id += 1;
        id
    }

    #[allow(clippy::too_many_arguments)] // one call site shape, many fields of one update
    fn update(&mut self, instrument: InstrumentId, owner: Option<StrategyId>, client_order_id: &str, status: OrderStatus, filled: Decimal, remaining: Decimal, reason: Option<&str>, ts_ms: i64) {
        self.events.push(VenueEvent::Order(OrderUpdate {
            instrument,
            client_order_id: client_order_id.to_string(),
            owner,
            status,
            filled_qty: filled,
            remaining_qty: remaining,
            reason: reason.map(str::to_string),
            ts_ms,
        }));
    }

    fn reject(&mut self, owner: StrategyId, request: &OrderRequest, reason: &str, ts_ms: i64) {
        self.update(request.instrument, Some(owner), &request.client_order_id, OrderStatus::Rejected, Decimal::ZERO, Decimal::ZERO, Some(reason), ts_ms);
    }

    /// The exchange's own checks of an order against the instrument's rules.
    fn check_rules(&self, request: &OrderRequest) -> Result<(), &'static str> {
        let inst = self.instruments.get(&request.instrument).ok_or(reasons::UNKNOWN_SYMBOL)?;
        let rules = &inst.info;
        if request.qty <= Decimal::ZERO || request.qty > bounds::MAX_QTY || request.qty < rules.min_qty || !is_multiple(request.qty, rules.lot_size) {
            return Err(reasons::LOT_SIZE);
        }
        let reference = match request.order_type {
            OrderType::Limit { price, .. } => {
                if price <= Decimal::ZERO || price > bounds::MAX_PRICE || !is_multiple(price, rules.tick_size) {
                    return Err(reasons::PRICE_FILTER);
                }
                price
            }
            OrderType::Market => inst.last_price.or(inst.book.best_bid()).or(inst.book.best_ask()).ok_or(reasons::NO_PRICE)?,
        };
        match request.qty.checked_mul(reference) {
            Some(notional) if notional >= rules.min_notional && notional <= bounds::MAX_NOTIONAL => {}
            _ => return Err(reasons::NOTIONAL),
        }
        Ok(())
    }

    fn balance_mut(&mut self, account: Account, asset: &str) -> &mut Balance {
        self.balances.entry((account, asset.to_string())).or_default()
    }

    /// Moves the money of one execution between the two accounts and collects the fees
    /// (the buyer's in the base asset when fees are in the received asset, else in the
    /// quote asset); releases the funds each side held for the executed quantity. The
    /// buyer's fee comes back with its asset.
    #[allow(clippy::too_many_arguments)]
    fn settle(&mut self, info: &InstrumentInfo, in_base: bool, buyer: (Account, Decimal, Liquidity), seller: (Account, Decimal, Liquidity), price: Decimal, qty: Decimal) -> ((Decimal, String), Decimal) {
        let notional = price * qty;
        let rate = |l: Liquidity| if l == Liquidity::Maker { self.config.maker_fee } else { self.config.taker_fee };
        let buyer_fee = if in_base { qty * rate(buyer.2) } else { notional * rate(buyer.2) };
        let seller_fee = notional * rate(seller.2);
        let (base, quote) = (info.base_asset.clone(), info.quote_asset.clone());
        let (base_fee, quote_fee) = if in_base { (buyer_fee, Decimal::ZERO) } else { (Decimal::ZERO, buyer_fee) };
        let b = self.balance_mut(buyer.0, &base);
        b.total += qty - base_fee;
        let b = self.balance_mut(buyer.0, &quote);
        b.total -= notional + quote_fee;
        b.locked -= buyer.1 * qty;
        let s = self.balance_mut(seller.0, &base);
        s.total -= qty;
        s.locked -= seller.1 * qty;
        let s = self.balance_mut(seller.0, &quote);
        s.total += notional - seller_fee;
        if in_base {
            *self.fees_collected.entry(base.clone()).or_default() += base_fee;
        }
        *self.fees_collected.entry(quote.clone()).or_default() += quote_fee + seller_fee;
        ((buyer_fee, if in_base { base } else { quote }), seller_fee)
    }

    /// Walks the opposite side of the book with an incoming order until it is filled,
    /// stops crossing, or self-trade prevention ends it.
    fn walk(&mut self, instrument: InstrumentId, taker: &mut Taker, ts_ms: i64) -> bool {
        let mut stp_expired = false;
        while taker.remaining > Decimal::ZERO {
            let Some(inst) = self.instruments.get_mut(&instrument) else { break };
            let maker = match inst.book.front(taker.side, taker.limit) {
                Front::Empty | Front::NoCross => break,
                Front::Order(order) => order,
            };
            if maker.account == taker.account && taker.stp != SelfTradePrevention::None {
                let expire_maker = matches!(taker.stp, SelfTradePrevention::ExpireMaker | SelfTradePrevention::ExpireBoth);
                if !expire_maker {
                    stp_expired = true;
                    break;
                }
                let Some(expired) = inst.book.pop_front(taker.side) else { break };
                self.resting.remove(&expired.order_id);
                self.release_and_close(instrument, &expired, OrderStatus::Expired, Some(reasons::STP_EXPIRED), ts_ms);
                if taker.stp == SelfTradePrevention::ExpireBoth {
                    stp_expired = true;
                    break;
                }
                continue;
            }
            let qty = taker.remaining.min(maker.remaining);
            let price = maker.price;
            maker.remaining -= qty;
            let maker_done = maker.remaining.is_zero();
            let maker_snapshot = maker.clone();
            let info = inst.info.clone();
            let fees_in_received = inst.fees_in_received;
            taker.remaining -= qty;
            let (buyer, seller) = match taker.side {
                Side::Buy => ((taker.account, taker.lock_per_unit, Liquidity::Taker), (maker_snapshot.account, maker_snapshot.lock_per_unit, Liquidity::Maker)),
                Side::Sell => ((maker_snapshot.account, maker_snapshot.lock_per_unit, Liquidity::Maker), (taker.account, taker.lock_per_unit, Liquidity::Taker)),
            };
            let ((buyer_fee, buyer_fee_asset), seller_fee) = self.settle(&info, fees_in_received, buyer, seller, price, qty);
            let fee_of = |side: Side| match side {
                Side::Buy => (buyer_fee, buyer_fee_asset.as_str()),
                Side::Sell => (seller_fee, info.quote_asset.as_str()),
            };
            let (taker_fee, maker_fee) = (fee_of(taker.side), fee_of(taker.side.opposite()));
            let trade_id = self.next_trade_id;
            self.next_trade_id += 1;
            for (account, owner, client_order_id, side, fee, liquidity) in [
                (maker_snapshot.account, maker_snapshot.owner, maker_snapshot.client_order_id.as_str(), maker_snapshot.side, maker_fee, Liquidity::Maker),
                (taker.account, taker.owner, taker.client_order_id.as_str(), taker.side, taker_fee, Liquidity::Taker),
            ] {
                if account == Account::Main {
                    let fill = VenueEvent::Fill(Fill {
                        instrument,
                        client_order_id: client_order_id.to_string(),
                        owner,
                        trade_id: format!("{}-{}", self.config.name, trade_id),
                        side,
                        price,
                        qty,
                        fee: fee.0,
                        fee_asset: fee.1.to_string(),
                        liquidity,
                        ts_ms,
                    });
                    if self.config.faults.duplicate_fills {
                        self.events.push(fill.clone());
                    }
                    self.events.push(fill);
                }
            }
            if taker.publish {
                self.events.push(VenueEvent::Trade(PublicTrade { instrument, trade_id, price, qty, aggressor: taker.side, ts_ms }));
            }
            if maker_done {
                if let Some(inst) = self.instruments.get_mut(&instrument) {
                    inst.book.pop_front(taker.side);
                }
                if maker_snapshot.account == Account::Main {
                    self.resting.remove(&maker_snapshot.order_id);
                    self.by_client_id.remove(&maker_snapshot.client_order_id);
                    self.update(instrument, maker_snapshot.owner, &maker_snapshot.client_order_id, OrderStatus::Filled, maker_snapshot.original_qty, Decimal::ZERO, None, ts_ms);
                }
            }
        }
        stp_expired
    }

    /// Takes a resting order out of the books' bookkeeping, releases the funds it held and
    /// reports its end to its owner.
    fn release_and_close(&mut self, instrument: InstrumentId, order: &RestingOrder, status: OrderStatus, reason: Option<&str>, ts_ms: i64) {
        if order.account != Account::Main {
            return;
        }
        self.release(instrument, order.account, order.side, order.lock_per_unit * order.remaining);
        self.by_client_id.remove(&order.client_order_id);
        self.update(instrument, order.owner, &order.client_order_id, status, order.filled(), Decimal::ZERO, reason, ts_ms);
    }

    /// Holds funds for an order: quote for a buy, base for a sell.
    fn hold(&mut self, instrument: InstrumentId, account: Account, side: Side, amount: Decimal) {
        self.release(instrument, account, side, -amount);
    }

    /// Gives back funds held for an order.
    fn release(&mut self, instrument: InstrumentId, account: Account, side: Side, amount: Decimal) {
        if amount.is_zero() {
            return;
        }
        let Some(inst) = self.instruments.get(&instrument) else { return };
        let asset = match side {
            Side::Buy => inst.info.quote_asset.clone(),
            Side::Sell => inst.info.base_asset.clone(),
        };
        self.balance_mut(account, &asset).locked -= amount;
    }

    fn rest(&mut self, instrument: InstrumentId, taker: Taker) {
        let Some(price) = taker.limit else { return };
        // Only the main account's orders are found by id: the background is withdrawn whole.
        if taker.account == Account::Main {
            self.by_client_id.insert(taker.client_order_id.clone(), taker.order_id);
            self.resting.insert(taker.order_id, (instrument, taker.side, price));
        }
        if let Some(inst) = self.instruments.get_mut(&instrument) {
            inst.book.rest(taker.resting(price));
        }
    }

    /// Funds to hold per unit for an order of the main account, or why they cannot be
    /// held. For a spot market buy it also returns the worst price the held funds pay
    /// for: the order walks no further than that.
    fn lock_per_unit(&self, request: &OrderRequest) -> Result<(Decimal, Option<Decimal>), &'static str> {
        if self.config.settlement == Settlement::Perpetual {
            return Ok((Decimal::ZERO, None));
        }
        let inst = self.instruments.get(&request.instrument).ok_or(reasons::UNKNOWN_SYMBOL)?;
        let (per_unit, protect, asset) = match request.side {
            Side::Sell => (Decimal::ONE, None, &inst.info.base_asset),
            Side::Buy => {
                let (price, protect) = match request.order_type {
                    OrderType::Limit { price, .. } => (price, None),
                    OrderType::Market => {
                        let worst = inst.book.worst_price_for(Side::Buy, request.qty).ok_or(reasons::NO_PRICE)?;
                        (worst, Some(worst))
                    }
                };
                let fee_rate = self.config.taker_fee.max(self.config.maker_fee);
                let per_unit = price.checked_mul(Decimal::ONE + fee_rate).ok_or(reasons::INSUFFICIENT)?;
                (per_unit, protect, &inst.info.quote_asset)
            }
        };
        let available = self.balances.get(&(Account::Main, asset.clone())).map(Balance::available).unwrap_or_default();
        if per_unit.checked_mul(request.qty).is_none_or(|needed| available < needed) {
            return Err(reasons::INSUFFICIENT);
        }
        Ok((per_unit, protect))
    }
}

/// The background's `k`-th bid and ask around `price`: `k` steps away, rounded onto the
/// tick grid away from the print.
fn quote(price: Decimal, step: Decimal, tick: Decimal, k: u32) -> (Decimal, Decimal) {
    let offset = step * Decimal::from(k);
    (round_to_tick(price - offset, tick, false), round_to_tick(price + offset, tick, true))
}

/// A print on the tick grid and a step of whole ticks, counted in ticks: then every quote
/// of the ladder is whole ticks away from the print and needs no rounding, which spares
/// two divisions a level at every print. The quotes are the same decimals, scale
/// included, as [`quote`] makes (a property test holds them to it).
struct LadderTicks {
    /// The print's price in ticks, and the step's: integers of scale 0.
    print: Decimal,
    step: Decimal,
}

impl LadderTicks {
    fn of(price: Decimal, step: Decimal, tick: Decimal) -> Option<LadderTicks> {
        if tick <= Decimal::ZERO {
            return None;
        }
        let whole = |d: Decimal| d.fract().is_zero().then(|| d.trunc());
        Some(LadderTicks { print: whole(price.checked_div(tick)?)?, step: whole(step.checked_div(tick)?)? })
    }

    /// The `k`-th bid and ask; none when the arithmetic would overflow (then [`quote`]
    /// answers as before).
    fn level(&self, k: u32, tick: Decimal) -> Option<(Decimal, Decimal)> {
        let offset = self.step.checked_mul(Decimal::from(k))?;
        Some((self.print.checked_sub(offset)?.checked_mul(tick)?, self.print.checked_add(offset)?.checked_mul(tick)?))
    }
}

/// Rounds a background quote onto the tick grid, away from the print.
fn round_to_tick(price: Decimal, tick: Decimal, up: bool) -> Decimal {
    if tick <= Decimal::ZERO {
        return price;
    }
    let Some(units) = price.checked_div(tick) else { return price };
    let units = if up { units.ceil() } else { units.floor() };
    units.checked_mul(tick).unwrap_or(price)
}

impl Venue for PaperVenue {
    fn id(&self) -> VenueId {
        self.config.id
    }

    fn name(&self) -> &str {
        &self.config.name
    }

    fn is_paper(&self) -> bool {
        true
    }

    fn submit(&mut self, owner: StrategyId, request: &OrderRequest, stp: SelfTradePrevention, now_ms: i64, _trigger: Option<std::time::Instant>) {
        if let Err(reason) = self.check_rules(request) {
            return self.reject(owner, request, reason, now_ms);
        }
        if self.by_client_id.contains_key(&request.client_order_id) {
            return self.reject(owner, request, reasons::DUPLICATE, now_ms);
        }
        let (limit, tif) = match request.order_type {
            OrderType::Limit { price, time_in_force } => (Some(price), time_in_force),
            OrderType::Market => (None, TimeInForce::Ioc),
        };
        let Some(inst) = self.instruments.get(&request.instrument) else {
            return self.reject(owner, request, reasons::UNKNOWN_SYMBOL, now_ms);
        };
        if tif == TimeInForce::PostOnly {
            let best = match request.side {
                Side::Buy => inst.book.best_ask(),
                Side::Sell => inst.book.best_bid(),
            };
            if best.is_some_and(|p| book::crosses(request.side, limit, p)) {
                return self.reject(owner, request, reasons::WOULD_TAKE, now_ms);
            }
        }
        let fok_short = tif == TimeInForce::Fok && inst.book.executable_qty(request.side, limit, Account::Main, stp) < request.qty;
        let (lock_per_unit, protect) = match self.lock_per_unit(request) {
            Ok(lock) => lock,
            Err(reason) => return self.reject(owner, request, reason, now_ms),
        };
        let limit = limit.or(protect);
        self.update(request.instrument, Some(owner), &request.client_order_id, OrderStatus::Accepted, Decimal::ZERO, request.qty, None, now_ms);
        if fok_short {
            return self.update(request.instrument, Some(owner), &request.client_order_id, OrderStatus::Expired, Decimal::ZERO, Decimal::ZERO, Some(reasons::FOK_EXPIRED), now_ms);
        }
        self.hold(request.instrument, Account::Main, request.side, lock_per_unit * request.qty);
        let mut taker = Taker {
            order_id: self.take_order_id(),
            account: Account::Main,
            owner: Some(owner),
            client_order_id: request.client_order_id.clone(),
            side: request.side,
            limit,
            original_qty: request.qty,
            remaining: request.qty,
            stp,
            lock_per_unit,
            publish: true,
        };
        let stp_expired = self.walk(request.instrument, &mut taker, now_ms);
        let filled = taker.original_qty - taker.remaining;
        if taker.remaining.is_zero() {
            self.update(request.instrument, Some(owner), &request.client_order_id, OrderStatus::Filled, filled, Decimal::ZERO, None, now_ms);
        } else if stp_expired || tif != TimeInForce::Gtc && tif != TimeInForce::PostOnly {
            let reason = if stp_expired { reasons::STP_EXPIRED } else if tif == TimeInForce::Fok { reasons::FOK_EXPIRED } else { reasons::IOC_EXPIRED };
            self.release(request.instrument, Account::Main, taker.side, taker.lock_per_unit * taker.remaining);
            self.update(request.instrument, Some(owner), &request.client_order_id, OrderStatus::Expired, filled, Decimal::ZERO, Some(reason), now_ms);
        } else {
            self.rest(request.instrument, taker);
        }
    }

    fn cancel(&mut self, _owner: StrategyId, instrument: InstrumentId, client_order_id: &str, now_ms: i64) {
        let Some(&order_id) = self.by_client_id.get(client_order_id) else { return };
        let Some(&(inst_id, side, price)) = self.resting.get(&order_id) else { return };
        if inst_id != instrument {
            return;
        }
        let removed = self.instruments.get_mut(&instrument).and_then(|i| i.book.remove(side, price, order_id));
        if let Some(order) = removed {
            self.resting.remove(&order_id);
            self.release_and_close(instrument, &order, OrderStatus::Canceled, Some(reasons::CANCELED), now_ms);
        }
    }

    fn drain_events(&mut self, out: &mut Vec<VenueEvent>) -> Option<std::time::Instant> {
        out.append(&mut self.events);
        None
    }

    fn book(&self, instrument: InstrumentId, depth: usize) -> Option<BookSnapshot> {
        let inst = self.instruments.get(&instrument)?;
        Some(BookSnapshot { instrument, bids: inst.book.depth(Side::Buy, depth), asks: inst.book.depth(Side::Sell, depth), ts_ms: 0 })
    }

    fn as_paper_mut(&mut self) -> Option<&mut PaperVenue> {
        Some(self)
    }

    fn as_paper(&self) -> Option<&PaperVenue> {
        Some(self)
    }

    fn live_state(&self) -> Option<crate::venue::LiveState> {
        None
    }

    fn restore_live(&mut self, _state: crate::venue::LiveState, _sent: &[(StrategyId, OrderRequest)]) {}

    /// The simulated account holds only the runtime's orders, which the kill switch has
    /// cancelled one by one already.
    fn cancel_account(&mut self, _within: std::time::Duration) -> Vec<String> {
        Vec::new()
    }

    fn account(&self) -> Option<crate::venue::AccountView> {
        None
    }

    fn metrics(&self) -> Option<crate::venue::VenueMetrics> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decimal(mantissa: i64, scale: u32) -> Decimal {
        Decimal::new(mantissa, scale)
    }

    proptest! {
        /// The ladder counted in ticks quotes the very decimals the rounding does: the same
        /// values and the same scales (a fill's price is written with its scale).
        #[test]
        fn ladder_in_ticks_quotes_as_rounding_does(
            tick in (1i64..1_000, 0u32..6),
            ticks in (1i64..1_000_000_000, 0i64..100_000),
            extra_scale in (0u32..4, 0u32..4),
            k in 1u32..20,
        ) {
            // A print and a step on the grid, written with more digits than the tick's at
            // times (a recorded "9600.10" on a tick of 0.01).
            let tick = decimal(tick.0, tick.1);
            let (mut price, mut step) = (tick * Decimal::from(ticks.0), tick * Decimal::from(ticks.1));
            price.rescale(price.scale() + extra_scale.0);
            step.rescale(step.scale() + extra_scale.1);
            let expected = quote(price, step, tick, k);
            let fast = LadderTicks::of(price, step, tick).and_then(|t| t.level(k, tick));
            prop_assert!(fast.is_some(), "on the grid, {price} and {step} on {tick} are counted in ticks");
            let fast = fast.unwrap_or_default();
            prop_assert_eq!(fast.0.serialize(), expected.0.serialize(), "bid {} against {}", fast.0, expected.0);
            prop_assert_eq!(fast.1.serialize(), expected.1.serialize(), "ask {} against {}", fast.1, expected.1);
        }
    }

    #[test]
    fn ladder_in_ticks_is_taken_only_on_the_grid() {
        let d = |s: &str| s.parse::<Decimal>().unwrap_or_default();
        assert!(LadderTicks::of(d("9600.12"), d("0.5"), d("0.01")).is_some());
        assert!(LadderTicks::of(d("9600.125"), d("0.5"), d("0.01")).is_none(), "a print off the grid is rounded");
        assert!(LadderTicks::of(d("9600.12"), d("0.005"), d("0.01")).is_none(), "a step of part of a tick is rounded");
        assert!(LadderTicks::of(d("9600.12"), d("0.5"), d("0")).is_none());
        let t = LadderTicks::of(d("9600.12"), d("0.5"), d("0.01")).unwrap_or_else(|| unreachable!());
        assert_eq!(t.level(2, d("0.01")).map(|(b, a)| (b.to_string(), a.to_string())), Some(("9599.12".into(), "9601.12".into())));
    }
}
