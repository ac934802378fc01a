//! Rolling statistics in exact decimals: returns, volatility, value at risk and beta.
//!
//! They size and limit risk, so they stay in `Decimal` like the prices they come from;
//! square roots use rust_decimal's own (exact to 28 digits, more than any exchange shows).

use std::collections::VecDeque;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, MathematicalOps};
use serde::{Deserialize, Serialize};

/// The last `capacity` simple returns of a price series.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollingReturns {
    capacity: usize,
    last_price: Option<Decimal>,
    returns: VecDeque<Decimal>,
    #[serde(skip)]
    sorted: Sorted,
}

/// The returns sorted, made at the first quantile read after they changed: a strategy that
/// checks several orders in one decision (a grid's levels against its VaR limit) sorts the
/// window once, not once an order; the sort was most of a fine grid's decision. Not part
/// of the window's value: compared, serialized and cloned without it.
///
/// Reads come far apart in pushes (a fine grid's are mostly more than a window apart:
/// measured, #12), so the copy is sorted afresh rather than kept up to date push by push.
#[derive(Debug, Default)]
struct Sorted(std::cell::RefCell<Option<Vec<Decimal>>>);

impl Clone for Sorted {
    fn clone(&self) -> Self {
        Sorted::default()
    }
}

impl PartialEq for Sorted {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Sorted {}

impl RollingReturns {
    pub fn new(capacity: usize) -> Self {
        RollingReturns { capacity: capacity.max(1), last_price: None, returns: VecDeque::new(), sorted: Sorted::default() }
    }

    /// Adds a price; the return from the previous price joins the window.
    pub fn push(&mut self, price: Decimal) {
        self.push_step(price, self.next_step(price));
    }

    /// Adds a price whose return from this window's last price is already known: two
    /// windows over the same prices (a strategy's volatility and its VaR) divide once
    /// per price between them, not once each. The division is most of a push.
    pub fn push_step(&mut self, price: Decimal, step: Option<Decimal>) {
        if let Some(r) = step {
            *self.sorted.0.get_mut() = None;
            if self.returns.len() == self.capacity {
                self.returns.pop_front();
            }
            self.returns.push_back(r);
        }
        self.last_price = Some(price);
    }

    /// What [`RollingReturns::push`] adds for `price`: its return from the last price.
    pub fn next_step(&self, price: Decimal) -> Option<Decimal> {
        self.last_price.and_then(|prev| simple_return(prev, price))
    }

    pub fn len(&self) -> usize {
        self.returns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.returns.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.returns.len() == self.capacity
    }

    /// How many returns the window keeps.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn returns(&self) -> impl Iterator<Item = &Decimal> {
        self.returns.iter()
    }

    pub fn last_price(&self) -> Option<Decimal> {
        self.last_price
    }

    /// Sample standard deviation of the returns; none with fewer than two.
    pub fn stdev(&self) -> Option<Decimal> {
        stdev(self.returns.iter().copied())
    }

    /// The `q` quantile of the returns, as [`quantile`] reads it.
    pub fn quantile(&self, q: Decimal) -> Option<Decimal> {
        let mut sorted = self.sorted.0.borrow_mut();
        let sorted = sorted.get_or_insert_with(|| sorted_stably(&self.returns));
        nearest_rank(sorted, q)
    }
}

/// `values` in ascending order, equal ones in the order given, as a stable sort leaves them
/// (so a quantile reads the same one of 0.1 and 0.10 either way). Sorted by exact integer
/// keys when every value has one: a decimal's comparison aligns the scales of the two
/// each time, and those comparisons were most of the sort (#12).
fn sorted_stably(values: &VecDeque<Decimal>) -> Vec<Decimal> {
    let keyed: Option<Vec<(i128, usize)>> = values.iter().enumerate().map(|(at, v)| Some((fixed_point(*v)?, at))).collect();
    match keyed {
        Some(mut keyed) => {
            // Equal keys are equal values, ordered by position: stable in the values.
            keyed.sort_unstable();
            keyed.iter().filter_map(|&(_, at)| values.get(at).copied()).collect()
        }
        None => {
            let mut all: Vec<Decimal> = values.iter().copied().collect();
            all.sort();
            all
        }
    }
}

