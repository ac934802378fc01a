//! A live venue: the [`Venue`] the router sees, in front of tasks that talk to an
//! exchange over REST and WebSockets.
//!
//! The engine is synchronous and deterministic; exchanges are not. `submit` and `cancel`
//! only queue a command; an order task sends them in order (batched where the venue
//! allows), a private-stream task turns pushes into fills and order updates, and a
//! public-stream task turns the tape into trades. All of them report into one queue that
//! `drain_events` empties, and wake the engine when they add to it.
//!
//! Safety rules, in the order they matter:
//! - an order whose outcome is unknown (5xx, timeout, dropped connection) is queried by
//!   its client order id before anything else; it is resent only when the venue says it
//!   does not exist, and then with the same client order id;
//! - every fill is delivered once, by trade id, however often the venue pushes it or a
//!   reconciliation finds it again;
//! - after every (re)connect, and every `reconcile_interval` besides, fills since the last
//!   reconciliation (a margin back, every page of them) and the state of every order not
//!   seen final are fetched over REST, so a push lost on a live connection, which no
//!   reconnect would reveal, is found within one interval;
//! - nothing the venue reports is delivered before the saved state is restored: a fill of
//!   an order placed before a restart needs its owner, which the checkpoint names. Reports
//!   that arrive earlier wait, and go out once the owners are known.

pub mod book;
pub mod clock;
pub mod driver;
pub mod http;
pub mod latency;
pub mod limits;
pub mod protocol;
pub mod ws;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};

use crate::model::{BookSnapshot, Decimal, InstrumentId, OrderRequest, OrderStatus, OrderUpdate, PublicTrade, SelfTradePrevention, Side, StrategyId, VenueId};
use crate::venue::report::OrderReport;
use crate::stats::{Histogram, NETWORK_BUCKETS};
use crate::venue::{paper, AccountView, LiveState, Venue, VenueEvent, VenueMetrics};
use driver::{off_thread, Driver};
use protocol::{Exchange, NewOrder, RestError, Rules, StreamEnd, StreamSink, TapeTrade};

/// Pages of fills one reconciliation reads at most per symbol (100k fills on Binance,
/// 10k on OKX): a venue that keeps answering full pages is not followed forever; the
/// reconciliation is then incomplete and the next one starts from the same point.
pub const MAX_FILL_PAGES: usize = 100;

/// How many trade ids are remembered for deduplication, per venue.
const SEEN_TRADES: usize = 100_000;
/// How many times an order of unknown status is queried before it is left to the
/// reconciliation that follows every reconnect.
const RESOLVE_ATTEMPTS: u32 = 8;

type ExchangeFigures = (Vec<((String, String, u16), u64)>, Vec<(limits::Window, u32)>);

/// Called when a task added events, so the engine wakes up for them.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// Counters an operator (and the tests) can read.
#[derive(Debug)]
pub struct LiveStats {
    pub malformed: AtomicU64,
    pub duplicate_fills: AtomicU64,
    pub reconnects: AtomicU64,
    pub unknown_status: AtomicU64,
    pub resent: AtomicU64,
    pub rate_limited: AtomicU64,
    pub reconciled_fills: AtomicU64,
    pub book_gaps: AtomicU64,
    /// Reconciliations completed (every symbol's fills and every order's state read).
    pub reconciliations: AtomicU64,
    /// From a private-stream event's venue time to its arrival (our system clock).
    pub private_lag: Mutex<Histogram>,
    /// From a public trade's venue time to its arrival.
    pub public_lag: Mutex<Histogram>,
    /// A placement call's round trip: request sent to the venue's answer read.
    pub round_trip: Mutex<Histogram>,
    /// From a private-stream frame read to an order it led to written (see [`latency`]).
    pub tick_to_trade: latency::TickToTrade,
    /// The engine's share of it: from the frame read to the order handed to this venue.
    pub decided: latency::TickToTrade,
}

impl Default for LiveStats {
    fn default() -> Self {
        LiveStats {
            malformed: AtomicU64::new(0),
            duplicate_fills: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            unknown_status: AtomicU64::new(0),
            resent: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            reconciled_fills: AtomicU64::new(0),
            book_gaps: AtomicU64::new(0),
            reconciliations: AtomicU64::new(0),
            private_lag: Mutex::new(Histogram::new(NETWORK_BUCKETS)),
            public_lag: Mutex::new(Histogram::new(NETWORK_BUCKETS)),
            round_trip: Mutex::new(Histogram::new(NETWORK_BUCKETS)),
            tick_to_trade: latency::TickToTrade::default(),
            decided: latency::TickToTrade::default(),
        }
    }
}

/// Observes a lag from a venue timestamp (ms) to now on our clock; a venue clock ahead
/// of ours reads as no lag.
fn observe_lag(histogram: &Mutex<Histogram>, venue_ms: i64) {
    let lag_ms = (clock::system_ms() - venue_ms).max(0);
    histogram.lock().unwrap_or_else(|p| p.into_inner()).observe(lag_ms as f64 / 1000.0);
}

/// Connection settings shared by every adapter.
#[derive(Debug, Clone)]
pub struct LiveSettings {
    /// Reconnect before the venue's 24 h limit, on our schedule instead of theirs.
    pub max_connection_age: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// How often fills and open orders are reconciled over REST on a healthy connection:
    /// the bound on how long a lost push can go unnoticed.
    pub reconcile_interval: Duration,
}


impl Default for LiveSettings {
    fn default() -> Self {
        LiveSettings {
            max_connection_age: Duration::from_secs(23 * 3600 + 50 * 60),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            reconcile_interval: Duration::from_millis(crate::config::DEFAULT_RECONCILE_INTERVAL_MS),
        }
    }
}

enum Command {
    /// Orders given together (one strategy call's), placed in batches of the venue's size.
    Place(Vec<NewOrder>),
    Cancel { symbol: String, client_order_id: String },
    /// Fetch fills and order states now (after a restart); says when done.
    Reconcile(oneshot::Sender<()>),
    /// Says when every command before it has been carried out.
    Flush(oneshot::Sender<()>),
    /// The venue's cancel-all on each of these symbols; one line per symbol back.
    CancelAccount(Vec<String>, oneshot::Sender<Vec<String>>),
}

/// How long the client ids and states of final orders are kept: well past the minute a
/// reconciliation looks back, so a late or repeated push still finds its owner.
const RETAIN: Duration = Duration::from_secs(600);

/// How long a restart waits for a venue's reconciliation before strategies run.
const RESTART_RECONCILE_WAIT: Duration = Duration::from_secs(30);

/// Trade ids kept in a checkpoint: the reconciliation looks seconds back, far fewer.
const SAVED_TRADES: usize = 5_000;

/// How far before the last complete reconciliation (on the venue's clock) the next one
/// looks: covers fills stamped a little earlier than they became visible in the venue's
/// trade list, and the clock offset's measurement error. A minute was too much: every
/// reconciliation read 70 s of fills, which at 1,000 fills a second is 70 pages per
/// symbol every 10 s, more request weight than Binance spot allows a minute (20 a page,
/// 6,000 a minute), and page after page parsed on the engine's thread (#12: the p99 of
/// tick-to-trade went from 85 µs to 179 µs with it).
const RECONCILE_MARGIN_MS: i64 = 10_000;

/// Reports held before the saved state is restored. Beyond this they are dropped: not
/// lost, since they are not marked seen and the reconciliation at the restore finds them.
const MAX_PARKED: usize = 100_000;

