//! Test guest for trap isolation: on its first trade it rests a bid, and after `after`
//! trades it does what `fault` says: `loop` forever, exhaust `oom` memory, or `panic`.

use serde::Deserialize;
use strategy_sdk::{export_strategy, Action, Decimal, Event, Host, InstrumentInfo, OrderRequest, Side, Strategy, Subscriptions, TimeInForce};

#[derive(Deserialize)]
struct Params {
    venue: String,
    symbol: String,
    fault: String,
    after: u64,
    bid: Decimal,
    qty: Decimal,
}

struct Misbehave {
    params: Params,
    info: InstrumentInfo,
    seen: u64,
}

impl Strategy for Misbehave {
    fn init(params: &str, host: &mut dyn Host) -> Result<(Self, Subscriptions), String> {
        let params: Params = serde_json::from_str(params).map_err(|e| format!("bad params: {e}"))?;
        if !["loop", "oom", "panic", "none"].contains(&params.fault.as_str()) {
            return Err(format!("unknown fault {:?}", params.fault));
        }
        let info = host.lookup(&params.venue, &params.symbol)?;
        let subs = Subscriptions { trades: vec![info.id], ..Default::default() };
        Ok((Misbehave { params, info, seen: 0 }, subs))
    }

    fn on_events(&mut self, events: &[Event], _host: &mut dyn Host) -> Vec<Action> {
        let mut actions = Vec::new();
        for event in events {
            if !matches!(event, Event::Trade(_)) {
                continue;
            }
            self.seen += 1;
            if self.seen == 1 {
                actions.push(Action::Place(OrderRequest::limit(strategy_sdk::ids::client_order_id("mb", &[&self.params.fault]), self.info.id, Side::Buy, self.params.bid, self.params.qty, TimeInForce::Gtc)));
            }
            if self.seen > self.params.after {
                match self.params.fault.as_str() {
                    "loop" => {
                        let mut x: u64 = 0;
                        loop {
                            x = std::hint::black_box(x.wrapping_add(1));
                        }
                    }
                    "oom" => {
                        let mut hoard: Vec<Vec<u8>> = Vec::new();
                        loop {
                            hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
                        }
                    }
                    "panic" => panic!("deliberate panic after {} trades", self.seen),
                    _ => {}
                }
            }
        }
        actions
    }

    fn snapshot(&self) -> Vec<u8> {
        self.seen.to_le_bytes().to_vec()
    }

    fn restore(&mut self, state: &[u8], _host: &mut dyn Host) -> Result<(), String> {
        let bytes: [u8; 8] = state.try_into().map_err(|_| "state is not 8 bytes".to_string())?;
        self.seen = u64::from_le_bytes(bytes);
        Ok(())
    }
}

export_strategy!(Misbehave);
