//! What a venue's private stream says about one of our orders, in our types but before
//! the symbol is mapped to an instrument handle. Each adapter parses its own JSON into
//! this; [`OrderReport::into_events`] turns it into the events strategies receive.

use crate::model::{Decimal, Fill, InstrumentId, Liquidity, OrderStatus, OrderUpdate, Side, StrategyId};
use crate::venue::VenueEvent;

/// The execution part of a report, when the report is a trade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    pub trade_id: String,
    pub price: Decimal,
    pub qty: Decimal,
    /// Positive: what we paid.
    pub fee: Decimal,
    pub fee_asset: String,
    pub liquidity: Liquidity,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderReport {
    /// The venue's symbol (`BTCUSDT`, `BTC-USDT`), mapped to an instrument by the adapter.
    pub symbol: String,
    pub client_order_id: String,
    pub venue_order_id: String,
    pub side: Side,
    pub status: OrderStatus,
    pub order_qty: Decimal,
    pub filled_qty: Decimal,
    pub execution: Option<Execution>,
    pub reason: Option<String>,
    pub ts_ms: i64,
}

/// Why a message could not be used. Both are counted and logged by the connection; neither
/// breaks it.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ParseError {
    #[error("malformed message: {0}")]
    Malformed(String),
    /// Valid, but of a kind this adapter does not use.
    #[error("ignored message kind {0}")]
    Ignored(String),
}

impl OrderReport {
    /// A fill read back from a venue's trade list: it says nothing of the order's state
    /// (status `Accepted`, quantities zero), only that this execution happened.
    pub fn trade_only(symbol: String, client_order_id: String, venue_order_id: String, side: Side, execution: Execution, ts_ms: i64) -> Self {
        OrderReport {
            symbol,
            client_order_id,
            venue_order_id,
            side,
            status: OrderStatus::Accepted,
            order_qty: Decimal::ZERO,
            filled_qty: Decimal::ZERO,
            execution: Some(execution),
            reason: None,
            ts_ms,
        }
    }

    /// The fill (if the report is a trade) and the order's new state.
    pub fn into_events(self, instrument: InstrumentId, owner: Option<StrategyId>) -> Vec<VenueEvent> {
        let mut events = Vec::new();
        if let Some(e) = self.execution {
            events.push(VenueEvent::Fill(Fill {
                instrument,
                client_order_id: self.client_order_id.clone(),
                owner,
                trade_id: e.trade_id,
                side: self.side,
                price: e.price,
                qty: e.qty,
                fee: e.fee,
                fee_asset: e.fee_asset,
                liquidity: e.liquidity,
                ts_ms: self.ts_ms,
            }));
        }
        let remaining = if self.status.is_final() { Decimal::ZERO } else { self.order_qty - self.filled_qty };
        events.push(VenueEvent::Order(OrderUpdate {
            instrument,
            client_order_id: self.client_order_id,
            owner,
            status: self.status,
            filled_qty: self.filled_qty,
            remaining_qty: remaining,
            reason: self.reason,
            ts_ms: self.ts_ms,
        }));
        events
    }
}

/// A decimal field sent as a JSON string, as every venue here sends prices.
pub fn decimal_field(value: &serde_json::Value, name: &str) -> Result<Decimal, ParseError> {
    let text = value.get(name).and_then(|v| v.as_str()).ok_or_else(|| ParseError::Malformed(format!("{name} missing or not a string")))?;
    if text.is_empty() {
        return Ok(Decimal::ZERO);
    }
    text.parse().map_err(|_| ParseError::Malformed(format!("{name} {text:?} is not a decimal")))
}

pub fn str_field<'a>(value: &'a serde_json::Value, name: &str) -> Result<&'a str, ParseError> {
    value.get(name).and_then(|v| v.as_str()).ok_or_else(|| ParseError::Malformed(format!("{name} missing or not a string")))
}

pub fn int_field(value: &serde_json::Value, name: &str) -> Result<i64, ParseError> {
    match value.get(name) {
        Some(serde_json::Value::Number(n)) => n.as_i64().ok_or_else(|| ParseError::Malformed(format!("{name} is not an integer"))),
        Some(serde_json::Value::String(s)) => s.parse().map_err(|_| ParseError::Malformed(format!("{name} {s:?} is not an integer"))),
        _ => Err(ParseError::Malformed(format!("{name} missing"))),
    }
}

