//! `quiet` (contract 0.1.4): the price bands inside which a strategy promised that trades
//! change nothing it decides, so that the engine may hold such trades and hand them over
//! together at its next call. Bounded: at most [`MAX_BANDS`] instruments have a band, and
//! a bound that is not a decimal is a limit breach that traps the guest, as a bad state
//! write does.

use crate::model::{InstrumentId, PublicTrade, QuietBand as Band};
use crate::plugin::bindings::trading::strategy::quiet::Host;
use crate::plugin::bindings::trading::strategy::types::Decimal as WitDecimal;
use crate::plugin::convert::decimal_from_wit;
use crate::plugin::HostState;

/// The most instruments a strategy may hold bands on: more than any strategy trades, few
/// enough that the engine's look-up at each trade stays a short scan.
pub const MAX_BANDS: usize = 64;

/// A strategy instance's bands. They belong to the instance: a new version (a hot swap)
/// starts without any, since the promise was the old version's.
#[derive(Debug, Default)]
pub struct QuietBands(Vec<Band>);

impl QuietBands {
    /// Whether `trade` is inside its instrument's band.
    pub fn holds(&self, trade: &PublicTrade) -> bool {
        self.0.iter().any(|b| b.holds(trade))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Host for HostState {
    fn set(&mut self, instrument: u32, low: Option<WitDecimal>, high: Option<WitDecimal>) -> wasmtime::Result<()> {
        let bound = |d: Option<WitDecimal>, which: &str| {
            d.map(decimal_from_wit).transpose().map_err(|e| wasmtime::Error::msg(format!("quiet.set: the {which} bound of instrument {instrument} is not a decimal: {e}")))
        };
        let (low, high) = (bound(low, "low")?, bound(high, "high")?);
        let instrument = InstrumentId(instrument);
        let bands = &mut self.quiet.0;
        match bands.iter().position(|b| b.instrument == instrument) {
            Some(at) => bands[at] = Band { instrument, low, high },
            None if bands.len() >= MAX_BANDS => wasmtime::bail!("quiet.set: a band on a {}th instrument; the limit is {MAX_BANDS}", MAX_BANDS + 1),
            None => bands.push(Band { instrument, low, high }),
        }
        Ok(())
    }

    fn clear(&mut self, instrument: u32) {
        self.quiet.0.retain(|b| b.instrument.0 != instrument);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Decimal, Side};

    fn trade(instrument: u32, price: Decimal) -> PublicTrade {
        PublicTrade { instrument: InstrumentId(instrument), trade_id: 1, price, qty: Decimal::ONE, aggressor: Side::Buy, ts_ms: 0 }
    }

    /// The bounds themselves are outside the band, a missing bound is no bound, and only
    /// the band's instrument is held.
    #[test]
    fn a_band_holds_strictly_between_its_bounds_on_its_instrument() {
        let bands = QuietBands(vec![
            Band { instrument: InstrumentId(1), low: Some(Decimal::new(100, 0)), high: Some(Decimal::new(200, 0)) },
            Band { instrument: InstrumentId(2), low: None, high: Some(Decimal::new(5, 0)) },
        ]);
        assert!(bands.holds(&trade(1, Decimal::new(15000, 2))));
        assert!(!bands.holds(&trade(1, Decimal::new(100, 0))));
        assert!(!bands.holds(&trade(1, Decimal::new(200, 0))));
        assert!(!bands.holds(&trade(1, Decimal::new(99, 0))));
        assert!(!bands.holds(&trade(3, Decimal::new(150, 0))));
        assert!(bands.holds(&trade(2, Decimal::new(-1_000_000, 0))));
        assert!(!bands.holds(&trade(2, Decimal::new(5, 0))));
        assert!(!QuietBands::default().holds(&trade(1, Decimal::new(150, 0))));
    }
}
