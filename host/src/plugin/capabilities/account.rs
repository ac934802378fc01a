//! `account`: read-only views of what the account holds (balances, a position) and of the
//! strategy's own open orders. Lists are capped so one call cannot copy unbounded data.

use crate::model::{InstrumentId, VenueId};
use crate::plugin::bindings::trading::strategy::account::{Balance, Host, OpenOrder};
use crate::plugin::{convert, HostState};

/// Entries one call returns at most.
const MAX_ENTRIES: usize = 1000;

impl Host for HostState {
    fn balances(&mut self, venue: u32) -> Vec<Balance> {
        let market = self.market.lock();
        let Some(venue) = market.venues.iter().find(|v| v.id() == VenueId(venue)) else { return Vec::new() };
        match (venue.as_paper(), venue.account()) {
            (Some(paper), _) => paper
                .balances()
                .into_iter()
                .take(MAX_ENTRIES)
                .map(|(asset, b)| Balance { asset, total: convert::decimal_to_wit(b.total), available: Some(convert::decimal_to_wit(b.available())) })
                .collect(),
            (None, Some(account)) => account
                .balances
                .into_iter()
                .take(MAX_ENTRIES)
                .map(|(asset, total)| Balance { asset, total: convert::decimal_to_wit(total), available: None })
                .collect(),
            (None, None) => Vec::new(),
        }
    }

    fn position(&mut self, instrument: u32) -> Option<crate::plugin::bindings::trading::strategy::types::Decimal> {
        let market = self.market.lock();
        let info = market.instrument(InstrumentId(instrument))?;
        let venue = market.venues.iter().find(|v| v.id() == info.venue)?;
        let held = match (venue.as_paper(), venue.account()) {
            // A paper perpetual keeps the position as the base asset's (signed) balance.
            (Some(paper), _) => paper.balances().get(&info.base_asset).map(|b| b.total).unwrap_or_default(),
            (None, Some(account)) => match account.positions.iter().find(|(symbol, _)| *symbol == info.symbol) {
                Some((_, qty)) => *qty,
                None if account.positions.is_empty() => account.balances.iter().find(|(asset, _)| *asset == info.base_asset).map(|(_, q)| *q).unwrap_or_default(),
                // A derivatives account that lists positions, but none in this contract.
                None => Default::default(),
            },
            (None, None) => return None,
        };
        Some(convert::decimal_to_wit(held))
    }

    fn open_orders(&mut self, instrument: Option<u32>) -> Vec<OpenOrder> {
        let open = self.open_orders.lock();
        let mut mine: Vec<OpenOrder> = open
            .iter()
            .filter(|(_, o)| o.owner == self.id && instrument.is_none_or(|i| o.instrument == InstrumentId(i)))
            .take(MAX_ENTRIES)
            .map(|((_, client_order_id), o)| OpenOrder {
                instrument: o.instrument.0,
                client_order_id: client_order_id.clone(),
                side: convert::side_to_wit(o.side),
                price: o.price.map(convert::decimal_to_wit),
                remaining: convert::decimal_to_wit(o.remaining),
            })
            .collect();
        // The map's order is arbitrary; a replay must see the same answer every time.
        mine.sort_by(|a, b| (a.instrument, &a.client_order_id).cmp(&(b.instrument, &b.client_order_id)));
        mine
    }
}
