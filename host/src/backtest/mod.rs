//! Backtest reports: what a paper run did, sampled on the recorded clock, as JSON and as a
//! self-contained HTML page with charts.
//!
//! A [`Recorder`] is asked to look at the engine between batches; at each `interval_ms` of
//! event time it records every strategy's marked PnL, fees and traded volume. At the end,
//! [`Report::build`] turns the samples into equity and drawdown curves and the figures a
//! desk compares runs by (max drawdown, Sharpe and Sortino on the PnL changes of each
//! interval, turnover, fill ratio). Nothing in a report depends on the wall clock or on
//! anything but the input, so the same input gives the same files, byte for byte.

mod html;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::engine::Engine;
use crate::model::{Decimal, OrderType};

/// Samples a run keeps at most; past it the interval doubles and every other sample is
/// dropped, so a long run at a short interval stays bounded.
pub const MAX_SAMPLES: usize = 100_000;
/// Rows of the fills and orders tables (the latest ones; the counts are exact).
pub const TABLE_ROWS: usize = 1_000;

/// The PnL, fees and volume of every strategy at one instant of event time.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    ts_ms: i64,
    /// Per strategy, in slot order.
    values: Vec<Values>,
}

/// One strategy's running figures at a sample.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Values {
    pnl: Decimal,
    fees: Decimal,
    /// Base quantity traded.
    volume: Decimal,
    /// Quote notional traded.
    turnover: Decimal,
}

impl Values {
    fn plus(self, other: Values) -> Values {
        Values {
            pnl: self.pnl.saturating_add(other.pnl),
            fees: self.fees.saturating_add(other.fees),
            volume: self.volume.saturating_add(other.volume),
            turnover: self.turnover.saturating_add(other.turnover),
        }
    }
}

/// (event time ms, values) along a run.
type Series = [(i64, Values)];

/// Looks at the engine between batches and keeps a sample at each interval of event time.
#[derive(Debug)]
pub struct Recorder {
    interval_ms: i64,
    next_ms: Option<i64>,
    samples: Vec<Sample>,
}

impl Recorder {
    /// `interval_ms` of event time between samples (at least 1).
    pub fn new(interval_ms: u64) -> Self {
        Recorder { interval_ms: i64::try_from(interval_ms.max(1)).unwrap_or(i64::MAX), next_ms: None, samples: Vec::new() }
    }

    /// Called after each batch: records a sample for each interval boundary the event
    /// clock passed (the state after the batch that passed it).
    pub fn observe(&mut self, engine: &Engine) {
        let Some(now) = engine.stats.last_ts else { return };
        // The first sample opens the curve at the first event.
        let next = *self.next_ms.get_or_insert(now);
        if now < next {
            return;
        }
        let sample = Sample { ts_ms: now, values: values(engine) };
        // Boundaries passed without a batch in between share this sample's values.
        self.next_ms = Some(now.div_euclid(self.interval_ms).saturating_add(1).saturating_mul(self.interval_ms));
        self.samples.push(sample);
        if self.samples.len() > MAX_SAMPLES {
            self.interval_ms = self.interval_ms.saturating_mul(2);
            let kept: Vec<Sample> = self.samples.iter().step_by(2).cloned().collect();
            self.samples = kept;
        }
    }

    /// The last sample, at the end of the run.
    pub fn finish(&mut self, engine: &Engine) {
        if let Some(now) = engine.stats.last_ts {
            if self.samples.last().map(|s| s.ts_ms) != Some(now) {
                self.samples.push(Sample { ts_ms: now, values: values(engine) });
            }
        }
    }

    pub fn interval_ms(&self) -> i64 {
        self.interval_ms
    }
}

