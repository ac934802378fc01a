//! What a checkpoint holds: everything the engine needs to carry on exactly where it was,
//! after a crash or a kill. It is written atomically between two batches, so it is never
//! half of one batch and half of the next.
//!
//! In paper mode the venues are part of the process, so they are part of the checkpoint
//! too, with the position of every market data feed; because replays are deterministic
//! (recorded data, seeded randomness, ids derived from intents), resuming from the last
//! checkpoint produces exactly the run that was interrupted: no fill lost, no order twice.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::engine::{RunStats, SlotStatus, StrategyStats};
use crate::router::RouterState;
use crate::venue::paper::PaperState;

/// Bump when the layout changes, so an old checkpoint is refused, not misread.
pub const FORMAT: u32 = 1;
/// The store key of the checkpoint.
pub const KEY: &str = "checkpoint";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub format: u32,
    /// How many checkpoints this run has written, this one included.
    pub seq: u64,
    /// Identifies the venues, feeds and strategy instances it belongs to.
    pub config_digest: String,
    pub clock_ms: i64,
    /// Where each feed was, in config order.
    pub feeds: Vec<FeedPosition>,
    pub stats: RunStats,
    pub router: RouterState,
    pub venues: Vec<PaperState>,
    pub slots: Vec<SlotState>,
    /// Live venues by id: the last fill seen and the trade ids around it, so a restart
    /// reconciles from there without delivering a fill twice.
    #[serde(default)]
    pub live: Vec<(u32, crate::venue::live::LiveState)>,
}

/// The key of the `n`th order journalled since the last checkpoint: written before the
/// order is sent to a live venue, deleted once a checkpoint holds it.
pub fn journal_key(n: u64) -> String {
    format!("journal:{n}")
}

/// How far a feed had been read: records taken from the source, good or bad, and whether
/// the last of them was a good print read ahead and not yet replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedPosition {
    pub consumed: u64,
    pub peeked: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotState {
    pub name: String,
    pub status: SlotStatus,
    pub stats: StrategyStats,
    pub next_timer: Option<i64>,
    /// The strategy's own snapshot; none if it had stopped.
    pub snapshot: Option<Vec<u8>>,
    pub kv: BTreeMap<String, Vec<u8>>,
    pub params: String,
    /// Position in the instance's seeded random stream.
    pub random_position: u128,
}

/// A digest of what a checkpoint must match: venues, instruments, feeds and the strategy
/// instances with their components. Params may differ (they can change while running).
pub fn config_digest(config: &Config) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!("{:?}", config.mode));
    hasher.update(format!("{:?}", config.venues));
    for s in &config.strategies {
        hasher.update(format!("{}={};", s.name, s.component));
    }
    hex::encode(&hasher.finalize()[..8])
}
