//! The event loop: market data in, strategy decisions out, one batch at a time.
//!
//! A batch is every print sharing one timestamp. The engine replays those prints on the
//! paper venues, routes what the venues report (tape, fills, order updates) to the
//! strategies that asked for it, and calls each strategy once with its events; the
//! actions it returns go through the router, and anything they cause is delivered in a
//! further round, until the batch settles.
//!
//! Control messages (a hot swap, a new config) are applied only between batches, which is
//! what makes a swap exact: events waiting for a strategy live in its slot, not in its
//! instance, so the new version receives exactly what the old one had not yet seen.
//!
//! The rooms: this file holds the engine's state and the loop (`step`, `run`);
//! [`start`] builds venues, feeds and instances; [`deliver`] takes events to strategies
//! and their actions to the router; [`halts`] marks PnL and halts strategies over their
//! limits; [`control`] applies swaps and config reloads, [`prepare`] instantiates new
//! versions for them off the event path;
//! [`resume`] writes checkpoints and resumes from them; [`kill`] is the kill switch;
//! [`query`] answers the control API.

mod control;
mod deliver;
mod halts;
mod inbox;
mod kill;
mod metrics;
mod prepare;
mod query;
mod resume;
mod start;

use inbox::Inbox;
pub use inbox::Controller;
pub use kill::KillReport;
pub use prepare::{Prepared, Preparer};
pub use start::{check_self_trading, check_subscriptions, MAX_BOOK_DEPTH, MAX_SUBSCRIPTION_ENTRIES};

use std::collections::HashMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::checkpoint;
use crate::config::{Config, Mode};
use crate::feed::MarketDataSource;
use crate::market::{EventClock, SharedMarket};
use crate::model::{Event, InstrumentId, StrategyId, Subscriptions, VenueId};
use crate::plugin::{GuestState, GuestTrap, LoadedComponent, PluginHost, StrategyInstance};
use crate::router::Router;
use crate::stats::{RunStats, SlotStatus, StrategyStats};
use crate::store::{StateStore, Write};
use crate::venue::paper::MarketPrint;

/// Rounds of strategy calls within one batch before the rest waits for the next batch:
/// two strategies reacting to each other must not spin forever.
const MAX_ROUNDS: usize = 16;

/// Asks the engine to do something between two batches.
pub enum Control {
    /// A new version of a component is compiled and ready; swap it into every instance
    /// that runs it. `prepared` holds instances of it made off the event path (see
    /// [`Preparer`]); a strategy without one gets its instance made during the swap.
    Swap { component: String, loaded: Arc<LoadedComponent>, prepared: Vec<Prepared> },
    /// The config file changed and parsed; apply what can change while running.
    Config(Box<Config>),
    /// A changed strategy file could not be loaded; the running version stays.
    SwapFailed { component: String, reason: String },
    /// A changed config file is invalid; the previous config stays in force.
    ConfigFailed { reason: String },
    /// Stop after the current batch.
    Shutdown,
    /// An operator halts a strategy: its orders are cancelled and it may only reduce.
    Halt { strategy: String, reason: String },
    /// An operator lifts a strategy's halt.
    Resume { strategy: String },
    /// The kill switch: stop everything, cancel every order, end the run; the report goes
    /// to `reply` too, if given.
    Kill { why: String, account: Option<bool>, reply: Option<std::sync::mpsc::Sender<serde_json::Value>> },
    /// An operator stops one strategy: its orders are cancelled, it is called no more.
    Stop { strategy: String, reason: String },
    /// A question from the control API, answered between two batches.
    Query { what: Query, reply: std::sync::mpsc::Sender<serde_json::Value> },
}

/// What the control API may ask the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// The Prometheus text, as a JSON string.
    Metrics,
    Strategies,
    Positions,
    Orders,
    Fills,
    Risk,
    /// What the dashboard shows: strategies, positions, risk use, open orders, the latest
    /// fills and the hot-swap history, in one answer.
    Dashboard,
}

