//! Parsing of Binance private stream order events into [`OrderReport`]s: spot
//! `executionReport` (delivered by the WebSocket API wrapped as
//! `{"subscriptionId":N,"event":{...}}` since the listenKey stream was retired) and USD-M
//! `ORDER_TRADE_UPDATE`. Exchange JSON stops here.

use crate::model::{Liquidity, OrderStatus, Side};
use crate::venue::report::{decimal_field, int_field, str_field, Execution, OrderReport, ParseError};

pub(crate) fn side(s: &str) -> Result<Side, ParseError> {
    match s {
        "BUY" => Ok(Side::Buy),
        "SELL" => Ok(Side::Sell),
        other => Err(ParseError::Malformed(format!("side {other:?}"))),
    }
}

/// Binance order statuses (`X`) in our terms. A partially filled order is still working.
pub(crate) fn status(s: &str) -> Result<OrderStatus, ParseError> {
    Ok(match s {
        "NEW" | "PARTIALLY_FILLED" | "PENDING_NEW" | "PENDING_CANCEL" => OrderStatus::Accepted,
        "FILLED" => OrderStatus::Filled,
        "CANCELED" => OrderStatus::Canceled,
        "EXPIRED" | "EXPIRED_IN_MATCH" => OrderStatus::Expired,
        "REJECTED" => OrderStatus::Rejected,
        other => return Err(ParseError::Malformed(format!("order status {other:?}"))),
    })
}

/// The trade in an order event (`x` = `TRADE`); spot and USD-M name its fields alike.
fn execution(order: &serde_json::Value) -> Result<Option<Execution>, ParseError> {
    if str_field(order, "x")? != "TRADE" {
        return Ok(None);
    }
    Ok(Some(Execution {
        trade_id: int_field(order, "t")?.to_string(),
        price: decimal_field(order, "L")?,
        qty: decimal_field(order, "l")?,
        fee: decimal_field(order, "n")?,
        fee_asset: order.get("N").and_then(|v| v.as_str()).unwrap_or_default().to_string(),
        liquidity: if order.get("m").and_then(|v| v.as_bool()).unwrap_or(false) { Liquidity::Maker } else { Liquidity::Taker },
    }))
}

/// One spot user-data message: an `executionReport` becomes a report; other events are
/// ignored, not errors.
pub fn parse_spot(text: &str) -> Result<OrderReport, ParseError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| ParseError::Malformed(e.to_string()))?;
    let event = value.get("event").unwrap_or(&value);
    let kind = str_field(event, "e")?;
    if kind != "executionReport" {
        return Err(ParseError::Ignored(kind.to_string()));
    }
    // A cancel reports the cancelled order's id in `C`; `c` is then the cancel request's.
    let original = event.get("C").and_then(|v| v.as_str()).filter(|s| !s.is_empty());
    let client_order_id = original.unwrap_or(str_field(event, "c")?).to_string();
    let execution = execution(event)?;
    let reason = event.get("r").and_then(|v| v.as_str()).filter(|r| *r != "NONE").map(str::to_string);
    Ok(OrderReport {
        symbol: str_field(event, "s")?.to_string(),
        client_order_id,
        venue_order_id: int_field(event, "i")?.to_string(),
        side: side(str_field(event, "S")?)?,
        status: status(str_field(event, "X")?)?,
        order_qty: decimal_field(event, "q")?,
        filled_qty: decimal_field(event, "z")?,
        execution,
        reason,
        ts_ms: int_field(event, "E")?,
    })
}

