//! The kill switch: one command that stops every strategy, cancels every resting order of
//! the runtime on every venue and waits for each cancel to be confirmed, writes a
//! checkpoint and ends the run, with a report of what was cancelled and what could not be.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::Engine;
use crate::model::shown;
use crate::stats::SlotStatus;

/// How long the kill switch waits for venues to confirm its cancels.
const CONFIRM_WITHIN: Duration = Duration::from_secs(10);

/// What the kill switch did, for the operator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KillReport {
    /// Strategies it stopped.
    pub stopped: Vec<String>,
    /// Orders whose cancel the venue confirmed (or that ended otherwise meanwhile), as
    /// `strategy/client order id`.
    pub cancelled: Vec<String>,
    /// Orders still open when it gave up waiting.
    pub not_confirmed: Vec<String>,
    /// When asked for: the venues' own cancel-all of the whole account, one line per
    /// live venue and instrument.
    pub account: Vec<String>,
}

impl Engine {
    /// Stops every strategy and cancels everything the runtime has open, then with
    /// `account` (by default `[risk] kill_cancels_account`) every other open order of the
    /// account on the live venues; the run then ends (with a checkpoint, if a store is
    /// attached).
    pub(super) fn kill(&mut self, why: &str, account: Option<bool>) {
        tracing::warn!("KILL SWITCH ({why}): stopping every strategy and cancelling every open order");
        let mut report = KillReport::default();
        let mut targets = Vec::new();
        for slot in &mut self.slots {
            for (_, id) in self.router.open_ids(slot.id, None) {
                targets.push((slot.id, slot.name.clone(), id));
            }
            if slot.status == SlotStatus::Running {
                slot.status = SlotStatus::Stopped(format!("kill switch: {why}"));
                slot.instance = None;
                slot.clear_pending();
                report.stopped.push(slot.name.clone());
            }
        }
        self.cancel_everything();
        let deadline = Instant::now() + CONFIRM_WITHIN;
        let still_open = |engine: &Engine| targets.iter().filter(|(owner, _, id)| engine.router.open_ids(*owner, None).iter().any(|(_, open)| open == id)).count();
        while still_open(self) > 0 && Instant::now() < deadline {
            // Live venues answer over their sockets and wake the engine when they do.
            let _ = self.inbox.wait(Duration::from_millis(100));
            self.collect_venue_events();
        }
        for (owner, name, id) in targets {
            let open = self.router.open_ids(owner, None).iter().any(|(_, o)| *o == id);
            let entry = format!("{name}/{}", shown(&id, 40));
            if open {
                report.not_confirmed.push(entry);
            } else {
                report.cancelled.push(entry);
            }
        }
        // After the runtime's own cancels, so those are confirmed one by one rather than
        // swept up in the venue's cancel-all.
        if account.unwrap_or(self.router.risk().global().kill_cancels_account) {
            let mut market = self.market.lock();
            for venue in market.venues.iter_mut() {
                report.account.extend(venue.cancel_account(CONFIRM_WITHIN));
            }
        }
        if report.not_confirmed.is_empty() {
            tracing::warn!(cancelled = report.cancelled.len(), "kill switch: every open order is cancelled");
        } else {
            tracing::error!(cancelled = report.cancelled.len(), not_confirmed = ?report.not_confirmed, "kill switch: some cancels were not confirmed within {} s; check these orders on the venue", CONFIRM_WITHIN.as_secs());
        }
        self.killed = Some(report);
        self.stopping = true;
    }
}
