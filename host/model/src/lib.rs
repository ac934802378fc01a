//! The runtime's domain types: exact decimals, ids, orders, fills, order updates, market
//! data and the events a strategy receives. One definition, used by the host, by the
//! strategy SDK inside every component, and by the local exchange; the WIT contract's
//! types are converted to and from these at the sandbox boundary only (the host's
//! `plugin` module and the SDK's glue), so no other code meets the wire layout.
//!
//! No I/O here, and nothing of wasmtime or wit-bindgen: this crate builds for wasm32 in
//! every strategy.
//!
//! Who placed an order is known differently on the two sides of the sandbox: the host
//! knows the strategy (`Option<StrategyId>`, none for an order placed outside the runtime),
//! a strategy knows only whether it was itself ([`Whose`]). [`Fill`], [`OrderUpdate`] and
//! [`Event`] take that as a parameter, the host's view by default.

use std::fmt;

pub use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub mod packed;
pub mod tape;

/// A venue's index in the configured venue list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VenueId(pub u32);

/// The handle of one instrument on one venue, fixed at start-up and handed to strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct InstrumentId(pub u32);

/// A strategy instance's index in the configured strategy list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StrategyId(pub u32);

/// Enums are written in lowercase (as strategies always wrote them in their snapshots);
/// the capitalised spelling older host checkpoints used is still read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    #[serde(alias = "Buy")]
    Buy,
    #[serde(alias = "Sell")]
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

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeInForce {
    #[serde(alias = "Gtc")]
    Gtc,
    #[serde(alias = "Ioc")]
    Ioc,
    #[serde(alias = "Fok")]
    Fok,
    #[serde(alias = "PostOnly")]
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
    /// A limit order with the given time in force.
    pub fn limit(client_order_id: impl Into<String>, instrument: InstrumentId, side: Side, price: Decimal, qty: Decimal, time_in_force: TimeInForce) -> Self {
        OrderRequest { client_order_id: client_order_id.into(), instrument, side, order_type: OrderType::Limit { price, time_in_force }, qty }
    }

    pub fn market(client_order_id: impl Into<String>, instrument: InstrumentId, side: Side, qty: Decimal) -> Self {
        OrderRequest { client_order_id: client_order_id.into(), instrument, side, order_type: OrderType::Market, qty }
    }

    /// The limit price; none for a market order.
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
    /// Cancel every resting order of this strategy on one instrument, or everywhere.
    CancelAll(Option<InstrumentId>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Liquidity {
    #[serde(alias = "Maker")]
    Maker,
    #[serde(alias = "Taker")]
    Taker,
}

/// Whose order a fill or an update is about, as a strategy is told: its own, or another's
/// (another strategy's, or one placed outside the runtime, seen through an account-fills
/// subscription). Order updates reach only the strategy that placed the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Whose {
    Mine,
    Others,
}

/// One execution of an order of the venue account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill<Owner = Option<StrategyId>> {
    pub instrument: InstrumentId,
    pub client_order_id: String,
    /// Who placed the order: the strategy (host), or whether it was the reader (strategy).
    pub owner: Owner,
    pub trade_id: String,
    pub side: Side,
    pub price: Decimal,
    pub qty: Decimal,
    pub fee: Decimal,
    pub fee_asset: String,
    pub liquidity: Liquidity,
    pub ts_ms: i64,
}