/// Hot swaps kept for the dashboard.
const SWAP_HISTORY: usize = 50;

/// Something operators and tests may want to know about as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Swapped { strategy: String, from: String, to: String, micros: u128 },
    SwapRejected { component: String, reason: String },
    StrategyFailed { strategy: String, reason: String },
    ConfigApplied { changed: Vec<String> },
    ConfigRejected { reason: String },
    Halted { strategy: String, reason: String },
    /// Every order a halt cancelled is confirmed gone.
    HaltConfirmed { strategy: String, cancelled: usize },
    Resumed { strategy: String },
    Stopped { strategy: String, reason: String },
    /// A new version trapped on probation; the previous one runs again.
    RolledBack { strategy: String, from: String, to: String, reason: String },
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("strategy {strategy}: component {component:?} is not among --strategies (loaded: {loaded}) and there is no strategies/{component}.wasm")]
    MissingComponent { strategy: String, component: String, loaded: String },
    #[error("venue {venue} instrument {symbol}: {reason}")]
    Feed { venue: String, symbol: String, reason: String },
    #[error("market data bus: {reason}")]
    Bus { reason: String },
    #[error("{0}")]
    Live(String),
    #[error("strategy {strategy}: {reason}")]
    Grant { strategy: String, reason: String },
}

pub struct Slot {
    pub id: StrategyId,
    pub name: String,
    pub component: String,
    pub params: String,
    pub hash: String,
    pub status: SlotStatus,
    pub subscriptions: Subscriptions,
    pub stats: StrategyStats,
    /// How long each call into the strategy took (wall clock; kept out of `stats`, which
    /// a replay reproduces exactly).
    pub call_latency: crate::stats::Histogram,
    instance: Option<StrategyInstance>,
    /// The version running now.
    loaded: Arc<LoadedComponent>,
    /// After a hot swap, the version swapped out, ready to take over again.
    probation: Option<Probation>,
    next_timer: Option<i64>,
    kv: GuestState,
    pending: Vec<Event>,
    /// How many of `pending`, from its start, are trades held under the strategy's quiet
    /// bands (contract 0.1.4): while all of it is, the strategy is not called.
    held: usize,
    /// Where in `pending` each held batch ended, for the strategy to see them apart.
    held_ends: Vec<usize>,
    /// The event time of the first held trade.
    held_since: Option<i64>,
}

/// The most trades held for a strategy before it is called with them: a bound on the
/// queue's memory and on what one call hands over.
pub const MAX_HELD: usize = 1024;
/// The longest a trade is held, on the event clock: a strategy that promised to ignore a
/// quiet market still sees it within a second.
pub const MAX_HELD_MS: i64 = 1000;

impl Slot {
    /// Empties the queue, held trades included.
    fn clear_pending(&mut self) {
        self.pending.clear();
        self.release_held();
        self.held_ends.clear();
    }

    /// The held trades are no longer held: the next delivery calls the strategy with them
    /// (a new version made no promise). Where their batches ended stays known.
    fn release_held(&mut self) {
        self.held = 0;
        self.held_since = None;
    }

    /// Queues a trade, held when everything queued before it is held and it is inside the
    /// strategy's quiet band.
    fn queue_trade(&mut self, trade: &crate::model::PublicTrade) {
        if self.held == self.pending.len() && self.instance.as_ref().is_some_and(|i| i.holds(trade)) {
            self.held += 1;
            self.held_since.get_or_insert(trade.ts_ms);
        }
        self.pending.push(Event::Trade(trade.clone()));
    }

    /// Whether the strategy need not be called now: everything queued is held, within the
    /// bounds of [`MAX_HELD`] and [`MAX_HELD_MS`]. Marks where the batch ends.
    fn holding(&mut self, now: i64) -> bool {
        if self.held < self.pending.len() || self.held >= MAX_HELD || self.held_since.is_some_and(|since| now.saturating_sub(since) >= MAX_HELD_MS) {
            return false;
        }
        if self.held_ends.last() != Some(&self.pending.len()) {
            self.held_ends.push(self.pending.len());
        }
        true
    }
}

