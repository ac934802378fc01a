//! Test guest: places the orders listed in its params, each once the event clock reaches
//! its `at_ms`, so a test can make exact fills happen on a paper venue. Its snapshot is
//! the order updates, halts and resumes it was handed (id, status, reason), so a test sees
//! what it saw, and what the `account` import last said of its first instrument.

use serde::{Deserialize, Serialize};
use strategy_sdk::{export_strategy, Action, Decimal, Event, Host, InstrumentId, InstrumentInfo, OrderRequest, OrderStatus, Side, Strategy, Subscriptions, TimeInForce};

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

/// An order update as the strategy was handed it, or a halt (`id` empty).
#[derive(Serialize)]
struct Seen {
    id: String,
    status: SeenStatus,
    reason: Option<String>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum SeenStatus {
    Order(OrderStatus),
    Standing(Standing),
}

#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum Standing {
    Halted,
    Resumed,
}

/// Updates kept for the snapshot: the latest ones.
const KEEP: usize = 1000;

struct Scripted {
    /// (instrument, order), in time order; drained as they are placed.
    pending: Vec<(InstrumentId, Order)>,
    seen: Vec<Seen>,
    /// The first instrument of its orders, whose account it reads at every call.
    first: Option<InstrumentInfo>,
    /// What the `account` import said at the last call.
    account: serde_json::Value,
}

impl Strategy for Scripted {
    fn init(params: &str, host: &mut dyn Host) -> Result<(Self, Subscriptions), String> {
        let params: Params = serde_json::from_str(params).map_err(|e| format!("bad params: {e}"))?;
        let mut pending = Vec::new();
        let mut trades = Vec::new();
        let mut first = None;
        for order in params.orders {
            let info = host.lookup(&order.venue, &order.symbol)?;
            first.get_or_insert_with(|| info.clone());
            if !trades.contains(&info.id) {
                trades.push(info.id);
            }
            pending.push((info.id, order));
        }
        pending.sort_by_key(|(_, o)| o.at_ms);
        Ok((Scripted { pending, seen: Vec::new(), first, account: serde_json::Value::Null }, Subscriptions { trades, ..Default::default() }))
    }

    fn on_events(&mut self, events: &[Event], host: &mut dyn Host) -> Vec<Action> {
        if events.is_empty() {
            return Vec::new();
        }
        for event in events {
            let seen = match event {
                Event::Order(update) => Seen { id: update.client_order_id.clone(), status: SeenStatus::Order(update.status), reason: update.reason.clone() },
                Event::Halted(halt) => Seen { id: String::new(), status: SeenStatus::Standing(Standing::Halted), reason: Some(halt.reason.clone()) },
                Event::Resumed => Seen { id: String::new(), status: SeenStatus::Standing(Standing::Resumed), reason: None },
                _ => continue,
            };
            if self.seen.len() == KEEP {
                self.seen.remove(0);
            }
            self.seen.push(seen);
        }
        if let Some(info) = &self.first {
            self.account = serde_json::json!({
                "balances": host.balances(info.venue),
                "position": host.position(info.id),
                "open_orders": host.open_orders(Some(info.id)),
            });
        }
        let now = host.now_ms();
        let due = self.pending.iter().take_while(|(_, o)| o.at_ms <= now).count();
        self.pending
            .drain(..due)
            .map(|(instrument, o)| Action::Place(OrderRequest::limit(o.id, instrument, o.side, o.price, o.qty, TimeInForce::Gtc)))
            .collect()
    }

    /// The updates it saw, then one entry (status `account`) with the account as it last
    /// read it.
    fn snapshot(&self) -> Vec<u8> {
        let mut all: Vec<serde_json::Value> = self.seen.iter().filter_map(|s| serde_json::to_value(s).ok()).collect();
        all.push(serde_json::json!({"id": "", "status": "account", "account": self.account}));
        serde_json::to_vec(&all).unwrap_or_default()
    }

    fn restore(&mut self, _state: &[u8], _host: &mut dyn Host) -> Result<(), String> {
        Ok(())
    }
}

export_strategy!(Scripted);
