//! Venues: where orders go and where fills come from.
//!
//! [`Venue`] is the seam every venue implements in our own types: the embedded paper
//! venue here, live exchange adapters beside it. Exchange JSON never leaves an adapter.
//! Results arrive as [`VenueEvent`]s drained by the engine, because on a live venue an
//! answer comes later, over a socket; the paper venue simply answers at once.

pub mod binance;
pub mod connect;
pub mod live;
pub mod okx;
pub mod paper;
pub mod report;


use crate::model::{BookSnapshot, Decimal, Fill, InstrumentId, OrderRequest, OrderUpdate, PublicTrade, SelfTradePrevention, StrategyId, VenueId};

/// Something a venue reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VenueEvent {
    Fill(Fill),
    Order(OrderUpdate),
    /// A trade on the venue's public tape.
    Trade(PublicTrade),
    /// The venue's book of this instrument changed (live venues; read it with `book`).
    Book(InstrumentId),
}

/// A trading venue as the router sees it.
///
/// There are no default bodies: a venue that forgot to implement `submit` must not
/// compile, rather than silently drop orders.
pub trait Venue: Send {
    fn id(&self) -> VenueId;
    fn name(&self) -> &str;
    /// True for a simulated venue, where no real money moves and self-trading is allowed.
    fn is_paper(&self) -> bool;
    /// Sends an order. Acceptance, rejection and fills come back through `drain_events`.
    /// `trigger`: when the private-stream frame behind the order was read, for
    /// tick-to-trade (none on a timer, at start, on a paper venue).
    fn submit(&mut self, owner: StrategyId, request: &OrderRequest, stp: SelfTradePrevention, now_ms: i64, trigger: Option<std::time::Instant>);
    /// Cancels a resting order by its client order id.
    fn cancel(&mut self, owner: StrategyId, instrument: InstrumentId, client_order_id: &str, now_ms: i64);
    /// Moves everything the venue has reported since the last call into `out`, and says
    /// when the earliest private-stream frame among it was read (live venues).
    fn drain_events(&mut self, out: &mut Vec<VenueEvent>) -> Option<std::time::Instant>;
    /// The venue's current book, `depth` levels a side.
    fn book(&self, instrument: InstrumentId, depth: usize) -> Option<BookSnapshot>;
    /// The paper venue behind this venue, for the market data replay that drives it.
    fn as_paper_mut(&mut self) -> Option<&mut paper::PaperVenue>;
    /// Read-only access to the same, for reports and invariant checks.
    fn as_paper(&self) -> Option<&paper::PaperVenue>;
    /// What a live venue must remember across a restart (none for a paper venue, whose
    /// whole state is checkpointed).
    fn live_state(&self) -> Option<LiveState>;
    /// After a restart: the saved state and the orders sent since (from the journal);
    /// the venue reconciles them before anything else.
    fn restore_live(&mut self, state: LiveState, sent: &[(StrategyId, OrderRequest)]);
    /// The runtime is stopping: placements not yet sent never will be (cancels still go).
    fn stop_placing(&mut self) {}
    /// The kill switch, when asked to: every open order of the account on this venue's
    /// instruments cancelled through the venue's own cancel-all, whoever placed it. Waits
    /// up to `within` for the venue's answers: one line per instrument, saying what was done.
    fn cancel_account(&mut self, within: std::time::Duration) -> Vec<String>;
    /// What the account holds as the venue last said (at the start, then at each periodic
    /// reconciliation); none for a paper venue, whose balances are its own state.
    fn account(&self) -> Option<AccountView>;
    /// A live venue's connection figures for the operator's metrics; none for a paper venue.
    fn metrics(&self) -> Option<VenueMetrics>;
}

/// A live venue's connection figures, for `GET /metrics`.
#[derive(Debug, Clone)]
pub struct VenueMetrics {
    /// REST requests by (method, endpoint, HTTP status; 0 when no answer came).
    pub requests: Vec<((String, String, u16), u64)>,
    /// Each rate-limit window: what it counts, its span in seconds, used now, its maximum.
    pub rate_limits: Vec<(live::limits::Counted, u64, u32, u32)>,
    pub reconnects: u64,
    /// Complete reconciliations: after each connect, each restore and each period.
    pub reconciliations: u64,
    /// Requests the venue refused as over its rate limit (429).
    pub rate_limited: u64,
    pub private_lag: crate::stats::Histogram,
    pub public_lag: crate::stats::Histogram,
    pub round_trip: crate::stats::Histogram,
    /// From a private-stream frame read to an order it led to handed to the HTTP client.
    pub tick_to_trade: live::latency::Latencies,
    /// The engine's share of `tick_to_trade`: to the order handed to the venue.
    pub decided: live::latency::Latencies,
}

/// What an account holds on a live venue, as the venue last said, for the operator.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AccountView {
    /// Total (free and locked) by asset; the wallet balance on derivatives venues.
    pub balances: Vec<(String, Decimal)>,
    /// Position by symbol on derivatives venues (signed: negative is short).
    pub positions: Vec<(String, Decimal)>,
    /// When the venue was asked (system clock, ms).
    pub as_of_ms: i64,
}

/// What a live venue carries across a restart, in a checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LiveState {
    pub last_fill_ms: i64,
    /// The most recent trade ids delivered (symbol:id).
    pub seen_trades: Vec<String>,
    /// Orders not yet seen final: (venue client id, our client id, owner, symbol).
    pub open: Vec<(String, String, StrategyId, String)>,
    /// Venue time up to which fills were last reconciled (0 in older checkpoints).
    #[serde(default)]
    pub reconciled_ms: i64,
    /// Fill quantity delivered so far per order in `open` (venue client id): saved with
    /// the trade ids, so after a restart an order's final state is not held for fills
    /// delivered before it.
    #[serde(default)]
    pub delivered: Vec<(String, Decimal)>,
}
