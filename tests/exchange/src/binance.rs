//! Binance spot (`/api/v3`, WebSocket API `/ws-api/v3`, streams `/stream`, `/ws`) and
//! USD-M futures (`/fapi/v1`, listen key streams on `/private/ws`, market streams on
//! `/market/stream`), as binance-spot/ and binance-usdm/ in the copied docs describe them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use trading_model::{Decimal, OrderType, SelfTradePrevention, Side, TimeInForce};
use serde_json::{json, Value};

use crate::auth::{binance_signature_ok, strip_signature};
use crate::market::{binance_order_type, ExecKind, Happening, Order, Trade};
use crate::{Admission, Kind, VenueState};

pub fn routes() -> Router<Arc<VenueState>> {
    Router::new()
        .route("/ws-api/v3", get(ws_api))
        .route("/stream", get(public_combined))
        .route("/market/stream", get(public_combined))
        .route("/public/stream", get(public_combined))
        .route("/public/ws/{stream}", get(public_single))
        .route("/ws", get(public_bare))
        .route("/ws/{stream}", get(public_single))
        .route("/market/ws/{stream}", get(public_single))
        .route("/private/ws", get(private_listen_key))
        .fallback(rest)
}

/// A Binance error answer: HTTP status, code and message.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: i64,
    msg: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, [("Content-Type", "application/json")], json!({"code": self.code, "msg": self.msg}).to_string()).into_response()
    }
}

fn error(status: StatusCode, code: i64, msg: &str) -> ApiError {
    ApiError { status, code, msg: msg.to_string() }
}

/// A decimal as the venue prints it: Binance spot at eight decimals everywhere
/// (`"0.00100000"`), USD-M without padding, as their docs' examples show.
pub(crate) fn num(futures: bool, d: Decimal) -> String {
    if futures {
        d.normalize().to_string()
    } else {
        format!("{:.8}", d.round_dp(8))
    }
}

fn side_word(s: Side) -> &'static str {
    match s {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    }
}

fn type_words(t: OrderType, futures: bool) -> (&'static str, &'static str) {
    match t {
        OrderType::Market => ("MARKET", "GTC"),
        OrderType::Limit { time_in_force: TimeInForce::PostOnly, .. } if !futures => ("LIMIT_MAKER", "GTC"),
        OrderType::Limit { time_in_force, .. } => (
            "LIMIT",
            match time_in_force {
                TimeInForce::Gtc => "GTC",
                TimeInForce::Ioc => "IOC",
                TimeInForce::Fok => "FOK",
                TimeInForce::PostOnly => "GTX",
            },
        ),
    }
}

fn stp_word(s: SelfTradePrevention) -> &'static str {
    runtime::venue::binance::common::stp_mode(s)
}

/// `selfTradePreventionMode`; when absent, the venue's default: spot's is EXPIRE_MAKER
/// (the symbol's `defaultSelfTradePreventionMode`), USD-M's is NONE.
fn parse_stp(s: Option<&str>, futures: bool) -> Result<SelfTradePrevention, String> {
    Ok(match s {
        None if futures => SelfTradePrevention::None,
        None | Some("EXPIRE_MAKER") => SelfTradePrevention::ExpireMaker,
        Some("NONE") => SelfTradePrevention::None,
        Some("EXPIRE_TAKER") => SelfTradePrevention::ExpireTaker,
        Some("EXPIRE_BOTH") => SelfTradePrevention::ExpireBoth,
        Some(other) => return Err(format!("Invalid selfTradePreventionMode {other}")),
    })
}

/// An order object as REST answers (place, query, open orders).
pub fn order_json(o: &Order, futures: bool) -> Value {
    let (kind, tif) = type_words(o.order_type, futures);
    let mut v = json!({
        "symbol": o.symbol,
        "orderId": o.order_id,
        "clientOrderId": o.client_order_id,
        "price": num(futures, o.price()),
        "origQty": num(futures, o.qty),
        "executedQty": num(futures, o.executed),
        "status": o.binance_status(),
        "timeInForce": tif,
        "type": kind,
        "side": side_word(o.side),
        "selfTradePreventionMode": stp_word(o.stp),
        "updateTime": o.updated_ms,
    });
    if let Value::Object(map) = &mut v {
        if futures {
            map.insert("cumQty".into(), json!(num(futures, o.executed)));
            map.insert("cumQuote".into(), json!(num(futures, o.quote)));
            let avg = if o.executed.is_zero() { Decimal::ZERO } else { o.quote / o.executed };
            map.insert("avgPrice".into(), json!(num(futures, avg.round_dp(8))));
            map.insert("origType".into(), json!(kind));
            map.insert("positionSide".into(), json!("BOTH"));
            map.insert("reduceOnly".into(), json!(false));
            map.insert("time".into(), json!(o.created_ms));
        } else {
            map.insert("orderListId".into(), json!(-1));
            map.insert("cummulativeQuoteQty".into(), json!(num(futures, o.quote)));
            map.insert("time".into(), json!(o.created_ms));
            map.insert("transactTime".into(), json!(o.updated_ms));
            map.insert("workingTime".into(), json!(o.created_ms));
            map.insert("isWorking".into(), json!(true));
        }
    }
    v
}

fn trade_json(t: &Trade, futures: bool) -> Value {
    if futures {
        json!({"symbol": t.symbol, "id": t.trade_id, "orderId": t.order_id, "side": side_word(t.side), "price": num(futures, t.price), "qty": num(futures, t.qty),
               "quoteQty": num(futures, t.price * t.qty), "commission": num(futures, t.fee), "commissionAsset": t.fee_asset, "time": t.ts_ms,
               "buyer": t.side == Side::Buy, "maker": t.maker, "positionSide": "BOTH", "realizedPnl": "0"})
    } else {
        json!({"symbol": t.symbol, "id": t.trade_id, "orderId": t.order_id, "orderListId": -1, "price": num(futures, t.price), "qty": num(futures, t.qty),
               "quoteQty": num(futures, t.price * t.qty), "commission": num(futures, t.fee), "commissionAsset": t.fee_asset, "time": t.ts_ms,
               "isBuyer": t.side == Side::Buy, "isMaker": t.maker, "isBestMatch": true})
    }
}

/// What a trade changed in the account, pushed after its order report as the venues do:
/// spot `outboundAccountPosition` (the balances of the pair's two assets), USD-M
/// `ACCOUNT_UPDATE` (the margin balance and the symbol's position).
fn account_push(state: &VenueState, symbol: &str, futures: bool, now: i64) -> String {
    let market = state.market.lock().unwrap_or_else(|p| p.into_inner());
    let assets: Vec<String> = market.listing(symbol).map(|l| vec![l.base.clone(), l.quote.clone()]).unwrap_or_default();
    let balances: Vec<(String, Decimal, Decimal)> = market.balances().into_iter().filter(|(a, _, _)| assets.contains(a)).collect();
    if futures {
        let position = market.positions().into_iter().find(|(s, _)| s == symbol).map(|(_, q)| q).unwrap_or_default();
        let margin: Vec<Value> = balances.iter().filter(|(a, _, _)| assets.last() == Some(a)).map(|(a, f, l)| json!({"a": a, "wb": num(futures, *f + *l), "cw": num(futures, *f + *l), "bc": "0"})).collect();
        json!({"e": "ACCOUNT_UPDATE", "E": now, "T": now, "a": {"m": "ORDER", "B": margin,
            "P": [{"s": symbol, "pa": num(futures, position), "ep": "0", "bep": "0", "cr": "0", "up": "0", "mt": "cross", "iw": "0", "ps": "BOTH"}]}})
        .to_string()
    } else {
        let b: Vec<Value> = balances.iter().map(|(a, f, l)| json!({"a": a, "f": num(futures, *f), "l": num(futures, *l)})).collect();
        json!({"e": "outboundAccountPosition", "E": now, "u": now, "B": b}).to_string()
    }
}

