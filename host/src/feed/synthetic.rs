//! A seeded synthetic market: a random walk on the tick grid, reproducible from its seed,
//! for tests and demos that need more data, or another instrument, than was recorded.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{FeedError, MarketDataSource};
use crate::model::{bounds, Decimal, Side};
use crate::venue::paper::MarketPrint;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntheticConfig {
    pub seed: u64,
    pub start_price: Decimal,
    pub tick_size: Decimal,
    /// Largest move of one print, in ticks.
    pub max_step_ticks: u32,
    pub lot_size: Decimal,
    /// Largest print size, in lots.
    pub max_lots: u32,
    pub start_ms: i64,
    pub interval_ms: i64,
    /// How many prints, then the source ends.
    pub count: u64,
}

pub struct Synthetic {
    config: SyntheticConfig,
    rng: ChaCha8Rng,
    price: Decimal,
    emitted: u64,
}

impl Synthetic {
    pub fn new(config: SyntheticConfig) -> Self {
        Synthetic { rng: ChaCha8Rng::seed_from_u64(config.seed), price: config.start_price, emitted: 0, config }
    }
}

impl MarketDataSource for Synthetic {
    fn next_print(&mut self) -> Option<Result<MarketPrint, FeedError>> {
        if self.emitted >= self.config.count {
            return None;
        }
        let c = &self.config;
        let max = c.max_step_ticks as i64;
        let step = self.rng.random_range(-max..=max);
        let next = c.tick_size.checked_mul(Decimal::from(step)).and_then(|d| self.price.checked_add(d));
        // Never walk to zero or below, nor past the host's bound: bounce off them.
        self.price = match next {
            Some(next) if next > Decimal::ZERO && next <= bounds::MAX_PRICE => next,
            Some(next) if next > Decimal::ZERO => self.price,
            _ => c.tick_size,
        };
        let lots = self.rng.random_range(1..=c.max_lots.max(1));
        let aggressor = if self.rng.random_bool(0.5) { Side::Buy } else { Side::Sell };
        // A clock that would overflow ends the series.
        let ts_ms = c.interval_ms.checked_mul(i64::try_from(self.emitted).ok()?).and_then(|d| c.start_ms.checked_add(d))?;
        let print = MarketPrint {
            trade_id: self.emitted + 1,
            price: self.price,
            qty: c.lot_size.checked_mul(Decimal::from(lots)).unwrap_or(c.lot_size),
            aggressor,
            ts_ms,
        };
        self.emitted += 1;
        // A walk configured past the bounds (a lot of 10^12 x many lots, a clock past 2100)
        // says so, print by print, rather than being dropped unseen by the venue.
        if let Err(reason) = print.check() {
            return Some(Err(FeedError::Malformed { path: self.describe(), line: self.emitted as usize, reason }));
        }
        Some(Ok(print))
    }

    fn describe(&self) -> String {
        format!("synthetic walk from {} (seed {})", self.config.start_price, self.config.seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seed: u64) -> SyntheticConfig {
        SyntheticConfig {
            seed,
            start_price: Decimal::from(100),
            tick_size: "0.01".parse().unwrap_or_default(),
            max_step_ticks: 3,
            lot_size: "0.001".parse().unwrap_or_default(),
            max_lots: 10,
            start_ms: 1_000,
            interval_ms: 10,
            count: 50,
        }
    }

    #[test]
    fn same_seed_same_prints_and_on_the_grid() {
        let a: Vec<_> = std::iter::from_fn({ let mut s = Synthetic::new(config(7)); move || s.next_print() }).collect();
        let b: Vec<_> = std::iter::from_fn({ let mut s = Synthetic::new(config(7)); move || s.next_print() }).collect();
        assert_eq!(a.len(), 50);
        assert_eq!(a, b);
        let tick: Decimal = "0.01".parse().unwrap_or_default();
        for print in a.into_iter().flatten() {
            assert!((print.price % tick).is_zero());
            assert!(print.price > Decimal::ZERO);
        }
    }

    #[test]
    fn prints_beyond_the_bounds_are_reported() {
        let mut big = config(1);
        big.lot_size = "1000000000000".parse().unwrap_or_default();
        let first = Synthetic::new(big).next_print();
        assert!(matches!(&first, Some(Err(FeedError::Malformed { reason, .. })) if reason.contains("qty")), "{first:?}");
    }
}
