//! Reading a source ahead on a thread of its own, so that reading and parsing a file (a
//! sixth of a replayed print on one core, BENCHMARKS.md) overlaps the engine's work
//! instead of adding to it. The engine still takes every record in the source's order,
//! errors included, one at a time: a replay decides exactly as it would inline.
//!
//! Records cross in chunks, so the two threads meet once per chunk rather than once per
//! print, and the chunks' buffers go back to the reader to be filled again. At most
//! [`CHUNKS_IN_FLIGHT`] chunks wait, which bounds the memory a fast reader can take.

use std::collections::VecDeque;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};

use super::{FeedError, MarketDataSource};
use crate::venue::paper::MarketPrint;

/// Records a chunk holds: 16 KiB of prints, small enough to stay in cache.
pub const CHUNK: usize = 2048;
/// Chunks read and not yet taken, at most.
pub const CHUNKS_IN_FLIGHT: usize = 2;

type Record = Result<MarketPrint, FeedError>;

pub struct ReadAhead {
    describe: String,
    chunks: Receiver<VecDeque<Record>>,
    /// Emptied chunks, back to the reader (dropped when it has enough).
    spent: SyncSender<VecDeque<Record>>,
    current: VecDeque<Record>,
}

impl ReadAhead {
    /// Starts reading `source` on a thread named after `name`. The thread ends at the
    /// source's end, or once this side is dropped.
    pub fn start(source: Box<dyn MarketDataSource>, name: &str) -> std::io::Result<ReadAhead> {
        let describe = source.describe();
        let (tx, chunks) = sync_channel(CHUNKS_IN_FLIGHT);
        let (spent, returned) = sync_channel(CHUNKS_IN_FLIGHT + 1);
        // A name from config may hold a NUL, which a thread's name may not.
        crate::affinity::off_engine_core(|| std::thread::Builder::new().name(format!("feed {}", name.replace('\0', ""))).spawn(move || read(source, tx, returned)))?;
        Ok(ReadAhead { describe, chunks, spent, current: VecDeque::new() })
    }
}

/// The reader's loop: fill a chunk, hand it over, until the source ends or nobody takes.
fn read(mut source: Box<dyn MarketDataSource>, tx: SyncSender<VecDeque<Record>>, returned: Receiver<VecDeque<Record>>) {
    crate::affinity::keep_off_engine_core();
    let describe = source.describe();
    loop {
        let mut chunk = match returned.try_recv() {
            Ok(chunk) => chunk,
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => VecDeque::with_capacity(CHUNK),
        };
        let mut ended = false;
        while chunk.len() < CHUNK {
            // A bug in a source must not end its feed without a word, as a thread that
            // died would: it is the feed's last record, an error the engine reports.
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| source.next_print())) {
                Ok(Some(record)) => chunk.push_back(record),
                Ok(None) => {
                    ended = true;
                    break;
                }
                Err(panic) => {
                    let why = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned()).unwrap_or_default();
                    chunk.push_back(Err(FeedError::Io { path: describe.clone(), reason: format!("its reader stopped on a bug ({why}); the feed ends here") }));
                    ended = true;
                    break;
                }
            }
        }
        if (!chunk.is_empty() && tx.send(chunk).is_err()) || ended {
            return;
        }
    }
}

impl MarketDataSource for ReadAhead {
    fn next_print(&mut self) -> Option<Result<MarketPrint, FeedError>> {
        if let Some(record) = self.current.pop_front() {
            return Some(record);
        }
        // The reader's end (or its thread's) closes the channel: the source has ended.
        let next = self.chunks.recv().ok()?;
        let spent = std::mem::replace(&mut self.current, next);
        let _ = self.spent.try_send(spent);
        self.current.pop_front()
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Decimal, Side};
    use std::sync::mpsc::channel;
    use std::time::Duration;

    /// Counts up, with an error every `bad_every` records; says when it is dropped.
    struct Numbers {
        next: u64,
        count: u64,
        bad_every: u64,
        dropped: Option<std::sync::mpsc::Sender<u64>>,
    }

