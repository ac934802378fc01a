//! Binance adapters (spot and USD-M futures), following the venue template: `common/`
//! (signing, enums), `websocket/` (private stream parsing), `test_data/` (payloads copied
//! from Binance's documentation). The REST client and the connections are the next step
//! (issue 5); what is here is what they stand on, tested against the documented examples.

pub mod common;
pub mod websocket;
