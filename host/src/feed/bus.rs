//! A feed read from the market data bus: another runtime's published trades, from a
//! Redis Stream, oldest first. It waits for new entries as they are published and ends
//! at the publisher's end marker, or after `idle_timeout` without any entry.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use redis::streams::{StreamReadOptions, StreamReadReply};
use redis::Commands;

use super::{FeedError, MarketDataSource};
use crate::model::{Decimal, Side};
use crate::venue::paper::MarketPrint;

pub struct BusFeed {
    conn: redis::Connection,
    key: String,
    last_id: String,
    buffer: VecDeque<Result<MarketPrint, FeedError>>,
    idle_timeout: Duration,
    ended: bool,
    entries: usize,
}

impl BusFeed {
    /// Connects; fails when Redis cannot be reached now.
    pub fn connect(url: &str, key: String, idle_timeout: Duration) -> Result<Self, FeedError> {
        let io = |reason: String| FeedError::Io { path: key.clone(), reason };
        let client = redis::Client::open(url).map_err(|e| io(e.to_string()))?;
        let conn = client.get_connection_with_timeout(Duration::from_secs(2)).map_err(|e| io(e.to_string()))?;
        Ok(BusFeed { conn, key, last_id: "0".into(), buffer: VecDeque::new(), idle_timeout, ended: false, entries: 0 })
    }

    fn parse(&self, entry: &redis::streams::StreamId) -> Result<Option<MarketPrint>, String> {
        if entry.contains_key("end") {
            return Ok(None);
        }
        let field = |name: &str| entry.get::<String>(name).ok_or_else(|| format!("entry {} has no {name}", entry.id));
        let print = MarketPrint {
            trade_id: field("id")?.parse().map_err(|_| format!("entry {}: id is not a number", entry.id))?,
            price: field("price")?.parse::<Decimal>().map_err(|_| format!("entry {}: price is not a decimal", entry.id))?,
            qty: field("qty")?.parse::<Decimal>().map_err(|_| format!("entry {}: qty is not a decimal", entry.id))?,
            aggressor: match field("side")?.as_str() {
                "buy" => Side::Buy,
                "sell" => Side::Sell,
                other => return Err(format!("entry {}: side {other:?}", entry.id)),
            },
            ts_ms: field("ts")?.parse().map_err(|_| format!("entry {}: ts is not a number", entry.id))?,
        };
        print.check().map_err(|e| format!("entry {}: {e}", entry.id))?;
        Ok(Some(print))
    }

    fn fill(&mut self) -> Result<(), FeedError> {
        let started = Instant::now();
        let options = StreamReadOptions::default().block(500).count(1000);
        while self.buffer.is_empty() && !self.ended {
            let reply: Option<StreamReadReply> = self
                .conn
                .xread_options(&[&self.key], &[&self.last_id], &options)
                .map_err(|e| FeedError::Io { path: self.key.clone(), reason: e.to_string() })?;
            let entries: Vec<_> = reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids).collect();
            if entries.is_empty() {
                if started.elapsed() >= self.idle_timeout {
                    tracing::warn!(stream = %self.key, "no market data for {:?}; ending this feed", self.idle_timeout);
                    self.ended = true;
                }
                continue;
            }
            for entry in entries {
                self.last_id = entry.id.clone();
                self.entries += 1;
                match self.parse(&entry) {
                    Ok(Some(print)) => self.buffer.push_back(Ok(print)),
                    Ok(None) => self.ended = true,
                    Err(reason) => self.buffer.push_back(Err(FeedError::Malformed { path: self.key.clone(), line: self.entries, reason })),
                }
            }
        }
        Ok(())
    }
}

impl MarketDataSource for BusFeed {
    fn next_print(&mut self) -> Option<Result<MarketPrint, FeedError>> {
        if let Err(error) = self.fill() {
            // A broken connection ends the feed, said once, rather than spinning on it.
            self.ended = true;
            return Some(Err(error));
        }
        self.buffer.pop_front()
    }

    fn describe(&self) -> String {
        format!("market data bus stream {}", self.key)
    }
}
