//! The guest SDK: everything a strategy author needs, and nothing of the generated code.
//!
//! A strategy implements [`Strategy`] and calls [`export_strategy!`] once. Its logic talks
//! to the runtime only through the [`Host`] it is handed, which is what lets the very same
//! code run inside the sandbox (imports of the WIT world) and natively under
//! [`harness::Harness`] in a plain `cargo test`.
//!
//! Prices and quantities are [`Decimal`]s end to end; [`decimal`] has the rounding and
//! exchange-minimum helpers, [`ids`] the deterministic client order ids.

pub mod decimal;
pub mod harness;
pub mod ids;
pub mod position;
pub mod stats;
mod host;
mod types;

#[doc(hidden)]
pub mod glue;

pub use host::Host;
pub use rust_decimal::Decimal;
pub use rust_decimal;
pub use serde_json;
pub use types::*;

/// The generated bindings of the WIT world. Strategy code should not need them; they are
/// public only for the export macro.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "plugin-with-packed",
        pub_export_macro: true,
        export_macro_name: "export_bindings",
        default_bindings_module: "strategy_sdk::bindings",
    });
}

/// The version of the WIT contract this SDK was generated from.
pub const CONTRACT_VERSION: &str = "0.1.4";

/// A trading strategy. One value of the implementing type is one running instance.
pub trait Strategy: Sized + 'static {
    /// Builds the instance from its params (the `params` table of its config entry, as
    /// JSON) and says what it wants to receive. An `Err` refuses to start, and its text
    /// is shown to the operator.
    fn init(params: &str, host: &mut dyn Host) -> Result<(Self, Subscriptions), String>;

    /// Handles a batch of events, in the order they happened, and returns what to do.
    /// A halt by the host's risk engine or the operator, and its lifting, come here too,
    /// as [`Event::Halted`] and [`Event::Resumed`] each in a batch of its own.
    fn on_events(&mut self, events: &[Event], host: &mut dyn Host) -> Vec<Action>;

    /// Serialises everything the next version needs to carry on (hot swap).
    fn snapshot(&self) -> Vec<u8>;

    /// Takes over the state a previous version's `snapshot` produced. Called after `init`.
    fn restore(&mut self, state: &[u8], host: &mut dyn Host) -> Result<(), String>;
}

/// Exports a [`Strategy`] implementation as the component's `strategy` interface.
///
/// ```ignore
/// struct MyStrategy { /* ... */ }
/// impl strategy_sdk::Strategy for MyStrategy { /* ... */ }
/// strategy_sdk::export_strategy!(MyStrategy);
/// ```
#[macro_export]
macro_rules! export_strategy {
    ($ty:ty) => {
        #[doc(hidden)]
        pub struct __StrategyExport;

        ::std::thread_local! {
            static __STRATEGY_INSTANCE: ::std::cell::RefCell<::std::option::Option<$ty>> =
                const { ::std::cell::RefCell::new(::std::option::Option::None) };
        }

        impl $crate::bindings::exports::trading::strategy::strategy::Guest for __StrategyExport {
            fn init(
                params: ::std::string::String,
            ) -> ::std::result::Result<
                $crate::bindings::trading::strategy::types::Subscriptions,
                ::std::string::String,
            > {
                __STRATEGY_INSTANCE.with(|cell| $crate::glue::init::<$ty>(cell, &params))
            }
            fn on_events(
                events: ::std::vec::Vec<$crate::bindings::trading::strategy::types::Event>,
            ) -> ::std::vec::Vec<$crate::bindings::trading::strategy::types::Action> {
                __STRATEGY_INSTANCE.with(|cell| $crate::glue::on_events::<$ty>(cell, events))
            }
            fn snapshot() -> ::std::vec::Vec<u8> {
                __STRATEGY_INSTANCE.with(|cell| $crate::glue::snapshot::<$ty>(cell))
            }
            fn restore(state: ::std::vec::Vec<u8>) -> ::std::result::Result<(), ::std::string::String> {
                __STRATEGY_INSTANCE.with(|cell| $crate::glue::restore::<$ty>(cell, &state))
            }
        }

        impl $crate::bindings::exports::trading::strategy::standing::Guest for __StrategyExport {
            fn halted(
                reason: ::std::string::String,
                reducing_allowed: bool,
            ) -> ::std::vec::Vec<$crate::bindings::trading::strategy::types::Action> {
                __STRATEGY_INSTANCE.with(|cell| {
                    $crate::glue::on_standing::<$ty>(cell, $crate::Event::Halted($crate::Halt { reason, reducing_allowed }))
                })
            }
            fn resumed() -> ::std::vec::Vec<$crate::bindings::trading::strategy::types::Action> {
                __STRATEGY_INSTANCE.with(|cell| $crate::glue::on_standing::<$ty>(cell, $crate::Event::Resumed))
            }
        }

        impl $crate::bindings::exports::trading::strategy::tape::Guest for __StrategyExport {
            fn on_trades(trades: ::std::vec::Vec<u8>) -> ::std::vec::Vec<$crate::bindings::trading::strategy::types::Action> {
                __STRATEGY_INSTANCE.with(|cell| $crate::glue::on_trades::<$ty>(cell, &trades))
            }
        }

        impl $crate::bindings::exports::trading::strategy::packed::Guest for __StrategyExport {
            fn on_packed(events: ::std::vec::Vec<u8>) -> ::std::vec::Vec<$crate::bindings::trading::strategy::types::Action> {
                __STRATEGY_INSTANCE.with(|cell| $crate::glue::on_packed::<$ty>(cell, &events))
            }
        }

        // Exports exist only in the component; a native build (the test harness) has no
        // use for them, and their names (`trading:strategy/...#init`) are not valid native
        // symbol names for every linker.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::export_bindings!(__StrategyExport with_types_in $crate::bindings);
    };
}
