//! OKX v5: REST under `/api/v5`, the private service `/ws/v5/private` (login, `orders`
//! channel) and the public one `/ws/v5/public` (`trades`), as okx/ in the copied docs
//! describes them. Swap sizes are contracts on the wire and base units inside.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use trading_model::{Decimal, OrderStatus, OrderType, SelfTradePrevention, Side, TimeInForce};
use serde_json::{json, Value};

use crate::auth::{okx_signature, parse_iso_ms};
use crate::market::{ExecKind, Happening, Market, Order, Trade};
use crate::{Admission, VenueState};

pub fn routes() -> Router<Arc<VenueState>> {
    Router::new().route("/ws/v5/private", get(private_ws)).route("/ws/v5/public", get(public_ws)).fallback(rest)
}

fn reply(status: StatusCode, code: &str, msg: &str, data: Value) -> Response {
    (status, [("Content-Type", "application/json")], json!({"code": code, "msg": msg, "data": data}).to_string()).into_response()
}

fn plain(d: Decimal) -> String {
    d.normalize().to_string()
}

fn ct(state: &VenueState, inst: &str) -> Decimal {
    state.market.lock().unwrap_or_else(|p| p.into_inner()).listing(inst).map(|l| l.contract_value).unwrap_or(Decimal::ONE)
}

fn inst_type(inst: &str) -> &'static str {
    if inst.ends_with("-SWAP") {
        "SWAP"
    } else {
        "SPOT"
    }
}

fn state_word(o: &Order) -> &'static str {
    match o.status {
        OrderStatus::Accepted if o.executed > Decimal::ZERO => "partially_filled",
        OrderStatus::Accepted => "live",
        OrderStatus::Filled => "filled",
        _ => "canceled",
    }
}

fn ord_type_word(t: OrderType) -> &'static str {
    match t {
        OrderType::Market => "market",
        OrderType::Limit { time_in_force: TimeInForce::Gtc, .. } => "limit",
        OrderType::Limit { time_in_force: TimeInForce::PostOnly, .. } => "post_only",
        OrderType::Limit { time_in_force: TimeInForce::Ioc, .. } => "ioc",
        OrderType::Limit { time_in_force: TimeInForce::Fok, .. } => "fok",
    }
}

