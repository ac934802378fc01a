//! The strategy to read first.
//!
//! `hello` quotes one small bid and one small ask a few ticks around the last trade of one
//! instrument, moves its quotes when the market moves, and keeps track of its position
//! from its own fills. It shows every part of the contract:
//!
//! - `init` reads params, looks up the instrument (its handle and trading rules) and says
//!   what it wants to receive;
//! - `on_events` reacts to trades, fills and order updates and returns actions;
//! - `snapshot`/`restore` carry the position over a hot swap;
//! - client order ids are deterministic (one per quote generation), so a retry can never
//!   place a quote twice.
//!
//! Build it with `strategies/build.sh`; it lands in `strategies/hello.wasm`.

use serde::{Deserialize, Serialize};
use strategy_sdk::decimal::{round_step, Rounding};
use strategy_sdk::{
    export_strategy, ids, Action, Decimal, Event, Host, InstrumentInfo, LogLevel, OrderRequest, Side, Strategy, Subscriptions, TimeInForce,
};

/// Params from the `[strategy.params]` table of the config. Decimals come as strings
/// so they are exact.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    venue: String,
    symbol: String,
    /// Quote size, in base units.
    qty: Decimal,
    /// Distance of each quote from the last trade, in ticks.
    #[serde(default = "default_offset")]
    offset_ticks: u32,
}

fn default_offset() -> u32 {
    5
}

/// What survives a hot swap: everything a new version needs to carry on.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    position: Decimal,
    /// How many times the quotes were moved; part of each client order id.
    generation: u64,
    /// Ids of our quotes that may still rest.
    live_quotes: Vec<String>,
    /// The price our quotes are around; they move when the market leaves it.
    anchor: Option<Decimal>,
    /// Set while the host has halted us: `Some(true)` when orders that reduce the
    /// position may still go out. Quoting anything else would only be refused.
    #[serde(default)]
    halted: Option<bool>,
    /// While halted: the cancels of `live_quotes` are on their way.
    #[serde(default)]
    cancelling: bool,
}

struct Hello {
    params: Params,
    info: InstrumentInfo,
    /// Everything that decides what happens next lives here, so a hot swap or a restart
    /// from a checkpoint carries on exactly.
    state: State,
}

impl Hello {
    fn requote(&mut self, last: Decimal, host: &mut dyn Host) -> Vec<Action> {
        if self.state.halted.is_some() && !self.state.live_quotes.is_empty() {
            // Halted, an order passes only if it reduces the position with our open orders
            // counted as filled: the old quote must be gone before its replacement goes.
            if std::mem::replace(&mut self.state.cancelling, true) {
                return Vec::new();
            }
            return self.state.live_quotes.iter().map(|id| Action::Cancel { instrument: self.info.id, client_order_id: id.clone() }).collect();
        }
        self.state.cancelling = false;
        let offset = self.info.tick_size * Decimal::from(self.params.offset_ticks);
        let mut actions: Vec<Action> = self
            .state
            .live_quotes
            .drain(..)
            .map(|client_order_id| Action::Cancel { instrument: self.info.id, client_order_id })
            .collect();
        self.state.generation += 1;
        self.state.anchor = Some(last);
        let generation = self.state.generation.to_string();
        for side in [Side::Buy, Side::Sell] {
            let mut qty = self.params.qty;
            if let Some(reducing_allowed) = self.state.halted {
                // Halted: only the side that brings the position back to zero, no further.
                let reduces = side.sign() * self.state.position < Decimal::ZERO;
                qty = qty.min(self.state.position.abs());
                if !reducing_allowed || !reduces || qty < self.info.min_qty {
                    continue;
                }
            }
            let raw = match side {
                Side::Buy => last - offset,
                Side::Sell => last + offset,
            };
            // Round away from the market so a quote never crosses by rounding.
            let price = round_step(raw, self.info.tick_size, Rounding::passive(side));
            let id = ids::client_order_id("hello", &[&generation, if side == Side::Buy { "b" } else { "a" }]);
            self.state.live_quotes.push(id.clone());
            actions.push(Action::Place(OrderRequest::limit(id, self.info.id, side, price, qty, TimeInForce::PostOnly)));
        }
        host.log(LogLevel::Debug, &format!("requoted around {last} (generation {generation})"));
        actions
    }
}

impl Strategy for Hello {
    fn init(params: &str, host: &mut dyn Host) -> Result<(Self, Subscriptions), String> {
        let params: Params = serde_json::from_str(params).map_err(|e| format!("bad params: {e}"))?;
        let info = host.lookup(&params.venue, &params.symbol)?;
        if params.qty < info.min_qty {
            return Err(format!("qty {} is below the instrument's minimum {}", params.qty, info.min_qty));
        }
        let subscriptions = Subscriptions { trades: vec![info.id], ..Default::default() };
        host.log(LogLevel::Info, &format!("quoting {} on {}", info.symbol, info.venue_name));
        Ok((Hello { params, info, state: State::default() }, subscriptions))
    }

