//! Glue between the generated bindings and the SDK's types, used by `export_strategy!`.
//! Conversions live here and nowhere else in the guest.

use std::cell::RefCell;

use rust_decimal::Decimal;

use crate::bindings::trading::strategy::{account, clock, log, market, quiet, random, state, types as wit};
use crate::types::*;
use crate::{Host, Strategy};

/// The host as seen from inside the component: each method is one import.
pub struct WasmHost;

impl Host for WasmHost {
    fn log(&mut self, level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Trace => log::Level::Trace,
            LogLevel::Debug => log::Level::Debug,
            LogLevel::Info => log::Level::Info,
            LogLevel::Warn => log::Level::Warn,
            LogLevel::Error => log::Level::Error,
        };
        log::write(level, message);
    }
    fn now_ms(&mut self) -> i64 {
        clock::now_ms()
    }
    fn random_u64(&mut self) -> u64 {
        random::next_u64()
    }
    fn state_get(&mut self, key: &str) -> Option<Vec<u8>> {
        state::get(key)
    }
    fn state_set(&mut self, key: &str, value: &[u8]) {
        state::set(key, value)
    }
    fn state_delete(&mut self, key: &str) {
        state::delete(key)
    }
    fn lookup(&mut self, venue: &str, symbol: &str) -> Result<InstrumentInfo, String> {
        market::lookup(venue, symbol).map(instrument_from_wit)
    }
    fn recent_trades(&mut self, instrument: InstrumentId, limit: u32) -> Vec<PublicTrade> {
        market::recent_trades(instrument.0, limit).into_iter().map(trade_from_wit).collect()
    }
    fn book(&mut self, instrument: InstrumentId, depth: u32) -> Option<BookSnapshot> {
        market::book(instrument.0, depth).map(book_from_wit)
    }
    fn balances(&mut self, venue: VenueId) -> Vec<AssetBalance> {
        account::balances(venue.0)
            .into_iter()
            .map(|b| AssetBalance { asset: b.asset, total: decimal_from_wit(b.total), available: b.available.map(decimal_from_wit) })
            .collect()
    }
    fn position(&mut self, instrument: InstrumentId) -> Option<Decimal> {
        account::position(instrument.0).map(decimal_from_wit)
    }
    fn set_quiet(&mut self, instrument: InstrumentId, low: Option<Decimal>, high: Option<Decimal>) {
        quiet::set(instrument.0, low.map(decimal_to_wit), high.map(decimal_to_wit))
    }
    fn clear_quiet(&mut self, instrument: InstrumentId) {
        quiet::clear(instrument.0)
    }
    fn open_orders(&mut self, instrument: Option<InstrumentId>) -> Vec<RestingOrder> {
        account::open_orders(instrument.map(|i| i.0))
            .into_iter()
            .map(|o| RestingOrder {
                instrument: InstrumentId(o.instrument),
                client_order_id: o.client_order_id,
                side: side_from_wit(o.side),
                price: o.price.map(decimal_from_wit),
                remaining: decimal_from_wit(o.remaining),
            })
            .collect()
    }
}

fn install_panic_hook() {
    // wasm32-unknown-unknown has no stderr: without this a panic reaches the operator as a
    // bare `unreachable` trap with no message.
    std::panic::set_hook(Box::new(|info| {
        log::write(log::Level::Error, &format!("strategy panicked: {info}"));
    }));
}

pub fn init<S: Strategy>(cell: &RefCell<Option<S>>, params: &str) -> Result<wit::Subscriptions, String> {
    install_panic_hook();
    let (strategy, subs) = S::init(params, &mut WasmHost)?;
    *cell.borrow_mut() = Some(strategy);
    let ids = |ids: Vec<InstrumentId>| ids.into_iter().map(|i| i.0).collect();
    Ok(wit::Subscriptions {
        trades: ids(subs.trades),
        books: subs
            .books
            .into_iter()
            .map(|(instrument, depth)| wit::BookSubscription { instrument: instrument.0, depth })
            .collect(),
        account_fills: ids(subs.account_fills),
        timer_interval_ms: subs.timer_interval_ms,
        orders_on: ids(subs.orders_on),
        self_trading: subs.self_trading,
    })
}

pub fn on_events<S: Strategy>(cell: &RefCell<Option<S>>, events: Vec<wit::Event>) -> Vec<wit::Action> {
    let events: Vec<Event> = events.into_iter().map(event_from_wit).collect();
    let mut slot = cell.borrow_mut();
    let Some(strategy) = slot.as_mut() else {
        log::write(log::Level::Error, "on-events called before init");
        return Vec::new();
    };
    strategy.on_events(&events, &mut WasmHost).into_iter().map(action_to_wit).collect()
}

