//! A series derived from a recorded one: each print's price scaled by a ratio, plus a
//! bounded seeded random walk of a few ticks, and its size scaled the other way. It gives
//! a correlated second instrument (ETH from BTC, say) when only one was recorded; the
//! correlation is high but not perfect, which is what cross-asset hedging needs to show.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::replay::CsvReplay;
use super::{FeedError, MarketDataSource};
use crate::model::Decimal;
use crate::venue::paper::MarketPrint;

pub struct Derived {
    source: CsvReplay,
    ratio: Decimal,
    tick: Decimal,
    lot: Decimal,
    noise_ticks: i64,
    offset: i64,
    rng: ChaCha8Rng,
}

impl Derived {
    pub fn new(source: CsvReplay, ratio: Decimal, tick: Decimal, lot: Decimal, noise_ticks: u32, seed: u64) -> Self {
        Derived { source, ratio, tick, lot, noise_ticks: noise_ticks as i64, offset: 0, rng: ChaCha8Rng::seed_from_u64(seed) }
    }

    /// The derived print; none when the scaled figures leave the host's bounds.
    fn derive(&mut self, print: MarketPrint) -> Option<MarketPrint> {
        self.offset = (self.offset + self.rng.random_range(-1..=1)).clamp(-self.noise_ticks, self.noise_ticks);
        let scaled = print.price.checked_mul(self.ratio)?.checked_div(self.tick)?.round().checked_mul(self.tick)?;
        let price = scaled.checked_add(self.tick.checked_mul(Decimal::from(self.offset))?)?.max(self.tick);
        let qty = print.qty.checked_div(self.ratio)?.checked_div(self.lot)?.floor().max(Decimal::ONE).checked_mul(self.lot)?;
        let derived = MarketPrint { price, qty, ..print };
        derived.check().ok()?;
        Some(derived)
    }
}

impl MarketDataSource for Derived {
    fn next_print(&mut self) -> Option<Result<MarketPrint, FeedError>> {
        let next = self.source.next_print()?;
        Some(next.and_then(|p| self.derive(p).ok_or_else(|| self.source.malformed(format!("x {} leaves the host's price and quantity bounds", self.ratio)))))
    }

    fn describe(&self) -> String {
        format!("{} x {} with up to {} ticks of noise", self.source.describe(), self.ratio, self.noise_ticks)
    }
}
