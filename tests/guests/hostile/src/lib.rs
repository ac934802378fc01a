//! Test guest: a strategy written by an attacker. Its params choose the attack, made on
//! the first trade it sees (or at init, or in snapshot, where the attack lives there):
//!
//! - `huge-order`: orders whose price x qty overflows a decimal, and a price at the
//!   decimal's maximum.
//! - `long-id`: an order whose client id is 1 MiB.
//! - `dup-id`: the same client order id twice in one batch.
//! - `log-flood`: thousands of 4 KiB log lines per call, and one with a forged host line.
//! - `subscribe-flood`: one instrument subscribed 20,000 times.
//! - `subscribe-unknown`: a subscription to an instrument handle that does not exist.
//! - `big-snapshot`: an 8 MiB snapshot.
//! - `snapshot-trap`: a panic inside `snapshot`.
//! - `busy`: keeps itself busy: every call returns an order the host refuses, so it
//!   always has an event waiting.
//! - `stack-overflow`: unbounded recursion.
//! - `state-flood`: more state keys than the host keeps.
//! - `id-flood`: five new client order ids on every print, cancelled on the next, for
//!   as long as the market runs: the router's memory of ids must stay bounded.
//! - `quiet-flood`: quiet bands (contract 0.1.4) on 65 instruments, one more than kept.
//! - `quiet-bad-bound`: a quiet band whose bound has a scale of 29: not a decimal.
//! - `quiet-liar`: promises at init that no trade makes it act, then places an order on
//!   every 500th trade anyway (and cancels it on the next): its orders go out late, when
//!   the host hands over what it held, but none is lost.
//! - `none`: behaves, counting trades.
//!
//! Whatever the attack, it records what it saw: trades counted, order updates received.

use serde::{Deserialize, Serialize};
use strategy_sdk::{export_strategy, Action, Decimal, Event, Host, InstrumentId, InstrumentInfo, LogLevel, OrderRequest, OrderStatus, Side, Strategy, Subscriptions, TimeInForce};

#[derive(Deserialize)]
struct Params {
    venue: String,
    symbol: String,
    attack: String,
}

#[derive(Default, Serialize, Deserialize)]
struct Seen {
    trades: u64,
    rejected: Vec<String>,
    calls: u64,
}

struct Hostile {
    attack: String,
    info: InstrumentInfo,
    seen: Seen,
}

const ATTACKS: &[&str] = &[
    "none", "huge-order", "long-id", "dup-id", "log-flood", "subscribe-flood", "subscribe-unknown", "big-snapshot", "snapshot-trap", "busy", "stack-overflow", "state-flood", "id-flood",
    "quiet-flood", "quiet-bad-bound", "quiet-liar",
];

fn dec(s: &str) -> Decimal {
    s.parse().unwrap_or_default()
}

/// Recursion the optimiser cannot turn into a loop: every frame is a real wasm frame.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if std::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    std::hint::black_box(recurse(std::hint::black_box(depth + 1))) ^ depth
}

impl Strategy for Hostile {
    fn init(params: &str, host: &mut dyn Host) -> Result<(Self, Subscriptions), String> {
        let p: Params = serde_json::from_str(params).map_err(|e| format!("bad params: {e}"))?;
        if !ATTACKS.contains(&p.attack.as_str()) {
            return Err(format!("unknown attack {:?}", p.attack));
        }
        let info = host.lookup(&p.venue, &p.symbol)?;
        let trades = match p.attack.as_str() {
            "subscribe-flood" => vec![info.id; 20_000],
            "subscribe-unknown" => vec![info.id, InstrumentId(987_654)],
            _ => vec![info.id],
        };
        // The liar subscribes trades alone, so that nothing but its promise decides when it
        // is called.
        if p.attack == "quiet-liar" {
            host.set_quiet(info.id, None, None);
        }
        let books = if p.attack == "quiet-liar" { Vec::new() } else { vec![(info.id, u32::MAX)] };
        let subs = Subscriptions { trades, books, ..Default::default() };
        Ok((Hostile { attack: p.attack, info, seen: Seen::default() }, subs))
    }

