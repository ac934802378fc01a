//! What a run and each strategy in it have done: the counters the summary prints and a
//! checkpoint carries across a restart. Below the engine, so the checkpoint can save them
//! without knowing the engine.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Decimal, InstrumentId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SlotStatus {
    Running,
    /// Stopped by a trap; its orders were cancelled.
    Failed(String),
    /// Never started: init refused or could not run.
    Refused(String),
    /// Stopped by the operator (the kill switch); its orders were cancelled.
    Stopped(String),
}

/// What one strategy did, for the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrategyStats {
    pub events: u64,
    pub calls: u64,
    pub placed: u64,
    pub refused: u64,
    pub rejected: u64,
    pub canceled: u64,
    pub fills: u64,
    pub swaps: u64,
    /// Log lines dropped over the strategy's log budget.
    #[serde(default)]
    pub log_dropped: u64,
    pub positions: BTreeMap<InstrumentId, Position>,
    /// The highest PnL marked so far, from which drawdown is measured (kept only while a
    /// drawdown limit applies).
    #[serde(default)]
    pub peak_pnl: Option<Decimal>,
}

/// Executed volume of one strategy on one instrument.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub bought: Decimal,
    pub sold: Decimal,
    pub buy_notional: Decimal,
    pub sell_notional: Decimal,
    pub fees: Decimal,
}

impl Position {
    pub fn net(&self) -> Decimal {
        self.bought.saturating_sub(self.sold)
    }

    /// Realised and unrealised PnL with the position marked at `mark`, fees paid: what
    /// the summary prints and the loss limits look at. Saturating, on a venue's figures.
    pub fn pnl(&self, mark: Decimal) -> Decimal {
        self.sell_notional.saturating_sub(self.buy_notional).saturating_add(self.net().saturating_mul(mark)).saturating_sub(self.fees)
    }
    /// The price a position is marked at: the last trade, or before any the strategy's own
    /// average fill price there (no gain or loss claimed on a price nobody has printed).
    pub fn mark(&self, last: Option<Decimal>) -> Decimal {
        last.unwrap_or_else(|| self.buy_notional.saturating_add(self.sell_notional).checked_div(self.bought.saturating_add(self.sold)).unwrap_or_default())
    }
}

impl StrategyStats {
    /// PnL over every instrument, each marked at [`Position::mark`] of its last trade.
    pub fn pnl(&self, last: impl Fn(InstrumentId) -> Option<Decimal>) -> Decimal {
        self.positions.iter().fold(Decimal::ZERO, |sum, (instrument, p)| sum.saturating_add(p.pnl(p.mark(last(*instrument)))))
    }
}

/// Counters of the whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStats {
    pub prints: u64,
    pub batches: u64,
    pub feed_errors: u64,
    pub first_feed_errors: Vec<String>,
    pub first_ts: Option<i64>,
    pub last_ts: Option<i64>,
}