/// What the tasks share with the venue handle.
struct Shared {
    venue: VenueId,
    name: String,
    /// What the account holds, as the venue last said (for the control API).
    account: Mutex<Option<AccountView>>,
    /// Reported and not yet drained, with when the earliest private-stream frame among
    /// them was read (the tick of tick-to-trade).
    events: Mutex<(Vec<VenueEvent>, Option<std::time::Instant>)>,
    /// Venue client id -> (our client id, owner), for orders we placed.
    ours: Mutex<HashMap<String, (String, StrategyId)>>,
    seen_trades: Mutex<(HashSet<String>, VecDeque<String>)>,
    /// Last (status, filled) reported per venue client id, to drop stale or repeated updates.
    order_state: Mutex<HashMap<String, (OrderStatus, Decimal)>>,
    /// Orders seen final, oldest first: forgotten from the maps above after [`RETAIN`],
    /// by when no push or reconciliation can mention them again.
    retired: Mutex<VecDeque<(std::time::Instant, String)>>,
    /// Our client id -> the venue's spelling of it.
    map_id: fn(&str) -> String,
    /// Orders sent whose final state we have not seen: reconciled after a reconnect.
    pending: Mutex<HashMap<String, String>>,
    /// Orders whose placement answer was lost and whose queries gave up.
    unresolved: Mutex<HashSet<String>>,
    symbols: HashMap<String, InstrumentId>,
    last_fill_ms: AtomicI64,
    /// Venue time (as the host clock estimates it) up to which every fill has been read by
    /// a reconciliation; the next one reads from a margin before it.
    reconciled_ms: AtomicI64,
    /// One reconciliation at a time: the one after a reconnect and the periodic one
    /// would otherwise read and report the same things side by side.
    reconciling: tokio::sync::Mutex<()>,
    /// Reports that came before the saved state was restored, in arrival order, with
    /// whether they carry the order's state; `None` once restored.
    parked: Mutex<Option<Vec<(OrderReport, bool)>>>,
    /// Fill quantity delivered per venue client id.
    delivered: Mutex<HashMap<String, Decimal>>,
    /// Final states that say more was filled than the fills delivered so far (a REST
    /// answer or query ahead of its pushes, or pushes lost): held back until the fills
    /// come, so a strategy never sees an order end before its fills. With how many
    /// complete reconciliations have passed without them.
    held: Mutex<HashMap<String, (OrderReport, u32)>>,
    /// Asks the reconciliation task to look now (a final state is waiting for fills).
    reconcile_soon: tokio::sync::Notify,
    /// On a start with no saved state, the venue's time at start: fills before it are
    /// history, not work, so no reconciliation reaches back past it (a fresh start used
    /// to hedge again fills of the last minute). Zero once saved state is restored: then
    /// every fill since the last one seen is work, deduplicated by trade id.
    history_before_ms: AtomicI64,
    /// Set when the runtime stops: orders still queued are not sent (a stopping runtime
    /// takes no new exposure), so the cancels queued behind them go out at once instead
    /// of waiting out the rate limit behind a backlog of placements.
    shutting_down: AtomicBool,
    /// Closes the adapter's placements (see [`Exchange::close_placing`]).
    close_placing: Box<dyn Fn() + Send + Sync>,
    /// The adapter's request counts and rate-limit use, for the metrics.
    exchange_figures: Box<dyn Fn() -> ExchangeFigures + Send + Sync>,
    books: Mutex<HashMap<InstrumentId, BookSnapshot>>,
    /// When the venue's ban (HTTP 418) ends, in host clock ms: orders are refused at once
    /// until then, never queued behind it, and the ban is announced once.
    banned_until_ms: AtomicI64,
    wake: Waker,
    stats: LiveStats,
}

impl Shared {
    fn push(&self, events: Vec<VenueEvent>) {
        if events.is_empty() {
            return;
        }
        {
            let mut pending = self.events.lock().unwrap_or_else(|p| p.into_inner());
            pending.0.extend(events);
            if let Some(at) = latency::frame_arrival() {
                pending.1 = Some(pending.1.map_or(at, |earlier| earlier.min(at)));
            }
        }
        (self.wake)();
    }

    /// A report from the stream, a REST answer or a reconciliation: each fill once, each
    /// order state change once and never backwards.
    fn report(&self, report: OrderReport) {
        self.report_parts(report, true);
    }

    /// `with_state: false` for a report rebuilt from a trade list, which knows the fill
    /// but not the order's state at that moment.
    fn report_parts(&self, report: OrderReport, with_state: bool) {
        {
            let mut parked = self.parked.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(waiting) = parked.as_mut() {
                if waiting.len() < MAX_PARKED {
                    waiting.push((report, with_state));
                }
                return;
            }
        }
        self.deliver(report, with_state, false);
    }

    /// The trades of a trade list whose fills were not delivered already, and from the
    /// history floor on. Most of a periodic reconciliation's list came by the stream: this
    /// tells them apart on the blocking pool (20,000 trades are milliseconds of work), so
    /// the engine's thread delivers only what is new. Dropping a delivered trade here is
    /// what [`Shared::deliver`] would do with it (a report from a trade list carries no
    /// order state); one delivered meanwhile is still caught there.
    fn undelivered(&self, reports: Vec<OrderReport>, floor: i64) -> Vec<OrderReport> {
        let mut fresh = Vec::new();
        let mut duplicates = 0u64;
        let mut reports = reports.into_iter().filter(|r| r.ts_ms >= floor).peekable();
        while reports.peek().is_some() {
            // A few hundred at a time: the stream's deliveries take the same lock.
            let seen = self.seen_trades.lock().unwrap_or_else(|p| p.into_inner());
            for report in reports.by_ref().take(256) {
                match &report.execution {
                    Some(e) if seen.0.contains(&trade_key(&report.symbol, &e.trade_id)) => duplicates += 1,
                    _ => fresh.push(report),
                }
            }
        }
        self.stats.duplicate_fills.fetch_add(duplicates, Ordering::Relaxed);
        fresh
    }