/// Private and public pushes for what happened, in this venue's formats.
pub fn pushes(state: &VenueState, happenings: &[Happening]) -> (Vec<String>, Vec<(String, String)>) {
    let futures = state.kind == Kind::BinanceUsdm;
    let mut private = Vec::new();
    let mut public = Vec::new();
    for h in happenings {
        match h {
            Happening::Order { order, trade, kind } => {
                let now = VenueState::now_ms();
                let (otype, tif) = type_words(order.order_type, futures);
                let (last_qty, last_px, fee, fee_asset, trade_id, maker) = match trade {
                    Some(t) => (num(futures, t.qty), num(futures, t.price), num(futures, t.fee), Value::String(t.fee_asset.clone()), t.trade_id, t.maker),
                    None => ("0".into(), "0".into(), "0".into(), Value::Null, -1, false),
                };
                let canceled = *kind == ExecKind::Canceled;
                // Spot reports an order expired by self-trade prevention as its own
                // execution type, with the quantity prevented (the STP FAQ).
                let prevented = *kind == ExecKind::Expired && order.reason.as_deref() == Some(runtime::venue::paper::reasons::STP_EXPIRED);
                let prevented_qty = if prevented { order.qty - order.executed } else { Decimal::ZERO };
                if futures {
                    let avg = if order.executed.is_zero() { Decimal::ZERO } else { (order.quote / order.executed).round_dp(8) };
                    private.push(
                        json!({"e": "ORDER_TRADE_UPDATE", "E": now, "T": now, "o": {
                            "s": order.symbol, "c": order.client_order_id, "S": side_word(order.side), "o": otype, "f": tif,
                            "q": num(futures, order.qty), "p": num(futures, order.price()), "ap": num(futures, avg), "sp": "0", "x": kind.binance(), "X": order.binance_status(),
                            "i": order.order_id, "l": last_qty, "z": num(futures, order.executed), "L": last_px, "N": fee_asset, "n": fee, "T": now,
                            "t": if trade_id < 0 { 0 } else { trade_id }, "b": "0", "a": "0", "m": maker, "R": false, "wt": "CONTRACT_PRICE", "ot": otype, "ps": "BOTH",
                            "cp": false, "rp": "0", "pP": false, "si": 0, "ss": 0, "V": stp_word(order.stp), "pm": "NONE", "gtd": 0,
                            "er": if *kind == ExecKind::Expired { "1" } else { "0" }
                        }})
                        .to_string(),
                    );
                } else {
                    let mut report = json!({"e": "executionReport", "E": now, "s": order.symbol,
                            "c": if canceled { format!("cancel{}", order.order_id) } else { order.client_order_id.clone() },
                            "S": side_word(order.side), "o": otype, "f": tif, "q": num(futures, order.qty), "p": num(futures, order.price()), "P": "0", "F": "0", "g": -1,
                            "C": if canceled { order.client_order_id.clone() } else { String::new() },
                            "x": if prevented { "TRADE_PREVENTION" } else { kind.binance() }, "X": order.binance_status(), "r": "NONE", "i": order.order_id, "l": last_qty, "z": num(futures, order.executed),
                            "L": last_px, "n": fee, "N": fee_asset, "T": now, "t": trade_id, "v": 0, "I": order.order_id * 2, "w": order.executed < order.qty,
                            "m": maker, "M": false, "O": order.created_ms, "Z": num(futures, order.quote), "Y": "0", "Q": "0", "W": order.created_ms,
                            "V": stp_word(order.stp)});
                    if let (true, Value::Object(map)) = (prevented, &mut report) {
                        map.insert("u".into(), json!(-1));
                        map.insert("A".into(), json!(num(futures, prevented_qty)));
                        map.insert("B".into(), json!(num(futures, prevented_qty)));
                    }
                    private.push(report.to_string());
                }
                if trade.is_some() {
                    private.push(account_push(state, &order.symbol, futures, now));
                }
            }
            Happening::Public { symbol, trade_id, price, qty, buyer_is_maker, ts_ms } => {
                // Both venues publish the raw `trade` and the `aggTrade` streams (one trade
                // per aggregate here).
                let trade = if futures {
                    json!({"e": "trade", "E": ts_ms, "T": ts_ms, "s": symbol, "t": trade_id, "p": num(futures, *price), "q": num(futures, *qty), "X": "MARKET", "m": buyer_is_maker})
                } else {
                    json!({"e": "trade", "E": ts_ms, "s": symbol, "t": trade_id, "p": num(futures, *price), "q": num(futures, *qty), "T": ts_ms, "m": buyer_is_maker, "M": true})
                };
                let mut aggregate = json!({"e": "aggTrade", "E": ts_ms, "s": symbol, "a": trade_id, "p": num(futures, *price), "q": num(futures, *qty), "f": trade_id, "l": trade_id, "T": ts_ms, "m": buyer_is_maker});
                if let (false, Value::Object(map)) = (futures, &mut aggregate) {
                    map.insert("M".into(), json!(true));
                }
                let lower = symbol.to_ascii_lowercase();
                public.push((format!("{lower}@trade"), trade.to_string()));
                public.push((format!("{lower}@aggTrade"), aggregate.to_string()));
            }
        }
    }
    (private, public)
}

/// The signed request's parameters once key, signature and timestamp check out.
type Params = BTreeMap<String, String>;

