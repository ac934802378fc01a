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

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::checkpoint::{self, Checkpoint, SlotState};
use crate::config::{Config, FeedConfig, Mode, SettlementConfig, VenueKind};
use crate::store::{StateStore, StoreError, Write};
use crate::feed::bus::BusFeed;
use crate::feed::derived::Derived;
use crate::feed::replay::CsvReplay;
use crate::feed::synthetic::{Synthetic, SyntheticConfig};
use crate::feed::MarketDataSource;
use crate::market::{EventClock, Market, SharedMarket};
use crate::model::{shown, Action, Decimal, Event, InstrumentId, InstrumentInfo, Side, StrategyId, Subscriptions, VenueId};
use crate::plugin::{GuestState, GuestTrap, InstanceContext, LoadedComponent, PluginHost, StrategyInstance};
use crate::router::{Routed, Router};
use crate::venue::paper::{LiquidityProfile, MarketPrint, PaperVenue, PaperVenueConfig, Settlement};
use crate::venue::{Venue, VenueEvent};

/// Rounds of strategy calls within one batch before the rest waits for the next batch:
/// two strategies reacting to each other must not spin forever.
const MAX_ROUNDS: usize = 16;

/// Asks the engine to do something between two batches.
pub enum Control {
    /// A new version of a component is compiled and ready; swap it into every instance
    /// that runs it.
    Swap { component: String, loaded: Arc<LoadedComponent> },
    /// The config file changed and parsed; apply what can change while running.
    Config(Box<Config>),
    /// A changed strategy file could not be loaded; the running version stays.
    SwapFailed { component: String, reason: String },
    /// A changed config file is invalid; the previous config stays in force.
    ConfigFailed { reason: String },
    /// Stop after the current batch.
    Shutdown,
    /// A live venue has something to report.
    Wake,
}

/// Something operators and tests may want to know about as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Swapped { strategy: String, from: String, to: String, micros: u128 },
    SwapRejected { component: String, reason: String },
    StrategyFailed { strategy: String, reason: String },
    ConfigApplied { changed: Vec<String> },
    ConfigRejected { reason: String },
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("strategy {strategy}: component {component:?} is not among --strategies (loaded: {loaded})")]
    MissingComponent { strategy: String, component: String, loaded: String },
    #[error("venue {venue} instrument {symbol}: {reason}")]
    Feed { venue: String, symbol: String, reason: String },
    #[error("market data bus: {reason}")]
    Bus { reason: String },
    #[error("{0}")]
    Live(String),
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SlotStatus {
    Running,
    /// Stopped by a trap; its orders were cancelled.
    Failed(String),
    /// Never started: init refused or could not run.
    Refused(String),
}

/// What one strategy did, for the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StrategyStats {
    pub events: u64,
    pub calls: u64,
    pub placed: u64,
    pub refused: u64,
    pub rejected: u64,
    pub canceled: u64,
    pub fills: u64,
    pub swaps: u64,
    /// Log lines dropped over the strategy's log budget.
    #[serde(default)]
    pub log_dropped: u64,
    pub positions: BTreeMap<InstrumentId, Position>,
}

/// Executed volume of one strategy on one instrument.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Position {
    pub bought: Decimal,
    pub sold: Decimal,
    pub buy_notional: Decimal,
    pub sell_notional: Decimal,
    pub fees: Decimal,
}

impl Position {
    pub fn net(&self) -> Decimal {
        self.bought.saturating_sub(self.sold)
    }
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
    instance: Option<StrategyInstance>,
    next_timer: Option<i64>,
    kv: GuestState,
    pending: Vec<Event>,
}

struct Feed {
    venue: VenueId,
    instrument: InstrumentId,
    source: Box<dyn MarketDataSource>,
    next: Option<MarketPrint>,
    /// Records read from the source so far, good or bad, the peeked one included.
    consumed: u64,
}

/// Counters of the whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunStats {
    pub prints: u64,
    pub batches: u64,
    pub feed_errors: u64,
    pub first_feed_errors: Vec<String>,
    pub first_ts: Option<i64>,
    pub last_ts: Option<i64>,
}

pub struct Engine {
    config: Config,
    plugin: PluginHost,
    market: SharedMarket,
    clock: EventClock,
    router: Router,
    slots: Vec<Slot>,
    feeds: Vec<Feed>,
    control_tx: Sender<Control>,
    control_rx: Receiver<Control>,
    notices: Vec<Sender<Notice>>,
    pace: Option<(i64, Instant)>,
    stopping: bool,
    store: Option<Box<dyn StateStore>>,
    checkpoints: u64,
    checkpoint_every: u64,
    /// The loaded components by name, to start instances again on resume.
    loaded: HashMap<String, Arc<LoadedComponent>>,
    bus: Option<crate::bus::Publisher>,
    /// The tasks of live venues run here; none in a paper-only run.
    live_runtime: Option<tokio::runtime::Runtime>,
    /// Orders journalled to the store since the last checkpoint.
    journalled: u64,
    /// Whether live venues have been given their saved state (they hold reports until then).
    live_restored: bool,
    /// Live books changed since they were last published to strategies.
    books_touched: Vec<InstrumentId>,
    pub stats: RunStats,
}

