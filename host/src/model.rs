//! Domain types shared by every part of the host: exact decimals, ids, orders, fills and
//! events. No I/O and no wasmtime here; the plugin module converts these to and from the
//! WIT types at the sandbox boundary, and venue adapters convert exchange JSON into them.

use std::fmt;

pub use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A venue's index in the configured venue list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VenueId(pub u32);

/// The handle of one instrument on one venue, fixed at start-up and handed to strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct InstrumentId(pub u32);

/// A strategy instance's index in the configured strategy list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StrategyId(pub u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeInForce {
    Gtc,
    Ioc,
    Fok,
    PostOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderType {
    Limit { price: Decimal, time_in_force: TimeInForce },
    Market,
}

/// How a venue treats an order that would trade against the same account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SelfTradePrevention {
    /// Let it trade (paper venues only, for strategies that declared self-trading).
    None,
    /// Expire the incoming order's remainder: the resting order keeps its place.
    ExpireTaker,
    ExpireMaker,
    ExpireBoth,
}

/// An order as a strategy asked for it, before the venue has seen it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRequest {
    pub client_order_id: String,
    pub instrument: InstrumentId,
    pub side: Side,
    pub order_type: OrderType,
    pub qty: Decimal,
}

impl OrderRequest {
    pub fn limit_price(&self) -> Option<Decimal> {
        match self.order_type {
            OrderType::Limit { price, .. } => Some(price),
            OrderType::Market => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    Place(OrderRequest),
    Cancel { instrument: InstrumentId, client_order_id: String },
    CancelAll(Option<InstrumentId>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Liquidity {
    Maker,
    Taker,
}

/// One execution of an order of the venue account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill {
    pub instrument: InstrumentId,
    pub client_order_id: String,
    /// The strategy that placed the order, if a strategy did.
    pub owner: Option<StrategyId>,
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
pub enum OrderStatus {
    Accepted,
    Filled,
    Canceled,
    Expired,
    Rejected,
}

impl OrderStatus {
    pub fn is_final(self) -> bool {
        !matches!(self, OrderStatus::Accepted)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderUpdate {
    pub instrument: InstrumentId,
    pub client_order_id: String,
    pub owner: Option<StrategyId>,
    pub status: OrderStatus,
    pub filled_qty: Decimal,
    pub remaining_qty: Decimal,
    pub reason: Option<String>,
    pub ts_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicTrade {
    pub instrument: InstrumentId,
    pub trade_id: u64,
    pub price: Decimal,
    pub qty: Decimal,
    pub aggressor: Side,
    pub ts_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookLevel {
    pub price: Decimal,
    pub qty: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BookSnapshot {
    pub instrument: InstrumentId,
    pub bids: Vec<BookLevel>,
    pub asks: Vec<BookLevel>,
    pub ts_ms: i64,
}

/// What a strategy is handed, in the order things happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Trade(PublicTrade),
    Book(BookSnapshot),
    Fill(Fill),
    Order(OrderUpdate),
    Timer(i64),
    Params(String),
}

/// An instrument's trading rules, enforced by the host before an order leaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstrumentInfo {
    pub id: InstrumentId,
    pub venue: VenueId,
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

/// What a strategy asked for at init.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Subscriptions {
    pub trades: Vec<InstrumentId>,
    pub books: Vec<(InstrumentId, u32)>,
    pub account_fills: Vec<InstrumentId>,
    pub timer_interval_ms: Option<u64>,
    /// Where it may place orders; empty: anywhere.
    pub orders_on: Vec<InstrumentId>,
    pub self_trading: bool,
}

/// A client order id: at most 32 characters of `[A-Za-z0-9_-]`, which Binance (36,
/// `^[\.A-Z\:/a-z0-9_-]{1,36}$`) and OKX (32 alphanumerics, plus our `-`/`_` mapped by the
/// adapter) all accept.
pub fn validate_client_order_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 32 {
        return Err(format!("client order id {id:?} must be 1 to 32 characters"));
    }
    if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(format!("client order id {id:?} may only hold A-Z, a-z, 0-9, '-' and '_'"));
    }
    Ok(())
}
