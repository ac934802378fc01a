//! A local order book kept from a snapshot plus diffs, with each venue's sequence rules:
//! a diff that does not follow the last one applied means a gap, and the book is rebuilt
//! from a fresh snapshot rather than trusted.

use std::collections::BTreeMap;

use crate::model::{BookLevel, Decimal};

/// How a venue numbers its diffs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sequencing {
    /// Binance spot: each diff covers ids `U..=u`; the next starts at `u + 1`.
    BinanceSpot,
    /// Binance USD-M: each diff names the previous one's `u` as `pu`.
    BinanceUsdm,
    /// OKX: each update names the previous one's `seqId` as `prevSeqId`.
    Okx,
}

/// One diff: levels with absolute quantities (zero removes the level).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    /// `U` (Binance); unused for OKX.
    pub first: u64,
    /// `u` (Binance) or `seqId` (OKX).
    pub last: u64,
    /// `pu` (USD-M) or `prevSeqId` (OKX).
    pub previous: Option<u64>,
    pub bids: Vec<(Decimal, Decimal)>,
    pub asks: Vec<(Decimal, Decimal)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Applied; the book changed.
    Changed,
    /// Older than the book: ignored, as the venue's procedure says.
    Stale,
    /// Waiting for a snapshot: kept until one arrives.
    Buffered,
}

/// A gap in the sequence: the book must be rebuilt from a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("gap in the book diffs: after update {after}, got {first}..{last}")]
pub struct Gap {
    pub after: u64,
    pub first: u64,
    pub last: u64,
}

#[derive(Debug, Clone)]
pub struct LocalBook {
    sequencing: Sequencing,
    bids: BTreeMap<Decimal, Decimal>,
    asks: BTreeMap<Decimal, Decimal>,
    /// The id of the last snapshot or diff applied; `None` until a snapshot.
    update_id: Option<u64>,
    /// Whether a diff has been applied since the snapshot (the first one is checked
    /// against the snapshot's id, later ones against the previous diff).
    bridged: bool,
    buffer: Vec<Diff>,
}

impl LocalBook {
    pub fn new(sequencing: Sequencing) -> Self {
        LocalBook { sequencing, bids: BTreeMap::new(), asks: BTreeMap::new(), update_id: None, bridged: false, buffer: Vec::new() }
    }

    pub fn is_synced(&self) -> bool {
        self.update_id.is_some()
    }

    /// Forgets everything but buffers new diffs: after a gap, until the next snapshot.
    pub fn reset(&mut self) {
        self.bids.clear();
        self.asks.clear();
        self.update_id = None;
        self.bridged = false;
        self.buffer.clear();
    }

    /// Sets the book to a snapshot, then applies the buffered diffs that follow it.
    pub fn snapshot(&mut self, update_id: u64, bids: Vec<(Decimal, Decimal)>, asks: Vec<(Decimal, Decimal)>) -> Result<(), Gap> {
        self.bids = bids.into_iter().filter(|(_, q)| !q.is_zero()).collect();
        self.asks = asks.into_iter().filter(|(_, q)| !q.is_zero()).collect();
        self.update_id = Some(update_id);
        self.bridged = self.sequencing == Sequencing::Okx;
        for diff in std::mem::take(&mut self.buffer) {
            self.apply(diff)?;
        }
        Ok(())
    }

    pub fn apply(&mut self, diff: Diff) -> Result<Applied, Gap> {
        let Some(id) = self.update_id else {
            self.buffer.push(diff);
            return Ok(Applied::Buffered);
        };
        let gap = || Gap { after: id, first: diff.first, last: diff.last };
        match (self.sequencing, self.bridged) {
            (Sequencing::BinanceSpot, _) | (Sequencing::BinanceUsdm, false) => {
                // Spot: u <= id is old; U > id + 1 is a gap. USD-M's first diff must
                // straddle the snapshot: U <= id <= u (older ones are dropped).
                if diff.last < id || (diff.last == id && self.sequencing == Sequencing::BinanceSpot) {
                    return Ok(Applied::Stale);
                }
                // USD-M: a snapshot taken exactly at a diff's end (lastUpdateId equal to
                // that diff's `u`) is continued by the next diff, whose `pu` is that id:
                // the venue's chain says it follows on, so it bridges too.
                let bridges = match self.sequencing {
                    Sequencing::BinanceSpot => diff.first <= id + 1,
                    _ => (diff.first <= id && diff.last >= id) || diff.previous == Some(id),
                };
                if !bridges {
                    return Err(gap());
                }
            }
            (Sequencing::BinanceUsdm, true) | (Sequencing::Okx, _) => {
                if diff.last <= id && self.sequencing == Sequencing::Okx && diff.previous != Some(id) {
                    return Ok(Applied::Stale);
                }
                if diff.previous != Some(id) {
                    return Err(gap());
                }
            }
        }
        for (levels, side) in [(diff.bids, &mut self.bids), (diff.asks, &mut self.asks)] {
            for (price, qty) in levels {
                if qty.is_zero() {
                    side.remove(&price);
                } else {
                    side.insert(price, qty);
                }
            }
        }
        self.update_id = Some(diff.last);
        self.bridged = true;
        Ok(Applied::Changed)
    }

    /// The best `depth` levels a side: bids high to low, asks low to high.
    pub fn levels(&self, depth: usize) -> (Vec<BookLevel>, Vec<BookLevel>) {
        let bids = self.bids.iter().rev().take(depth).map(|(p, q)| BookLevel { price: *p, qty: *q }).collect();
        let asks = self.asks.iter().take(depth).map(|(p, q)| BookLevel { price: *p, qty: *q }).collect();
        (bids, asks)
    }
}

