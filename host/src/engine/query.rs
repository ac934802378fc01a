//! Answers to the control API's questions, as JSON, built between two batches from the
//! engine's own state: strategies, positions and balances, open orders, recent fills and
//! how much of each risk limit is in use.

use serde_json::{json, Value};

use super::{Engine, Query};
use crate::model::Decimal;
use crate::stats::SlotStatus;

/// Open orders and fills the dashboard shows (the latest).
const DASHBOARD_ROWS: usize = 20;

impl Engine {
    pub(super) fn answer(&self, what: &Query) -> Value {
        match what {
            Query::Strategies => self.strategies_json(),
            Query::Positions => self.positions_json(),
            Query::Orders => self.orders_json(),
            Query::Fills => json!({ "fills": self.recent_fills.iter().rev().map(|f| json!({
                "instrument": f.instrument.0, "client_order_id": f.client_order_id, "strategy": self.slot_name(f.owner),
                "trade_id": f.trade_id, "side": f.side, "price": f.price, "qty": f.qty, "fee": f.fee, "fee_asset": f.fee_asset,
                "liquidity": f.liquidity, "ts_ms": f.ts_ms,
            })).collect::<Vec<_>>() }),
            Query::Risk => self.risk_json(),
            Query::Metrics => Value::String(self.metrics_text()),
            Query::Dashboard => {
                let latest = |mut v: Value, key: &str, rows: usize| {
                    if let Some(list) = v[key].as_array_mut() {
                        list.truncate(rows);
                    }
                    v[key].take()
                };
                json!({
                    "clock_ms": self.clock.now_ms(), "prints": self.stats.prints, "batches": self.stats.batches,
                    "strategies": latest(self.strategies_json(), "strategies", usize::MAX),
                    "positions": self.positions_json(),
                    "risk": self.risk_json(),
                    "orders": latest(self.orders_json(), "orders", DASHBOARD_ROWS),
                    "fills": latest(self.answer(&Query::Fills), "fills", DASHBOARD_ROWS),
                    "swaps": self.swap_history.iter().rev().cloned().collect::<Vec<_>>(),
                })
            }
        }
    }

    fn slot_name(&self, id: Option<crate::model::StrategyId>) -> Option<&str> {
        self.slots.iter().find(|s| Some(s.id) == id).map(|s| s.name.as_str())
    }


    fn strategies_json(&self) -> Value {
        let strategies: Vec<Value> = self
            .slots
            .iter()
            .map(|slot| {
                let (state, why) = match (&slot.status, self.router.risk().halted(slot.id)) {
                    (SlotStatus::Running, Some(reason)) => ("halted", Some(reason.to_string())),
                    (SlotStatus::Running, None) => ("running", None),
                    (SlotStatus::Failed(r), _) => ("failed", Some(r.clone())),
                    (SlotStatus::Refused(r), _) => ("refused", Some(r.clone())),
                    (SlotStatus::Stopped(r), _) => ("stopped", Some(r.clone())),
                };
                let s = &slot.stats;
                json!({
                    "name": slot.name, "component": slot.component, "version": slot.hash, "state": state, "why": why,
                    "params": serde_json::from_str::<Value>(&slot.params).unwrap_or(Value::Null),
                    "counters": { "events": s.events, "calls": s.calls, "placed": s.placed, "refused": s.refused, "rejected": s.rejected,
                                  "canceled": s.canceled, "fills": s.fills, "swaps": s.swaps, "log_dropped": s.log_dropped, "traps": s.traps },
                    "pnl": self.pnl(slot, &self.market.lock()),
                })
            })
            .collect();
        json!({ "strategies": strategies })
    }

