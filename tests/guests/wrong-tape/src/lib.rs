//! Test guest built against `trading:strategy@0.1.2` with a right `strategy` export and an
//! optional `tape` export whose `on-trades` takes a `list<u32>`: the host must refuse it
//! by name when the strategy starts, not call it with bytes it would misread.

wit_bindgen::generate!({ path: "wit", world: "plugin-with-tape" });

use exports::trading::strategy::{standing, strategy, tape};
use trading::strategy::types::{Action, Event, Subscriptions};

struct WrongTape;

impl strategy::Guest for WrongTape {
    fn init(_params: String) -> Result<Subscriptions, String> {
        Ok(Subscriptions { trades: Vec::new(), books: Vec::new(), account_fills: Vec::new(), timer_interval_ms: None, orders_on: Vec::new(), self_trading: false })
    }
    fn on_events(_events: Vec<Event>) -> Vec<Action> {
        Vec::new()
    }
    fn snapshot() -> Vec<u8> {
        Vec::new()
    }
    fn restore(_state: Vec<u8>) -> Result<(), String> {
        Ok(())
    }
}

impl standing::Guest for WrongTape {
    fn halted(_reason: String, _reducing_allowed: bool) -> Vec<Action> {
        Vec::new()
    }
    fn resumed() -> Vec<Action> {
        Vec::new()
    }
}

impl tape::Guest for WrongTape {
    fn on_trades(_trades: Vec<u32>) -> Vec<Action> {
        Vec::new()
    }
}

#[cfg(target_arch = "wasm32")]
export!(WrongTape);
