//! A price-time-priority limit order book for one instrument.
//!
//! The book only knows about resting orders and how an incoming order walks them; fees,
//! balances and events are the paper venue's business. Levels are kept in `BTreeMap`s so
//! the best price is the first key, and each level is a FIFO queue: time priority.
//!
//! The background liquidity (the market account's quotes, withdrawn and quoted again
//! around every print) stands apart, in a short queue per side, best first: putting ten
//! orders into the levels and taking them out again at every print was most of a replay's
//! time on a venue with liquidity. The two are one book to everything that reads it: an
//! incoming order meets them merged by price, then by arrival (order ids rise with
//! arrival, so within a price the lower id was there first), exactly the order one queue
//! per level would give.

use std::cmp::Reverse;
use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::model::{BookLevel, Decimal, SelfTradePrevention, Side, StrategyId};

/// Who owns an order on the paper venue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Account {
    /// The runtime's account, shared by all strategies, as on a real exchange.
    Main,
    /// The rest of the market: the recorded prints and the background liquidity that
    /// stands in for other participants.
    Market,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestingOrder {
    pub order_id: u64,
    pub account: Account,
    pub owner: Option<StrategyId>,
    pub client_order_id: String,
    pub side: Side,
    pub price: Decimal,
    pub original_qty: Decimal,
    pub remaining: Decimal,
    pub stp: SelfTradePrevention,
    /// Funds held per unit of remaining quantity (quote for a buy, base for a sell).
    pub lock_per_unit: Decimal,
}

impl RestingOrder {
    pub fn filled(&self) -> Decimal {
        self.original_qty - self.remaining
    }
}

#[derive(Debug, Default)]
pub struct OrderBook {
    bids: BTreeMap<Reverse<Decimal>, VecDeque<RestingOrder>>,
    asks: BTreeMap<Decimal, VecDeque<RestingOrder>>,
    /// The market account's orders, best first and then by arrival, per side.
    background_bids: VecDeque<RestingOrder>,
    background_asks: VecDeque<RestingOrder>,
}

/// Where the best order of a side rests.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Levels,
    Background,
}

/// Whether the order at `a` (price, id) comes before the one at `b` for an incoming
/// order of `taker_side`: the better price first (the lower ask, the higher bid), then the
/// earlier arrival.
fn ahead(taker_side: Side, a: (Decimal, u64), b: (Decimal, u64)) -> bool {
    match a.0.cmp(&b.0) {
        std::cmp::Ordering::Equal => a.1 < b.1,
        std::cmp::Ordering::Less => taker_side == Side::Buy,
        std::cmp::Ordering::Greater => taker_side == Side::Sell,
    }
}

/// The orders of one side in the order an incoming order meets them: the levels and the
/// background merged.
struct Merged<'a, L: Iterator<Item = &'a RestingOrder>> {
    taker_side: Side,
    levels: std::iter::Peekable<L>,
    background: std::iter::Peekable<std::collections::vec_deque::Iter<'a, RestingOrder>>,
}

impl<'a, L: Iterator<Item = &'a RestingOrder>> Iterator for Merged<'a, L> {
    type Item = &'a RestingOrder;

    fn next(&mut self) -> Option<&'a RestingOrder> {
        match (self.levels.peek(), self.background.peek()) {
            (Some(l), Some(b)) if ahead(self.taker_side, (b.price, b.order_id), (l.price, l.order_id)) => self.background.next(),
            (Some(_), _) => self.levels.next(),
            (None, _) => self.background.next(),
        }
    }
}

/// What a step of the walk found at the front of the opposite side.
pub enum Front<'a> {
    Empty,
    /// The best opposite order does not cross the limit.
    NoCross,
    Order(&'a mut RestingOrder),
}

impl OrderBook {
    /// The best bid, what an incoming sell meets first, of the levels and the background.
    pub fn best_bid(&self) -> Option<Decimal> {
        self.best(Side::Sell).map(|(_, price)| price)
    }

