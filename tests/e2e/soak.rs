//! A short soak (the `soak` command runs the same for ten minutes by default): the runtime
//! against the local exchange with every kind of fault in turn, then the invariants on the
//! exchange's own books.

use std::time::Duration;

fn short_soak() -> e2e::soak::Report {
    let report = e2e::soak::run(e2e::soak::Settings { duration: Duration::from_secs(25), fault_every: Duration::from_millis(1500), rate: 300, seed: 7, only_fault: None });
    println!("{report}");
    report
}

/// Through every fault: the host and the healthy strategies keep going, the trapping one
/// is stopped, no client order id executes beyond what was sent, nothing of ours is left
/// open after the shutdown, and every maker fill is hedged exactly once, the runtime's
/// account of the hedge equal to the venue's.
#[test]
fn a_short_soak_with_every_fault_contains_and_hedges_every_fill_exactly_once() {
    let report = short_soak();
    assert!(report.broken.is_empty(), "{report}");
    assert_eq!(report.faults.len(), 7, "every kind of fault ran: {report}");
    assert!(report.maker_fills >= 20 && report.ids_checked > 0, "{report}");
    assert!(report.all_hold(), "{report}");
}