impl Engine {
    /// Builds venues, feeds and strategy instances from a validated config and the
    /// loaded components (by file stem). A strategy whose `init` refuses or traps is
    /// reported and left out; the others run.
    pub fn new(config: Config, components: &HashMap<String, Arc<LoadedComponent>>, plugin: PluginHost) -> Result<Engine, StartError> {
        let mut instruments = Vec::new();
        let mut venues: Vec<Box<dyn Venue>> = Vec::new();
        let mut feeds = Vec::new();
        let mut published = HashMap::new();
        let (control_tx, control_rx) = channel();
        let mut live_runtime: Option<tokio::runtime::Runtime> = None;
        for (v, vc) in config.venues.iter().enumerate() {
            let venue_id = VenueId(v as u32);
            if vc.kind != VenueKind::Paper {
                if live_runtime.is_none() {
                    let rt = tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .thread_name("venues")
                        .enable_all()
                        .build()
                        .map_err(|e| StartError::Live(format!("starting the venue connections: {e}")))?;
                    live_runtime = Some(rt);
                }
                let Some(rt) = live_runtime.as_ref() else { continue };
                let tx = std::sync::Mutex::new(control_tx.clone());
                let wake: crate::venue::live::Waker = Arc::new(move || {
                    let _ = tx.lock().unwrap_or_else(|p| p.into_inner()).send(Control::Wake);
                });
                let connected = crate::venue::live::connect::connect(rt.handle(), vc, venue_id, instruments.len() as u32, wake).map_err(StartError::Live)?;
                for info in &connected.instruments {
                    if vc.instruments.iter().any(|ic| ic.symbol == info.symbol && ic.publish) {
                        published.insert(info.id, format!("{}:{}:{}", config.bus.prefix, vc.name, info.symbol));
                    }
                }
                instruments.extend(connected.instruments);
                venues.push(Box::new(connected.venue));
                continue;
            }
            let mut venue = PaperVenue::new(PaperVenueConfig {
                id: venue_id,
                name: vc.name.to_string(),
                settlement: match vc.settlement {
                    SettlementConfig::Spot => Settlement::Spot,
                    SettlementConfig::Perpetual => Settlement::Perpetual,
                },
                maker_fee: vc.maker_fee,
                taker_fee: vc.taker_fee,
                balances: vc.balances.clone(),
                faults: crate::venue::paper::Faults { duplicate_fills: vc.faults.duplicate_fills },
            });
            for ic in &vc.instruments {
                let info = InstrumentInfo {
                    id: InstrumentId(instruments.len() as u32),
                    venue: venue_id,
                    venue_name: vc.name.to_string(),
                    symbol: ic.symbol.clone(),
                    base_asset: ic.base.clone(),
                    quote_asset: ic.quote.clone(),
                    tick_size: ic.tick_size,
                    lot_size: ic.lot_size,
                    min_qty: ic.min_qty,
                    min_notional: ic.min_notional,
                    paper: true,
                };
                let liquidity = ic.liquidity.as_ref().map(|l| LiquidityProfile { levels: l.levels, step: l.step, qty: l.qty });
                venue.add_instrument(info.clone(), liquidity);
                if ic.publish {
                    published.insert(info.id, format!("{}:{}:{}", config.bus.prefix, vc.name, ic.symbol));
                }
                let feed_error = |reason: String| StartError::Feed { venue: vc.name.to_string(), symbol: ic.symbol.clone(), reason };
                let source: Option<Box<dyn MarketDataSource>> = match &ic.feed {
                    FeedConfig::None => None,
                    FeedConfig::Replay { file } => Some(Box::new(CsvReplay::open(file).map_err(|e| feed_error(e.to_string()))?)),
                    FeedConfig::Bus { venue, symbol, idle_timeout_ms } => {
                        let url = config.bus.redis_url().map_err(feed_error)?;
                        let key = crate::bus::trades_key(&config.bus.prefix, venue, symbol);
                        Some(Box::new(BusFeed::connect(&url, key, Duration::from_millis(*idle_timeout_ms)).map_err(|e| feed_error(e.to_string()))?))
                    }
                    FeedConfig::Derived { file, ratio, noise_ticks, seed } => {
                        let source = CsvReplay::open(file).map_err(|e| feed_error(e.to_string()))?;
                        Some(Box::new(Derived::new(source, *ratio, ic.tick_size, ic.lot_size, *noise_ticks, *seed)))
                    }
                    FeedConfig::Synthetic { seed, start_price, max_step_ticks, max_lots, start_ms, interval_ms, count } => {
                        Some(Box::new(Synthetic::new(SyntheticConfig {
                            seed: *seed,
                            start_price: *start_price,
                            tick_size: ic.tick_size,
                            max_step_ticks: *max_step_ticks,
                            lot_size: ic.lot_size,
                            max_lots: *max_lots,
                            start_ms: *start_ms,
                            interval_ms: *interval_ms,
                            count: *count,
                        })))
                    }
                };
                if let Some(source) = source {
                    tracing::info!(venue = %vc.name, symbol = %ic.symbol, "market data: {}", source.describe());
                    feeds.push(Feed { venue: venue_id, instrument: info.id, source, next: None, consumed: 0 });
                }
                instruments.push(info);
            }
            venues.push(Box::new(venue));
        }
        let bus = if published.is_empty() {
            None
        } else {
            let url = config.bus.redis_url().map_err(|reason| StartError::Bus { reason })?;
            Some(crate::bus::Publisher::connect(&url, config.bus.maxlen, published).map_err(|reason| StartError::Bus { reason })?)
        };
        let market = SharedMarket::new(Market::new(instruments, venues));
        let mut engine = Engine {
            router: Router::new(config.mode, config.risk.clone()),
            config,
            plugin,
            market,
            clock: EventClock::default(),
            slots: Vec::new(),
            feeds,
            control_tx,
            control_rx,
            notices: Vec::new(),
            pace: None,
            stopping: false,
            store: None,
            checkpoints: 0,
            checkpoint_every: u64::MAX,
            loaded: components.clone(),
            bus,
            live_runtime,
            journalled: 0,
            live_restored: false,
            books_touched: Vec::new(),
            stats: RunStats::default(),
        };
        let loaded_names = || {
            let mut names: Vec<_> = components.keys().cloned().collect();
            names.sort();
            names.join(", ")
        };
        for (i, sc) in engine.config.strategies.clone().iter().enumerate() {
            let loaded = components.get(&sc.component).ok_or_else(|| StartError::MissingComponent {
                strategy: sc.name.to_string(),
                component: sc.component.clone(),
                loaded: loaded_names(),
            })?;
            let mut slot = Slot {
                id: StrategyId(i as u32),
                name: sc.name.to_string(),
                component: sc.component.clone(),
                params: sc.params_json(),
                hash: loaded.hash.clone(),
                status: SlotStatus::Running,
                subscriptions: Subscriptions::default(),
                stats: StrategyStats::default(),
                instance: None,
                next_timer: None,
                kv: GuestState::default(),
                pending: Vec::new(),
            };
            match engine.start_instance(&slot, loaded) {
                Ok((instance, subscriptions)) => {
                    tracing::info!(strategy = %slot.name, component = %slot.component, version = %slot.hash, "strategy started");
                    engine.router.set_permissions(slot.id, &subscriptions);
                    slot.instance = Some(instance);
                    slot.subscriptions = subscriptions;
                }
                Err(reason) => {
                    tracing::error!(strategy = %slot.name, "strategy not started: {reason}");
                    slot.status = SlotStatus::Refused(reason);
                }
            }
            engine.slots.push(slot);
        }
        for feed in &mut engine.feeds {
            feed.next = next_good_print(feed, &mut engine.stats);
        }
        Ok(engine)
    }

