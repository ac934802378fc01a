//! The report printed when a run ends: what each strategy did and where each venue's
//! account stands, marked to the last price.

use std::fmt::Write;

use crate::engine::Engine;
use crate::stats::SlotStatus;
use crate::model::Decimal;

/// Renders the end-of-run summary as text.
pub fn render(engine: &Engine, wall: std::time::Duration) -> String {
    let mut out = String::new();
    let stats = &engine.stats;
    let span_s = match (stats.first_ts, stats.last_ts) {
        (Some(a), Some(b)) => (b - a) as f64 / 1000.0,
        _ => 0.0,
    };
    let _ = writeln!(out, "\n=== Run summary ({} mode) ===", engine.mode());
    let _ = writeln!(
        out,
        "market data: {} prints in {} batches, {:.0} s of market time replayed in {:.2} s{}",
        stats.prints,
        stats.batches,
        span_s,
        wall.as_secs_f64(),
        if stats.feed_errors > 0 { format!(", {} malformed records (first: {})", stats.feed_errors, stats.first_feed_errors.join("; ")) } else { String::new() }
    );
    let market = engine.market().lock();
    let _ = writeln!(out, "\nstrategies:");
    for slot in engine.slots() {
        let status = match &slot.status {
            SlotStatus::Running => match engine.halted(&slot.name) {
                Some(reason) => format!("HALTED: {reason}"),
                None => "running".to_string(),
            },
            SlotStatus::Failed(reason) | SlotStatus::Stopped(reason) => format!("STOPPED: {reason}"),
            SlotStatus::Refused(reason) => format!("NOT STARTED: {reason}"),
        };
        let s = &slot.stats;
        let _ = writeln!(out, "  {} ({} @ {}): {status}", slot.name, slot.component, slot.hash);
        let _ = writeln!(
            out,
            "    events {} in {} calls; orders placed {}, refused by host {}, rejected by venue {}, canceled {}; fills {}; hot swaps {}",
            s.events, s.calls, s.placed, s.refused, s.rejected, s.canceled, s.fills, s.swaps
        );
        for (instrument, p) in &s.positions {
            let Some(info) = market.instrument(*instrument) else { continue };
            let last = market.last_price(*instrument).unwrap_or_default();
            // Cash flow of the trades plus the open position at the last price, less fees.
            // Saturating: the figures may come from a live venue, and a report must not panic.
            let pnl = p.pnl(last);
            // Fees paid in other assets than the quote, when there were any.
            let mut fees = format!("{} {}", p.fees.round_dp(4).normalize(), info.quote_asset);
            if !p.base_fees.is_zero() {
                fees.push_str(&format!(" + {} {}", p.base_fees.round_dp(8).normalize(), info.base_asset));
            }
            for (asset, paid) in &p.other_fees {
                fees.push_str(&format!(" + {} {asset} (not in PnL)", paid.round_dp(8).normalize()));
            }
            let _ = writeln!(
                out,
                "    {} {}: bought {} sold {} net {} | fees {} | PnL at last price {}: {} {}",
                info.venue_name,
                info.symbol,
                p.bought.normalize(),
                p.sold.normalize(),
                p.net().normalize(),
                fees,
                last.normalize(),
                pnl.round_dp(4).normalize(),
                info.quote_asset
            );
        }
    }
    let _ = writeln!(out, "\nvenues:");
    for venue in &market.venues {
        let Some(paper) = venue.as_paper() else {
            let _ = writeln!(out, "  {}", venue.name());
            continue;
        };
        let start = &paper.config().balances;
        let balances: Vec<String> = paper
            .balances()
            .iter()
            .map(|(asset, b)| {
                let before = start.get(asset).copied().unwrap_or_default();
                format!("{asset} {} ({:+})", show(b.total), b.total.saturating_sub(before).round_dp(8).normalize())
            })
            .collect();
        let fees: Vec<String> = paper.fees_collected().iter().map(|(a, f)| format!("{} {a}", show(*f))).collect();
        let _ = writeln!(out, "  {} (paper): balances {}; fees collected by the venue {}", venue.name(), if balances.is_empty() { "none".to_string() } else { balances.join(", ") }, if fees.is_empty() { "none".to_string() } else { fees.join(", ") });
    }
    drop(market);
    out
}

/// Formats a decimal for a report line.
pub fn show(d: Decimal) -> String {
    d.round_dp(8).normalize().to_string()
}
