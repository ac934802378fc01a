//! Whole batches of events packed into bytes, for the contract's optional `packed` export
//! (since 0.1.3). As a `list<event>`, a fill crosses the sandbox field by field, each of
//! its three strings a call into the guest's allocator; on the live path that is the
//! largest part of a hedger's call between a maker fill and its hedge. Packed, a batch
//! crosses as one copy. The layout is defined here once, written by the host and read by
//! the SDK, so the two sides cannot drift apart; `wit/strategy.wit` repeats it for other
//! languages.
//!
//! A batch is a sequence of records, each a kind byte and its fields, integers
//! little-endian, with no padding between records:
//!
//! | kind | record |
//! | --- | --- |
//! | 0 trade | the 48-byte trade record of [`crate::tape`] |
//! | 1 book | instrument u32, ts-ms s64, bid count u32, ask count u32, then each level (bids best first, then asks best first) as price and qty |
//! | 2 fill | instrument u32, ts-ms s64, side u8, liquidity u8 (0 maker, 1 taker), own-order u8 (0 or 1), price, qty, fee, client-order-id, trade-id, fee-asset |
//! | 3 order update | instrument u32, ts-ms s64, status u8 (0 accepted, 1 filled, 2 canceled, 3 expired, 4 rejected), filled-qty, remaining-qty, client-order-id, reason present u8 (0 or 1), reason if present |
//! | 4 timer | the scheduled time, s64 |
//! | 5 params | the params' JSON text |
//!
//! A decimal is 16 bytes: mantissa bits 0 to 63 (u64), bits 64 to 95 (u32), scale u8 (0 to
//! 28), negative u8 (0 or 1), two zero bytes; the value is ±mantissa / 10^scale. A string is
//! its length in bytes (u32) and its UTF-8 bytes. Sides are 0 buy, 1 sell.

use crate::tape::{decimal, mantissa_parts, pack_trade, unpack_trade_record, TRADE_RECORD_BYTES};
use crate::{BookLevel, BookSnapshot, Decimal, Event, Fill, InstrumentId, Liquidity, OrderStatus, OrderUpdate, Side, Whose};

const TRADE: u8 = 0;
const BOOK: u8 = 1;
const FILL: u8 = 2;
const ORDER: u8 = 3;
const TIMER: u8 = 4;
const PARAMS: u8 = 5;

/// Appends `event` to `out` as one record, `own` telling whether a fill's order belongs to
/// the strategy being called. Halts and resumes are not events of a batch (the host calls
/// the `standing` export for them): for those nothing is written and false is returned.
pub fn pack_event<O>(event: &Event<O>, own: impl Fn(&O) -> bool, out: &mut Vec<u8>) -> bool {
    match event {
        Event::Trade(trade) => {
            out.push(TRADE);
            pack_trade(trade, out);
        }
        Event::Book(book) => {
            out.push(BOOK);
            out.extend_from_slice(&book.instrument.0.to_le_bytes());
            out.extend_from_slice(&book.ts_ms.to_le_bytes());
            out.extend_from_slice(&count(book.bids.len()).to_le_bytes());
            out.extend_from_slice(&count(book.asks.len()).to_le_bytes());
            for level in book.bids.iter().take(u32::MAX as usize).chain(book.asks.iter().take(u32::MAX as usize)) {
                pack_decimal(level.price, out);
                pack_decimal(level.qty, out);
            }
        }
        Event::Fill(fill) => {
            out.push(FILL);
            out.extend_from_slice(&fill.instrument.0.to_le_bytes());
            out.extend_from_slice(&fill.ts_ms.to_le_bytes());
            out.push(side_byte(fill.side));
            out.push(match fill.liquidity {
                Liquidity::Maker => 0,
                Liquidity::Taker => 1,
            });
            out.push(u8::from(own(&fill.owner)));
            pack_decimal(fill.price, out);
            pack_decimal(fill.qty, out);
            pack_decimal(fill.fee, out);
            pack_str(&fill.client_order_id, out);
            pack_str(&fill.trade_id, out);
            pack_str(&fill.fee_asset, out);
        }
        Event::Order(update) => {
            out.push(ORDER);
            out.extend_from_slice(&update.instrument.0.to_le_bytes());
            out.extend_from_slice(&update.ts_ms.to_le_bytes());
            out.push(match update.status {
                OrderStatus::Accepted => 0,
                OrderStatus::Filled => 1,
                OrderStatus::Canceled => 2,
                OrderStatus::Expired => 3,
                OrderStatus::Rejected => 4,
            });
            pack_decimal(update.filled_qty, out);
            pack_decimal(update.remaining_qty, out);
            pack_str(&update.client_order_id, out);
            match &update.reason {
                Some(reason) => {
                    out.push(1);
                    pack_str(reason, out);
                }
                None => out.push(0),
            }
        }
        Event::Timer(at) => {
            out.push(TIMER);
            out.extend_from_slice(&at.to_le_bytes());
        }
        Event::Params(params) => {
            out.push(PARAMS);
            pack_str(params, out);
        }
        Event::Halted(_) | Event::Resumed => return false,
    }
    true
}

