//! Parsing of the OKX private `orders` channel into [`OrderReport`]s. One push may carry
//! several orders. Per OKX's guidance, a present `tradeId` means a fill (each counted
//! once by trade id, upstream); `fillFee` is negative when charged, so its sign flips.

use crate::model::{Liquidity, OrderStatus, Side};
use crate::venue::report::{decimal_field, int_field, str_field, Execution, OrderReport, ParseError};

pub(crate) fn status(s: &str) -> Result<OrderStatus, ParseError> {
    Ok(match s {
        "live" | "partially_filled" => OrderStatus::Accepted,
        "filled" => OrderStatus::Filled,
        "canceled" | "mmp_canceled" => OrderStatus::Canceled,
        other => return Err(ParseError::Malformed(format!("order state {other:?}"))),
    })
}

/// One message of the private WebSocket: an `orders` push becomes reports.
pub fn parse_orders(text: &str) -> Result<Vec<OrderReport>, ParseError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| ParseError::Malformed(e.to_string()))?;
    let channel = value.get("arg").and_then(|a| a.get("channel")).and_then(|c| c.as_str());
    if channel != Some("orders") || value.get("data").is_none() {
        let kind = value.get("event").and_then(|e| e.as_str()).or(channel).unwrap_or("unknown");
        return Err(ParseError::Ignored(kind.to_string()));
    }
    let data = value.get("data").and_then(|d| d.as_array()).ok_or_else(|| ParseError::Malformed("data is not a list".into()))?;
    data.iter().map(parse_order).collect()
}

pub(crate) fn side(s: &str) -> Result<Side, ParseError> {
    match s {
        "buy" => Ok(Side::Buy),
        "sell" => Ok(Side::Sell),
        other => Err(ParseError::Malformed(format!("side {other:?}"))),
    }
}

fn parse_order(o: &serde_json::Value) -> Result<OrderReport, ParseError> {
    let side = side(str_field(o, "side")?)?;
    let trade_id = o.get("tradeId").and_then(|v| v.as_str()).filter(|t| !t.is_empty());
    let execution = match trade_id {
        Some(trade_id) => Some(Execution {
            trade_id: trade_id.to_string(),
            price: decimal_field(o, "fillPx")?,
            qty: decimal_field(o, "fillSz")?,
            fee: -decimal_field(o, "fillFee")?,
            fee_asset: str_field(o, "fillFeeCcy")?.to_string(),
            liquidity: if o.get("execType").and_then(|v| v.as_str()) == Some("M") { Liquidity::Maker } else { Liquidity::Taker },
        }),
        None => None,
    };
    let state = str_field(o, "state")?;
    let reason = match (state, o.get("cancelSource").and_then(|v| v.as_str()).filter(|s| !s.is_empty())) {
        ("canceled" | "mmp_canceled", Some(source)) => Some(format!("cancelSource {source}")),
        _ => None,
    };
    Ok(OrderReport {
        symbol: str_field(o, "instId")?.to_string(),
        client_order_id: str_field(o, "clOrdId")?.to_string(),
        venue_order_id: str_field(o, "ordId")?.to_string(),
        side,
        status: status(state)?,
        order_qty: decimal_field(o, "sz")?,
        filled_qty: decimal_field(o, "accFillSz")?,
        execution,
        reason,
        ts_ms: int_field(o, "uTime")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Decimal;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap_or_default()
    }

    /// Built field by field from the channel's response parameters in
    /// okx/order_book_trading.md (the copy has the table, not a sample message).
    const PUSH: &str = include_str!("../test_data/orders_push.json");

    #[test]
    fn a_partial_fill_then_the_final_state() {
        let reports = parse_orders(PUSH).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reports.len(), 2);
        let fill = reports[0].execution.clone().unwrap_or_else(|| panic!("a fill"));
        assert_eq!((reports[0].symbol.as_str(), reports[0].client_order_id.as_str(), reports[0].status), ("BTC-USDT", "hedge1", OrderStatus::Accepted));
        assert_eq!((fill.trade_id.as_str(), fill.price, fill.qty, fill.fee, fill.fee_asset.as_str(), fill.liquidity), ("242589207", d("41000.5"), d("0.01"), d("0.0000008"), "BTC", Liquidity::Taker));
        assert_eq!((reports[1].status, reports[1].filled_qty, reports[1].execution.is_none()), (OrderStatus::Canceled, d("0.01"), true));
        assert_eq!(reports[1].reason.as_deref(), Some("cancelSource 14"));
    }

    #[test]
    fn other_messages_are_ignored_and_broken_ones_said() {
        assert_eq!(parse_orders(r#"{"event":"login","code":"0","msg":""}"#), Err(ParseError::Ignored("login".into())));
        assert!(matches!(parse_orders(&PUSH.replace("\"fillPx\": \"41000.5\"", "\"fillPx\": \"?\"")), Err(ParseError::Malformed(m)) if m.contains("fillPx")));
    }
}
