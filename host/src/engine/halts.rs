//! Halts: each strategy's PnL marked to the last trades after every batch, a halt when it
//! breaches its loss or drawdown limit, and the operator's own halt and resume. A halted
//! strategy keeps running and receiving events; the risk engine lets through only orders
//! that reduce its position (or none, per `halt_allows_reducing`), and its resting orders
//! are cancelled at the halt.

use super::{Engine, Notice};
use crate::model::{Decimal, Event, Halt};
use crate::stats::SlotStatus;

impl Engine {
    /// Marks every running strategy with a loss or drawdown limit and halts the ones that
    /// breach it. An instrument with no public trade yet is marked at the strategy's own
    /// average fill price there.
    pub(super) fn check_losses(&mut self) {
        if !(0..self.slots.len()).any(|index| self.limits_to_mark(index).is_some()) {
            // Nothing to mark: the market's lock is not taken for nothing every batch.
            return;
        }
        let mut breaches = Vec::new();
        {
            let market = self.market.lock();
            for index in 0..self.slots.len() {
                let Some((max_loss, max_drawdown)) = self.limits_to_mark(index) else { continue };
                let stats = &mut self.slots[index].stats;
                let pnl = stats.pnl(|instrument| market.last_price(instrument));
                let peak = stats.peak_pnl.map_or(pnl, |peak| peak.max(pnl)).max(Decimal::ZERO);
                stats.peak_pnl = Some(peak);
                if let Some(limit) = max_loss.filter(|limit| -pnl >= *limit) {
                    breaches.push((index, format!("risk.max_loss {limit} reached: PnL {}", pnl.round_dp(8).normalize())));
                } else if let Some(limit) = max_drawdown.filter(|limit| peak.saturating_sub(pnl) >= *limit) {
                    breaches.push((index, format!("risk.max_drawdown {limit} reached: PnL {} is {} below its peak {}", pnl.round_dp(8).normalize(), peak.saturating_sub(pnl).round_dp(8).normalize(), peak.round_dp(8).normalize())));
                }
            }
        }
        for (index, reason) in breaches {
            self.halt(index, reason);
        }
    }

    /// The loss and drawdown limits of a strategy that is running, not halted, and has at
    /// least one of them: one to mark after the batch.
    fn limits_to_mark(&self, index: usize) -> Option<(Option<Decimal>, Option<Decimal>)> {
        let slot = &self.slots[index];
        if slot.status != SlotStatus::Running || self.router.risk().halted(slot.id).is_some() {
            return None;
        }
        let (max_loss, max_drawdown) = self.router.risk().loss_limits(slot.id);
        (max_loss.is_some() || max_drawdown.is_some()).then_some((max_loss, max_drawdown))
    }

    /// Halts a strategy: no new exposure from now on, its resting orders cancelled.
    pub(super) fn halt(&mut self, index: usize, reason: String) {
        let now = self.clock.now_ms();
        let (id, name) = (self.slots[index].id, self.slots[index].name.clone());
        tracing::warn!(strategy = %name, "strategy halted: {reason}; cancelling its orders, it may only reduce its position until resumed");
        self.router.risk_mut().halt(id, reason.clone());
        // Told before the cancels' updates, which follow it in the same queue. Its snapshot
        // carries what it made of the halt across a swap or a restart.
        let reducing_allowed = self.router.risk().limits(id).halt_allows_reducing;
        self.slots[index].pending.push(Event::Halted(Halt { reason: reason.clone(), reducing_allowed }));
        let open = self.router.open_ids(id, None);
        let cancelling = open.len();
        for (_, client_order_id) in open {
            self.halt_cancels.insert((id, client_order_id), reason.clone());
        }
        {
            let mut market = self.market.lock();
            self.router.cancel_all(&mut market, id, None, now);
        }
        self.halts_unconfirmed.push((id, cancelling, std::time::Instant::now()));
        self.collect_venue_events();
        self.notify(Notice::Halted { strategy: name, reason });
        self.confirm_halts();
    }

    /// Reports each halt once every order it cancelled is confirmed gone (at once on paper,
    /// when the venue answers on a live one), or loudly if that takes over 10 s.
    pub(super) fn confirm_halts(&mut self) {
        let pending = std::mem::take(&mut self.halts_unconfirmed);
        for (id, cancelled, since) in pending {
            let Some(name) = self.slots.iter().find(|s| s.id == id).map(|s| s.name.clone()) else { continue };
            let open = self.router.open_ids(id, None).len();
            if open == 0 {
                tracing::info!(strategy = %name, cancelled, "halt complete: every resting order is confirmed cancelled");
                self.notify(Notice::HaltConfirmed { strategy: name, cancelled });
            } else if since.elapsed() > std::time::Duration::from_secs(10) {
                tracing::error!(strategy = %name, open, "halt: orders still open 10 s after their cancels; check them on the venue");
            } else {
                self.halts_unconfirmed.push((id, cancelled, since));
            }
        }
    }

    /// An operator's halt or resume, by strategy name; an unknown name is logged.
    pub(super) fn halt_by_name(&mut self, strategy: &str, reason: String) {
        match self.slots.iter().position(|s| s.name == strategy) {
            Some(index) => self.halt(index, format!("halted by the operator: {reason}")),
            None => tracing::warn!(strategy, "halt asked for a strategy that is not configured"),
        }
    }

    /// Lifts a halt. Drawdown is measured from the current PnL again: a strategy resumed
    /// below its old peak would otherwise be halted again at once.
    pub(super) fn resume_by_name(&mut self, strategy: &str) {
        let Some(index) = self.slots.iter().position(|s| s.name == strategy) else {
            return tracing::warn!(strategy, "resume asked for a strategy that is not configured");
        };
        let id = self.slots[index].id;
        if !self.router.risk_mut().resume(id) {
            return tracing::info!(strategy, "resume asked for a strategy that is not halted");
        }
        self.slots[index].stats.peak_pnl = None;
        self.slots[index].pending.push(Event::Resumed);
        tracing::info!(strategy, "strategy resumed by the operator");
        self.notify(Notice::Resumed { strategy: strategy.to_string() });
    }

    /// An operator stops one strategy for good (until a restart): it is called no more and
    /// its orders are cancelled; the others keep running.
    pub(super) fn stop_by_name(&mut self, strategy: &str, reason: &str) {
        let Some(index) = self.slots.iter().position(|s| s.name == strategy) else {
            return tracing::warn!(strategy, "stop asked for a strategy that is not configured");
        };
        let now = self.clock.now_ms();
        let slot = &mut self.slots[index];
        slot.status = SlotStatus::Stopped(format!("stopped by the operator: {reason}"));
        slot.instance = None;
        slot.clear_pending();
        let id = slot.id;
        tracing::warn!(strategy, "strategy stopped by the operator ({reason}); cancelling its orders");
        {
            let mut market = self.market.lock();
            self.router.cancel_all(&mut market, id, None, now);
        }
        self.collect_venue_events();
        self.notify(Notice::Stopped { strategy: strategy.to_string(), reason: reason.to_string() });
    }
}
