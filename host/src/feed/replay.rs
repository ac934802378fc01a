//! Replay of recorded trades in the layouts of Binance's public-data trade files:
//! spot `id,price,qty,quote_qty,time,is_buyer_maker,is_best_match` and USD-M futures
//! `id,price,qty,quote_qty,time,is_buyer_maker`, with or without a header line.
//!
//! Spot files since 2025 carry microseconds in `time`; a time too large to be
//! milliseconds is taken as microseconds.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::{FeedError, MarketDataSource};
use crate::model::{Decimal, Side};
use crate::venue::paper::MarketPrint;

/// Milliseconds below this are plausible (the year 5138); above, the value is µs.
const MAX_PLAUSIBLE_MS: i64 = 100_000_000_000_000;
/// The longest line read: a trade line is under 100 bytes, so anything longer is garbage,
/// skipped without being held in memory.
pub const MAX_LINE_BYTES: usize = 1024;

pub struct CsvReplay {
    path: PathBuf,
    reader: BufReader<File>,
    line_no: usize,
    last_ts: Option<i64>,
    /// The line being read, reused: a replay reads millions of lines.
    line: Vec<u8>,
}

impl CsvReplay {
    /// Opens a trades file. Fails when it cannot be read or is not a regular file (a FIFO
    /// or a device would block or never end).
    pub fn open(path: &Path) -> Result<Self, FeedError> {
        let file = crate::files::open_regular(path).map_err(|reason| FeedError::Io { path: path.display().to_string(), reason })?;
        Ok(CsvReplay { path: path.to_path_buf(), reader: BufReader::with_capacity(1 << 16, file), line_no: 0, last_ts: None, line: Vec::with_capacity(128) })
    }

    pub(crate) fn malformed(&self, reason: impl Into<String>) -> FeedError {
        FeedError::Malformed { path: self.path.display().to_string(), line: self.line_no, reason: reason.into() }
    }

    /// Reads the next line into `self.line`, at most [`MAX_LINE_BYTES`]; a longer one is
    /// skipped to its end and reported. `None` at the end of the file.
    fn next_line(&mut self) -> Option<Result<(), String>> {
        self.line.clear();
        let read = (&mut self.reader).take(MAX_LINE_BYTES as u64 + 1).read_until(b'\n', &mut self.line);
        match read {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) => return Some(Err(format!("unreadable line: {e}"))),
        }
        if self.line.len() > MAX_LINE_BYTES && self.line.last() != Some(&b'\n') {
            let skipped = self.reader.skip_until(b'\n').unwrap_or(0);
            return Some(Err(format!("line longer than {MAX_LINE_BYTES} bytes ({} bytes); skipped", self.line.len() + skipped)));
        }
        Some(Ok(()))
    }
}

/// Fields of a data line at most (spot's 7), plus one to tell a longer line.
const MAX_FIELDS: usize = 8;

/// Parses one data line; `Ok(None)` for a header line. Allocates nothing unless the line
/// is refused: it runs once per recorded trade.
pub fn parse_line(line: &str) -> Result<Option<MarketPrint>, String> {
    let mut fields = [""; MAX_FIELDS];
    let mut count = 0;
    let line = line.trim_end_matches(['\r', '\n']);
    // Split at the commas byte by byte (an ASCII comma is always a character boundary):
    // a trade's fields are a few bytes each, shorter than a search's set-up.
    let mut start = 0;
    for (at, byte) in line.bytes().enumerate().chain(std::iter::once((line.len(), b','))) {
        if byte == b',' {
            if count < MAX_FIELDS {
                fields[count] = tidy(&line[start..at]);
            }
            count += 1;
            start = at + 1;
        }
    }
    if fields[0].eq_ignore_ascii_case("id") {
        return Ok(None);
    }
    if count != 6 && count != 7 {
        return Err(format!("expected 6 (USD-M) or 7 (spot) comma-separated fields, found {count}"));
    }
    let trade_id: u64 = fields[0].parse().map_err(|_| format!("id {:?} is not a whole number", fields[0]))?;
    let price: Decimal = fields[1].parse().map_err(|_| format!("price {:?} is not a decimal", fields[1]))?;
    let qty: Decimal = fields[2].parse().map_err(|_| format!("qty {:?} is not a decimal", fields[2]))?;
    let mut ts: i64 = fields[4].parse().map_err(|_| format!("time {:?} is not a whole number", fields[4]))?;
    if ts > MAX_PLAUSIBLE_MS {
        ts /= 1000;
    }
    let aggressor = if fields[5].eq_ignore_ascii_case("true") {
        // The buyer was the resting order, so the seller took liquidity.
        Side::Sell
    } else if fields[5].eq_ignore_ascii_case("false") {
        Side::Buy
    } else {
        return Err(format!("is_buyer_maker {:?} is not true or false", fields[5].to_ascii_lowercase()));
    };
    let print = MarketPrint { trade_id, price, qty, aggressor, ts_ms: ts };
    print.check()?;
    Ok(Some(print))
}

/// `field.trim()`, skipped when the field begins and ends with a visible ASCII character
/// (as every field of a well-formed line does), which `trim` would leave as it is.
fn tidy(field: &str) -> &str {
    match (field.as_bytes().first(), field.as_bytes().last()) {
        (Some(first), Some(last)) if first.is_ascii_graphic() && last.is_ascii_graphic() => field,
        _ => field.trim(),
    }
}

