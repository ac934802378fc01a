//! Test guests with a right `strategy` export and an optional export of the right version
//! and the wrong signature, which the host must refuse by name when the strategy starts,
//! not call with bytes it would misread:
//! - `wrong-tape`, built against `trading:strategy@0.1.2`: `tape.on-trades` takes a
//!   `list<u32>`;
//! - `wrong-packed` (this source with its `packed` feature), built against 0.1.3:
//!   `tape` is right and `packed.on-packed` takes a `list<u32>`.
//!
//! Each crate has its own copy of the contract in `wit/`, changed where it says.

#[cfg(not(feature = "packed"))]
wit_bindgen::generate!({ path: "wit", world: "plugin-with-tape" });
#[cfg(feature = "packed")]
wit_bindgen::generate!({ path: "wit", world: "plugin-with-packed" });

use exports::trading::strategy::{standing, strategy, tape};
use trading::strategy::types::{Action, Event, Subscriptions};

struct Wrong;

impl strategy::Guest for Wrong {
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

impl standing::Guest for Wrong {
    fn halted(_reason: String, _reducing_allowed: bool) -> Vec<Action> {
        Vec::new()
    }
    fn resumed() -> Vec<Action> {
        Vec::new()
    }
}

#[cfg(not(feature = "packed"))]
impl tape::Guest for Wrong {
    fn on_trades(_trades: Vec<u32>) -> Vec<Action> {
        Vec::new()
    }
}

#[cfg(feature = "packed")]
impl tape::Guest for Wrong {
    fn on_trades(_trades: Vec<u8>) -> Vec<Action> {
        Vec::new()
    }
}

#[cfg(feature = "packed")]
impl exports::trading::strategy::packed::Guest for Wrong {
    fn on_packed(_events: Vec<u32>) -> Vec<Action> {
        Vec::new()
    }
}

#[cfg(target_arch = "wasm32")]
export!(Wrong);
