//! Checkpoints and resuming from them: what a restart needs to carry on where the last
//! run stopped, orders sent after the last checkpoint included.

use super::{next_good_print, Engine};
use crate::checkpoint::{self, Checkpoint, SlotState};
use crate::model::{OrderRequest, StrategyId};
use crate::router::JournalEntry;
use crate::stats::{RunStats, SlotStatus};
use crate::store::{StateStore, StoreError, Write};
use crate::venue::LiveState;

/// A checkpoint taken and not yet written.
pub(super) struct TakenCheckpoint {
    seq: u64,
    bytes: Vec<u8>,
    /// The journal entries it covers, deleted with its write.
    journalled: u64,
    started: std::time::Instant,
}

impl Engine {
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
    pub(super) fn resume_live(&mut self, store: &mut dyn StateStore, saved: Vec<(u32, LiveState)>) {
        let mut sent: Vec<JournalEntry> = Vec::new();
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
    pub(super) fn restore_live_venues(&mut self, saved: Vec<(u32, LiveState)>, sent: &[JournalEntry]) {
        self.live_restored = true;
        let mut market = self.market.lock();
        for venue in market.venues.iter_mut().filter(|v| !v.is_paper()) {
            let id = venue.id();
            let state = saved.iter().find(|(v, _)| *v == id.0).map(|(_, s)| s.clone()).unwrap_or_default();
            let orders: Vec<(StrategyId, OrderRequest)> = sent.iter().filter(|e| e.venue == id).map(|e| (e.strategy, e.request.clone())).collect();
            venue.restore_live(state, &orders);
        }
    }

    pub(super) fn resume(&mut self, cp: Checkpoint) {
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
            // What was held when the checkpoint was taken comes back as events to deliver:
            // nothing is lost, though the marks of its batches are.
            slot.clear_pending();
            slot.pending = saved.pending;
            slot.instance = None;
            // The risk engine's positions are the statistics' (checkpointed once, here).
            for (instrument, position) in &slot.stats.positions {
                self.router.risk_mut().seed_position(slot.id, *instrument, position.net());
            }
            if let Some(reason) = saved.halted {
                self.router.risk_mut().halt(slot.id, reason);
            }
            let random_position = saved.random_position;
            let (Some(snapshot), SlotStatus::Running) = (saved.snapshot, &slot.status) else { continue };
            let Some(loaded) = self.loaded.get(&slot.component).cloned() else { continue };
            let slot = &self.slots[index];
            let restarted = self.start_restored(slot, &loaded, &snapshot);
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
    pub(super) fn checkpoint(&mut self) {
        let live = self.live_states();
        if let Some(taken) = self.take_checkpoint(live) {
            self.write_checkpoint(taken);
        }
    }

    /// The live venues' states, the part of a checkpoint that the venues' tasks change:
    /// taken at the end of a batch, before they run, so that a report they take in
    /// afterwards is not in it as delivered before the strategies have it.
    pub(super) fn live_states(&self) -> Vec<(u32, LiveState)> {
        let market = self.market.lock();
        market.venues.iter().filter_map(|v| v.live_state().map(|s| (v.id().0, s))).collect()
    }

    /// What a checkpoint holds now, with the live venues' states taken by
    /// [`Engine::live_states`] at the end of the batch, serialized; written by
    /// [`Engine::write_checkpoint`]. Everything else in it changes only on the engine's
    /// thread, between batches, so it may be taken after the venues' tasks have run (and
    /// sent the batch's orders): what they took in meanwhile is not in it, and is found
    /// again after a restart.
    pub(super) fn take_checkpoint(&mut self, live: Vec<(u32, LiveState)>) -> Option<TakenCheckpoint> {
        let started = std::time::Instant::now();
        self.store.as_ref()?;
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
                halted: self.router.risk().halted(slot.id).map(str::to_string),
            });
        }
        let venues = self.market.lock().venues.iter().filter_map(|v| v.as_paper().map(|p| p.save_state())).collect();
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
            Err(error) => {
                tracing::error!("checkpoint not written: {error}");
                return None;
            }
        };
        Some(TakenCheckpoint { seq: cp.seq, bytes, journalled: self.journalled, started })
    }

    pub(super) fn write_checkpoint(&mut self, taken: TakenCheckpoint) {
        let TakenCheckpoint { seq, bytes, journalled, started } = taken;
        let Some(store) = self.store.as_mut() else { return };
        // The checkpoint holds the router's journal: the entries written before it was
        // taken go with it.
        let mut writes = vec![Write::Put(checkpoint::KEY.into(), bytes)];
        writes.extend((1..=journalled).map(|n| Write::Delete(checkpoint::journal_key(n))));
        match store.commit(writes) {
            Ok(()) => {
                self.journalled = 0;
                self.checkpoints = seq;
                self.checkpoint_duration.observe(started.elapsed().as_secs_f64());
                tracing::info!(checkpoint = seq, batches = self.stats.batches, buffered = store.buffered(), buffered_bytes = store.buffered_bytes(), "checkpoint written");
            }
            Err(error) => tracing::error!("checkpoint not written, trading goes on: {error}"),
        }
    }
}