/// A new version on probation: if it traps before `until`, the previous version takes
/// over again from the state it handed over, and is given every event since.
struct Probation {
    previous: Arc<LoadedComponent>,
    /// The previous version's snapshot and key/value state at the swap.
    snapshot: Vec<u8>,
    kv: std::collections::BTreeMap<String, Vec<u8>>,
    until: Instant,
    /// Events delivered to the new version since the swap, for the previous one.
    events: Vec<Event>,
}

/// Events kept for a rollback at most; past them the new version is kept for good.
const PROBATION_EVENTS: usize = 10_000;

struct Feed {
    venue: VenueId,
    instrument: InstrumentId,
    source: Box<dyn MarketDataSource>,
    next: Option<MarketPrint>,
    /// Records read from the source so far, good or bad, the peeked one included.
    consumed: u64,
}

pub struct Engine {
    config: Config,
    plugin: PluginHost,
    market: SharedMarket,
    clock: EventClock,
    router: Router,
    slots: Vec<Slot>,
    feeds: Vec<Feed>,
    controller: Controller,
    /// Control messages, and the live venues' tasks, which run while the engine waits.
    inbox: Inbox,
    notices: Vec<Sender<Notice>>,
    /// The latest hot swaps, rollbacks and refused swaps, for the dashboard.
    swap_history: std::collections::VecDeque<serde_json::Value>,
    pace: Option<(i64, Instant)>,
    stopping: bool,
    store: Option<Box<dyn StateStore>>,
    checkpoints: u64,
    checkpoint_every: u64,
    /// The loaded components by name, to start instances again on resume.
    loaded: HashMap<String, Arc<LoadedComponent>>,
    bus: Option<crate::bus::Publisher>,
    /// Orders journalled to the store since the last checkpoint.
    journalled: u64,
    /// How long writing each checkpoint took, building it included.
    checkpoint_duration: crate::stats::Histogram,
    /// Whether live venues have been given their saved state (they hold reports until then).
    live_restored: bool,
    /// Live books changed since they were last published to strategies.
    books_touched: Vec<InstrumentId>,
    /// What the kill switch did, once it has been used.
    killed: Option<KillReport>,
    /// Halts whose cancels are not yet all confirmed: (strategy, orders cancelled, since).
    halts_unconfirmed: Vec<(StrategyId, usize, Instant)>,
    /// Orders a halt cancelled, with the halt's reason, until their final update arrives.
    halt_cancels: HashMap<(StrategyId, String), String>,
    /// The latest fills of the runtime's orders, for the control API.
    recent_fills: std::collections::VecDeque<crate::model::Fill>,
    /// Buffers of every batch, kept to spare an allocation each: what the venues reported,
    /// and the instruments that traded.
    venue_events: Vec<crate::venue::VenueEvent>,
    touched: Vec<InstrumentId>,
    pub stats: RunStats,
}

impl Engine {
    /// A sender for control messages, for the file watcher or an embedding program.
    pub fn controller(&self) -> Controller {
        self.controller.clone()
    }

    /// Registers a listener for notices (swaps, failures, config changes).
    pub fn subscribe(&mut self) -> Receiver<Notice> {
        let (tx, rx) = channel();
        self.notices.push(tx);
        rx
    }