/// An id that is an integer and not negative (a trade id): [`int_field`], refusing what
/// would otherwise wrap into a huge id.
pub fn id_field(value: &serde_json::Value, name: &str) -> Result<u64, ParseError> {
    let n = int_field(value, name)?;
    u64::try_from(n).map_err(|_| ParseError::Malformed(format!("{name} {n} is negative")))
}

/// An integer sent as a JSON number or as a string, read in place: what [`int_field`]
/// accepts, for the typed readers of the hot frames. Anything else fails the typed read,
/// and the frame is read again the general way, which says what is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonInt(pub i64);

impl<'de> serde::Deserialize<'de> for JsonInt {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = JsonInt;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an integer, as a number or a string")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<JsonInt, E> {
                Ok(JsonInt(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<JsonInt, E> {
                i64::try_from(v).map(JsonInt).map_err(|_| E::custom("integer out of range"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<JsonInt, E> {
                v.parse().map(JsonInt).map_err(|_| E::custom("not an integer"))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A decimal sent as a JSON string, as [`decimal_field`] reads it (empty is zero).
pub fn decimal_text(text: &str) -> Option<Decimal> {
    if text.is_empty() {
        return Some(Decimal::ZERO);
    }
    text.parse().ok()
}

/// A field that is there, whatever its value (a null included, which then fails the
/// typed read): for a wrapper such as `event` or `data`, whose absence means the message
/// is the event itself but whose null the tree readers refuse.
pub fn present<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// Frames with a member's value changed, removed or repeated: what the property tests of
/// the in-place readers feed both readers.
#[cfg(test)]
pub mod mutations {
    const VALUES: &[&str] = &["null", "5", "-1", "1.5", "\"\"", "\"abc\"", "\"12\"", "\"0.5\"", "true", "{}", "[]", "\"\\u0041B\"", "18446744073709551615", "\"TRADE\"", "\"NEW\"", "\"FILLED\"", "\"SELL\"", "\"executionReport\"", "\"ORDER_TRADE_UPDATE\"", "\"outboundAccountPosition\"", "\"trade\"", "\"aggTrade\"", "\"depthUpdate\""];

    /// The keys of an object's members in a text, as `"k":`, with where they start.
    fn keys(text: &str) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        let bytes = text.as_bytes();
        let mut i = 0;
        while let Some(start) = text[i..].find('"').map(|p| p + i) {
            let Some(end) = text[start + 1..].find('"').map(|p| p + start + 1) else { break };
            let after = text[end + 1..].trim_start();
            if after.starts_with(':') {
                out.push((start, text[start + 1..end].to_string()));
            }
            i = end + 1;
            if i >= bytes.len() {
                break;
            }
        }
        out
    }

    /// `op` 0: the member's value replaced; 1: the member removed; 2: the member
    /// repeated first in its object with another value.
    pub fn mutate(text: &str, op: u8, key: usize, value: usize) -> String {
        let found = keys(text);
        if found.is_empty() {
            return text.to_string();
        }
        let (start, name) = &found[key % found.len()];
        let value = VALUES[value % VALUES.len()];
        let colon = start + text[*start..].find(':').unwrap_or(0);
        // The member's value ends at the first comma or closing brace at its depth.
        let mut depth = 0i32;
        let mut end = text.len();
        let mut in_string = false;
        let mut escaped = false;
        for (j, ch) in text[colon + 1..].char_indices() {
            if in_string {
                match (escaped, ch) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => in_string = false,
                    _ => {}
                }
                continue;
            }
            match ch {
                '"' => in_string = true,
                '{' | '[' => depth += 1,
                '}' | ']' if depth == 0 => {
                    end = colon + 1 + j;
                    break;
                }
                '}' | ']' => depth -= 1,
                ',' if depth == 0 => {
                    end = colon + 1 + j;
                    break;
                }
                _ => {}
            }
        }
        match op % 3 {
            0 => format!("{}{value}{}", &text[..colon + 1], &text[end..]),
            1 => {
                // With the comma after it, or before it when it is the last.
                let rest = &text[end..];
                match rest.strip_prefix(',') {
                    Some(rest) => format!("{}{rest}", &text[..*start]),
                    None => {
                        let before = text[..*start].trim_end();
                        let before = before.strip_suffix(',').unwrap_or(before);
                        format!("{before}{rest}")
                    }
                }
            }
            _ => format!("{}\"{name}\": {value}, {}", &text[..*start], &text[*start..]),
        }
    }

}