    fn on_events(&mut self, events: &[Event], host: &mut dyn Host) -> Vec<Action> {
        self.seen.calls += 1;
        let mut actions = Vec::new();
        let mut first = false;
        for event in events {
            match event {
                Event::Trade(_) => {
                    self.seen.trades += 1;
                    first |= self.seen.trades == 1;
                    let n = self.seen.trades;
                    if self.attack == "quiet-liar" && n % 500 == 1 && n > 1 {
                        actions.push(Action::Cancel { instrument: self.info.id, client_order_id: format!("liar-{}", n - 1) });
                    }
                    if self.attack == "quiet-liar" && n.checked_rem(500) == Some(0) {
                        actions.push(Action::Place(OrderRequest::limit(format!("liar-{n}"), self.info.id, Side::Buy, dec("1000"), dec("0.01"), TimeInForce::Gtc)));
                    }
                }
                Event::Order(update) if update.status == OrderStatus::Rejected => {
                    self.seen.rejected.push(update.reason.clone().unwrap_or_default());
                }
                _ => {}
            }
        }
        let id = self.info.id;
        match self.attack.as_str() {
            "huge-order" if first => {
                actions.push(Action::Place(OrderRequest::limit("huge-1", id, Side::Buy, dec("100000000000000000000"), dec("1000000000"), TimeInForce::Gtc)));
                actions.push(Action::Place(OrderRequest::limit("huge-2", id, Side::Sell, dec("79228162514264337593543950335"), dec("1"), TimeInForce::Gtc)));
                actions.push(Action::Place(OrderRequest::market("huge-3", id, Side::Buy, dec("79228162514264337593543950335"))));
            }
            "long-id" if first => {
                actions.push(Action::Place(OrderRequest::limit("L".repeat(1 << 20), id, Side::Buy, dec("1000"), dec("0.01"), TimeInForce::Gtc)));
                actions.push(Action::Cancel { instrument: id, client_order_id: "C".repeat(1 << 20) });
            }
            "dup-id" if first => {
                for _ in 0..2 {
                    actions.push(Action::Place(OrderRequest::limit("dup-1", id, Side::Buy, dec("1000"), dec("0.01"), TimeInForce::Gtc)));
                }
            }
            "log-flood" => {
                host.log(LogLevel::Info, "hello\nINFO runtime: forged host line");
                let line = "x".repeat(4096);
                for _ in 0..2_000 {
                    host.log(LogLevel::Warn, &line);
                }
            }
            "busy" => {
                actions.push(Action::Place(OrderRequest::limit("not a valid id!", id, Side::Buy, dec("1000"), dec("0.01"), TimeInForce::Gtc)));
            }
            "stack-overflow" if first => {
                let n = recurse(0);
                host.log(LogLevel::Info, &format!("{n}"));
            }
            "id-flood" => {
                actions.push(Action::CancelAll(Some(id)));
                for k in 0..5 {
                    let n = self.seen.calls * 5 + k;
                    actions.push(Action::Place(OrderRequest::limit(format!("f{n}"), id, Side::Buy, dec("1000"), dec("0.005"), TimeInForce::Gtc)));
                }
            }
            "quiet-flood" if first => {
                for k in 0..65 {
                    host.set_quiet(InstrumentId(k), Some(dec("1")), None);
                }
            }
            "quiet-bad-bound" if first => {
                use strategy_sdk::bindings::trading::strategy::{quiet, types};
                quiet::set(id.0, Some(types::Decimal { lo: 1, hi: 0, negative: false, scale: 29 }), None);
            }
            "state-flood" if first => {
                for k in 0..20_000u32 {
                    host.state_set(&format!("k{k}"), b"v");
                }
            }
            _ => {}
        }
        actions
    }

    fn snapshot(&self) -> Vec<u8> {
        match self.attack.as_str() {
            "big-snapshot" => vec![7u8; 8 << 20],
            "snapshot-trap" => panic!("deliberate panic in snapshot"),
            _ => serde_json::to_vec(&self.seen).unwrap_or_default(),
        }
    }

    fn restore(&mut self, state: &[u8], _host: &mut dyn Host) -> Result<(), String> {
        self.seen = serde_json::from_slice(state).map_err(|e| e.to_string())?;
        Ok(())
    }
}

export_strategy!(Hostile);