/// OKX's checksum: CRC-32 of the top 25 levels interleaved (`bid:size:ask:size:...`, one
/// side continuing alone when the other runs out), as a signed 32-bit integer.
pub fn okx_checksum(book: &LocalBook, text_of: &dyn Fn(Decimal) -> String) -> i32 {
    let (bids, asks) = book.levels(25);
    let mut parts = Vec::new();
    for i in 0..25 {
        if let Some(b) = bids.get(i) {
            parts.push(format!("{}:{}", text_of(b.price), text_of(b.qty)));
        }
        if let Some(a) = asks.get(i) {
            parts.push(format!("{}:{}", text_of(a.price), text_of(a.qty)));
        }
    }
    crc32fast::hash(parts.join(":").as_bytes()) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap_or_default()
    }

    fn diff(first: u64, last: u64, previous: Option<u64>, bid: (&str, &str)) -> Diff {
        Diff { first, last, previous, bids: vec![(d(bid.0), d(bid.1))], asks: vec![] }
    }

    /// binance-spot/web-socket-streams.md, "How to manage a local order book correctly".
    #[test]
    fn spot_buffers_drops_old_applies_in_order_and_detects_a_gap() {
        let mut book = LocalBook::new(Sequencing::BinanceSpot);
        assert_eq!(book.apply(diff(95, 100, None, ("10", "1"))), Ok(Applied::Buffered));
        assert_eq!(book.apply(diff(101, 104, None, ("10", "2"))), Ok(Applied::Buffered));
        book.snapshot(100, vec![(d("10", ), d("5")), (d("9"), d("1"))], vec![]).unwrap_or_else(|e| panic!("{e}"));
        // The first buffered diff is old (u <= lastUpdateId); the second bridges.
        assert_eq!(book.levels(5).0[0], BookLevel { price: d("10"), qty: d("2") });
        assert_eq!(book.apply(diff(105, 105, None, ("9", "0"))), Ok(Applied::Changed));
        assert_eq!(book.levels(5).0.len(), 1, "a zero quantity removes the level");
        assert_eq!(book.apply(diff(100, 103, None, ("8", "1"))), Ok(Applied::Stale));
        assert_eq!(book.apply(diff(107, 108, None, ("8", "1"))), Err(Gap { after: 105, first: 107, last: 108 }));
    }

    /// binance-usdm/public_ws.md: the first diff straddles the snapshot, then pu chains.
    #[test]
    fn usdm_checks_the_previous_id() {
        let mut book = LocalBook::new(Sequencing::BinanceUsdm);
        book.snapshot(200, vec![], vec![]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(book.apply(diff(150, 190, Some(149), ("1", "1"))), Ok(Applied::Stale));
        assert_eq!(book.apply(diff(195, 205, Some(194), ("1", "1"))), Ok(Applied::Changed));
        assert_eq!(book.apply(diff(206, 210, Some(205), ("2", "1"))), Ok(Applied::Changed));
        assert!(book.apply(diff(215, 220, Some(212), ("3", "1"))).is_err());
    }

    /// A snapshot whose lastUpdateId is the `u` of the last diff pushed: the next diff
    /// starts after it (U = id + 1) and names it as `pu`, so it continues the book. It used
    /// to be taken for a gap, and the book rebuilt on almost every diff.
    #[test]
    fn usdm_accepts_the_diff_whose_pu_is_the_snapshot() {
        let mut book = LocalBook::new(Sequencing::BinanceUsdm);
        book.snapshot(200, vec![], vec![]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(book.apply(diff(201, 204, Some(200), ("1", "1"))), Ok(Applied::Changed));
        assert_eq!(book.apply(diff(205, 207, Some(204), ("2", "1"))), Ok(Applied::Changed));
        let mut other = LocalBook::new(Sequencing::BinanceUsdm);
        other.snapshot(200, vec![], vec![]).unwrap_or_else(|e| panic!("{e}"));
        assert!(other.apply(diff(202, 204, Some(201), ("1", "1"))).is_err(), "a diff that neither straddles nor follows is a gap");
    }

    /// The two worked examples OKX published for its checksum (an even and an odd book).
    #[test]
    fn okx_checksum_matches_the_published_examples() {
        let text = |v: Decimal| v.to_string();
        let mut even = LocalBook::new(Sequencing::Okx);
        even.snapshot(1, vec![(d("3366.1"), d("7")), (d("3366"), d("6"))], vec![(d("3366.8"), d("9")), (d("3368"), d("8"))]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(okx_checksum(&even, &text), -1881014294);
        let mut odd = LocalBook::new(Sequencing::Okx);
        odd.snapshot(1, vec![(d("3366.1"), d("7"))], vec![(d("3366.8"), d("9")), (d("3368"), d("8")), (d("3372"), d("8"))]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(okx_checksum(&odd, &text), 831078360);
    }

    #[test]
    fn okx_chains_seq_ids() {
        let mut book = LocalBook::new(Sequencing::Okx);
        book.snapshot(10, vec![(d("100"), d("1"))], vec![(d("101"), d("2"))]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(book.apply(diff(0, 11, Some(10), ("100", "3"))), Ok(Applied::Changed));
        assert!(book.apply(diff(0, 13, Some(12), ("100", "3"))).is_err());
        let text = |v: Decimal| v.normalize().to_string();
        // CRC-32 of "100:3:101:2".
        assert_eq!(okx_checksum(&book, &text), crc32fast::hash(b"100:3:101:2") as i32);
    }
}
