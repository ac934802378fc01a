//! Replay of recorded trades in the layouts of Binance's public-data trade files:
//! spot `id,price,qty,quote_qty,time,is_buyer_maker,is_best_match` and USD-M futures
//! `id,price,qty,quote_qty,time,is_buyer_maker`, with or without a header line.
//!
//! Spot files since 2025 carry microseconds in `time`; a time too large to be
//! milliseconds is taken as microseconds.

use std::fs::File;
use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};

use super::{FeedError, MarketDataSource};
use crate::model::{Decimal, Side};
use crate::venue::paper::MarketPrint;

/// Milliseconds below this are plausible (the year 5138); above, the value is µs.
const MAX_PLAUSIBLE_MS: i64 = 100_000_000_000_000;

pub struct CsvReplay {
    path: PathBuf,
    lines: Lines<BufReader<File>>,
    line_no: usize,
}

impl CsvReplay {
    /// Opens a trades file. Fails when it cannot be read.
    pub fn open(path: &Path) -> Result<Self, FeedError> {
        let file = File::open(path).map_err(|e| FeedError::Io { path: path.display().to_string(), reason: e.to_string() })?;
        Ok(CsvReplay { path: path.to_path_buf(), lines: BufReader::new(file).lines(), line_no: 0 })
    }

    fn malformed(&self, reason: impl Into<String>) -> FeedError {
        FeedError::Malformed { path: self.path.display().to_string(), line: self.line_no, reason: reason.into() }
    }
}

/// Parses one data line; `Ok(None)` for a header line.
pub fn parse_line(line: &str) -> Result<Option<MarketPrint>, String> {
    let fields: Vec<&str> = line.trim_end_matches('\r').split(',').map(str::trim).collect();
    if fields.first().is_some_and(|f| f.eq_ignore_ascii_case("id")) {
        return Ok(None);
    }
    if fields.len() != 6 && fields.len() != 7 {
        return Err(format!("expected 6 (USD-M) or 7 (spot) comma-separated fields, found {}", fields.len()));
    }
    let field = |i: usize, name: &str| fields.get(i).copied().ok_or_else(|| format!("missing {name}"));
    let trade_id: u64 = field(0, "id")?.parse().map_err(|_| format!("id {:?} is not a whole number", fields[0]))?;
    let price: Decimal = field(1, "price")?.parse().map_err(|_| format!("price {:?} is not a decimal", fields[1]))?;
    let qty: Decimal = field(2, "qty")?.parse().map_err(|_| format!("qty {:?} is not a decimal", fields[2]))?;
    if price <= Decimal::ZERO {
        return Err(format!("price {price} is not positive"));
    }
    if qty <= Decimal::ZERO {
        return Err(format!("qty {qty} is not positive"));
    }
    let mut ts: i64 = field(4, "time")?.parse().map_err(|_| format!("time {:?} is not a whole number", fields[4]))?;
    if ts > MAX_PLAUSIBLE_MS {
        ts /= 1000;
    }
    let aggressor = match field(5, "is_buyer_maker")?.to_ascii_lowercase().as_str() {
        // The buyer was the resting order, so the seller took liquidity.
        "true" => Side::Sell,
        "false" => Side::Buy,
        other => return Err(format!("is_buyer_maker {other:?} is not true or false")),
    };
    Ok(Some(MarketPrint { trade_id, price, qty, aggressor, ts_ms: ts }))
}

impl MarketDataSource for CsvReplay {
    fn next_print(&mut self) -> Option<Result<MarketPrint, FeedError>> {
        loop {
            let line = match self.lines.next()? {
                Ok(line) => line,
                Err(e) => {
                    self.line_no += 1;
                    return Some(Err(self.malformed(format!("unreadable line: {e}"))));
                }
            };
            self.line_no += 1;
            if line.trim().is_empty() {
                continue;
            }
            match parse_line(&line) {
                Ok(Some(print)) => return Some(Ok(print)),
                Ok(None) if self.line_no == 1 => continue,
                Ok(None) => return Some(Err(self.malformed("a header line in the middle of the data"))),
                Err(reason) => return Some(Err(self.malformed(reason))),
            }
        }
    }

    fn describe(&self) -> String {
        format!("replay of {}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usdm_and_spot_layouts() {
        let usdm = parse_line("42377944,9682,0.132,1278.024,1582329602111,false").ok().flatten();
        assert_eq!(
            usdm,
            Some(MarketPrint { trade_id: 42377944, price: "9682".parse().unwrap_or_default(), qty: "0.132".parse().unwrap_or_default(), aggressor: Side::Buy, ts_ms: 1582329602111 })
        );
        let spot = parse_line("1,100.5,2,201,1735689600000123,True,True").ok().flatten();
        assert_eq!(spot.as_ref().map(|p| (p.ts_ms, p.aggressor)), Some((1735689600000, Side::Sell)));
    }

    #[test]
    fn header_is_recognised() {
        assert_eq!(parse_line("id,price,qty,quote_qty,time,is_buyer_maker"), Ok(None));
    }

    #[test]
    fn malformed_lines_say_why() {
        assert!(parse_line("1,abc,2,3,4,true").err().unwrap_or_default().contains("price"));
        assert!(parse_line("1,2,3").err().unwrap_or_default().contains("found 3"));
        assert!(parse_line("1,2,3,4,5,maybe").err().unwrap_or_default().contains("is_buyer_maker"));
        assert!(parse_line("1,-2,3,4,5,true").err().unwrap_or_default().contains("not positive"));
    }
}
