//! Changes applied between two batches: hot swaps of a component and config reloads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::start::resolve_grant;
use super::{Control, Engine, Notice, Prepared, Probation};
use crate::config::Config;
use crate::model::{shown, Event};
use crate::plugin::LoadedComponent;
use crate::stats::SlotStatus;

impl Engine {
    /// Waits up to `timeout` for one control message and applies it, then delivers what
    /// it caused; for when no market data is flowing. False when none came.
    pub fn wait_control(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            // A live venue's report ends a wait early: wait again for the rest of the time.
            if let Some(control) = self.inbox.wait(deadline.saturating_duration_since(Instant::now())) {
                self.apply_control(control);
                self.deliver();
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
        }
    }

    pub(super) fn apply_controls(&mut self) {
        while let Some(control) = self.inbox.try_next() {
            self.apply_control(control);
        }
    }

    pub(super) fn apply_control(&mut self, control: Control) {
        match control {
            Control::Swap { component, loaded, prepared } => self.swap(&component, &loaded, prepared),
            Control::Config(config) => self.apply_config(*config),
            Control::SwapFailed { component, reason } => self.notify(Notice::SwapRejected { component, reason }),
            Control::ConfigFailed { reason } => self.notify(Notice::ConfigRejected { reason }),
            Control::Shutdown => self.stopping = true,
            Control::Halt { strategy, reason } => self.halt_by_name(&strategy, reason),
            Control::Resume { strategy } => self.resume_by_name(&strategy),
            Control::Kill { why, account, reply } => {
                self.kill(&why, account);
                if let Some(reply) = reply {
                    let _ = reply.send(serde_json::to_value(&self.killed).unwrap_or_default());
                }
            }
            Control::Stop { strategy, reason } => self.stop_by_name(&strategy, &reason),
            Control::Query { what, reply } => {
                let _ = reply.send(self.answer(&what));
            }
        }
    }

    /// Replaces every instance of `component` with the new version: init it, hand it the
    /// old version's snapshot, and only then switch. Any failure keeps the old version,
    /// with its key/value state as it was (the new one may have written to it). The old
    /// version stays ready for `sandbox.swap_probation_ms`, to take over again should the
    /// new one trap (see [`Engine::roll_back`]).
    pub(super) fn swap(&mut self, component: &str, loaded: &Arc<LoadedComponent>, mut prepared: Vec<Prepared>) {
        let mut matched = false;
        for index in 0..self.slots.len() {
            if self.slots[index].component != component {
                continue;
            }
            matched = true;
            let started = Instant::now();
            let kv_before = self.slots[index].kv.lock().entries().clone();
            let slot = &self.slots[index];
            let ready = prepared.iter().position(|p| p.id == slot.id).map(|at| prepared.swap_remove(at).instance);
            let started_instance = match ready {
                // Made with a copy of the key/value state; from here on it uses the real one.
                Some(Ok(mut instance)) => {
                    instance.set_kv(slot.kv.clone());
                    self.init_instance(slot, instance)
                }
                Some(Err(reason)) => Err(reason),
                None => self.start_instance(slot, loaded),
            };
            let (mut next, subscriptions) = match started_instance {
                Ok(started) => started,
                Err(reason) => {
                    self.slots[index].kv.lock().replace(kv_before);
                    self.reject_swap(index, loaded, reason);
                    continue;
                }
            };
            let slot = &mut self.slots[index];
            let mut handed_over = None;
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
                if let Err(reason) = super::start::restore(&mut next, &state) {
                    self.slots[index].kv.lock().replace(kv_before);
                    self.reject_swap(index, loaded, reason);
                    continue;
                }
                handed_over = Some(state);
            } else {
                tracing::warn!(strategy = %slot.name, "the previous version had stopped; the new version starts from its init state");
            }
            let slot = &mut self.slots[index];
            let previous = slot.install(next, subscriptions, loaded.clone());
            let from = previous.hash.clone();
            let probation = Duration::from_millis(self.config.sandbox.swap_probation_ms);
            slot.probation = match handed_over {
                Some(snapshot) if !probation.is_zero() => Some(Probation { previous, snapshot, kv: kv_before, until: Instant::now() + probation, events: Vec::new() }),
                _ => None,
            };
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

    pub(super) fn reject_swap(&mut self, index: usize, loaded: &LoadedComponent, reason: String) {
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
    pub(super) fn apply_config(&mut self, config: Config) {
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
        // Grants are resolved before anything changes: one that names no instrument refuses
        // the whole change.
        let mut grants = Vec::new();
        for sc in &config.strategies {
            let resolved = resolve_grant(&self.market.lock(), &sc.trade_on);
            match resolved {
                Ok(grant) => grants.push(grant),
                Err(error) => {
                    let reason = format!("config change not applied: strategy {}: {error}; the running config stays in force", sc.name);
                    tracing::warn!("{reason}");
                    return self.notify(Notice::ConfigRejected { reason });
                }
            }
        }
        for (sc, grant) in config.strategies.iter().zip(grants) {
            let Some(id) = self.slots.iter().find(|s| s.name == sc.name.as_str()).map(|s| s.id) else { continue };
            let old = self.config.strategies.iter().find(|s| s.name == sc.name);
            if old.is_some_and(|o| o.risk != sc.risk || o.trade_on != sc.trade_on) {
                tracing::info!(strategy = %sc.name, "risk limits or grant of the strategy updated");
            }
            self.router.risk_mut().set_own(id, sc.risk.clone());
            self.router.risk_mut().set_grant(id, grant);
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
}
