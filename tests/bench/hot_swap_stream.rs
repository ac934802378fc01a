//! Hot swap under a steady stream (target 4 of #12): the `counter` test guest replaced
//! by its next version, through the file watcher, while trades arrive at 100,000 a second.
//!
//! The stream is a trades file replayed at recorded speed (`replay.speed = 1`) with 100
//! trades in every millisecond, so the engine has a batch due each millisecond. Each
//! batch's lateness is how long after its due time (on the wall clock, from the first
//! batch) it was handled; a swap adds delay if it holds the event loop longer than the
//! idle time between two batches. Printed: lateness before the swap and around it,
//! the time from the new file written to the new version live, and the counter's own
//! count of what it was handed, which must be every trade once.
//!
//! `cargo bench -p e2e --bench hot_swap_stream [-- EVENTS_PER_SECOND [SECONDS]]`
//! (default 100,000 a second for 10 s, the swap written at 4 s).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e::{counter_state, guest, plugin_host};
use runtime::reload::{self, Watched};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let rate: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000).max(1_000);
    let seconds: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10).max(6);
    let per_ms = rate / 1_000;
    let total = per_ms * 1_000 * seconds;

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let trades = dir.path().join("trades.csv");
    write_trades(&trades, total, per_ms);
    let file = dir.path().join("counter.wasm");
    std::fs::copy(guest("counter-v1"), &file).unwrap_or_else(|e| panic!("{e}"));
    let config = format!(
        "[replay]\nspeed = 1\n{}\n[[strategy]]\nname = \"c\"\ncomponent = \"counter\"\nparams = {{ venue = \"paper\", symbol = \"BTCUSDT\" }}\n",
        e2e::replay_venue("paper", "spot", r#"USDT = "1000000""#, &trades, None)
    );
    let plugin = plugin_host();
    let mut engine = e2e::engine_unlogged(&config, &plugin, &[("counter", &file)]);
    let watched = Watched { strategies: [("counter".to_string(), file.clone())].into(), config: None };
    let _reloader = reload::spawn(watched, plugin.clone(), engine.controller(), engine.preparer()).unwrap_or_else(|e| panic!("{e}"));
    let first_hash = engine.slots()[0].hash.clone();
    let notices = engine.subscribe();

    // The deploy, at 40% of the stream: the new version written beside and renamed over
    // the old, as a deploy tool does.
    let written: Arc<Mutex<Option<Instant>>> = Arc::default();
    let written_by = written.clone();
    let swap_after = Duration::from_millis(seconds * 400);
    let v2 = std::fs::read(guest("counter-v2")).unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let deployer = std::thread::spawn(move || {
        std::thread::sleep(swap_after);
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, &v2).unwrap_or_else(|e| panic!("{e}"));
        std::fs::rename(&tmp, &file).unwrap_or_else(|e| panic!("{e}"));
        *written_by.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    });

    // Lateness of batch k: handled at `now`, due at the first batch's time plus k ms.
    let mut origin: Option<Instant> = None;
    let mut batches: Vec<(Instant, Duration)> = Vec::with_capacity(seconds as usize * 1_000 + 16);
    let mut live: Option<Instant> = None;
    engine.run_observed(|e| {
        let now = Instant::now();
        let origin = *origin.get_or_insert(now);
        let due = origin + Duration::from_millis(batches.len() as u64);
        batches.push((now, now.saturating_duration_since(due)));
        if live.is_none() && e.slots().first().is_some_and(|s| s.hash != first_hash) {
            live = Some(now);
        }
    });
    let elapsed = started.elapsed();

    deployer.join().unwrap_or_else(|_| panic!("the deploy thread panicked"));
    let written = written.lock().unwrap_or_else(|p| p.into_inner()).unwrap_or_else(|| panic!("the new version was never written"));
    let live = live.unwrap_or_else(|| panic!("the new version never went live"));

    let state = counter_state(&mut engine, "c");
    let pause_us = notices.try_iter().find_map(|n| match n {
        runtime::engine::Notice::Swapped { micros, .. } => Some(micros),
        _ => None,
    });
    // Before the deploy, and from it to 100 ms after the new version went live.
    let quiet: Vec<Duration> = batches.iter().filter(|(at, _)| *at < written).map(|(_, l)| *l).collect();
    let around: Vec<Duration> = batches.iter().filter(|(at, _)| *at >= written && *at <= live + Duration::from_millis(100)).map(|(_, l)| *l).collect();
    let us = |d: Duration| d.as_nanos() as f64 / 1000.0;
    println!("hot swap under {rate} events/s: {total} trades in {} batches, replayed in {:.2} s", batches.len(), elapsed.as_secs_f64());
    for (what, mut l) in [("before the deploy", quiet), ("from the deploy to 100 ms after the swap", around)] {
        l.sort();
        let q = |p: f64| l.get(((l.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or_default();
        println!("  batch lateness {what} ({} batches): p50 {:.1} us  p99 {:.1} us  max {:.1} us", l.len(), us(q(0.5)), us(q(0.99)), us(q(1.0)));
    }
    println!("  the swap held the event loop {} us (init, snapshot, restore; the watcher instantiated the new version off the event path)", pause_us.map_or("?".to_string(), |p| p.to_string()));
    println!("  file written to the new version live: {:.1} ms (the watcher waits {} ms for the writes to settle, then compiles)", (live - written).as_secs_f64() * 1000.0, reload::SETTLE.as_millis());
    println!("  the counter was handed {} trades (of {total}), {} out of order, as version {}", state["count"], state["out_of_order"], state["version"]);
    assert_eq!(state["count"], total, "every trade handed over once");
    assert_eq!(state["id_sum"], total * (total + 1) / 2, "and each exactly once");
    assert_eq!(state["out_of_order"], 0);
    assert_eq!(state["version"], "counter-v2");
}

/// `total` trades, ids 1 to `total`, `per_ms` in each millisecond, in the Binance
/// USD-M public-data layout, prices on a small deterministic walk.
fn write_trades(path: &std::path::Path, total: u64, per_ms: u64) {
    let out = std::fs::File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = std::io::BufWriter::new(out);
    let start_ms: u64 = 1_600_000_000_000;
    let _ = writeln!(out, "id,price,qty,quote_qty,time,is_buyer_maker");
    for id in 1..=total {
        let ticks = (id * 7_919) % 400;
        let price = format!("{}.{}", 10_000 + ticks / 10, ticks % 10);
        let _ = writeln!(out, "{id},{price},0.001,10,{},{}", start_ms + (id - 1) / per_ms, id % 2 == 0);
    }
    out.flush().unwrap_or_else(|e| panic!("{e}"));
}