/// Why packed bytes are not a batch: which record, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedError {
    /// The index of the record at fault.
    pub record: usize,
    pub what: &'static str,
}

impl std::fmt::Display for PackedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "packed event {}: {}", self.record, self.what)
    }
}

impl std::error::Error for PackedError {}

/// Reads every record of `bytes` into `out`, in order, as a strategy sees them (an order
/// update is always the reader's own), and pushes to `held_ends` the length of `out` after
/// each trade marked as ending a held batch (see [`crate::tape::mark_held_end`]). Nothing
/// is appended unless all of them are valid: a record cut short, an unknown kind or code, a
/// scale above 28, a string that is not UTF-8 is an error naming the record.
pub fn unpack_events(bytes: &[u8], out: &mut Vec<Event<Whose>>, held_ends: &mut Vec<usize>) -> Result<(), PackedError> {
    let (start, ends_start) = (out.len(), held_ends.len());
    let mut reader = Reader { bytes, at: 0 };
    let mut record = 0;
    while reader.at < bytes.len() {
        match reader.event() {
            Ok((event, held_end)) => {
                out.push(event);
                if held_end {
                    held_ends.push(out.len());
                }
            }
            Err(what) => {
                out.truncate(start);
                held_ends.truncate(ends_start);
                return Err(PackedError { record, what });
            }
        }
        record += 1;
    }
    Ok(())
}

/// A count of levels, which a book of more than four billion would overflow: such a book
/// is cut to the first u32::MAX of each side (and could not be allocated anyway).
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn side_byte(side: Side) -> u8 {
    match side {
        Side::Buy => 0,
        Side::Sell => 1,
    }
}

fn pack_decimal(d: Decimal, out: &mut Vec<u8>) {
    let (lo, hi) = mantissa_parts(d);
    out.extend_from_slice(&lo.to_le_bytes());
    out.extend_from_slice(&hi.to_le_bytes());
    // A Decimal's scale is at most 28, so it fits a byte.
    out.extend_from_slice(&[d.scale() as u8, u8::from(d.is_sign_negative()), 0, 0]);
}

