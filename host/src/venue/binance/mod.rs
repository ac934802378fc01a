//! Binance adapters (spot and USD-M futures), following the venue template: `common/`
//! (signing, order parameters), `rest/` (the client and its connections, the
//! [`crate::venue::live::protocol::Exchange`] the live venue drives), `websocket/`
//! (private stream parsing), `test_data/` (payloads copied from Binance's documentation).

pub mod common;
pub mod rest;
pub mod websocket;