    impl MarketDataSource for Numbers {
        fn next_print(&mut self) -> Option<Result<MarketPrint, FeedError>> {
            if self.next >= self.count {
                return None;
            }
            self.next += 1;
            let n = self.next;
            Some(if n.is_multiple_of(self.bad_every) {
                Err(FeedError::Malformed { path: "numbers".into(), line: n as usize, reason: "bad".into() })
            } else {
                Ok(MarketPrint { trade_id: n, price: Decimal::from(n), qty: Decimal::ONE, aggressor: Side::Buy, ts_ms: n as i64 })
            })
        }

        fn describe(&self) -> String {
            "numbers".into()
        }
    }

    impl Drop for Numbers {
        fn drop(&mut self) {
            if let Some(tx) = self.dropped.take() {
                let _ = tx.send(self.next);
            }
        }
    }

    fn numbers(count: u64, bad_every: u64) -> Numbers {
        Numbers { next: 0, count, bad_every, dropped: None }
    }

    #[test]
    fn yields_what_the_source_yields_in_its_order() {
        // Chunk boundaries, a partial last chunk and errors among the prints.
        for count in [0, 1, CHUNK as u64 - 1, CHUNK as u64, CHUNK as u64 + 1, 10 * CHUNK as u64 + 7] {
            let mut inline = numbers(count, 97);
            let expected: Vec<_> = std::iter::from_fn(|| inline.next_print()).collect();
            let mut ahead = ReadAhead::start(Box::new(numbers(count, 97)), "test").unwrap_or_else(|e| panic!("{e}"));
            let got: Vec<_> = std::iter::from_fn(|| ahead.next_print()).collect();
            assert_eq!(got, expected, "{count} records");
            assert_eq!(ahead.next_print(), None, "the end stays the end");
            assert_eq!(ahead.describe(), "numbers");
        }
    }

    /// Yields `good` prints, then panics.
    struct Buggy {
        good: u64,
    }

    impl MarketDataSource for Buggy {
        fn next_print(&mut self) -> Option<Result<MarketPrint, FeedError>> {
            if self.good == 0 {
                panic!("a bug in a source");
            }
            self.good -= 1;
            Some(Ok(MarketPrint { trade_id: self.good, price: Decimal::ONE, qty: Decimal::ONE, aggressor: Side::Sell, ts_ms: 1 }))
        }

        fn describe(&self) -> String {
            "buggy".into()
        }
    }

    #[test]
    fn a_source_that_panics_ends_its_feed_with_an_error_saying_so() {
        let mut ahead = ReadAhead::start(Box::new(Buggy { good: CHUNK as u64 + 3 }), "test").unwrap_or_else(|e| panic!("{e}"));
        let all: Vec<_> = std::iter::from_fn(|| ahead.next_print()).collect();
        assert_eq!(all.len(), CHUNK + 4);
        assert!(all[..CHUNK + 3].iter().all(|r| r.is_ok()));
        let last = all.last().cloned().map(|r| r.err().map(|e| e.to_string()).unwrap_or_default()).unwrap_or_default();
        assert!(last.contains("buggy") && last.contains("a bug in a source") && last.contains("ends here"), "{last}");
    }

    #[test]
    fn a_feed_holds_at_most_about_a_mebibyte_ahead() {
        // Chunks: two waiting, one being read, one being filled, and up to three spent.
        let chunks = CHUNKS_IN_FLIGHT + 1 + 1 + (CHUNKS_IN_FLIGHT + 1);
        let bytes = chunks * CHUNK * std::mem::size_of::<Record>();
        assert!(bytes <= 1 << 20, "{bytes} bytes a feed (README: about 0.9 MiB)");
    }

    #[test]
    fn the_reader_stops_when_its_reader_side_is_dropped() {
        let (tx, rx) = channel();
        let source = Numbers { dropped: Some(tx), ..numbers(u64::MAX, u64::MAX) };
        let mut ahead = ReadAhead::start(Box::new(source), "test").unwrap_or_else(|e| panic!("{e}"));
        assert!(ahead.next_print().is_some_and(|r| r.is_ok()));
        drop(ahead);
        // The thread drops the source when it returns: it read at most what the channel
        // could hold past the chunk taken, not the endless rest.
        let read = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|e| panic!("the reader did not stop: {e}"));
        assert!(read <= ((CHUNKS_IN_FLIGHT + 2) * CHUNK) as u64, "{read} records read");
    }
}
