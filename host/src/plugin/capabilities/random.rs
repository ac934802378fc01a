//! `random`: a ChaCha stream seeded per instance from config, so runs reproduce.

use rand::RngCore;

use crate::plugin::bindings::trading::strategy::random::Host;
use crate::plugin::HostState;

impl Host for HostState {
    fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }
}