    fn on_events(&mut self, events: &[Event], host: &mut dyn Host) -> Vec<Action> {
        let mut last = None;
        for event in events {
            match event {
                Event::Trade(trade) => last = Some(trade.price),
                Event::Fill(fill) if fill.is_mine() => {
                    self.state.position += fill.side.sign() * fill.qty;
                    host.log(LogLevel::Debug, &format!("filled {} {} at {}; position {}", fill.side_name(), fill.qty, fill.price, self.state.position));
                }
                Event::Order(update) if update.status.is_final() => {
                    self.state.live_quotes.retain(|id| id != &update.client_order_id);
                    if self.state.halted.is_some() && self.state.live_quotes.is_empty() {
                        // Whatever was being replaced is gone: quote at the next trade.
                        self.state.anchor = None;
                    }
                }
                // The host cancels our quotes itself at a halt; the next trade requotes.
                Event::Halted(halt) => {
                    host.log(LogLevel::Warn, &format!("halted by the host: {}", halt.reason));
                    self.state.halted = Some(halt.reducing_allowed);
                    self.state.anchor = None;
                }
                Event::Resumed => {
                    host.log(LogLevel::Info, "resumed by the host: quoting both sides again");
                    self.state.halted = None;
                    self.state.anchor = None;
                }
                _ => {}
            }
        }
        // Requote only when the market moved past our offset: fewer orders, same job.
        let Some(last) = last else { return Vec::new() };
        let threshold = self.info.tick_size * Decimal::from(self.params.offset_ticks);
        match self.state.anchor {
            Some(anchor) if (last - anchor).abs() < threshold => Vec::new(),
            _ => self.requote(last, host),
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(&self.state).unwrap_or_default()
    }

    fn restore(&mut self, state: &[u8], _host: &mut dyn Host) -> Result<(), String> {
        self.state = serde_json::from_slice(state).map_err(|e| format!("unreadable state: {e}"))?;
        Ok(())
    }
}

/// A small convenience the SDK leaves to strategies: how to print a side.
trait SideName {
    fn side_name(&self) -> &'static str;
}

impl SideName for strategy_sdk::Fill {
    fn side_name(&self) -> &'static str {
        match self.side {
            Side::Buy => "bought",
            Side::Sell => "sold",
        }
    }
}

export_strategy!(Hello);

#[cfg(test)]
mod tests {
    use super::*;
    use strategy_sdk::harness::{fill, order_update, trade, Harness, TestHost};
    use strategy_sdk::{InstrumentId, OrderStatus, Whose};

    fn d(s: &str) -> Decimal {
        s.parse().unwrap_or_default()
    }

