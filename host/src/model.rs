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
        return Err(format!("client order id {:?} must be 1 to 32 characters", shown(id, 40)));
    }
    if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(format!("client order id {:?} may only hold A-Z, a-z, 0-9, '-' and '_'", shown(id, 40)));
    }
    Ok(())
}

/// The magnitudes the host accepts anywhere a price or a quantity enters it: from a guest,
/// a data file, a config or a venue. Far above any real market (a price of a trillion
/// quote units, a trillion base units, a notional of a quadrillion) and far below what a
/// 96-bit decimal holds, so arithmetic on accepted values (a notional, a fee, a sum over
/// a run) never overflows and never panics.
pub mod bounds {
    use super::Decimal;

    /// 10^12.
    pub const MAX_PRICE: Decimal = Decimal::from_parts(0xD4A5_1000, 0xE8, 0, false, 0);
    /// 10^12.
    pub const MAX_QTY: Decimal = Decimal::from_parts(0xD4A5_1000, 0xE8, 0, false, 0);
    /// 10^15: price x qty of one order or one print.
    pub const MAX_NOTIONAL: Decimal = Decimal::from_parts(0xA4C6_8000, 0x38D7E, 0, false, 0);
    /// Market data times are accepted from the epoch to 2100-01-01 (ms): anything else is a
    /// broken record, and a replay paced on it would wait for centuries.
    pub const EARLIEST_MS: i64 = 0;
    pub const LATEST_MS: i64 = 4_102_444_800_000;

    /// Checks a price, a quantity and their product against the bounds; the error names
    /// what is out of range.
    pub fn check(price: Option<Decimal>, qty: Decimal) -> Result<(), String> {
        if qty.abs() > MAX_QTY {
            return Err(format!("qty {qty} is beyond the host's bound of {MAX_QTY}"));
        }
        let Some(price) = price else { return Ok(()) };
        if price.abs() > MAX_PRICE {
            return Err(format!("price {price} is beyond the host's bound of {MAX_PRICE}"));
        }
        match price.checked_mul(qty) {
            Some(notional) if notional.abs() <= MAX_NOTIONAL => Ok(()),
            _ => Err(format!("notional {price} x {qty} is beyond the host's bound of {MAX_NOTIONAL}")),
        }
    }
}

/// A string that came from outside (a guest, a venue) made safe to echo in a log line or
/// an error: at most `max` characters, control characters escaped, so it can neither
/// flood the log nor forge a line of its own.
pub fn shown(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == max {
            out.push_str(&format!("… ({} bytes)", text.len()));
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_refuse_what_would_overflow() {
        let d = |s: &str| s.parse::<Decimal>().unwrap_or_default();
        assert_eq!(bounds::MAX_PRICE, d("1000000000000"));
        assert_eq!(bounds::MAX_NOTIONAL, d("1000000000000000"));
        assert!(bounds::check(Some(d("1e20")), d("1e9")).is_err());
        assert!(bounds::check(Some(d("79228162514264337593543950335")), d("2")).is_err());
        assert!(bounds::check(Some(d("10000000")), d("1000000000")).err().unwrap_or_default().contains("notional"));
        assert!(bounds::check(Some(d("9682.19")), d("0.132")).is_ok());
        assert!(bounds::check(None, d("1e13")).is_err());
    }

    #[test]
    fn shown_escapes_and_truncates() {
        assert_eq!(shown("a\nb", 10), "a\\nb");
        let long = "x".repeat(1 << 20);
        let s = shown(&long, 32);
        assert!(s.len() < 64, "{s}");
        assert!(s.ends_with("(1048576 bytes)"));
    }
}
