//! The market data bus: public trades of chosen instruments published to Redis Streams,
//! so other runtime processes can trade on them (one process collects, others trade).
//!
//! Each published instrument has a stream `<prefix>:<venue>:<symbol>:trades`, capped at
//! about `maxlen` entries, and a hash `<prefix>:<venue>:<symbol>:last` with the latest
//! print. When an instrument's feed ends, an entry with `end = 1` says so, so a reader of
//! a replay knows it is over. Publishing is best effort: it never holds up trading; while
//! Redis is away prints are held (up to a bound), the outage is reported, and they are
//! sent when it is back.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::model::{InstrumentId, PublicTrade, Side};

/// Prints held while Redis is away; beyond this the oldest are dropped, and counted.
const MAX_HELD: usize = 100_000;
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// The stream of an instrument's trades.
pub fn trades_key(prefix: &str, venue: &str, symbol: &str) -> String {
    format!("{prefix}:{venue}:{symbol}:trades")
}

pub struct Publisher {
    client: redis::Client,
    conn: Option<redis::Connection>,
    maxlen: usize,
    /// Stream key base (without `:trades`) by instrument.
    keys: HashMap<InstrumentId, String>,
    held: VecDeque<Entry>,
    dropped: u64,
    outage_since: Option<Instant>,
    next_try: Option<Instant>,
    pub published: u64,
}

enum Entry {
    Trade(PublicTrade),
    End(InstrumentId),
}

impl Publisher {
    /// Connects; fails when Redis cannot be reached now.
    pub fn connect(url: &str, maxlen: usize, keys: HashMap<InstrumentId, String>) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let conn = client.get_connection_with_timeout(Duration::from_secs(2)).map_err(|e| e.to_string())?;
        Ok(Publisher { client, conn: Some(conn), maxlen, keys, held: VecDeque::new(), dropped: 0, outage_since: None, next_try: None, published: 0 })
    }

    pub fn publishes(&self, instrument: InstrumentId) -> bool {
        self.keys.contains_key(&instrument)
    }

    pub fn on_trade(&mut self, trade: &PublicTrade) {
        if self.publishes(trade.instrument) {
            self.hold(Entry::Trade(trade.clone()));
        }
    }

    /// Marks the end of an instrument's data on its stream.
    pub fn end(&mut self, instrument: InstrumentId) {
        if self.publishes(instrument) {
            self.hold(Entry::End(instrument));
        }
    }

    fn hold(&mut self, entry: Entry) {
        if self.held.len() == MAX_HELD {
            self.held.pop_front();
            self.dropped += 1;
        }
        self.held.push_back(entry);
    }

    /// Sends what is held, in one round trip; keeps it on failure.
    pub fn flush(&mut self) {
        if self.held.is_empty() || self.next_try.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let mut pipe = redis::pipe();
        for entry in &self.held {
            match entry {
                Entry::Trade(t) => {
                    let Some(base) = self.keys.get(&t.instrument) else { continue };
                    let side = if t.aggressor == Side::Buy { "buy" } else { "sell" };
                    let fields = [
                        ("id", t.trade_id.to_string()),
                        ("price", t.price.to_string()),
                        ("qty", t.qty.to_string()),
                        ("side", side.to_string()),
                        ("ts", t.ts_ms.to_string()),
                    ];
                    pipe.xadd_maxlen(format!("{base}:trades"), redis::streams::StreamMaxlen::Approx(self.maxlen), "*", &fields).ignore();
                    pipe.hset_multiple(format!("{base}:last"), &fields).ignore();
                }
                Entry::End(instrument) => {
                    let Some(base) = self.keys.get(instrument) else { continue };
                    pipe.xadd_maxlen(format!("{base}:trades"), redis::streams::StreamMaxlen::Approx(self.maxlen), "*", &[("end", "1")]).ignore();
                }
            }
        }
        let result = match self.conn.as_mut() {
            Some(conn) => pipe.query::<()>(conn),
            None => self.client.get_connection_with_timeout(Duration::from_millis(500)).and_then(|mut conn| {
                let r = pipe.query::<()>(&mut conn);
                self.conn = Some(conn);
                r
            }),
        };
        match result {
            Ok(()) => {
                self.published += self.held.len() as u64;
                self.held.clear();
                self.next_try = None;
                if let Some(since) = self.outage_since.take() {
                    tracing::info!(seconds = since.elapsed().as_secs_f64(), dropped = self.dropped, "market data bus: Redis is back; held prints published");
                }
            }
            Err(error) => {
                self.conn = None;
                self.next_try = Some(Instant::now() + RETRY_EVERY);
                if self.outage_since.is_none() {
                    self.outage_since = Some(Instant::now());
                    tracing::warn!("market data bus: Redis unreachable ({error}); holding prints, trading goes on");
                }
            }
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.next_try = None;
        self.flush();
        if !self.held.is_empty() {
            tracing::error!(prints = self.held.len(), "market data bus: Redis unreachable at exit; held prints were not published");
        }
    }
}