    fn harness() -> Harness<Hello> {
        let mut host = TestHost::new();
        host.add_instrument("paper", "BTCUSDT", "BTC", "USDT", d("0.1"), d("0.001"), d("0.001"), d("5"));
        Harness::init(host, r#"{"venue":"paper","symbol":"BTCUSDT","qty":"0.002"}"#).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn quotes_around_the_first_trade_and_not_again_for_small_moves() {
        let mut h = harness();
        let actions = h.feed(vec![trade(InstrumentId(0), 1, d("100.0"), d("1"), Side::Buy, 1_000)]);
        let prices: Vec<_> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Place(o) => Some((o.side, o.limit_price())),
                _ => None,
            })
            .collect();
        assert_eq!(prices, vec![(Side::Buy, Some(d("99.5"))), (Side::Sell, Some(d("100.5")))]);
        assert!(h.feed(vec![trade(InstrumentId(0), 2, d("100.2"), d("1"), Side::Buy, 1_001)]).is_empty());
        let moved = h.feed(vec![trade(InstrumentId(0), 3, d("101.0"), d("1"), Side::Buy, 1_002)]);
        assert_eq!(moved.iter().filter(|a| matches!(a, Action::Cancel { .. })).count(), 2);
    }

    #[test]
    fn position_survives_a_swap() {
        let mut h = harness();
        h.feed(vec![trade(InstrumentId(0), 1, d("100.0"), d("1"), Side::Buy, 1_000)]);
        h.feed(vec![fill(InstrumentId(0), "x", Whose::Mine, "t1", Side::Buy, d("99.5"), d("0.002"), 1_001)]);
        h.swap(r#"{"venue":"paper","symbol":"BTCUSDT","qty":"0.002"}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(h.strategy.state.position, d("0.002"));
        assert_eq!(h.strategy.state.generation, 1);
    }

    #[test]
    fn halted_it_quotes_only_what_reduces_its_position_and_both_sides_after_the_resume() {
        let mut h = harness();
        h.feed(vec![trade(InstrumentId(0), 1, d("100.0"), d("1"), Side::Buy, 1_000)]);
        h.feed(vec![fill(InstrumentId(0), "x", Whose::Mine, "t1", Side::Buy, d("99.5"), d("0.001"), 1_001)]);
        let places = |actions: &[Action]| -> Vec<(Side, Decimal)> {
            actions.iter().filter_map(|a| match a { Action::Place(o) => Some((o.side, o.qty)), _ => None }).collect()
        };
        // The host cancels every resting order at a halt: the updates follow the halt.
        let mut halt = vec![Event::Halted(strategy_sdk::Halt { reason: "risk.max_loss".into(), reducing_allowed: true })];
        halt.extend(h.strategy.state.live_quotes.iter().map(|id| order_update(InstrumentId(0), id, OrderStatus::Canceled, d("0"), d("0"), Some("halted: risk.max_loss"), 1_002)));
        assert!(places(&h.feed(halt)).is_empty());
        let halted = h.feed(vec![trade(InstrumentId(0), 2, d("100.0"), d("1"), Side::Buy, 1_003)]);
        assert_eq!(places(&halted), vec![(Side::Sell, d("0.001"))], "only a sell of the long position, no bigger");
        // The market moves: the quote is cancelled, and replaced only once the cancel is
        // confirmed (the host counts an open order as if it filled).
        let moved = h.feed(vec![trade(InstrumentId(0), 3, d("102.0"), d("1"), Side::Buy, 1_004)]);
        assert_eq!((places(&moved).len(), moved.len()), (0, 1), "{moved:?}");
        assert!(h.feed(vec![trade(InstrumentId(0), 4, d("102.5"), d("1"), Side::Buy, 1_005)]).is_empty(), "no second cancel while the first is on its way");
        let quote = h.strategy.state.live_quotes[0].clone();
        h.feed(vec![order_update(InstrumentId(0), &quote, OrderStatus::Canceled, d("0"), d("0"), None, 1_006)]);
        let replaced = h.feed(vec![trade(InstrumentId(0), 5, d("102.5"), d("1"), Side::Buy, 1_007)]);
        assert_eq!(places(&replaced), vec![(Side::Sell, d("0.001"))]);
        h.feed(vec![Event::Halted(strategy_sdk::Halt { reason: "operator".into(), reducing_allowed: false })]);
        let quote = h.strategy.state.live_quotes[0].clone();
        h.feed(vec![order_update(InstrumentId(0), &quote, OrderStatus::Canceled, d("0"), d("0"), Some("halted: operator"), 1_008)]);
        assert!(places(&h.feed(vec![trade(InstrumentId(0), 6, d("102.5"), d("1"), Side::Buy, 1_009)])).is_empty(), "no reducing allowed: nothing");
        h.feed(vec![Event::Resumed]);
        let resumed = h.feed(vec![trade(InstrumentId(0), 7, d("100.0"), d("1"), Side::Buy, 1_010)]);
        assert_eq!(places(&resumed), vec![(Side::Buy, d("0.002")), (Side::Sell, d("0.002"))]);
    }

    /// The recorded BTCUSDT trades the demo replays, through the harness: every quote is
    /// post-only and on the tick.
    #[test]
    fn quotes_follow_the_recorded_market() {
        let mut h = harness();
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/market-data/BTCUSDT-trades-2020-02-22.csv");
        let actions = h.replay_csv(&file, InstrumentId(0), 10).unwrap_or_else(|e| panic!("{e}"));
        let quotes: Vec<&OrderRequest> = actions.iter().filter_map(|(_, a)| match a { Action::Place(o) => Some(o), _ => None }).collect();
        assert!(quotes.len() > 100, "{} quotes", quotes.len());
        for q in quotes {
            let price = q.limit_price().unwrap_or_default();
            assert_eq!(price % d("0.1"), Decimal::ZERO, "{q:?}");
            assert!(matches!(q.order_type, strategy_sdk::OrderType::Limit { time_in_force: TimeInForce::PostOnly, .. }), "{q:?}");
        }
    }

    #[test]
    fn bad_params_are_refused_with_a_reason() {
        let mut host = TestHost::new();
        host.add_instrument("paper", "BTCUSDT", "BTC", "USDT", d("0.1"), d("0.001"), d("0.001"), d("5"));
        let err = Harness::<Hello>::init(host, r#"{"venue":"paper","symbol":"ETHUSDT","qty":"1"}"#).err().unwrap_or_default();
        assert!(err.contains("ETHUSDT"), "{err}");
    }
}
