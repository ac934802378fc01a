//! Market data sources that drive the paper venues: recorded trades replayed from a file,
//! or a seeded synthetic generator.
//!
//! A source yields prints in time order. A bad record is an error naming where it is;
//! the caller reports it and carries on with the next record, so one corrupt line neither
//! stops a replay nor disappears without a word.

pub mod ahead;
pub mod bus;
pub mod derived;
pub mod replay;
pub mod synthetic;

use crate::venue::paper::MarketPrint;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FeedError {
    #[error("{path}:{line}: {reason}")]
    Malformed { path: String, line: usize, reason: String },
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
}

/// A stream of prints of one instrument.
pub trait MarketDataSource: Send {
    /// The next print, an error about one record, or `None` at the end.
    fn next_print(&mut self) -> Option<Result<MarketPrint, FeedError>>;
    /// Where the data comes from, for logs.
    fn describe(&self) -> String;
}