fn side_word(s: Side) -> &'static str {
    match s {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

/// The fee an order has paid so far (OKX's sign: negative when charged) and its currency:
/// the fills', or before any fill the quote currency, in which this exchange charges every
/// fee (OKX charges a spot buy in base: not modelled yet).
fn accumulated_fee(market: &Market, o: &Order, upto: Option<&Trade>) -> (Decimal, String) {
    // A push is built after the whole batch it belongs to: it counts the fills up to its own.
    let trades: Vec<&Trade> = market.trades_of_order(o.order_id).into_iter().filter(|t| upto.is_none_or(|u| t.trade_id <= u.trade_id)).collect();
    let paid: Decimal = trades.iter().map(|t| t.fee).sum();
    let ccy = match trades.first() {
        Some(t) => t.fee_asset.clone(),
        None => market.listing(&o.symbol).map(|l| l.quote.clone()).unwrap_or_default(),
    };
    (-paid, ccy)
}

fn order_json(o: &Order, ct: Decimal, trade: Option<&Trade>, fee: (Decimal, String)) -> Value {
    let avg = if o.executed.is_zero() { Decimal::ZERO } else { (o.quote / o.executed).round_dp(8) };
    let fee_total = fee;
    let (fill_px, fill_sz, trade_id, fee, fee_ccy, exec) = match trade {
        Some(t) => (plain(t.price), plain(t.qty / ct), t.trade_id.to_string(), plain(-t.fee), t.fee_asset.clone(), if t.maker { "M" } else { "T" }),
        None => (String::new(), "0".into(), String::new(), "0".into(), String::new(), ""),
    };
    let cancel_source = if o.status == OrderStatus::Canceled { "1" } else if o.status == OrderStatus::Expired { "14" } else { "" };
    json!({
        "instType": inst_type(&o.symbol), "instId": o.symbol, "ordId": o.order_id.to_string(), "clOrdId": o.client_order_id, "tag": "",
        "px": if o.price().is_zero() { String::new() } else { plain(o.price()) }, "sz": plain(o.qty / ct), "ordType": ord_type_word(o.order_type),
        "side": side_word(o.side), "posSide": "net", "tdMode": if inst_type(&o.symbol) == "SWAP" { "cross" } else { "cash" },
        "accFillSz": plain(o.executed / ct), "avgPx": plain(avg), "fillPx": fill_px, "fillSz": fill_sz, "tradeId": trade_id,
        "fillFee": fee, "fillFeeCcy": fee_ccy, "execType": exec, "fee": plain(fee_total.0), "feeCcy": fee_total.1,
        "state": state_word(o), "cancelSource": cancel_source, "stpMode": match o.stp {
            SelfTradePrevention::ExpireMaker => "cancel_maker", SelfTradePrevention::ExpireBoth => "cancel_both", _ => "cancel_taker" },
        "uTime": o.updated_ms.to_string(), "cTime": o.created_ms.to_string(), "fillTime": trade.map(|t| t.ts_ms.to_string()).unwrap_or_default(),
    })
}

pub fn pushes(state: &VenueState, happenings: &[Happening]) -> (Vec<String>, Vec<(String, String)>) {
    let mut private = Vec::new();
    let mut public = Vec::new();
    for h in happenings {
        match h {
            Happening::Order { order, trade, kind } => {
                if *kind == ExecKind::Rejected {
                    continue;
                }
                let cv = contract_value_of(state, &order.symbol);
                let fee = accumulated_fee(&state.market.lock().unwrap_or_else(|p| p.into_inner()), order, trade.as_ref());
                // Each connection puts its own subscription in `arg` (see `orders_push`).
                private.push(json!({"arg": {"channel": "orders"}, "data": [order_json(order, cv, trade.as_ref(), fee)]}).to_string());
            }
            Happening::Public { symbol, trade_id, price, qty, buyer_is_maker, ts_ms } => {
                let cv = contract_value_of(state, symbol);
                let side = if *buyer_is_maker { "sell" } else { "buy" };
                public.push((
                    format!("trades:{symbol}"),
                    json!({"arg": {"channel": "trades", "instId": symbol}, "data": [{"instId": symbol, "tradeId": trade_id.to_string(), "px": plain(*price), "sz": plain(*qty / cv), "side": side, "ts": ts_ms.to_string(), "count": "1"}]}).to_string(),
                ));
            }
        }
    }
    (private, public)
}

/// Called with the market lock held by `with_market`'s caller released: reads listings
/// only through a fresh lock, so it must not be called while holding it.
fn contract_value_of(state: &VenueState, symbol: &str) -> Decimal {
    match state.market.try_lock() {
        Ok(m) => m.listing(symbol).map(|l| l.contract_value).unwrap_or(Decimal::ONE),
        Err(_) => Decimal::ONE,
    }
}

/// Checks OKX's four headers; the failure is its code and message (HTTP 401).
fn check_auth(state: &VenueState, headers: &HeaderMap, method: &Method, path_and_query: &str, body: &str) -> Result<(), (&'static str, &'static str)> {
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let (key, sign, ts, pass) = (h("OK-ACCESS-KEY"), h("OK-ACCESS-SIGN"), h("OK-ACCESS-TIMESTAMP"), h("OK-ACCESS-PASSPHRASE"));
    let unauthorized = |code: &'static str, msg: &'static str| (code, msg);
    if key.is_empty() {
        return Err(unauthorized("50103", "Request header \"OK-ACCESS-KEY\" cannot be empty."));
    }
    if pass.is_empty() {
        return Err(unauthorized("50104", "Request header \"OK-ACCESS-PASSPHRASE\" cannot be empty."));
    }
    if sign.is_empty() {
        return Err(unauthorized("50106", "Request header \"OK-ACCESS-SIGN\" cannot be empty."));
    }
    if ts.is_empty() {
        return Err(unauthorized("50107", "Request header \"OK-ACCESS-TIMESTAMP\" cannot be empty."));
    }
    if key != state.credentials.api_key {
        return Err(unauthorized("50111", "Invalid OK-ACCESS-KEY."));
    }
    let Some(ts_ms) = parse_iso_ms(&ts) else { return Err(unauthorized("50112", "Invalid OK-ACCESS-TIMESTAMP.")) };
    if (VenueState::now_ms() - ts_ms).abs() > 30_000 {
        return Err(unauthorized("50102", "Timestamp request expired."));
    }
    if pass != state.credentials.passphrase {
        return Err(unauthorized("50105", "Request header \"OK-ACCESS-PASSPHRASE\" incorrect."));
    }
    if okx_signature(&state.credentials.api_secret, &ts, method.as_str(), path_and_query, body) != sign {
        return Err(unauthorized("50113", "Invalid signature."));
    }
    Ok(())
}

/// A number for each order placed without a client id.
fn unnamed() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn query_param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// Each request is served by a task of its own, as a venue's backend goes on with a
/// request whatever became of the connection that brought it: a client that times out
/// does not stop a late placement from executing.
async fn rest(State(state): State<Arc<VenueState>>, method: Method, uri: Uri, headers: HeaderMap, body: String) -> Response {
    match tokio::spawn(serve_rest(state, method, uri, headers, body)).await {
        Ok(response) => response,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn serve_rest(state: Arc<VenueState>, method: Method, uri: Uri, headers: HeaderMap, body: String) -> Response {
    let _serving = state.serving();
    state.stall().await;
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    let placement = method == Method::POST && (path == "/api/v5/trade/order" || path == "/api/v5/trade/batch-orders");
    if placement {
        state.late_placement().await;
    }
    state.calls.lock().unwrap_or_else(|p| p.into_inner()).push(format!("{method} {path}"));
    let orders = match path.as_str() {
        "/api/v5/trade/order" => 1,
        "/api/v5/trade/batch-orders" => serde_json::from_str::<Vec<Value>>(&body).map(|v| v.len() as u32).unwrap_or(1),
        _ => 0,
    };
    match state.admit(1, orders) {
        Admission::Ok { .. } => {}
        Admission::TooMany { .. } | Admission::Banned { .. } => return reply(StatusCode::TOO_MANY_REQUESTS, "50011", "Too Many Requests", json!([])),
    }
    let path_and_query = if query.is_empty() { path.clone() } else { format!("{path}?{query}") };
    let now = VenueState::now_ms();
    match (method.as_str(), path.as_str()) {
        ("GET", "/api/v5/public/time") => return reply(StatusCode::OK, "0", "", json!([{"ts": now.to_string()}])),
        ("GET", "/api/v5/public/instruments") => {
            let kind = query_param(&query, "instType").unwrap_or_default();
            let market = state.market.lock().unwrap_or_else(|p| p.into_inner());
            let list: Vec<Value> = market
                .listings()
                .iter()
                .filter(|l| inst_type(&l.symbol) == kind)
                .map(|l| {
                    let swap = kind == "SWAP";
                    json!({"instType": kind, "instId": l.symbol, "uly": if swap { format!("{}-{}", l.base, l.quote) } else { String::new() },
                        "baseCcy": if swap { String::new() } else { l.base.clone() }, "quoteCcy": if swap { String::new() } else { l.quote.clone() },
                        "settleCcy": if swap { l.quote.clone() } else { String::new() }, "ctValCcy": if swap { l.base.clone() } else { String::new() },
                        "ctVal": if swap { plain(l.contract_value) } else { String::new() }, "ctMult": if swap { "1" } else { "" },
                        "tickSz": plain(l.tick_size), "lotSz": plain(l.lot_size / l.contract_value), "minSz": plain(l.min_qty / l.contract_value), "state": "live"})
                })
                .collect();
            return reply(StatusCode::OK, "0", "", Value::Array(list));
        }
        ("GET", "/api/v5/market/ticker") => {
            let Some(inst) = query_param(&query, "instId").filter(|i| !i.is_empty()) else {
                return reply(StatusCode::BAD_REQUEST, "50014", "Parameter instId can not be empty.", json!([]));
            };
            let market = state.market.lock().unwrap_or_else(|p| p.into_inner());
            let Some(listing) = market.listing(&inst) else {
                return reply(StatusCode::OK, "51001", "Instrument ID, Instrument ID code or Spread ID doesn't exist.", json!([]));
            };
            // The day's figures from the last price and this account's trades.
            let ct = listing.contract_value;
            let last = market.last_price(&inst).unwrap_or_default();
            let trades = market.trades_since(&inst, now - 86_400_000);
            let prices: Vec<Decimal> = trades.iter().map(|t| t.price).chain(std::iter::once(last)).collect();
            let book = market.depth(&inst, 1).unwrap_or_default();
            let level = |l: Option<&trading_model::BookLevel>| l.map(|l| (plain(l.price), plain(l.qty / ct))).unwrap_or_default();
            let ((bid_px, bid_sz), (ask_px, ask_sz)) = (level(book.bids.first()), level(book.asks.first()));
            let open = trades.first().map(|t| t.price).unwrap_or(last);
            let volume: Decimal = trades.iter().map(|t| t.qty).sum();
            return reply(StatusCode::OK, "0", "", json!([{"instType": inst_type(&inst), "instId": inst, "last": plain(last), "lastSz": plain(trades.last().map(|t| t.qty / ct).unwrap_or_default()),
                "askPx": ask_px, "askSz": ask_sz, "bidPx": bid_px, "bidSz": bid_sz, "open24h": plain(open), "high24h": plain(prices.iter().copied().max().unwrap_or(last)),
                "low24h": plain(prices.iter().copied().min().unwrap_or(last)), "volCcy24h": plain(volume), "vol24h": plain(volume / ct), "sodUtc0": plain(open), "sodUtc8": plain(open),
                "ts": now.to_string()}]));
        }
        ("GET", "/api/v5/market/books") => {
            let Some(inst) = query_param(&query, "instId").filter(|i| !i.is_empty()) else {
                return reply(StatusCode::BAD_REQUEST, "50014", "Parameter instId can not be empty.", json!([]));
            };
            // Depth per side: 1 unless asked, at most 400.
            let depth = match query_param(&query, "sz").map(|s| s.parse::<usize>()) {
                None => 1,
                Some(Ok(n)) if (1..=400).contains(&n) => n,
                Some(_) => return reply(StatusCode::BAD_REQUEST, "51000", "Parameter sz error", json!([])),
            };
            let market = state.market.lock().unwrap_or_else(|p| p.into_inner());
            let (Some(book), Some(listing)) = (market.depth(&inst, depth), market.listing(&inst)) else {
                return reply(StatusCode::OK, "51001", "Instrument ID, Instrument ID code or Spread ID doesn't exist.", json!([]));
            };
            let ct = listing.contract_value;
            let side = |levels: &[trading_model::BookLevel]| levels.iter().map(|l| json!([plain(l.price), plain(l.qty / ct), "0", "1"])).collect::<Vec<_>>();
            return reply(StatusCode::OK, "0", "", json!([{"asks": side(&book.asks), "bids": side(&book.bids), "ts": now.to_string()}]));
        }
        _ => {}
    }
    if let Err((code, msg)) = check_auth(&state, &headers, &method, &path_and_query, &body) {
        return reply(StatusCode::UNAUTHORIZED, code, msg, json!([]));
    }
    match (method.as_str(), path.as_str()) {
        ("POST", "/api/v5/trade/order") | ("POST", "/api/v5/trade/batch-orders") => {
            let batch = path.ends_with("batch-orders");
            let items: Vec<Value> = if batch {
                match serde_json::from_str::<Vec<Value>>(&body) {
                    Ok(v) if !v.is_empty() && v.len() <= 20 => v,
                    _ => return reply(StatusCode::BAD_REQUEST, "51000", "Parameter body error", json!([])),
                }
            } else {
                match serde_json::from_str::<Value>(&body) {
                    Ok(v) if v.is_object() => vec![v],
                    _ => return reply(StatusCode::BAD_REQUEST, "51000", "Parameter body error", json!([])),
                }
            };
            // expTime: a request processed after its deadline is not processed at all.
            if let Some(deadline) = headers.get("expTime").and_then(|v| v.to_str().ok()) {
                match deadline.parse::<i64>() {
                    Ok(deadline) if state.venue_now_ms() <= deadline => {}
                    Ok(_) => return reply(StatusCode::OK, "50036", "The expTime can't be earlier than the current system time. Please adjust the expTime and try again.", json!([])),
                    Err(_) => return reply(StatusCode::BAD_REQUEST, "50014", "Parameter expTime can not be empty", json!([])),
                }
            }
            let fault = state.placement_fault();
            if fault == Some(true) {
                return reply(StatusCode::SERVICE_UNAVAILABLE, "50001", "Service temporarily unavailable. Please try again later.", json!([]));
            }
            let results: Vec<Value> = items.iter().map(|item| place_one(&state, item, now)).collect();
            if fault == Some(false) {
                return reply(StatusCode::INTERNAL_SERVER_ERROR, "50026", "System error. Try again later", json!([]));
            }
            let failed = results.iter().filter(|r| r.get("sCode").and_then(|c| c.as_str()) != Some("0")).count();
            let (code, msg) = if failed == 0 {
                ("0", "")
            } else if failed == results.len() {
                ("1", "All operations failed")
            } else {
                ("2", "Bulk operation partially succeeded")
            };
            reply(StatusCode::OK, code, msg, Value::Array(results))
        }
        ("POST", "/api/v5/trade/cancel-order") | ("POST", "/api/v5/trade/cancel-batch-orders") => {
            let items: Vec<Value> = match serde_json::from_str::<Value>(&body) {
                Ok(Value::Array(v)) => v,
                Ok(v @ Value::Object(_)) => vec![v],
                _ => return reply(StatusCode::BAD_REQUEST, "51000", "Parameter body error", json!([])),
            };
            let mut out = Vec::new();
            for item in items {
                let inst = item.get("instId").and_then(|v| v.as_str()).unwrap_or_default().to_string();
                // Either id names the order; when both are given, `ordId` wins (the docs).
                // An empty string is no id at all (python-okx sends `clOrdId: ""`).
                let given = |name: &str| item.get(name).and_then(|v| v.as_str()).filter(|v| !v.is_empty());
                let cid = match (given("ordId"), given("clOrdId")) {
                    (Some(id), _) => id.parse().ok().and_then(|id| state.market.lock().unwrap_or_else(|p| p.into_inner()).order_by_id(id).map(|o| o.client_order_id.clone())),
                    (None, Some(c)) => Some(c.to_string()),
                    _ => None,
                };
                let result = cid.map(|cid| {
                    state.with_market(|m| match m.cancel(&inst, &cid, now) {
                        Ok((o, h)) => (Ok(o), h),
                        Err(e) => (Err(e), Vec::new()),
                    })
                });
                out.push(match result {
                    Some(Ok(o)) => json!({"clOrdId": o.client_order_id, "ordId": o.order_id.to_string(), "sCode": "0", "sMsg": ""}),
                    _ => json!({"clOrdId": item.get("clOrdId").cloned().unwrap_or_default(), "ordId": "", "sCode": "51400", "sMsg": "Order cancellation failed as the order has been filled, canceled or does not exist."}),
                });
            }
            let failed = out.iter().any(|r| r.get("sCode").and_then(|c| c.as_str()) != Some("0"));
            reply(StatusCode::OK, if failed { "1" } else { "0" }, "", Value::Array(out))
        }
        ("GET", "/api/v5/trade/order") => {
            let inst = query_param(&query, "instId").unwrap_or_default();
            let cv = ct(&state, &inst);
            let market = state.market.lock().unwrap_or_else(|p| p.into_inner());
            let given = |name: &str| query_param(&query, name).filter(|v| !v.is_empty());
            let order = match (given("ordId"), given("clOrdId")) {
                (Some(id), _) => id.parse().ok().and_then(|id| market.order_by_id(id)),
                (None, Some(c)) => market.order(&c),
                _ => return reply(StatusCode::OK, "51003", "Either client order ID or order ID is required.", json!([])),
            };
            match order.filter(|o| o.symbol == inst) {
                Some(o) => reply(StatusCode::OK, "0", "", json!([order_json(o, cv, None, accumulated_fee(&market, o, None))])),
                None => reply(StatusCode::OK, "51603", "Order does not exist.", json!([])),
            }
        }
        ("GET", "/api/v5/trade/orders-pending") => {
            let inst = query_param(&query, "instId");
            let market = state.market.lock().unwrap_or_else(|p| p.into_inner());
            let list: Vec<Value> = market
                .open_orders(inst.as_deref())
                .into_iter()
                .map(|o| order_json(o, market.listing(&o.symbol).map(|l| l.contract_value).unwrap_or(Decimal::ONE), None, accumulated_fee(&market, o, None)))
                .collect();
            reply(StatusCode::OK, "0", "", Value::Array(list))
        }
        ("GET", "/api/v5/trade/fills") | ("GET", "/api/v5/trade/fills-history") => {
            let inst = query_param(&query, "instId").unwrap_or_default();
            let number = |name: &str| query_param(&query, name).and_then(|b| b.parse::<i64>().ok());
            let begin = number("begin").unwrap_or(0);
            // Newest first; `after` and `before` page by bill id, `limit` at most 100.
            let limit = number("limit").unwrap_or(100).clamp(1, 100) as usize;
            let shown_until = state.trade_list_until_ms();
            let market = state.market.lock().unwrap_or_else(|p| p.into_inner());
            let cv = market.listing(&inst).map(|l| l.contract_value).unwrap_or(Decimal::ONE);
            let list: Vec<Value> = market
                .trades_since(&inst, begin)
                .into_iter()
                .rev()
                .filter(|t| t.ts_ms <= shown_until)
                .filter(|t| number("end").is_none_or(|end| t.ts_ms <= end))
                .filter(|t| number("after").is_none_or(|after| t.trade_id < after))
                .filter(|t| number("before").is_none_or(|before| t.trade_id > before))
                .take(limit)
                .map(|t| {
                    json!({"instType": inst_type(&t.symbol), "instId": t.symbol, "tradeId": t.trade_id.to_string(), "ordId": t.order_id.to_string(),
                        "clOrdId": t.client_order_id, "billId": t.trade_id.to_string(), "fillPx": plain(t.price), "fillSz": plain(t.qty / cv),
                        "side": side_word(t.side), "posSide": "net", "execType": if t.maker { "M" } else { "T" }, "feeCcy": t.fee_asset,
                        "fee": plain(-t.fee), "ts": t.ts_ms.to_string(), "fillTime": t.ts_ms.to_string()})
                })
                .collect();
            reply(StatusCode::OK, "0", "", Value::Array(list))
        }
        // Not in the copied docs: the fields follow OKX's public v5 docs (Trading Account).
        ("GET", "/api/v5/account/positions") => {
            let kind = query_param(&query, "instType").unwrap_or_default();
            let inst = query_param(&query, "instId").unwrap_or_default();
            if !["", "MARGIN", "SWAP", "FUTURES", "OPTION"].contains(&kind.as_str()) {
                return reply(StatusCode::BAD_REQUEST, "51000", "Parameter instType error", json!([]));
            }
            let market = state.market.lock().unwrap_or_else(|p| p.into_inner());
            let list: Vec<Value> = market
                .listings()
                .iter()
                .enumerate()
                .filter(|(_, l)| inst_type(&l.symbol) == "SWAP" && (kind.is_empty() || kind == "SWAP") && (inst.is_empty() || inst == l.symbol))
                .filter_map(|(n, l)| {
                    let (pos, avg) = market.position(&l.symbol);
                    if pos.is_zero() {
                        return None;
                    }
                    let last = market.last_price(&l.symbol).unwrap_or(avg);
                    let lever = market.leverage.get(&l.symbol).copied().unwrap_or(crate::market::DEFAULT_LEVERAGE);
                    let notional = pos.abs() * last;
                    Some(json!({"instType": "SWAP", "instId": l.symbol, "mgnMode": "cross", "posId": (n + 1).to_string(), "posSide": "net",
                        "pos": plain(pos / l.contract_value), "posCcy": "", "availPos": "", "avgPx": plain(avg.round_dp(8)), "markPx": plain(last), "last": plain(last),
                        "upl": plain(((last - avg) * pos).round_dp(8)), "lever": plain(lever), "notionalUsd": plain(notional.round_dp(8)),
                        "imr": plain((notional / lever).round_dp(8)), "margin": "", "liqPx": "", "ccy": l.quote, "cTime": now.to_string(), "uTime": now.to_string()}))
                })
                .collect();
            reply(StatusCode::OK, "0", "", Value::Array(list))
        }
        ("POST", "/api/v5/account/set-leverage") => {
            let request: Value = serde_json::from_str(&body).unwrap_or_default();
            // Strings per the docs; a number is taken too, as OKX does (ccxt sends `lever` as one).
            let field = |name: &str| match request.get(name) {
                Some(Value::String(text)) => text.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => String::new(),
            };
            let (inst, mode) = (field("instId"), field("mgnMode"));
            let lever = match field("lever").parse::<Decimal>() {
                Ok(l) if l >= Decimal::ONE && l <= Decimal::from(125) => l,
                _ => return reply(StatusCode::BAD_REQUEST, "51000", "Parameter lever error", json!([])),
            };
            if !["cross", "isolated"].contains(&mode.as_str()) {
                return reply(StatusCode::BAD_REQUEST, "51000", "Parameter mgnMode error", json!([]));
            }
            let mut market = state.market.lock().unwrap_or_else(|p| p.into_inner());
            if market.listing(&inst).is_none() {
                return reply(StatusCode::OK, "51001", "Instrument ID, Instrument ID code or Spread ID doesn't exist.", json!([]));
            }
            market.leverage.insert(inst.clone(), lever);
            reply(StatusCode::OK, "0", "", json!([{"lever": plain(lever), "mgnMode": mode, "instId": inst, "posSide": ""}]))
        }
        ("GET", "/api/v5/account/balance") => {
            let market = state.market.lock().unwrap_or_else(|p| p.into_inner());
            let details: Vec<Value> =
                market.balances().into_iter().map(|(a, free, locked)| json!({"ccy": a, "cashBal": plain(free + locked), "availBal": plain(free), "frozenBal": plain(locked), "eq": plain(free + locked)})).collect();
            reply(StatusCode::OK, "0", "", json!([{"uTime": now.to_string(), "details": details}]))
        }
        _ => reply(StatusCode::NOT_FOUND, "50000", "Body cannot be empty or path not found.", json!([])),
    }
}

fn place_one(state: &VenueState, item: &Value, now: i64) -> Value {
    let s = |name: &str| item.get(name).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let cid = s("clOrdId");
    let fail = |code: &str, msg: &str| json!({"clOrdId": cid, "ordId": "", "tag": "", "ts": now.to_string(), "sCode": code, "sMsg": msg});
    let inst = s("instId");
    let Some(cv) = state.market.lock().unwrap_or_else(|p| p.into_inner()).listing(&inst).map(|l| l.contract_value) else {
        return fail("51001", "Instrument ID, Instrument ID code or Spread ID doesn't exist.");
    };
    if !cid.chars().all(|c| c.is_ascii_alphanumeric()) || cid.len() > 32 {
        return fail("51000", "Parameter clOrdId error");
    }
    let side = match s("side").as_str() {
        "buy" => Side::Buy,
        "sell" => Side::Sell,
        _ => return fail("51000", "Parameter side error"),
    };
    let Ok(mut sz) = s("sz").parse::<Decimal>() else { return fail("51000", "Parameter sz error") };
    let px = s("px").parse::<Decimal>().ok();
    // A spot market buy is sized in the quote currency unless `tgtCcy` says base_ccy (a
    // market sell, in the base unless it says quote_ccy): converted here at the last price,
    // rounded down to the lot.
    if s("ordType") == "market" && inst_type(&inst) == "SPOT" {
        let quote_sized = match (side, s("tgtCcy").as_str()) {
            (Side::Buy, "" | "quote_ccy") | (Side::Sell, "quote_ccy") => true,
            (_, "" | "base_ccy") => false,
            _ => return fail("51000", "Parameter tgtCcy error"),
        };
        if quote_sized {
            let market = state.market.lock().unwrap_or_else(|p| p.into_inner());
            let (Some(price), Some(lot)) = (market.last_price(&inst).filter(|p| *p > Decimal::ZERO), market.listing(&inst).map(|l| l.lot_size)) else {
                return fail("51000", "Parameter sz error");
            };
            let base = sz / price;
            sz = if lot > Decimal::ZERO { (base / lot).floor() * lot } else { base };
        }
    }
    let order_type = match (s("ordType").as_str(), px) {
        ("market", _) => OrderType::Market,
        ("limit", Some(p)) => OrderType::Limit { price: p, time_in_force: TimeInForce::Gtc },
        ("post_only", Some(p)) => OrderType::Limit { price: p, time_in_force: TimeInForce::PostOnly },
        ("ioc", Some(p)) => OrderType::Limit { price: p, time_in_force: TimeInForce::Ioc },
        ("fok", Some(p)) => OrderType::Limit { price: p, time_in_force: TimeInForce::Fok },
        _ => return fail("51000", "Parameter ordType or px error"),
    };
    // The docs' default is cancel_maker.
    let stp = match s("stpMode").as_str() {
        "" | "cancel_maker" => SelfTradePrevention::ExpireMaker,
        "cancel_both" => SelfTradePrevention::ExpireBoth,
        "cancel_taker" => SelfTradePrevention::ExpireTaker,
        _ => return fail("51000", "Parameter stpMode error"),
    };
    // An order without a client id still needs a key here, unique even within a batch.
    let cid_for = if cid.is_empty() { format!("local{now}-{}", unnamed()) } else { cid.clone() };
    let result = state.with_market(|m| match m.place(&inst, &cid_for, side, order_type, sz * cv, stp, now) {
        Ok((o, h)) => (Ok(o), h),
        Err(e) => (Err(e), Vec::new()),
    });
    match result {
        Ok(o) => json!({"clOrdId": cid, "ordId": o.order_id.to_string(), "tag": "", "ts": now.to_string(), "sCode": "0", "sMsg": "Order placed"}),
        Err(r) if r.0.contains("insufficient") => fail("51008", "Order failed. Insufficient balance."),
        Err(r) if r.0.contains("Duplicate") => fail("51016", "Duplicated client order ID"),
        Err(r) => fail("51000", &format!("Parameter error: {}", r.0)),
    }
}

/// Reads client frames and writes pushes; closes after 30 s without a client frame, as
/// OKX does.
async fn session(mut socket: WebSocket, state: Arc<VenueState>, private: bool) {
    let mut disconnect = state.disconnect_tx.subscribe();
    let mut logged_in = false;
    let mut orders_rx: Option<tokio::sync::broadcast::Receiver<String>> = None;
    // The `orders` subscription's arg: which pushes this connection gets, and their `arg`.
    let mut orders_arg = Value::Null;
    let mut public_rx = state.public_tx.subscribe();
    let mut instruments: Vec<String> = Vec::new();
    let conn_id = format!("{:x}", VenueState::now_ms());
    loop {
        let orders_next = async {
            match orders_rx.as_mut() {
                Some(rx) => rx.recv().await.ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            incoming = tokio::time::timeout(Duration::from_secs(30), socket.recv()) => {
                let text = match incoming {
                    Err(_) => return,
                    Ok(Some(Ok(Message::Text(t)))) => t.to_string(),
                    Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => return,
                    Ok(Some(Ok(_))) => continue,
                };
                if text == "ping" {
                    if socket.send(Message::text("pong")).await.is_err() { return }
                    continue;
                }
                let request: Value = match serde_json::from_str(&text) {
                    Ok(v) => v,
                    Err(_) => {
                        let _ = socket.send(Message::text(json!({"event": "error", "code": "60012", "msg": format!("Invalid request: {text}"), "connId": conn_id}).to_string())).await;
                        continue;
                    }
                };
                let op = request.get("op").and_then(|o| o.as_str()).unwrap_or_default();
                let args = request.get("args").and_then(|a| a.as_array()).cloned().unwrap_or_default();
                // A request's `id` comes back in its answer.
                let request_id = request.get("id").and_then(|i| i.as_str()).map(str::to_string);
                let with_id = |mut answer: Value| {
                    if let (Some(id), Value::Object(map)) = (&request_id, &mut answer) {
                        map.insert("id".into(), json!(id));
                    }
                    answer
                };
                let answer = match op {
                    "login" if private => match login(&state, args.first()) {
                        Ok(()) => {
                            logged_in = true;
                            json!({"event": "login", "code": "0", "msg": "", "connId": conn_id})
                        }
                        Err((code, msg)) => json!({"event": "error", "code": code, "msg": msg, "connId": conn_id}),
                    },
                    "subscribe" => {
                        let arg = args.first().cloned().unwrap_or_default();
                        let channel = arg.get("channel").and_then(|c| c.as_str()).unwrap_or_default();
                        match (private, channel) {
                            (true, "orders") if logged_in => match arg.get("instType").and_then(|i| i.as_str()) {
                                Some("SPOT" | "MARGIN" | "SWAP" | "FUTURES" | "OPTION" | "ANY") => {
                                    orders_rx = Some(state.private_tx.subscribe());
                                    orders_arg = arg.clone();
                                    json!({"event": "subscribe", "arg": arg, "connId": conn_id})
                                }
                                _ => json!({"event": "error", "code": "60018", "msg": "Wrong URL or channel:orders, instType doesn't exist. Please use the correct URL, channel and parameters referring to API document.", "connId": conn_id}),
                            },
                            (true, "orders") => json!({"event": "error", "code": "60011", "msg": "Please log in", "connId": conn_id}),
                            (false, "trades") | (false, "books") => {
                                state.calls.lock().unwrap_or_else(|p| p.into_inner()).push(format!("WS subscribe {channel}"));
                                let mut snapshots = Vec::new();
                                for a in &args {
                                    if let Some(i) = a.get("instId").and_then(|i| i.as_str()) {
                                        instruments.push(format!("{channel}:{i}"));
                                        if channel == "books" {
                                            let ct = ct(&state, i);
                                            if let Some(track) = state.books.lock().unwrap_or_else(|p| p.into_inner()).by_symbol.get(i) {
                                                snapshots.push(crate::depth::okx_snapshot(i, track, ct, VenueState::now_ms()));
                                            }
                                        }
                                    }
                                }
                                if socket.send(Message::text(with_id(json!({"event": "subscribe", "arg": arg, "connId": conn_id})).to_string())).await.is_err() { return }
                                for snapshot in snapshots {
                                    if socket.send(Message::text(snapshot)).await.is_err() { return }
                                }
                                continue;
                            }
                            _ => json!({"event": "error", "code": "60018", "msg": format!("Wrong URL or channel:{channel} doesn't exist. Please use the correct URL, channel and parameters referring to API document."), "connId": conn_id}),
                        }
                    }
                    "unsubscribe" => {
                        let arg = args.first().cloned().unwrap_or_default();
                        for a in &args {
                            if let (Some(c), Some(i)) = (a.get("channel").and_then(|c| c.as_str()), a.get("instId").and_then(|i| i.as_str())) {
                                instruments.retain(|k| *k != format!("{c}:{i}"));
                            }
                        }
                        json!({"event": "unsubscribe", "arg": arg, "connId": conn_id})
                    }
                    _ => json!({"event": "error", "code": "60012", "msg": format!("Invalid request: {text}"), "connId": conn_id}),
                };
                if socket.send(Message::text(with_id(answer).to_string())).await.is_err() { return }
            }
            push = orders_next => {
                let Some(push) = push else { return };
                if let Some(push) = orders_push(&push, &orders_arg) {
                    if socket.send(Message::text(push)).await.is_err() { return }
                }
            }
            public = public_rx.recv(), if !private => {
                let Ok((symbol, text)) = public else { return };
                if instruments.contains(&symbol) && socket.send(Message::text(text)).await.is_err() { return }
            }
            _ = disconnect.recv() => return,
        }
    }
}

/// The user id pushes carry in their `arg`.
const UID: &str = "44705892343619584";

/// An order push as a connection subscribed with `arg` receives it: only orders of its
/// `instType` (unless `ANY`) and `instId` (if given), with its own subscription echoed.
fn orders_push(push: &str, arg: &Value) -> Option<String> {
    let mut push: Value = serde_json::from_str(push).ok()?;
    let order = push["data"].get(0)?;
    let wanted_type = arg.get("instType").and_then(|i| i.as_str()).unwrap_or("ANY");
    if wanted_type != "ANY" && order["instType"].as_str() != Some(wanted_type) {
        return None;
    }
    if let Some(id) = arg.get("instId").and_then(|i| i.as_str()) {
        if order["instId"].as_str() != Some(id) {
            return None;
        }
    }
    let mut echoed = arg.clone();
    if let Value::Object(map) = &mut echoed {
        map.insert("uid".into(), json!(UID));
    }
    push["arg"] = echoed;
    Some(push.to_string())
}

fn login(state: &VenueState, arg: Option<&Value>) -> Result<(), (&'static str, &'static str)> {
    let arg = arg.ok_or(("60009", "Login failed."))?;
    // Strings per the docs; OKX takes the timestamp as a number too (python-okx sends one).
    let s = |name: &str| match arg.get(name) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    if s("apiKey") != state.credentials.api_key {
        return Err(("60005", "Invalid apiKey"));
    }
    let ts: i64 = s("timestamp").parse().map_err(|_| ("60004", "Invalid timestamp"))?;
    if (VenueState::now_ms() / 1000 - ts).abs() > 30 {
        return Err(("60004", "Invalid timestamp"));
    }
    if s("passphrase") != state.credentials.passphrase {
        return Err(("60024", "Wrong passphrase"));
    }
    if okx_signature(&state.credentials.api_secret, &s("timestamp"), "GET", "/users/self/verify", "") != s("sign") {
        return Err(("60007", "Invalid sign"));
    }
    Ok(())
}

async fn private_ws(State(state): State<Arc<VenueState>>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| session(socket, state, true))
}

async fn public_ws(State(state): State<Arc<VenueState>>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| session(socket, state, false))
}
