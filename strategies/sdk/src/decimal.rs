//! Rounding to exchange increments and the minimum checks every order must pass.
//!
//! Exchanges reject a price off the tick or a quantity off the lot step, so a strategy
//! must round before it sends, and the direction matters: a hedge rounded the wrong way
//! either over-hedges or pays more than it meant to.

use rust_decimal::{Decimal, RoundingStrategy};

use crate::types::{InstrumentInfo, Side};

/// Which way to round when a value falls between two allowed values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    /// Towards negative infinity.
    Down,
    /// Towards positive infinity.
    Up,
    /// To the nearest, half away from zero.
    Nearest,
}

impl Rounding {
    /// The direction that never makes a limit price more aggressive than asked: down for
    /// a buy, up for a sell. Use it where paying more than the computed price is worse
    /// than not filling.
    pub fn passive(side: Side) -> Rounding {
        match side {
            Side::Buy => Rounding::Down,
            Side::Sell => Rounding::Up,
        }
    }

    /// The direction that never makes a limit price less aggressive than asked: up for a
    /// buy, down for a sell. Use it where not filling is worse than a tick of price.
    pub fn aggressive(side: Side) -> Rounding {
        match side {
            Side::Buy => Rounding::Up,
            Side::Sell => Rounding::Down,
        }
    }

    fn strategy(self) -> RoundingStrategy {
        match self {
            Rounding::Down => RoundingStrategy::ToNegativeInfinity,
            Rounding::Up => RoundingStrategy::ToPositiveInfinity,
            Rounding::Nearest => RoundingStrategy::MidpointAwayFromZero,
        }
    }
}

/// Rounds to `decimals` places in the given direction.
pub fn round_dp(value: Decimal, decimals: u32, rounding: Rounding) -> Decimal {
    value.round_dp_with_strategy(decimals, rounding.strategy()).normalize()
}

/// Rounds to a multiple of `step` (a tick size or lot size) in the given direction.
/// A zero or negative step leaves the value as it is.
pub fn round_step(value: Decimal, step: Decimal, rounding: Rounding) -> Decimal {
    if step <= Decimal::ZERO {
        return value;
    }
    let units = (value / step).round_dp_with_strategy(0, rounding.strategy());
    (units * step).normalize()
}

/// Why an order would be refused by the exchange's minimums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MinimumError {
    BelowMinQty { qty: Decimal, min_qty: Decimal },
    BelowMinNotional { notional: Decimal, min_notional: Decimal },
}

/// Checks a quantity and price against a minimum quantity and minimum notional.
pub fn check_minimums(qty: Decimal, price: Decimal, min_qty: Decimal, min_notional: Decimal) -> Result<(), MinimumError> {
    if qty < min_qty {
        return Err(MinimumError::BelowMinQty { qty, min_qty });
    }
    let notional = qty * price;
    if notional < min_notional {
        return Err(MinimumError::BelowMinNotional { notional, min_notional });
    }
    Ok(())
}

/// [`check_minimums`] with an instrument's own rules.
pub fn check_instrument_minimums(qty: Decimal, price: Decimal, info: &InstrumentInfo) -> Result<(), MinimumError> {
    check_minimums(qty, price, info.min_qty, info.min_notional)
}

/// Parses a decimal from a params value that may be a JSON string ("0.01") or number.
/// Strings are preferred in configs because they are exact.
pub fn from_json(value: &serde_json::Value) -> Option<Decimal> {
    match value {
        serde_json::Value::String(s) => s.trim().parse().ok(),
        serde_json::Value::Number(n) => n.to_string().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap_or_default()
    }

    #[test]
    fn rounding_directions_to_decimals() {
        assert_eq!(round_dp(d("1.2345"), 2, Rounding::Down), d("1.23"));
        assert_eq!(round_dp(d("1.2345"), 2, Rounding::Up), d("1.24"));
        assert_eq!(round_dp(d("1.235"), 2, Rounding::Nearest), d("1.24"));
        assert_eq!(round_dp(d("-1.2345"), 2, Rounding::Down), d("-1.24"));
        assert_eq!(round_dp(d("-1.2345"), 2, Rounding::Up), d("-1.23"));
        assert_eq!(round_dp(d("5"), 2, Rounding::Up), d("5"));
    }

    #[test]
    fn rounding_to_steps() {
        assert_eq!(round_step(d("100.07"), d("0.05"), Rounding::Down), d("100.05"));
        assert_eq!(round_step(d("100.07"), d("0.05"), Rounding::Up), d("100.10"));
        assert_eq!(round_step(d("0.0149"), d("0.001"), Rounding::Down), d("0.014"));
        assert_eq!(round_step(d("7"), d("0"), Rounding::Down), d("7"));
    }

    #[test]
    fn passive_and_aggressive_by_side() {
        assert_eq!(round_dp(d("9.995"), 2, Rounding::passive(Side::Buy)), d("9.99"));
        assert_eq!(round_dp(d("9.995"), 2, Rounding::passive(Side::Sell)), d("10.00"));
        assert_eq!(round_dp(d("9.995"), 2, Rounding::aggressive(Side::Buy)), d("10.00"));
        assert_eq!(round_dp(d("9.995"), 2, Rounding::aggressive(Side::Sell)), d("9.99"));
    }

    #[test]
    fn minimum_checks() {
        assert_eq!(check_minimums(d("0.001"), d("10000"), d("0.001"), d("5")), Ok(()));
        assert_eq!(
            check_minimums(d("0.0009"), d("10000"), d("0.001"), d("5")),
            Err(MinimumError::BelowMinQty { qty: d("0.0009"), min_qty: d("0.001") })
        );
        assert_eq!(
            check_minimums(d("0.001"), d("4000"), d("0.001"), d("5")),
            Err(MinimumError::BelowMinNotional { notional: d("4"), min_notional: d("5") })
        );
    }

    #[test]
    fn json_values() {
        assert_eq!(from_json(&serde_json::json!("0.10")), Some(d("0.10")));
        assert_eq!(from_json(&serde_json::json!(3)), Some(d("3")));
        assert_eq!(from_json(&serde_json::json!(true)), None);
    }
}