    /// The best ask, what an incoming buy meets first, of the levels and the background.
    pub fn best_ask(&self) -> Option<Decimal> {
        self.best(Side::Buy).map(|(_, price)| price)
    }

    /// Appends an order at the back of its price level; the market account's orders join
    /// the background.
    pub fn rest(&mut self, order: RestingOrder) {
        if order.account == Account::Market {
            let (queue, taker_side) = match order.side {
                Side::Buy => (&mut self.background_bids, Side::Sell),
                Side::Sell => (&mut self.background_asks, Side::Buy),
            };
            // Quotes arrive best first, so this is the back but for a restored book out of
            // order: it stays sorted whatever the order of arrival.
            let at = queue.iter().rposition(|o| ahead(taker_side, (o.price, o.order_id), (order.price, order.order_id))).map_or(0, |i| i + 1);
            queue.insert(at, order);
            return;
        }
        match order.side {
            Side::Buy => self.bids.entry(Reverse(order.price)).or_default().push_back(order),
            Side::Sell => self.asks.entry(order.price).or_default().push_back(order),
        }
    }

    /// Withdraws the whole background (what the market quoted at the last print).
    pub fn clear_background(&mut self) {
        self.background_bids.clear();
        self.background_asks.clear();
    }

    /// Which of the levels and the background holds the best order for `taker_side`,
    /// and its price.
    fn best(&self, taker_side: Side) -> Option<(Source, Decimal)> {
        let (level, background) = match taker_side {
            Side::Buy => (self.asks.values().next().and_then(VecDeque::front), self.background_asks.front()),
            Side::Sell => (self.bids.values().next().and_then(VecDeque::front), self.background_bids.front()),
        };
        match (level, background) {
            (Some(l), Some(b)) if ahead(taker_side, (b.price, b.order_id), (l.price, l.order_id)) => Some((Source::Background, b.price)),
            (Some(l), _) => Some((Source::Levels, l.price)),
            (None, Some(b)) => Some((Source::Background, b.price)),
            (None, None) => None,
        }
    }

    /// Whether an incoming `taker_side` order limited at `limit` would meet anything.
    pub fn would_trade(&self, taker_side: Side, limit: Decimal) -> bool {
        self.best(taker_side).is_some_and(|(_, price)| crosses(taker_side, Some(limit), price))
    }

