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
use crate::stats::{RunStats, SlotStatus, StrategyStats};
use crate::router::RouterState;
use crate::venue::paper::PaperState;

/// Bump when the layout changes, so an old checkpoint is refused, not misread.
pub const FORMAT: u32 = 2;
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
    pub live: Vec<(u32, crate::venue::LiveState)>,
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
    /// The strategy's own snapshot; none if it had stopped. Base64, not a JSON array of
    /// numbers (four times the bytes).
    #[serde(with = "base64_bytes::option")]
    pub snapshot: Option<Vec<u8>>,
    #[serde(with = "base64_bytes::map")]
    pub kv: BTreeMap<String, Vec<u8>>,
    pub params: String,
    /// Position in the instance's seeded random stream.
    pub random_position: u128,
    /// Events delivered to the strategy's queue but not yet to the strategy.
    #[serde(default)]
    pub pending: Vec<crate::model::Event>,
    /// Why the risk engine halted it, if it is halted: a restart does not lift a halt.
    #[serde(default)]
    pub halted: Option<String>,
}

/// Bytes as base64 strings in the checkpoint's JSON.
mod base64_bytes {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
            match bytes {
                Some(b) => s.serialize_some(&STANDARD.encode(b)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
            Option::<String>::deserialize(d)?.map(|t| STANDARD.decode(t).map_err(serde::de::Error::custom)).transpose()
        }
    }

    pub mod map {
        use std::collections::BTreeMap;

        use super::*;

        pub fn serialize<S: Serializer>(map: &BTreeMap<String, Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
            s.collect_map(map.iter().map(|(k, v)| (k, STANDARD.encode(v))))
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Vec<u8>>, D::Error> {
            BTreeMap::<String, String>::deserialize(d)?
                .into_iter()
                .map(|(k, v)| STANDARD.decode(v).map(|v| (k, v)).map_err(serde::de::Error::custom))
                .collect()
        }
    }
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
