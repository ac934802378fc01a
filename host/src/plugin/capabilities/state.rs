//! `state`: a key/value store private to the instance, kept by the host so it survives
//! hot swaps. Bounded: a value over 1 MiB or a store over 16 MiB is a limit breach and
//! traps the guest, as a memory limit would.

use crate::plugin::bindings::trading::strategy::state::Host;
use crate::plugin::HostState;

pub const MAX_VALUE_BYTES: usize = 1 << 20;
pub const MAX_TOTAL_BYTES: usize = 16 << 20;

impl Host for HostState {
    fn get(&mut self, key: String) -> Option<Vec<u8>> {
        self.kv.lock().get(&key).cloned()
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<()> {
        if value.len() > MAX_VALUE_BYTES {
            wasmtime::bail!("state value for {key:?} is {} bytes; the limit is {MAX_VALUE_BYTES}", value.len());
        }
        let mut kv = self.kv.lock();
        let used: usize = kv.iter().filter(|(k, _)| **k != key).map(|(k, v)| k.len() + v.len()).sum();
        if used + key.len() + value.len() > MAX_TOTAL_BYTES {
            wasmtime::bail!("state store would exceed {MAX_TOTAL_BYTES} bytes");
        }
        kv.insert(key, value);
        Ok(())
    }

    fn delete(&mut self, key: String) {
        self.kv.lock().remove(&key);
    }
}
