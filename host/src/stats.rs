//! What a run and each strategy in it have done: the counters the summary prints and a
//! checkpoint carries across a restart. Below the engine, so the checkpoint can save them
//! without knowing the engine.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Decimal, InstrumentId, Side};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SlotStatus {
    Running,
    /// Stopped by a trap; its orders were cancelled.
    Failed(String),
    /// Never started: init refused or could not run.
    Refused(String),
    /// Stopped by the operator (the kill switch); its orders were cancelled.
    Stopped(String),
}

/// What one strategy did, for the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrategyStats {
    pub events: u64,
    pub calls: u64,
    pub placed: u64,
    pub refused: u64,
    pub rejected: u64,
    pub canceled: u64,
    pub fills: u64,
    pub swaps: u64,
    /// Log lines dropped over the strategy's log budget.
    #[serde(default)]
    pub log_dropped: u64,
    /// Calls that trapped (each one stopped the strategy or rolled a hot swap back).
    #[serde(default)]
    pub traps: u64,
    pub positions: BTreeMap<InstrumentId, Position>,
    /// The highest PnL marked so far, from which drawdown is measured (kept only while a
    /// drawdown limit applies).
    #[serde(default)]
    pub peak_pnl: Option<Decimal>,
}

/// Executed volume of one strategy on one instrument.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub bought: Decimal,
    pub sold: Decimal,
    pub buy_notional: Decimal,
    pub sell_notional: Decimal,
    /// Fees paid in the quote asset (or the margin asset of a contract).
    pub fees: Decimal,
    /// Fees paid in the base asset, as a spot venue charges a buyer: less of it is held.
    #[serde(default)]
    pub base_fees: Decimal,
    /// Fees paid in any other asset (a venue's own token), by asset: held apart, since
    /// the runtime has no price for them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other_fees: BTreeMap<String, Decimal>,
}

impl Position {
    /// What is held: bought less sold, less the fees paid in the base asset.
    pub fn net(&self) -> Decimal {
        self.bought.saturating_sub(self.sold).saturating_sub(self.base_fees)
    }

    /// Books one fill of the strategy's orders; its fee by the asset it was paid in.
    /// Saturating: a venue's figures are not trusted to be sane.
    pub fn add_fill(&mut self, side: Side, price: Decimal, qty: Decimal, fee: Decimal, fee_in: FeeIn) {
        let notional = qty.saturating_mul(price);
        match side {
            Side::Buy => {
                self.bought = self.bought.saturating_add(qty);
                self.buy_notional = self.buy_notional.saturating_add(notional);
            }
            Side::Sell => {
                self.sold = self.sold.saturating_add(qty);
                self.sell_notional = self.sell_notional.saturating_add(notional);
            }
        }
        match fee_in {
            FeeIn::Quote => self.fees = self.fees.saturating_add(fee),
            FeeIn::Base => self.base_fees = self.base_fees.saturating_add(fee),
            FeeIn::Other(asset) => {
                let paid = self.other_fees.entry(asset.to_string()).or_default();
                *paid = paid.saturating_add(fee);
            }
        }
    }

    /// Realised and unrealised PnL with the position marked at `mark`, fees paid: what
    /// the summary prints and the loss limits look at. Saturating, on a venue's figures.
    pub fn pnl(&self, mark: Decimal) -> Decimal {
        self.sell_notional.saturating_sub(self.buy_notional).saturating_add(self.net().saturating_mul(mark)).saturating_sub(self.fees)
    }
    /// The price a position is marked at: the last trade, or before any the strategy's own
    /// average fill price there (no gain or loss claimed on a price nobody has printed).
    pub fn mark(&self, last: Option<Decimal>) -> Decimal {
        last.unwrap_or_else(|| self.buy_notional.saturating_add(self.sell_notional).checked_div(self.bought.saturating_add(self.sold)).unwrap_or_default())
    }
}

/// The asset a fee was paid in, relative to the instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeeIn<'a> {
    /// The quote asset, the contract's margin asset, or not said.
    Quote,
    Base,
    Other(&'a str),
}

