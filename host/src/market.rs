//! What the host knows about the market right now: the instrument registry, the venues
//! and their books, the recent public tape, and the clock of the events in flight.
//!
//! It sits behind one mutex because strategies read it through their imports while the
//! engine, between guest calls, writes it. The engine never holds the lock across a guest
//! call, so the two never wait on each other for long.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::model::{BookSnapshot, InstrumentId, InstrumentInfo, PublicTrade};
use crate::venue::Venue;

/// How many public trades per instrument the host keeps for `market.recent-trades`.
pub const RECENT_TRADES: usize = 1_000;

pub struct Market {
    pub instruments: Vec<InstrumentInfo>,
    pub venues: Vec<Box<dyn Venue>>,
    recent: FxHashMap<InstrumentId, VecDeque<PublicTrade>>,
    /// When the earliest private-stream frame behind the batch being handled was read:
    /// orders placed meanwhile carry it, for tick-to-trade.
    pub trigger: Option<std::time::Instant>,
}

impl Market {
    pub fn new(instruments: Vec<InstrumentInfo>, venues: Vec<Box<dyn Venue>>) -> Self {
        Market { instruments, venues, recent: FxHashMap::default(), trigger: None }
    }

    pub fn instrument(&self, id: InstrumentId) -> Option<&InstrumentInfo> {
        self.instruments.get(id.0 as usize)
    }

    pub fn lookup(&self, venue: &str, symbol: &str) -> Option<&InstrumentInfo> {
        self.instruments.iter().find(|i| i.venue_name == venue && i.symbol == symbol)
    }

    pub fn record_trade(&mut self, trade: &PublicTrade) {
        let tape = self.recent.entry(trade.instrument).or_default();
        if tape.len() == RECENT_TRADES {
            tape.pop_front();
        }
        tape.push_back(trade.clone());
    }

    pub fn recent_trades(&self, instrument: InstrumentId, limit: usize) -> Vec<PublicTrade> {
        let Some(tape) = self.recent.get(&instrument) else { return Vec::new() };
        tape.iter().skip(tape.len().saturating_sub(limit)).cloned().collect()
    }

    pub fn book(&self, instrument: InstrumentId, depth: usize, ts_ms: i64) -> Option<BookSnapshot> {
        let info = self.instrument(instrument)?;
        let venue = self.venues.get(info.venue.0 as usize)?;
        venue.book(instrument, depth).map(|b| BookSnapshot { ts_ms, ..b })
    }

    pub fn last_price(&self, instrument: InstrumentId) -> Option<crate::model::Decimal> {
        self.recent.get(&instrument).and_then(|t| t.back()).map(|t| t.price)
    }
}

#[derive(Clone)]
pub struct SharedMarket(Arc<Mutex<Market>>);

impl SharedMarket {
    pub fn new(market: Market) -> Self {
        SharedMarket(Arc::new(Mutex::new(market)))
    }

    /// Locks the market. A panic while it was held is a host bug; the data is still
    /// usable, so the poison is cleared rather than taking the host down.
    pub fn lock(&self) -> MutexGuard<'_, Market> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The time of the events being processed: the recorded clock in a replay, the wall
/// clock live. Strategies read it through the `clock` import.
#[derive(Clone, Default)]
pub struct EventClock(Arc<Padded>);

/// The clock's own cache lines: read at every batch and every call, it must not share a
/// line with what another thread writes (the profile of a replay put 80% of a hot
/// function's time on this one load before it had them).
#[derive(Default)]
#[repr(align(128))]
struct Padded(AtomicI64);

impl EventClock {
    pub fn now_ms(&self) -> i64 {
        self.0 .0.load(Ordering::Relaxed)
    }
    /// Moves the clock forward; it never goes back. Only the engine's thread moves it (the
    /// instances read it), so a load and a store do what an atomic maximum would, without
    /// its locked instruction at every batch (a sixth of a replay step's own time here).
    pub fn advance_to(&self, ts_ms: i64) {
        let clock = &self.0 .0;
        if ts_ms > clock.load(Ordering::Relaxed) {
            clock.store(ts_ms, Ordering::Relaxed);
        }
    }
}