fn parse_form(text: &str) -> Params {
    url::form_urlencoded::parse(text.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

fn check_time(params: &Params, server: i64) -> Result<(), ApiError> {
    let Some(ts) = params.get("timestamp") else {
        return Err(error(StatusCode::BAD_REQUEST, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."));
    };
    let Ok(ts) = ts.parse::<i64>() else {
        return Err(error(StatusCode::BAD_REQUEST, -1100, "Illegal characters found in parameter 'timestamp'; legal range is '^[0-9]{1,20}$'."));
    };
    let window: f64 = params.get("recvWindow").and_then(|w| w.parse().ok()).unwrap_or(5000.0);
    if window > 60_000.0 {
        return Err(error(StatusCode::BAD_REQUEST, -1131, "recvWindow must be less than 60000"));
    }
    if ts >= server + 1000 {
        return Err(error(StatusCode::BAD_REQUEST, -1021, "Timestamp for this request was 1000ms ahead of the server's time."));
    }
    if (server - ts) as f64 > window {
        return Err(error(StatusCode::BAD_REQUEST, -1021, "Timestamp for this request is outside of the recvWindow."));
    }
    Ok(())
}

fn check_key(state: &VenueState, headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get("X-MBX-APIKEY").and_then(|v| v.to_str().ok()) {
        None | Some("") => Err(error(StatusCode::UNAUTHORIZED, -2014, "API-key format invalid.")),
        Some(k) if k != state.credentials.api_key => Err(error(StatusCode::UNAUTHORIZED, -2015, "Invalid API-key, IP, or permissions for action.")),
        Some(_) => Ok(()),
    }
}

/// Checks key, signature (query string then body) and timestamp; returns all parameters.
/// The body holds parameters only when sent as `application/x-www-form-urlencoded`, as the
/// docs say; any other body is not read.
fn signed(state: &VenueState, headers: &HeaderMap, query: &str, body: &str) -> Result<Params, ApiError> {
    check_key(state, headers)?;
    let form = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let body = if form { body } else { "" };
    let (q, sig_q) = strip_signature(query);
    let (b, sig_b) = strip_signature(body);
    let Some(signature) = sig_q.or(sig_b) else {
        return Err(error(StatusCode::BAD_REQUEST, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed."));
    };
    let payload = format!("{q}{b}");
    if !binance_signature_ok(&state.credentials.api_secret, &payload, &signature) {
        return Err(error(StatusCode::BAD_REQUEST, -1022, "Signature for this request is not valid."));
    }
    let mut params = parse_form(&q);
    params.extend(parse_form(&b));
    check_time(&params, state.venue_now_ms())?;
    Ok(params)
}

fn need<'a>(p: &'a Params, name: &str) -> Result<&'a str, ApiError> {
    p.get(name).map(String::as_str).filter(|v| !v.is_empty()).ok_or_else(|| {
        error(StatusCode::BAD_REQUEST, -1102, &format!("Mandatory parameter '{name}' was not sent, was empty/null, or malformed."))
    })
}

fn decimal(p: &Params, name: &str) -> Result<Option<Decimal>, ApiError> {
    match p.get(name) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| error(StatusCode::BAD_REQUEST, -1100, &format!("Illegal characters found in parameter '{name}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'."))),
    }
}

/// Weight and order count per endpoint (the documented weights, simplified to one figure).
fn cost(method: &Method, path: &str) -> (u32, u32) {
    match (method.as_str(), path) {
        ("POST", "/order") => (1, 1),
        ("POST", "/batchOrders") => (5, 5),
        ("GET", "/exchangeInfo") => (20, 0),
        ("GET", "/myTrades") | ("GET", "/account") | ("GET", "/userTrades") => (20, 0),
        ("GET", "/order") => (4, 0),
        ("GET", "/openOrders") => (6, 0),
        _ => (1, 0),
    }
}

/// Weight on every answer; order counts on order answers only, per the docs: spot's
/// windows are 10 s and a day, USD-M's 10 s and a minute.
fn with_limit_headers(mut response: Response, admitted: Admitted, futures: bool) -> Response {
    let h = response.headers_mut();
    if let Ok(v) = admitted.weight.to_string().parse() {
        h.insert("X-MBX-USED-WEIGHT-1M", v);
    }
    if admitted.placed {
        let longer = if futures { ("X-MBX-ORDER-COUNT-1M", admitted.orders_minute) } else { ("X-MBX-ORDER-COUNT-1D", admitted.orders_day) };
        for (name, count) in [("X-MBX-ORDER-COUNT-10S", admitted.orders), longer] {
            if let Ok(v) = count.to_string().parse() {
                h.insert(name, v);
            }
        }
    }
    response
}

/// What the rate limits counted for an admitted request.
#[derive(Clone, Copy)]
struct Admitted {
    weight: u32,
    orders: u32,
    orders_minute: u32,
    orders_day: u32,
    placed: bool,
}

fn ok(v: Value) -> Response {
    (StatusCode::OK, [("Content-Type", "application/json")], v.to_string()).into_response()
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
    let futures = state.kind == Kind::BinanceUsdm;
    let full = uri.path().to_string();
    if method == Method::POST && (full.ends_with("/order") || full.ends_with("/batchOrders")) {
        state.late_placement().await;
    }
    state.calls.lock().unwrap_or_else(|p| p.into_inner()).push(format!("{method} {full}"));
    let path = match (futures, full.as_str()) {
        (false, p) if p.starts_with("/api/v3/") => p["/api/v3".len()..].to_string(),
        (true, p) if p.starts_with("/fapi/v1/") || p.starts_with("/fapi/v2/") || p.starts_with("/fapi/v3/") => p[8..].to_string(),
        _ => return error(StatusCode::NOT_FOUND, -1000, "Unknown path.").into_response(),
    };
    let (weight, orders) = cost(&method, &path);
    let admitted = match state.admit(weight, orders) {
        Admission::Ok { weight, orders, orders_minute, orders_day, placed } => Admitted { weight, orders, orders_minute, orders_day, placed },
        Admission::TooMany { retry_after, orders } => {
            let mut r = if orders {
                // The order count, not the weight: -1015, with the limit in the venue's words.
                error(StatusCode::TOO_MANY_REQUESTS, -1015, &format!("Too many new orders; current limit is {} orders per 10 SECOND.", state.limits.orders_per_10s)).into_response()
            } else {
                error(StatusCode::TOO_MANY_REQUESTS, -1003, "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.").into_response()
            };
            if let Ok(v) = retry_after.to_string().parse() {
                r.headers_mut().insert("Retry-After", v);
            }
            return r;
        }
        Admission::Banned { retry_after } => {
            let mut r = error(StatusCode::IM_A_TEAPOT, -1003, "Way too much request weight used; IP banned until later. Please use WebSocket Streams for live updates to avoid bans.").into_response();
            if let Ok(v) = retry_after.to_string().parse() {
                r.headers_mut().insert("Retry-After", v);
            }
            return r;
        }
    };
    let query = uri.query().unwrap_or("").to_string();
    let response = match handle(&state, &method, &path, &headers, &query, &body, futures) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    with_limit_headers(response, admitted, futures)
}

fn handle(state: &Arc<VenueState>, method: &Method, path: &str, headers: &HeaderMap, query: &str, body: &str, futures: bool) -> Result<Response, ApiError> {
    let now = VenueState::now_ms();
    match (method.as_str(), path) {
        ("GET", "/ping") => Ok(ok(json!({}))),
        ("GET", "/time") => Ok(ok(json!({"serverTime": state.venue_now_ms()}))),
        ("GET", "/exchangeInfo") => {
            let market = state.market.lock().unwrap_or_else(|p| p.into_inner());
            let symbols: Vec<Value> = market
                .listings()
                .iter()
                .map(|l| {
                    if futures {
                        return usdm_symbol(l);
                    }
                    let notional = if futures { json!({"filterType": "MIN_NOTIONAL", "notional": num(futures, l.min_notional)}) } else { json!({"filterType": "NOTIONAL", "minNotional": num(futures, l.min_notional), "applyMinToMarket": true, "maxNotional": "9000000", "applyMaxToMarket": false, "avgPriceMins": 5}) };
                    json!({"symbol": l.symbol, "status": "TRADING", "baseAsset": l.base, "quoteAsset": l.quote, "baseAssetPrecision": 8, "quoteAssetPrecision": 8,
                        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"], "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
                        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                        "filters": [
                            {"filterType": "PRICE_FILTER", "minPrice": num(futures, l.tick_size), "maxPrice": "1000000", "tickSize": num(futures, l.tick_size)},
                            {"filterType": "LOT_SIZE", "minQty": num(futures, l.min_qty), "maxQty": "9000", "stepSize": num(futures, l.lot_size)},
                            notional
                        ]})
                })
                .collect();
            let mut info = json!({"timezone": "UTC", "serverTime": now, "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": state.limits.weight_per_minute},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": state.limits.orders_per_10s}
            ], "exchangeFilters": [], "symbols": symbols});
            if futures {
                if let Value::Object(map) = &mut info {
                    let margin: std::collections::BTreeSet<&str> = market.listings().iter().map(|l| l.quote.as_str()).collect();
                    map.insert("futuresType".into(), json!("U_MARGINED"));
                    map.insert("assets".into(), Value::Array(margin.into_iter().map(|a| json!({"asset": a, "marginAvailable": true, "autoAssetExchange": "-10000"})).collect()));
                }
            }
            Ok(ok(info))
        }
        ("GET", "/depth") => {
            let params = parse_form(query);
            let symbol = need(&params, "symbol")?;
            let limit = params.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100usize);
            // The book as last published, so its id lines up with the diffs.
            let books = state.books.lock().unwrap_or_else(|p| p.into_inner());
            let track = books.by_symbol.get(symbol).ok_or_else(|| error(StatusCode::BAD_REQUEST, -1121, "Invalid symbol."))?;
            let bids: Vec<Value> = track.bids.iter().rev().take(limit).map(|(p, q)| json!([num(futures, *p), num(futures, *q)])).collect();
            let asks: Vec<Value> = track.asks.iter().take(limit).map(|(p, q)| json!([num(futures, *p), num(futures, *q)])).collect();
            let mut body = json!({"lastUpdateId": track.update_id, "bids": bids, "asks": asks});
            if futures {
                body["E"] = json!(now);
                body["T"] = json!(now);
            }
            Ok(ok(body))
        }
        ("POST", "/listenKey") | ("PUT", "/listenKey") | ("DELETE", "/listenKey") if futures => {
            check_key(state, headers)?;
            let ttl = state.listen_key_ttl();
            let mut keys = state.listen_keys.lock().unwrap_or_else(|p| p.into_inner());
            keys.retain(|_, created| created.elapsed() < ttl);
            match method.as_str() {
                "POST" => {
                    let key = keys.keys().next().cloned().unwrap_or_else(|| format!("{:x}{:x}", now, now.wrapping_mul(2_654_435_761)));
                    keys.insert(key.clone(), Instant::now());
                    Ok(ok(json!({"listenKey": key})))
                }
                "PUT" => match keys.keys().next().cloned() {
                    Some(key) => {
                        keys.insert(key.clone(), Instant::now());
                        Ok(ok(json!({"listenKey": key})))
                    }
                    None => Err(error(StatusCode::BAD_REQUEST, -1125, "This listenKey does not exist.")),
                },
                _ => {
                    keys.clear();
                    Ok(ok(json!({})))
                }
            }
        }
        ("POST", "/order") => {
            let params = signed(state, headers, query, body)?;
            let result = place_one(state, &params, futures, now, state.placement_fault())?;
            Ok(ok(result))
        }
        ("POST", "/batchOrders") if futures => {
            let params = signed(state, headers, query, body)?;
            let list: Vec<Value> = serde_json::from_str(need(&params, "batchOrders")?).map_err(|_| error(StatusCode::BAD_REQUEST, -1130, "Data sent for parameter 'batchOrders' is not valid."))?;
            if list.len() > 5 {
                return Err(error(StatusCode::BAD_REQUEST, -1130, "Data sent for parameter 'batchOrders' is not valid."));
            }
            // A fault hits the whole request, as a 5xx does.
            let fault = state.placement_fault();
            if fault == Some(true) {
                return Err(error(StatusCode::SERVICE_UNAVAILABLE, -1008, "Server is currently overloaded with other requests. Please try again in a few minutes."));
            }
            let mut out = Vec::new();
            for item in list {
                let mut p = Params::new();
                for (k, v) in item.as_object().into_iter().flatten() {
                    p.insert(k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
                }
                out.push(match place_one(state, &p, true, now, None) {
                    Ok(v) => v,
                    // A single order's error inside the batch: its code and message.
                    Err(e) => json!({"code": e.code, "msg": e.msg}),
                });
            }
            if fault == Some(false) {
                return Err(error(StatusCode::SERVICE_UNAVAILABLE, -1007, "Timeout waiting for response from backend server. Send status unknown; execution status unknown."));
            }
            Ok(ok(Value::Array(out)))
        }
        ("DELETE", "/order") => {
            let params = signed(state, headers, query, body)?;
            let symbol = need(&params, "symbol")?.to_string();
            let cid = client_id(state, &params)?;
            let result = state.with_market(|m| match m.cancel(&symbol, &cid, now) {
                Ok((o, h)) => (Ok(o), h),
                Err(e) => (Err(e), Vec::new()),
            });
            match result {
                Ok(o) => {
                    let mut v = order_json(&o, futures);
                    if !futures {
                        // Spot names the canceled order `origClientOrderId`; `clientOrderId`
                        // is the cancel request's own id (`newClientOrderId`, or one made up).
                        if let Value::Object(map) = &mut v {
                            let cancel_id = params.get("newClientOrderId").cloned().unwrap_or_else(|| format!("cancel{now}{}", rand_suffix()));
                            map.insert("origClientOrderId".into(), json!(o.client_order_id));
                            map.insert("clientOrderId".into(), json!(cancel_id));
                            map.insert("transactTime".into(), json!(now));
                        }
                    }
                    Ok(ok(v))
                }
                Err(_) => Err(error(StatusCode::BAD_REQUEST, -2011, "Unknown order sent.")),
            }
        }
        ("DELETE", "/openOrders") | ("DELETE", "/allOpenOrders") => {
            let params = signed(state, headers, query, body)?;
            let symbol = need(&params, "symbol")?.to_string();
            let canceled = state.with_market(|m| {
                let ids: Vec<String> = m.open_orders(Some(&symbol)).iter().map(|o| o.client_order_id.clone()).collect();
                let mut all = Vec::new();
                let mut out = Vec::new();
                for id in ids {
                    if let Ok((o, h)) = m.cancel(&symbol, &id, now) {
                        out.push(order_json(&o, futures));
                        all.extend(h);
                    }
                }
                (out, all)
            });
            Ok(ok(if futures { json!({"code": 200, "msg": "The operation of cancel all open order is done."}) } else { Value::Array(canceled) }))
        }
        ("GET", "/order") => {
            let params = signed(state, headers, query, body)?;
            let cid = client_id(state, &params)?;
            let market = state.market.lock().unwrap_or_else(|p| p.into_inner());
            match market.order(&cid) {
                Some(o) => Ok(ok(order_json(o, futures))),
                None => Err(error(StatusCode::BAD_REQUEST, -2013, "Order does not exist.")),
            }
        }
        ("GET", "/openOrders") => {
            let params = signed(state, headers, query, body)?;
            let market = state.market.lock().unwrap_or_else(|p| p.into_inner());
            let orders: Vec<Value> = market.open_orders(params.get("symbol").map(String::as_str)).into_iter().map(|o| order_json(o, futures)).collect();
            Ok(ok(Value::Array(orders)))
        }
        ("GET", "/myTrades") | ("GET", "/userTrades") => {
            let params = signed(state, headers, query, body)?;
            let symbol = need(&params, "symbol")?;
            let number = |name: &str| params.get(name).and_then(|s| s.parse::<i64>().ok());
            // The documented combinations: `fromId` goes by trade id and takes no time.
            if params.contains_key("fromId") && (params.contains_key("startTime") || params.contains_key("endTime")) {
                return Err(error(StatusCode::BAD_REQUEST, -1128, "Combination of optional parameters invalid."));
            }
            let limit = params.get("limit").and_then(|s| s.parse().ok()).unwrap_or(500usize).clamp(1, 1000);
            let shown_until = state.trade_list_until_ms();
            let market = state.market.lock().unwrap_or_else(|p| p.into_inner());
            let trades: Vec<Value> = market
                .trades_from(symbol, number("startTime").unwrap_or(0), number("fromId"))
                .filter(|t| t.ts_ms <= shown_until)
                .filter(|t| number("endTime").is_none_or(|end| t.ts_ms <= end))
                .filter(|t| number("orderId").is_none_or(|id| t.order_id == id))
                .take(limit)
                .map(|t| trade_json(t, futures))
                .collect();
            Ok(ok(Value::Array(trades)))
        }
        ("GET", "/account") if !futures => {
            signed(state, headers, query, body)?;
            let market = state.market.lock().unwrap_or_else(|p| p.into_inner());
            let balances: Vec<Value> = market.balances().into_iter().map(|(a, free, locked)| json!({"asset": a, "free": num(futures, free), "locked": num(futures, locked)})).collect();
            Ok(ok(json!({"makerCommission": 2, "takerCommission": 4, "canTrade": true, "canWithdraw": false, "canDeposit": false, "accountType": "SPOT", "balances": balances, "permissions": ["SPOT"], "updateTime": now})))
        }
        ("GET", "/positionRisk") | ("GET", "/balance") if futures => {
            signed(state, headers, query, body)?;
            let market = state.market.lock().unwrap_or_else(|p| p.into_inner());
            if path == "/balance" {
                let balances: Vec<Value> = market.balances().into_iter().map(|(a, free, locked)| json!({"asset": a, "balance": num(futures, free + locked), "availableBalance": num(futures, free)})).collect();
                return Ok(ok(Value::Array(balances)));
            }
            // v2 and v3 fields together (v3 leaves out leverage and margin type); the copied
            // docs lack the endpoint: Binance's public USD-M docs.
            let wanted = parse_form(query);
            let positions: Vec<Value> = market
                .listings()
                .iter()
                .filter(|l| wanted.get("symbol").is_none_or(|s| *s == l.symbol))
                .map(|l| {
                    let (amount, entry) = market.position(&l.symbol);
                    let mark = market.last_price(&l.symbol).unwrap_or(entry);
                    let leverage = market.leverage.get(&l.symbol).copied().unwrap_or(crate::market::DEFAULT_LEVERAGE);
                    let notional = amount * mark;
                    json!({"symbol": l.symbol, "positionSide": "BOTH", "positionAmt": num(futures, amount), "entryPrice": num(futures, entry.round_dp(8)), "breakEvenPrice": num(futures, entry.round_dp(8)),
                        "markPrice": num(futures, mark), "unRealizedProfit": num(futures, ((mark - entry) * amount).round_dp(8)), "liquidationPrice": "0", "isolatedMargin": "0",
                        "notional": num(futures, notional.round_dp(8)), "marginAsset": l.quote, "isolatedWallet": "0", "initialMargin": num(futures, (notional.abs() / leverage).round_dp(8)),
                        "maintMargin": num(futures, (notional.abs() * Decimal::new(4, 3)).round_dp(8)), "positionInitialMargin": num(futures, (notional.abs() / leverage).round_dp(8)),
                        "openOrderInitialMargin": "0", "adl": 0, "bidNotional": "0", "askNotional": "0", "leverage": leverage.to_string(), "marginType": "cross",
                        "maxNotionalValue": "1000000", "isAutoAddMargin": "false", "updateTime": now})
                })
                .collect();
            Ok(ok(Value::Array(positions)))
        }
        ("GET", "/account") if futures => {
            signed(state, headers, query, body)?;
            let market = state.market.lock().unwrap_or_else(|p| p.into_inner());
            let assets: Vec<Value> = market
                .balances()
                .into_iter()
                .map(|(a, free, locked)| json!({"asset": a, "walletBalance": num(futures, free + locked), "unrealizedProfit": "0", "marginBalance": num(futures, free + locked), "availableBalance": num(futures, free), "maxWithdrawAmount": num(futures, free), "updateTime": now}))
                .collect();
            let positions: Vec<Value> = market
                .positions()
                .into_iter()
                .filter(|(_, q)| !q.is_zero())
                .map(|(s, q)| json!({"symbol": s, "positionSide": "BOTH", "positionAmt": num(futures, q), "unrealizedProfit": "0", "isolatedMargin": "0", "notional": "0", "isolatedWallet": "0", "initialMargin": "0", "maintMargin": "0", "updateTime": now}))
                .collect();
            let wallet: Decimal = market.balances().into_iter().filter(|(a, _, _)| a == "USDT").map(|(_, f, l)| f + l).sum();
            Ok(ok(json!({"totalInitialMargin": "0", "totalMaintMargin": "0", "totalWalletBalance": num(futures, wallet), "totalUnrealizedProfit": "0", "totalMarginBalance": num(futures, wallet),
                "totalPositionInitialMargin": "0", "totalOpenOrderInitialMargin": "0", "totalCrossWalletBalance": num(futures, wallet), "totalCrossUnPnl": "0", "availableBalance": num(futures, wallet),
                "maxWithdrawAmount": num(futures, wallet), "assets": assets, "positions": positions})))
        }
        ("GET", "/leverageBracket") if futures => {
            let params = signed(state, headers, query, body)?;
            let market = state.market.lock().unwrap_or_else(|p| p.into_inner());
            let brackets: Vec<Value> = market
                .listings()
                .iter()
                .filter(|l| params.get("symbol").is_none_or(|s| *s == l.symbol))
                .map(|l| json!({"symbol": l.symbol, "notionalCoef": 1.0, "brackets": [
                    {"bracket": 1, "initialLeverage": 125, "notionalCap": 50000, "notionalFloor": 0, "maintMarginRatio": 0.004, "cum": 0.0},
                    {"bracket": 2, "initialLeverage": 100, "notionalCap": 600000, "notionalFloor": 50000, "maintMarginRatio": 0.005, "cum": 50.0}
                ]}))
                .collect();
            Ok(ok(Value::Array(brackets)))
        }
        ("GET", "/openOrder") if futures => {
            let params = signed(state, headers, query, body)?;
            let symbol = need(&params, "symbol")?.to_string();
            let cid = client_id(state, &params)?;
            let market = state.market.lock().unwrap_or_else(|p| p.into_inner());
            match market.order(&cid).filter(|o| o.symbol == symbol && o.status == trading_model::OrderStatus::Accepted) {
                Some(o) => Ok(ok(order_json(o, true))),
                None => Err(error(StatusCode::BAD_REQUEST, -2013, "Order does not exist.")),
            }
        }
        ("GET", "/allOrders") => {
            let params = signed(state, headers, query, body)?;
            let symbol = need(&params, "symbol")?.to_string();
            let limit = params.get("limit").and_then(|s| s.parse().ok()).unwrap_or(500usize).clamp(1, 1000);
            let from: Option<i64> = params.get("orderId").and_then(|s| s.parse().ok());
            let market = state.market.lock().unwrap_or_else(|p| p.into_inner());
            let orders: Vec<Value> = market.all_orders(&symbol).into_iter().filter(|o| from.is_none_or(|f| o.order_id >= f)).take(limit).map(|o| order_json(o, futures)).collect();
            Ok(ok(Value::Array(orders)))
        }
        ("DELETE", "/batchOrders") if futures => {
            let params = signed(state, headers, query, body)?;
            let symbol = need(&params, "symbol")?.to_string();
            // Either list, a JSON array of at most 10.
            let list = |name: &str| params.get(name).map(|l| serde_json::from_str::<Vec<Value>>(l).map_err(|_| error(StatusCode::BAD_REQUEST, -1130, &format!("Data sent for parameter '{name}' is not valid."))));
            let ids: Vec<Params> = match (list("orderIdList"), list("origClientOrderIdList")) {
                (Some(ids), _) => ids?.iter().map(|id| Params::from([("orderId".to_string(), id.as_i64().map(|i| i.to_string()).unwrap_or_else(|| id.to_string()))])).collect(),
                (None, Some(ids)) => ids?.iter().map(|id| Params::from([("origClientOrderId".to_string(), id.as_str().unwrap_or_default().to_string())])).collect(),
                (None, None) => return Err(error(StatusCode::BAD_REQUEST, -1102, "Param 'orderIdList' or 'origClientOrderIdList' must be sent, but both were empty/null!")),
            };
            if ids.len() > 10 {
                return Err(error(StatusCode::BAD_REQUEST, -1130, "Data sent for parameter 'orderIdList' is not valid."));
            }
            let mut out = Vec::new();
            for p in ids {
                let result = client_id(state, &p).and_then(|cid| {
                    state
                        .with_market(|m| match m.cancel(&symbol, &cid, now) {
                            Ok((o, h)) => (Ok(o), h),
                            Err(e) => (Err(e), Vec::new()),
                        })
                        .map_err(|_| error(StatusCode::BAD_REQUEST, -2011, "Unknown order sent."))
                });
                out.push(match result {
                    Ok(o) => order_json(&o, true),
                    Err(e) => json!({"code": e.code, "msg": e.msg}),
                });
            }
            Ok(ok(Value::Array(out)))
        }
        ("POST", "/order/test") => {
            // Validated as an order would be, never placed.
            let params = signed(state, headers, query, body)?;
            let symbol = need(&params, "symbol")?;
            if state.market.lock().unwrap_or_else(|p| p.into_inner()).listing(symbol).is_none() {
                return Err(error(StatusCode::BAD_REQUEST, -1121, "Invalid symbol."));
            }
            need(&params, "side")?;
            let kind = need(&params, "type")?;
            binance_order_type(kind, params.get("timeInForce").map(String::as_str), decimal(&params, "price")?).map_err(|m| error(StatusCode::BAD_REQUEST, -1102, &m))?;
            decimal(&params, "quantity")?.ok_or_else(|| error(StatusCode::BAD_REQUEST, -1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed."))?;
            Ok(ok(json!({})))
        }
        // Not in the copied docs: the fields follow Binance's public market data docs. The
        // day's figures come from the last price and this account's trades.
        ("GET", "/ticker/24hr") => {
            let params = parse_form(query);
            let market = state.market.lock().unwrap_or_else(|p| p.into_inner());
            let day_ago = now - 86_400_000;
            let mut out = Vec::new();
            for l in market.listings().iter().filter(|l| params.get("symbol").is_none_or(|s| *s == l.symbol)) {
                let last = market.last_price(&l.symbol).unwrap_or_default();
                let trades = market.trades_since(&l.symbol, day_ago);
                let prices: Vec<Decimal> = trades.iter().map(|t| t.price).chain(std::iter::once(last)).collect();
                let (high, low) = (prices.iter().copied().max().unwrap_or(last), prices.iter().copied().min().unwrap_or(last));
                let open = trades.first().map(|t| t.price).unwrap_or(last);
                let volume: Decimal = trades.iter().map(|t| t.qty).sum();
                let quote: Decimal = trades.iter().map(|t| t.qty * t.price).sum();
                let change_pct = if open.is_zero() { Decimal::ZERO } else { ((last - open) / open * Decimal::ONE_HUNDRED).round_dp(3) };
                out.push(json!({"symbol": l.symbol, "priceChange": num(futures, last - open), "priceChangePercent": num(futures, change_pct),
                    "weightedAvgPrice": num(futures, if volume.is_zero() { last } else { (quote / volume).round_dp(8) }), "lastPrice": num(futures, last),
                    "lastQty": num(futures, trades.last().map(|t| t.qty).unwrap_or_default()), "openPrice": num(futures, open), "highPrice": num(futures, high), "lowPrice": num(futures, low),
                    "volume": num(futures, volume), "quoteVolume": num(futures, quote), "openTime": day_ago, "closeTime": now,
                    "firstId": trades.first().map(|t| t.trade_id).unwrap_or(-1), "lastId": trades.last().map(|t| t.trade_id).unwrap_or(-1), "count": trades.len()}));
            }
            match (params.contains_key("symbol"), out.len()) {
                (true, 0) => Err(error(StatusCode::BAD_REQUEST, -1121, "Invalid symbol.")),
                (true, _) => Ok(ok(out.swap_remove(0))),
                (false, _) => Ok(ok(Value::Array(out))),
            }
        }
        ("POST", "/leverage") if futures => {
            let params = signed(state, headers, query, body)?;
            let symbol = need(&params, "symbol")?.to_string();
            let leverage: u32 = params.get("leverage").and_then(|l| l.parse().ok()).filter(|l| (1..=125).contains(l)).ok_or_else(|| error(StatusCode::BAD_REQUEST, -4028, "Leverage is not valid"))?;
            let mut market = state.market.lock().unwrap_or_else(|p| p.into_inner());
            if market.listing(&symbol).is_none() {
                return Err(error(StatusCode::BAD_REQUEST, -1121, "Invalid symbol."));
            }
            market.leverage.insert(symbol.clone(), Decimal::from(leverage));
            Ok(ok(json!({"leverage": leverage, "maxNotionalValue": "1000000", "symbol": symbol})))
        }
        ("GET", "/ticker/price") | ("GET", "/ticker/bookTicker") | ("GET", "/premiumIndex") if futures => {
            let params = parse_form(query);
            let market = state.market.lock().unwrap_or_else(|p| p.into_inner());
            let mut out = Vec::new();
            for l in market.listings().iter().filter(|l| params.get("symbol").is_none_or(|s| *s == l.symbol)) {
                let last = market.last_price(&l.symbol).unwrap_or_default();
                let book = market.depth(&l.symbol, 1);
                let (bid, ask) = book.map(|b| (b.bids.first().map(|x| (x.price, x.qty)), b.asks.first().map(|x| (x.price, x.qty)))).unwrap_or((None, None));
                let side = |s: Option<(Decimal, Decimal)>| s.map(|(p, q)| (num(futures, p), num(futures, q))).unwrap_or(("0".into(), "0".into()));
                let ((bid_price, bid_qty), (ask_price, ask_qty)) = (side(bid), side(ask));
                out.push(match path {
                    "/ticker/price" => json!({"symbol": l.symbol, "price": num(futures, last), "time": now}),
                    "/ticker/bookTicker" => json!({"symbol": l.symbol, "bidPrice": bid_price, "bidQty": bid_qty, "askPrice": ask_price, "askQty": ask_qty, "time": now}),
                    _ => json!({"symbol": l.symbol, "markPrice": num(futures, last), "indexPrice": num(futures, last), "estimatedSettlePrice": num(futures, last), "lastFundingRate": "0.00010000",
                        "interestRate": "0.00010000", "nextFundingTime": (now / 28_800_000 + 1) * 28_800_000, "time": now}),
                });
            }
            match (params.contains_key("symbol"), out.len()) {
                (true, 0) => Err(error(StatusCode::BAD_REQUEST, -1121, "Invalid symbol.")),
                (true, _) => Ok(ok(out.swap_remove(0))),
                (false, _) => Ok(ok(Value::Array(out))),
            }
        }
        _ => Err(error(StatusCode::NOT_FOUND, -1000, "Unknown path.")),
    }
}

fn client_id(state: &VenueState, params: &Params) -> Result<String, ApiError> {
    if let Some(c) = params.get("origClientOrderId").filter(|c| !c.is_empty()) {
        return Ok(c.clone());
    }
    let id: i64 = params
        .get("orderId")
        .and_then(|o| o.parse().ok())
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"))?;
    let market = state.market.lock().unwrap_or_else(|p| p.into_inner());
    market.order_by_id(id).map(|o| o.client_order_id.clone()).ok_or_else(|| error(StatusCode::BAD_REQUEST, -2013, "Order does not exist."))
}

/// Places one order from its parameters; the answer or the venue's error.
/// `fault`: the placement fault armed for this request (see [`VenueState::placement_fault`]).
fn place_one(state: &VenueState, params: &Params, futures: bool, now: i64, fault: Option<bool>) -> Result<Value, ApiError> {
    let symbol = need(params, "symbol")?.to_string();
    let side = match need(params, "side")? {
        "BUY" => Side::Buy,
        "SELL" => Side::Sell,
        _ => return Err(error(StatusCode::BAD_REQUEST, -1117, "Invalid side.")),
    };
    let kind = need(params, "type")?;
    let order_type = binance_order_type(kind, params.get("timeInForce").map(String::as_str), decimal(params, "price")?).map_err(|m| error(StatusCode::BAD_REQUEST, -1102, &m))?;
    let qty = decimal(params, "quantity")?.ok_or_else(|| error(StatusCode::BAD_REQUEST, -1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed."))?;
    let stp = parse_stp(params.get("selfTradePreventionMode").map(String::as_str), futures).map_err(|m| error(StatusCode::BAD_REQUEST, -1102, &m))?;
    let cid = params.get("newClientOrderId").cloned().unwrap_or_else(|| format!("local{now}{}", rand_suffix()));
    if fault == Some(true) {
        return Err(error(StatusCode::SERVICE_UNAVAILABLE, -1008, "Server is currently overloaded with other requests. Please try again in a few minutes."));
    }
    let result = state.with_market(|m| match m.place(&symbol, &cid, side, order_type, qty, stp, now) {
        // USD-M refuses a fill-or-kill it cannot fill in full (-5021) rather than accepting
        // and expiring it: the order never existed, and nothing is pushed.
        Ok((o, _)) if futures && o.reason.as_deref() == Some(runtime::venue::paper::reasons::FOK_EXPIRED) => {
            m.forget(&cid);
            (Err(crate::market::Refusal(FOK_REJECTED.into())), Vec::new())
        }
        Ok((o, h)) => {
            // FULL answers list the fills the order made as it arrived.
            let fills: Vec<Value> = m
                .trades_of_order(o.order_id)
                .into_iter()
                .map(|t| json!({"price": num(futures, t.price), "qty": num(futures, t.qty), "commission": num(futures, t.fee), "commissionAsset": t.fee_asset, "tradeId": t.trade_id}))
                .collect();
            (Ok((o, fills)), h)
        }
        Err(e) => (Err(e), Vec::new()),
    });
    if fault == Some(false) {
        // Executed; the answer is lost on the way back.
        return Err(error(StatusCode::SERVICE_UNAVAILABLE, -1007, "Timeout waiting for response from backend server. Send status unknown; execution status unknown."));
    }
    match result {
        Ok((mut o, fills)) => {
            if futures && params.get("newOrderRespType").map(String::as_str) != Some("RESULT") {
                // ACK, the default: the order as accepted, before it met the book.
                o.status = trading_model::OrderStatus::Accepted;
                o.executed = Decimal::ZERO;
                o.quote = Decimal::ZERO;
                o.reason = None;
            }
            let mut v = order_json(&o, futures);
            if !futures && params.get("newOrderRespType").is_none_or(|t| t == "FULL") {
                if let Value::Object(map) = &mut v {
                    map.insert("fills".into(), Value::Array(fills));
                }
            }
            Ok(v)
        }
        Err(refusal) if futures && refusal.0 == runtime::venue::paper::reasons::DUPLICATE => Err(error(StatusCode::BAD_REQUEST, -4116, "ClientOrderId is duplicated.")),
        Err(refusal) if futures && refusal.0 == runtime::venue::paper::reasons::WOULD_TAKE => {
            Err(error(StatusCode::BAD_REQUEST, -5022, "Due to the order could not be executed as maker, the Post Only order will be rejected. The order will not be recorded in the order history"))
        }
        Err(refusal) if refusal.0 == FOK_REJECTED => Err(error(StatusCode::BAD_REQUEST, -5021, FOK_REJECTED)),
        Err(refusal) if refusal.0.starts_with("Filter failure") => Err(error(StatusCode::BAD_REQUEST, -1013, &refusal.0)),
        Err(refusal) if refusal.0 == "Invalid symbol." => Err(error(StatusCode::BAD_REQUEST, -1121, "Invalid symbol.")),
        Err(refusal) => Err(error(StatusCode::BAD_REQUEST, -2010, &refusal.0)),
    }
}

/// A USD-M `exchangeInfo` symbol: a perpetual contract with the fields clients read to
/// tell it from a spot market (contract type, margin asset, precisions), per Binance's
/// public USD-M docs (the copied ones do not cover market data).
fn usdm_symbol(l: &crate::market::Listing) -> Value {
    let decimals = |step: Decimal| step.normalize().scale();
    let futures = true;
    json!({
        "symbol": l.symbol, "pair": l.symbol, "contractType": "PERPETUAL", "deliveryDate": 4133404800000i64, "onboardDate": 1569398400000i64,
        "status": "TRADING", "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000",
        "baseAsset": l.base, "quoteAsset": l.quote, "marginAsset": l.quote,
        "pricePrecision": decimals(l.tick_size), "quantityPrecision": decimals(l.lot_size), "baseAssetPrecision": 8, "quotePrecision": 8,
        "underlyingType": "COIN", "underlyingSubType": [], "settlePlan": 0, "triggerProtect": "0.0500", "liquidationFee": "0.012500", "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": num(futures, l.tick_size), "maxPrice": "1000000", "tickSize": num(futures, l.tick_size)},
            {"filterType": "LOT_SIZE", "minQty": num(futures, l.min_qty), "maxQty": "1000", "stepSize": num(futures, l.lot_size)},
            {"filterType": "MARKET_LOT_SIZE", "minQty": num(futures, l.min_qty), "maxQty": "120", "stepSize": num(futures, l.lot_size)},
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
            {"filterType": "MIN_NOTIONAL", "notional": num(futures, l.min_notional)},
            {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500", "multiplierDecimal": "4"}
        ],
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        "permissionSets": ["GRID", "COPY"]
    })
}

/// USD-M's words for -5021.
const FOK_REJECTED: &str = "Due to the order could not be filled immediately, the FOK order has been rejected. The order will not be recorded in the order history";

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Pushes until the client goes, the exchange drops it, or it stops answering pings:
/// a ping every 20 s, and no pong for a minute closes the connection, as Binance does.
/// A USD-M user stream (`listen_key`) says `listenKeyExpired` when its key lapses and
/// pushes nothing more on that connection, which stays open (as the docs describe).
async fn forward(mut socket: WebSocket, state: Arc<VenueState>, mut rx: tokio::sync::broadcast::Receiver<String>, wrap: impl Fn(&str) -> String, listen_key: Option<String>) {
    let mut disconnect = state.disconnect_tx.subscribe();
    let mut ping = tokio::time::interval(Duration::from_secs(20));
    let mut last_pong = Instant::now();
    let mut key_check = tokio::time::interval(Duration::from_millis(100));
    let mut expired = false;
    loop {
        tokio::select! {
            message = rx.recv() => match message {
                Ok(_) if expired => {}
                Ok(text) => if socket.send(Message::text(wrap(&text))).await.is_err() { return },
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                Err(_) => return,
            },
            _ = key_check.tick(), if listen_key.is_some() && !expired => {
                let key = listen_key.as_deref().unwrap_or_default();
                if !listen_key_valid(&state, key) {
                    expired = true;
                    let event = json!({"e": "listenKeyExpired", "E": VenueState::now_ms().to_string(), "listenKey": key});
                    if socket.send(Message::text(event.to_string())).await.is_err() { return }
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(Message::Pong(_))) => last_pong = Instant::now(),
                _ => {}
            },
            _ = disconnect.recv() => return,
            _ = ping.tick() => {
                if last_pong.elapsed() > Duration::from_secs(80) {
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
                let payload = VenueState::now_ms().to_string().into_bytes();
                if socket.send(Message::Ping(payload.into())).await.is_err() { return }
            }
        }
    }
}

/// Spot's WebSocket API: requests by `method`; the user data subscription by signature.
async fn ws_api(State(state): State<Arc<VenueState>>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| ws_api_session(socket, state))
}

async fn ws_api_session(mut socket: WebSocket, state: Arc<VenueState>) {
    // Requests are answered all along, before and after a user data subscription, whose
    // events are interleaved with the answers (as on Binance).
    let mut events: Option<tokio::sync::broadcast::Receiver<String>> = None;
    let mut disconnect = state.disconnect_tx.subscribe();
    let mut ping = tokio::time::interval(Duration::from_secs(20));
    let mut last_pong = Instant::now();
    loop {
        let next_event = async {
            match events.as_mut() {
                Some(rx) => rx.recv().await.ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Pong(_))) => { last_pong = Instant::now(); continue }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => continue,
                };
                let (answer, subscribe) = ws_api_answer(&state, text.as_str(), events.is_some());
                match subscribe {
                    Some(true) => events = Some(state.private_tx.subscribe()),
                    Some(false) => events = None,
                    None => {}
                }
                if socket.send(Message::text(answer)).await.is_err() { return }
            }
            event = next_event => {
                let Some(event) = event else { return };
                if socket.send(Message::text(format!("{{\"subscriptionId\":0,\"event\":{event}}}"))).await.is_err() { return }
            }
            _ = disconnect.recv() => return,
            _ = ping.tick() => {
                if last_pong.elapsed() > Duration::from_secs(80) {
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
                let payload = VenueState::now_ms().to_string().into_bytes();
                if socket.send(Message::Ping(payload.into())).await.is_err() { return }
            }
        }
    }
}

/// One WebSocket API request's answer, and whether it subscribes (true) or unsubscribes
/// (false) the user data stream.
fn ws_api_answer(state: &VenueState, text: &str, subscribed: bool) -> (String, Option<bool>) {
    let Ok(request) = serde_json::from_str::<Value>(text) else {
        return (json!({"id": null, "status": 400, "error": {"code": -1000, "msg": "Malformed request."}}).to_string(), None);
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let reply = |status: u16, body: Value| {
        if status == 200 {
            json!({"id": id, "status": 200, "result": body}).to_string()
        } else {
            json!({"id": id, "status": status, "error": body}).to_string()
        }
    };
    let refused = |code: i64, msg: String| reply(if code == -2015 || code == -2014 { 401 } else { 400 }, json!({"code": code, "msg": msg}));
    let params = request.get("params").and_then(|p| p.as_object()).cloned().unwrap_or_default();
    match request.get("method").and_then(|m| m.as_str()).unwrap_or_default() {
        "ping" => (reply(200, json!({})), None),
        "time" => (reply(200, json!({"serverTime": state.venue_now_ms()})), None),
        "userDataStream.subscribe.signature" => {
            state.calls.lock().unwrap_or_else(|p| p.into_inner()).push("WS userDataStream.subscribe.signature".into());
            match check_ws_signature(state, &params) {
                // One subscription per account and connection: -2035 SUBSCRIPTION_ACTIVE.
                Ok(()) if subscribed => (reply(400, json!({"code": -2035, "msg": "User Data Stream subscription already active."})), None),
                Ok(()) => (reply(200, json!({"subscriptionId": 0})), Some(true)),
                Err((code, msg)) => (refused(code, msg), None),
            }
        }
        "userDataStream.unsubscribe" if subscribed => (reply(200, json!({})), Some(false)),
        "userDataStream.unsubscribe" => (reply(400, json!({"code": -2036, "msg": "User Data Stream subscription not active."})), None),
        // Validates the order and the signature; nothing reaches the matching engine.
        "order.test" => {
            state.calls.lock().unwrap_or_else(|p| p.into_inner()).push("WS order.test".into());
            if let Err((code, msg)) = check_ws_signature(state, &params) {
                return (refused(code, msg), None);
            }
            let text = |name: &str| params.get(name).and_then(|v| v.as_str()).map(str::to_string);
            let symbol = text("symbol").unwrap_or_default();
            let known = state.market.lock().unwrap_or_else(|p| p.into_inner()).listing(&symbol).is_some();
            if !known {
                return (refused(-1121, "Invalid symbol.".into()), None);
            }
            if !matches!(text("side").as_deref(), Some("BUY" | "SELL")) {
                return (refused(-1102, "Mandatory parameter 'side' was not sent, was empty/null, or malformed.".into()), None);
            }
            let price = text("price").and_then(|p| p.parse::<Decimal>().ok());
            match crate::market::binance_order_type(&text("type").unwrap_or_default(), text("timeInForce").as_deref(), price) {
                Ok(_) => (reply(200, json!({})), None),
                Err(msg) => (refused(-1102, msg), None),
            }
        }
        other => (reply(400, json!({"code": -1020, "msg": format!("Unsupported method {other}.")})), None),
    }
}

/// WebSocket API signature: every parameter but `signature`, sorted by name, as
/// `name=value` joined by `&`, HMAC-SHA256 hex.
fn check_ws_signature(state: &VenueState, params: &serde_json::Map<String, Value>) -> Result<(), (i64, String)> {
    let key = params.get("apiKey").and_then(|k| k.as_str()).ok_or((-2014, "API-key format invalid.".to_string()))?;
    if key != state.credentials.api_key {
        return Err((-2015, "Invalid API-key, IP, or permissions for action.".into()));
    }
    let signature = params.get("signature").and_then(|s| s.as_str()).ok_or((-1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.".to_string()))?;
    let mut sorted: Vec<(&String, String)> =
        params.iter().filter(|(k, _)| *k != "signature").map(|(k, v)| (k, v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))).collect();
    sorted.sort();
    let payload = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    if !binance_signature_ok(&state.credentials.api_secret, &payload, signature) {
        return Err((-1022, "Signature for this request is not valid.".into()));
    }
    let as_params: Params = sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect();
    check_time(&as_params, state.venue_now_ms()).map_err(|e| (e.code, e.msg))
}

#[derive(serde::Deserialize)]
struct ListenKeyQuery {
    #[serde(rename = "listenKey")]
    listen_key: Option<String>,
}

fn listen_key_valid(state: &VenueState, key: &str) -> bool {
    let ttl = state.listen_key_ttl();
    state.listen_keys.lock().unwrap_or_else(|p| p.into_inner()).get(key).is_some_and(|c| c.elapsed() < ttl)
}

async fn private_listen_key(State(state): State<Arc<VenueState>>, Query(q): Query<ListenKeyQuery>, upgrade: WebSocketUpgrade) -> Response {
    let key = q.listen_key.unwrap_or_default();
    if !listen_key_valid(&state, &key) {
        return error(StatusCode::BAD_REQUEST, -1125, "This listenKey does not exist.").into_response();
    }
    let rx = state.private_tx.subscribe();
    upgrade.on_upgrade(move |socket| forward(socket, state, rx, |e| e.to_string(), Some(key)))
}

#[derive(serde::Deserialize)]
struct StreamsQuery {
    /// None: a combined connection that subscribes later.
    streams: Option<String>,
}

async fn public_combined(State(state): State<Arc<VenueState>>, Query(q): Query<StreamsQuery>, upgrade: WebSocketUpgrade) -> Response {
    let wanted: Vec<String> = q.streams.iter().flat_map(|s| s.split('/')).filter(|s| !s.is_empty()).map(str::to_string).collect();
    upgrade.on_upgrade(move |socket| public_session(socket, state, wanted, true))
}

/// `/ws` with no stream: raw payloads of whatever it subscribes to.
async fn public_bare(State(state): State<Arc<VenueState>>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| public_session(socket, state, Vec::new(), false))
}

async fn public_single(State(state): State<Arc<VenueState>>, Path(stream): Path<String>, upgrade: WebSocketUpgrade) -> Response {
    // A market stream is `<symbol>@<kind>`; `/ws/<listenKey>` was the user data path both
    // venues retired (spot 2026-02-20, USD-M 2026-04): refused, not accepted and left silent.
    if !stream.contains('@') {
        return error(StatusCode::NOT_FOUND, -1000, "Unknown stream: user data is served on the WebSocket API (spot) or /private/ws?listenKey= (USD-M); /ws/<listenKey> is retired.").into_response();
    }
    upgrade.on_upgrade(move |socket| public_session(socket, state, vec![stream], false))
}

/// The stream a requested one is served from: every documented depth speed (spot `@depth`
/// and `@depth@100ms`; USD-M `@depth`, `@depth@500ms` and `@depth@100ms`) carries the same
/// diffs here, each a valid link in the update-id chain, only more often than the slower
/// speeds would send them.
fn published_as(wanted: &str) -> String {
    match wanted.split_once('@') {
        Some((symbol, "depth" | "depth@500ms" | "depth@1000ms")) => format!("{symbol}@depth@100ms"),
        _ => wanted.to_string(),
    }
}

/// A market stream connection: the streams of its URL, then whatever it subscribes to or
/// unsubscribes from (`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY` and
/// `GET_PROPERTY` of `combined`), pinged every 20 s like every Binance stream.
async fn public_session(mut socket: WebSocket, state: Arc<VenueState>, mut streams: Vec<String>, mut combined: bool) {
    let mut public = state.public_tx.subscribe();
    let mut disconnect = state.disconnect_tx.subscribe();
    let mut ping = tokio::time::interval(Duration::from_secs(20));
    let mut last_pong = Instant::now();
    loop {
        tokio::select! {
            published = public.recv() => {
                let Ok((name, text)) = published else { return };
                for wanted in streams.iter().filter(|w| published_as(w) == name) {
                    let out = if combined { format!("{{\"stream\":\"{wanted}\",\"data\":{text}}}") } else { text.clone() };
                    if socket.send(Message::text(out)).await.is_err() { return }
                }
            }
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Pong(_))) => { last_pong = Instant::now(); continue }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => continue,
                };
                let answer = stream_request(text.as_str(), &mut streams, &mut combined);
                if socket.send(Message::text(answer.to_string())).await.is_err() { return }
            }
            _ = disconnect.recv() => return,
            _ = ping.tick() => {
                if last_pong.elapsed() > Duration::from_secs(80) {
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
                let payload = VenueState::now_ms().to_string().into_bytes();
                if socket.send(Message::Ping(payload.into())).await.is_err() { return }
            }
        }
    }
}

