//! Trap isolation: a strategy that loops, exhausts its memory or panics is stopped and
//! its resting orders cancelled, while the host and the other strategies carry on.

use e2e::{counter_state, guest, plugin_host, synthetic_venue};
use runtime::engine::Notice;
use runtime::stats::SlotStatus;
use runtime::model::Decimal;
use runtime::venue::paper::book::Account;

const PRINTS: u64 = 2_000;

fn misbehaving(name: &str, fault: &str, bid: &str) -> String {
    format!(
        "[[strategy]]\nname = \"{name}\"\ncomponent = \"misbehave\"\nparams = {{ venue = \"paper\", symbol = \"BTCUSDT\", fault = \"{fault}\", after = 50, bid = \"{bid}\", qty = \"0.01\" }}\n"
    )
}

#[test]
fn loop_oom_and_panic_are_contained() {
    let config = format!(
        "{}\n[[strategy]]\nname = \"healthy\"\ncomponent = \"counter\"\nparams = {{ venue = \"paper\", symbol = \"BTCUSDT\" }}\n{}{}{}{}",
        synthetic_venue(PRINTS),
        misbehaving("looper", "loop", "5000.0"),
        misbehaving("hog", "oom", "5000.1"),
        misbehaving("panicker", "panic", "5000.2"),
        misbehaving("calm", "none", "5000.3"),
    );
    let plugin = plugin_host();
    let mut engine = e2e::engine(&config, &plugin, &[("counter", &guest("counter-v1")), ("misbehave", &guest("misbehave"))]);
    let notices = engine.subscribe();
    engine.step();
    // All four bids rest, holding funds.
    assert_eq!(resting_main_orders(&engine), 4);

    while engine.step() {}

    let status = |name: &str| engine.slots().iter().find(|s| s.name == name).map(|s| s.status.clone());
    let failed = |name: &str| match status(name) {
        Some(SlotStatus::Failed(reason)) => reason,
        other => panic!("{name} should have been stopped, is {other:?}"),
    };
    assert!(failed("looper").contains("exceeded its call deadline"), "{}", failed("looper"));
    assert!(failed("hog").contains("exhausted its memory limit"), "{}", failed("hog"));
    assert!(failed("panicker").contains("panicked"), "{}", failed("panicker"));
    assert_eq!(status("calm"), Some(SlotStatus::Running));
    assert_eq!(status("healthy"), Some(SlotStatus::Running));

    // The healthy strategy saw every print, before, during and after the failures.
    assert_eq!(counter_state(&mut engine, "healthy")["count"], PRINTS);
    // Only the calm strategy's bid still rests; the failed ones were cancelled.
    assert_eq!(resting_main_orders(&engine), 1);
    let stopped: Vec<String> = notices
        .try_iter()
        .filter_map(|n| match n {
            Notice::StrategyFailed { strategy, .. } => Some(strategy),
            _ => None,
        })
        .collect();
    assert_eq!(stopped.len(), 3, "{stopped:?}");

    engine.cancel_everything();
    assert_eq!(resting_main_orders(&engine), 0);
    let market = engine.market().lock();
    let paper = market.venues[0].as_paper().unwrap_or_else(|| panic!("paper venue"));
    assert_eq!(paper.balances().get("USDT").map(|b| b.locked), Some(Decimal::ZERO), "funds of cancelled orders are released");
}

fn resting_main_orders(engine: &runtime::engine::Engine) -> usize {
    let market = engine.market().lock();
    let paper = market.venues[0].as_paper().unwrap_or_else(|| panic!("paper venue"));
    paper.order_book(runtime::model::InstrumentId(0)).map(|b| b.orders().filter(|o| o.account == Account::Main).count()).unwrap_or(0)
}
