//! `GET /metrics`: the run's counters in Prometheus text format, built from the engine's
//! own state between two batches, with units in the names and `_total` on counters.
//! Money is exported as a float gauge: a figure to chart, never one to trade on.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::Engine;
use crate::stats::{Histogram, SlotStatus};
use crate::venue::live::limits::Counted;

/// Histograms kept by the engine and the venues (fixed buckets, observed on their own
/// paths), encoded at each scrape as one family with a label set per row.
#[derive(Debug)]
struct Histograms {
    help: &'static str,
    rows: Vec<(Vec<(&'static str, String)>, Histogram)>,
}

impl Histograms {
    fn register(self, registry: &mut Registry, name: &'static str) {
        registry.register(name, self.help, HistogramFamily(self.rows));
    }
}

/// The rows of one histogram family; encoded through prometheus-client's own encoder.
#[derive(Debug)]
struct HistogramFamily(Vec<(Vec<(&'static str, String)>, Histogram)>);

impl EncodeMetric for HistogramFamily {
    fn encode(&self, mut encoder: prometheus_client::encoding::MetricEncoder) -> Result<(), std::fmt::Error> {
        for (labels, histogram) in &self.0 {
            let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            encoder.encode_family(&labels)?.encode_histogram::<NoLabelSet>(histogram.sum(), histogram.count(), &histogram.buckets(), None)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> prometheus_client::metrics::MetricType {
        prometheus_client::metrics::MetricType::Histogram
    }
}

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
        let traps = counter(&mut registry, "strategy_traps", "Calls into the strategy that trapped (each stopped it or rolled a hot swap back)");
        let running = Family::<StrategyLabel, Gauge>::default();
        registry.register("strategy_running", "1 while the strategy runs (halted included), 0 once stopped", running.clone());
        let halted = Family::<StrategyLabel, Gauge>::default();
        registry.register("strategy_halted", "1 while the risk engine or the operator holds the strategy halted", halted.clone());
        let pnl = Family::<StrategyLabel, F64Gauge>::default();
        registry.register("strategy_pnl_quote", "PnL marked to the last trades, fees paid, in quote units", pnl.clone());
        let position = Family::<PositionLabel, F64Gauge>::default();
        registry.register("strategy_position_base", "Net position per instrument, in base units", position.clone());
        let instrument_pnl = Family::<PositionLabel, F64Gauge>::default();
        registry.register("strategy_instrument_pnl_quote", "PnL per instrument marked to its last trade, fees paid, in quote units", instrument_pnl.clone());
        let market = self.market.lock();
        for slot in &self.slots {
            let label = StrategyLabel { strategy: slot.name.clone() };
            let s = &slot.stats;
            for (family, value) in [(&events, s.events), (&calls, s.calls), (&placed, s.placed), (&refused, s.refused), (&rejected, s.rejected), (&canceled, s.canceled), (&fills, s.fills), (&swaps, s.swaps), (&dropped, s.log_dropped), (&traps, s.traps)] {
                family.get_or_create(&label).inc_by(value);
            }
            running.get_or_create(&label).set(i64::from(slot.status == SlotStatus::Running));
            halted.get_or_create(&label).set(i64::from(self.router.risk().halted(slot.id).is_some()));
            pnl.get_or_create(&label).set(f64::try_from(self.pnl(slot, &market)).unwrap_or(f64::NAN));
            for (instrument, p) in &s.positions {
                let Some(info) = market.instrument(*instrument) else { continue };
                let key = PositionLabel { strategy: slot.name.clone(), venue: info.venue_name.clone(), symbol: info.symbol.clone() };
                position.get_or_create(&key).set(f64::try_from(p.net()).unwrap_or(f64::NAN));
                instrument_pnl.get_or_create(&key).set(f64::try_from(p.pnl(p.mark(market.last_price(*instrument)))).unwrap_or(f64::NAN));
            }
        }
        Histograms { help: "Wall-clock time of each call into the strategy component", rows: self.slots.iter().map(|slot| (vec![("strategy", slot.name.clone())], slot.call_latency.clone())).collect() }
            .register(&mut registry, "strategy_call_duration_seconds");
        self.register_risk_use(&mut registry, &market);
        self.register_venues(&mut registry, &market);
        drop(market);
        Histograms { help: "Time to build and write each checkpoint", rows: vec![(Vec::new(), self.checkpoint_duration.clone())] }.register(&mut registry, "checkpoint_duration_seconds");
        if let Some(store) = &self.store {
            let outages = Counter::<u64>::default();
            outages.inc_by(store.outages());
            registry.register("store_outages", "Times the state store became unreachable (writes are then held in memory)", outages);
            let buffered = Gauge::<i64>::default();
            buffered.set(i64::try_from(store.buffered()).unwrap_or(i64::MAX));
            registry.register("store_buffered_commits", "Commits accepted but not yet durable in the store", buffered);
        }
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

    /// What each strategy uses of its risk limits: open orders against their maximum, and
    /// its drawdown and loss against theirs where those limits are set.
    fn register_risk_use(&self, registry: &mut Registry, market: &crate::market::Market) {
        let open = Family::<StrategyLabel, Gauge>::default();
        registry.register("strategy_open_orders", "Open orders of the strategy", open.clone());
        let open_max = Family::<StrategyLabel, Gauge>::default();
        registry.register("strategy_open_orders_limit", "The strategy's maximum of open orders", open_max.clone());
        let loss_limit = Family::<StrategyLabel, F64Gauge>::default();
        registry.register("strategy_loss_limit_quote", "The loss at which the strategy is halted, in quote units (where set)", loss_limit.clone());
        let drawdown = Family::<StrategyLabel, F64Gauge>::default();
        registry.register("strategy_drawdown_quote", "The strategy's PnL below its peak, in quote units (while a drawdown limit applies)", drawdown.clone());
        let drawdown_limit = Family::<StrategyLabel, F64Gauge>::default();
        registry.register("strategy_drawdown_limit_quote", "The drawdown at which the strategy is halted, in quote units (where set)", drawdown_limit.clone());
        let float = |d: crate::model::Decimal| f64::try_from(d).unwrap_or(f64::NAN);
        for slot in &self.slots {
            let label = StrategyLabel { strategy: slot.name.clone() };
            let limits = self.router.risk().limits(slot.id);
            open.get_or_create(&label).set(i64::try_from(self.router.open_ids(slot.id, None).len()).unwrap_or(i64::MAX));
            open_max.get_or_create(&label).set(i64::from(limits.max_open_orders));
            if let Some(max) = limits.max_loss {
                loss_limit.get_or_create(&label).set(float(max));
            }
            if let Some(max) = limits.max_drawdown {
                drawdown_limit.get_or_create(&label).set(float(max));
                let below = slot.stats.peak_pnl.map(|peak| peak - self.pnl(slot, market)).unwrap_or_default();
                drawdown.get_or_create(&label).set(float(below.max(crate::model::Decimal::ZERO)));
            }
        }
    }

    /// Each live venue's requests, rate-limit use, reconnects, message lag and order
    /// round trips.
    fn register_venues(&self, registry: &mut Registry, market: &crate::market::Market) {
        let requests = Family::<Vec<(&'static str, String)>, Counter>::default();
        registry.register("venue_requests", "REST requests by endpoint and HTTP status (0: no answer)", requests.clone());
        let used = Family::<Vec<(&'static str, String)>, Gauge>::default();
        registry.register("venue_rate_limit_used", "What is used now of each rate-limit window (request weight or orders)", used.clone());
        let max = Family::<Vec<(&'static str, String)>, Gauge>::default();
        registry.register("venue_rate_limit_max", "The maximum of each rate-limit window", max.clone());
        let reconnects = Family::<Vec<(&'static str, String)>, Counter>::default();
        registry.register("venue_reconnects", "Stream reconnections (private, public and book streams)", reconnects.clone());
        let reconciliations = Family::<Vec<(&'static str, String)>, Counter>::default();
        registry.register("venue_reconciliations", "Complete reconciliations of orders and fills with the venue", reconciliations.clone());
        let limited = Family::<Vec<(&'static str, String)>, Counter>::default();
        registry.register("venue_rate_limited", "Requests the venue refused as over its rate limit", limited.clone());
        let (mut private, mut public, mut round_trip, mut tick_to_trade) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for venue in &market.venues {
            let Some(m) = venue.metrics() else { continue };
            let name = venue.name().to_string();
            for ((method, endpoint, status), count) in m.requests {
                requests.get_or_create(&vec![("venue", name.clone()), ("method", method), ("endpoint", endpoint), ("status", status.to_string())]).inc_by(count);
            }
            for (counted, span_s, in_use, limit) in m.rate_limits {
                let counts = match counted {
                    Counted::Weight => "weight",
                    Counted::Orders => "orders",
                };
                let labels = vec![("venue", name.clone()), ("counts", counts.to_string()), ("window_seconds", span_s.to_string())];
                used.get_or_create(&labels).set(i64::from(in_use));
                max.get_or_create(&labels).set(i64::from(limit));
            }
            reconnects.get_or_create(&vec![("venue", name.clone())]).inc_by(m.reconnects);
            reconciliations.get_or_create(&vec![("venue", name.clone())]).inc_by(m.reconciliations);
            limited.get_or_create(&vec![("venue", name.clone())]).inc_by(m.rate_limited);
            private.push((vec![("venue", name.clone())], m.private_lag));
            public.push((vec![("venue", name.clone())], m.public_lag));
            round_trip.push((vec![("venue", name.clone())], m.round_trip));
            tick_to_trade.push((vec![("venue", name)], m.tick_to_trade.buckets(crate::stats::CALL_BUCKETS)));
        }
        Histograms { help: "From a private-stream event's venue time to its arrival", rows: private }.register(registry, "venue_private_lag_seconds");
        Histograms { help: "From a public trade's venue time to its arrival", rows: public }.register(registry, "venue_public_lag_seconds");
        Histograms { help: "Order placement round trip: request sent to the venue's answer", rows: round_trip }.register(registry, "venue_order_round_trip_seconds");
        Histograms { help: "Tick-to-trade, by the venue of the order: from the private-stream frame behind an order read off the socket to its request handed to the HTTP client", rows: tick_to_trade }
            .register(registry, "venue_tick_to_trade_seconds");
    }
}
