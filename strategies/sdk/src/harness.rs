//! Drives a strategy's logic natively in `cargo test`, with an in-memory host.
//!
//! The harness is a double of the host's *imports* only; it does not match orders. Tests
//! feed the events they want (trades, fills, order updates, timers) and assert on the
//! actions the strategy returns. Matching and routing are tested in the runtime against
//! the built component.

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;

use crate::types::*;
use crate::{Host, Strategy};

/// An in-memory [`Host`]: instruments you register, a clock you set, seeded randomness.
#[derive(Debug, Default)]
pub struct TestHost {
    pub now_ms: i64,
    pub instruments: Vec<InstrumentInfo>,
    pub trades: HashMap<InstrumentId, Vec<PublicTrade>>,
    pub books: HashMap<InstrumentId, BookSnapshot>,
    pub state: BTreeMap<String, Vec<u8>>,
    pub logs: Vec<(LogLevel, String)>,
    /// What `balances`, `position` and `open_orders` answer: set them as the test needs.
    pub balances: HashMap<VenueId, Vec<AssetBalance>>,
    pub positions: HashMap<InstrumentId, Decimal>,
    pub open_orders: Vec<RestingOrder>,
    /// The bands the strategy declared with [`Host::set_quiet`].
    pub quiet: Vec<QuietBand>,
    rng: u64,
}

impl TestHost {
    pub fn new() -> Self {
        TestHost { rng: 0x9E37_79B9_7F4A_7C15, ..Default::default() }
    }

    /// Registers an instrument with the given rules and returns its info (and handle).
    #[allow(clippy::too_many_arguments)]
    pub fn add_instrument(
        &mut self,
        venue: &str,
        symbol: &str,
        base: &str,
        quote: &str,
        tick_size: Decimal,
        lot_size: Decimal,
        min_qty: Decimal,
        min_notional: Decimal,
    ) -> InstrumentInfo {
        let venue_id = self
            .instruments
            .iter()
            .find(|i| i.venue_name == venue)
            .map(|i| i.venue)
            .unwrap_or_else(|| VenueId(self.instruments.iter().map(|i| i.venue.0 + 1).max().unwrap_or(0)));
        let info = InstrumentInfo {
            id: InstrumentId(self.instruments.len() as u32),
            venue: venue_id,
            venue_name: venue.to_string(),
            symbol: symbol.to_string(),
            base_asset: base.to_string(),
            quote_asset: quote.to_string(),
            tick_size,
            lot_size,
            min_qty,
            min_notional,
            paper: true,
        };
        self.instruments.push(info.clone());
        info
    }
}

