//! `GET /metrics`: the run's counters in Prometheus text format, built from the engine's
//! own state between two batches, with units in the names and `_total` on counters.
//! Money is exported as a float gauge: a figure to chart, never one to trade on.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::Engine;
use crate::stats::SlotStatus;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StrategyLabel {
    strategy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PositionLabel {
    strategy: String,
    venue: String,
    symbol: String,
}

type F64Gauge = Gauge<f64, std::sync::atomic::AtomicU64>;

impl Engine {
    pub(super) fn metrics_text(&self) -> String {
        let mut registry = Registry::with_prefix("runtime");
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let family = Family::<StrategyLabel, Counter>::default();
            registry.register(name, help, family.clone());
            family
        };
        let events = counter(&mut registry, "strategy_events", "Events delivered to the strategy");
        let calls = counter(&mut registry, "strategy_calls", "Calls into the strategy component");
        let placed = counter(&mut registry, "strategy_orders_placed", "Orders the strategy placed that the host sent (or recommended)");
        let refused = counter(&mut registry, "strategy_orders_refused_by_host", "Actions the host refused (risk, rules, grants)");
        let rejected = counter(&mut registry, "strategy_orders_rejected_by_venue", "Orders a venue rejected");
        let canceled = counter(&mut registry, "strategy_orders_canceled", "Orders that ended canceled");
        let fills = counter(&mut registry, "strategy_fills", "Fills of the strategy's orders");
        let swaps = counter(&mut registry, "strategy_swaps", "Hot swaps of the strategy's component");
        let dropped = counter(&mut registry, "strategy_log_lines_dropped", "Log lines over the strategy's budget");
        let running = Family::<StrategyLabel, Gauge>::default();
        registry.register("strategy_running", "1 while the strategy runs (halted included), 0 once stopped", running.clone());
        let halted = Family::<StrategyLabel, Gauge>::default();
        registry.register("strategy_halted", "1 while the risk engine or the operator holds the strategy halted", halted.clone());
        let pnl = Family::<StrategyLabel, F64Gauge>::default();
        registry.register("strategy_pnl_quote", "PnL marked to the last trades, fees paid, in quote units", pnl.clone());
        let position = Family::<PositionLabel, F64Gauge>::default();
        registry.register("strategy_position_base", "Net position per instrument, in base units", position.clone());
        let market = self.market.lock();
        for slot in &self.slots {
            let label = StrategyLabel { strategy: slot.name.clone() };
            let s = &slot.stats;
            for (family, value) in [(&events, s.events), (&calls, s.calls), (&placed, s.placed), (&refused, s.refused), (&rejected, s.rejected), (&canceled, s.canceled), (&fills, s.fills), (&swaps, s.swaps), (&dropped, s.log_dropped)] {
                family.get_or_create(&label).inc_by(value);
            }
            running.get_or_create(&label).set(i64::from(slot.status == SlotStatus::Running));
            halted.get_or_create(&label).set(i64::from(self.router.risk().halted(slot.id).is_some()));
            pnl.get_or_create(&label).set(f64::try_from(self.pnl(slot, &market)).unwrap_or(f64::NAN));
            for (instrument, p) in &s.positions {
                let Some(info) = market.instrument(*instrument) else { continue };
                let key = PositionLabel { strategy: slot.name.clone(), venue: info.venue_name.clone(), symbol: info.symbol.clone() };
                position.get_or_create(&key).set(f64::try_from(p.net()).unwrap_or(f64::NAN));
            }
        }
        drop(market);
        let prints = Counter::<u64>::default();
        prints.inc_by(self.stats.prints);
        registry.register("market_prints", "Market data prints replayed or received", prints);
        let batches = Counter::<u64>::default();
        batches.inc_by(self.stats.batches);
        registry.register("batches", "Event batches processed", batches);
        let feed_errors = Counter::<u64>::default();
        feed_errors.inc_by(self.stats.feed_errors);
        registry.register("feed_errors", "Market data records refused as malformed", feed_errors);
        let mut text = String::new();
        if let Err(error) = encode(&mut text, &registry) {
            tracing::error!("metrics: {error}");
        }
        text
    }
}
