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

    fn derive(&mut self, print: MarketPrint) -> MarketPrint {
        self.offset = (self.offset + self.rng.random_range(-1..=1)).clamp(-self.noise_ticks, self.noise_ticks);
        let scaled = (print.price * self.ratio / self.tick).round() * self.tick;
        let price = (scaled + self.tick * Decimal::from(self.offset)).max(self.tick);
        let qty = ((print.qty / self.ratio) / self.lot).floor().max(Decimal::ONE) * self.lot;
        MarketPrint { price, qty, ..print }
    }
}

impl MarketDataSource for Derived {
    fn next_print(&mut self) -> Option<Result<MarketPrint, FeedError>> {
        let next = self.source.next_print()?;
        Some(next.map(|p| self.derive(p)))
    }

    fn describe(&self) -> String {
        format!("{} x {} with up to {} ticks of noise", self.source.describe(), self.ratio, self.noise_ticks)
    }
}
