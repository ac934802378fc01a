//! What a live exchange adapter provides to the machinery in [`super`]: REST calls and
//! the two WebSocket streams, in our types. Everything venue-specific (URLs, signing,
//! JSON) stays behind this trait, in `binance/` and `okx/`.

use std::future::Future;
use std::time::Duration;

use crate::model::{Decimal, OrderRequest, SelfTradePrevention};
use crate::venue::report::OrderReport;
use crate::venue::AccountView;

/// An instrument's trading rules as the venue publishes them, in base units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub symbol: String,
    pub base: String,
    pub quote: String,
    pub tick_size: Decimal,
    pub lot_size: Decimal,
    pub min_qty: Decimal,
    pub min_notional: Decimal,
    /// Base units per contract on a venue that counts in contracts (OKX swaps); 1 otherwise.
    pub contract_value: Decimal,
}

/// An order on its way out: the request and its venue symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub symbol: String,
    pub request: OrderRequest,
    pub stp: SelfTradePrevention,
    /// When the private-stream frame behind it was read, for tick-to-trade.
    pub trigger: Option<std::time::Instant>,
}

/// How a REST call failed; the variant decides what happens next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestError {
    /// The venue answered and refused: the order does not exist on the venue.
    #[error("rejected ({code}): {message}")]
    Rejected { code: i64, message: String },
    /// The venue says the order (or whatever was asked about) does not exist.
    #[error("not found ({code}): {message}")]
    NotFound { code: i64, message: String },
    /// We cannot tell whether it happened: 5xx, a timeout, a dropped connection, -1007.
    /// An order in this state is queried by its client id before anything is resent.
    #[error("status unknown: {0}")]
    Unknown(String),
    /// The request never reached the venue (connection refused): safe to send again.
    #[error("not sent: {0}")]
    NotSent(String),
    /// 429 or the venue's rate-limit code: nothing happened; wait this long.
    #[error("rate limited; retry after {0:?}")]
    RateLimited(Duration),
    /// 418 (or OKX's ban): stop sending to this venue.
    #[error("banned by the venue for {0:?}: repeated rate-limit violations")]
    Banned(Duration),
    /// Authentication refused (key, signature, timestamp): nothing happened.
    #[error("authentication refused ({code}): {message}")]
    Auth { code: i64, message: String },
}

/// A trade on the venue's public tape, before its symbol is mapped to an instrument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapeTrade {
    pub symbol: String,
    pub trade_id: u64,
    pub price: Decimal,
    /// In base units.
    pub qty: Decimal,
    pub buyer_is_maker: bool,
    pub ts_ms: i64,
}

/// Where a stream delivers what it reads.
pub trait StreamSink: Send + Sync {
    /// The stream is connected and subscribed: from here on nothing is missed, so a
    /// reconciliation started now closes any gap behind it.
    fn connected(&self);
    fn report(&self, report: OrderReport);
    fn trade(&self, trade: TapeTrade);
    /// The book of `symbol` changed; its best levels now, in base units.
    fn book(&self, symbol: &str, bids: Vec<crate::model::BookLevel>, asks: Vec<crate::model::BookLevel>, ts_ms: i64);
    /// A gap in `symbol`'s book diffs: the book is being rebuilt from a snapshot.
    fn book_gap(&self, symbol: &str, why: String);
    /// A message that could not be used; counted and logged, the connection goes on.
    fn malformed(&self, what: String);
}

/// A pushed message as JSON; one that is not JSON is reported to the sink as malformed
/// (`stream` says which) and skipped, never the end of the connection.
pub fn json_push(sink: &dyn StreamSink, stream: &str, text: &str) -> Option<serde_json::Value> {
    match serde_json::from_str(text) {
        Ok(value) => Some(value),
        Err(e) => {
            sink.malformed(format!("{stream}: {e}"));
            None
        }
    }
}

/// Why a stream connection ended; the supervisor reconnects after either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// Closed on purpose: the planned rollover before the venue's 24 h limit, or the
    /// venue's notice of a shutdown or listen key expiry.
    Rollover(String),
    /// Dropped or refused.
    Failed(String),
}

/// One live venue's protocol. Futures are `Send` so the supervisor can spawn them.
pub trait Exchange: Send + Sync + 'static {
    /// The REST requests sent so far, by endpoint and status, for the operator's metrics.
    fn requests(&self) -> &super::http::RequestCounts;
    /// Each rate-limit window with what is used of it now.
    fn rate_limits(&self) -> Vec<(super::limits::Window, u32)>;
    /// Largest batch the venue takes in one placement call (1: no batch endpoint used).
    fn max_batch(&self) -> usize;
    /// The venue's time now, as its clock was last measured: the host's plus the offset.
    fn venue_now_ms(&self) -> i64;
    /// From now on no placement is sent, including one waiting for the rate limit: the
    /// runtime is stopping. It fails as not sent.
    fn close_placing(&self);
    /// The venue's clock, for the timestamps signed requests carry.
    fn server_time(&self) -> impl Future<Output = Result<i64, RestError>> + Send;
    fn rules(&self) -> impl Future<Output = Result<Vec<Rules>, RestError>> + Send;
    /// Places one batch; one result per order, in order. The report is the venue's ack.
    fn place(&self, orders: &[NewOrder]) -> impl Future<Output = Vec<Result<OrderReport, RestError>>> + Send;
    fn cancel(&self, symbol: &str, client_order_id: &str) -> impl Future<Output = Result<(), RestError>> + Send;
    fn cancel_all(&self, symbol: &str) -> impl Future<Output = Result<(), RestError>> + Send;
    /// The order's current state by our client id; `NotFound` when the venue has none.
    fn query(&self, symbol: &str, client_order_id: &str) -> impl Future<Output = Result<OrderReport, RestError>> + Send;
    fn open_orders(&self, symbol: &str) -> impl Future<Output = Result<Vec<OrderReport>, RestError>> + Send;
    /// Our executions on `symbol` since `since_ms`, each as a report carrying the fill.
    fn fills_since(&self, symbol: &str, since_ms: i64) -> impl Future<Output = Result<Vec<OrderReport>, RestError>> + Send;
    /// What the account holds: balances by asset, and positions by symbol on derivatives.
    fn account(&self) -> impl Future<Output = Result<AccountView, RestError>> + Send;
    /// Connects the private stream and reads it until it ends.
    fn private_stream(&self, sink: &dyn StreamSink, max_age: Duration) -> impl Future<Output = StreamEnd> + Send;
    /// Connects the order book stream of `symbols`, keeps their books from a snapshot and
    /// diffs, and reads it until it ends.
    fn book_stream(&self, symbols: &[String], sink: &dyn StreamSink, max_age: Duration) -> impl Future<Output = StreamEnd> + Send;
    /// Connects the public trade stream of `symbols` and reads it until it ends.
    fn public_stream(&self, symbols: &[String], sink: &dyn StreamSink, max_age: Duration) -> impl Future<Output = StreamEnd> + Send;
}