impl<'a> FeeIn<'a> {
    pub fn of(fee_asset: &'a str, info: Option<&crate::model::InstrumentInfo>) -> FeeIn<'a> {
        match info {
            Some(info) if fee_asset == info.base_asset && fee_asset != info.quote_asset => FeeIn::Base,
            Some(info) if !fee_asset.is_empty() && fee_asset != info.quote_asset => FeeIn::Other(fee_asset),
            _ => FeeIn::Quote,
        }
    }
}

impl StrategyStats {
    /// PnL over every instrument, each marked at [`Position::mark`] of its last trade.
    pub fn pnl(&self, last: impl Fn(InstrumentId) -> Option<Decimal>) -> Decimal {
        self.positions.iter().fold(Decimal::ZERO, |sum, (instrument, p)| sum.saturating_add(p.pnl(p.mark(last(*instrument)))))
    }
}

/// Counters of the whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStats {
    pub prints: u64,
    pub batches: u64,
    pub feed_errors: u64,
    pub first_feed_errors: Vec<String>,
    pub first_ts: Option<i64>,
    pub last_ts: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{InstrumentInfo, VenueId};

    fn d(s: &str) -> Decimal {
        s.parse().unwrap_or_default()
    }

    #[test]
    fn fees_count_by_the_asset_they_were_paid_in() {
        let info = InstrumentInfo {
            id: InstrumentId(0),
            venue: VenueId(0),
            venue_name: "spot".into(),
            symbol: "BTCUSDT".into(),
            base_asset: "BTC".into(),
            quote_asset: "USDT".into(),
            tick_size: d("0.01"),
            lot_size: d("0.001"),
            min_qty: d("0.001"),
            min_notional: d("5"),
            paper: false,
        };
        assert_eq!(FeeIn::of("BTC", Some(&info)), FeeIn::Base);
        assert_eq!(FeeIn::of("USDT", Some(&info)), FeeIn::Quote);
        assert_eq!(FeeIn::of("", Some(&info)), FeeIn::Quote);
        assert_eq!(FeeIn::of("BNB", Some(&info)), FeeIn::Other("BNB"));
        let mut p = Position::default();
        // Bought 1 BTC at 100, the fee 0.001 BTC: 0.999 held.
        p.add_fill(Side::Buy, d("100"), d("1"), d("0.001"), FeeIn::of("BTC", Some(&info)));
        assert_eq!(p.net(), d("0.999"));
        // Marked at 110: 0.999 x 110 - 100 = 9.89; the base fee is valued at the mark.
        assert_eq!(p.pnl(d("110")), d("9.89"));
        // Sold 0.5 at 110, fee 0.055 USDT; a third-asset fee is kept apart, not in PnL.
        p.add_fill(Side::Sell, d("110"), d("0.5"), d("0.055"), FeeIn::Quote);
        p.add_fill(Side::Sell, d("110"), d("0"), d("0.01"), FeeIn::of("BNB", Some(&info)));
        assert_eq!(p.net(), d("0.499"));
        assert_eq!(p.pnl(d("110")), d("55") - d("100") + d("0.499") * d("110") - d("0.055"));
        assert_eq!(p.other_fees.get("BNB"), Some(&d("0.01")));
    }
}

/// A latency histogram with fixed buckets, in seconds, for the Prometheus endpoint:
/// counts per bucket (not cumulative), their sum and count. Observing is a search in a
/// dozen bounds, so it sits on hot paths.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

/// Bounds for calls into strategies and other in-process work: 5 µs to 1 s.
pub const CALL_BUCKETS: &[f64] = &[0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];
/// Bounds for network round trips and message lag: 1 ms to 30 s.
pub const NETWORK_BUCKETS: &[f64] = &[0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram { bounds, counts: vec![0; bounds.len() + 1], sum: 0.0, count: 0 }
    }

    pub fn observe(&mut self, seconds: f64) {
        self.observe_many(seconds, 1);
    }

    /// `n` observations of the same value (a finer histogram folded into this one).
    pub fn observe_many(&mut self, seconds: f64, n: u64) {
        let seconds = if seconds.is_finite() { seconds.max(0.0) } else { 0.0 };
        let bucket = self.bounds.partition_point(|b| *b < seconds);
        if let Some(c) = self.counts.get_mut(bucket) {
            *c = c.saturating_add(n);
        }
        self.sum += seconds * n as f64;
        self.count = self.count.saturating_add(n);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// (upper bound, count in that bucket), the last bound `f64::MAX`, which is how
    /// prometheus-client's encoder knows to print it as `+Inf`.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        self.bounds.iter().copied().chain([f64::MAX]).zip(self.counts.iter().copied()).collect()
    }
}

#[cfg(test)]
mod histogram_tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket_and_odd_values_do_not_panic() {
        let mut h = Histogram::new(&[0.001, 0.01]);
        for s in [0.0005, 0.001, 0.005, 3.0, f64::NAN, -1.0, f64::INFINITY] {
            h.observe(s);
        }
        assert_eq!(h.buckets(), vec![(0.001, 5), (0.01, 1), (f64::MAX, 1)]);
        assert_eq!(h.count(), 7);
    }
}