impl Fill<Whose> {
    /// True when the strategy reading it placed the order.
    pub fn is_mine(&self) -> bool {
        self.owner == Whose::Mine
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    #[serde(alias = "Accepted")]
    Accepted,
    #[serde(alias = "Filled")]
    Filled,
    #[serde(alias = "Canceled")]
    Canceled,
    #[serde(alias = "Expired")]
    Expired,
    #[serde(alias = "Rejected")]
    Rejected,
}

impl OrderStatus {
    /// True once the order can no longer trade.
    pub fn is_final(self) -> bool {
        !matches!(self, OrderStatus::Accepted)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderUpdate<Owner = Option<StrategyId>> {
    pub instrument: InstrumentId,
    pub client_order_id: String,
    /// Who placed the order (see [`Fill::owner`]); always [`Whose::Mine`] for a strategy.
    pub owner: Owner,
    pub status: OrderStatus,
    pub filled_qty: Decimal,
    pub remaining_qty: Decimal,
    pub reason: Option<String>,
    pub ts_ms: i64,
}

impl<Owner> OrderUpdate<Owner> {
    /// When the venue takes orders again, if the host said so: a rejection during a
    /// venue's ban ends its reason with `retry-after-ms=<epoch ms>` (see the contract).
    /// A strategy that waits until then is told of the ban once, not on every retry.
    pub fn retry_after_ms(&self) -> Option<i64> {
        self.reason.as_deref()?.rsplit_once("retry-after-ms=")?.1.trim().parse().ok()
    }
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

/// A strategy's quiet band on one instrument (contract 0.1.4 `quiet`): trades priced
/// strictly between the bounds are ones it promised would make it decide nothing. One
/// definition for the engine that holds trades, the test harness that checks the promise
/// and a strategy that tells its band, so the three cannot read a bound differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietBand {
    pub instrument: InstrumentId,
    /// None: no bound below.
    pub low: Option<Decimal>,
    /// None: no bound above.
    pub high: Option<Decimal>,
}

impl QuietBand {
    /// Whether the band holds `trade`: its instrument, priced strictly inside.
    pub fn holds(&self, trade: &PublicTrade) -> bool {
        trade.instrument == self.instrument && self.low.is_none_or(|l| trade.price > l) && self.high.is_none_or(|h| trade.price < h)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookLevel {
    pub price: Decimal,
    pub qty: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BookSnapshot {
    pub instrument: InstrumentId,
    /// Best first.
    pub bids: Vec<BookLevel>,
    /// Best first.
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

/// What a strategy is handed, in the order things happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event<Owner = Option<StrategyId>> {
    Trade(PublicTrade),
    Book(BookSnapshot),
    Fill(Fill<Owner>),
    Order(OrderUpdate<Owner>),
    /// The timer fired; the scheduled time in ms.
    Timer(i64),
    /// New params (JSON) from a config reload.
    Params(String),
    /// The host's risk engine or the operator halted the strategy: its resting orders are
    /// being cancelled and it may send only what the halt allows until it is resumed.
    Halted(Halt),
    /// The operator lifted the halt.
    Resumed,
}

/// One asset of the account on a venue, as a strategy reads it (`account.balances`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetBalance {
    pub asset: String,
    /// Free and locked together.
    pub total: Decimal,
    /// What open orders do not hold, where it is known.
    pub available: Option<Decimal>,
}

/// One of the strategy's orders still open, as a strategy reads it (`account.open-orders`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestingOrder {
    pub instrument: InstrumentId,
    pub client_order_id: String,
    pub side: Side,
    /// None for a market order still working.
    pub price: Option<Decimal>,
    pub remaining: Decimal,
}

/// Why a strategy was halted and what it may still do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Halt {
    /// The limit and its figures, or the operator's words.
    pub reason: String,
    /// Orders that reduce a position still pass.
    pub reducing_allowed: bool,
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
    /// Instruments it will place orders on; the host refuses others. Empty: any.
    pub orders_on: Vec<InstrumentId>,
    /// Crosses its own orders on purpose: paper venues only (see the WIT contract).
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

    /// The bounds as mantissas: a decimal is its mantissa over a power of ten, so one whose
    /// mantissa is within a bound is within it too, and the check of every print needs no
    /// rescaling comparison (profiles put that at 7% of a replay).
    const MAX_PRICE_MANTISSA: u128 = 1_000_000_000_000;
    const MAX_QTY_MANTISSA: u128 = 1_000_000_000_000;
    const MAX_NOTIONAL_MANTISSA: u128 = 1_000_000_000_000_000;

    /// Checks a price, a quantity and their product against the bounds; the error names
    /// what is out of range.
    pub fn check(price: Option<Decimal>, qty: Decimal) -> Result<(), String> {
        let qty_mantissa = qty.mantissa().unsigned_abs();
        if qty_mantissa > MAX_QTY_MANTISSA && qty.abs() > MAX_QTY {
            return Err(format!("qty {qty} is beyond the host's bound of {MAX_QTY}"));
        }
        let Some(price) = price else { return Ok(()) };
        let price_mantissa = price.mantissa().unsigned_abs();
        if price_mantissa > MAX_PRICE_MANTISSA && price.abs() > MAX_PRICE {
            return Err(format!("price {price} is beyond the host's bound of {MAX_PRICE}"));
        }
        // Both mantissas fit 96 bits, so their product fits a u128; within the bound, the
        // exact product below cannot overflow either.
        if price_mantissa.checked_mul(qty_mantissa).is_some_and(|product| product <= MAX_NOTIONAL_MANTISSA) {
            return Ok(());
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
        // On the bounds themselves, from either side, at a scale that hides the size.
        assert!(bounds::check(Some(d("1000000000000.000")), d("0.001")).is_ok());
        assert!(bounds::check(Some(d("1000000000000.001")), d("0.001")).is_err());
        assert!(bounds::check(Some(d("1000000000000")), d("1000.0")).is_ok());
        assert!(bounds::check(Some(d("1000000000000")), d("1000.1")).is_err());
    }

    /// A decimal near the bounds as often as not: a mantissa up to 10^17 at scale 0 to 6.
    fn near_bounds() -> impl proptest::strategy::Strategy<Value = Decimal> {
        use proptest::prelude::*;
        prop_oneof![
            (0u64..100_000_000_000_000_000, 0u32..7, any::<bool>()).prop_map(|(m, scale, negative)| {
                let d = Decimal::from_i128_with_scale(i128::from(m), scale);
                if negative { -d } else { d }
            }),
            (any::<u32>(), any::<u32>(), any::<u32>(), any::<bool>(), 0u32..=28).prop_map(|(lo, mid, hi, negative, scale)| Decimal::from_parts(lo, mid, hi, negative, scale)),
        ]
    }

    proptest::proptest! {
        /// The mantissa shortcut answers as the exact comparisons do, everywhere.
        #[test]
        fn bounds_agree_with_the_exact_comparisons(price in near_bounds(), qty in near_bounds(), priced in proptest::prelude::any::<bool>()) {
            let exact = |price: Option<Decimal>, qty: Decimal| {
                if qty.abs() > bounds::MAX_QTY {
                    return false;
                }
                let Some(price) = price else { return true };
                price.abs() <= bounds::MAX_PRICE && matches!(price.checked_mul(qty), Some(n) if n.abs() <= bounds::MAX_NOTIONAL)
            };
            let price = priced.then_some(price);
            proptest::prop_assert_eq!(bounds::check(price, qty).is_ok(), exact(price, qty));
        }
    }

    fn rejected(reason: Option<&str>) -> OrderUpdate<Whose> {
        OrderUpdate {
            instrument: InstrumentId(0),
            client_order_id: "h1".into(),
            owner: Whose::Mine,
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

    /// Checkpoints written before the types were shared spelled enums capitalised; they
    /// must still load. New ones are written in lowercase, as strategy snapshots were.
    #[test]
    fn enums_read_both_spellings_and_write_lowercase() {
        let old = r#"{"client_order_id":"a","instrument":3,"side":"Sell","order_type":{"Limit":{"price":"1.5","time_in_force":"PostOnly"}},"qty":"2"}"#;
        let request: OrderRequest = serde_json::from_str(old).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(request, OrderRequest::limit("a", InstrumentId(3), Side::Sell, Decimal::new(15, 1), Decimal::TWO, TimeInForce::PostOnly));
        let written = serde_json::to_string(&request).unwrap_or_default();
        assert!(written.contains(r#""side":"sell""#) && written.contains(r#""time_in_force":"postonly""#), "{written}");
        let status: OrderStatus = serde_json::from_str(r#""Canceled""#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(status, OrderStatus::Canceled);
        assert_eq!(serde_json::from_str::<Liquidity>(r#""maker""#).ok(), Some(Liquidity::Maker));
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
