//! Start-up: venues, instruments and feeds from the config, then one strategy instance
//! per config entry, each checked before it runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::inbox::Inbox;
use super::{next_good_print, Engine, Feed, Slot, StartError};
use crate::venue::live::driver::Driver;
use crate::config::{Config, FeedConfig, InstrumentConfig, SettlementConfig, VenueConfig, VenueKind};
use crate::feed::ahead::ReadAhead;
use crate::feed::bus::BusFeed;
use crate::feed::derived::Derived;
use crate::feed::replay::CsvReplay;
use crate::feed::synthetic::{Synthetic, SyntheticConfig};
use crate::feed::MarketDataSource;
use crate::market::{EventClock, Market, SharedMarket};
use crate::model::{shown, InstrumentId, InstrumentInfo, StrategyId, Subscriptions, VenueId};
use crate::plugin::{GuestState, InstanceContext, LoadedComponent, PluginHost, StrategyInstance};
use crate::router::Router;
use crate::stats::{RunStats, SlotStatus, StrategyStats};
use crate::venue::paper::{LiquidityProfile, PaperVenue, PaperVenueConfig, Settlement};
use crate::venue::Venue;

impl Engine {
    /// Builds venues, feeds and strategy instances from a validated config and the
    /// loaded components (by file stem). A strategy whose `init` refuses or traps is
    /// reported and left out; the others run.
    pub fn new(config: Config, components: &HashMap<String, Arc<LoadedComponent>>, plugin: PluginHost) -> Result<Engine, StartError> {
        let mut instruments = Vec::new();
        let mut venues: Vec<Box<dyn Venue>> = Vec::new();
        let mut feeds = Vec::new();
        // Instruments whose trades go on the market data bus, with their stream names.
        let mut published = HashMap::new();
        let (controller, control_rx, woken) = super::inbox::inbox();
        if let Some(core) = config.live.engine_core {
            crate::affinity::pin_engine(core).map_err(|e| StartError::Live(e.to_string()))?;
            tracing::info!(core, "the engine's thread has core {core} to itself");
        }
        let mut live: Option<Driver> = None;
        for (v, vc) in config.venues.iter().enumerate() {
            let venue_id = VenueId(v as u32);
            let first = instruments.len() as u32;
            if vc.kind == VenueKind::Paper {
                let (venue, listed) = paper_venue(&config, venue_id, vc, first, &mut feeds)?;
                instruments.extend(listed);
                venues.push(Box::new(venue));
            } else {
                let driver = match &live {
                    Some(driver) => driver.clone(),
                    None => Driver::new(woken.clone(), config.live.busy_poll).map_err(|e| StartError::Live(format!("starting the venue connections: {e}")))?,
                };
                live = Some(driver.clone());
                let connected = crate::venue::connect::connect(&driver, vc, venue_id, first).map_err(StartError::Live)?;
                instruments.extend(connected.instruments);
                venues.push(Box::new(connected.venue));
            }
            for info in &instruments[first as usize..] {
                if vc.instruments.iter().any(|ic| ic.symbol == info.symbol && ic.publish) {
                    published.insert(info.id, format!("{}:{}:{}", config.bus.prefix, vc.name, info.symbol));
                }
            }
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
            controller,
            inbox: Inbox::new(control_rx, live),
            notices: Vec::new(),
            swap_history: Default::default(),
            pace: None,
            stopping: false,
            store: None,
            checkpoints: 0,
            checkpoint_every: u64::MAX,
            loaded: components.clone(),
            bus,
            journalled: 0,
            checkpoint_duration: crate::stats::Histogram::new(crate::stats::CALL_BUCKETS),
            live_restored: false,
            books_touched: Vec::new(),
            killed: None,
            halts_unconfirmed: Vec::new(),
            halt_cancels: HashMap::new(),
            recent_fills: std::collections::VecDeque::new(),
            venue_events: Vec::new(),
            touched: Vec::new(),
            stats: RunStats::default(),
        };
        engine.start_strategies(components)?;
        for feed in &mut engine.feeds {
            feed.next = next_good_print(feed, &mut engine.stats);
        }
        Ok(engine)
    }

