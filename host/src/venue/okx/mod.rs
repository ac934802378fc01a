//! OKX adapter, following the venue template: `common/` (signing), `websocket/` (the
//! `orders` channel), `test_data/`. The REST client and connections are the next step
//! (issue 5).

pub mod common;
pub mod rest;
pub mod websocket;