    /// `force`: deliver a final state even if its fills have not all come (they never
    /// will, as far as the venue's own trade list says).
    fn deliver(&self, mut report: OrderReport, with_state: bool, force: bool) {
        let Some(&instrument) = self.symbols.get(&report.symbol) else {
            tracing::debug!(venue = %self.name, symbol = %report.symbol, "report for an instrument not configured; ignored");
            return;
        };
        let venue_id = report.client_order_id.clone();
        if let Some(e) = &report.execution {
            let key = trade_key(&report.symbol, &e.trade_id);
            let mut seen = self.seen_trades.lock().unwrap_or_else(|p| p.into_inner());
            if seen.0.contains(&key) {
                self.stats.duplicate_fills.fetch_add(1, Ordering::Relaxed);
                report.execution = None;
            } else {
                seen.0.insert(key.clone());
                seen.1.push_back(key);
                if seen.1.len() > SEEN_TRADES {
                    if let Some(old) = seen.1.pop_front() {
                        seen.0.remove(&old);
                    }
                }
                self.last_fill_ms.fetch_max(report.ts_ms, Ordering::Relaxed);
                let mut delivered = self.delivered.lock().unwrap_or_else(|p| p.into_inner());
                let total = delivered.entry(venue_id.clone()).or_default();
                *total = total.saturating_add(e.qty);
            }
        }
        let mut with_state = with_state;
        if with_state && report.status.is_final() && !force {
            let delivered = self.delivered.lock().unwrap_or_else(|p| p.into_inner()).get(&venue_id).copied().unwrap_or_default();
            if report.filled_qty > delivered {
                let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
                let waited = held.get(&venue_id).map_or(0, |(_, n)| *n);
                let mut state = report.clone();
                state.execution = None;
                held.insert(venue_id.clone(), (state, waited));
                drop(held);
                tracing::debug!(venue = %self.name, client_order_id = %venue_id, filled = %report.filled_qty, %delivered, "final state ahead of its fills: held until they come");
                self.reconcile_soon.notify_one();
                with_state = false;
            }
        }
        let (client_order_id, owner) = match self.ours.lock().unwrap_or_else(|p| p.into_inner()).get(&report.client_order_id) {
            Some((ours, owner)) => (ours.clone(), Some(*owner)),
            None => (report.client_order_id.clone(), None),
        };
        report.client_order_id = client_order_id;
        let fresh_state = with_state && {
            let mut states = self.order_state.lock().unwrap_or_else(|p| p.into_inner());
            let new = (report.status, report.filled_qty);
            let fresh = match states.get(&venue_id) {
                None => true,
                Some((status, filled)) => !status.is_final() && (report.filled_qty > *filled || report.status.is_final() || report.status != *status),
            };
            if fresh {
                states.insert(venue_id.clone(), new);
            }
            fresh
        };
        if with_state && report.status.is_final() {
            self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&venue_id);
            self.held.lock().unwrap_or_else(|p| p.into_inner()).remove(&venue_id);
            if fresh_state {
                self.retire(venue_id.clone());
            }
        }
        let mut events = Vec::new();
        let has_fill = report.execution.is_some();
        for event in report.into_events(instrument, owner) {
            match event {
                VenueEvent::Order(_) if !fresh_state => {}
                VenueEvent::Fill(_) if !has_fill => {}
                other => events.push(other),
            }
        }
        self.push(events);
        if has_fill {
            self.release_held(&venue_id, false);
        }
    }

    /// Delivers a held final state once its fills are all in, or (`force`) regardless.
    fn release_held(&self, venue_id: &str, force: bool) {
        let ready = {
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            let delivered = self.delivered.lock().unwrap_or_else(|p| p.into_inner()).get(venue_id).copied().unwrap_or_default();
            match held.get(venue_id) {
                Some((state, _)) if force || state.filled_qty <= delivered => held.remove(venue_id).map(|(s, _)| s),
                _ => None,
            }
        };
        if let Some(state) = ready {
            self.deliver(state, true, true);
        }
    }

    /// After a complete reconciliation: a final state whose fills three of them did not
    /// find is delivered as it is, with an error (the venue's trade list and its order
    /// disagree; the strategy must not wait forever on an order that ended).
    fn expire_held(&self) {
        let give_up: Vec<(String, Decimal)> = {
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            held.values_mut().for_each(|(_, n)| *n += 1);
            held.iter().filter(|(_, (_, n))| *n >= 3).map(|(id, (s, _))| (id.clone(), s.filled_qty)).collect()
        };
        for (venue_id, filled) in give_up {
            let delivered = self.delivered.lock().unwrap_or_else(|p| p.into_inner()).get(&venue_id).copied().unwrap_or_default();
            tracing::error!(venue = %self.name, client_order_id = %venue_id, %filled, %delivered, "the venue says this order ended with more filled than its trade list shows; its final state is delivered without the missing fills");
            self.release_held(&venue_id, true);
        }
    }

    /// The saved state is restored (or there was none): reports that waited for it are
    /// delivered, in the order they came, and from now on as they come.
    fn release(&self) {
        let waiting = self.parked.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or_default();
        if !waiting.is_empty() {
            tracing::info!(venue = %self.name, reports = waiting.len(), "reports received before the saved state was restored: delivered now that their owners are known");
        }
        for (report, with_state) in waiting {
            self.deliver(report, with_state, false);
        }
    }

    /// Marks an order final, and forgets those final for longer than [`RETAIN`].
    fn retire(&self, venue_id: String) {
        let now = std::time::Instant::now();
        let mut retired = self.retired.lock().unwrap_or_else(|p| p.into_inner());
        retired.push_back((now, venue_id));
        let mut forget = Vec::new();
        while retired.front().is_some_and(|(at, _)| now.duration_since(*at) > RETAIN) {
            if let Some((_, id)) = retired.pop_front() {
                forget.push(id);
            }
        }
        drop(retired);
        if !forget.is_empty() {
            let mut ours = self.ours.lock().unwrap_or_else(|p| p.into_inner());
            let mut states = self.order_state.lock().unwrap_or_else(|p| p.into_inner());
            let mut delivered = self.delivered.lock().unwrap_or_else(|p| p.into_inner());
            for id in forget {
                ours.remove(&id);
                states.remove(&id);
                delivered.remove(&id);
            }
        }
    }

    fn lost(&self, venue_id: &str, symbol: &str) {
        if self.unresolved.lock().unwrap_or_else(|p| p.into_inner()).remove(venue_id) {
            let (ours, _) = self.ours.lock().unwrap_or_else(|p| p.into_inner()).get(venue_id).cloned().unwrap_or((venue_id.to_string(), StrategyId(0)));
            tracing::error!(venue = %self.name, client_order_id = %ours, "an order of unknown status is not on the venue: it never arrived; reported as rejected");
            let Some(&instrument) = self.symbols.get(symbol) else { return };
            self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(venue_id);
            let owner = self.ours.lock().unwrap_or_else(|p| p.into_inner()).get(venue_id).map(|(_, o)| *o);
            self.push(vec![VenueEvent::Order(OrderUpdate {
                instrument,
                client_order_id: ours,
                owner,
                status: OrderStatus::Rejected,
                filled_qty: Decimal::ZERO,
                remaining_qty: Decimal::ZERO,
                reason: Some("the venue never received this order (its placement answer was lost)".into()),
                ts_ms: clock::system_ms(),
            })]);
            self.retire(venue_id.to_string());
        }
    }

    /// A 418 for `for_`: the ALERT is raised once per ban (a later 418 that only confirms
    /// the known end says nothing new), and the reason orders are refused with.
    fn banned(&self, for_: Duration) -> String {
        let now = clock::system_ms();
        let until = now.saturating_add(i64::try_from(for_.as_millis()).unwrap_or(i64::MAX));
        let known = self.banned_until_ms.fetch_max(until, Ordering::Relaxed);
        // The limiter reports what is left of the same ban, ending within a second of it.
        if known < now || until > known.saturating_add(1000) {
            tracing::error!(venue = %self.name, until = %utc(until), "ALERT: the venue banned this client for {for_:?} (HTTP 418): nothing is sent to it until then; orders are refused at once meanwhile");
        }
        ban_reason(&self.name, self.banned_until_ms.load(Ordering::Relaxed))
    }

    /// The ban's end, while one lasts.
    fn ban_in_force(&self) -> Option<i64> {
        let until = self.banned_until_ms.load(Ordering::Relaxed);
        (until > clock::system_ms()).then_some(until)
    }

    fn rejected(&self, order: &NewOrder, reason: String) {
        let venue_id = (self.map_id)(&order.request.client_order_id);
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&venue_id);
        let Some(&instrument) = self.symbols.get(&order.symbol) else { return };
        let owner = self.ours.lock().unwrap_or_else(|p| p.into_inner()).get(&venue_id).map(|(_, o)| *o);
        self.retire(venue_id);
        self.push(vec![VenueEvent::Order(OrderUpdate {
            instrument,
            client_order_id: order.request.client_order_id.clone(),
            owner,
            status: OrderStatus::Rejected,
            filled_qty: Decimal::ZERO,
            remaining_qty: Decimal::ZERO,
            reason: Some(reason),
            ts_ms: clock::system_ms(),
        })]);
    }
}