    fn notify(&mut self, notice: Notice) {
        let at = self.clock.now_ms();
        let entry = match &notice {
            Notice::Swapped { strategy, from, to, micros } => Some(serde_json::json!({ "ts_ms": at, "strategy": strategy, "from": from, "to": to, "pause_us": u64::try_from(*micros).unwrap_or(u64::MAX), "what": "swapped" })),
            Notice::RolledBack { strategy, from, to, reason } => Some(serde_json::json!({ "ts_ms": at, "strategy": strategy, "from": from, "to": to, "what": "rolled back", "reason": reason })),
            Notice::SwapRejected { component, reason } => Some(serde_json::json!({ "ts_ms": at, "component": component, "what": "refused", "reason": reason })),
            _ => None,
        };
        if let Some(entry) = entry {
            if self.swap_history.len() >= SWAP_HISTORY {
                self.swap_history.pop_front();
            }
            self.swap_history.push_back(entry);
        }
        self.notices.retain(|tx| tx.send(notice.clone()).is_ok());
    }

    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// Checkpoints written by this run (and the run it resumed).
    pub fn checkpoints_written(&self) -> u64 {
        self.checkpoints
    }

    /// Client order ids the router remembers now.
    pub fn remembered_ids(&self) -> usize {
        self.router.remembered_ids()
    }

    /// A strategy's PnL marked to the last trades, fees paid, as its loss limits see it.
    pub fn pnl_of(&self, slot: &Slot) -> crate::model::Decimal {
        self.pnl(slot, &self.market.lock())
    }

    /// The latest fills of the run (at most a thousand), oldest first.
    pub fn recent_fills(&self) -> &std::collections::VecDeque<crate::model::Fill> {
        &self.recent_fills
    }

    pub fn market(&self) -> &SharedMarket {
        &self.market
    }

    /// A value from a strategy's key/value state, as the strategy wrote it.
    pub fn state_value(&self, strategy: &str, key: &str) -> Option<Vec<u8>> {
        self.slots.iter().find(|s| s.name == strategy).and_then(|s| s.kv.lock().get(key).cloned())
    }

    /// Every order the strategies sent (or, in recommend mode, recommended).
    pub fn journal(&self) -> &std::collections::VecDeque<crate::router::JournalEntry> {
        self.router.journal()
    }

    pub fn mode(&self) -> Mode {
        self.config.mode
    }

    /// What the kill switch did, if it was used.
    pub fn kill_report(&self) -> Option<&KillReport> {
        self.killed.as_ref()
    }

    /// Why a strategy is halted, if it is.
    pub fn halted(&self, name: &str) -> Option<String> {
        let id = self.slots.iter().find(|s| s.name == name)?.id;
        self.router.risk().halted(id).map(str::to_string)
    }

    /// The strategy's current state, as its `snapshot` export returns it.
    pub fn snapshot_strategy(&mut self, name: &str) -> Option<Result<Vec<u8>, GuestTrap>> {
        let index = self.slots.iter().position(|s| s.name == name)?;
        // It is taken with every trade the strategy has been sent: held ones go to it
        // first. (A strategy that holds nothing is not called: what is queued for it after
        // the last batch, such as the cancels at the end of a run, stays queued.)
        if self.slots[index].held > 0 && self.slots[index].status == SlotStatus::Running && self.call_strategy(index) {
            self.collect_venue_events();
        }
        let slot = &mut self.slots[index];
        Some(slot.instance.as_mut()?.snapshot())
    }

    /// Runs batches until the market data ends or a shutdown is asked for, then cancels
    /// every open order. With a store, a run that reached the end of its data clears its
    /// checkpoint (there is nothing to resume); one that was shut down keeps a fresh one.
    pub fn run(&mut self) {
        self.run_observed(|_| {});
    }

    /// As [`Engine::run`], with `observe` called after each batch (a backtest samples
    /// the strategies' PnL there).
    pub fn run_observed(&mut self, mut observe: impl FnMut(&Engine)) {
        while self.step() {
            observe(self);
        }
        // Nothing held is left behind: not in the checkpoint, not at the end.
        self.deliver_releasing(true);
        if self.stopping {
            self.checkpoint();
        } else if let Some(store) = self.store.as_mut() {
            let mut writes = vec![Write::Delete(checkpoint::KEY.into())];
            writes.extend((1..=self.journalled).map(|n| Write::Delete(checkpoint::journal_key(n))));
            match store.commit(writes) {
                Ok(()) => tracing::info!(store = %store.describe(), "run complete; its checkpoint is cleared"),
                Err(error) => tracing::error!("clearing the checkpoint: {error}"),
            }
        }
        self.cancel_everything();
    }