/// One USD-M user-data message: `ORDER_TRADE_UPDATE` becomes a report.
pub fn parse_usdm(text: &str) -> Result<OrderReport, ParseError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| ParseError::Malformed(e.to_string()))?;
    let kind = str_field(&value, "e")?;
    if kind != "ORDER_TRADE_UPDATE" {
        return Err(ParseError::Ignored(kind.to_string()));
    }
    let order = value.get("o").ok_or_else(|| ParseError::Malformed("o missing".into()))?;
    let execution = execution(order)?;
    let reason = order.get("er").and_then(|v| v.as_str()).filter(|r| *r != "0").map(|r| format!("expire reason {r}"));
    Ok(OrderReport {
        symbol: str_field(order, "s")?.to_string(),
        client_order_id: str_field(order, "c")?.to_string(),
        venue_order_id: int_field(order, "i")?.to_string(),
        side: side(str_field(order, "S")?)?,
        status: status(str_field(order, "X")?)?,
        order_qty: decimal_field(order, "q")?,
        filled_qty: decimal_field(order, "z")?,
        execution,
        reason,
        ts_ms: int_field(&value, "E")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Decimal, InstrumentId};
    use crate::venue::VenueEvent;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap_or_default()
    }

    const SPOT_NEW: &str = include_str!("../test_data/spot_execution_report_new.json");
    const SPOT_TRADE: &str = include_str!("../test_data/spot_execution_report_trade.json");
    const USDM_NEW: &str = include_str!("../test_data/usdm_order_trade_update.json");

    #[test]
    fn documented_spot_execution_report() {
        let r = parse_spot(SPOT_NEW).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r.symbol.as_str(), r.client_order_id.as_str(), r.side, r.status), ("ETHBTC", "mUvoqJxFIILMdfAW5iGSOW", Side::Buy, OrderStatus::Accepted));
        assert_eq!((r.order_qty, r.filled_qty, r.execution.clone(), r.ts_ms), (d("1.00000000"), Decimal::ZERO, None, 1499405658658));
        let events = r.into_events(InstrumentId(3), None);
        assert!(matches!(&events[..], [VenueEvent::Order(u)] if u.remaining_qty == d("1") && u.instrument == InstrumentId(3)));
    }

    #[test]
    fn spot_trade_becomes_a_fill_and_an_update() {
        let r = parse_spot(SPOT_TRADE).unwrap_or_else(|e| panic!("{e}"));
        let e = r.execution.clone().unwrap_or_else(|| panic!("a trade"));
        assert_eq!((e.trade_id.as_str(), e.price, e.qty, e.fee, e.fee_asset.as_str(), e.liquidity), ("12345", d("0.10264410"), d("0.4"), d("0.00004"), "BNB", Liquidity::Maker));
        let events = r.into_events(InstrumentId(0), None);
        assert!(matches!(&events[..], [VenueEvent::Fill(f), VenueEvent::Order(u)] if f.qty == d("0.4") && u.remaining_qty == d("0.6")));
    }

    #[test]
    fn documented_usdm_order_trade_update() {
        let r = parse_usdm(USDM_NEW).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r.symbol.as_str(), r.client_order_id.as_str(), r.side, r.status, r.order_qty), ("BTCUSDT", "TEST", Side::Sell, OrderStatus::Accepted, d("0.001")));
        assert_eq!((r.venue_order_id.as_str(), r.ts_ms, r.execution), ("8886774", 1568879465651, None));
    }

    #[test]
    fn other_and_broken_messages_are_told_apart() {
        assert_eq!(parse_spot(r#"{"subscriptionId":0,"event":{"e":"outboundAccountPosition","E":1}}"#), Err(ParseError::Ignored("outboundAccountPosition".into())));
        assert!(matches!(parse_spot("{not json"), Err(ParseError::Malformed(_))));
        let broken = SPOT_TRADE.replace("\"L\": \"0.10264410\"", "\"L\": \"ten\"");
        assert!(matches!(parse_spot(&broken), Err(ParseError::Malformed(m)) if m.contains("L")));
        assert_eq!(parse_usdm(r#"{"e":"ACCOUNT_UPDATE","E":1}"#), Err(ParseError::Ignored("ACCOUNT_UPDATE".into())));
    }
}