impl StreamSink for Shared {
    fn connected(&self) {}

    fn report(&self, report: OrderReport) {
        Shared::report(self, report);
    }

    fn trade(&self, t: TapeTrade) {
        observe_lag(&self.stats.public_lag, t.ts_ms);
        let Some(&instrument) = self.symbols.get(&t.symbol) else { return };
        let aggressor = if t.buyer_is_maker { Side::Sell } else { Side::Buy };
        self.push(vec![VenueEvent::Trade(PublicTrade { instrument, trade_id: t.trade_id, price: t.price, qty: t.qty, aggressor, ts_ms: t.ts_ms })]);
    }

    fn malformed(&self, what: String) {
        self.stats.malformed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(venue = %self.name, "unusable message: {what}");
    }

    fn book(&self, symbol: &str, bids: Vec<crate::model::BookLevel>, asks: Vec<crate::model::BookLevel>, ts_ms: i64) {
        let Some(&instrument) = self.symbols.get(symbol) else { return };
        self.books.lock().unwrap_or_else(|p| p.into_inner()).insert(instrument, BookSnapshot { instrument, bids, asks, ts_ms });
        self.push(vec![VenueEvent::Book(instrument)]);
    }

    fn book_gap(&self, symbol: &str, why: String) {
        self.stats.book_gaps.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(venue = %self.name, symbol, "{why}; rebuilding the book from a snapshot");
    }
}

/// The venue handle the router holds.
pub struct LiveVenue {
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
    /// Commands given since the engine last collected events: sent together then, so the
    /// orders of one strategy call (each journalled to the store as it is routed, which
    /// spaces them out) leave in batches instead of one at a time.
    outbox: Vec<Command>,
    symbol_of: HashMap<InstrumentId, String>,
    /// The tasks run only while someone waits on them: a wait for the order task
    /// (a flush, a cancel-all, a reconciliation) runs them.
    driver: Driver,
}

/// Why a live venue could not start.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("{venue}: {what}: {error}")]
    Rest { venue: String, what: &'static str, error: RestError },
    #[error("{venue}: instrument {symbol} is not listed by the venue")]
    UnknownSymbol { venue: String, symbol: String },
    #[error("{venue}: started from inside the live venues' own tasks, which cannot wait on themselves")]
    Nested { venue: String },
}

/// Which venue this is to the engine: its handle, name, instruments and how our client
/// ids are spelled on it.
pub struct VenueSpec<'a> {
    pub venue: VenueId,
    pub name: &'a str,
    pub symbols: &'a [(String, InstrumentId)],
    pub map_id: fn(&str) -> String,
}

/// Everything the start-up fetched, for the engine to build its instruments from.
pub struct Started {
    pub venue: LiveVenue,
    pub rules: Vec<Rules>,
}

