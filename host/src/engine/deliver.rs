//! Getting events to strategies and their decisions to the router: timers, books, what
//! the venues report, the strategy calls themselves, and stopping a strategy that traps.

use std::time::Instant;

use super::{Engine, Notice, MAX_ROUNDS, PROBATION_EVENTS};
use crate::checkpoint;
use crate::model::{shown, Action, Event, InstrumentId, OrderStatus};
use crate::plugin::GuestTrap;
use crate::router::Routed;
use crate::stats::{FeeIn, SlotStatus};
use crate::store::Write;
use crate::venue::VenueEvent;

/// Fills of the runtime's orders kept for the control API.
const RECENT_FILLS: usize = 1000;

impl Engine {
    pub(super) fn fire_timers(&mut self, ts: i64) {
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

    pub(super) fn publish_books(&mut self, touched: &[InstrumentId], ts: i64) {
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
    pub(super) fn collect_venue_events(&mut self) {
        let mut events = std::mem::take(&mut self.venue_events);
        {
            let mut market = self.market.lock();
            gather_venue_events(&mut market, &mut self.router, &mut self.bus, &mut events);
        }
        self.dispatch_all(events);
    }

    /// Dispatches what [`gather_venue_events`] took, in order.
    pub(super) fn dispatch_all(&mut self, mut events: Vec<VenueEvent>) {
        for event in events.drain(..) {
            self.dispatch(event);
        }
        // Its capacity is kept for the next batch, unless a dispatch filled it meanwhile.
        if self.venue_events.is_empty() {
            self.venue_events = events;
        }
    }

    pub(super) fn dispatch(&mut self, event: VenueEvent) {
        match event {
            VenueEvent::Book(instrument) => {
                if !self.books_touched.contains(&instrument) {
                    self.books_touched.push(instrument);
                }
            }
            VenueEvent::Trade(trade) => {
                for slot in &mut self.slots {
                    if slot.status == SlotStatus::Running && slot.subscriptions.trades.contains(&trade.instrument) {
                        slot.queue_trade(&trade);
                    }
                }
            }
            VenueEvent::Fill(fill) => {
                if fill.owner.is_some() {
                    if self.recent_fills.len() >= RECENT_FILLS {
                        self.recent_fills.pop_front();
                    }
                    self.recent_fills.push_back(fill.clone());
                }
                let owner = fill.owner.and_then(|owner| self.slots.iter().position(|s| s.id == owner));
                if let Some(index) = owner {
                    let market = self.market.lock();
                    let fee_in = FeeIn::of(&fill.fee_asset, market.instrument(fill.instrument));
                    let stats = &mut self.slots[index].stats;
                    stats.positions.entry(fill.instrument).or_default().add_fill(fill.side, fill.price, fill.qty, fill.fee, fee_in);
                    stats.fills += 1;
                }
                for slot in &mut self.slots {
                    let own = fill.owner == Some(slot.id);
                    if slot.status == SlotStatus::Running && (own || slot.subscriptions.account_fills.contains(&fill.instrument)) {
                        slot.pending.push(Event::Fill(fill.clone()));
                    }
                }
            }
            VenueEvent::Order(mut update) => {
                let Some(slot) = self.slots.iter_mut().find(|s| Some(s.id) == update.owner) else { return };
                // A cancel the host made at a halt says so: the strategy learns of its halt
                // from the first event about its orders.
                let halted = if update.status.is_final() { self.halt_cancels.remove(&(slot.id, update.client_order_id.clone())) } else { None };
                if let Some(why) = halted {
                    update.reason = Some(match update.reason.take() {
                        Some(venue) => format!("halted: {why} ({venue})"),
                        None => format!("halted: {why}"),
                    });
                }
                match update.status {
                    OrderStatus::Rejected => slot.stats.rejected += 1,
                    OrderStatus::Canceled => slot.stats.canceled += 1,
                    _ => {}
                }
                slot.pending.push(Event::Order(update));
            }
        }
    }

    /// Calls every strategy that has events, routes what they decide, and repeats while
    /// their decisions cause new events, up to [`MAX_ROUNDS`]. A strategy whose events are
    /// all trades held under its quiet bands is not called (see [`super::MAX_HELD`]).
    pub(super) fn deliver(&mut self) {
        self.deliver_releasing(false);
    }

    /// As [`Engine::deliver`], with `release` calling the strategies with their held trades
    /// too: before their state is taken (a checkpoint, a snapshot) and at the end of the
    /// market data, so no trade is left behind.
    pub(super) fn deliver_releasing(&mut self, release: bool) {
        let now = self.clock.now_ms();
        for _ in 0..MAX_ROUNDS {
            let mut any = false;
            for index in 0..self.slots.len() {
                if self.slots[index].pending.is_empty() {
                    continue;
                }
                if self.slots[index].status != SlotStatus::Running {
                    // A stopped strategy's events are dropped, not hoarded.
                    self.slots[index].clear_pending();
                    continue;
                }
                if !release && self.slots[index].holding(now) {
                    continue;
                }
                any = true;
                if self.call_strategy(index) {
                    self.collect_venue_events();
                }
            }
            if !any {
                break;
            }
        }
    }

    /// Calls the strategy with its queued events and routes what it decides. True when it
    /// decided something, so the venues may have news: a call that decides nothing cannot
    /// have changed them (its imports only read), and their events are not collected again
    /// for it.
    pub(super) fn call_strategy(&mut self, index: usize) -> bool {
        let now = self.clock.now_ms();
        let slot = &mut self.slots[index];
        let events = std::mem::take(&mut slot.pending);
        let held_ends = std::mem::take(&mut slot.held_ends);
        slot.release_held();
        if let Some(probation) = slot.probation.as_mut() {
            if Instant::now() >= probation.until || probation.events.len() + events.len() > PROBATION_EVENTS {
                tracing::info!(strategy = %slot.name, version = %slot.hash, "hot swap probation over: the new version is kept");
                slot.probation = None;
            } else {
                probation.events.extend(events.iter().cloned());
            }
        }
        let Some(instance) = slot.instance.as_mut() else { return false };
        slot.stats.events += events.len() as u64;
        slot.stats.calls += 1;
        let called = Instant::now();
        let result = instance.on_events(&events, &held_ends);
        slot.call_latency.observe(called.elapsed().as_secs_f64());
        slot.stats.log_dropped += instance.take_log_dropped();
        let actions = match result {
            Ok(actions) => actions,
            Err(trap) => {
                // A failure collects the cancels' events itself.
                self.fail(index, trap);
                return false;
            }
        };
        // The queue's buffers go back to the slot, so the next batch does not allocate them.
        if slot.pending.is_empty() {
            let mut events = events;
            events.clear();
            slot.pending = events;
        }
        if slot.held_ends.is_empty() {
            let mut held_ends = held_ends;
            held_ends.clear();
            slot.held_ends = held_ends;
        }
        if actions.is_empty() {
            // Most calls decide nothing: the market's lock is not taken for them.
            return false;
        }
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
                Ok(Action::Cancel { instrument, client_order_id }) => {
                    let open = self.router.is_open(&market, owner, instrument, &client_order_id);
                    // A refused cancel leaves the order open: the strategy sees it fill or
                    // end as usual, and may cancel again once under its rate.
                    match self.router.risk_mut().cancels(owner, usize::from(open), now) {
                        Ok(()) => self.router.cancel(&mut market, owner, instrument, &client_order_id, now),
                        Err(reason) => {
                            slot.stats.refused += 1;
                            tracing::warn!(strategy = %slot.name, client_order_id = %shown(&client_order_id, 40), "cancel refused: {reason}");
                        }
                    }
                }
                Ok(Action::CancelAll(instrument)) => {
                    let count = self.router.open_ids(owner, instrument).len();
                    match self.router.risk_mut().cancels(owner, count, now) {
                        Ok(()) => self.router.cancel_all(&mut market, owner, instrument, now),
                        Err(reason) => {
                            slot.stats.refused += 1;
                            tracing::warn!(strategy = %slot.name, "cancel-all refused: {reason}");
                        }
                    }
                }
            }
        }
        true
    }