fn pack_str(s: &str, out: &mut Vec<u8>) {
    // The host's strings are bounded where they enter, far below 4 GiB; one that were not
    // would be cut, and the reader would refuse it if the cut split a character.
    let len = count(s.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&s.as_bytes()[..len as usize]);
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        let end = self.at.checked_add(n).filter(|end| *end <= self.bytes.len()).ok_or("the record is cut short")?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, &'static str> {
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(bytes))
    }

    fn u64(&mut self) -> Result<u64, &'static str> {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(bytes))
    }

    fn i64(&mut self) -> Result<i64, &'static str> {
        Ok(self.u64()? as i64)
    }

    fn flag(&mut self) -> Result<bool, &'static str> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err("a flag is neither 0 nor 1"),
        }
    }

    fn side(&mut self) -> Result<Side, &'static str> {
        match self.u8()? {
            0 => Ok(Side::Buy),
            1 => Ok(Side::Sell),
            _ => Err("a side is neither 0 (buy) nor 1 (sell)"),
        }
    }

    fn decimal(&mut self) -> Result<Decimal, &'static str> {
        let lo = self.u64()?;
        let hi = self.u32()?;
        let tail = self.take(4)?;
        let read = decimal(lo, hi, tail[1] == 1, tail[0]).ok_or("a decimal's scale is above 28")?;
        if tail[1] > 1 || tail[2] != 0 || tail[3] != 0 {
            return Err("a decimal's sign or padding bytes are not 0 or 1, 0, 0");
        }
        Ok(read)
    }

    fn string(&mut self) -> Result<String, &'static str> {
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map(str::to_string).map_err(|_| "a string is not UTF-8")
    }

    fn levels(&mut self, n: u32) -> Result<Vec<BookLevel>, &'static str> {
        // The count is checked against the bytes left before anything is allocated for it.
        let n = n as usize;
        if !matches!(n.checked_mul(32), Some(size) if size <= self.bytes.len() - self.at) {
            return Err("the record is cut short");
        }
        (0..n).map(|_| Ok(BookLevel { price: self.decimal()?, qty: self.decimal()? })).collect()
    }

    /// The next event, and whether it is a trade that ended a held batch.
    fn event(&mut self) -> Result<(Event<Whose>, bool), &'static str> {
        if self.bytes.get(self.at) == Some(&TRADE) {
            self.at += 1;
            let (trade, held_end) = unpack_trade_record(self.take(TRADE_RECORD_BYTES)?)?;
            return Ok((Event::Trade(trade), held_end));
        }
        Ok((self.other_event()?, false))
    }

    fn other_event(&mut self) -> Result<Event<Whose>, &'static str> {
        Ok(match self.u8()? {
            BOOK => {
                let instrument = InstrumentId(self.u32()?);
                let ts_ms = self.i64()?;
                let (bid_count, ask_count) = (self.u32()?, self.u32()?);
                let bids = self.levels(bid_count)?;
                let asks = self.levels(ask_count)?;
                Event::Book(BookSnapshot { instrument, bids, asks, ts_ms })
            }
            FILL => {
                let instrument = InstrumentId(self.u32()?);
                let ts_ms = self.i64()?;
                let side = self.side()?;
                let liquidity = match self.u8()? {
                    0 => Liquidity::Maker,
                    1 => Liquidity::Taker,
                    _ => return Err("a fill's liquidity is neither 0 (maker) nor 1 (taker)"),
                };
                let owner = if self.flag()? { Whose::Mine } else { Whose::Others };
                let (price, qty, fee) = (self.decimal()?, self.decimal()?, self.decimal()?);
                let (client_order_id, trade_id, fee_asset) = (self.string()?, self.string()?, self.string()?);
                Event::Fill(Fill { instrument, client_order_id, owner, trade_id, side, price, qty, fee, fee_asset, liquidity, ts_ms })
            }
            ORDER => {
                let instrument = InstrumentId(self.u32()?);
                let ts_ms = self.i64()?;
                let status = match self.u8()? {
                    0 => OrderStatus::Accepted,
                    1 => OrderStatus::Filled,
                    2 => OrderStatus::Canceled,
                    3 => OrderStatus::Expired,
                    4 => OrderStatus::Rejected,
                    _ => return Err("an order update's status is not 0 to 4"),
                };
                let (filled_qty, remaining_qty) = (self.decimal()?, self.decimal()?);
                let client_order_id = self.string()?;
                let reason = if self.flag()? { Some(self.string()?) } else { None };
                // The host hands a strategy the updates of its own orders only.
                Event::Order(OrderUpdate { instrument, client_order_id, owner: Whose::Mine, status, filled_qty, remaining_qty, reason, ts_ms })
            }
            TIMER => Event::Timer(self.i64()?),
            PARAMS => Event::Params(self.string()?),
            _ => return Err("an unknown kind of event"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PublicTrade, StrategyId};
    use proptest::prelude::*;

    fn decimal() -> impl Strategy<Value = Decimal> {
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<bool>(), 0u32..=28).prop_map(|(lo, mid, hi, negative, scale)| Decimal::from_parts(lo, mid, hi, negative, scale))
    }

    fn side() -> impl Strategy<Value = Side> {
        any::<bool>().prop_map(|sell| if sell { Side::Sell } else { Side::Buy })
    }

    fn text() -> impl Strategy<Value = String> {
        // Any Unicode, multi-byte characters and the empty string included.
        any::<String>()
    }

    fn level() -> impl Strategy<Value = BookLevel> {
        (decimal(), decimal()).prop_map(|(price, qty)| BookLevel { price, qty })
    }

    /// Events as the host holds them, the owner of a fill or an update a strategy's id (0
    /// is the receiver below), another's, or none.
    fn event() -> impl Strategy<Value = Event> {
        let owner = prop_oneof![Just(None), Just(Some(StrategyId(0))), Just(Some(StrategyId(1)))];
        let status = prop_oneof![Just(OrderStatus::Accepted), Just(OrderStatus::Filled), Just(OrderStatus::Canceled), Just(OrderStatus::Expired), Just(OrderStatus::Rejected)];
        let liquidity = prop_oneof![Just(Liquidity::Maker), Just(Liquidity::Taker)];
        prop_oneof![
            (any::<u32>(), any::<u64>(), decimal(), decimal(), side(), any::<i64>())
                .prop_map(|(i, trade_id, price, qty, aggressor, ts_ms)| Event::Trade(PublicTrade { instrument: InstrumentId(i), trade_id, price, qty, aggressor, ts_ms })),
            (any::<u32>(), proptest::collection::vec(level(), 0..4), proptest::collection::vec(level(), 0..4), any::<i64>())
                .prop_map(|(i, bids, asks, ts_ms)| Event::Book(BookSnapshot { instrument: InstrumentId(i), bids, asks, ts_ms })),
            (any::<u32>(), text(), owner.clone(), text(), side(), decimal(), decimal(), (decimal(), text(), liquidity, any::<i64>())).prop_map(
                |(i, client_order_id, owner, trade_id, side, price, qty, (fee, fee_asset, liquidity, ts_ms))| Event::Fill(Fill {
                    instrument: InstrumentId(i),
                    client_order_id,
                    owner,
                    trade_id,
                    side,
                    price,
                    qty,
                    fee,
                    fee_asset,
                    liquidity,
                    ts_ms
                })
            ),
            (any::<u32>(), text(), owner, status, decimal(), decimal(), proptest::option::of(text()), any::<i64>()).prop_map(
                |(i, client_order_id, owner, status, filled_qty, remaining_qty, reason, ts_ms)| Event::Order(OrderUpdate {
                    instrument: InstrumentId(i),
                    client_order_id,
                    owner,
                    status,
                    filled_qty,
                    remaining_qty,
                    reason,
                    ts_ms
                })
            ),
            any::<i64>().prop_map(Event::Timer),
            text().prop_map(Event::Params),
        ]
    }

    /// What the receiver (strategy 0) must read for `event`.
    fn as_read(event: &Event) -> Event<Whose> {
        let whose = |owner: &Option<StrategyId>| if *owner == Some(StrategyId(0)) { Whose::Mine } else { Whose::Others };
        match event.clone() {
            Event::Trade(t) => Event::Trade(t),
            Event::Book(b) => Event::Book(b),
            Event::Fill(f) => Event::Fill(Fill {
                instrument: f.instrument,
                client_order_id: f.client_order_id,
                owner: whose(&f.owner),
                trade_id: f.trade_id,
                side: f.side,
                price: f.price,
                qty: f.qty,
                fee: f.fee,
                fee_asset: f.fee_asset,
                liquidity: f.liquidity,
                ts_ms: f.ts_ms,
            }),
            Event::Order(o) => Event::Order(OrderUpdate {
                instrument: o.instrument,
                client_order_id: o.client_order_id,
                owner: Whose::Mine,
                status: o.status,
                filled_qty: o.filled_qty,
                remaining_qty: o.remaining_qty,
                reason: o.reason,
                ts_ms: o.ts_ms,
            }),
            Event::Timer(t) => Event::Timer(t),
            Event::Params(p) => Event::Params(p),
            Event::Halted(h) => Event::Halted(h),
            Event::Resumed => Event::Resumed,
        }
    }

    fn scales(event: &Event<Whose>) -> Vec<u32> {
        match event {
            Event::Trade(t) => vec![t.price.scale(), t.qty.scale()],
            Event::Book(b) => b.bids.iter().chain(&b.asks).flat_map(|l| [l.price.scale(), l.qty.scale()]).collect(),
            Event::Fill(f) => vec![f.price.scale(), f.qty.scale(), f.fee.scale()],
            Event::Order(o) => vec![o.filled_qty.scale(), o.remaining_qty.scale()],
            _ => Vec::new(),
        }
    }

    fn pack_all(events: &[Event]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for event in events {
            assert!(pack_event(event, |owner| *owner == Some(StrategyId(0)), &mut bytes));
        }
        bytes
    }

    proptest! {
        /// Every field of every kind of event survives, in order, scales and signs of the
        /// decimals included (1.50 stays 1.50), and whose a fill is as the receiver sees it.
        #[test]
        fn batches_survive_packing(events in proptest::collection::vec(event(), 0..12)) {
            let bytes = pack_all(&events);
            let mut back = Vec::new();
            prop_assert_eq!(unpack_events(&bytes, &mut back, &mut Vec::new()), Ok(()));
            let expected: Vec<Event<Whose>> = events.iter().map(as_read).collect();
            prop_assert_eq!(&back, &expected);
            for (a, b) in back.iter().zip(&expected) {
                prop_assert_eq!(scales(a), scales(b));
            }
        }

        /// Whatever the bytes, reading them returns events or an error, never a panic, and
        /// appends nothing when it fails.
        #[test]
        fn any_bytes_are_read_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut out = vec![Event::Timer(1)];
            if unpack_events(&bytes, &mut out, &mut Vec::new()).is_err() {
                prop_assert_eq!(out, vec![Event::Timer(1)]);
            }
        }

        /// A valid batch cut anywhere short of its end is refused, never read as less.
        #[test]
        fn a_batch_cut_short_is_refused(events in proptest::collection::vec(event(), 1..6), cut in any::<prop::sample::Index>()) {
            let bytes = pack_all(&events);
            let cut = cut.index(bytes.len());
            let mut out = Vec::new();
            let read = unpack_events(&bytes[..cut], &mut out, &mut Vec::new());
            // A cut on a record's boundary is a shorter valid batch; anywhere else, an error.
            prop_assert!(read.is_err() || out.len() < events.len());
        }
    }

    #[test]
    fn halts_and_resumes_are_not_packed() {
        let mut bytes = Vec::new();
        assert!(!pack_event(&Event::<Option<StrategyId>>::Resumed, |_| false, &mut bytes));
        assert!(bytes.is_empty());
    }

    #[test]
    fn faults_are_named_with_their_record() {
        let mut bytes = pack_all(&[Event::Timer(5), Event::Params("{}".into())]);
        let mut out = Vec::new();
        bytes.push(9);
        assert_eq!(unpack_events(&bytes, &mut out, &mut Vec::new()), Err(PackedError { record: 2, what: "an unknown kind of event" }));
        assert!(out.is_empty());
        // A book claiming four billion levels in a few bytes is refused before any allocation.
        let mut book = vec![BOOK];
        book.extend_from_slice(&[0; 12]);
        book.extend_from_slice(&u32::MAX.to_le_bytes());
        book.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(unpack_events(&book, &mut out, &mut Vec::new()), Err(PackedError { record: 0, what: "the record is cut short" }));
        // A string that is not UTF-8.
        let mut params = vec![PARAMS];
        params.extend_from_slice(&2u32.to_le_bytes());
        params.extend_from_slice(&[0xC3, 0x28]);
        assert_eq!(unpack_events(&params, &mut out, &mut Vec::new()), Err(PackedError { record: 0, what: "a string is not UTF-8" }));
    }
}