impl LiveVenue {
    /// Syncs the clock, loads the rules of `symbols` (with their instrument handles, in
    /// order), and starts the order, private and public tasks on `driver`. Blocks until
    /// the REST part of the start-up is done; streams connect when the engine next waits.
    pub fn start<E: Exchange>(driver: &Driver, exchange: E, spec: VenueSpec<'_>, settings: LiveSettings) -> Result<Started, LiveError> {
        let VenueSpec { venue, name, symbols, map_id } = spec;
        let exchange = Arc::new(exchange);
        let rest = |what: &'static str| move |error| LiveError::Rest { venue: name.to_string(), what, error };
        let inside = || LiveError::Nested { venue: name.to_string() };
        let venue_now = driver.block_on(exchange.server_time()).ok_or_else(inside)?.map_err(rest("server time"))?;
        let listed = driver.block_on(exchange.rules()).ok_or_else(inside)?.map_err(rest("instrument rules"))?;
        // What the account holds, for the operator; a venue that refuses to say is reported
        // but not fatal (the key may lack the permission).
        let mut account = None;
        match driver.block_on(exchange.account()).ok_or_else(inside)? {
            Ok(view) => {
                let held: Vec<String> = view.balances.iter().chain(&view.positions).filter(|(_, q)| !q.is_zero()).map(|(a, q)| format!("{a} {q}")).collect();
                tracing::info!(venue = name, "account: {}", if held.is_empty() { "nothing held".to_string() } else { held.join(", ") });
                account = Some(view);
            }
            // The first signed call: refused credentials are fatal here, with the venue's
            // code, rather than a runtime that says it started and retries forever.
            Err(error @ RestError::Auth { .. }) => return Err(LiveError::Rest { venue: name.to_string(), what: "credentials refused by the venue (the first signed request)", error }),
            Err(error) => tracing::warn!(venue = name, "balances and positions: {error}"),
        }
        let mut rules = Vec::new();
        let mut by_symbol = HashMap::new();
        for (symbol, id) in symbols {
            let r = listed.iter().find(|r| &r.symbol == symbol).ok_or_else(|| LiveError::UnknownSymbol { venue: name.to_string(), symbol: symbol.clone() })?;
            by_symbol.insert(symbol.clone(), *id);
            rules.push(r.clone());
        }
        let shared = Arc::new(Shared {
            venue,
            name: name.to_string(),
            account: Mutex::new(account),
            events: Mutex::new((Vec::new(), None)),
            ours: Mutex::new(HashMap::new()),
            seen_trades: Mutex::new((HashSet::new(), VecDeque::new())),
            order_state: Mutex::new(HashMap::new()),
            retired: Mutex::new(VecDeque::new()),
            map_id,
            pending: Mutex::new(HashMap::new()),
            unresolved: Mutex::new(HashSet::new()),
            symbols: by_symbol,
            last_fill_ms: AtomicI64::new(venue_now),
            reconciled_ms: AtomicI64::new(venue_now),
            reconciling: tokio::sync::Mutex::new(()),
            parked: Mutex::new(Some(Vec::new())),
            delivered: Mutex::new(HashMap::new()),
            held: Mutex::new(HashMap::new()),
            reconcile_soon: tokio::sync::Notify::new(),
            history_before_ms: AtomicI64::new(venue_now),
            books: Mutex::new(HashMap::new()),
            banned_until_ms: AtomicI64::new(0),
            wake: driver.waker(),
            shutting_down: AtomicBool::new(false),
            close_placing: {
                let exchange = exchange.clone();
                Box::new(move || exchange.close_placing())
            },
            exchange_figures: {
                let exchange = exchange.clone();
                Box::new(move || (exchange.requests().rows(), exchange.rate_limits()))
            },
            stats: LiveStats::default(),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let runtime = driver.handle();
        driver.spawn_urgent(format!("the order task of venue {name}"), order_task(exchange.clone(), shared.clone(), rx));
        runtime.spawn(private_task(exchange.clone(), shared.clone(), settings.clone()));
        runtime.spawn(public_task(exchange.clone(), shared.clone(), symbols.iter().map(|(s, _)| s.clone()).collect(), settings.clone()));
        runtime.spawn(book_task(exchange.clone(), shared.clone(), symbols.iter().map(|(s, _)| s.clone()).collect(), settings.clone()));
        runtime.spawn(reconcile_task(exchange.clone(), shared.clone(), settings.reconcile_interval));
        runtime.spawn(clock_task(exchange, shared.clone()));
        let symbol_of = symbols.iter().map(|(s, id)| (*id, s.clone())).collect();
        Ok(Started { venue: LiveVenue { shared, commands: tx, outbox: Vec::new(), symbol_of, driver: driver.clone() }, rules })
    }

    pub fn stats(&self) -> &LiveStats {
        &self.shared.stats
    }

    /// Hands the outbox to the order task, in order.
    fn send_outbox(&mut self) {
        for command in std::mem::take(&mut self.outbox) {
            if let Err(mpsc::error::SendError(Command::Place(orders))) = self.commands.send(command) {
                for order in &orders {
                    self.shared.rejected(order, format!("venue {} is shut down", self.shared.name));
                }
            }
        }
    }
}

/// How long shutting down waits for the cancels (and anything else queued) to go out.
const FLUSH_WAIT: Duration = Duration::from_secs(30);

impl Drop for LiveVenue {
    /// The last cancels are queued just before the runtime stops: they must reach the
    /// venue before its connections go.
    fn drop(&mut self) {
        self.send_outbox();
        self.shared.shutting_down.store(true, Ordering::Relaxed);
        (self.shared.close_placing)();
        let (done, wait) = oneshot::channel();
        if self.commands.send(Command::Flush(done)).is_ok() && !matches!(self.driver.run_until(FLUSH_WAIT, wait), Some(Ok(()))) {
            tracing::error!(venue = %self.shared.name, "commands still queued after {FLUSH_WAIT:?} at shutdown; check the venue for open orders");
        }
    }
}

impl Venue for LiveVenue {
    fn id(&self) -> VenueId {
        self.shared.venue
    }

    fn name(&self) -> &str {
        &self.shared.name
    }

    fn is_paper(&self) -> bool {
        false
    }

    fn submit(&mut self, owner: StrategyId, request: &OrderRequest, stp: SelfTradePrevention, _now_ms: i64, trigger: Option<std::time::Instant>) {
        let Some(symbol) = self.symbol_of.get(&request.instrument).cloned() else { return };
        let venue_id = (self.shared.map_id)(&request.client_order_id);
        self.shared.ours.lock().unwrap_or_else(|p| p.into_inner()).insert(venue_id.clone(), (request.client_order_id.clone(), owner));
        self.shared.pending.lock().unwrap_or_else(|p| p.into_inner()).insert(venue_id, symbol.clone());
        if let Some(trigger) = trigger {
            self.shared.stats.decided.observe(trigger, std::time::Instant::now());
        }
        let order = NewOrder { symbol, request: request.clone(), stp, trigger };
        if let Some(until) = self.shared.ban_in_force() {
            // Refused here, not queued behind the ban: a hedge sent minutes late is a
            // different trade. The reason says when to try again.
            tracing::debug!(venue = %self.shared.name, client_order_id = %request.client_order_id, "refused: the venue's ban lasts until {}", utc(until));
            self.shared.rejected(&order, ban_reason(&self.shared.name, until));
            return;
        }
        match self.outbox.last_mut() {
            Some(Command::Place(orders)) => orders.push(order),
            _ => self.outbox.push(Command::Place(vec![order])),
        }
    }

    fn cancel(&mut self, _owner: StrategyId, instrument: InstrumentId, client_order_id: &str, _now_ms: i64) {
        let Some(symbol) = self.symbol_of.get(&instrument).cloned() else { return };
        self.outbox.push(Command::Cancel { symbol, client_order_id: client_order_id.to_string() });
    }

    fn drain_events(&mut self, out: &mut Vec<VenueEvent>) -> Option<std::time::Instant> {
        self.send_outbox();
        let mut pending = self.shared.events.lock().unwrap_or_else(|p| p.into_inner());
        out.append(&mut pending.0);
        pending.1.take()
    }

    fn book(&self, instrument: InstrumentId, depth: usize) -> Option<BookSnapshot> {
        let books = self.shared.books.lock().unwrap_or_else(|p| p.into_inner());
        let b = books.get(&instrument)?;
        Some(BookSnapshot { instrument, bids: b.bids.iter().take(depth).cloned().collect(), asks: b.asks.iter().take(depth).cloned().collect(), ts_ms: b.ts_ms })
    }

    fn as_paper_mut(&mut self) -> Option<&mut paper::PaperVenue> {
        None
    }

    fn as_paper(&self) -> Option<&paper::PaperVenue> {
        None
    }

    fn live_state(&self) -> Option<LiveState> {
        let seen = self.shared.seen_trades.lock().unwrap_or_else(|p| p.into_inner());
        let seen_trades = seen.1.iter().skip(seen.1.len().saturating_sub(SAVED_TRADES)).cloned().collect();
        let ours = self.shared.ours.lock().unwrap_or_else(|p| p.into_inner());
        let pending = self.shared.pending.lock().unwrap_or_else(|p| p.into_inner());
        let mut open: Vec<(String, String, StrategyId, String)> =
            pending.iter().filter_map(|(venue_id, symbol)| ours.get(venue_id).map(|(c, o)| (venue_id.clone(), c.clone(), *o, symbol.clone()))).collect();
        open.sort();
        let delivered_map = self.shared.delivered.lock().unwrap_or_else(|p| p.into_inner());
        let mut delivered: Vec<(String, Decimal)> = pending.keys().filter_map(|id| delivered_map.get(id).map(|q| (id.clone(), *q))).collect();
        delivered.sort();
        Some(LiveState { last_fill_ms: self.shared.last_fill_ms.load(Ordering::Relaxed), seen_trades, open, reconciled_ms: self.shared.reconciled_ms.load(Ordering::Relaxed), delivered })
    }

    fn stop_placing(&mut self) {
        self.shared.shutting_down.store(true, Ordering::Relaxed);
        (self.shared.close_placing)();
    }

    fn cancel_account(&mut self, within: Duration) -> Vec<String> {
        self.send_outbox();
        let mut symbols: Vec<String> = self.symbol_of.values().cloned().collect();
        symbols.sort();
        let (done, wait) = oneshot::channel();
        if self.commands.send(Command::CancelAccount(symbols.clone(), done)).is_err() {
            return vec![format!("{}: the venue's order task has ended; nothing cancelled account-wide", self.shared.name)];
        }
        self.driver.run_until(within, wait).and_then(Result::ok).unwrap_or_else(|| symbols.iter().map(|s| format!("{}/{s}: no answer to the venue cancel-all within {within:?}; check the account", self.shared.name)).collect())
    }

    fn account(&self) -> Option<AccountView> {
        self.shared.account.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn metrics(&self) -> Option<VenueMetrics> {
        let (requests, windows) = (self.shared.exchange_figures)();
        let stats = &self.shared.stats;
        let histogram = |h: &Mutex<Histogram>| h.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Some(VenueMetrics {
            requests,
            rate_limits: windows.into_iter().map(|(w, used)| (w.counted, w.span.as_secs(), used, w.max)).collect(),
            reconnects: stats.reconnects.load(Ordering::Relaxed),
            reconciliations: stats.reconciliations.load(Ordering::Relaxed),
            rate_limited: stats.rate_limited.load(Ordering::Relaxed),
            private_lag: histogram(&stats.private_lag),
            public_lag: histogram(&stats.public_lag),
            round_trip: histogram(&stats.round_trip),
            tick_to_trade: stats.tick_to_trade.snapshot(),
            decided: stats.decided.snapshot(),
        })
    }

    fn restore_live(&mut self, state: LiveState, sent: &[(StrategyId, OrderRequest)]) {
        {
            let mut seen = self.shared.seen_trades.lock().unwrap_or_else(|p| p.into_inner());
            for id in state.seen_trades {
                if seen.0.insert(id.clone()) {
                    seen.1.push_back(id);
                }
            }
            let mut ours = self.shared.ours.lock().unwrap_or_else(|p| p.into_inner());
            let mut pending = self.shared.pending.lock().unwrap_or_else(|p| p.into_inner());
            for (venue_id, cid, owner, symbol) in state.open {
                ours.insert(venue_id.clone(), (cid, owner));
                pending.insert(venue_id, symbol);
            }
            let mut delivered = self.shared.delivered.lock().unwrap_or_else(|p| p.into_inner());
            for (venue_id, qty) in state.delivered {
                delivered.insert(venue_id, qty);
            }
            for (owner, request) in sent {
                let Some(symbol) = self.symbol_of.get(&request.instrument) else { continue };
                let venue_id = (self.shared.map_id)(&request.client_order_id);
                ours.insert(venue_id.clone(), (request.client_order_id.clone(), *owner));
                pending.insert(venue_id.clone(), symbol.clone());
                // Sent just before the crash, perhaps never arrived: if the venue has no
                // such order, the strategy is told it was not placed.
                self.shared.unresolved.lock().unwrap_or_else(|p| p.into_inner()).insert(venue_id);
            }
        }
        if state.last_fill_ms > 0 {
            self.shared.last_fill_ms.store(state.last_fill_ms, Ordering::Relaxed);
            // Read again from the older of the last fill and the last reconciliation
            // saved: whatever the stream missed before the crash is after that.
            let through = if state.reconciled_ms > 0 { state.reconciled_ms.min(state.last_fill_ms) } else { state.last_fill_ms };
            self.shared.reconciled_ms.store(through, Ordering::Relaxed);
            self.shared.history_before_ms.store(0, Ordering::Relaxed);
        }
        self.shared.release();
        // Strategies see nothing new before the venue has been reconciled (or, if it
        // cannot be reached, until the wait gives up; the next connection reconciles).
        let (done, wait) = oneshot::channel();
        if self.commands.send(Command::Reconcile(done)).is_ok() && !matches!(self.driver.run_until(RESTART_RECONCILE_WAIT, wait), Some(Ok(()))) {
            tracing::warn!(venue = %self.shared.name, "reconciliation after the restart not finished within {RESTART_RECONCILE_WAIT:?}; going on, it completes in the background");
        }
    }
}

/// Placements waiting for their answers at once, at most.
const MAX_IN_FLIGHT: usize = 16;

/// Sends commands in the order they were given, placing consecutive orders in batches.
///
/// A placement does not wait for the answer to the one before it: a hedge would
/// otherwise queue behind the previous hedge's round trip (measured: half of a
/// millisecond tick-to-trade at 1,000 fills a second). Up to [`MAX_IN_FLIGHT`] wait for
/// their answers side by side. Every other command waits until the placements before it
/// are answered, so a cancel never overtakes the order it cancels, and a flush or a
/// reconciliation still sees everything sent before it done.
async fn order_task<E: Exchange>(exchange: Arc<E>, shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Command>) {
    let mut held: Option<Command> = None;
    // Polled within this task (not spawned), so they run as urgently as it does.
    let mut in_flight = FuturesUnordered::new();
    loop {
        let first = match held.take() {
            Some(c) => c,
            None => loop {
                tokio::select! {
                    biased;
                    next = rx.recv() => match next {
                        Some(c) => break c,
                        None => {
                            while in_flight.next().await.is_some() {}
                            return;
                        }
                    },
                    Some(_) = in_flight.next(), if !in_flight.is_empty() => {}
                }
            },
        };
        if !matches!(first, Command::Place(_)) {
            while in_flight.next().await.is_some() {}
        }
        match first {
            Command::Cancel { symbol, client_order_id } => {
                let venue_id = client_id_on_venue(&shared, &client_order_id);
                // An order already final, or refused before it was sent, has nothing to
                // cancel: the request would only spend weight, and at shutdown, behind a
                // backlog, that delays the cancels that matter.
                if !shared.pending.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&venue_id) {
                    continue;
                }
                if let Err(error) = exchange.cancel(&symbol, &venue_id).await {
                    // The order may have filled meanwhile; its final state comes anyway.
                    tracing::info!(venue = %shared.name, client_order_id, "cancel not done: {error}");
                }
            }
            Command::Reconcile(done) => {
                reconcile(&*exchange, &shared, Why::Restored).await;
                let _ = done.send(());
            }
            Command::Flush(done) => {
                let _ = done.send(());
            }
            Command::CancelAccount(symbols, done) => {
                let mut lines = Vec::new();
                for symbol in symbols {
                    let outcome = match exchange.cancel_all(&symbol).await {
                        Ok(()) => "every open order of the account cancelled (venue cancel-all)".to_string(),
                        // Binance spot answers -2011 when there is nothing to cancel.
                        Err(RestError::NotFound { .. }) => "no open order on the account".to_string(),
                        Err(error) => format!("venue cancel-all failed: {error}"),
                    };
                    tracing::warn!(venue = %shared.name, symbol, "kill switch: {outcome}");
                    lines.push(format!("{}/{symbol}: {outcome}", shared.name));
                }
                let _ = done.send(lines);
            }
            Command::Place(mut orders) => {
                // Placements queued behind these go with them.
                loop {
                    match rx.try_recv() {
                        Ok(Command::Place(more)) => orders.extend(more),
                        Ok(other) => {
                            held = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let size = exchange.max_batch().max(1);
                while !orders.is_empty() {
                    let rest = orders.split_off(size.min(orders.len()));
                    while in_flight.len() >= MAX_IN_FLIGHT {
                        in_flight.next().await;
                    }
                    let (exchange, shared) = (exchange.clone(), shared.clone());
                    // A panic ends this placement alone, as it did when each was a task.
                    let named = shared.clone();
                    in_flight.push(driver::contained(move || format!("a placement on venue {}", named.name), async move { place(&*exchange, &shared, orders).await }));
                    orders = rest;
                }
            }
        }
    }
}

/// The reason an order is refused during a ban. It ends with `retry-after-ms=<epoch ms>`,
/// the convention the contract documents for `order-update.reason`, so a strategy can
/// wait for the end instead of trying again into the ban.
fn ban_reason(venue: &str, until_ms: i64) -> String {
    format!("venue {venue} has banned this client (HTTP 418) until {}; not sent; retry-after-ms={until_ms}", utc(until_ms))
}

/// Epoch ms as a UTC date and time, for people.
fn utc(ms: i64) -> String {
    match u64::try_from(ms).ok().and_then(|ms| std::time::UNIX_EPOCH.checked_add(Duration::from_millis(ms))) {
        Some(at) => httpdate::fmt_http_date(at),
        None => format!("{ms} ms since the epoch"),
    }
}

fn client_id_on_venue(shared: &Shared, ours: &str) -> String {
    (shared.map_id)(ours)
}

async fn place<E: Exchange>(exchange: &E, shared: &Shared, mut batch: Vec<NewOrder>) {
    let mut not_sent = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let mut attempts = 0;
    loop {
        // Every order here is known not to be on the venue (never sent, or sent again
        // only after the venue said it has none), so refusing it at shutdown is exact.
        if shared.shutting_down.load(Ordering::Relaxed) {
            for order in &batch {
                shared.rejected(order, "not sent: the runtime is shutting down".into());
            }
            return;
        }
        attempts += 1;
        let sent = std::time::Instant::now();
        let (results, written) = latency::timing_writes(exchange.place(&batch)).await;
        shared.stats.round_trip.lock().unwrap_or_else(|p| p.into_inner()).observe(sent.elapsed().as_secs_f64());

        let mut retry = Vec::new();
        let mut pause = Duration::ZERO;
        for (order, result) in batch.into_iter().zip(results) {
            match result {
                Ok(ack) => {
                    // Counted at the write of the request the venue accepted: a retry's
                    // wait (a rate limit, a lost answer) is part of the order's time.
                    if let (Some(trigger), Some(written)) = (order.trigger, written) {
                        shared.stats.tick_to_trade.observe(trigger, written);
                    }
                    shared.report(ack)
                }
                Err(RestError::RateLimited(after)) => {
                    // Nothing happened; the same order goes again once the pause is over.
                    shared.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(venue = %shared.name, "rate limited; waiting {after:?}");
                    pause = pause.max(after);
                    retry.push(order);
                }
                Err(RestError::Unknown(why)) => {
                    shared.stats.unknown_status.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(venue = %shared.name, client_order_id = %order.request.client_order_id, "order status unknown ({why}); querying it before anything else");
                    if resolve(exchange, shared, &order).await == Resolution::Absent {
                        shared.stats.resent.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(venue = %shared.name, client_order_id = %order.request.client_order_id, "the venue has no such order; sending it again with the same client order id");
                        retry.push(order);
                    }
                }
                Err(RestError::NotSent(why)) if attempts < RESOLVE_ATTEMPTS => {
                    tracing::warn!(venue = %shared.name, "order not sent ({why}); trying again");
                    pause = pause.max(not_sent.delay());
                    retry.push(order);
                }
                Err(RestError::Banned(for_)) => {
                    let reason = shared.banned(for_);
                    shared.rejected(&order, reason);
                }
                Err(error) => shared.rejected(&order, error.to_string()),
            }
        }
        if retry.is_empty() {
            return;
        }
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        batch = retry;
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Resolution {
    Known,
    Absent,
    StillUnknown,
}

/// Finds out what became of an order whose placement answer was lost.
async fn resolve<E: Exchange>(exchange: &E, shared: &Shared, order: &NewOrder) -> Resolution {
    let venue_id = client_id_on_venue(shared, &order.request.client_order_id);
    let mut delay = Duration::from_millis(50);
    for _ in 0..RESOLVE_ATTEMPTS {
        match exchange.query(&order.symbol, &venue_id).await {
            Ok(report) => {
                shared.report(report);
                return Resolution::Known;
            }
            Err(RestError::NotFound { .. }) => return Resolution::Absent,
            Err(RestError::RateLimited(after)) => tokio::time::sleep(after).await,
            Err(error) => {
                tracing::warn!(venue = %shared.name, client_order_id = %order.request.client_order_id, "query failed: {error}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
    tracing::error!(venue = %shared.name, client_order_id = %order.request.client_order_id, "order status still unknown; the next reconciliation settles it");
    shared.unresolved.lock().unwrap_or_else(|p| p.into_inner()).insert(venue_id);
    Resolution::StillUnknown
}

/// Jittered exponential backoff between reconnects.
pub struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
    seed: u64,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff { next: min, min, max, seed: clock::system_ms() as u64 | 1 }
    }

    /// The next delay: uniformly between half and all of the current step, which doubles.
    pub fn delay(&mut self) -> Duration {
        // xorshift: jitter needs no cryptographic randomness.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let step = self.next;
        self.next = (self.next * 2).min(self.max);
        let half = step / 2;
        half + Duration::from_nanos(self.seed % (half.as_nanos() as u64 + 1))
    }

    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

/// A sink for the private stream that starts a reconciliation once connected.
struct Reconciling<E: Exchange> {
    shared: Arc<Shared>,
    exchange: Arc<E>,
}

impl<E: Exchange> StreamSink for Reconciling<E> {
    fn connected(&self) {
        let (exchange, shared) = (self.exchange.clone(), self.shared.clone());
        tokio::spawn(async move { reconcile(&*exchange, &shared, Why::Connected).await });
    }

    fn report(&self, report: OrderReport) {
        observe_lag(&self.shared.stats.private_lag, report.ts_ms);
        self.shared.report(report);
    }

    fn trade(&self, trade: TapeTrade) {
        self.shared.trade(trade);
    }

    fn malformed(&self, what: String) {
        self.shared.malformed(what);
    }

    fn book(&self, symbol: &str, bids: Vec<crate::model::BookLevel>, asks: Vec<crate::model::BookLevel>, ts_ms: i64) {
        self.shared.book(symbol, bids, asks, ts_ms);
    }

    fn book_gap(&self, symbol: &str, why: String) {
        self.shared.book_gap(symbol, why);
    }
}

/// How long a connection must have held for its loss to start the backoff over.
const HEALTHY_CONNECTION: Duration = Duration::from_secs(30);

/// Keeps one stream connected: reconnects after a rollover at once, after a failure with
/// jittered exponential backoff.
async fn keep_connected<F, Fut>(venue: &str, reconnects: &AtomicU64, what: &str, settings: &LiveSettings, mut connect: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StreamEnd>,
{
    let mut backoff = Backoff::new(settings.backoff_min, settings.backoff_max);
    loop {
        let began = tokio::time::Instant::now();
        match connect().await {
            StreamEnd::Rollover(why) => {
                tracing::info!(venue, "{what} rolled over ({why}); reconnecting");
                backoff.reset();
            }
            StreamEnd::Failed(why) => {
                // A connection that held for a while was a success: its loss starts the
                // backoff over (after a dozen drops in a day, the next one used to wait
                // the full 30 s before reconnecting).
                if began.elapsed() >= HEALTHY_CONNECTION {
                    backoff.reset();
                }
                let delay = backoff.delay();
                tracing::warn!(venue, "{what} lost ({why}); reconnecting in {delay:?}");
                tokio::time::sleep(delay).await;
            }
        }
        reconnects.fetch_add(1, Ordering::Relaxed);
    }
}

async fn private_task<E: Exchange>(exchange: Arc<E>, shared: Arc<Shared>, settings: LiveSettings) {
    let sink = Reconciling { shared: shared.clone(), exchange: exchange.clone() };
    keep_connected(&shared.name, &shared.stats.reconnects, "private stream", &settings, || latency::noting_frames(exchange.private_stream(&sink, settings.max_connection_age))).await;
}

async fn public_task<E: Exchange>(exchange: Arc<E>, shared: Arc<Shared>, symbols: Vec<String>, settings: LiveSettings) {
    keep_connected(&shared.name, &shared.stats.reconnects, "public stream", &settings, || exchange.public_stream(&symbols, &*shared, settings.max_connection_age)).await;
}

async fn book_task<E: Exchange>(exchange: Arc<E>, shared: Arc<Shared>, symbols: Vec<String>, settings: LiveSettings) {
    keep_connected(&shared.name, &shared.stats.reconnects, "book stream", &settings, || exchange.book_stream(&symbols, &*shared, settings.max_connection_age)).await;
}

/// Re-syncs the clock every few minutes: signed requests fail when it drifts.
async fn clock_task<E: Exchange>(exchange: Arc<E>, shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(Duration::from_secs(300)).await;
        if let Err(error) = exchange.server_time().await {
            tracing::warn!(venue = %shared.name, "server time: {error}");
        }
    }
}

/// Reconciles every `interval` on a healthy connection: a push lost without a reconnect
/// (the venue dropped it, or a proxy did) is otherwise unnoticed until the next one, up
/// to a day away.
/// Sooner when a final state waits for fills: after [`HELD_GRACE`], in which the
/// pushes usually bring them, the venue's trade list is read.
async fn reconcile_task<E: Exchange>(exchange: Arc<E>, shared: Arc<Shared>, interval: Duration) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shared.reconcile_soon.notified() => {
                tokio::time::sleep(HELD_GRACE).await;
                if shared.held.lock().unwrap_or_else(|p| p.into_inner()).is_empty() {
                    continue;
                }
            }
        }
        reconcile(&*exchange, &shared, Why::Periodic).await;
        // The operator's view of the account follows at the same pace.
        match exchange.account().await {
            Ok(view) => *shared.account.lock().unwrap_or_else(|p| p.into_inner()) = Some(view),
            Err(error) => tracing::warn!(venue = %shared.name, "account refresh: {error}"),
        }
    }
}

/// How long a final state ahead of its fills waits for the pushes before the trade list
/// is read for them.
const HELD_GRACE: Duration = Duration::from_millis(500);

/// Every fill since the last reconciliation (a margin back, deduplicated by trade id)
/// and the state of every order we have not seen end.
async fn reconcile<E: Exchange>(exchange: &E, shared: &Arc<Shared>, why: Why) {
    let _one_at_a_time = shared.reconciling.lock().await;
    // The venue's clock, as the fills' times and the `since` asked for are.
    let started_ms = exchange.venue_now_ms();
    // Before the saved state is restored, what is read waits for its owners, and the
    // restore says from where to read again: nothing here may move that point.
    let restored = shared.parked.lock().unwrap_or_else(|p| p.into_inner()).is_none();
    let floor = shared.history_before_ms.load(Ordering::Relaxed);
    let since = shared.reconciled_ms.load(Ordering::Relaxed).saturating_sub(RECONCILE_MARGIN_MS).max(floor);
    let symbols: Vec<String> = shared.symbols.keys().cloned().collect();
    let mut complete = true;
    let mut found = 0u64;
    for symbol in &symbols {
        match exchange.fills_since(symbol, since).await {
            Ok(reports) => {
                // A venue's time filter is not trusted to be exact: history stays history.
                let sorting = shared.clone();
                let reports = match off_thread("sorting out a trade list", move || sorting.undelivered(reports, floor)).await {
                    Ok(reports) => reports,
                    Err(error) => {
                        complete = false;
                        tracing::error!(venue = %shared.name, symbol, "reconciliation: {error}");
                        continue;
                    }
                };
                for report in reports {
                    let before = shared.stats.duplicate_fills.load(Ordering::Relaxed);
                    shared.report_parts(report, false);
                    if shared.stats.duplicate_fills.load(Ordering::Relaxed) == before {
                        shared.stats.reconciled_fills.fetch_add(1, Ordering::Relaxed);
                        found += 1;
                    }
                }
            }
            Err(error) => {
                complete = false;
                tracing::warn!(venue = %shared.name, symbol, "reconciliation: fills: {error}");
            }
        }
    }
    let mut open_on_venue = HashSet::new();
    for symbol in &symbols {
        // Open orders as the venue has them: ours update their state, others (placed
        // by hand, or by another process on the account) become known.
        match exchange.open_orders(symbol).await {
            Ok(reports) => {
                for r in reports {
                    open_on_venue.insert(r.client_order_id.clone());
                    shared.report(r);
                }
            }
            Err(error) => {
                complete = false;
                tracing::warn!(venue = %shared.name, symbol, "reconciliation: open orders: {error}");
            }
        }
    }
    // An order we await that is not open on the venue has ended, or never arrived: one
    // query each says which. Those still open were just reported above.
    let pending: Vec<(String, String)> =
        shared.pending.lock().unwrap_or_else(|p| p.into_inner()).iter().filter(|(c, _)| !open_on_venue.contains(*c)).map(|(c, s)| (c.clone(), s.clone())).collect();
    for (client_order_id, symbol) in pending {
        match exchange.query(&symbol, &client_order_id).await {
            Ok(report) => shared.report(report),
            Err(RestError::NotFound { .. }) => {
                // Its placement answer was lost and the venue has no such order: it never
                // arrived. Said once, so the strategy can decide again.
                shared.lost(&client_order_id, &symbol);
            }
            Err(error) => {
                complete = false;
                tracing::warn!(venue = %shared.name, client_order_id, "reconciliation: order: {error}");
            }
        }
    }
    // Counted whether or not the saved state was restored yet (one after connecting can
    // come first), as the metric says: every complete one.
    if complete {
        shared.stats.reconciliations.fetch_add(1, Ordering::Relaxed);
    }
    if complete && restored {
        shared.reconciled_ms.fetch_max(started_ms, Ordering::Relaxed);
        shared.expire_held();
    }
    if found > 0 {
        tracing::warn!(venue = %shared.name, fills = found, "reconciliation found fills the private stream had not delivered");
    }
    match why {
        Why::Periodic => tracing::debug!(venue = %shared.name, complete, "reconciled (periodic)"),
        Why::Connected => tracing::info!(venue = %shared.name, complete, "reconciled after connecting"),
        Why::Restored => tracing::info!(venue = %shared.name, complete, "reconciled after restoring the saved state"),
    }
}

/// A fill's key among those seen: trade ids are unique per symbol.
fn trade_key(symbol: &str, trade_id: &str) -> String {
    format!("{symbol}:{trade_id}")
}

/// What started a reconciliation, for the log.
#[derive(Debug, Clone, Copy)]
enum Why {
    Connected,
    Restored,
    Periodic,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(800));
        let delays: Vec<Duration> = (0..6).map(|_| b.delay()).collect();
        for (d, step) in delays.iter().zip([100u64, 200, 400, 800, 800, 800]) {
            assert!(*d >= Duration::from_millis(step / 2) && *d <= Duration::from_millis(step), "{d:?} for step {step}");
        }
        b.reset();
        assert!(b.delay() <= Duration::from_millis(100));
    }

    /// Drops in a row back off (100, 200, 400, 800 ms...), but the loss of a connection
    /// that held for a while starts over at the minimum.
    #[tokio::test(start_paused = true)]
    async fn a_connection_that_held_resets_the_backoff() {
        let settings = LiveSettings { backoff_min: Duration::from_millis(100), backoff_max: Duration::from_secs(30), ..LiveSettings::default() };
        let starts = Mutex::new(Vec::new());
        let reconnects = AtomicU64::new(0);
        let connect = || {
            let n = {
                let mut s = starts.lock().unwrap_or_else(|p| p.into_inner());
                s.push(tokio::time::Instant::now());
                s.len()
            };
            async move {
                // The sixth connection holds for a minute before it drops.
                if n == 6 {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
                StreamEnd::Failed("dropped".into())
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(120), keep_connected("test", &reconnects, "stream", &settings, connect)).await;
        let starts = starts.into_inner().unwrap_or_else(|p| p.into_inner());
        assert!(starts.len() >= 8, "{}", starts.len());
        let gap = |i: usize| starts[i] - starts[i - 1];
        assert!(gap(5) >= Duration::from_millis(800), "backed off before the long connection: {:?}", gap(5));
        // The sixth start held 60 s; the seventh follows it after the minimum delay.
        assert!(gap(6) <= Duration::from_millis(60_100), "the drop of the long connection started over: {:?}", gap(6));
    }
}
