//! The seam between a strategy and whatever runs it: the sandbox's imports, or the native
//! test harness.

use rust_decimal::Decimal;

use crate::types::{AssetBalance, BookSnapshot, InstrumentId, InstrumentInfo, LogLevel, PublicTrade, RestingOrder, VenueId};

/// Everything a strategy may ask of the runtime. Inside the component each call is one
/// import of the WIT world; under [`crate::harness`] it is an in-memory double.
pub trait Host {
    fn log(&mut self, level: LogLevel, message: &str);
    /// Milliseconds since the Unix epoch on the clock of the events being processed.
    fn now_ms(&mut self) -> i64;
    /// Host-seeded randomness: reproducible runs.
    fn random_u64(&mut self) -> u64;
    fn state_get(&mut self, key: &str) -> Option<Vec<u8>>;
    fn state_set(&mut self, key: &str, value: &[u8]);
    fn state_delete(&mut self, key: &str);
    /// Resolves a configured venue and symbol; fails for unknown ones.
    fn lookup(&mut self, venue: &str, symbol: &str) -> Result<InstrumentInfo, String>;
    fn recent_trades(&mut self, instrument: InstrumentId, limit: u32) -> Vec<PublicTrade>;
    fn book(&mut self, instrument: InstrumentId, depth: u32) -> Option<BookSnapshot>;
    /// The account's balances on a venue (a live venue's as it said at its last account
    /// refresh); empty when not known.
    fn balances(&mut self, venue: VenueId) -> Vec<AssetBalance>;
    /// What the account holds of an instrument: the position in a contract, the base
    /// asset's balance on a spot pair; none when not known. After a live start, this is
    /// how a strategy learns of a position it did not build.
    fn position(&mut self, instrument: InstrumentId) -> Option<Decimal>;
    /// This strategy's open orders as the host knows them, on one instrument or all.
    fn open_orders(&mut self, instrument: Option<InstrumentId>) -> Vec<RestingOrder>;
    /// Promises that a batch of trades on `instrument` priced strictly between `low` and
    /// `high` (None: unbounded on that side) would make the strategy decide nothing and
    /// change nothing but its own state (contract 0.1.4's `quiet`). The runtime then holds
    /// such trades and hands them over later, together, at the start of the next call,
    /// split back into the batches they were (see [`crate::Strategy::on_events`]), so the
    /// strategy decides exactly as it would have. Replaces the instrument's band; at most
    /// 64 instruments have one. Under [`crate::harness`] a strategy that acts on a batch
    /// inside its band fails the test.
    fn set_quiet(&mut self, instrument: InstrumentId, low: Option<Decimal>, high: Option<Decimal>);
    /// Withdraws the promise of [`Host::set_quiet`] for `instrument`.
    fn clear_quiet(&mut self, instrument: InstrumentId);

    /// A uniform integer in `0..bound` (0 when `bound` is 0), without modulo bias.
    fn random_below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        let zone = u64::MAX - (u64::MAX % bound);
        loop {
            let r = self.random_u64();
            if r < zone {
                return r % bound;
            }
        }
    }
}