impl Host for TestHost {
    fn log(&mut self, level: LogLevel, message: &str) {
        self.logs.push((level, message.to_string()));
    }
    fn now_ms(&mut self) -> i64 {
        self.now_ms
    }
    fn random_u64(&mut self) -> u64 {
        // splitmix64: deterministic and good enough for tests.
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn state_get(&mut self, key: &str) -> Option<Vec<u8>> {
        self.state.get(key).cloned()
    }
    fn state_set(&mut self, key: &str, value: &[u8]) {
        self.state.insert(key.to_string(), value.to_vec());
    }
    fn state_delete(&mut self, key: &str) {
        self.state.remove(key);
    }
    fn lookup(&mut self, venue: &str, symbol: &str) -> Result<InstrumentInfo, String> {
        self.instruments
            .iter()
            .find(|i| i.venue_name == venue && i.symbol == symbol)
            .cloned()
            .ok_or_else(|| format!("unknown instrument {symbol} on venue {venue}"))
    }
    fn recent_trades(&mut self, instrument: InstrumentId, limit: u32) -> Vec<PublicTrade> {
        let all = self.trades.get(&instrument).map(Vec::as_slice).unwrap_or(&[]);
        all[all.len().saturating_sub(limit as usize)..].to_vec()
    }
    fn book(&mut self, instrument: InstrumentId, depth: u32) -> Option<BookSnapshot> {
        self.books.get(&instrument).map(|b| BookSnapshot {
            instrument: b.instrument,
            bids: b.bids.iter().take(depth as usize).copied().collect(),
            asks: b.asks.iter().take(depth as usize).copied().collect(),
            ts_ms: b.ts_ms,
        })
    }
    fn balances(&mut self, venue: VenueId) -> Vec<AssetBalance> {
        self.balances.get(&venue).cloned().unwrap_or_default()
    }
    fn position(&mut self, instrument: InstrumentId) -> Option<Decimal> {
        self.positions.get(&instrument).copied()
    }
    fn open_orders(&mut self, instrument: Option<InstrumentId>) -> Vec<RestingOrder> {
        self.open_orders.iter().filter(|o| instrument.is_none_or(|i| o.instrument == i)).cloned().collect()
    }
    fn set_quiet(&mut self, instrument: InstrumentId, low: Option<Decimal>, high: Option<Decimal>) {
        self.quiet.retain(|b| b.instrument != instrument);
        self.quiet.push(QuietBand { instrument, low, high });
    }
    fn clear_quiet(&mut self, instrument: InstrumentId) {
        self.quiet.retain(|b| b.instrument != instrument);
    }
}

impl TestHost {
    /// Whether the runtime would hold `trade` under the strategy's declared bands.
    pub fn holds(&self, trade: &PublicTrade) -> bool {
        self.quiet.iter().any(|b| b.holds(trade))
    }
}

/// A strategy instance and its test host.
pub struct Harness<S: Strategy> {
    pub strategy: S,
    pub subscriptions: Subscriptions,
    pub host: TestHost,
}

impl<S: Strategy> Harness<S> {
    /// Initialises the strategy with `params` against a prepared host.
    pub fn init(mut host: TestHost, params: &str) -> Result<Self, String> {
        let (strategy, subscriptions) = S::init(params, &mut host)?;
        Ok(Harness { strategy, subscriptions, host })
    }

    /// Delivers one batch; public trades are also recorded for `recent_trades`, and the
    /// clock moves to the latest event time. A batch made only of trades inside the
    /// strategy's quiet bands ([`Host::set_quiet`]) that makes it act fails the test: the
    /// runtime would have held those trades and handed the actions over late.
    pub fn feed(&mut self, events: Vec<Event>) -> Vec<Action> {
        let quiet = !events.is_empty() && events.iter().all(|e| matches!(e, Event::Trade(t) if self.host.holds(t)));
        for event in &events {
            let ts = match event {
                Event::Trade(t) => {
                    self.host.trades.entry(t.instrument).or_default().push(t.clone());
                    Some(t.ts_ms)
                }
                Event::Book(b) => {
                    self.host.books.insert(b.instrument, b.clone());
                    Some(b.ts_ms)
                }
                Event::Fill(f) => Some(f.ts_ms),
                Event::Order(o) => Some(o.ts_ms),
                Event::Timer(ts) => Some(*ts),
                Event::Params(_) | Event::Halted(_) | Event::Resumed => None,
            };
            if let Some(ts) = ts {
                self.host.now_ms = self.host.now_ms.max(ts);
            }
        }
        let actions = self.strategy.on_events(&events, &mut self.host);
        assert!(!quiet || actions.is_empty(), "the strategy acted on trades inside its own quiet band (its promise to the runtime): {actions:?} after {events:?}");
        actions
    }

