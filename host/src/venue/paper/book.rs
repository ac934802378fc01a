//! A price-time-priority limit order book for one instrument.
//!
//! The book only knows about resting orders and how an incoming order walks them; fees,
//! balances and events are the paper venue's business. Levels are kept in `BTreeMap`s so
//! the best price is the first key, and each level is a FIFO queue: time priority.

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
}

/// What a step of the walk found at the front of the opposite side.
pub enum Front<'a> {
    Empty,
    /// The best opposite order does not cross the limit.
    NoCross,
    Order(&'a mut RestingOrder),
}

impl OrderBook {
    pub fn best_bid(&self) -> Option<Decimal> {
        self.bids.keys().next().map(|p| p.0)
    }

    pub fn best_ask(&self) -> Option<Decimal> {
        self.asks.keys().next().copied()
    }

    /// Appends an order at the back of its price level.
    pub fn rest(&mut self, order: RestingOrder) {
        match order.side {
            Side::Buy => self.bids.entry(Reverse(order.price)).or_default().push_back(order),
            Side::Sell => self.asks.entry(order.price).or_default().push_back(order),
        }
    }

    /// The best resting order an incoming `taker_side` order with `limit` could trade with.
    pub fn front(&mut self, taker_side: Side, limit: Option<Decimal>) -> Front<'_> {
        let level = match taker_side {
            Side::Buy => self.asks.iter_mut().next().map(|(p, q)| (*p, q)),
            Side::Sell => self.bids.iter_mut().next().map(|(p, q)| (p.0, q)),
        };
        let Some((price, queue)) = level else { return Front::Empty };
        if !crosses(taker_side, limit, price) {
            return Front::NoCross;
        }
        match queue.front_mut() {
            Some(order) => Front::Order(order),
            None => Front::Empty,
        }
    }

    /// Removes the front order of the best opposite level (after it filled or was
    /// expired by self-trade prevention), dropping the level when it empties.
    pub fn pop_front(&mut self, taker_side: Side) -> Option<RestingOrder> {
        match taker_side {
            Side::Buy => {
                let mut entry = self.asks.first_entry()?;
                let order = entry.get_mut().pop_front();
                if entry.get().is_empty() {
                    entry.remove();
                }
                order
            }
            Side::Sell => {
                let mut entry = self.bids.first_entry()?;
                let order = entry.get_mut().pop_front();
                if entry.get().is_empty() {
                    entry.remove();
                }
                order
            }
        }
    }

    /// Removes a resting order by id; `None` when it is not resting.
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

    /// How much an incoming order could execute right now, honouring self-trade
    /// prevention the way the walk will: this is what fill-or-kill checks first.
    pub fn executable_qty(&self, taker_side: Side, limit: Option<Decimal>, account: Account, stp: SelfTradePrevention) -> Decimal {
        let mut total = Decimal::ZERO;
        let levels: Box<dyn Iterator<Item = (Decimal, &VecDeque<RestingOrder>)>> = match taker_side {
            Side::Buy => Box::new(self.asks.iter().map(|(p, q)| (*p, q))),
            Side::Sell => Box::new(self.bids.iter().map(|(p, q)| (p.0, q))),
        };
        for (price, queue) in levels {
            if !crosses(taker_side, limit, price) {
                break;
            }
            for order in queue {
                if order.account == account && stp != SelfTradePrevention::None {
                    match stp {
                        SelfTradePrevention::ExpireMaker => continue,
                        _ => return total,
                    }
                }
                total += order.remaining;
            }
        }
        total
    }

    /// The cost of buying (or proceeds of selling) `qty` by walking the opposite side,
    /// and the worst price reached; used to hold funds for a market order.
    pub fn worst_price_for(&self, taker_side: Side, qty: Decimal) -> Option<Decimal> {
        let mut left = qty;
        let levels: Box<dyn Iterator<Item = (Decimal, &VecDeque<RestingOrder>)>> = match taker_side {
            Side::Buy => Box::new(self.asks.iter().map(|(p, q)| (*p, q))),
            Side::Sell => Box::new(self.bids.iter().map(|(p, q)| (p.0, q))),
        };
        let mut worst = None;
        for (price, queue) in levels {
            worst = Some(price);
            left -= queue.iter().map(|o| o.remaining).sum::<Decimal>();
            if left <= Decimal::ZERO {
                break;
            }
        }
        worst
    }

    /// Aggregated levels, best first.
    pub fn depth(&self, side: Side, levels: usize) -> Vec<BookLevel> {
        let sum = |q: &VecDeque<RestingOrder>| q.iter().map(|o| o.remaining).sum::<Decimal>();
        match side {
            Side::Buy => self.bids.iter().take(levels).map(|(p, q)| BookLevel { price: p.0, qty: sum(q) }).collect(),
            Side::Sell => self.asks.iter().take(levels).map(|(p, q)| BookLevel { price: *p, qty: sum(q) }).collect(),
        }
    }

    /// Every resting order, bids then asks, best first; for invariant checks and sweeps.
    pub fn orders(&self) -> impl Iterator<Item = &RestingOrder> {
        self.bids.values().flatten().chain(self.asks.values().flatten())
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
