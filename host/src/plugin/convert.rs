//! Conversions between the host's model and the generated WIT types: the only place
//! they meet. A value a guest sends that the model cannot hold (a decimal scale above 28)
//! is an error for that action, not a trap.

use super::bindings::trading::strategy::types as wit;
use crate::model::{self, Decimal};

pub fn decimal_to_wit(d: Decimal) -> wit::Decimal {
    let mantissa = d.mantissa().unsigned_abs();
    wit::Decimal { lo: mantissa as u64, hi: (mantissa >> 64) as u32, negative: d.is_sign_negative(), scale: d.scale() as u8 }
}

pub fn decimal_from_wit(d: wit::Decimal) -> Result<Decimal, String> {
    let mantissa = ((d.hi as u128) << 64) | d.lo as u128;
    let signed = if d.negative { -(mantissa as i128) } else { mantissa as i128 };
    Decimal::try_from_i128_with_scale(signed, d.scale as u32).map_err(|_| format!("decimal with scale {} is out of range (0 to 28)", d.scale))
}

pub fn side_to_wit(s: model::Side) -> wit::Side {
    match s {
        model::Side::Buy => wit::Side::Buy,
        model::Side::Sell => wit::Side::Sell,
    }
}

fn side_from_wit(s: wit::Side) -> model::Side {
    match s {
        wit::Side::Buy => model::Side::Buy,
        wit::Side::Sell => model::Side::Sell,
    }
}

pub fn instrument_to_wit(i: &model::InstrumentInfo) -> wit::InstrumentInfo {
    wit::InstrumentInfo {
        id: i.id.0,
        venue: i.venue.0,
        venue_name: i.venue_name.clone(),
        symbol: i.symbol.clone(),
        base_asset: i.base_asset.clone(),
        quote_asset: i.quote_asset.clone(),
        tick_size: decimal_to_wit(i.tick_size),
        lot_size: decimal_to_wit(i.lot_size),
        min_qty: decimal_to_wit(i.min_qty),
        min_notional: decimal_to_wit(i.min_notional),
        paper: i.paper,
    }
}

pub fn trade_to_wit(t: &model::PublicTrade) -> wit::PublicTrade {
    wit::PublicTrade {
        instrument: t.instrument.0,
        trade_id: t.trade_id,
        price: decimal_to_wit(t.price),
        qty: decimal_to_wit(t.qty),
        aggressor: side_to_wit(t.aggressor),
        ts_ms: t.ts_ms,
    }
}

pub fn book_to_wit(b: &model::BookSnapshot) -> wit::BookSnapshot {
    let level = |l: &model::BookLevel| wit::BookLevel { price: decimal_to_wit(l.price), qty: decimal_to_wit(l.qty) };
    wit::BookSnapshot { instrument: b.instrument.0, bids: b.bids.iter().map(level).collect(), asks: b.asks.iter().map(level).collect(), ts_ms: b.ts_ms }
}