    /// One slot per config entry, each with its instance started; a strategy that cannot
    /// start keeps its slot, marked refused with the reason.
    fn start_strategies(&mut self, components: &HashMap<String, Arc<LoadedComponent>>) -> Result<(), StartError> {
        let loaded_names = || {
            let mut names: Vec<_> = components.keys().cloned().collect();
            names.sort();
            names.join(", ")
        };
        for (i, sc) in self.config.strategies.clone().iter().enumerate() {
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
                call_latency: crate::stats::Histogram::new(crate::stats::CALL_BUCKETS),
                instance: None,
                loaded: loaded.clone(),
                probation: None,
                next_timer: None,
                kv: GuestState::default(),
                pending: Vec::new(),
                held: 0,
                held_ends: Vec::new(),
                held_since: None,
            };
            self.router.risk_mut().set_own(slot.id, sc.risk.clone());
            let grant = resolve_grant(&self.market.lock(), &sc.trade_on).map_err(|reason| StartError::Grant { strategy: sc.name.to_string(), reason })?;
            self.router.risk_mut().set_grant(slot.id, grant);
            match self.start_instance(&slot, loaded) {
                Ok((instance, subscriptions)) => {
                    tracing::info!(strategy = %slot.name, component = %slot.component, version = %slot.hash, "strategy started");
                    self.router.set_permissions(slot.id, &subscriptions);
                    slot.instance = Some(instance);
                    slot.subscriptions = subscriptions;
                }
                Err(reason) => {
                    tracing::error!(strategy = %slot.name, "strategy not started: {reason}");
                    slot.status = SlotStatus::Refused(reason);
                }
            }
            self.slots.push(slot);
        }
        Ok(())
    }

    /// Instantiates and initialises a component for a slot; checks that a strategy that
    /// trades against itself only touches paper venues.
    pub(super) fn start_instance(&self, slot: &Slot, loaded: &LoadedComponent) -> Result<(StrategyInstance, Subscriptions), String> {
        let ctx = InstanceContext {
            id: slot.id,
            name: slot.name.clone(),
            market: self.market.clone(),
            clock: self.clock.clone(),
            seed: super::prepare::instance_seed(slot.id),
            kv: slot.kv.clone(),
            open_orders: self.router.shared_open_orders(),
        };
        let instance = self.plugin.instantiate(loaded, ctx).map_err(|t| format!("could not instantiate: {t}"))?;
        self.init_instance(slot, instance)
    }

    /// Initialises an instance for a slot and checks what it subscribes to.
    pub(super) fn init_instance(&self, slot: &Slot, mut instance: StrategyInstance) -> Result<(StrategyInstance, Subscriptions), String> {
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

    /// [`Engine::start_instance`], then `state` handed to it: how a version starts again
    /// from a checkpoint or a rollback.
    pub(super) fn start_restored(&self, slot: &Slot, loaded: &LoadedComponent, state: &[u8]) -> Result<(StrategyInstance, Subscriptions), String> {
        let (mut instance, subscriptions) = self.start_instance(slot, loaded)?;
        restore(&mut instance, state)?;
        Ok((instance, subscriptions))
    }
}

/// Hands a state to a fresh instance; a refusal or a trap as the reason it was not taken.
pub(super) fn restore(instance: &mut StrategyInstance, state: &[u8]) -> Result<(), String> {
    match instance.restore(state) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(refusal)) => Err(format!("restore refused: {refusal}")),
        Err(trap) => Err(format!("restore {trap}")),
    }
}

impl Slot {
    /// Makes `instance`, of `loaded`, the one running: returns the version it replaces.
    /// A changed timer interval starts its schedule again.
    pub(super) fn install(&mut self, instance: StrategyInstance, subscriptions: Subscriptions, loaded: Arc<LoadedComponent>) -> Arc<LoadedComponent> {
        if self.subscriptions.timer_interval_ms != subscriptions.timer_interval_ms {
            self.next_timer = None;
        }
        self.instance = Some(instance);
        // What was held, the previous version promised to ignore; this one did not.
        self.release_held();
        self.subscriptions = subscriptions;
        self.hash = loaded.hash.clone();
        std::mem::replace(&mut self.loaded, loaded)
    }
}

