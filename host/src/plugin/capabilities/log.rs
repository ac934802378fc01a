//! `log`: a strategy's messages go into the host's structured log, tagged with the
//! instance, and cut to a bounded length so a chatty guest cannot flood the log.

use crate::plugin::bindings::trading::strategy::log::{Host, Level};
use crate::plugin::HostState;

const MAX_MESSAGE: usize = 4096;

impl Host for HostState {
    fn write(&mut self, level: Level, message: String) {
        let mut message = message;
        if message.len() > MAX_MESSAGE {
            let mut cut = MAX_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
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