    /// Processes one batch; false when there is nothing left to do.
    pub fn step(&mut self) -> bool {
        if !self.live_restored {
            // Run without a store: there is no saved state, and live venues hold what
            // they hear until they are told so.
            self.restore_live_venues(Vec::new(), &[]);
        }
        self.apply_controls();
        if self.stopping {
            return false;
        }
        let Some(ts) = self.feeds.iter().filter_map(|f| f.next.as_ref().map(|p| p.ts_ms)).min() else {
            if self.inbox.is_live() {
                return self.live_step();
            }
            // No more market data, but the strategies may still have work queued, held
            // trades included.
            self.deliver_releasing(true);
            return false;
        };
        self.wait_for(ts);
        if self.stopping {
            return false;
        }
        self.clock.advance_to(ts);
        self.stats.first_ts.get_or_insert(ts);
        self.stats.last_ts = Some(ts);
        self.stats.batches += 1;
        self.fire_timers(ts);
        let mut touched = std::mem::take(&mut self.touched);
        touched.clear();
        let mut ended = Vec::new();
        let mut events = std::mem::take(&mut self.venue_events);
        {
            let mut market = self.market.lock();
            for feed in &mut self.feeds {
                while feed.next.as_ref().is_some_and(|p| p.ts_ms == ts) {
                    let Some(print) = feed.next.take() else { break };
                    if let Some(paper) = market.venues.get_mut(feed.venue.0 as usize).and_then(|v| v.as_paper_mut()) {
                        paper.replay_print(feed.instrument, &print);
                    }
                    self.stats.prints += 1;
                    if !touched.contains(&feed.instrument) {
                        touched.push(feed.instrument);
                    }
                    feed.next = next_good_print(feed, &mut self.stats);
                    if feed.next.is_none() {
                        ended.push(feed.instrument);
                    }
                }
            }
            // What the prints caused, under the same lock.
            deliver::gather_venue_events(&mut market, &mut self.router, &mut self.bus, &mut events);
        }
        self.dispatch_all(events);
        // After this batch's trades: a reader stops at the end marker.
        if let Some(bus) = self.bus.as_mut() {
            for instrument in ended {
                bus.end(instrument);
            }
        }
        self.publish_books(&touched, ts);
        self.touched = touched;
        self.check_losses();
        // A checkpoint takes the strategies' state: held trades go to them first.
        let checkpoint_due = self.store.is_some() && self.stats.batches.is_multiple_of(self.checkpoint_every);
        self.deliver_releasing(checkpoint_due);
        if self.inbox.is_live() {
            // Live venues beside replayed ones: their frames trigger this batch only.
            self.market.lock().trigger = None;
        }
        if let Some(bus) = self.bus.as_mut() {
            bus.flush();
        }
        if checkpoint_due {
            self.checkpoint();
        }
        true
    }

