//! Test guest built against `trading:strategy@0.1.2`: it exports `tape` but not `packed`
//! (0.1.3), so a later host must keep handing it batches of trades through `on-trades`.
//! It counts the trades of each path apart, so a test can tell which one the host took.

wit_bindgen::generate!({ path: "wit", world: "plugin-with-tape" });

use std::cell::RefCell;

use exports::trading::strategy::{standing, strategy, tape};
use trading::strategy::market;
use trading::strategy::types::{Action, Event, Subscriptions};

#[derive(Default)]
struct Counts {
    /// Trades through `on-trades` and through `on-events`.
    packed: u64,
    unpacked: u64,
    id_sum: u64,
    last_id: u64,
    out_of_order: u64,
}

impl Counts {
    fn trade(&mut self, id: u64) {
        if id <= self.last_id {
            self.out_of_order += 1;
        }
        self.last_id = id;
        self.id_sum += id;
    }
}

thread_local! {
    static COUNTS: RefCell<Counts> = RefCell::new(Counts::default());
}

struct Contract012;

impl strategy::Guest for Contract012 {
    fn init(params: String) -> Result<Subscriptions, String> {
        let params: serde_json::Value = serde_json::from_str(&params).map_err(|e| e.to_string())?;
        let field = |name: &str| params.get(name).and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let info = market::lookup(&field("venue"), &field("symbol"))?;
        Ok(Subscriptions { trades: vec![info.id], books: Vec::new(), account_fills: Vec::new(), timer_interval_ms: None, orders_on: Vec::new(), self_trading: false })
    }
    fn on_events(events: Vec<Event>) -> Vec<Action> {
        COUNTS.with(|counts| {
            let mut counts = counts.borrow_mut();
            for event in events {
                if let Event::Trade(trade) = event {
                    counts.unpacked += 1;
                    counts.trade(trade.trade_id);
                }
            }
        });
        Vec::new()
    }
    fn snapshot() -> Vec<u8> {
        COUNTS.with(|counts| {
            let c = counts.borrow();
            let count = c.packed + c.unpacked;
            serde_json::json!({"count": count, "packed": c.packed, "id_sum": c.id_sum, "out_of_order": c.out_of_order}).to_string().into_bytes()
        })
    }
    fn restore(_state: Vec<u8>) -> Result<(), String> {
        Ok(())
    }
}

impl standing::Guest for Contract012 {
    fn halted(_reason: String, _reducing_allowed: bool) -> Vec<Action> {
        Vec::new()
    }
    fn resumed() -> Vec<Action> {
        Vec::new()
    }
}

impl tape::Guest for Contract012 {
    fn on_trades(trades: Vec<u8>) -> Vec<Action> {
        let mut read = Vec::new();
        if trading_model::tape::unpack_trades(&trades, &mut read, &mut Vec::new(), |t| t).is_ok() {
            COUNTS.with(|counts| {
                let mut counts = counts.borrow_mut();
                for trade in read {
                    counts.packed += 1;
                    counts.trade(trade.trade_id);
                }
            });
        }
        Vec::new()
    }
}

#[cfg(target_arch = "wasm32")]
export!(Contract012);