/// `value` in units of 10^-28, exactly, if that fits an i128: any value under about 10^10
/// in size (a return of a million percent), whatever its scale.
fn fixed_point(value: Decimal) -> Option<i128> {
    let widen = 10i128.checked_pow(Decimal::MAX_SCALE.checked_sub(value.scale())?)?;
    value.mantissa().checked_mul(widen)
}

/// The simple return from `prev` to `price`; none from a zero price.
pub fn simple_return(prev: Decimal, price: Decimal) -> Option<Decimal> {
    (!prev.is_zero()).then(|| (price - prev) / prev)
}

pub fn mean(values: impl Iterator<Item = Decimal>) -> Option<Decimal> {
    let (sum, n) = values.fold((Decimal::ZERO, 0u32), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / Decimal::from(n))
}

/// Sample standard deviation (n - 1); none with fewer than two values.
pub fn stdev(values: impl Iterator<Item = Decimal> + Clone) -> Option<Decimal> {
    let n = values.clone().count();
    if n < 2 {
        return None;
    }
    let m = mean(values.clone())?;
    let ss: Decimal = values.map(|v| (v - m) * (v - m)).sum();
    (ss / Decimal::from(n as u64 - 1)).sqrt()
}

/// The `q` quantile (0..=1) by the nearest-rank method on a sorted copy.
pub fn quantile(values: impl Iterator<Item = Decimal>, q: Decimal) -> Option<Decimal> {
    let mut sorted: Vec<Decimal> = values.collect();
    sorted.sort();
    nearest_rank(&sorted, q)
}

/// The `q` quantile of values already sorted, by the nearest-rank method. A rank past
/// what a decimal can hold (a `q` far outside 0..=1) reads as the first.
fn nearest_rank(sorted: &[Decimal], q: Decimal) -> Option<Decimal> {
    if sorted.is_empty() {
        return None;
    }
    let n = Decimal::from(sorted.len() as u64);
    let rank = q.checked_mul(n).map_or(Decimal::ONE, |r| r.ceil().max(Decimal::ONE));
    let index = rank.to_usize().unwrap_or(1).min(sorted.len()) - 1;
    sorted.get(index).copied()
}

/// How value at risk is estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VarMethod {
    /// The loss quantile of the observed returns.
    Historical,
    /// A normal approximation: z · σ.
    Parametric,
}

/// The z-score of a one-sided normal confidence level, for the levels desks use.
pub fn z_score(confidence: Decimal) -> Decimal {
    let c = confidence.round_dp(3);
    let table = [("0.900", "1.2816"), ("0.950", "1.6449"), ("0.975", "1.9600"), ("0.990", "2.3263"), ("0.995", "2.5758"), ("0.999", "3.0902")];
    table
        .iter()
        .rev()
        .find(|(level, _)| c >= level.parse::<Decimal>().unwrap_or(Decimal::ONE))
        .and_then(|(_, z)| z.parse().ok())
        .unwrap_or(Decimal::new(12816, 4))
}

/// One-period value at risk of `exposure` (a notional, signed or not) at `confidence`,
/// as a positive amount in the exposure's currency; none until there are returns.
pub fn value_at_risk(returns: &RollingReturns, exposure: Decimal, confidence: Decimal, method: VarMethod) -> Option<Decimal> {
    let loss_fraction = match method {
        VarMethod::Parametric => returns.stdev()? * z_score(confidence),
        VarMethod::Historical => {
            // A long loses on the low returns, a short on the high ones.
            if exposure >= Decimal::ZERO {
                -returns.quantile(Decimal::ONE - confidence)?
            } else {
                returns.quantile(confidence)?
            }
        }
    };
    Some((loss_fraction.max(Decimal::ZERO)) * exposure.abs())
}

