//! Test guest built against `trading:strategy@0.1.1` with every function of the `strategy`
//! export, `init` and `on-events` of other signatures:
//! the host must say its export does not match the contract, not that it trapped.

wit_bindgen::generate!({ path: "wit", world: "plugin" });

struct Mismatched;

impl exports::trading::strategy::strategy::Guest for Mismatched {
    fn init(params: String) -> Result<String, String> {
        Ok(params)
    }
    fn on_events(events: Vec<u8>) -> Vec<u8> {
        events
    }
    fn snapshot() -> Vec<u8> {
        Vec::new()
    }
    fn restore(_state: Vec<u8>) -> Result<(), String> {
        Ok(())
    }
}

#[cfg(target_arch = "wasm32")]
export!(Mismatched);
