//! Book diffs as the venues publish them: after every change, the levels that changed,
//! numbered so a client can tell a gap (Binance `U`/`u`/`pu`, OKX `seqId`/`prevSeqId` with
//! a CRC-32 checksum of the top 25 levels).

use std::collections::{BTreeMap, HashMap};

use trading_model::Decimal;
use serde_json::{json, Value};

use crate::market::Market;
use crate::Kind;

#[derive(Default, Clone)]
pub struct Track {
    pub bids: BTreeMap<Decimal, Decimal>,
    pub asks: BTreeMap<Decimal, Decimal>,
    pub update_id: u64,
}

#[derive(Default)]
pub struct Books {
    pub by_symbol: HashMap<String, Track>,
    /// Diffs held back to be sent out of order.
    pub held: Vec<(String, String)>,
}

fn plain(d: Decimal) -> String {
    d.normalize().to_string()
}

fn changes(old: &BTreeMap<Decimal, Decimal>, new: &BTreeMap<Decimal, Decimal>) -> Vec<(Decimal, Decimal)> {
    let mut out: Vec<(Decimal, Decimal)> = new.iter().filter(|(p, q)| old.get(*p) != Some(*q)).map(|(p, q)| (*p, *q)).collect();
    out.extend(old.keys().filter(|p| !new.contains_key(*p)).map(|p| (*p, Decimal::ZERO)));
    out
}

/// OKX's levels: `[px, sz in contracts, "0", orders]`.
fn okx_levels(levels: &[(Decimal, Decimal)], ct: Decimal) -> Vec<Value> {
    levels.iter().map(|(p, q)| json!([plain(*p), plain(*q / ct), "0", "1"])).collect()
}

pub fn okx_checksum(track: &Track, ct: Decimal) -> i32 {
    let bids: Vec<_> = track.bids.iter().rev().take(25).collect();
    let asks: Vec<_> = track.asks.iter().take(25).collect();
    let mut parts = Vec::new();
    for i in 0..25 {
        if let Some((p, q)) = bids.get(i) {
            parts.push(format!("{}:{}", plain(**p), plain(**q / ct)));
        }
        if let Some((p, q)) = asks.get(i) {
            parts.push(format!("{}:{}", plain(**p), plain(**q / ct)));
        }
    }
    crc32fast::hash(parts.join(":").as_bytes()) as i32
}

/// The OKX snapshot push of a tracked book.
pub fn okx_snapshot(symbol: &str, track: &Track, ct: Decimal, now: i64) -> String {
    let bids: Vec<(Decimal, Decimal)> = track.bids.iter().rev().map(|(p, q)| (*p, *q)).collect();
    let asks: Vec<(Decimal, Decimal)> = track.asks.iter().map(|(p, q)| (*p, *q)).collect();
    json!({"arg": {"channel": "books", "instId": symbol}, "action": "snapshot", "data": [{
        "asks": okx_levels(&asks, ct), "bids": okx_levels(&bids, ct), "ts": now.to_string(),
        "checksum": okx_checksum(track, ct), "prevSeqId": -1, "seqId": track.update_id}]})
    .to_string()
}

impl Books {
    /// Diffs every listing's book against what was last published; returns the pushes
    /// (stream key, text) and advances the ids. `skip` diffs are numbered but not sent.
    pub fn update(&mut self, kind: Kind, market: &Market, now: i64, skip: &mut u32) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for listing in market.listings() {
            let Some(book) = market.depth(&listing.symbol, 1000) else { continue };
            let bids: BTreeMap<Decimal, Decimal> = book.bids.iter().map(|l| (l.price, l.qty)).collect();
            let asks: BTreeMap<Decimal, Decimal> = book.asks.iter().map(|l| (l.price, l.qty)).collect();
            let track = self.by_symbol.entry(listing.symbol.clone()).or_default();
            let (b, a) = (changes(&track.bids, &bids), changes(&track.asks, &asks));
            if b.is_empty() && a.is_empty() {
                continue;
            }
            let previous = track.update_id;
            let first = previous + 1;
            let last = previous + (b.len() + a.len()) as u64;
            track.bids = bids;
            track.asks = asks;
            track.update_id = last;
            if *skip > 0 {
                *skip -= 1;
                continue;
            }
            let futures = kind == Kind::BinanceUsdm;
            let level = |l: &[(Decimal, Decimal)]| l.iter().map(|(p, q)| json!([crate::binance::num(futures, *p), crate::binance::num(futures, *q)])).collect::<Vec<_>>();
            let symbol = &listing.symbol;
            match kind {
                Kind::BinanceSpot => out.push((
                    format!("{}@depth@100ms", symbol.to_ascii_lowercase()),
                    json!({"e": "depthUpdate", "E": now, "s": symbol, "U": first, "u": last, "b": level(&b), "a": level(&a)}).to_string(),
                )),
                Kind::BinanceUsdm => out.push((
                    format!("{}@depth@100ms", symbol.to_ascii_lowercase()),
                    json!({"e": "depthUpdate", "E": now, "T": now, "s": symbol, "U": first, "u": last, "pu": previous, "b": level(&b), "a": level(&a)}).to_string(),
                )),
                Kind::Okx => {
                    let ct = listing.contract_value;
                    out.push((
                        format!("books:{symbol}"),
                        json!({"arg": {"channel": "books", "instId": symbol}, "action": "update", "data": [{
                            "asks": okx_levels(&a, ct), "bids": okx_levels(&b, ct), "ts": now.to_string(),
                            "checksum": okx_checksum(track, ct), "prevSeqId": previous, "seqId": last}]})
                        .to_string(),
                    ));
                }
            }
        }
        out
    }
}
