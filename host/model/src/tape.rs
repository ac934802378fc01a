//! Public trades packed as fixed-size records, for the contract's optional `tape` export
//! (since 0.1.2). Trades are the bulk of what a strategy receives; as a `list<event>` each
//! one crosses the sandbox field by field (a variant, two decimal records, an enum), which
//! profiles put at a third of the cost of a print. Packed, a batch crosses as one copy of
//! bytes. The layout is defined here once, written by the host and read by the SDK, so the
//! two sides cannot drift apart; `wit/strategy.wit` repeats it for other languages.
//!
//! A record is [`TRADE_RECORD_BYTES`] bytes, integers little-endian:
//!
//! | offset | bytes | field |
//! | --- | --- | --- |
//! | 0 | 4 | instrument id |
//! | 4 | 4 | price mantissa, bits 64 to 95 |
//! | 8 | 8 | trade id |
//! | 16 | 8 | ts-ms, signed |
//! | 24 | 8 | price mantissa, bits 0 to 63 |
//! | 32 | 8 | qty mantissa, bits 0 to 63 |
//! | 40 | 4 | qty mantissa, bits 64 to 95 |
//! | 44 | 1 | price scale, 0 to 28 |
//! | 45 | 1 | qty scale, 0 to 28 |
//! | 46 | 1 | flags: bit 0 the price is negative, bit 1 the qty is, bit 2 a held trade that ended its batch (since 0.1.4, see [`mark_held_end`]); the others zero |
//! | 47 | 1 | aggressor: 0 buy, 1 sell |
//!
//! A decimal is ±mantissa / 10^scale, as in the contract's `decimal` record.

use crate::{Decimal, InstrumentId, PublicTrade, Side};

/// The size of one packed trade.
pub const TRADE_RECORD_BYTES: usize = 48;

const PRICE_NEGATIVE: u8 = 1;
const QTY_NEGATIVE: u8 = 2;
const HELD_END: u8 = 4;

/// Marks the record just appended to `out` (by [`pack_trade`], or as the last part of a
/// packed event) as a held trade that ended a batch of its own (contract 0.1.4's `quiet`):
/// the host held it back, and would have called the strategy after it. The reader splits
/// what it reads there, so that a strategy sees the batches it would have seen without
/// the hold. Does nothing when `out` is shorter than a record.
pub fn mark_held_end(out: &mut [u8]) {
    if let Some(start) = out.len().checked_sub(TRADE_RECORD_BYTES) {
        out[start + 46] |= HELD_END;
    }
}

/// Appends `trade` to `out` as one record.
pub fn pack_trade(trade: &PublicTrade, out: &mut Vec<u8>) {
    let (price_lo, price_hi) = mantissa_parts(trade.price);
    let (qty_lo, qty_hi) = mantissa_parts(trade.qty);
    let mut flags = 0;
    if trade.price.is_sign_negative() {
        flags |= PRICE_NEGATIVE;
    }
    if trade.qty.is_sign_negative() {
        flags |= QTY_NEGATIVE;
    }
    let mut record = [0u8; TRADE_RECORD_BYTES];
    record[0..4].copy_from_slice(&trade.instrument.0.to_le_bytes());
    record[4..8].copy_from_slice(&price_hi.to_le_bytes());
    record[8..16].copy_from_slice(&trade.trade_id.to_le_bytes());
    record[16..24].copy_from_slice(&trade.ts_ms.to_le_bytes());
    record[24..32].copy_from_slice(&price_lo.to_le_bytes());
    record[32..40].copy_from_slice(&qty_lo.to_le_bytes());
    record[40..44].copy_from_slice(&qty_hi.to_le_bytes());
    // A Decimal's scale is at most 28, so it fits a byte.
    record[44] = trade.price.scale() as u8;
    record[45] = trade.qty.scale() as u8;
    record[46] = flags;
    record[47] = match trade.aggressor {
        Side::Buy => 0,
        Side::Sell => 1,
    };
    out.extend_from_slice(&record);
}

/// Why packed bytes are not trades: which record, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapeError {
    /// The index of the record at fault; the count of whole records for a ragged length.
    pub record: usize,
    pub what: &'static str,
}

impl std::fmt::Display for TapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "packed trade {}: {}", self.record, self.what)
    }
}

impl std::error::Error for TapeError {}