    /// Stops a strategy that trapped, cancels its orders and tells the operator.
    pub(super) fn fail(&mut self, index: usize, trap: GuestTrap) {
        self.slots[index].stats.traps += 1;
        if self.slots[index].probation.as_ref().is_some_and(|p| Instant::now() < p.until) {
            return self.roll_back(index, trap);
        }
        let now = self.clock.now_ms();
        let slot = &mut self.slots[index];
        slot.instance = None;
        slot.clear_pending();
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
}

impl Engine {
    /// A version on probation trapped: its resting orders are cancelled (it may have
    /// placed them on a logic the previous version does not share), and the previous
    /// version takes over from the state it handed over, given every event since the swap
    /// (the trapping batch included) ahead of the cancels' updates. If it cannot start
    /// again, the strategy stops as on any trap.
    fn roll_back(&mut self, index: usize, trap: GuestTrap) {
        let now = self.clock.now_ms();
        let Some(probation) = self.slots[index].probation.take() else { return self.fail(index, trap) };
        let (id, name, from) = (self.slots[index].id, self.slots[index].name.clone(), self.slots[index].hash.clone());
        tracing::error!(strategy = %name, version = %from, "the new version {trap} on probation; rolling back to {}", probation.previous.hash);
        self.slots[index].instance = None;
        self.slots[index].kv.lock().replace(probation.kv);
        let (instance, subscriptions) = match self.start_restored(&self.slots[index], &probation.previous, &probation.snapshot) {
            Ok(started) => started,
            Err(reason) => {
                tracing::error!(strategy = %name, "rollback failed: the previous version could not start again: {reason}");
                return self.fail(index, trap);
            }
        };
        let slot = &mut self.slots[index];
        slot.install(instance, subscriptions, probation.previous);
        slot.clear_pending();
        slot.pending = probation.events;
        self.router.set_permissions(id, &self.slots[index].subscriptions.clone());
        {
            let mut market = self.market.lock();
            self.router.cancel_all(&mut market, id, None, now);
        }
        self.collect_venue_events();
        let to = self.slots[index].hash.clone();
        tracing::warn!(strategy = %name, from = %from, to = %to, "rolled back: the previous version runs again from its handed-over state");
        self.notify(Notice::RolledBack { strategy: name, from, to, reason: trap.to_string() });
    }
}

/// Takes what the venues reported into `events`, and books it where it is booked before
/// any strategy hears of it (the router's orders, the recent-trades tape, the bus), under
/// the market's lock the caller holds: the replay takes it once for its prints and this.
pub(super) fn gather_venue_events(market: &mut crate::market::Market, router: &mut crate::router::Router, bus: &mut Option<crate::bus::Publisher>, events: &mut Vec<VenueEvent>) {
    for venue in market.venues.iter_mut() {
        if let Some(at) = venue.drain_events(events) {
            market.trigger = Some(market.trigger.map_or(at, |earlier| earlier.min(at)));
        }
    }
    for event in events.iter() {
        router.on_venue_event(market, event);
        if let VenueEvent::Trade(trade) = event {
            market.record_trade(trade);
            if let Some(bus) = bus.as_mut() {
                bus.on_trade(trade);
            }
        }
    }
}
