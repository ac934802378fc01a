//! The Redis backend: the state of one runtime is one hash (`runtime:<namespace>:state`),
//! and a commit is one MULTI/EXEC, so it is atomic.
//!
//! Redis may go away while the market runs. Trading must not stop for that: a commit that
//! cannot reach Redis is kept in memory, the outage is reported once, and what was
//! buffered is applied as one atomic commit as soon as Redis answers again. Buffered
//! commits are folded into the last write of each key (a later checkpoint replaces an
//! earlier one; a journal entry written then deleted leaves a delete), so an outage of
//! any length holds one checkpoint and the journal since, never a pile of them. While it
//! is away, retries are spaced out so the event loop never waits on timeouts batch after
//! batch.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::runtime::Runtime;

use super::{redact_url, StateStore, StoreError, Write};

const TIMEOUT: Duration = Duration::from_millis(500);
const RETRY_EVERY: Duration = Duration::from_secs(1);

pub struct RedisStore {
    rt: Runtime,
    conn: ConnectionManager,
    key: String,
    shown: String,
    /// The last write of each key not yet applied.
    buffer: BTreeMap<String, Write>,
    /// Commits folded into `buffer`.
    buffered_commits: usize,
    outage_since: Option<Instant>,
    outages: u64,
    next_try: Option<Instant>,
}

impl RedisStore {
    /// Connects; fails when Redis cannot be reached now.
    pub fn connect(url: &str, namespace: &str) -> Result<Self, StoreError> {
        let shown = format!("redis {} ({namespace})", redact_url(url));
        let fail = |reason: String| StoreError::Backend { backend: shown.clone(), reason };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| fail(e.to_string()))?;
        let client = redis::Client::open(url).map_err(|e| fail(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let conn = rt.block_on(ConnectionManager::new_with_config(client, config)).map_err(|e| fail(e.to_string()))?;
        Ok(RedisStore { rt, conn, key: format!("runtime:{namespace}:state"), shown, buffer: BTreeMap::new(), buffered_commits: 0, outage_since: None, outages: 0, next_try: None })
    }

    fn fail(&self, reason: impl ToString) -> StoreError {
        StoreError::Backend { backend: self.shown.clone(), reason: reason.to_string() }
    }

    fn apply(&mut self, writes: &[Write]) -> redis::RedisResult<()> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for write in writes {
            match write {
                Write::Put(field, value) => pipe.hset(&self.key, field, value.as_slice()).ignore(),
                Write::Delete(field) => pipe.hdel(&self.key, field).ignore(),
            };
        }
        let mut conn = self.conn.clone();
        self.rt.block_on(async { tokio::time::timeout(TIMEOUT * 2, pipe.query_async::<()>(&mut conn)).await })
            .unwrap_or_else(|_| Err(redis::RedisError::from((redis::ErrorKind::Io, "timed out"))))
    }

    /// Applies what is buffered as one commit; on failure it stays buffered.
    fn flush(&mut self) {
        if self.next_try.is_some_and(|t| Instant::now() < t) || self.buffer.is_empty() {
            return;
        }
        {
            let writes: Vec<Write> = self.buffer.values().cloned().collect();
            match self.apply(&writes) {
                Ok(()) => {
                    self.buffer.clear();
                    self.buffered_commits = 0;
                }
                Err(error) => {
                    if self.outage_since.is_none() {
                        tracing::warn!(store = %self.shown, "Redis unreachable ({error}); trading goes on from memory and writes are buffered");
                        self.outage_since = Some(Instant::now());
                        self.outages += 1;
                    }
                    self.next_try = Some(Instant::now() + RETRY_EVERY);
                    return;
                }
            }
        }
        if let Some(since) = self.outage_since.take() {
            tracing::info!(store = %self.shown, seconds = since.elapsed().as_secs_f64(), "Redis is back; buffered writes applied");
        }
        self.next_try = None;
    }
}

impl StateStore for RedisStore {
    fn outages(&self) -> u64 {
        self.outages
    }

    fn commit(&mut self, writes: Vec<Write>) -> Result<(), StoreError> {
        for write in writes {
            let key = match &write {
                Write::Put(key, _) | Write::Delete(key) => key.clone(),
            };
            self.buffer.insert(key, write);
        }
        self.buffered_commits += 1;
        self.flush();
        Ok(())
    }

    /// Reads retry a few times on a dropped connection: the first command after Redis
    /// restarted meets the old socket, and the connection manager reconnects behind it.
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let hash = self.key.clone();
        let mut last = None;
        for _ in 0..3 {
            let mut conn = self.conn.clone();
            let read = self.rt.block_on(async {
                tokio::time::timeout(TIMEOUT * 2, redis::cmd("HGET").arg(&hash).arg(key).query_async::<Option<Vec<u8>>>(&mut conn)).await
            });
            match read {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(error)) if error.is_io_error() || error.is_connection_dropped() || error.is_connection_refusal() => last = Some(error.to_string()),
                Ok(Err(error)) => return Err(self.fail(error)),
                Err(_) => last = Some("timed out".into()),
            }
        }
        Err(self.fail(last.unwrap_or_default()))
    }

    fn buffered(&self) -> usize {
        self.buffered_commits
    }

    fn buffered_bytes(&self) -> usize {
        self.buffer
            .values()
            .map(|w| match w {
                Write::Put(key, value) => key.len() + value.len(),
                Write::Delete(key) => key.len(),
            })
            .sum()
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        self.next_try = None;
        self.flush();
        match self.buffered_commits {
            0 => Ok(()),
            n => Err(self.fail(format!("unreachable; {n} commits still buffered"))),
        }
    }

    fn describe(&self) -> String {
        self.shown.clone()
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        // A last chance for what an outage held back.
        if self.sync().is_err() {
            tracing::error!(store = %self.shown, commits = self.buffered_commits, "Redis still unreachable at exit: buffered writes are lost");
        }
    }
}
