//! Parsing of Binance private stream order events into [`OrderReport`]s: spot
//! `executionReport` (delivered by the WebSocket API wrapped as
//! `{"subscriptionId":N,"event":{...}}` since the listenKey stream was retired) and USD-M
//! `ORDER_TRADE_UPDATE`. Exchange JSON stops here.

use std::borrow::Cow;

use serde::Deserialize;

use crate::model::{Liquidity, OrderStatus, Side};
use crate::venue::report::{decimal_field, decimal_text, int_field, present, str_field, Execution, JsonInt, OrderReport, ParseError};

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
    read_in_place(text, Flavor::Spot).unwrap_or_else(|| parse_spot_tree(text))
}

/// A spot user-data frame read in place, with no JSON tree: `Some(Ok)` for an
/// `executionReport`, `Some(Err(Ignored(kind)))` for another event, None for a frame the
/// typed reader leaves to the tree (the stream's own messages among them).
pub fn spot_in_place(text: &str) -> Option<Result<OrderReport, ParseError>> {
    read_in_place(text, Flavor::Spot)
}

/// [`parse_spot`] through a JSON tree: slower, and the one that says what is wrong.
pub fn parse_spot_tree(text: &str) -> Result<OrderReport, ParseError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| ParseError::Malformed(e.to_string()))?;
    spot_from_tree(&value)
}

/// A spot user-data frame already parsed into a tree, for a reader that looked at it first.
pub fn spot_from_tree(value: &serde_json::Value) -> Result<OrderReport, ParseError> {
    let event = value.get("event").unwrap_or(value);
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
    read_in_place(text, Flavor::UsdM).unwrap_or_else(|| parse_usdm_tree(text))
}

/// [`parse_usdm`] through a JSON tree.
pub fn parse_usdm_tree(text: &str) -> Result<OrderReport, ParseError> {
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

/// The fields of a user-data message this adapter reads, straight from the frame: no
/// tree of the message is built, and strings without escapes are borrowed, not copied.
/// A fill frame is on the tick-to-trade path (#12). Spot and USD-M name an order's fields
/// alike; spot may wrap the event in `event`, USD-M puts the order in `o`.
///
/// Everything is optional here: this reader only takes the frames it can read whole and
/// leaves every other one (a field missing or of another type, a duplicate key) to the
/// tree reader, which gives the same answer for what this one takes (a property test
/// checks it) and says what is wrong with the rest.
#[derive(Deserialize)]
struct Fields<'a> {
    /// `"event": null` fails this reader, as it fails the tree reader; only a missing
    /// `event` means the event is the message itself.
    #[serde(borrow, default, deserialize_with = "present")]
    event: Option<Box<Fields<'a>>>,
    /// USD-M's order; on spot, `o` is the order type, a string, which reads as None.
    #[serde(borrow, default, deserialize_with = "order_object")]
    o: Option<Box<Fields<'a>>>,
    #[serde(borrow)]
    e: Option<Cow<'a, str>>,
    #[serde(rename = "E")]
    event_time: Option<JsonInt>,
    #[serde(borrow)]
    s: Option<Cow<'a, str>>,
    #[serde(borrow)]
    c: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "C")]
    original_client_id: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "S")]
    side: Option<Cow<'a, str>>,
    #[serde(borrow)]
    x: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "X")]
    status: Option<Cow<'a, str>>,
    i: Option<JsonInt>,
    t: Option<JsonInt>,
    #[serde(borrow)]
    q: Option<Cow<'a, str>>,
    #[serde(borrow)]
    z: Option<Cow<'a, str>>,
    #[serde(borrow)]
    l: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "L")]
    last_price: Option<Cow<'a, str>>,
    #[serde(borrow)]
    n: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "N")]
    fee_asset: Option<Cow<'a, str>>,
    m: Option<bool>,
    #[serde(borrow)]
    r: Option<Cow<'a, str>>,
    #[serde(borrow)]
    er: Option<Cow<'a, str>>,
}

/// An object read as [`Fields`], a string as None; anything else fails.
fn order_object<'de: 'a, 'a, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Box<Fields<'a>>>, D::Error> {
    struct Visitor<'a>(std::marker::PhantomData<Fields<'a>>);
    impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
        type Value = Option<Box<Fields<'a>>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an order object or an order type")
        }
        fn visit_map<M: serde::de::MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
            Fields::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(|f| Some(Box::new(f)))
        }
        fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    deserializer.deserialize_any(Visitor(std::marker::PhantomData))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Spot,
    UsdM,
}

