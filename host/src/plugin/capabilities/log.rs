//! `log`: a strategy's messages go into the host's structured log, tagged with the
//! instance, within a budget: a guest that logs in a loop must not fill the disk or bury
//! the host's own lines. Each message is cut to [`MAX_MESSAGE_CHARS`] and its control
//! characters escaped (a `\n` cannot forge a host log line); past [`LINES_PER_SECOND`] or
//! [`BYTES_PER_SECOND`] in a second, messages are dropped and counted, and the count is
//! logged once the second is over.

use std::time::{Duration, Instant};

use crate::model::shown;
use crate::plugin::bindings::trading::strategy::log::{Host, Level};
use crate::plugin::HostState;

/// One instance's budget, shared by the `log` import and WASI's stdout and stderr.
pub type SharedLogBudget = std::sync::Arc<std::sync::Mutex<LogBudget>>;

pub const MAX_MESSAGE_CHARS: usize = 1024;
pub const LINES_PER_SECOND: u32 = 200;
pub const BYTES_PER_SECOND: usize = 64 << 10;
const WINDOW: Duration = Duration::from_secs(1);

/// One instance's log budget, on the wall clock (the log is a host resource, whatever
/// the replay's clock says).
#[derive(Debug)]
pub struct LogBudget {
    strategy: String,
    window_start: Instant,
    lines: u32,
    bytes: usize,
    dropped_lines: u64,
    dropped_bytes: u64,
    /// Lines dropped since the host last took the count into the strategy's stats; an
    /// atomic beside the lock, so that the host's look after every call takes no lock.
    pub dropped_since_taken: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl LogBudget {
    pub fn new(strategy: &str) -> Self {
        LogBudget { strategy: strategy.to_string(), window_start: Instant::now(), lines: 0, bytes: 0, dropped_lines: 0, dropped_bytes: 0, dropped_since_taken: Default::default() }
    }

    /// Whether a message of `bytes` may be written now; counts it either way.
    pub fn admit(&mut self, bytes: usize) -> bool {
        let now = Instant::now();
        if now.duration_since(self.window_start) >= WINDOW {
            self.report();
            self.window_start = now;
            self.lines = 0;
            self.bytes = 0;
        }
        if self.lines >= LINES_PER_SECOND || self.bytes.saturating_add(bytes) > BYTES_PER_SECOND {
            self.dropped_lines += 1;
            self.dropped_bytes += bytes as u64;
            self.dropped_since_taken.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return false;
        }
        self.lines += 1;
        self.bytes += bytes;
        true
    }

    /// Says how much was dropped since the last report, if anything was.
    pub fn report(&mut self) {
        if self.dropped_lines > 0 {
            tracing::warn!(
                target: "strategy",
                strategy = %self.strategy,
                dropped_lines = self.dropped_lines,
                dropped_bytes = self.dropped_bytes,
                "log budget exceeded ({LINES_PER_SECOND} lines or {BYTES_PER_SECOND} bytes a second): lines dropped"
            );
            self.dropped_lines = 0;
            self.dropped_bytes = 0;
        }
    }
}

impl Drop for LogBudget {
    fn drop(&mut self) {
        self.report();
    }
}

impl Host for HostState {
    fn write(&mut self, level: Level, message: String) {
        let message = shown(&message, MAX_MESSAGE_CHARS);
        if !self.log_budget.lock().unwrap_or_else(|p| p.into_inner()).admit(message.len()) {
            return;
        }
        let strategy = self.strategy.as_str();
        match level {
            Level::Trace => tracing::trace!(target: "strategy", strategy, "{message}"),
            Level::Debug => tracing::debug!(target: "strategy", strategy, "{message}"),
            Level::Info => tracing::info!(target: "strategy", strategy, "{message}"),
            Level::Warn => tracing::warn!(target: "strategy", strategy, "{message}"),
            Level::Error => tracing::error!(target: "strategy", strategy, "{message}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_drops_and_counts_past_its_lines() {
        let mut budget = LogBudget::new("t");
        let admitted = (0..1000).filter(|_| budget.admit(10)).count();
        assert_eq!(admitted, LINES_PER_SECOND as usize);
        assert_eq!(budget.dropped_since_taken.load(std::sync::atomic::Ordering::Relaxed), 1000 - LINES_PER_SECOND as u64);
    }

    #[test]
    fn the_budget_drops_past_its_bytes() {
        let mut budget = LogBudget::new("t");
        let admitted = (0..100).filter(|_| budget.admit(4096)).count();
        assert_eq!(admitted, BYTES_PER_SECOND / 4096);
    }
}
