//! Test guest shared by `counter-v1`, `counter-v2` and `counter-bad` (same source, the
//! package name is the version label; `counter-bad` traps on its first trade): counts every public trade it receives and checks that trade ids
//! only go up, so a test can prove that across a hot swap no event was lost or repeated.

use serde::{Deserialize, Serialize};
use strategy_sdk::{export_strategy, Action, Event, Host, Strategy, Subscriptions};

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    count: u64,
    id_sum: u64,
    last_id: u64,
    out_of_order: u64,
    /// The version that is running now, and every version that ran before it.
    version: String,
    history: Vec<String>,
    params_seen: Vec<String>,
    timers: u64,
    /// Whether the key `counter-bad` writes at its init is in the key/value state: after
    /// a swap to it is refused or rolled back, it must not be.
    #[serde(default)]
    foreign_key_seen: bool,
    /// Batches handed to `on_events`: with trades held (quiet), still one per print.
    #[serde(default)]
    batches: u64,
}

#[derive(Deserialize)]
struct Params {
    venue: String,
    symbol: String,
    #[serde(default)]
    timer_ms: Option<u64>,
    /// Promise the runtime that no trade makes it act (contract 0.1.4's `quiet`), so the
    /// trades are held and handed over together: a count must come out the same.
    #[serde(default)]
    quiet: bool,
}

struct Counter {
    state: State,
    quiet: bool,
}

impl Strategy for Counter {
    fn init(params: &str, host: &mut dyn Host) -> Result<(Self, Subscriptions), String> {
        let p: Params = serde_json::from_str(params).map_err(|e| format!("bad params: {e}"))?;
        let info = host.lookup(&p.venue, &p.symbol)?;
        let state = State { version: env!("CARGO_PKG_NAME").to_string(), ..Default::default() };
        if env!("CARGO_PKG_NAME") == "counter-bad" {
            host.state_set("counter-bad", b"was here");
        }
        if p.quiet {
            host.set_quiet(info.id, None, None);
        }
        Ok((Counter { state, quiet: p.quiet }, Subscriptions { trades: vec![info.id], timer_interval_ms: p.timer_ms, ..Default::default() }))
    }

    fn on_events(&mut self, events: &[Event], host: &mut dyn Host) -> Vec<Action> {
        if env!("CARGO_PKG_NAME") == "counter-bad" && events.iter().any(|e| matches!(e, Event::Trade(_))) {
            panic!("counter-bad: a bug that shows only on live events");
        }
        self.state.batches += 1;
        // Quiet, it ignores trades as it promised: a batch of trades alone only counts.
        if !self.quiet || !events.iter().all(|e| matches!(e, Event::Trade(_))) {
            self.state.foreign_key_seen |= host.state_get("counter-bad").is_some();
        }
        for event in events {
            match event {
                Event::Trade(t) => {
                    if t.trade_id <= self.state.last_id {
                        self.state.out_of_order += 1;
                    }
                    self.state.last_id = t.trade_id;
                    self.state.count += 1;
                    self.state.id_sum += t.trade_id;
                }
                Event::Params(p) => self.state.params_seen.push(p.clone()),
                Event::Timer(_) => self.state.timers += 1,
                _ => {}
            }
        }
        Vec::new()
    }

    fn snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(&self.state).unwrap_or_default()
    }

    fn restore(&mut self, state: &[u8], _host: &mut dyn Host) -> Result<(), String> {
        let old: State = serde_json::from_slice(state).map_err(|e| e.to_string())?;
        let mut history = old.history;
        history.push(old.version);
        self.state = State { version: std::mem::take(&mut self.state.version), history, ..old };
        Ok(())
    }
}

export_strategy!(Counter);