/// The report of a user-data frame read in place; None leaves the frame to the tree reader.
fn read_in_place(text: &str, flavor: Flavor) -> Option<Result<OrderReport, ParseError>> {
    let top: Fields = serde_json::from_str(text).ok()?;
    let (event, expected) = match flavor {
        Flavor::Spot => (top.event.as_deref().unwrap_or(&top), "executionReport"),
        Flavor::UsdM => (&top, "ORDER_TRADE_UPDATE"),
    };
    let kind = event.e.as_deref()?;
    if kind != expected {
        return Some(Err(ParseError::Ignored(kind.to_string())));
    }
    let order = match flavor {
        Flavor::Spot => event,
        Flavor::UsdM => top.o.as_deref()?,
    };
    let execution = if order.x.as_deref()? == "TRADE" {
        Some(Execution {
            trade_id: order.t?.0.to_string(),
            price: decimal_text(order.last_price.as_deref()?)?,
            qty: decimal_text(order.l.as_deref()?)?,
            fee: decimal_text(order.n.as_deref()?)?,
            fee_asset: order.fee_asset.as_deref().unwrap_or_default().to_string(),
            liquidity: if order.m.unwrap_or(false) { Liquidity::Maker } else { Liquidity::Taker },
        })
    } else {
        None
    };
    let client_order_id = order.c.as_deref()?;
    let (client_order_id, reason) = match flavor {
        // A cancel reports the cancelled order's id in `C`; `c` is then the cancel request's.
        Flavor::Spot => (order.original_client_id.as_deref().filter(|c| !c.is_empty()).unwrap_or(client_order_id), order.r.as_deref().filter(|r| *r != "NONE").map(str::to_string)),
        Flavor::UsdM => (client_order_id, order.er.as_deref().filter(|r| *r != "0").map(|r| format!("expire reason {r}"))),
    };
    Some(Ok(OrderReport {
        symbol: order.s.as_deref()?.to_string(),
        client_order_id: client_order_id.to_string(),
        venue_order_id: order.i?.0.to_string(),
        side: side(order.side.as_deref()?).ok()?,
        status: status(order.status.as_deref()?).ok()?,
        order_qty: decimal_text(order.q.as_deref()?)?,
        filled_qty: decimal_text(order.z.as_deref()?)?,
        execution,
        reason,
        ts_ms: event.event_time?.0,
    }))
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

    /// Whatever a frame holds, the in-place reader gives the tree reader's answer or
    /// leaves the frame to it: the documented messages with fields removed, repeated or
    /// given other values, and other kinds of event.
    mod in_place {
        use super::*;
        use crate::venue::report::mutations::mutate;
        use proptest::prelude::*;

        fn samples() -> Vec<String> {
            let bare = serde_json::from_str::<serde_json::Value>(SPOT_TRADE).map(|v| v["event"].to_string()).unwrap_or_default();
            vec![SPOT_NEW.to_string(), SPOT_TRADE.to_string(), bare, USDM_NEW.to_string(), USDM_NEW.replace("\"x\": \"NEW\"", "\"x\": \"TRADE\"")]
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
            #[test]
            fn the_in_place_reader_agrees_with_the_tree_reader(sample in 0usize..5, edits in proptest::collection::vec((0u8..3, 0usize..64, 0usize..64), 0..4)) {
                let mut text = samples()[sample].clone();
                for (op, key, value) in edits {
                    text = mutate(&text, op, key, value);
                }
                prop_assert_eq!(parse_spot(&text), parse_spot_tree(&text), "spot: {}", text);
                prop_assert_eq!(parse_usdm(&text), parse_usdm_tree(&text), "usdm: {}", text);
            }
        }

        #[test]
        fn the_documented_messages_are_read_in_place() {
            for text in samples() {
                let flavor = if text.contains("ORDER_TRADE_UPDATE") { Flavor::UsdM } else { Flavor::Spot };
                let tree = if flavor == Flavor::UsdM { parse_usdm_tree(&text) } else { parse_spot_tree(&text) };
                assert!(tree.is_ok(), "{text}");
                assert_eq!(read_in_place(&text, flavor), Some(tree), "{text}");
            }
            // And the edge the tree reader sees differently from a missing `event`.
            assert_eq!(read_in_place(r#"{"event":null,"e":"executionReport"}"#, Flavor::Spot), None);
        }
    }
}