    /// Plays a recorded trades file (Binance's public-data layout: `id,price,qty,
    /// quote_qty,time,is_buyer_maker`, a header line allowed) into the strategy as public
    /// trades of `instrument`, `batch` trades a call, and returns every action it took
    /// with the time it took it. A line that does not parse is an error naming it.
    pub fn replay_csv(&mut self, path: &std::path::Path, instrument: InstrumentId, batch: usize) -> Result<Vec<(i64, Action)>, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut actions = Vec::new();
        let mut pending = Vec::with_capacity(batch.max(1));
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() || (n == 0 && line.starts_with("id,")) {
                continue;
            }
            let trade = parse_trade_line(line, instrument).map_err(|e| format!("{}:{}: {e}: {line}", path.display(), n + 1))?;
            pending.push(Event::Trade(trade));
            if pending.len() >= batch.max(1) {
                let events = std::mem::take(&mut pending);
                let decided = self.feed(events);
                actions.extend(decided.into_iter().map(|a| (self.host.now_ms, a)));
            }
        }
        if !pending.is_empty() {
            let decided = self.feed(pending);
            actions.extend(decided.into_iter().map(|a| (self.host.now_ms, a)));
        }
        Ok(actions)
    }

    /// Does what the runtime does on a hot swap: snapshot, a fresh `init` with the same
    /// params, `restore`. Proves the state round-trips.
    pub fn swap(&mut self, params: &str) -> Result<(), String> {
        let state = self.strategy.snapshot();
        let (mut next, subscriptions) = S::init(params, &mut self.host)?;
        next.restore(&state, &mut self.host)?;
        self.strategy = next;
        self.subscriptions = subscriptions;
        Ok(())
    }
}

/// One line of a Binance trades file as a public trade: the seller took liquidity when the
/// buyer was the maker.
fn parse_trade_line(line: &str, instrument: InstrumentId) -> Result<PublicTrade, String> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    let [id, price, qty, _quote, time, buyer_is_maker] = fields.as_slice() else { return Err(format!("{} fields, not 6", fields.len())) };
    let aggressor = match *buyer_is_maker {
        "true" | "True" => Side::Sell,
        "false" | "False" => Side::Buy,
        other => return Err(format!("is_buyer_maker {other:?}")),
    };
    Ok(PublicTrade {
        instrument,
        trade_id: id.parse().map_err(|_| format!("id {id:?}"))?,
        price: price.parse().map_err(|_| format!("price {price:?}"))?,
        qty: qty.parse().map_err(|_| format!("qty {qty:?}"))?,
        aggressor,
        ts_ms: time.parse().map_err(|_| format!("time {time:?}"))?,
    })
}

/// Shorthand for a public trade event in tests.
pub fn trade(instrument: InstrumentId, trade_id: u64, price: Decimal, qty: Decimal, aggressor: Side, ts_ms: i64) -> Event {
    Event::Trade(PublicTrade { instrument, trade_id, price, qty, aggressor, ts_ms })
}

/// Shorthand for a fill event in tests (fees zero, taker).
#[allow(clippy::too_many_arguments)]
pub fn fill(instrument: InstrumentId, client_order_id: &str, owner: Whose, trade_id: &str, side: Side, price: Decimal, qty: Decimal, ts_ms: i64) -> Event {
    Event::Fill(Fill {
        instrument,
        client_order_id: client_order_id.to_string(),
        owner,
        trade_id: trade_id.to_string(),
        side,
        price,
        qty,
        fee: Decimal::ZERO,
        fee_asset: String::new(),
        liquidity: Liquidity::Taker,
        ts_ms,
    })
}

/// Shorthand for an update of one of the strategy's orders in tests: `filled` of it
/// executed, `remaining` still open (zero once final), `reason` as a venue or the host
/// would give it.
pub fn order_update(instrument: InstrumentId, client_order_id: &str, status: OrderStatus, filled: Decimal, remaining: Decimal, reason: Option<&str>, ts_ms: i64) -> Event {
    Event::Order(OrderUpdate {
        instrument,
        client_order_id: client_order_id.to_string(),
        owner: Whose::Mine,
        status,
        filled_qty: filled,
        remaining_qty: remaining,
        reason: reason.map(str::to_string),
        ts_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_line_parses_exactly_and_a_bad_one_is_named() {
        let t = parse_trade_line("42377944,9682.10,0.132,1278.024,1582329602111,true", InstrumentId(3)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((t.trade_id, t.price, t.qty, t.aggressor, t.ts_ms), (42377944, Decimal::new(968210, 2), Decimal::new(132, 3), Side::Sell, 1582329602111));
        assert!(parse_trade_line("1,x,1,1,1,false", InstrumentId(0)).err().unwrap_or_default().contains("price \"x\""));
        assert!(parse_trade_line("1,2,3", InstrumentId(0)).err().unwrap_or_default().contains("3 fields"));
    }
}
