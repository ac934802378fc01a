//! What one strategy instance may take of the host's memory, counted over the whole
//! store: every linear memory and every table of every core instance a component makes.
//!
//! A per-memory limit alone is not a limit: a module may declare forty memories, or a
//! table of hundreds of millions of elements, and each would pass on its own. So the
//! budget is one figure for the sum of all memories, one for the sum of all table
//! elements, and counts of memories, tables and instances that no real strategy needs
//! more of (a componentized guest has one memory and a handful of small shim tables and
//! instances; Python and JavaScript guests a few more).

use wasmtime::ResourceLimiter;

/// Core instances a component may create: the guest, wit-component's shims and adapters.
pub const MAX_INSTANCES: usize = 64;
/// Linear memories in one store (the guest's own, plus an adapter's or two).
pub const MAX_MEMORIES: usize = 4;
/// Tables in one store (function tables of the guest and the shims).
pub const MAX_TABLES: usize = 16;
/// Table elements summed over every table: a pointer each, so 8 MiB at most.
pub const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// A breach of the instance's budget; it traps the call that caused it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LimitBreach(pub String);

/// One summed resource (bytes of memory, table elements) against its budget.
#[derive(Debug)]
struct Tally {
    budget: usize,
    used: usize,
    /// The growth last allowed, taken back if wasmtime then fails to grow.
    pending: usize,
}

impl Tally {
    fn new(budget: usize) -> Self {
        Tally { budget, used: 0, pending: 0 }
    }

    /// Counts a growth from `current` to `desired`; the total it would reach if over budget.
    fn grow(&mut self, current: usize, desired: usize) -> Result<(), usize> {
        let growth = desired.saturating_sub(current);
        let total = self.used.saturating_add(growth);
        if total > self.budget {
            return Err(total);
        }
        self.used = total;
        self.pending = growth;
        Ok(())
    }

    fn undo(&mut self) {
        self.used = self.used.saturating_sub(std::mem::take(&mut self.pending));
    }
}

/// Counts what the store holds against its budget.
#[derive(Debug)]
pub struct SandboxLimiter {
    memory: Tally,
    elements: Tally,
}

impl SandboxLimiter {
    pub fn new(memory_budget: usize) -> Self {
        SandboxLimiter { memory: Tally::new(memory_budget), elements: Tally::new(MAX_TABLE_ELEMENTS) }
    }
}

impl ResourceLimiter for SandboxLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.memory.grow(current, desired).map_err(|total| LimitBreach(format!("memory limit {} MiB: its memories would hold {} MiB", self.memory.budget >> 20, total >> 20)))?;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.memory.undo();
        Ok(())
    }

    fn table_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.elements.grow(current, desired).map_err(|total| LimitBreach(format!("table limit: its tables would hold {total} elements; the limit is {MAX_TABLE_ELEMENTS}")))?;
        Ok(true)
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.elements.undo();
        Ok(())
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use wasmtime::component::{Component, Linker};
    use wasmtime::Store;

    use super::*;
    use crate::plugin::{classify, PluginHost, SandboxLimits, TrapKind};

    const BUDGET: usize = 64 << 20;

    /// Instantiates a component the way the sandbox does: a store limited by the
    /// sandbox's limiter, the call deadline armed before the start functions run.
    fn instantiate(wat: &str) -> Result<(), crate::plugin::GuestTrap> {
        let limits = SandboxLimits { call_timeout: Duration::from_millis(100), memory_bytes: BUDGET };
        let host = PluginHost::new(limits).unwrap_or_else(|e| panic!("{e:#}"));
        let bytes = wat::parse_str(wat).unwrap_or_else(|e| panic!("{e}"));
        let component = Component::new(&host.engine, &bytes).unwrap_or_else(|e| panic!("{e:#}"));
        let mut store = Store::new(&host.engine, SandboxLimiter::new(BUDGET));
        store.limiter(|s| s);
        store.set_epoch_deadline(100);
        Linker::new(&host.engine).instantiate(&mut store, &component).map(|_| ()).map_err(|e| classify(e, limits))
    }

    fn component(core_body: &str) -> String {
        format!("(component (core module $m {core_body}) (core instance (instantiate $m)))")
    }

    #[test]
    fn forty_memories_are_refused() {
        let trap = instantiate(&component(&"(memory 1)".repeat(40))).err().unwrap_or_else(|| panic!("40 memories were allowed"));
        assert!(trap.detail.contains("memor"), "{trap}");
    }

    #[test]
    fn memories_are_limited_in_sum_not_one_by_one() {
        // Three memories of 30 MiB: each under the 64 MiB budget, together over it.
        let trap = instantiate(&component(&"(memory 480)".repeat(3))).err().unwrap_or_else(|| panic!("90 MiB in three memories was allowed"));
        assert_eq!(trap.kind, TrapKind::OutOfMemory, "{trap}");
        assert!(trap.detail.contains("memory limit 64 MiB"), "{trap}");
        assert!(instantiate(&component("(memory 480)")).is_ok(), "one 30 MiB memory is within the budget");
    }

    #[test]
    fn a_huge_table_is_refused() {
        let trap = instantiate(&component("(table 300000000 funcref)")).err().unwrap_or_else(|| panic!("a 300M-element table was allowed"));
        assert!(trap.detail.contains("table limit"), "{trap}");
        let many = "(table 100000 funcref)".repeat(12);
        assert!(instantiate(&component(&many)).is_err(), "1.2M elements over twelve tables");
    }

    #[test]
    fn many_instances_are_refused() {
        let instances: String = (0..MAX_INSTANCES + 1).map(|_| "(core instance (instantiate $m))").collect();
        let wat = format!("(component (core module $m) {instances})");
        assert!(instantiate(&wat).is_err());
    }

    #[test]
    fn a_start_function_runs_under_the_deadline() {
        let trap = instantiate(&component("(func $spin (loop (br 0))) (start $spin)")).err().unwrap_or_else(|| panic!("an endless start function returned"));
        assert_eq!(trap.kind, TrapKind::Timeout, "{trap}");
    }
}
