//! `state`: a key/value store private to the instance, kept by the host so it survives
//! hot swaps and written at every checkpoint. Bounded: a key over 256 bytes, a value over
//! 1 MiB, more than 10,000 keys or a store over 4 MiB is a limit breach and traps the
//! guest, as a memory limit would.

use crate::plugin::bindings::trading::strategy::state::Host;
use crate::plugin::HostState;

pub const MAX_VALUE_BYTES: usize = 1 << 20;
pub const MAX_TOTAL_BYTES: usize = 4 << 20;
pub const MAX_KEY_BYTES: usize = 256;
pub const MAX_KEYS: usize = 10_000;

impl Host for HostState {
    fn get(&mut self, key: String) -> Option<Vec<u8>> {
        self.kv.lock().get(&key).cloned()
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<()> {
        if value.len() > MAX_VALUE_BYTES {
            wasmtime::bail!("state value for {:?} is {} bytes; the limit is {MAX_VALUE_BYTES}", crate::model::shown(&key, 40), value.len());
        }
        if key.len() > MAX_KEY_BYTES {
            wasmtime::bail!("state key {:?} is {} bytes; the limit is {MAX_KEY_BYTES}", crate::model::shown(&key, 40), key.len());
        }
        let mut kv = self.kv.lock();
        if kv.len() >= MAX_KEYS && kv.get(&key).is_none() {
            wasmtime::bail!("state store would hold more than {MAX_KEYS} keys");
        }
        if kv.bytes_with(&key, value.len()) > MAX_TOTAL_BYTES {
            wasmtime::bail!("state store would exceed {MAX_TOTAL_BYTES} bytes");
        }
        kv.insert(key, value);
        Ok(())
    }

    fn delete(&mut self, key: String) {
        self.kv.lock().remove(&key);
    }
}
