//! Test guest: places the orders listed in its params, each once the event clock reaches
//! its `at_ms`, so a test can make exact fills happen on a paper venue.

use serde::Deserialize;
use strategy_sdk::{export_strategy, Action, Decimal, Event, Host, InstrumentId, OrderRequest, Side, Strategy, Subscriptions, TimeInForce};

#[derive(Deserialize)]
struct Order {
    #[serde(default)]
    at_ms: i64,
    venue: String,
    symbol: String,
    id: String,
    side: Side,
    price: Decimal,
    qty: Decimal,
}

#[derive(Deserialize)]
struct Params {
    orders: Vec<Order>,
}

struct Scripted {
    /// (instrument, order), in time order; drained as they are placed.
    pending: Vec<(InstrumentId, Order)>,
}

impl Strategy for Scripted {
    fn init(params: &str, host: &mut dyn Host) -> Result<(Self, Subscriptions), String> {
        let params: Params = serde_json::from_str(params).map_err(|e| format!("bad params: {e}"))?;
        let mut pending = Vec::new();
        let mut trades = Vec::new();
        for order in params.orders {
            let info = host.lookup(&order.venue, &order.symbol)?;
            if !trades.contains(&info.id) {
                trades.push(info.id);
            }
            pending.push((info.id, order));
        }
        pending.sort_by_key(|(_, o)| o.at_ms);
        Ok((Scripted { pending }, Subscriptions { trades, ..Default::default() }))
    }

    fn on_events(&mut self, events: &[Event], host: &mut dyn Host) -> Vec<Action> {
        if events.is_empty() {
            return Vec::new();
        }
        let now = host.now_ms();
        let due = self.pending.iter().take_while(|(_, o)| o.at_ms <= now).count();
        self.pending
            .drain(..due)
            .map(|(instrument, o)| Action::Place(OrderRequest::limit(o.id, instrument, o.side, o.price, o.qty, TimeInForce::Gtc)))
            .collect()
    }

    fn snapshot(&self) -> Vec<u8> {
        Vec::new()
    }

    fn restore(&mut self, _state: &[u8], _host: &mut dyn Host) -> Result<(), String> {
        Ok(())
    }
}

export_strategy!(Scripted);