    fn positions_json(&self) -> Value {
        let market = self.market.lock();
        let mut positions = Vec::new();
        for slot in &self.slots {
            for (instrument, p) in &slot.stats.positions {
                let Some(info) = market.instrument(*instrument) else { continue };
                let last = market.last_price(*instrument);
                positions.push(json!({
                    "strategy": slot.name, "venue": info.venue_name, "symbol": info.symbol, "net": p.net(), "bought": p.bought, "sold": p.sold,
                    "fees": p.fees, "base_fees": p.base_fees, "other_fees": p.other_fees, "last": last, "pnl": p.pnl(p.mark(last)),
                }));
            }
        }
        // A paper venue's balances are its own state; a live venue's are what the venue
        // said at its last account refresh (`as_of_ms`), positions included on derivatives.
        let balances: Vec<Value> = market
            .venues
            .iter()
            .filter_map(|v| match (v.as_paper(), v.account()) {
                (Some(p), _) => Some(json!({ "venue": v.name(), "balances": p.balances().iter().map(|(asset, b)| (asset.clone(), json!({"total": b.total, "available": b.available()}))).collect::<serde_json::Map<String, Value>>() })),
                (None, Some(account)) => Some(json!({
                    "venue": v.name(), "as_of_ms": account.as_of_ms,
                    "balances": account.balances.iter().filter(|(_, q)| !q.is_zero()).map(|(asset, total)| (asset.clone(), json!({"total": total}))).collect::<serde_json::Map<String, Value>>(),
                    "positions": account.positions.iter().filter(|(_, q)| !q.is_zero()).map(|(symbol, qty)| (symbol.clone(), json!(qty))).collect::<serde_json::Map<String, Value>>(),
                })),
                (None, None) => None,
            })
            .collect();
        json!({ "positions": positions, "balances": balances })
    }

    fn orders_json(&self) -> Value {
        let market = self.market.lock();
        let orders: Vec<Value> = self
            .router
            .open_list()
            .into_iter()
            .map(|o| {
                let info = market.instrument(o.instrument);
                json!({
                    "venue": info.map(|i| i.venue_name.as_str()).unwrap_or_default(), "venue_id": o.venue.0, "symbol": info.map(|i| i.symbol.as_str()).unwrap_or_default(),
                    "client_order_id": o.client_order_id, "strategy": self.slot_name(Some(o.owner)), "side": o.side, "price": o.price, "remaining": o.remaining,
                })
            })
            .collect();
        json!({ "orders": orders })
    }

    fn risk_json(&self) -> Value {
        let market = self.market.lock();
        let strategies: Vec<Value> = self
            .slots
            .iter()
            .map(|slot| {
                let limits = self.router.risk().limits(slot.id);
                let instruments: Vec<Value> = slot
                    .stats
                    .positions
                    .keys()
                    .filter_map(|i| {
                        let info = market.instrument(*i)?;
                        let exposure = self.router.exposure(slot.id, *i);
                        let price = market.last_price(*i).unwrap_or_default();
                        Some(json!({ "venue": info.venue_name, "symbol": info.symbol, "position": exposure.position, "open_buy": exposure.open_buy,
                                     "open_sell": exposure.open_sell, "worst_notional": exposure.worst().saturating_mul(price), "max_position_notional": limits.max_position_notional }))
                    })
                    .collect();
                json!({
                    "strategy": slot.name, "halted": self.router.risk().halted(slot.id),
                    "open_orders": self.router.open_ids(slot.id, None).len(), "max_open_orders": limits.max_open_orders,
                    "pnl": self.pnl(slot, &market), "peak_pnl": slot.stats.peak_pnl, "max_loss": limits.max_loss, "max_drawdown": limits.max_drawdown,
                    "max_order_notional": limits.max_order_notional, "price_band_pct": limits.price_band_pct,
                    "max_orders_per_s": limits.max_orders_per_s, "max_cancels_per_s": limits.max_cancels_per_s, "instruments": instruments,
                })
            })
            .collect();
        json!({ "strategies": strategies, "max_gross_exposure": self.router.risk().global().max_gross_exposure })
    }

    /// A strategy's PnL marked as its loss limits see it.
    pub(super) fn pnl(&self, slot: &super::Slot, market: &crate::market::Market) -> Decimal {
        slot.stats.pnl(|instrument| market.last_price(instrument))
    }
}
