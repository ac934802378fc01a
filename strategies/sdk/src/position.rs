//! Average-cost position accounting from fills: position, average entry, realised PnL
//! and fees, in exact decimals.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::types::Side;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Signed quantity: positive long, negative short.
    pub qty: Decimal,
    /// Average entry price of the open quantity; zero when flat.
    pub avg_entry: Decimal,
    pub realized: Decimal,
    pub fees: Decimal,
}

impl Position {
    /// Books one fill. Reducing trades realise PnL against the average entry; a trade
    /// through zero opens the rest at its own price.
    pub fn apply(&mut self, side: Side, qty: Decimal, price: Decimal, fee: Decimal) {
        let signed = side.sign() * qty;
        self.fees += fee;
        let same_direction = self.qty.is_zero() || (self.qty > Decimal::ZERO) == (signed > Decimal::ZERO);
        if same_direction {
            let cost = self.avg_entry * self.qty.abs() + price * qty;
            self.qty += signed;
            self.avg_entry = cost / self.qty.abs();
            return;
        }
        let closing = qty.min(self.qty.abs());
        let direction = if self.qty > Decimal::ZERO { Decimal::ONE } else { Decimal::NEGATIVE_ONE };
        self.realized += (price - self.avg_entry) * closing * direction;
        self.qty += signed;
        if self.qty.is_zero() {
            self.avg_entry = Decimal::ZERO;
        } else if (self.qty > Decimal::ZERO) != (direction > Decimal::ZERO) {
            self.avg_entry = price;
        }
    }

    /// PnL of the open quantity at `mark`.
    pub fn unrealized(&self, mark: Decimal) -> Decimal {
        self.qty * (mark - self.avg_entry)
    }

    /// Realised plus unrealised, less fees.
    pub fn total_pnl(&self, mark: Decimal) -> Decimal {
        self.realized + self.unrealized(mark) - self.fees
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap_or_default()
    }

    #[test]
    fn average_cost_realise_and_flip() {
        let mut p = Position::default();
        p.apply(Side::Buy, d("1"), d("100"), d("0.1"));
        p.apply(Side::Buy, d("1"), d("110"), d("0.1"));
        assert_eq!((p.qty, p.avg_entry), (d("2"), d("105")));
        p.apply(Side::Sell, d("3"), d("120"), d("0.2"));
        assert_eq!(p.realized, d("30"));
        assert_eq!((p.qty, p.avg_entry), (d("-1"), d("120")));
        assert_eq!(p.unrealized(d("110")), d("10"));
        assert_eq!(p.total_pnl(d("110")), d("39.6"));
        p.apply(Side::Buy, d("1"), d("100"), Decimal::ZERO);
        assert_eq!((p.qty, p.avg_entry, p.realized), (Decimal::ZERO, Decimal::ZERO, d("50")));
    }
}
