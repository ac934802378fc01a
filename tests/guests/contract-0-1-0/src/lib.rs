//! Test guest built against `trading:strategy@0.1.0`, kept frozen in `wit/` as it was
//! published, without the SDK (which follows the current contract). A component that
//! third parties built then must keep loading and trading in every 0.1.x host.
//!
//! Params: `{"venue": ..., "symbol": ..., "price": ..., "qty": ...}` (decimals as
//! `[mantissa, scale]`). It places one resting buy at the first trade and its snapshot is
//! the reasons of the order updates it was handed, one line each: `<id> <status> <reason>`.

use std::cell::RefCell;

wit_bindgen::generate!({ path: "wit", world: "plugin" });

use exports::trading::strategy::strategy::Guest;
use trading::strategy::market;
use trading::strategy::types::{Action, Decimal, Event, Limit, OrderRequest, OrderType, Side, Subscriptions, TimeInForce};

#[derive(Default)]
struct State {
    instrument: u32,
    price: (u64, u8),
    qty: (u64, u8),
    placed: bool,
    seen: Vec<String>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// `"key": value` of a flat JSON object, as text; enough for the params a test writes.
fn field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let start = json.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = json[start..].trim_start().strip_prefix(':')?.trim_start();
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim().trim_matches('"'))
}

/// `"123.45"` -> (12345, 2).
fn decimal(text: &str) -> Option<(u64, u8)> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    Some((format!("{whole}{fraction}").parse().ok()?, fraction.len() as u8))
}

fn wit_decimal((mantissa, scale): (u64, u8)) -> Decimal {
    Decimal { lo: mantissa, hi: 0, negative: false, scale }
}

struct Published;

impl Guest for Published {
    fn init(params: String) -> Result<Subscriptions, String> {
        let (Some(venue), Some(symbol)) = (field(&params, "venue"), field(&params, "symbol")) else { return Err(format!("bad params: {params}")) };
        let price = field(&params, "price").and_then(decimal).ok_or("bad price")?;
        let qty = field(&params, "qty").and_then(decimal).ok_or("bad qty")?;
        let info = market::lookup(venue, symbol)?;
        STATE.with(|s| *s.borrow_mut() = State { instrument: info.id, price, qty, ..State::default() });
        Ok(Subscriptions { trades: vec![info.id], books: vec![], account_fills: vec![], timer_interval_ms: None, orders_on: vec![info.id], self_trading: false })
    }

    fn on_events(events: Vec<Event>) -> Vec<Action> {
        STATE.with(|s| {
            let mut s = s.borrow_mut();
            let mut actions = Vec::new();
            for event in events {
                match event {
                    Event::Trade(_) if !s.placed => {
                        s.placed = true;
                        actions.push(Action::Place(OrderRequest {
                            client_order_id: "published-1".into(),
                            instrument: s.instrument,
                            side: Side::Buy,
                            order_type: OrderType::Limit(Limit { price: wit_decimal(s.price), time_in_force: TimeInForce::Gtc }),
                            qty: wit_decimal(s.qty),
                        }));
                    }
                    Event::Order(update) => {
                        let line = format!("{} {:?} {}", update.client_order_id, update.status, update.reason.unwrap_or_default());
                        s.seen.push(line);
                    }
                    _ => {}
                }
            }
            actions
        })
    }

    fn snapshot() -> Vec<u8> {
        STATE.with(|s| s.borrow().seen.join("\n").into_bytes())
    }

    fn restore(_state: Vec<u8>) -> Result<(), String> {
        Ok(())
    }
}

#[cfg(target_arch = "wasm32")]
export!(Published);