impl MarketDataSource for CsvReplay {
    fn next_print(&mut self) -> Option<Result<MarketPrint, FeedError>> {
        loop {
            let read = self.next_line()?;
            self.line_no += 1;
            if let Err(reason) = read {
                return Some(Err(self.malformed(reason)));
            }
            let Ok(line) = std::str::from_utf8(&self.line) else {
                return Some(Err(self.malformed("line is not UTF-8 text")));
            };
            if line.trim().is_empty() {
                continue;
            }
            match parse_line(line) {
                Ok(Some(print)) => {
                    // Recorded trades are in time order; one that goes back is broken.
                    if self.last_ts.is_some_and(|last| print.ts_ms < last) {
                        return Some(Err(self.malformed(format!("time {} goes back before the previous line's {}", print.ts_ms, self.last_ts.unwrap_or_default()))));
                    }
                    self.last_ts = Some(print.ts_ms);
                    return Some(Ok(print));
                }
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
        assert!(parse_line("1,2,3,4,1582329602111,maybe").err().unwrap_or_default().contains("is_buyer_maker"));
        assert!(parse_line("1,-2,3,4,5,true").err().unwrap_or_default().contains("not positive"));
    }

    #[test]
    fn out_of_bounds_values_are_refused() {
        let err = |line: &str| parse_line(line).err().unwrap_or_default();
        assert!(err("1,1000000000000000000000000000,1,1,1582329602111,false").contains("price"), "a price of 1e27");
        assert!(err("1,9682,10000000000000,1,1582329602111,false").contains("qty"));
        assert!(err(&format!("1,9682,1,1,{},false", i64::MAX)).contains("between 1970 and 2100"));
        assert!(err("1,9682,1,1,-5,false").contains("between 1970 and 2100"));
    }

    fn replay_of(text: &[u8]) -> (tempfile::TempDir, Vec<Result<MarketPrint, FeedError>>) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("trades.csv");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        let mut replay = CsvReplay::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let all = std::iter::from_fn(|| replay.next_print()).collect();
        (dir, all)
    }

    #[test]
    fn long_lines_and_time_going_back_are_reported_and_skipped() {
        let mut text = b"1,9682,0.1,1,1582329602111,false\n".to_vec();
        text.extend(std::iter::repeat_n(b'9', 5 << 20));
        text.extend(b"\n2,9683,0.1,1,1582329602000,false\n3,9684,0.1,1,1582329602112,true\n");
        let (_dir, all) = replay_of(&text);
        assert_eq!(all.len(), 4);
        assert!(all[0].is_ok());
        assert!(matches!(&all[1], Err(FeedError::Malformed { line: 2, reason, .. }) if reason.contains("longer than 1024")), "{:?}", all[1]);
        assert!(matches!(&all[2], Err(FeedError::Malformed { line: 3, reason, .. }) if reason.contains("goes back")), "{:?}", all[2]);
        assert_eq!(all[3].as_ref().map(|p| p.trade_id).ok(), Some(3));
    }

    #[test]
    fn a_line_that_is_not_text_is_reported_and_the_next_read() {
        let mut text = b"1,9682,0.1,1,1582329602111,false\n".to_vec();
        text.extend(b"2,96\xff\xfe82,0.1,1,1582329602112,false\n");
        text.extend(b"3,9684,0.1,1,1582329602113,true\n");
        let (_dir, all) = replay_of(&text);
        assert_eq!(all.len(), 3);
        assert!(matches!(&all[1], Err(FeedError::Malformed { line: 2, reason, .. }) if reason.contains("not UTF-8")), "{:?}", all[1]);
        assert_eq!(all.iter().filter_map(|r| r.as_ref().ok().map(|p| p.trade_id)).collect::<Vec<_>>(), vec![1, 3]);
    }

    #[test]
    fn a_folder_is_not_a_trades_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let err = CsvReplay::open(dir.path()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("not a regular file"), "{err}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// Whatever a line holds, parsing it answers and never panics; what it accepts is
        /// within the bounds.
        #[test]
        fn any_line_parses_or_is_refused(line in "[0-9eE.,+\\-a-zTF ]{0,80}") {
            if let Ok(Some(p)) = parse_line(&line) {
                proptest::prop_assert!(p.check().is_ok());
            }
        }

        /// The shortcut around `trim` changes nothing, whatever the field holds.
        #[test]
        fn a_field_is_tidied_as_trim_does(field in "\\PC{0,12}|[ \t\u{a0}\u{3000}]{0,2}[0-9a-z.]{0,6}[ \t\r\u{a0}\u{2003}]{0,2}") {
            proptest::prop_assert_eq!(tidy(&field), field.trim());
        }

        #[test]
        fn numeric_fields_of_any_size(id in ".{0,30}", price in "-?[0-9]{0,40}(\\.[0-9]{0,40})?", qty in "-?[0-9]{0,40}(\\.[0-9]{0,40})?", time in "-?[0-9]{0,25}") {
            let _ = parse_line(&format!("{id},{price},{qty},1,{time},true"));
        }
    }
}
