//! `clock`: the time of the events being processed, never the wall clock directly, so
//! a replay is deterministic and a strategy cannot tell it from live.

use crate::plugin::bindings::trading::strategy::clock::Host;
use crate::plugin::HostState;

impl Host for HostState {
    fn now_ms(&mut self) -> i64 {
        self.clock.now_ms()
    }
}
