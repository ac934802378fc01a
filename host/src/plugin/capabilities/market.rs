//! `market`: read-only views of the host's market state: instrument lookup, the recent
//! tape and the book. Results are capped so one call cannot copy unbounded data.

use crate::model::InstrumentId;
use crate::plugin::bindings::trading::strategy::market::Host;
use crate::plugin::bindings::trading::strategy::types::{BookSnapshot, InstrumentInfo, PublicTrade};
use crate::plugin::{convert, HostState};

const MAX_DEPTH: u32 = 500;

impl Host for HostState {
    fn lookup(&mut self, venue: String, symbol: String) -> Result<InstrumentInfo, String> {
        let market = self.market.lock();
        market
            .lookup(&venue, &symbol)
            .map(convert::instrument_to_wit)
            .ok_or_else(|| format!("no instrument {symbol} on venue {venue} in the runtime's config"))
    }

    fn recent_trades(&mut self, instrument: u32, limit: u32) -> Vec<PublicTrade> {
        let market = self.market.lock();
        market.recent_trades(InstrumentId(instrument), limit as usize).iter().map(convert::trade_to_wit).collect()
    }

    fn book(&mut self, instrument: u32, depth: u32) -> Option<BookSnapshot> {
        let now = self.clock.now_ms();
        let market = self.market.lock();
        market.book(InstrumentId(instrument), depth.min(MAX_DEPTH) as usize, now).as_ref().map(convert::book_to_wit)
    }
}