/// Reads every record of `bytes` into `out`, in order, each as `wrap` makes it (the SDK
/// makes events of them, with no list of trades in between), and pushes to `held_ends`
/// the length of `out` after each record marked as ending a held batch. Nothing is
/// appended unless all of them are valid: a length that is not a whole number of records,
/// a scale above 28, an unknown flag or aggressor is an error naming the record.
pub fn unpack_trades<T>(bytes: &[u8], out: &mut Vec<T>, held_ends: &mut Vec<usize>, wrap: impl Fn(PublicTrade) -> T) -> Result<(), TapeError> {
    if !bytes.chunks_exact(TRADE_RECORD_BYTES).remainder().is_empty() {
        return Err(TapeError { record: bytes.len() / TRADE_RECORD_BYTES, what: "the bytes are not a whole number of records" });
    }
    let (start, ends_start) = (out.len(), held_ends.len());
    out.reserve(bytes.len() / TRADE_RECORD_BYTES);
    for (index, record) in bytes.chunks_exact(TRADE_RECORD_BYTES).enumerate() {
        match unpack_trade_record(record) {
            Ok((trade, held_end)) => {
                out.push(wrap(trade));
                if held_end {
                    held_ends.push(out.len());
                }
            }
            Err(what) => {
                out.truncate(start);
                held_ends.truncate(ends_start);
                return Err(TapeError { record: index, what });
            }
        }
    }
    Ok(())
}

/// One record of exactly [`TRADE_RECORD_BYTES`] bytes (also a trade's body in a packed
/// batch, see [`crate::packed`]), and whether it ends a held batch.
pub(crate) fn unpack_trade_record(r: &[u8]) -> Result<(PublicTrade, bool), &'static str> {
    if r.len() != TRADE_RECORD_BYTES {
        return Err("a trade record is not 48 bytes");
    }
    let flags = r[46];
    if flags & !(PRICE_NEGATIVE | QTY_NEGATIVE | HELD_END) != 0 {
        return Err("unknown flag bits");
    }
    let aggressor = match r[47] {
        0 => Side::Buy,
        1 => Side::Sell,
        _ => return Err("the aggressor is neither 0 (buy) nor 1 (sell)"),
    };
    let price = decimal(u64_at(r, 24), u32_at(r, 4), flags & PRICE_NEGATIVE != 0, r[44]).ok_or("the price's scale is above 28")?;
    let qty = decimal(u64_at(r, 32), u32_at(r, 40), flags & QTY_NEGATIVE != 0, r[45]).ok_or("the qty's scale is above 28")?;
    let trade = PublicTrade { instrument: InstrumentId(u32_at(r, 0)), trade_id: u64_at(r, 8), price, qty, aggressor, ts_ms: u64_at(r, 16) as i64 };
    Ok((trade, flags & HELD_END != 0))
}

pub(crate) fn mantissa_parts(d: Decimal) -> (u64, u32) {
    let mantissa = d.mantissa().unsigned_abs();
    // A Decimal's mantissa has 96 bits: the high part fits a u32.
    (mantissa as u64, (mantissa >> 64) as u32)
}

pub(crate) fn decimal(lo: u64, hi: u32, negative: bool, scale: u8) -> Option<Decimal> {
    (u32::from(scale) <= Decimal::MAX_SCALE).then(|| Decimal::from_parts(lo as u32, (lo >> 32) as u32, hi, negative, u32::from(scale)))
}

fn u32_at(r: &[u8], at: usize) -> u32 {
    let mut bytes = [0u8; 4];
    bytes.copy_from_slice(&r[at..at + 4]);
    u32::from_le_bytes(bytes)
}