/// Streams one connection may listen to.
const MAX_STREAMS: usize = 1024;

/// The answer to a market stream request, with the docs' error messages.
fn stream_request(text: &str, streams: &mut Vec<String>, combined: &mut bool) -> Value {
    let request: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return json!({"code": 3, "msg": format!("Invalid JSON: {e}")}),
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    if !(id.is_null() || id.is_i64() || id.as_str().is_some_and(|s| s.len() <= 36 && s.chars().all(|c| c.is_ascii_alphanumeric()))) {
        return json!({"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"});
    }
    let params = request.get("params").and_then(|p| p.as_array()).cloned().unwrap_or_default();
    let names: Vec<String> = params.iter().filter_map(|p| p.as_str().map(str::to_string)).collect();
    match request.get("method").and_then(|m| m.as_str()) {
        None => json!({"code": 2, "msg": "Invalid request: missing field `method`"}),
        Some("SUBSCRIBE") => {
            for name in names {
                if !streams.contains(&name) {
                    streams.push(name);
                }
            }
            if streams.len() > MAX_STREAMS {
                streams.truncate(MAX_STREAMS);
                return json!({"code": 2, "msg": format!("Invalid request: a connection listens to {MAX_STREAMS} streams at most"), "id": id});
            }
            json!({"result": null, "id": id})
        }
        Some("UNSUBSCRIBE") => {
            streams.retain(|s| !names.contains(s));
            json!({"result": null, "id": id})
        }
        Some("LIST_SUBSCRIPTIONS") => json!({"result": streams.clone(), "id": id}),
        Some("SET_PROPERTY") => match (params.first().and_then(|p| p.as_str()), params.get(1)) {
            (Some("combined"), Some(Value::Bool(on))) => {
                *combined = *on;
                json!({"result": null, "id": id})
            }
            (Some("combined"), _) => json!({"code": 1, "msg": "Invalid value type: expected Boolean"}),
            (Some(_), _) => json!({"code": 0, "msg": "Unknown property", "id": id}),
            (None, _) => json!({"code": 2, "msg": "Invalid request: property name must be a string"}),
        },
        Some("GET_PROPERTY") => match params.first().and_then(|p| p.as_str()) {
            Some("combined") => json!({"result": *combined, "id": id}),
            Some(_) => json!({"code": 0, "msg": "Unknown property", "id": id}),
            None => json!({"code": 2, "msg": "Invalid request: property name must be a string"}),
        },
        Some(other) => json!({"code": 2, "msg": format!("Invalid request: unknown variant {other}, expected one of `SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`")}),
    }
}