fn values(engine: &Engine) -> Vec<Values> {
    engine
        .slots()
        .iter()
        .map(|slot| {
            let positions = slot.stats.positions.values();
            let (mut fees, mut volume, mut notional) = (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
            for p in positions {
                fees = fees.saturating_add(p.fees);
                volume = volume.saturating_add(p.bought).saturating_add(p.sold);
                notional = notional.saturating_add(p.buy_notional).saturating_add(p.sell_notional);
            }
            Values { pnl: engine.pnl_of(slot), fees, volume, turnover: notional }
        })
        .collect()
}

/// One strategy's (or the total's) figures.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Figures {
    pub name: String,
    /// Marked PnL at the end, fees paid included (quote units).
    pub pnl: Decimal,
    pub fees: Decimal,
    /// Base quantity traded, bought and sold.
    pub volume: Decimal,
    /// Quote notional traded, bought and sold.
    pub turnover: Decimal,
    pub orders: u64,
    pub fills: u64,
    /// Fills per order placed (null with no order).
    pub fill_ratio: Option<f64>,
    /// The largest fall of the equity curve from a peak (quote units, positive).
    pub max_drawdown: Decimal,
    /// Mean over standard deviation of the PnL changes of each interval, annualized by
    /// the square root of intervals a year (null when the changes do not vary).
    pub sharpe: Option<f64>,
    /// As Sharpe, over the downside deviation (changes below zero only).
    pub sortino: Option<f64>,
    /// (event time ms, PnL) at each sample.
    pub equity: Vec<(i64, Decimal)>,
    /// (event time ms, drawdown below the peak so far) at each sample.
    pub drawdown: Vec<(i64, Decimal)>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OrderRow {
    pub strategy: String,
    pub client_order_id: String,
    pub side: String,
    pub price: Option<Decimal>,
    pub qty: Decimal,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FillRow {
    pub strategy: String,
    pub ts_ms: i64,
    pub client_order_id: String,
    pub side: String,
    pub price: Decimal,
    pub qty: Decimal,
    pub fee: Decimal,
    pub fee_asset: String,
}

/// What a backtest produced.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// Event time of the first and last print.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub prints: u64,
    /// Event time between samples, in ms (doubled when the run was long; see `MAX_SAMPLES`).
    pub interval_ms: i64,
    pub strategies: Vec<Figures>,
    pub total: Figures,
    /// The latest orders and fills, at most [`TABLE_ROWS`] each, oldest first.
    pub orders: Vec<OrderRow>,
    pub fills: Vec<FillRow>,
}

impl Report {
    pub fn build(engine: &Engine, recorder: &Recorder) -> Report {
        let slots = engine.slots();
        let periods_per_year = 365.0 * 24.0 * 3600.0 * 1000.0 / recorder.interval_ms as f64;
        let strategies: Vec<Figures> = slots
            .iter()
            .enumerate()
            .map(|(i, slot)| {
                let series: Vec<(i64, Values)> = recorder.samples.iter().filter_map(|s| Some((s.ts_ms, *s.values.get(i)?))).collect();
                figures(&slot.name, &series, slot.stats.placed, slot.stats.fills, periods_per_year)
            })
            .collect();
        let total_series: Vec<(i64, Values)> = recorder.samples.iter().map(|s| (s.ts_ms, s.values.iter().fold(Values::default(), |a, v| a.plus(*v)))).collect();
        let (orders_total, fills_total) = slots.iter().fold((0u64, 0u64), |(o, f), s| (o + s.stats.placed, f + s.stats.fills));
        let total = figures("total", &total_series, orders_total, fills_total, periods_per_year);
        let name = |id: Option<crate::model::StrategyId>| id.and_then(|id| slots.iter().find(|s| s.id == id)).map(|s| s.name.clone()).unwrap_or_default();
        let journal = engine.journal();
        let orders = journal
            .iter()
            .skip(journal.len().saturating_sub(TABLE_ROWS))
            .map(|e| OrderRow {
                strategy: name(Some(e.strategy)),
                client_order_id: e.request.client_order_id.clone(),
                side: format!("{:?}", e.request.side).to_lowercase(),
                price: match e.request.order_type {
                    OrderType::Limit { price, .. } => Some(price),
                    OrderType::Market => None,
                },
                qty: e.request.qty,
            })
            .collect();
        let recent = engine.recent_fills();
        let fills = recent
            .iter()
            .skip(recent.len().saturating_sub(TABLE_ROWS))
            .map(|f| FillRow {
                strategy: name(f.owner),
                ts_ms: f.ts_ms,
                client_order_id: f.client_order_id.clone(),
                side: format!("{:?}", f.side).to_lowercase(),
                price: f.price,
                qty: f.qty,
                fee: f.fee,
                fee_asset: f.fee_asset.clone(),
            })
            .collect();
        Report { from_ms: engine.stats.first_ts, to_ms: engine.stats.last_ts, prints: engine.stats.prints, interval_ms: recorder.interval_ms, strategies, total, orders, fills }
    }

    /// Writes `<dir>/backtest.json` and `<dir>/backtest.html`; returns the HTML's path.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let json = serde_json::to_string(self).map_err(|e| format!("the report as JSON: {e}"))?;
        let json_path = dir.join("backtest.json");
        std::fs::write(&json_path, json + "\n").map_err(|e| format!("{}: {e}", json_path.display()))?;
        let html_path = dir.join("backtest.html");
        std::fs::write(&html_path, html::page(self)).map_err(|e| format!("{}: {e}", html_path.display()))?;
        Ok(html_path)
    }
}