    /// The best resting order an incoming `taker_side` order with `limit` could trade with.
    pub fn front(&mut self, taker_side: Side, limit: Option<Decimal>) -> Front<'_> {
        let Some((source, price)) = self.best(taker_side) else { return Front::Empty };
        if !crosses(taker_side, limit, price) {
            return Front::NoCross;
        }
        let order = match (source, taker_side) {
            (Source::Background, Side::Buy) => self.background_asks.front_mut(),
            (Source::Background, Side::Sell) => self.background_bids.front_mut(),
            (Source::Levels, Side::Buy) => self.asks.values_mut().next().and_then(VecDeque::front_mut),
            (Source::Levels, Side::Sell) => self.bids.values_mut().next().and_then(VecDeque::front_mut),
        };
        match order {
            Some(order) => Front::Order(order),
            None => Front::Empty,
        }
    }

    /// Removes the front order of the best opposite level (after it filled or was
    /// expired by self-trade prevention), dropping the level when it empties.
    pub fn pop_front(&mut self, taker_side: Side) -> Option<RestingOrder> {
        let (source, _) = self.best(taker_side)?;
        match (source, taker_side) {
            (Source::Background, Side::Buy) => self.background_asks.pop_front(),
            (Source::Background, Side::Sell) => self.background_bids.pop_front(),
            (Source::Levels, Side::Buy) => {
                let mut entry = self.asks.first_entry()?;
                let order = entry.get_mut().pop_front();
                if entry.get().is_empty() {
                    entry.remove();
                }
                order
            }
            (Source::Levels, Side::Sell) => {
                let mut entry = self.bids.first_entry()?;
                let order = entry.get_mut().pop_front();
                if entry.get().is_empty() {
                    entry.remove();
                }
                order
            }
        }
    }

    /// Removes a resting order of the levels by id (the background is withdrawn whole);
    /// `None` when it is not resting.
    pub fn remove(&mut self, side: Side, price: Decimal, order_id: u64) -> Option<RestingOrder> {
        fn take<K: Ord>(map: &mut BTreeMap<K, VecDeque<RestingOrder>>, key: K, order_id: u64) -> Option<RestingOrder> {
            let queue = map.get_mut(&key)?;
            let index = queue.iter().position(|o| o.order_id == order_id)?;
            let order = queue.remove(index);
            if queue.is_empty() {
                map.remove(&key);
            }
            order
        }
        match side {
            Side::Buy => take(&mut self.bids, Reverse(price), order_id),
            Side::Sell => take(&mut self.asks, price, order_id),
        }
    }

    /// The orders an incoming `taker_side` order would meet, in the order it meets them.
    fn opposite(&self, taker_side: Side) -> Merged<'_, Box<dyn Iterator<Item = &RestingOrder> + '_>> {
        let (levels, background): (Box<dyn Iterator<Item = &RestingOrder>>, _) = match taker_side {
            Side::Buy => (Box::new(self.asks.values().flatten()), &self.background_asks),
            Side::Sell => (Box::new(self.bids.values().flatten()), &self.background_bids),
        };
        Merged { taker_side, levels: levels.peekable(), background: background.iter().peekable() }
    }

    /// How much an incoming order could execute right now, honouring self-trade
    /// prevention the way the walk will: this is what fill-or-kill checks first.
    pub fn executable_qty(&self, taker_side: Side, limit: Option<Decimal>, account: Account, stp: SelfTradePrevention) -> Decimal {
        let mut total = Decimal::ZERO;
        for order in self.opposite(taker_side) {
            if !crosses(taker_side, limit, order.price) {
                break;
            }
            if order.account == account && stp != SelfTradePrevention::None {
                match stp {
                    SelfTradePrevention::ExpireMaker => continue,
                    _ => return total,
                }
            }
            total += order.remaining;
        }
        total
    }

    /// The cost of buying (or proceeds of selling) `qty` by walking the opposite side,
    /// and the worst price reached; used to hold funds for a market order.
    pub fn worst_price_for(&self, taker_side: Side, qty: Decimal) -> Option<Decimal> {
        let mut left = qty;
        let mut worst = None;
        for order in self.opposite(taker_side) {
            worst = Some(order.price);
            left -= order.remaining;
            if left <= Decimal::ZERO {
                break;
            }
        }
        worst
    }

    /// Aggregated levels, best first.
    pub fn depth(&self, side: Side, levels: usize) -> Vec<BookLevel> {
        let mut out: Vec<BookLevel> = Vec::with_capacity(levels.min(64));
        for order in self.opposite(side.opposite()) {
            if let Some(level) = out.last_mut().filter(|l| l.price == order.price) {
                level.qty += order.remaining;
            } else if out.len() == levels {
                break;
            } else {
                out.push(BookLevel { price: order.price, qty: order.remaining });
            }
        }
        out
    }

    /// Every resting order, bids then asks, best first; for invariant checks and sweeps.
    pub fn orders(&self) -> impl Iterator<Item = &RestingOrder> {
        self.opposite(Side::Sell).chain(self.opposite(Side::Buy))
    }
}

/// Whether a taker with `limit` (none: market) trades with a resting order at `price`.
pub fn crosses(taker_side: Side, limit: Option<Decimal>, price: Decimal) -> bool {
    match (taker_side, limit) {
        (_, None) => true,
        (Side::Buy, Some(limit)) => price <= limit,
        (Side::Sell, Some(limit)) => price >= limit,
    }
}
