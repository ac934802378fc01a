//! The SDK's own types: the WIT contract's records with `Decimal` in place of the wire
//! layout, so strategy code reads like ordinary Rust.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A handle for an instrument, from [`crate::Host::lookup`].
pub type InstrumentId = u32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    /// The side that closes what this side opens.
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }

    /// +1 for a buy, -1 for a sell: the sign of the position change.
    pub fn sign(self) -> Decimal {
        match self {
            Side::Buy => Decimal::ONE,
            Side::Sell => Decimal::NEGATIVE_ONE,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeInForce {
    Gtc,
    Ioc,
    Fok,
    PostOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderType {
    Limit { price: Decimal, time_in_force: TimeInForce },
    Market,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    pub client_order_id: String,
    pub instrument: InstrumentId,
    pub side: Side,
    pub order_type: OrderType,
    pub qty: Decimal,
}

impl OrderRequest {
    /// A limit order with the given time in force.
    pub fn limit(
        client_order_id: impl Into<String>,
        instrument: InstrumentId,
        side: Side,
        price: Decimal,
        qty: Decimal,
        time_in_force: TimeInForce,
    ) -> Self {
        OrderRequest {
            client_order_id: client_order_id.into(),
            instrument,
            side,
            order_type: OrderType::Limit { price, time_in_force },
            qty,
        }
    }

    /// The limit price; none for a market order.
    pub fn limit_price(&self) -> Option<Decimal> {
        match self.order_type {
            OrderType::Limit { price, .. } => Some(price),
            OrderType::Market => None,
        }
    }

    pub fn market(client_order_id: impl Into<String>, instrument: InstrumentId, side: Side, qty: Decimal) -> Self {
        OrderRequest { client_order_id: client_order_id.into(), instrument, side, order_type: OrderType::Market, qty }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Place(OrderRequest),
    Cancel { instrument: InstrumentId, client_order_id: String },
    /// Cancel every resting order of this strategy on one instrument, or everywhere.
    CancelAll(Option<InstrumentId>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Liquidity {
    Maker,
    Taker,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fill {
    pub instrument: InstrumentId,
    pub client_order_id: String,
    /// True when this strategy placed the order.
    pub own: bool,
    pub trade_id: String,
    pub side: Side,
    pub price: Decimal,
    pub qty: Decimal,
    pub fee: Decimal,
    pub fee_asset: String,
    pub liquidity: Liquidity,
    pub ts_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    Accepted,
    Filled,
    Canceled,
    Expired,
    Rejected,
}

impl OrderStatus {
    /// True once the order can no longer trade.
    pub fn is_final(self) -> bool {
        !matches!(self, OrderStatus::Accepted)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderUpdate {
    pub instrument: InstrumentId,
    pub client_order_id: String,
    pub status: OrderStatus,
    pub filled_qty: Decimal,
    pub remaining_qty: Decimal,
    pub reason: Option<String>,
    pub ts_ms: i64,
}

impl OrderUpdate {
    /// When the venue takes orders again, if the host said so: a rejection during a
    /// venue's ban ends its reason with `retry-after-ms=<epoch ms>` (see the contract).
    /// A strategy that waits until then is told of the ban once, not on every retry.
    pub fn retry_after_ms(&self) -> Option<i64> {
        self.reason.as_deref()?.rsplit_once("retry-after-ms=")?.1.trim().parse().ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicTrade {
    pub instrument: InstrumentId,
    pub trade_id: u64,
    pub price: Decimal,
    pub qty: Decimal,
    pub aggressor: Side,
    pub ts_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookLevel {
    pub price: Decimal,
    pub qty: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BookSnapshot {
    pub instrument: InstrumentId,
    pub bids: Vec<BookLevel>,
    pub asks: Vec<BookLevel>,
    pub ts_ms: i64,
}

impl BookSnapshot {
    pub fn best_bid(&self) -> Option<Decimal> {
        self.bids.first().map(|l| l.price)
    }
    pub fn best_ask(&self) -> Option<Decimal> {
        self.asks.first().map(|l| l.price)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Trade(PublicTrade),
    Book(BookSnapshot),
    Fill(Fill),
    Order(OrderUpdate),
    /// The timer fired; the scheduled time in ms.
    Timer(i64),
    /// New params (JSON) from a config reload.
    Params(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstrumentInfo {
    pub id: InstrumentId,
    pub venue: u32,
    pub venue_name: String,
    pub symbol: String,
    pub base_asset: String,
    pub quote_asset: String,
    pub tick_size: Decimal,
    pub lot_size: Decimal,
    pub min_qty: Decimal,
    pub min_notional: Decimal,
    pub paper: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscriptions {
    pub trades: Vec<InstrumentId>,
    pub books: Vec<(InstrumentId, u32)>,
    pub account_fills: Vec<InstrumentId>,
    pub timer_interval_ms: Option<u64>,
    /// Instruments the strategy will place orders on; the host refuses others. Empty: any.
    pub orders_on: Vec<InstrumentId>,
    /// Crosses its own orders on purpose: paper venues only (see the WIT contract).
    pub self_trading: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(reason: Option<&str>) -> OrderUpdate {
        OrderUpdate {
            instrument: 0,
            client_order_id: "h1".into(),
            status: OrderStatus::Rejected,
            filled_qty: Decimal::ZERO,
            remaining_qty: Decimal::ZERO,
            reason: reason.map(str::to_string),
            ts_ms: 0,
        }
    }

    #[test]
    fn retry_after_is_read_from_the_end_of_a_reason_and_nowhere_else() {
        let ban = "venue hedge has banned this client (HTTP 418) until Wed, 02 Dec 2026 19:00:00 GMT; not sent; retry-after-ms=1796151600000";
        assert_eq!(rejected(Some(ban)).retry_after_ms(), Some(1_796_151_600_000));
        assert_eq!(rejected(Some("Insufficient balance")).retry_after_ms(), None);
        assert_eq!(rejected(Some("retry-after-ms=soon")).retry_after_ms(), None);
        assert_eq!(rejected(None).retry_after_ms(), None);
    }
}