fn figures(name: &str, series: &Series, orders: u64, fills: u64, periods_per_year: f64) -> Figures {
    let last = series.last().map(|(_, v)| *v).unwrap_or_default();
    let mut peak: Option<Decimal> = None;
    let mut max_drawdown = Decimal::ZERO;
    let mut equity = Vec::with_capacity(series.len());
    let mut drawdown = Vec::with_capacity(series.len());
    for (ts, values) in series {
        let pnl = values.pnl;
        let top = peak.map_or(pnl, |p| p.max(pnl));
        peak = Some(top);
        let below = top.saturating_sub(pnl);
        max_drawdown = max_drawdown.max(below);
        equity.push((*ts, pnl));
        drawdown.push((*ts, below));
    }
    let changes: Vec<f64> = series.windows(2).map(|w| f64::try_from(w[1].1.pnl.saturating_sub(w[0].1.pnl)).unwrap_or(0.0)).collect();
    let (sharpe, sortino) = ratios(&changes, periods_per_year);
    Figures {
        name: name.to_string(),
        pnl: last.pnl,
        fees: last.fees,
        volume: last.volume,
        turnover: last.turnover,
        orders,
        fills,
        fill_ratio: (orders > 0).then(|| round6(fills as f64 / orders as f64)),
        max_drawdown,
        sharpe,
        sortino,
        equity,
        drawdown,
    }
}

/// Sharpe and Sortino of per-interval changes, annualized; rounded to 6 places so that
/// the report's text does not depend on the last bits of a float sum.
fn ratios(changes: &[f64], periods_per_year: f64) -> (Option<f64>, Option<f64>) {
    if changes.len() < 2 {
        return (None, None);
    }
    let n = changes.len() as f64;
    let mean = changes.iter().sum::<f64>() / n;
    let variance = changes.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let downside = (changes.iter().map(|c| c.min(0.0).powi(2)).sum::<f64>() / n).sqrt();
    let scale = periods_per_year.sqrt();
    let ratio = |deviation: f64| (deviation > 0.0 && deviation.is_finite()).then(|| round6(mean / deviation * scale)).filter(|r| r.is_finite());
    (ratio(variance.sqrt()), ratio(downside))
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap_or_default()
    }

    #[test]
    fn drawdown_sharpe_and_sortino_by_hand() {
        let pnl = ["0", "10", "5", "15", "12"];
        let series: Vec<(i64, Values)> = pnl.iter().enumerate().map(|(i, p)| (i as i64 * 1000, Values { pnl: d(p), fees: d("1"), volume: d("2"), turnover: d("3") })).collect();
        let f = figures("s", &series, 10, 4, 4.0);
        assert_eq!(f.pnl, d("12"));
        assert_eq!(f.max_drawdown, d("5"), "from 10 down to 5");
        assert_eq!(f.drawdown.iter().map(|(_, v)| *v).collect::<Vec<_>>(), vec![d("0"), d("0"), d("5"), d("0"), d("3")]);
        assert_eq!(f.fill_ratio, Some(0.4));
        // Changes 10, -5, 10, -3: mean 3, sample std sqrt(((7)^2+(-8)^2+7^2+(-6)^2)/3) = sqrt(66),
        // downside sqrt((25+9)/4); annualized by sqrt(4) = 2.
        assert_eq!(f.sharpe, Some(round6(3.0 / 66f64.sqrt() * 2.0)));
        assert_eq!(f.sortino, Some(round6(3.0 / (34f64 / 4.0).sqrt() * 2.0)));
    }

    #[test]
    fn flat_or_short_series_have_no_ratios() {
        assert_eq!(ratios(&[1.0], 1.0), (None, None));
        assert_eq!(ratios(&[2.0, 2.0, 2.0], 1.0), (None, None));
        let f = figures("s", &[], 0, 0, 1.0);
        assert_eq!((f.fill_ratio, f.max_drawdown), (None, Decimal::ZERO));
    }
}