    /// Instantiates and initialises a component for a slot; checks that a strategy that
    /// trades against itself only touches paper venues.
    fn start_instance(&self, slot: &Slot, loaded: &LoadedComponent) -> Result<(StrategyInstance, Subscriptions), String> {
        let ctx = InstanceContext {
            id: slot.id,
            name: slot.name.clone(),
            market: self.market.clone(),
            clock: self.clock.clone(),
            seed: 0x5EED_0000 + slot.id.0 as u64,
            kv: slot.kv.clone(),
        };
        let mut instance = self.plugin.instantiate(loaded, ctx).map_err(|t| format!("could not instantiate: {t}"))?;
        let subscriptions = match instance.init(&slot.params) {
            Ok(Ok(s)) => s,
            Ok(Err(refusal)) => return Err(format!("init refused: {}", shown(&refusal, 300))),
            Err(trap) => return Err(format!("init {trap}")),
        };
        let market = self.market.lock();
        let subscriptions = check_subscriptions(&market, subscriptions)?;
        if subscriptions.self_trading {
            check_self_trading(&market, &subscriptions)?;
        }
        drop(market);
        Ok((instance, subscriptions))
    }

    /// A sender for control messages, for the file watcher or an embedding program.
    pub fn controller(&self) -> Sender<Control> {
        self.control_tx.clone()
    }

    /// Registers a listener for notices (swaps, failures, config changes).
    pub fn subscribe(&mut self) -> Receiver<Notice> {
        let (tx, rx) = channel();
        self.notices.push(tx);
        rx
    }