/// The instruments a `trade_on` list names (`venue:SYMBOL`); none for an empty list.
pub(super) fn resolve_grant(market: &Market, trade_on: &[String]) -> Result<Option<Vec<InstrumentId>>, String> {
    if trade_on.is_empty() {
        return Ok(None);
    }
    let mut ids = Vec::new();
    for entry in trade_on {
        let (venue, symbol) = entry.split_once(':').unwrap_or((entry, ""));
        let id = market.lookup(venue, symbol).map(|i| i.id).ok_or_else(|| format!("trade_on names {}, which is not an instrument of that venue", shown(entry, 60)))?;
        ids.push(id);
    }
    Ok(Some(ids))
}

/// A paper venue with its instruments (handles from `first` on) and their market data
/// feeds, added to `feeds`.
fn paper_venue(config: &Config, venue_id: VenueId, vc: &VenueConfig, first: u32, feeds: &mut Vec<Feed>) -> Result<(PaperVenue, Vec<InstrumentInfo>), StartError> {
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
        fees_in_received: vc.fees_in == crate::config::FeesIn::Received,
        faults: crate::venue::paper::Faults { duplicate_fills: vc.faults.duplicate_fills },
    });
    let mut instruments = Vec::new();
    for ic in &vc.instruments {
        let info = InstrumentInfo {
            id: InstrumentId(first + instruments.len() as u32),
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
        if let Some(source) = feed_source(config, vc, ic)? {
            tracing::info!(venue = %vc.name, symbol = %ic.symbol, "market data: {}", source.describe());
            feeds.push(Feed { venue: venue_id, instrument: info.id, source, next: None, consumed: 0 });
        }
        instruments.push(info);
    }
    Ok((venue, instruments))
}

/// The market data source an instrument's config names, opened; none for `feed = none`.
fn feed_source(config: &Config, vc: &VenueConfig, ic: &InstrumentConfig) -> Result<Option<Box<dyn MarketDataSource>>, StartError> {
    let feed_error = |reason: String| StartError::Feed { venue: vc.name.to_string(), symbol: ic.symbol.clone(), reason };
    let source: Box<dyn MarketDataSource> = match &ic.feed {
        FeedConfig::None => return Ok(None),
        FeedConfig::Replay { file } => Box::new(CsvReplay::open(file).map_err(|e| feed_error(e.to_string()))?),
        FeedConfig::Bus { venue, symbol, idle_timeout_ms } => {
            let url = config.bus.redis_url().map_err(feed_error)?;
            let key = crate::bus::trades_key(&config.bus.prefix, venue, symbol);
            // Read as it comes: a bus feed waits on the publisher, and its idle timeout
            // must be the engine's to see.
            return Ok(Some(Box::new(BusFeed::connect(&url, key, Duration::from_millis(*idle_timeout_ms)).map_err(|e| feed_error(e.to_string()))?)));
        }
        FeedConfig::Derived { file, ratio, noise_ticks, seed } => {
            let source = CsvReplay::open(file).map_err(|e| feed_error(e.to_string()))?;
            Box::new(Derived::new(source, *ratio, ic.tick_size, ic.lot_size, *noise_ticks, *seed))
        }
        FeedConfig::Synthetic { seed, start_price, max_step_ticks, max_lots, start_ms, interval_ms, count } => Box::new(Synthetic::new(SyntheticConfig {
            seed: *seed,
            start_price: *start_price,
            tick_size: ic.tick_size,
            max_step_ticks: *max_step_ticks,
            lot_size: ic.lot_size,
            max_lots: *max_lots,
            start_ms: *start_ms,
            interval_ms: *interval_ms,
            count: *count,
        })),
    };
    // Files and generators are read ahead on a thread of their own (see `feed::ahead`).
    let ahead = ReadAhead::start(source, &format!("{}/{}", vc.name, ic.symbol)).map_err(|e| feed_error(format!("starting its reader thread: {e}")))?;
    Ok(Some(Box::new(ahead)))
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