    /// One batch on live venues: whatever they reported since the last one, at the wall
    /// clock's time. Waits for a report, a control or the next timer, whichever is first.
    fn live_step(&mut self) -> bool {
        let now = crate::venue::live::clock::system_ms();
        let next_timer = self.slots.iter().filter_map(|s| s.next_timer).min();
        let wait = next_timer.map(|t| (t - now).clamp(0, 1000)).unwrap_or(1000) as u64;
        if let Some(control) = self.inbox.wait(Duration::from_millis(wait)) {
            self.apply_control(control);
        }
        self.apply_controls();
        if self.stopping {
            return false;
        }
        let now = crate::venue::live::clock::system_ms();
        self.clock.advance_to(now);
        self.stats.first_ts.get_or_insert(now);
        self.stats.last_ts = Some(now);
        self.stats.batches += 1;
        self.fire_timers(now);
        self.collect_venue_events();
        let touched = std::mem::take(&mut self.books_touched);
        self.publish_books(&touched, now);
        self.confirm_halts();
        self.check_losses();
        // A checkpoint takes the strategies' state: held trades go to them first, before
        // the batch's orders are out and the venues' states are taken. (One that this
        // batch's orders make due keeps what is still held in its queues, to be delivered
        // after a restart: nothing is lost.)
        let release = self.store.is_some() && (self.journalled > 0 || self.stats.batches.is_multiple_of(self.checkpoint_every));
        self.deliver_releasing(release);
        // The batch is handled: what comes next is triggered by what arrives next.
        self.market.lock().trigger = None;
        // A batch that sent orders to a live venue is checkpointed at once: a restart then
        // resumes strategies that know what they sent, and the journal covers only the
        // moment between the send and this checkpoint. The live venues' part of it is
        // taken now, as the batch left them, because a report the venues' tasks take in
        // meanwhile must not be in it as delivered before the strategies have it
        // (`a_killed_runtime_restarts_without_losing_or_repeating_a_hedge` catches that).
        // The rest (strategies' snapshots, router, serialization: O(state), 0.4 ms with
        // 2,000 orders behind) is taken and written once the batch's orders are out, since
        // only this thread changes it: a checkpoint must not delay a hedge.
        let due = self.store.is_some() && (self.journalled > 0 || self.stats.batches.is_multiple_of(self.checkpoint_every));
        let live = due.then(|| self.live_states());
        if live.is_some() || self.bus.is_some() {
            self.inbox.run_ready();
        }
        if let Some(bus) = self.bus.as_mut() {
            bus.flush();
        }
        if let Some(taken) = live.and_then(|live| self.take_checkpoint(live)) {
            self.write_checkpoint(taken);
        }
        true
    }

    /// Sleeps until a print is due when a replay speed is set, waking early for controls.
    fn wait_for(&mut self, ts: i64) {
        let speed = self.config.replay.speed;
        if speed == 0 {
            // Live venues beside the replay get their turn at every batch.
            self.inbox.run_ready();
            return;
        }
        let (origin_ts, origin_wall) = *self.pace.get_or_insert((ts, Instant::now()));
        let due = origin_wall + Duration::from_millis(((ts - origin_ts).max(0) as u64) / speed as u64);
        loop {
            let now = Instant::now();
            if now >= due || self.stopping {
                return;
            }
            // A live venue's report ends the wait early; it is collected with the batch.
            if let Some(control) = self.inbox.wait(due - now) {
                self.apply_control(control);
            }
        }
    }

    /// Cancels every open order of every strategy: at shutdown nothing is left resting.
    pub fn cancel_everything(&mut self) {
        let now = self.clock.now_ms();
        {
            let mut market = self.market.lock();
            // Orders still queued for a live venue (behind its rate limit) would arrive
            // after the strategy that sent them has stopped: they are refused, not sent.
            for venue in market.venues.iter_mut() {
                venue.stop_placing();
            }
            for slot in &self.slots {
                self.router.cancel_all(&mut market, slot.id, None, now);
            }
        }
        self.collect_venue_events();
    }
}

/// The next usable print; a bad record is counted and logged with its place, never
/// silently skipped and never fatal.
fn next_good_print(feed: &mut Feed, stats: &mut RunStats) -> Option<MarketPrint> {
    loop {
        let next = feed.source.next_print()?;
        feed.consumed += 1;
        match next {
            Ok(print) => return Some(print),
            Err(error) => {
                tracing::error!("market data: {error}; skipping this record");
                stats.feed_errors += 1;
                if stats.first_feed_errors.len() < 5 {
                    stats.first_feed_errors.push(error.to_string());
                }
            }
        }
    }
}