/// `own` is whether the receiving strategy placed the order. A halt or a resume is no
/// `event` of the contract (it goes to the `standing` export), hence `None`.
pub fn event_to_wit(e: &model::Event, receiver: model::StrategyId) -> Option<wit::Event> {
    Some(match e {
        model::Event::Trade(t) => wit::Event::Trade(trade_to_wit(t)),
        model::Event::Book(b) => wit::Event::Book(book_to_wit(b)),
        model::Event::Fill(f) => wit::Event::Fill(wit::Fill {
            instrument: f.instrument.0,
            client_order_id: f.client_order_id.clone(),
            own_order: f.owner == Some(receiver),
            trade_id: f.trade_id.clone(),
            side: side_to_wit(f.side),
            price: decimal_to_wit(f.price),
            qty: decimal_to_wit(f.qty),
            fee: decimal_to_wit(f.fee),
            fee_asset: f.fee_asset.clone(),
            liquidity: match f.liquidity {
                model::Liquidity::Maker => wit::Liquidity::Maker,
                model::Liquidity::Taker => wit::Liquidity::Taker,
            },
            ts_ms: f.ts_ms,
        }),
        model::Event::Order(o) => wit::Event::Order(wit::OrderUpdate {
            instrument: o.instrument.0,
            client_order_id: o.client_order_id.clone(),
            status: match o.status {
                model::OrderStatus::Accepted => wit::OrderStatus::Accepted,
                model::OrderStatus::Filled => wit::OrderStatus::Filled,
                model::OrderStatus::Canceled => wit::OrderStatus::Canceled,
                model::OrderStatus::Expired => wit::OrderStatus::Expired,
                model::OrderStatus::Rejected => wit::OrderStatus::Rejected,
            },
            filled_qty: decimal_to_wit(o.filled_qty),
            remaining_qty: decimal_to_wit(o.remaining_qty),
            reason: o.reason.clone(),
            ts_ms: o.ts_ms,
        }),
        model::Event::Timer(ts) => wit::Event::Timer(*ts),
        model::Event::Params(p) => wit::Event::Params(p.clone()),
        model::Event::Halted(_) | model::Event::Resumed => return None,
    })
}

pub fn subscriptions_from_wit(s: wit::Subscriptions) -> model::Subscriptions {
    model::Subscriptions {
        trades: s.trades.into_iter().map(model::InstrumentId).collect(),
        books: s.books.into_iter().map(|b| (model::InstrumentId(b.instrument), b.depth)).collect(),
        account_fills: s.account_fills.into_iter().map(model::InstrumentId).collect(),
        timer_interval_ms: s.timer_interval_ms,
        orders_on: s.orders_on.into_iter().map(model::InstrumentId).collect(),
        self_trading: s.self_trading,
    }
}

/// An action the guest returned; `Err` carries the client order id (if any) and why the
/// action cannot be represented.
pub fn action_from_wit(a: wit::Action) -> Result<model::Action, (String, String)> {
    Ok(match a {
        wit::Action::Place(o) => {
            let id = o.client_order_id.clone();
            let qty = decimal_from_wit(o.qty).map_err(|e| (id.clone(), e))?;
            let order_type = match o.order_type {
                wit::OrderType::Market => model::OrderType::Market,
                wit::OrderType::Limit(l) => model::OrderType::Limit {
                    price: decimal_from_wit(l.price).map_err(|e| (id.clone(), e))?,
                    time_in_force: match l.time_in_force {
                        wit::TimeInForce::Gtc => model::TimeInForce::Gtc,
                        wit::TimeInForce::Ioc => model::TimeInForce::Ioc,
                        wit::TimeInForce::Fok => model::TimeInForce::Fok,
                        wit::TimeInForce::PostOnly => model::TimeInForce::PostOnly,
                    },
                },
            };
            model::Action::Place(model::OrderRequest {
                client_order_id: o.client_order_id,
                instrument: model::InstrumentId(o.instrument),
                side: side_from_wit(o.side),
                order_type,
                qty,
            })
        }
        wit::Action::Cancel(c) => model::Action::Cancel { instrument: model::InstrumentId(c.instrument), client_order_id: c.client_order_id },
        wit::Action::CancelAll(i) => model::Action::CancelAll(i.map(model::InstrumentId)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_round_trip_exactly() {
        for s in ["0", "1", "-1", "9682.19", "0.00000001", "-79228162514264337593543950335", "79228162514264337593543950335", "1.2345678901234567890123456789"] {
            let d: Decimal = s.parse().unwrap_or_else(|_| panic!("{s}"));
            let back = decimal_from_wit(decimal_to_wit(d));
            assert_eq!(back, Ok(d), "{s}");
            assert_eq!(back.map(|b| b.scale()), Ok(d.scale()), "{s}");
        }
    }

    #[test]
    fn out_of_range_scale_is_an_error() {
        let bad = wit::Decimal { lo: 1, hi: 0, negative: false, scale: 29 };
        assert!(decimal_from_wit(bad).is_err());
    }
}