/// Beta of `y` on `x`: cov(x, y) / var(x), over paired returns; none without variance.
pub fn beta(x: &RollingReturns, y: &RollingReturns) -> Option<Decimal> {
    let n = x.len().min(y.len());
    if n < 2 {
        return None;
    }
    let xs: Vec<Decimal> = x.returns().skip(x.len() - n).copied().collect();
    let ys: Vec<Decimal> = y.returns().skip(y.len() - n).copied().collect();
    let mx = mean(xs.iter().copied())?;
    let my = mean(ys.iter().copied())?;
    let cov: Decimal = xs.iter().zip(&ys).map(|(a, b)| (*a - mx) * (*b - my)).sum();
    let var: Decimal = xs.iter().map(|a| (*a - mx) * (*a - mx)).sum();
    (!var.is_zero()).then(|| cov / var)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap_or_default()
    }

    fn series(prices: &[&str], cap: usize) -> RollingReturns {
        let mut r = RollingReturns::new(cap);
        for p in prices {
            r.push(d(p));
        }
        r
    }

    #[test]
    fn returns_roll_and_stdev_is_the_sample_one() {
        let r = series(&["100", "110", "99", "108.9"], 3);
        let got: Vec<Decimal> = r.returns().copied().collect();
        assert_eq!(got, vec![d("0.1"), d("-0.1"), d("0.1")]);
        // mean 1/30, deviations 1/15, -2/15, 1/15: ss = 6/225, /2 = 3/225, sqrt = 0.11547...
        let s = r.stdev().unwrap_or_default();
        assert!((s - d("0.1154700538")).abs() < d("0.0000000001"), "{s}");
        let r = series(&["100", "110", "99", "108.9", "108.9"], 3);
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn a_step_shared_between_windows_is_the_one_each_would_compute() {
        let prices = ["100", "110", "0", "5", "99", "108.9", "108.9", "97"];
        let (mut own, mut shared) = (RollingReturns::new(4), RollingReturns::new(4));
        for p in prices {
            let step = own.next_step(d(p));
            own.push(d(p));
            shared.push_step(d(p), step);
        }
        assert_eq!(own, shared);
        assert_eq!(own, series(&prices, 4));
        // From a zero price there is no return: 0 -> 5 adds none.
        assert_eq!(own.len(), 4);
        assert_eq!(own.returns().copied().collect::<Vec<_>>(), vec![d("18.8"), d("0.1"), d("0"), d("-0.1092745638200183654729109275")]);
    }

    /// The window's quantile, read from its sorted copy, is the free function's over its
    /// returns after every push, read once or many times between pushes; the copy is no
    /// part of the window's value, its snapshot or its clone.
    #[test]
    fn the_windows_quantile_follows_every_push() {
        let mut window = RollingReturns::new(7);
        let mut price = d("100");
        for step in 0..60u32 {
            price += Decimal::from((step * 37 % 11) as i64 - 5) / d("10");
            window.push(price);
            for q in [d("0"), d("0.05"), d("0.5"), d("0.95"), d("1"), d("1000"), Decimal::MAX] {
                let free = quantile(window.returns().copied(), q);
                assert_eq!(window.quantile(q), free, "step {step}, q {q}");
                assert_eq!(window.quantile(q), free, "read again, step {step}, q {q}");
            }
        }
        let read = window.clone();
        assert_eq!(read, window);
        let text = serde_json::to_string(&window).unwrap_or_default();
        assert!(!text.contains("sorted"), "{text}");
        let back: RollingReturns = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((back.quantile(d("0.05")), back), (window.quantile(d("0.05")), window));
    }

    /// Reads after gaps of 0 to 40 pushes, with equal returns written at different
    /// scales: the window's quantile is the free function's, down to the representation
    /// (a stable sort's choice among equals, which the integer keys must keep).
    #[test]
    fn the_windows_quantile_reads_equal_returns_as_a_stable_sort_does() {
        let steps = [d("0.1"), d("0.10"), d("-0.2"), d("0.100"), d("0"), d("-0.20"), d("0.3"), d("0.1000"), d("0.00")];
        let mut window = RollingReturns::new(9);
        let mut pushed = 0usize;
        for gap in (0..=40usize).chain([1, 2, 3]) {
            for _ in 0..gap {
                window.push_step(d("1"), Some(steps[pushed * 5 % steps.len()]));
                pushed += 1;
            }
            for tenth in 0..=10 {
                let q = Decimal::new(tenth, 1);
                let free = quantile(window.returns().copied(), q).map(|v| v.to_string());
                assert_eq!(window.quantile(q).map(|v| v.to_string()), free, "gap {gap}, q {q}");
            }
        }
        assert!(pushed > 800, "the window turned over many times");
    }

    /// Returns too large for an integer key (and the smallest a decimal holds) are sorted
    /// all the same, by the decimals' own order.
    #[test]
    fn returns_past_the_integer_keys_are_sorted_too() {
        let huge = [Decimal::MAX, Decimal::MIN, d("0.0000000000000000000000000001"), d("-1"), d("17000000000.5"), d("-0.0000000000000000000000000001"), d("1.0"), d("1")];
        assert_eq!(fixed_point(Decimal::MAX), None);
        assert_eq!(fixed_point(d("-0.0000000000000000000000000001")), Some(-1));
        let mut window = RollingReturns::new(huge.len());
        for (n, r) in huge.iter().enumerate() {
            window.push_step(d("1"), Some(*r));
            for tenth in 0..=10 {
                let q = Decimal::new(tenth, 1);
                let free = quantile(window.returns().copied(), q).map(|v| v.to_string());
                assert_eq!(window.quantile(q).map(|v| v.to_string()), free, "after {n}, q {q}");
            }
        }
        let sorted: Vec<String> = sorted_stably(&window.returns).iter().map(|v| v.to_string()).collect();
        assert_eq!(sorted.first().map(String::as_str), Some("-79228162514264337593543950335"));
        assert_eq!(sorted.last().map(String::as_str), Some("79228162514264337593543950335"));
        assert_eq!(sorted[4..6], ["1.0".to_string(), "1".to_string()], "equal values in the order pushed");
    }

    #[test]
    fn quantile_by_nearest_rank() {
        let v = [d("5"), d("1"), d("3"), d("2"), d("4")];
        assert_eq!(quantile(v.iter().copied(), d("0.2")), Some(d("1")));
        assert_eq!(quantile(v.iter().copied(), d("0.5")), Some(d("3")));
        assert_eq!(quantile(v.iter().copied(), d("1")), Some(d("5")));
    }

    #[test]
    fn historical_and_parametric_var() {
        // Returns: -0.02, +0.01, -0.01, +0.02, ... 20 of them.
        let mut r = RollingReturns::new(20);
        let mut p = d("100");
        r.push(p);
        for i in 0..20 {
            let ret = [d("-0.02"), d("0.01"), d("-0.01"), d("0.02")][i % 4];
            p += p * ret;
            r.push(p);
        }
        let long = value_at_risk(&r, d("10000"), d("0.95"), VarMethod::Historical).unwrap_or_default();
        assert_eq!(long.round_dp(6), d("200"));
        let short = value_at_risk(&r, d("-10000"), d("0.95"), VarMethod::Historical).unwrap_or_default();
        assert_eq!(short.round_dp(6), d("200"));
        let parametric = value_at_risk(&r, d("10000"), d("0.95"), VarMethod::Parametric).unwrap_or_default();
        let expected = r.stdev().unwrap_or_default() * d("1.6449") * d("10000");
        assert_eq!(parametric, expected);
    }

    #[test]
    fn beta_of_a_scaled_series_is_the_scale() {
        let x = series(&["100", "102", "101", "104", "103"], 10);
        // y moves twice as much in relative terms.
        let mut y = RollingReturns::new(10);
        let mut py = d("50");
        y.push(py);
        for r in x.returns() {
            py += py * *r * d("2");
            y.push(py);
        }
        assert_eq!(beta(&x, &y).map(|b| b.round_dp(10)), Some(d("2")));
        assert_eq!(beta(&x, &series(&["1"], 10)), None);
    }

    #[test]
    fn z_scores() {
        assert_eq!(z_score(d("0.95")), d("1.6449"));
        assert_eq!(z_score(d("0.99")), d("2.3263"));
    }
}
