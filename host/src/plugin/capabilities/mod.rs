//! The host capabilities strategies import, one module each: log, clock, random, state,
//! market, account and quiet. Each implements the generated `Host` trait of its WIT interface for the
//! store's [`super::HostState`]; `add_to_linker` in the parent wires them all at once.

mod account;
mod clock;
mod log;
pub use log::{LogBudget, SharedLogBudget, MAX_MESSAGE_CHARS};
mod market;
pub mod quiet;
mod random;
mod state;

impl super::bindings::trading::strategy::types::Host for super::HostState {}