thread_local! {
    /// The events of the last packed batch (`on-trades` or `on-packed`) and where its held
    /// batches end, kept so that a call allocates no list for them.
    static UNPACKED: RefCell<(Vec<Event>, Vec<usize>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// A batch of trades alone, packed (`tape.on-trades`): the strategy sees the same
/// `Event::Trade`s `on-events` would have given it.
pub fn on_trades<S: Strategy>(cell: &RefCell<Option<S>>, packed: &[u8]) -> Vec<wit::Action> {
    on_unpacked(cell, "on-trades", |events, ends| trading_model::tape::unpack_trades(packed, events, ends, Event::Trade).map_err(|e| e.to_string()))
}

/// Any batch, packed (`packed.on-packed`, since 0.1.3): the strategy sees the same events
/// `on-events` would have given it.
pub fn on_packed<S: Strategy>(cell: &RefCell<Option<S>>, packed: &[u8]) -> Vec<wit::Action> {
    on_unpacked(cell, "on-packed", |events, ends| trading_model::packed::unpack_events(packed, events, ends).map_err(|e| e.to_string()))
}

/// The events `unpack` reads, handed to the strategy as the batches they were: each batch
/// the host held (contract 0.1.4's `quiet`) on its own, then the rest as one.
fn on_unpacked<S: Strategy>(cell: &RefCell<Option<S>>, export: &str, unpack: impl FnOnce(&mut Vec<Event>, &mut Vec<usize>) -> Result<(), String>) -> Vec<wit::Action> {
    let mut slot = cell.borrow_mut();
    let Some(strategy) = slot.as_mut() else {
        log::write(log::Level::Error, &format!("{export} called before init"));
        return Vec::new();
    };
    UNPACKED.with(|unpacked| {
        let (events, ends) = &mut *unpacked.borrow_mut();
        events.clear();
        ends.clear();
        if let Err(error) = unpack(events, ends) {
            // The host packs what it checked; a foreign host that does not is told, and
            // its batch is not acted on.
            log::write(log::Level::Error, &format!("{export}: {error}; the batch is ignored"));
            return Vec::new();
        }
        if ends.is_empty() {
            return strategy.on_events(events, &mut WasmHost).into_iter().map(action_to_wit).collect();
        }
        let mut actions = Vec::new();
        let mut start = 0;
        for end in ends.iter().copied().chain(std::iter::once(events.len())) {
            if end > start && end <= events.len() {
                actions.extend(strategy.on_events(&events[start..end], &mut WasmHost));
                start = end;
            }
        }
        actions.into_iter().map(action_to_wit).collect()
    })
}

/// A halt or a resume, handed to the strategy as a batch of one event.
pub fn on_standing<S: Strategy>(cell: &RefCell<Option<S>>, event: Event) -> Vec<wit::Action> {
    let mut slot = cell.borrow_mut();
    let Some(strategy) = slot.as_mut() else {
        log::write(log::Level::Error, "standing called before init");
        return Vec::new();
    };
    strategy.on_events(&[event], &mut WasmHost).into_iter().map(action_to_wit).collect()
}

pub fn snapshot<S: Strategy>(cell: &RefCell<Option<S>>) -> Vec<u8> {
    cell.borrow().as_ref().map(S::snapshot).unwrap_or_default()
}

pub fn restore<S: Strategy>(cell: &RefCell<Option<S>>, state: &[u8]) -> Result<(), String> {
    match cell.borrow_mut().as_mut() {
        Some(strategy) => strategy.restore(state, &mut WasmHost),
        None => Err("restore called before init".to_string()),
    }
}

pub fn decimal_from_wit(d: wit::Decimal) -> Decimal {
    let mantissa = ((d.hi as u128) << 64) | d.lo as u128;
    let signed = if d.negative { -(mantissa as i128) } else { mantissa as i128 };
    // The host only ever sends values it built from a Decimal, so this cannot fail; zero
    // is the least harmful answer if a foreign host misbehaves.
    Decimal::try_from_i128_with_scale(signed, d.scale as u32).unwrap_or(Decimal::ZERO)
}

pub fn decimal_to_wit(d: Decimal) -> wit::Decimal {
    let mantissa = d.mantissa().unsigned_abs();
    wit::Decimal {
        lo: mantissa as u64,
        hi: (mantissa >> 64) as u32,
        negative: d.is_sign_negative(),
        scale: d.scale() as u8,
    }
}

fn side_from_wit(s: wit::Side) -> Side {
    match s {
        wit::Side::Buy => Side::Buy,
        wit::Side::Sell => Side::Sell,
    }
}

fn side_to_wit(s: Side) -> wit::Side {
    match s {
        Side::Buy => wit::Side::Buy,
        Side::Sell => wit::Side::Sell,
    }
}

fn instrument_from_wit(i: wit::InstrumentInfo) -> InstrumentInfo {
    InstrumentInfo {
        id: InstrumentId(i.id),
        venue: VenueId(i.venue),
        venue_name: i.venue_name,
        symbol: i.symbol,
        base_asset: i.base_asset,
        quote_asset: i.quote_asset,
        tick_size: decimal_from_wit(i.tick_size),
        lot_size: decimal_from_wit(i.lot_size),
        min_qty: decimal_from_wit(i.min_qty),
        min_notional: decimal_from_wit(i.min_notional),
        paper: i.paper,
    }
}

fn trade_from_wit(t: wit::PublicTrade) -> PublicTrade {
    PublicTrade {
        instrument: InstrumentId(t.instrument),
        trade_id: t.trade_id,
        price: decimal_from_wit(t.price),
        qty: decimal_from_wit(t.qty),
        aggressor: side_from_wit(t.aggressor),
        ts_ms: t.ts_ms,
    }
}

fn book_from_wit(b: wit::BookSnapshot) -> BookSnapshot {
    let level = |l: wit::BookLevel| BookLevel { price: decimal_from_wit(l.price), qty: decimal_from_wit(l.qty) };
    BookSnapshot {
        instrument: InstrumentId(b.instrument),
        bids: b.bids.into_iter().map(level).collect(),
        asks: b.asks.into_iter().map(level).collect(),
        ts_ms: b.ts_ms,
    }
}

fn event_from_wit(e: wit::Event) -> Event {
    match e {
        wit::Event::Trade(t) => Event::Trade(trade_from_wit(t)),
        wit::Event::Book(b) => Event::Book(book_from_wit(b)),
        wit::Event::Fill(f) => Event::Fill(Fill {
            instrument: InstrumentId(f.instrument),
            client_order_id: f.client_order_id,
            owner: if f.own_order { Whose::Mine } else { Whose::Others },
            trade_id: f.trade_id,
            side: side_from_wit(f.side),
            price: decimal_from_wit(f.price),
            qty: decimal_from_wit(f.qty),
            fee: decimal_from_wit(f.fee),
            fee_asset: f.fee_asset,
            liquidity: match f.liquidity {
                wit::Liquidity::Maker => Liquidity::Maker,
                wit::Liquidity::Taker => Liquidity::Taker,
            },
            ts_ms: f.ts_ms,
        }),
        wit::Event::Order(o) => Event::Order(OrderUpdate {
            instrument: InstrumentId(o.instrument),
            client_order_id: o.client_order_id,
            // The host hands a strategy the updates of its own orders only.
            owner: Whose::Mine,
            status: match o.status {
                wit::OrderStatus::Accepted => OrderStatus::Accepted,
                wit::OrderStatus::Filled => OrderStatus::Filled,
                wit::OrderStatus::Canceled => OrderStatus::Canceled,
                wit::OrderStatus::Expired => OrderStatus::Expired,
                wit::OrderStatus::Rejected => OrderStatus::Rejected,
            },
            filled_qty: decimal_from_wit(o.filled_qty),
            remaining_qty: decimal_from_wit(o.remaining_qty),
            reason: o.reason,
            ts_ms: o.ts_ms,
        }),
        wit::Event::Timer(ts) => Event::Timer(ts),
        wit::Event::Params(p) => Event::Params(p),
    }
}

fn action_to_wit(a: Action) -> wit::Action {
    match a {
        Action::Place(o) => wit::Action::Place(wit::OrderRequest {
            client_order_id: o.client_order_id,
            instrument: o.instrument.0,
            side: side_to_wit(o.side),
            order_type: match o.order_type {
                OrderType::Market => wit::OrderType::Market,
                OrderType::Limit { price, time_in_force } => wit::OrderType::Limit(wit::Limit {
                    price: decimal_to_wit(price),
                    time_in_force: match time_in_force {
                        TimeInForce::Gtc => wit::TimeInForce::Gtc,
                        TimeInForce::Ioc => wit::TimeInForce::Ioc,
                        TimeInForce::Fok => wit::TimeInForce::Fok,
                        TimeInForce::PostOnly => wit::TimeInForce::PostOnly,
                    },
                }),
            },
            qty: decimal_to_wit(o.qty),
        }),
        Action::Cancel { instrument, client_order_id } => {
            wit::Action::Cancel(wit::CancelRequest { instrument: instrument.0, client_order_id })
        }
        Action::CancelAll(instrument) => wit::Action::CancelAll(instrument.map(|i| i.0)),
    }
}
