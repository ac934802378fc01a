//! New versions instantiated off the event path. Instantiating a component (its memories
//! reserved, its data segments copied, its start functions run) is most of a hot swap's
//! cost, 0.2 to 0.7 ms measured; the file watcher's thread does it while the engine keeps
//! handling batches, and the engine's pause is left with init and the state hand-over.
//!
//! A prepared instance is given a copy of its strategy's key/value state, so that nothing
//! it does before the swap reaches the version still running; the engine hands it the real
//! one when it takes it over (see `Engine::swap`).

use std::sync::Arc;

use super::Engine;
use crate::market::{EventClock, SharedMarket};
use crate::model::StrategyId;
use crate::plugin::{GuestState, InstanceContext, LoadedComponent, PluginHost, StrategyInstance};
use crate::router::SharedOpenOrders;

/// What it takes to instantiate a new version for every strategy instance, away from the
/// engine. Cheap to clone; the set of strategies is fixed for the life of the engine.
#[derive(Clone)]
pub struct Preparer {
    plugin: PluginHost,
    market: SharedMarket,
    clock: EventClock,
    open_orders: SharedOpenOrders,
    slots: Arc<Vec<PlannedSlot>>,
}

struct PlannedSlot {
    id: StrategyId,
    name: String,
    component: String,
    kv: GuestState,
}

/// A new version instantiated for one strategy instance, not yet initialised; or why it
/// could not be.
pub struct Prepared {
    pub id: StrategyId,
    pub instance: Result<StrategyInstance, String>,
}

/// The seed of a strategy instance's random stream: fixed per instance, so a replay makes
/// the same decisions whichever version runs.
pub(super) fn instance_seed(id: StrategyId) -> u64 {
    0x5EED_0000 + u64::from(id.0)
}

impl Preparer {
    /// Instantiates `loaded` for every strategy instance of `component`.
    pub fn prepare(&self, component: &str, loaded: &LoadedComponent) -> Vec<Prepared> {
        self.slots
            .iter()
            .filter(|slot| slot.component == component)
            .map(|slot| {
                let scratch = GuestState::default();
                scratch.lock().replace(slot.kv.lock().entries().clone());
                let ctx = InstanceContext {
                    id: slot.id,
                    name: slot.name.clone(),
                    market: self.market.clone(),
                    clock: self.clock.clone(),
                    seed: instance_seed(slot.id),
                    kv: scratch,
                    open_orders: self.open_orders.clone(),
                };
                let instance = self.plugin.instantiate(loaded, ctx).map_err(|t| format!("could not instantiate: {t}"));
                Prepared { id: slot.id, instance }
            })
            .collect()
    }
}

impl Engine {
    /// For the file watcher: instantiates new versions on its thread.
    pub fn preparer(&self) -> Preparer {
        let slots = self.slots.iter().map(|s| PlannedSlot { id: s.id, name: s.name.clone(), component: s.component.clone(), kv: s.kv.clone() }).collect();
        Preparer { plugin: self.plugin.clone(), market: self.market.clone(), clock: self.clock.clone(), open_orders: self.router.shared_open_orders(), slots: Arc::new(slots) }
    }
}