fn u64_at(r: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&r[at..at + 8]);
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decimal_strategy() -> impl Strategy<Value = Decimal> {
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<bool>(), 0u32..=28).prop_map(|(lo, mid, hi, negative, scale)| Decimal::from_parts(lo, mid, hi, negative, scale))
    }

    fn trade_strategy() -> impl Strategy<Value = PublicTrade> {
        (any::<u32>(), any::<u64>(), decimal_strategy(), decimal_strategy(), any::<bool>(), any::<i64>()).prop_map(|(instrument, trade_id, price, qty, sell, ts_ms)| PublicTrade {
            instrument: InstrumentId(instrument),
            trade_id,
            price,
            qty,
            aggressor: if sell { Side::Sell } else { Side::Buy },
            ts_ms,
        })
    }

    proptest! {
        /// Every field of every trade survives, scale and sign of the decimals included
        /// (1.50 stays 1.50, not 1.5).
        #[test]
        fn trades_survive_packing(trades in proptest::collection::vec(trade_strategy(), 0..20)) {
            let mut bytes = Vec::new();
            for trade in &trades {
                pack_trade(trade, &mut bytes);
            }
            prop_assert_eq!(bytes.len(), trades.len() * TRADE_RECORD_BYTES);
            let mut back = Vec::new();
            prop_assert_eq!(unpack_trades(&bytes, &mut back, &mut Vec::new(), |t| t), Ok(()));
            prop_assert_eq!(back.len(), trades.len());
            for (a, b) in trades.iter().zip(&back) {
                prop_assert_eq!(a, b);
                prop_assert_eq!(a.price.scale(), b.price.scale());
                prop_assert_eq!(a.qty.scale(), b.qty.scale());
            }
        }

        /// Whatever the bytes, reading them returns trades or an error, never a panic.
        #[test]
        fn any_bytes_are_read_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut out = Vec::new();
            match unpack_trades(&bytes, &mut out, &mut Vec::new(), |t| t) {
                Ok(()) => prop_assert_eq!(out.len(), bytes.len() / TRADE_RECORD_BYTES),
                Err(_) => prop_assert!(out.is_empty()),
            }
        }
    }

    fn one_record() -> Vec<u8> {
        let trade = PublicTrade {
            instrument: InstrumentId(7),
            trade_id: 42,
            price: Decimal::new(960_012, 2),
            qty: Decimal::new(-15, 3),
            aggressor: Side::Sell,
            ts_ms: -1,
        };
        let mut bytes = Vec::new();
        pack_trade(&trade, &mut bytes);
        bytes
    }

    #[test]
    fn the_layout_is_the_documented_one() {
        let bytes = one_record();
        assert_eq!(&bytes[0..4], &7u32.to_le_bytes());
        assert_eq!(&bytes[4..8], &[0, 0, 0, 0]);
        assert_eq!(&bytes[8..16], &42u64.to_le_bytes());
        assert_eq!(&bytes[16..24], &(-1i64).to_le_bytes());
        assert_eq!(&bytes[24..32], &960_012u64.to_le_bytes());
        assert_eq!(&bytes[32..40], &15u64.to_le_bytes());
        assert_eq!(&bytes[40..44], &[0, 0, 0, 0]);
        assert_eq!(bytes[44..48], [2, 3, QTY_NEGATIVE, 1]);
    }

    /// A held trade that ended its batch is read back as the end of a batch, its fields
    /// untouched; a refused record leaves neither trades nor ends behind.
    #[test]
    fn held_batch_ends_are_read_where_they_were_marked() {
        let mut bytes = Vec::new();
        for n in 0..5 {
            bytes.extend(one_record());
            if n == 1 || n == 2 {
                mark_held_end(&mut bytes);
            }
        }
        let (mut out, mut ends) = (Vec::new(), Vec::new());
        assert_eq!(unpack_trades(&bytes, &mut out, &mut ends, |t| t), Ok(()));
        assert_eq!(ends, vec![2, 3]);
        let one = unpack_trade_record(&one_record()).map(|(t, _)| t);
        assert!(out.iter().all(|t| Ok(t) == one.as_ref()));
        bytes[4 * TRADE_RECORD_BYTES + 47] = 9;
        let (mut out, mut ends) = (Vec::new(), Vec::new());
        assert!(unpack_trades(&bytes, &mut out, &mut ends, |t| t).is_err());
        assert!(out.is_empty() && ends.is_empty());
        let mut short = vec![0u8; 10];
        mark_held_end(&mut short);
        assert_eq!(short, vec![0u8; 10]);
    }

    #[test]
    fn bad_records_are_named() {
        let mut out = Vec::new();
        let mut two = one_record();
        two.extend(one_record());
        assert_eq!(unpack_trades(&two[..60], &mut out, &mut Vec::new(), |t| t), Err(TapeError { record: 1, what: "the bytes are not a whole number of records" }));
        let mut bad = two.clone();
        bad[TRADE_RECORD_BYTES + 44] = 29;
        assert_eq!(unpack_trades(&bad, &mut out, &mut Vec::new(), |t| t), Err(TapeError { record: 1, what: "the price's scale is above 28" }));
        let mut bad = two.clone();
        bad[45] = 200;
        assert_eq!(unpack_trades(&bad, &mut out, &mut Vec::new(), |t| t).map_err(|e| e.what), Err("the qty's scale is above 28"));
        let mut bad = two.clone();
        bad[46] = 8;
        assert_eq!(unpack_trades(&bad, &mut out, &mut Vec::new(), |t| t).map_err(|e| e.what), Err("unknown flag bits"));
        let mut bad = two.clone();
        bad[47] = 2;
        assert_eq!(unpack_trades(&bad, &mut out, &mut Vec::new(), |t| t).map_err(|e| e.to_string()), Err("packed trade 0: the aggressor is neither 0 (buy) nor 1 (sell)".to_string()));
        assert!(out.is_empty(), "nothing is kept from refused bytes");
        assert_eq!(unpack_trades(&two, &mut out, &mut Vec::new(), |t| t), Ok(()));
        assert_eq!(out.len(), 2);
    }
}