    fn notify(&mut self, notice: Notice) {
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

    /// The strategy's current state, as its `snapshot` export returns it.
    pub fn snapshot_strategy(&mut self, name: &str) -> Option<Result<Vec<u8>, GuestTrap>> {
        let slot = self.slots.iter_mut().find(|s| s.name == name)?;
        Some(slot.instance.as_mut()?.snapshot())
    }

    /// Runs batches until the market data ends or a shutdown is asked for, then cancels
    /// every open order. With a store, a run that reached the end of its data clears its
    /// checkpoint (there is nothing to resume); one that was shut down keeps a fresh one.
    pub fn run(&mut self) {
        while self.step() {}
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

    /// Keeps checkpoints in `store` every `every` batches, resuming first from the one it
    /// holds, if any. Call before the first batch. Fails when the saved state belongs to
    /// another config or cannot be read; nothing is changed then.
    pub fn attach_store(&mut self, mut store: Box<dyn StateStore>, every: u64) -> Result<Option<u64>, StoreError> {
        let saved = store.get(checkpoint::KEY)?;
        let resumed = match saved {
            None => {
                // No checkpoint, but orders may have been journalled before the first.
                self.resume_live(&mut *store, Vec::new());
                None
            }
            Some(bytes) => {
                let corrupt = |reason: String| StoreError::Corrupt { backend: store.describe(), key: checkpoint::KEY.into(), reason };
                let mut cp: Checkpoint = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
                if cp.format != checkpoint::FORMAT {
                    return Err(corrupt(format!("format {} (this runtime writes {})", cp.format, checkpoint::FORMAT)));
                }
                let digest = checkpoint::config_digest(&self.config);
                if cp.config_digest != digest {
                    return Err(corrupt("it was written with other venues, feeds or strategies; start with --fresh to discard it".into()));
                }
                let seq = cp.seq;
                let live = std::mem::take(&mut cp.live);
                self.resume(cp);
                self.resume_live(&mut *store, live);
                tracing::info!(store = %store.describe(), checkpoint = seq, batches = self.stats.batches, "resumed from checkpoint");
                Some(seq)
            }
        };
        self.checkpoint_every = every.max(1);
        self.store = Some(store);
        Ok(resumed)
    }

    /// Orders journalled after the checkpoint are booked as sent again, and each live
    /// venue reconciles them and every fill since its last one before a strategy sees a
    /// new event.
    fn resume_live(&mut self, store: &mut dyn StateStore, saved: Vec<(u32, crate::venue::live::LiveState)>) {
        let mut sent: Vec<crate::router::JournalEntry> = Vec::new();
        {
            for n in 1.. {
                match store.get(&checkpoint::journal_key(n)) {
                    Ok(Some(bytes)) => match serde_json::from_slice(&bytes) {
                        Ok(entry) => sent.push(entry),
                        Err(error) => tracing::error!("journal entry {n} unreadable: {error}"),
                    },
                    Ok(None) => break,
                    Err(error) => {
                        tracing::error!("reading the order journal: {error}");
                        break;
                    }
                }
            }
            self.journalled = sent.len() as u64;
        }
        if !sent.is_empty() {
            tracing::info!(orders = sent.len(), "orders journalled after the checkpoint: reconciling them with their venues");
        }
        self.restore_live_venues(saved, &sent);
        for entry in sent {
            self.router.adopt_restored(entry);
        }
    }

    /// Gives each live venue its saved state (none on a fresh start) and the orders sent
    /// after it; until then a venue holds back what it hears, as the owners of fills of
    /// orders placed before a restart are known only from here.
    fn restore_live_venues(&mut self, saved: Vec<(u32, crate::venue::live::LiveState)>, sent: &[crate::router::JournalEntry]) {
        self.live_restored = true;
        let mut market = self.market.lock();
        for venue in market.venues.iter_mut().filter(|v| !v.is_paper()) {
            let id = venue.id();
            let state = saved.iter().find(|(v, _)| *v == id.0).map(|(_, s)| s.clone()).unwrap_or_default();
            let orders: Vec<(StrategyId, crate::model::OrderRequest)> = sent.iter().filter(|e| e.venue == id).map(|e| (e.strategy, e.request.clone())).collect();
            venue.restore_live(state, &orders);
        }
    }

    fn resume(&mut self, cp: Checkpoint) {
        self.checkpoints = cp.seq;
        self.stats = cp.stats;
        self.clock.advance_to(cp.clock_ms);
        self.router.load_state(cp.router);
        {
            let mut market = self.market.lock();
            for (paper, state) in market.venues.iter_mut().filter_map(|v| v.as_paper_mut()).zip(cp.venues) {
                paper.load_state(state);
            }
        }

        for (feed, position) in self.feeds.iter_mut().zip(&cp.feeds) {
            // Engine::new peeked the first print; start the source over by reading past
            // what the interrupted run had read, bad records included (they were counted
            // then), and peek its read-ahead print again.
            let already = feed.consumed;
            feed.next = None;
            let target = position.consumed.saturating_sub(position.peeked as u64);
            let mut read = already;
            while read < target {
                if feed.source.next_print().is_none() {
                    break;
                }
                read += 1;
            }
            feed.consumed = read;
            if position.peeked {
                let mut not_counted = RunStats::default();
                feed.next = next_good_print(feed, &mut not_counted);
            }
        }
        for saved in cp.slots {
            let Some(index) = self.slots.iter().position(|s| s.name == saved.name) else { continue };
            let slot = &mut self.slots[index];
            slot.kv.lock().replace(saved.kv);
            slot.stats = saved.stats;
            slot.next_timer = saved.next_timer;
            slot.params = saved.params;
            slot.status = saved.status;
            slot.pending = saved.pending;
            slot.instance = None;
            let random_position = saved.random_position;
            let (Some(snapshot), SlotStatus::Running) = (saved.snapshot, &slot.status) else { continue };
            let Some(loaded) = self.loaded.get(&slot.component).cloned() else { continue };
            let slot = &self.slots[index];
            let restarted = self.start_instance(slot, &loaded).and_then(|(mut instance, subs)| match instance.restore(&snapshot) {
                Ok(Ok(())) => Ok((instance, subs)),
                Ok(Err(refusal)) => Err(format!("restore refused: {refusal}")),
                Err(trap) => Err(format!("restore {trap}")),
            });
            let slot = &mut self.slots[index];
            match restarted {
                Ok((mut instance, subs)) => {
                    self.router.set_permissions(slot.id, &subs);
                    instance.set_random_position(random_position);
                    slot.instance = Some(instance);
                    slot.subscriptions = subs;
                }
                Err(reason) => {
                    tracing::error!(strategy = %slot.name, "could not resume from the checkpoint: {reason}");
                    slot.status = SlotStatus::Failed(reason);
                }
            }
        }
    }

    /// Writes a checkpoint between two batches; a failure is reported and trading goes on.
    ///
    /// Events still waiting for a strategy (one that keeps itself busy past
    /// [`MAX_ROUNDS`]) are saved with it, so no strategy can hold checkpoints back.
    fn checkpoint(&mut self) {
        if self.store.is_none() {
            return;
        }
        let mut slots = Vec::new();
        for index in 0..self.slots.len() {
            let snapshot = match self.slots[index].instance.as_mut().map(|i| i.snapshot()) {
                Some(Ok(bytes)) => Some(bytes),
                Some(Err(trap)) => {
                    self.fail(index, trap);
                    None
                }
                None => None,
            };
            let slot = &self.slots[index];
            let random_position = slot.instance.as_ref().map(|i| i.random_position()).unwrap_or_default();
            slots.push(SlotState {
                name: slot.name.clone(),
                status: slot.status.clone(),
                stats: slot.stats.clone(),
                next_timer: slot.next_timer,
                snapshot,
                kv: slot.kv.lock().entries().clone(),
                params: slot.params.clone(),
                random_position,
                pending: slot.pending.clone(),
            });
        }
        let (venues, live) = {
            let market = self.market.lock();
            let paper = market.venues.iter().filter_map(|v| v.as_paper().map(|p| p.save_state())).collect();
            let live = market.venues.iter().filter_map(|v| v.live_state().map(|s| (v.id().0, s))).collect();
            (paper, live)
        };
        let cp = Checkpoint {
            format: checkpoint::FORMAT,
            seq: self.checkpoints + 1,
            config_digest: checkpoint::config_digest(&self.config),
            clock_ms: self.clock.now_ms(),
            feeds: self.feeds.iter().map(|f| checkpoint::FeedPosition { consumed: f.consumed, peeked: f.next.is_some() }).collect(),
            stats: self.stats.clone(),
            router: self.router.save_state(self.clock.now_ms()),
            venues,
            slots,
            live,
        };
        let bytes = match serde_json::to_vec(&cp) {
            Ok(bytes) => bytes,
            Err(error) => return tracing::error!("checkpoint not written: {error}"),
        };
        let Some(store) = self.store.as_mut() else { return };
        // The checkpoint holds the router's journal: the entries written since go with it.
        let mut writes = vec![Write::Put(checkpoint::KEY.into(), bytes)];
        writes.extend((1..=self.journalled).map(|n| Write::Delete(checkpoint::journal_key(n))));
        match store.commit(writes) {
            Ok(()) => {
                self.journalled = 0;
                self.checkpoints = cp.seq;
                tracing::info!(checkpoint = cp.seq, batches = self.stats.batches, buffered = store.buffered(), buffered_bytes = store.buffered_bytes(), "checkpoint written");
            }
            Err(error) => tracing::error!("checkpoint not written, trading goes on: {error}"),
        }
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
            if self.live_runtime.is_some() {
                return self.live_step();
            }
            // No more market data, but the strategies may still have work queued.
            self.deliver();
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
        let mut touched = Vec::new();
        let mut ended = Vec::new();
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
        }
        self.collect_venue_events();
        // After this batch's trades: a reader stops at the end marker.
        if let Some(bus) = self.bus.as_mut() {
            for instrument in ended {
                bus.end(instrument);
            }
        }
        self.publish_books(&touched, ts);
        self.deliver();
        if let Some(bus) = self.bus.as_mut() {
            bus.flush();
        }
        if self.store.is_some() && self.stats.batches.is_multiple_of(self.checkpoint_every) {
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
        match self.control_rx.recv_timeout(Duration::from_millis(wait)) {
            Ok(control) => self.apply_control(control),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return false,
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
        self.deliver();
        if let Some(bus) = self.bus.as_mut() {
            bus.flush();
        }
        // A batch that sent orders to a live venue is checkpointed at once: a restart then
        // resumes strategies that know what they sent, and the journal covers only the
        // moment between the send and this checkpoint.
        if self.store.is_some() && (self.journalled > 0 || self.stats.batches.is_multiple_of(self.checkpoint_every)) {
            self.checkpoint();
        }
        true
    }

    /// Sleeps until a print is due when a replay speed is set, waking early for controls.
    fn wait_for(&mut self, ts: i64) {
        let speed = self.config.replay.speed;
        if speed == 0 {
            return;
        }
        let (origin_ts, origin_wall) = *self.pace.get_or_insert((ts, Instant::now()));
        let due = origin_wall + Duration::from_millis(((ts - origin_ts).max(0) as u64) / speed as u64);
        loop {
            let now = Instant::now();
            if now >= due || self.stopping {
                return;
            }
            match self.control_rx.recv_timeout(due - now) {
                Ok(control) => self.apply_control(control),
                Err(RecvTimeoutError::Timeout) => return,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn fire_timers(&mut self, ts: i64) {
        for slot in &mut self.slots {
            let Some(interval) = slot.subscriptions.timer_interval_ms.filter(|i| *i > 0) else { continue };
            let interval = interval as i64;
            let due = *slot.next_timer.get_or_insert((ts / interval + 1) * interval);
            if ts >= due {
                // Missed intervals are coalesced into one timer at the latest due time.
                let latest = due + (ts - due) / interval * interval;
                slot.pending.push(Event::Timer(latest));
                slot.next_timer = Some(latest + interval);
            }
        }
    }

    fn publish_books(&mut self, touched: &[InstrumentId], ts: i64) {
        if !self.slots.iter().any(|s| !s.subscriptions.books.is_empty()) {
            return;
        }
        let market = self.market.lock();
        for slot in self.slots.iter_mut().filter(|s| s.status == SlotStatus::Running) {
            for (instrument, depth) in &slot.subscriptions.books {
                if touched.contains(instrument) {
                    if let Some(book) = market.book(*instrument, *depth as usize, ts) {
                        slot.pending.push(Event::Book(book));
                    }
                }
            }
        }
    }

    /// Moves what the venues reported into the strategies' queues.
    fn collect_venue_events(&mut self) {
        let mut events = Vec::new();
        {
            let mut market = self.market.lock();
            for venue in market.venues.iter_mut() {
                venue.drain_events(&mut events);
            }
            for event in &events {
                self.router.on_venue_event(&market, event);
                if let VenueEvent::Trade(trade) = event {
                    market.record_trade(trade);
                    if let Some(bus) = self.bus.as_mut() {
                        bus.on_trade(trade);
                    }
                }
            }
        }
        for event in events {
            self.dispatch(event);
        }
    }

    fn dispatch(&mut self, event: VenueEvent) {
        match event {
            VenueEvent::Book(instrument) => {
                if !self.books_touched.contains(&instrument) {
                    self.books_touched.push(instrument);
                }
            }
            VenueEvent::Trade(trade) => {
                for slot in &mut self.slots {
                    if slot.status == SlotStatus::Running && slot.subscriptions.trades.contains(&trade.instrument) {
                        slot.pending.push(Event::Trade(trade.clone()));
                    }
                }
            }
            VenueEvent::Fill(fill) => {
                for slot in &mut self.slots {
                    let own = fill.owner == Some(slot.id);
                    if own {
                        // Saturating: a venue's figures are not trusted to be sane.
                        let p = slot.stats.positions.entry(fill.instrument).or_default();
                        let notional = fill.qty.saturating_mul(fill.price);
                        match fill.side {
                            Side::Buy => {
                                p.bought = p.bought.saturating_add(fill.qty);
                                p.buy_notional = p.buy_notional.saturating_add(notional);
                            }
                            Side::Sell => {
                                p.sold = p.sold.saturating_add(fill.qty);
                                p.sell_notional = p.sell_notional.saturating_add(notional);
                            }
                        }
                        p.fees = p.fees.saturating_add(fill.fee);
                        slot.stats.fills += 1;
                    }
                    if slot.status == SlotStatus::Running && (own || slot.subscriptions.account_fills.contains(&fill.instrument)) {
                        slot.pending.push(Event::Fill(fill.clone()));
                    }
                }
            }
            VenueEvent::Order(update) => {
                let Some(slot) = self.slots.iter_mut().find(|s| Some(s.id) == update.owner) else { return };
                match update.status {
                    crate::model::OrderStatus::Rejected => slot.stats.rejected += 1,
                    crate::model::OrderStatus::Canceled => slot.stats.canceled += 1,
                    _ => {}
                }
                slot.pending.push(Event::Order(update));
            }
        }
    }

    /// Calls every strategy that has events, routes what they decide, and repeats while
    /// their decisions cause new events, up to [`MAX_ROUNDS`].
    fn deliver(&mut self) {
        for _ in 0..MAX_ROUNDS {
            let mut any = false;
            for index in 0..self.slots.len() {
                if self.slots[index].pending.is_empty() {
                    continue;
                }
                if self.slots[index].status != SlotStatus::Running {
                    // A stopped strategy's events are dropped, not hoarded.
                    self.slots[index].pending.clear();
                    continue;
                }
                any = true;
                self.call_strategy(index);
                self.collect_venue_events();
            }
            if !any {
                break;
            }
        }
    }

    fn call_strategy(&mut self, index: usize) {
        let now = self.clock.now_ms();
        let slot = &mut self.slots[index];
        let events = std::mem::take(&mut slot.pending);
        let Some(instance) = slot.instance.as_mut() else { return };
        slot.stats.events += events.len() as u64;
        slot.stats.calls += 1;
        let result = instance.on_events(&events);
        slot.stats.log_dropped += instance.take_log_dropped();
        let actions = match result {
            Ok(actions) => actions,
            Err(trap) => return self.fail(index, trap),
        };
        let owner = slot.id;
        let mut market = self.market.lock();
        for action in actions {
            let slot = &mut self.slots[index];
            match action {
                Err((client_order_id, reason)) => {
                    slot.stats.refused += 1;
                    tracing::warn!(strategy = %slot.name, client_order_id = %shown(&client_order_id, 40), "action refused: {reason}");
                }
                Ok(Action::Place(request)) => match self.router.place(&mut market, owner, &request, now, &mut |entry| {
                    let Some(store) = self.store.as_mut() else { return Ok(()) };
                    let bytes = serde_json::to_vec(entry).map_err(|e| e.to_string())?;
                    // The number is taken only once written: a failed write must not leave a
                    // hole, since reading the journal back stops at the first missing key.
                    let n = self.journalled + 1;
                    store.commit(vec![Write::Put(checkpoint::journal_key(n), bytes)]).map_err(|e| e.to_string())?;
                    self.journalled = n;
                    Ok(())
                }) {
                    Routed::Sent | Routed::Recommended => slot.stats.placed += 1,
                    Routed::Refused(update) => {
                        slot.stats.refused += 1;
                        tracing::debug!(strategy = %slot.name, client_order_id = %shown(&update.client_order_id, 40), reason = ?update.reason, "order refused by the router");
                        slot.pending.push(Event::Order(update));
                    }
                },
                Ok(Action::Cancel { instrument, client_order_id }) => self.router.cancel(&mut market, owner, instrument, &client_order_id, now),
                Ok(Action::CancelAll(instrument)) => self.router.cancel_all(&mut market, owner, instrument, now),
            }
        }
    }

    /// Stops a strategy that trapped, cancels its orders and tells the operator.
    fn fail(&mut self, index: usize, trap: GuestTrap) {
        let now = self.clock.now_ms();
        let slot = &mut self.slots[index];
        slot.instance = None;
        slot.pending.clear();
        slot.status = SlotStatus::Failed(trap.to_string());
        let (id, name) = (slot.id, slot.name.clone());
        tracing::error!(strategy = %name, "strategy stopped: it {trap}; cancelling its orders, the others keep running");
        {
            let mut market = self.market.lock();
            self.router.cancel_all(&mut market, id, None, now);
        }
        self.collect_venue_events();
        self.notify(Notice::StrategyFailed { strategy: name, reason: trap.to_string() });
    }

    /// Waits up to `timeout` for one control message and applies it, then delivers what
    /// it caused; for when no market data is flowing. False when none came.
    pub fn wait_control(&mut self, timeout: Duration) -> bool {
        match self.control_rx.recv_timeout(timeout) {
            Ok(control) => {
                self.apply_control(control);
                self.deliver();
                true
            }
            Err(_) => false,
        }
    }

    fn apply_controls(&mut self) {
        while let Ok(control) = self.control_rx.try_recv() {
            self.apply_control(control);
        }
    }

    fn apply_control(&mut self, control: Control) {
        match control {
            Control::Swap { component, loaded } => self.swap(&component, &loaded),
            Control::Config(config) => self.apply_config(*config),
            Control::SwapFailed { component, reason } => self.notify(Notice::SwapRejected { component, reason }),
            Control::ConfigFailed { reason } => self.notify(Notice::ConfigRejected { reason }),
            Control::Shutdown => self.stopping = true,
            Control::Wake => {}
        }
    }

    /// Replaces every instance of `component` with the new version: init it, hand it the
    /// old version's snapshot, and only then switch. Any failure keeps the old version.
    fn swap(&mut self, component: &str, loaded: &LoadedComponent) {
        let mut matched = false;
        for index in 0..self.slots.len() {
            if self.slots[index].component != component {
                continue;
            }
            matched = true;
            let started = Instant::now();
            let slot = &self.slots[index];
            let (mut next, subscriptions) = match self.start_instance(slot, loaded) {
                Ok(started) => started,
                Err(reason) => {
                    self.reject_swap(index, loaded, reason);
                    continue;
                }
            };
            let slot = &mut self.slots[index];
            if let Some(old) = slot.instance.as_mut() {
                let state = match old.snapshot() {
                    Ok(state) => state,
                    Err(trap) => {
                        // A trap ends an instance: the running version is gone, not kept.
                        let reason = format!("the running version {trap} while taking its snapshot for the swap; it is stopped, and the new version is not started since there is no state to hand it");
                        tracing::error!(strategy = %self.slots[index].name, version = %loaded.hash, "hot swap failed: {reason}");
                        self.notify(Notice::SwapRejected { component: self.slots[index].component.clone(), reason });
                        self.fail(index, trap);
                        continue;
                    }
                };
                match next.restore(&state) {
                    Ok(Ok(())) => {}
                    Ok(Err(refusal)) => {
                        self.reject_swap(index, loaded, format!("restore refused: {refusal}"));
                        continue;
                    }
                    Err(trap) => {
                        self.reject_swap(index, loaded, format!("restore {trap}"));
                        continue;
                    }
                }
            } else {
                tracing::warn!(strategy = %slot.name, "the previous version had stopped; the new version starts from its init state");
            }
            let slot = &mut self.slots[index];
            let from = std::mem::replace(&mut slot.hash, loaded.hash.clone());
            if slot.subscriptions.timer_interval_ms != subscriptions.timer_interval_ms {
                slot.next_timer = None;
            }
            slot.instance = Some(next);
            slot.subscriptions = subscriptions;
            slot.status = SlotStatus::Running;
            slot.stats.swaps += 1;
            let (id, permissions) = (slot.id, slot.subscriptions.clone());
            let micros = started.elapsed().as_micros();
            tracing::info!(strategy = %slot.name, from = %from, to = %loaded.hash, micros, compile_ms = loaded.compile_time.as_millis() as u64, "hot swap done");
            let notice = Notice::Swapped { strategy: slot.name.clone(), from, to: loaded.hash.clone(), micros };
            self.router.set_permissions(id, &permissions);
            self.notify(notice);
        }
        if !matched {
            tracing::warn!(component, "a new version was loaded but no strategy instance runs this component");
        }
    }

    fn reject_swap(&mut self, index: usize, loaded: &LoadedComponent, reason: String) {
        let slot = &self.slots[index];
        tracing::error!(strategy = %slot.name, version = %loaded.hash, "hot swap refused, the running version stays: {reason}");
        let component = slot.component.clone();
        self.notify(Notice::SwapRejected { component, reason });
    }

    /// Applies a reloaded config: new params reach their strategies as a `params` event;
    /// what needs a restart is named and left as it was.
    ///
    /// A config that changes what needs a restart (venues, mode, sandbox, the set of
    /// strategies or their components) is refused whole, with what it changes named: a
    /// file cut short by an editor mid-write looks exactly like that (strategies gone,
    /// limits back to defaults), and half of an intended change is worse than none.
    fn apply_config(&mut self, config: Config) {
        let mut needs_restart = Vec::new();
        if config.venues != self.config.venues {
            needs_restart.push("the venues".to_string());
        }
        if config.mode != self.config.mode {
            needs_restart.push("the mode".to_string());
        }
        if config.sandbox != self.config.sandbox {
            needs_restart.push("the sandbox limits".to_string());
        }
        for old in &self.config.strategies {
            match config.strategies.iter().find(|s| s.name == old.name) {
                None => needs_restart.push(format!("strategy {} removed", old.name)),
                Some(new) if new.component != old.component => needs_restart.push(format!("strategy {} moved to component {}", old.name, shown(&new.component, 40))),
                Some(_) => {}
            }
        }
        for new in &config.strategies {
            if !self.config.strategies.iter().any(|s| s.name == new.name) {
                needs_restart.push(format!("strategy {} added", new.name));
            }
        }
        if !needs_restart.is_empty() {
            let reason = format!("config change not applied: it changes what needs a restart ({}); the running config stays in force", needs_restart.join(", "));
            tracing::warn!("{reason}");
            return self.notify(Notice::ConfigRejected { reason });
        }
        let mut changed = Vec::new();
        for sc in &config.strategies {
            if let Some(slot) = self.slots.iter_mut().find(|s| s.name == sc.name.as_str()) {
                let params = sc.params_json();
                if params != slot.params {
                    tracing::info!(strategy = %slot.name, "params changed; delivering them to the strategy");
                    slot.params = params.clone();
                    slot.pending.push(Event::Params(params));
                    changed.push(slot.name.clone());
                }
            }
        }
        if config.risk != self.config.risk {
            tracing::info!("risk limits updated");
            self.router.set_risk(config.risk.clone());
        }
        self.config.strategies = config.strategies;
        self.config.risk = config.risk;
        self.notify(Notice::ConfigApplied { changed });
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

/// Entries a strategy may list in one field of its subscriptions.
pub const MAX_SUBSCRIPTION_ENTRIES: usize = 1024;
/// Deepest book a strategy may ask to be handed.
pub const MAX_BOOK_DEPTH: u32 = 500;

/// What a strategy asked for at init, bounded: every handle must be one the market knows,
/// each list is de-duplicated (a handle listed 20,000 times is one subscription, not
/// 20,000 copies of every print), and more than [`MAX_SUBSCRIPTION_ENTRIES`] distinct
/// instruments in one list is refused outright.
pub fn check_subscriptions(market: &Market, mut subs: Subscriptions) -> Result<Subscriptions, String> {
    fn dedup<T: PartialEq + Copy>(items: &mut Vec<T>) {
        let mut seen = Vec::new();
        items.retain(|i| if seen.contains(i) { false } else { seen.push(*i); true });
    }
    let known = |id: &InstrumentId| market.instrument(*id).is_some();
    for (field, ids) in [("trades", &subs.trades), ("account-fills", &subs.account_fills), ("orders-on", &subs.orders_on)] {
        if let Some(bad) = ids.iter().find(|id| !known(id)) {
            return Err(format!("init refused by the host: subscriptions.{field} names unknown instrument handle {}", bad.0));
        }
    }
    if let Some((bad, _)) = subs.books.iter().find(|(id, _)| !known(id)) {
        return Err(format!("init refused by the host: subscriptions.books names unknown instrument handle {}", bad.0));
    }
    dedup(&mut subs.trades);
    dedup(&mut subs.account_fills);
    dedup(&mut subs.orders_on);
    let mut books: Vec<(InstrumentId, u32)> = Vec::new();
    for (id, depth) in subs.books.drain(..) {
        let depth = depth.clamp(1, MAX_BOOK_DEPTH);
        match books.iter_mut().find(|(b, _)| *b == id) {
            Some(existing) => existing.1 = existing.1.max(depth),
            None => books.push((id, depth)),
        }
    }
    subs.books = books;
    for (field, len) in [("trades", subs.trades.len()), ("books", subs.books.len()), ("account-fills", subs.account_fills.len()), ("orders-on", subs.orders_on.len())] {
        if len > MAX_SUBSCRIPTION_ENTRIES {
            return Err(format!("init refused by the host: subscriptions.{field} lists {len} instruments; the limit is {MAX_SUBSCRIPTION_ENTRIES}"));
        }
    }
    Ok(subs)
}

/// A strategy that crosses its own orders may only trade on paper venues, and must say
/// where it trades so that can be checked before it starts.
pub fn check_self_trading(market: &Market, subscriptions: &Subscriptions) -> Result<(), String> {
    if subscriptions.orders_on.is_empty() {
        return Err("refused: it declares self-trading but not the instruments it trades on (orders-on), so the host cannot check they are all on paper venues".into());
    }
    for id in &subscriptions.orders_on {
        match market.instrument(*id) {
            Some(info) if info.paper => {}
            Some(info) => {
                return Err(format!(
                    "refused: it crosses its own orders, which on a live venue ({}) is wash trading, a form of market manipulation; it runs on paper venues only",
                    info.venue_name
                ))
            }
            None => return Err(format!("refused: orders-on names unknown instrument handle {}", id.0)),
        }
    }
    Ok(())
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
