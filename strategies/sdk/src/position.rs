//! Average-cost position accounting from fills: position, average entry, realised PnL
//! and fees, in exact decimals.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::types::{Fill, InstrumentInfo, Side};

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

    /// Books a fill with its fee in the asset it was paid in: the quote asset (or none
    /// said) as a fee; the base asset, as a spot buyer pays on Binance and OKX, as that
    /// much less held at the same cost; any other asset (a venue's token) not at all,
    /// since a position has no price for it.
    pub fn apply_fill(&mut self, fill: &Fill, info: &InstrumentInfo) {
        if fill.fee_asset.is_empty() || fill.fee_asset == info.quote_asset {
            return self.apply(fill.side, fill.qty, fill.price, fill.fee);
        }
        self.apply(fill.side, fill.qty, fill.price, Decimal::ZERO);
        if fill.fee_asset == info.base_asset {
            let cost = self.avg_entry * self.qty.abs();
            self.qty -= fill.fee;
            self.avg_entry = if self.qty.is_zero() { Decimal::ZERO } else { cost / self.qty.abs() };
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

    #[test]
    fn a_fee_in_the_base_asset_leaves_less_held_at_the_same_cost() {
        let mut host = crate::harness::TestHost::new();
        let info = host.add_instrument("spot", "BTCUSDT", "BTC", "USDT", d("0.01"), d("0.001"), d("0.001"), d("5"));
        let fill = |side: Side, qty: &str, fee: &str, asset: &str| {
            let crate::types::Event::Fill(mut f) = crate::harness::fill(info.id, "x", crate::types::Whose::Mine, "t", side, d("100"), d(qty), 0) else { unreachable!() };
            f.fee = d(fee);
            f.fee_asset = asset.to_string();
            f
        };
        let mut p = Position::default();
        // Bought 1 at 100, paid 0.001 BTC: 0.999 held for the 100 spent.
        p.apply_fill(&fill(Side::Buy, "1", "0.001", "BTC"), &info);
        assert_eq!((p.qty, p.fees), (d("0.999"), Decimal::ZERO));
        assert_eq!(p.avg_entry * p.qty, d("100"));
        // Sold it all at 100 paying 0.0999 USDT: the base fee shows as the loss it was.
        p.apply_fill(&fill(Side::Sell, "0.999", "0.0999", "USDT"), &info);
        assert_eq!(p.qty, Decimal::ZERO);
        assert_eq!(p.total_pnl(d("100")).round_dp(8), d("-0.1999"));
        // A fee in a venue token is not booked.
        p.apply_fill(&fill(Side::Buy, "1", "0.5", "BNB"), &info);
        assert_eq!((p.qty, p.fees), (d("1"), d("0.0999")));
    }
}
