//! The strategy runtime host: venues, market data, risk checks and order routing, and
//! the sandbox that runs strategies as WebAssembly components, hot-swappable while the
//! market runs.
//!
//! A newcomer's map: [`model`] holds the domain types; [`plugin`] is the only place that
//! names wasmtime; [`venue`] holds the venue seam and the paper exchange; [`feed`] the
//! market data sources; [`router`] the checks every order passes; [`engine`] the event
//! loop that ties them together (its rooms: start-up, delivery, control, resume);
//! [`checkpoint`] and [`stats`] what a restart carries; [`secrets`] the credentials;
//! [`reload`] watches files for hot swaps.
//!
//! Imports go one way, down: `tests/structure.rs` fails on any two modules that use each
//! other.

pub mod affinity;
pub mod backtest;
pub mod bus;
pub mod checkpoint;
pub mod config;
pub mod control;
pub mod engine;
pub mod feed;
pub mod files;
pub mod market;
/// The domain types, from the `trading-model` crate the SDK and the local exchange share.
pub use trading_model as model;
pub mod plugin;
pub mod reload;
pub mod risk;
pub mod router;
pub mod scaffold;
pub mod secrets;
pub mod stats;
pub mod store;
pub mod summary;
pub mod venue;
