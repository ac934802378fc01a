//! The Binance adapter for spot and USD-M futures: signed REST (HMAC-SHA256 hex of the
//! query string), the private stream (spot: WebSocket API `userDataStream.subscribe.
//! signature`; USD-M: a listen key on the `/private` URL, kept alive), and the public
//! trade stream. Rate-limit headers feed the limiter; 429 and 418 are obeyed.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::model::{Decimal, Liquidity, Side};

use crate::venue::binance::common::{order_fields, sign, signed_query};
use crate::venue::binance::websocket::{parse_usdm, side, spot_from_tree, spot_in_place, status};
use crate::venue::live::clock::{system_ms, VenueClock};
use crate::venue::live::driver::off_thread;
use crate::venue::live::book::{Applied, Diff, LocalBook, Sequencing};
use crate::venue::live::limits::{Counted, RateLimiter, Window};
use crate::venue::live::protocol::{Exchange, NewOrder, RestError, Rules, StreamEnd, StreamSink, TapeTrade};
use crate::venue::live::http::{credential_header, ParsedUrls, RequestCounts};
use crate::venue::live::ws;
use crate::venue::report::{decimal_field, decimal_text, id_field, int_field, str_field, Execution, JsonInt, OrderReport, ParseError};
use crate::secrets::{HmacKey, Secret};
use crate::venue::AccountView;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Spot,
    UsdM,
}

/// Where a Binance venue lives; production by default, a testnet or a local exchange by
/// config.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub rest: String,
    /// Spot: the WebSocket API (`.../ws-api/v3`); USD-M: the stream base (`wss://fstream.binance.com`).
    pub private_ws: String,
    /// The market stream base (spot `wss://stream.binance.com:9443`, USD-M as above).
    pub public_ws: String,
}

impl Endpoints {
    pub fn production(flavor: Flavor) -> Self {
        match flavor {
            Flavor::Spot => Endpoints {
                rest: "https://api.binance.com".into(),
                private_ws: "wss://ws-api.binance.com:443/ws-api/v3".into(),
                public_ws: "wss://stream.binance.com:9443".into(),
            },
            Flavor::UsdM => Endpoints {
                rest: "https://fapi.binance.com".into(),
                private_ws: "wss://fstream.binance.com".into(),
                public_ws: "wss://fstream.binance.com".into(),
            },
        }
    }
}

/// The header the API key travels in (names are sent in lower case).
const API_KEY_HEADER: reqwest::header::HeaderName = reqwest::header::HeaderName::from_static("x-mbx-apikey");

pub struct Binance {
    flavor: Flavor,
    endpoints: Endpoints,
    http: reqwest::Client,
    api_key: Secret,
    /// `X-MBX-APIKEY`'s value, built once.
    api_key_header: reqwest::header::HeaderValue,
    /// The API secret, keyed once for every signature.
    key: HmacKey,
    recv_window: u64,
    clock: VenueClock,
    limiter: RateLimiter,
    /// Venue order id -> client order id, for trade lists that only carry the former.
    /// Shared with the reading of those lists, off the engine's thread.
    client_ids: Arc<Mutex<ClientIds>>,
    requests: RequestCounts,
    urls: ParsedUrls,
}

/// The client ids of the latest orders placed, by venue order id: at most [`CLIENT_IDS`],
/// the oldest forgotten first. A trade list names an order by its venue id only; one
/// forgotten here is asked for (`GET order` by `orderId`). Unbounded, this held every
/// order of the process's life, and its growth was a copy of the whole map at each
/// doubling, on the engine's thread.
struct ClientIds {
    ids: HashMap<(String, i64), String>,
    order: VecDeque<(String, i64)>,
}

/// Orders whose client ids are kept: a hundred seconds at a thousand orders a second, five
/// times the window a periodic reconciliation reads.
const CLIENT_IDS: usize = 100_000;

impl Default for ClientIds {
    fn default() -> Self {
        // Sized once: no growth, and no copy of the map, while orders go out.
        ClientIds { ids: HashMap::with_capacity(CLIENT_IDS), order: VecDeque::with_capacity(CLIENT_IDS) }
    }
}

impl ClientIds {
    fn get(&self, key: &(String, i64)) -> Option<&String> {
        self.ids.get(key)
    }

    fn insert(&mut self, key: (String, i64), client_order_id: &str) {
        if let Some(known) = self.ids.get_mut(&key) {
            client_order_id.clone_into(known);
            return;
        }
        if self.order.len() >= CLIENT_IDS {
            if let Some(oldest) = self.order.pop_front() {
                self.ids.remove(&oldest);
            }
        }
        self.ids.insert(key.clone(), client_order_id.to_string());
        self.order.push_back(key);
    }
}

/// A request's query: sent as it is, or signed just before it is sent.
enum Query<'a> {
    Plain(&'a str),
    Signed(&'a str),
}

impl Binance {
    pub fn new(flavor: Flavor, endpoints: Endpoints, api_key: Secret, secret: Secret, recv_window: u64) -> Result<Self, String> {
        let http = crate::venue::live::http::client()?;
        // The documented limits: spot 6000 weight/min, 100 orders/10 s; USD-M 2400
        // weight/min, 300 orders/10 s and 1200 orders/min.
        let windows: Vec<Window> = match flavor {
            Flavor::Spot => vec![
                Window { counted: Counted::Weight, span: Duration::from_secs(60), max: 6000 },
                Window { counted: Counted::Orders, span: Duration::from_secs(10), max: 100 },
            ],
            Flavor::UsdM => vec![
                Window { counted: Counted::Weight, span: Duration::from_secs(60), max: 2400 },
                Window { counted: Counted::Orders, span: Duration::from_secs(10), max: 300 },
                Window { counted: Counted::Orders, span: Duration::from_secs(60), max: 1200 },
            ],
        };
        Ok(Binance {
            flavor,
            endpoints,
            http,
            api_key_header: credential_header("API key", api_key.expose())?,
            api_key,
            key: HmacKey::new(&secret),
            recv_window,
            clock: VenueClock::default(),
            limiter: RateLimiter::new(&windows),
            client_ids: Arc::new(Mutex::new(ClientIds::default())),
            requests: RequestCounts::default(),
            urls: ParsedUrls::default(),
        })
    }

    /// Paces requests by these windows instead of the documented ones (an account whose
    /// limits the venue raised).
    pub fn with_rate_limits(mut self, windows: &[Window]) -> Self {
        self.limiter = RateLimiter::new(windows);
        self
    }

    fn api(&self, path: &str) -> String {
        let prefix = match self.flavor {
            Flavor::Spot => "/api/v3",
            Flavor::UsdM => "/fapi/v1",
        };
        format!("{}{prefix}{path}", self.endpoints.rest.trim_end_matches('/'))
    }

    fn signed(&self, params: &str) -> String {
        use std::fmt::Write;
        let mut payload = String::with_capacity(params.len() + 64);
        if !params.is_empty() {
            payload.push_str(params);
            payload.push('&');
        }
        let _ = write!(payload, "recvWindow={}&timestamp={}", self.recv_window, self.clock.now_ms());
        signed_query(&self.key, &payload)
    }

    /// A signed request. A timestamp the venue refuses (-1021: our clock drifted, or
    /// jumped) is not a reason to stop trading for the minutes until the next scheduled
    /// resync: the clock is resynced at once and the request, which the venue refused
    /// and so never executed, is signed again and sent once more.
    async fn call_signed(&self, method: Method, url: String, params: &str, weight: u32, orders: u32, mutating: bool) -> Result<Value, RestError> {
        self.resigned_once(|| self.call(method.clone(), url.clone(), Query::Signed(params), weight, orders, mutating)).await
    }

    /// `attempt` (a signed request and the reading of its answer), once more after a
    /// clock resync if the venue refused its timestamp (-1021), as [`Binance::call_signed`]
    /// says.
    async fn resigned_once<T, F: Future<Output = Result<T, RestError>>>(&self, mut attempt: impl FnMut() -> F) -> Result<T, RestError> {
        let first = attempt().await;
        if !matches!(first, Err(RestError::Auth { code: -1021, .. })) {
            return first;
        }
        self.resync_after_timestamp_error().await;
        attempt().await
    }

    async fn resync_after_timestamp_error(&self) {
        let before = self.clock.offset_ms();
        match Exchange::server_time(self).await {
            Ok(_) => tracing::warn!(offset_was_ms = before, offset_ms = self.clock.offset_ms(), "the venue refused our timestamp (-1021): clock resynced, request signed again"),
            Err(error) => tracing::warn!("the venue refused our timestamp (-1021) and the clock resync failed: {error}"),
        }
    }

    /// One request, its answer read as JSON. A signed one is signed once the rate limiter
    /// lets it go, not before: a request that waited its turn must not arrive with a
    /// timestamp already outside its receive window.
    async fn call(&self, method: Method, url: String, query: Query<'_>, weight: u32, orders: u32, mutating: bool) -> Result<Value, RestError> {
        let (status, body) = self.exchange(method, url, query, weight, orders, mutating).await?;
        answer(status, &body)
    }

    /// One request: its status and body, once the rate limits, bans and server errors
    /// the answer speaks of are dealt with.
    async fn exchange(&self, method: Method, url: String, query: Query<'_>, weight: u32, orders: u32, mutating: bool) -> Result<(StatusCode, String), RestError> {
        self.limiter.acquire(weight, orders).await?;
        // A signed POST (a placement) carries its parameters in the body, as the docs allow:
        // the HTTP client parses the URL it is given, a long query string included (0.7 µs
        // warm for a placement's), on the order's way out.
        let (query, body) = match query {
            Query::Plain(q) => (q.to_string(), None),
            Query::Signed(params) if method == Method::POST => (String::new(), Some(self.signed(params))),
            Query::Signed(params) => (self.signed(params), None),
        };
        let full = if query.is_empty() { url } else { format!("{url}?{query}") };
        let mut request = self.urls.request(&self.http, method.clone(), &full).header(API_KEY_HEADER, self.api_key_header.clone());
        if let Some(body) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded").body(body);
        }
        crate::venue::live::latency::request_written();
        let response = request.send().await;
        self.requests.count(&method, &full, response.as_ref().map(|r| r.status().as_u16()).unwrap_or(0));
        let response = match response {
            Ok(r) => r,
            // A request that never connected never reached the venue.
            Err(e) if e.is_connect() && !mutating => return Err(RestError::Unknown(format!("cannot connect: {}", without_url(&e)))),
            Err(e) if e.is_connect() => return Err(RestError::NotSent(format!("cannot connect: {}", without_url(&e)))),
            Err(e) => return Err(RestError::Unknown(without_url(&e))),
        };
        self.observe_headers(response.headers());
        let status = response.status();
        let retry_after = response.headers().get("Retry-After").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok()).map(Duration::from_secs);
        let body = crate::venue::live::http::read_body(response).await.map_err(RestError::Unknown)?;
        if status == StatusCode::TOO_MANY_REQUESTS {
            let after = retry_after.unwrap_or(Duration::from_secs(1));
            self.limiter.pause(after);
            return Err(RestError::RateLimited(after));
        }
        if status.as_u16() == 418 {
            let after = retry_after.unwrap_or(Duration::from_secs(120));
            self.limiter.ban(after);
            return Err(RestError::Banned(after));
        }
        if status.is_server_error() {
            return Err(RestError::Unknown(format!("HTTP {status}: {}", short(&body))));
        }
        Ok((status, body))
    }

    /// One page of `myTrades` / `userTrades`, read off the engine's thread (a full page is
    /// 1,000 trades, about 250 KB: a millisecond and more of parsing), with the client ids
    /// this adapter knows already filled in. A refused timestamp is handled as in
    /// [`Binance::call_signed`].
    async fn trades_page(&self, symbol: &str, path: &str, query: &str, weight: u32) -> Result<TradePage, RestError> {
        self.resigned_once(|| async {
            let (status, body) = self.exchange(Method::GET, self.api(path), Query::Signed(query), weight, 0, false).await?;
            let (known, symbol) = (self.client_ids.clone(), symbol.to_string());
            off_thread("reading a page of trades", move || read_trades(status, &body, &symbol, &known)).await.map_err(RestError::Unknown)?
        })
        .await
    }

    fn observe_headers(&self, headers: &reqwest::header::HeaderMap) {
        for (name, value) in headers {
            let name = name.as_str().to_ascii_lowercase();
            let Some(count) = value.to_str().ok().and_then(|v| v.parse::<u32>().ok()) else { continue };
            let (counted, interval) = if let Some(i) = name.strip_prefix("x-mbx-used-weight-") {
                (Counted::Weight, i)
            } else if let Some(i) = name.strip_prefix("x-mbx-order-count-") {
                (Counted::Orders, i)
            } else {
                continue;
            };
            if let Some(span) = interval_span(interval) {
                self.limiter.observe(counted, span, count);
            }
        }
    }

    fn remember(&self, symbol: &str, order_id: i64, client_order_id: &str) {
        self.client_ids.lock().unwrap_or_else(|p| p.into_inner()).insert((symbol.to_string(), order_id), client_order_id);
    }

    async fn client_id_of(&self, symbol: &str, order_id: i64) -> Result<String, RestError> {
        if let Some(id) = self.client_ids.lock().unwrap_or_else(|p| p.into_inner()).get(&(symbol.to_string(), order_id)) {
            return Ok(id.clone());
        }
        let order = self.call_signed(Method::GET, self.api("/order"), &format!("symbol={symbol}&orderId={order_id}"), 4, 0, false).await?;
        let id = order.get("clientOrderId").and_then(|c| c.as_str()).unwrap_or_default().to_string();
        self.remember(symbol, order_id, &id);
        Ok(id)
    }
}

/// Trades per page of `myTrades` / `userTrades`: the documented maximum.
const FILLS_PAGE: usize = 1000;

/// reqwest puts the URL, query and signature included, in its errors; we don't.
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "<url>");
    }
    text
}

fn short(body: &str) -> String {
    body.chars().take(200).collect()
}

/// `1M`, `10S`, `1D` -> the window's span.
fn interval_span(interval: &str) -> Option<Duration> {
    let unit = interval.chars().last()?.to_ascii_lowercase();
    let n: u64 = interval[..interval.len() - 1].parse().ok()?;
    Some(Duration::from_secs(n * match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86400,
        _ => return None,
    }))
}

/// A Binance error code, classified by what it means for the caller.
pub fn error_of(code: i64, message: &str) -> RestError {
    let message = message.to_string();
    match code {
        -1007 | -1006 | -1001 => RestError::Unknown(format!("{code}: {message}")),
        -1003 | -1015 => RestError::RateLimited(Duration::from_secs(1)),
        // Refused before it was processed: nothing happened, and it may be sent again.
        -1008 => RestError::NotSent(format!("{code}: {message}")),
        -1021 | -1022 | -2014 | -2015 | -1002 => RestError::Auth { code, message },
        -2013 => RestError::NotFound { code, message },
        -2011 if message.contains("Unknown order") => RestError::NotFound { code, message },
        _ => RestError::Rejected { code, message },
    }
}

/// An order object of the REST API (place, query, open orders), spot and USD-M alike.
pub fn parse_order(o: &Value) -> Result<OrderReport, ParseError> {
    let ts = int_field(o, "updateTime").or_else(|_| int_field(o, "transactTime")).or_else(|_| int_field(o, "time"))?;
    Ok(OrderReport {
        symbol: str_field(o, "symbol")?.to_string(),
        client_order_id: str_field(o, "clientOrderId")?.to_string(),
        venue_order_id: int_field(o, "orderId")?.to_string(),
        side: side(str_field(o, "side")?)?,
        status: status(str_field(o, "status")?)?,
        order_qty: decimal_field(o, "origQty")?,
        filled_qty: decimal_field(o, "executedQty")?,
        execution: None,
        reason: None,
        ts_ms: ts,
    })
}

/// A trade of `myTrades` (spot) or `userTrades` (USD-M), with the client id looked up.
fn parse_trade(t: &Value, client_order_id: String) -> Result<OrderReport, ParseError> {
    let buyer = t.get("isBuyer").or_else(|| t.get("buyer")).and_then(|v| v.as_bool()).ok_or_else(|| ParseError::Malformed("buyer flag missing".into()))?;
    let maker = t.get("isMaker").or_else(|| t.get("maker")).and_then(|v| v.as_bool()).unwrap_or(false);
    let execution = Execution {
        trade_id: int_field(t, "id")?.to_string(),
        price: decimal_field(t, "price")?,
        qty: decimal_field(t, "qty")?,
        fee: decimal_field(t, "commission")?,
        fee_asset: str_field(t, "commissionAsset")?.to_string(),
        liquidity: if maker { Liquidity::Maker } else { Liquidity::Taker },
    };
    let side = if buyer { Side::Buy } else { Side::Sell };
    Ok(OrderReport::trade_only(str_field(t, "symbol")?.to_string(), client_order_id, int_field(t, "orderId")?.to_string(), side, execution, int_field(t, "time")?))
}

/// What an answer says: its JSON, or the error its status and code mean.
fn answer(status: StatusCode, body: &str) -> Result<Value, RestError> {
    let value: Value = serde_json::from_str(body).map_err(|_| RestError::Unknown(format!("HTTP {status}: unreadable body {}", short(body))))?;
    if status.is_success() {
        if let Value::Object(map) = &value {
            if let Some(code) = map.get("code").and_then(|c| c.as_i64()).filter(|c| *c < 0) {
                return Err(error_of(code, map.get("msg").and_then(|m| m.as_str()).unwrap_or_default()));
            }
        }
        return Ok(value);
    }
    let code = value.get("code").and_then(|c| c.as_i64()).unwrap_or(0);
    Err(error_of(code, value.get("msg").and_then(|m| m.as_str()).unwrap_or(body)))
}

/// A page of the account's trades, read.
#[derive(Debug)]
struct TradePage {
    /// Each trade, and the venue id of its order when its client id is still to be looked
    /// up (the report's is empty then).
    trades: Vec<(Option<i64>, OrderReport)>,
    /// Trades on the page, to tell a full page from the last one.
    len: usize,
    /// The highest trade id on it, where the next page starts.
    newest: Option<i64>,
}

/// Reads a trade list answer (pure, for the blocking pool): each trade as a report, its
/// client id from `known` where it is there.
fn read_trades(status: StatusCode, body: &str, symbol: &str, known: &Mutex<ClientIds>) -> Result<TradePage, RestError> {
    let value = answer(status, body)?;
    let page = value.as_array().map(Vec::as_slice).unwrap_or_default();
    let mut trades = Vec::with_capacity(page.len());
    let mut key = (symbol.to_string(), 0);
    for t in page {
        key.1 = int_field(t, "orderId").map_err(malformed)?;
        // Locked a trade at a time: the engine's thread writes here on every placement.
        let id = known.lock().unwrap_or_else(|p| p.into_inner()).get(&key).cloned();
        let (lookup, client_order_id) = match id {
            Some(id) => (None, id),
            None => (Some(key.1), String::new()),
        };
        trades.push((lookup, parse_trade(t, client_order_id).map_err(malformed)?));
    }
    let newest = page.iter().filter_map(|t| t.get("id").and_then(|i| i.as_i64())).max();
    Ok(TradePage { trades, len: page.len(), newest })
}

fn malformed(e: ParseError) -> RestError {
    RestError::Unknown(format!("unreadable answer: {e}"))
}

/// Exchange info filters -> our rules.
pub fn parse_rules(info: &Value) -> Result<Vec<Rules>, ParseError> {
    let symbols = info.get("symbols").and_then(|s| s.as_array()).ok_or_else(|| ParseError::Malformed("symbols missing".into()))?;
    let mut out = Vec::new();
    for s in symbols {
        let mut rules = Rules {
            symbol: str_field(s, "symbol")?.to_string(),
            base: str_field(s, "baseAsset")?.to_string(),
            quote: str_field(s, "quoteAsset")?.to_string(),
            tick_size: Decimal::ZERO,
            lot_size: Decimal::ZERO,
            min_qty: Decimal::ZERO,
            min_notional: Decimal::ZERO,
            contract_value: Decimal::ONE,
        };
        for f in s.get("filters").and_then(|f| f.as_array()).into_iter().flatten() {
            match f.get("filterType").and_then(|t| t.as_str()) {
                Some("PRICE_FILTER") => rules.tick_size = decimal_field(f, "tickSize")?.normalize(),
                Some("LOT_SIZE") => {
                    rules.lot_size = decimal_field(f, "stepSize")?.normalize();
                    rules.min_qty = decimal_field(f, "minQty")?.normalize();
                }
                Some("NOTIONAL") | Some("MIN_NOTIONAL") => {
                    let v = decimal_field(f, "minNotional").or_else(|_| decimal_field(f, "notional"))?;
                    rules.min_notional = v.normalize();
                }
                _ => {}
            }
        }
        out.push(rules);
    }
    Ok(out)
}

impl Exchange for Binance {
    fn close_placing(&self) {
        self.limiter.close_placing();
    }

    fn requests(&self) -> &RequestCounts {
        &self.requests
    }

    fn rate_limits(&self) -> Vec<(crate::venue::live::limits::Window, u32)> {
        self.limiter.usage()
    }

    fn venue_now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn max_batch(&self) -> usize {
        match self.flavor {
            Flavor::Spot => 1,
            Flavor::UsdM => 5,
        }
    }

    async fn server_time(&self) -> Result<i64, RestError> {
        let sent = system_ms();
        let v = self.call(Method::GET, self.api("/time"), Query::Plain(""), 1, 0, false).await?;
        let server = v.get("serverTime").and_then(|t| t.as_i64()).ok_or_else(|| RestError::Unknown("serverTime missing".into()))?;
        self.clock.observe(sent, server, system_ms());
        Ok(server)
    }

    async fn rules(&self) -> Result<Vec<Rules>, RestError> {
        let v = self.call(Method::GET, self.api("/exchangeInfo"), Query::Plain(""), 20, 0, false).await?;
        parse_rules(&v).map_err(malformed)
    }

    async fn place(&self, orders: &[NewOrder]) -> Vec<Result<OrderReport, RestError>> {
        let futures = self.flavor == Flavor::UsdM;
        if orders.len() == 1 || !futures {
            let mut out = Vec::new();
            for o in orders {
                let result = self.call_signed(Method::POST, self.api("/order"), &order_fields(&o.symbol, &o.request, o.stp, futures), 1, 1, true).await;
                out.push(result.and_then(|v| {
                    let report = parse_order(&v).map_err(malformed)?;
                    self.remember(&report.symbol, report.venue_order_id.parse().unwrap_or_default(), &report.client_order_id);
                    Ok(report)
                }));
            }
            return out;
        }
        // batchOrders: a JSON list of the single-order parameters (without the signing ones).
        let list: Vec<Value> = orders
            .iter()
            .map(|o| {
                let params = order_fields(&o.symbol, &o.request, o.stp, true);
                let map: serde_json::Map<String, Value> = params
                    .split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                    .collect();
                Value::Object(map)
            })
            .collect();
        let encoded: String = url::form_urlencoded::byte_serialize(Value::Array(list).to_string().as_bytes()).collect();
        match self.call_signed(Method::POST, self.api("/batchOrders"), &format!("batchOrders={encoded}"), 5, orders.len() as u32, true).await {
            Ok(Value::Array(items)) if items.len() == orders.len() => items
                .iter()
                .map(|item| match item.get("code").and_then(|c| c.as_i64()) {
                    Some(code) if code != 200 => Err(error_of(code, item.get("msg").and_then(|m| m.as_str()).unwrap_or_default())),
                    _ => parse_order(item).map_err(malformed),
                })
                .collect(),
            Ok(other) => orders.iter().map(|_| Err(RestError::Unknown(format!("batch answer of the wrong shape: {}", short(&other.to_string()))))).collect(),
            Err(e) => orders.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    async fn cancel(&self, symbol: &str, client_order_id: &str) -> Result<(), RestError> {
        self.call_signed(Method::DELETE, self.api("/order"), &format!("symbol={symbol}&origClientOrderId={client_order_id}"), 1, 0, true).await.map(|_| ())
    }

    async fn cancel_all(&self, symbol: &str) -> Result<(), RestError> {
        let path = match self.flavor {
            Flavor::Spot => "/openOrders",
            Flavor::UsdM => "/allOpenOrders",
        };
        self.call_signed(Method::DELETE, self.api(path), &format!("symbol={symbol}"), 1, 0, true).await.map(|_| ())
    }

    async fn query(&self, symbol: &str, client_order_id: &str) -> Result<OrderReport, RestError> {
        let v = self.call_signed(Method::GET, self.api("/order"), &format!("symbol={symbol}&origClientOrderId={client_order_id}"), 4, 0, false).await?;
        parse_order(&v).map_err(malformed)
    }

    async fn open_orders(&self, symbol: &str) -> Result<Vec<OrderReport>, RestError> {
        let v = self.call_signed(Method::GET, self.api("/openOrders"), &format!("symbol={symbol}"), 6, 0, false).await?;
        v.as_array().into_iter().flatten().map(|o| parse_order(o).map_err(malformed)).collect()
    }

    /// Every page: from `startTime` (oldest first, 1000 at most), then on from the last
    /// trade id seen (`fromId`, which the venue does not take together with a time) until
    /// a short page.
    async fn fills_since(&self, symbol: &str, since_ms: i64) -> Result<Vec<OrderReport>, RestError> {
        let (path, weight) = match self.flavor {
            Flavor::Spot => ("/myTrades", 20),
            Flavor::UsdM => ("/userTrades", 5),
        };
        let mut out = Vec::new();
        let mut query = format!("symbol={symbol}&startTime={since_ms}&limit={FILLS_PAGE}");
        let mut last: Option<i64> = None;
        for _ in 0..crate::venue::live::MAX_FILL_PAGES {
            let page = self.trades_page(symbol, path, &query, weight).await?;
            for (order_id, mut report) in page.trades {
                if let Some(order_id) = order_id {
                    report.client_order_id = self.client_id_of(symbol, order_id).await?;
                }
                out.push(report);
            }
            if page.len < FILLS_PAGE {
                return Ok(out);
            }
            match page.newest {
                // A page that does not move forward would be asked for forever.
                Some(newest) if last.is_none_or(|l| newest > l) => {
                    last = Some(newest);
                    query = format!("symbol={symbol}&fromId={}&limit={FILLS_PAGE}", newest.saturating_add(1));
                }
                _ => return Err(RestError::Unknown("trades: a full page that does not move forward (ids missing or not increasing)".into())),
            }
        }
        Err(RestError::Unknown(format!("trades: more than {} pages since {since_ms}", crate::venue::live::MAX_FILL_PAGES)))
    }

    async fn account(&self) -> Result<AccountView, RestError> {
        let as_of_ms = system_ms();
        let (mut balances, mut positions) = (Vec::new(), Vec::new());
        match self.flavor {
            Flavor::Spot => {
                let v = self.call_signed(Method::GET, self.api("/account"), "", 20, 0, false).await?;
                for b in v.get("balances").and_then(|b| b.as_array()).into_iter().flatten() {
                    let total = decimal_field(b, "free").map_err(malformed)?.saturating_add(decimal_field(b, "locked").map_err(malformed)?);
                    balances.push((str_field(b, "asset").map_err(malformed)?.to_string(), total));
                }
            }
            Flavor::UsdM => {
                // One call for both: wallet balances under `assets`, positions under `positions`.
                let url = format!("{}/fapi/v3/account", self.endpoints.rest.trim_end_matches('/'));
                let v = self.call_signed(Method::GET, url, "", 5, 0, false).await?;
                for a in v.get("assets").and_then(|a| a.as_array()).into_iter().flatten() {
                    balances.push((str_field(a, "asset").map_err(malformed)?.to_string(), decimal_field(a, "walletBalance").map_err(malformed)?));
                }
                for p in v.get("positions").and_then(|p| p.as_array()).into_iter().flatten() {
                    positions.push((str_field(p, "symbol").map_err(malformed)?.to_string(), decimal_field(p, "positionAmt").map_err(malformed)?));
                }
            }
        }
        Ok(AccountView { balances, positions, as_of_ms })
    }

    async fn private_stream(&self, sink: &dyn StreamSink, max_age: Duration) -> StreamEnd {
        match self.flavor {
            Flavor::Spot => self.spot_user_stream(sink, max_age).await,
            Flavor::UsdM => self.usdm_user_stream(sink, max_age).await,
        }
    }

    async fn book_stream(&self, symbols: &[String], sink: &dyn StreamSink, max_age: Duration) -> StreamEnd {
        let (path, sequencing) = match self.flavor {
            Flavor::Spot => ("/stream?streams=", Sequencing::BinanceSpot),
            Flavor::UsdM => ("/public/stream?streams=", Sequencing::BinanceUsdm),
        };
        let streams: Vec<String> = symbols.iter().map(|s| format!("{}@depth@100ms", s.to_ascii_lowercase())).collect();
        let url = format!("{}{path}{}", self.endpoints.public_ws.trim_end_matches('/'), streams.join("/"));
        let mut conn = match ws::Connection::open(&url, max_age).await {
            Ok(c) => c,
            Err(e) => return StreamEnd::Failed(e),
        };
        let mut books: HashMap<String, LocalBook> = symbols.iter().map(|s| (s.clone(), LocalBook::new(sequencing))).collect();
        // Diffs sent while the snapshots are fetched wait in the socket and are checked
        // against them when read.
        for symbol in symbols {
            if let Err(e) = self.sync_book(symbol, &mut books, sink).await {
                return StreamEnd::Failed(e);
            }
        }
        loop {
            let text = match conn.text().await { Ok(text) => text, Err(end) => return end };
            let (symbol, diff, ts) = match parse_depth_update(&text) {
                Ok(d) => d,
                Err(ParseError::Ignored(_)) => continue,
                Err(e) => {
                    sink.malformed(format!("book stream: {e}"));
                    continue;
                }
            };
            let Some(book) = books.get_mut(&symbol) else { continue };
            match book.apply(diff) {
                Ok(Applied::Changed) => {
                    let (bids, asks) = book.levels(BOOK_LEVELS);
                    sink.book(&symbol, bids, asks, ts);
                }
                Ok(_) => {}
                Err(gap) => {
                    sink.book_gap(&symbol, gap.to_string());
                    if let Some(book) = books.get_mut(&symbol) {
                        book.reset();
                    }
                    if let Err(e) = self.sync_book(&symbol, &mut books, sink).await {
                        return StreamEnd::Failed(e);
                    }
                }
            }
        }
    }

    async fn public_stream(&self, symbols: &[String], sink: &dyn StreamSink, max_age: Duration) -> StreamEnd {
        let (path, kind) = match self.flavor {
            Flavor::Spot => ("/stream?streams=", "trade"),
            Flavor::UsdM => ("/market/stream?streams=", "aggTrade"),
        };
        let streams: Vec<String> = symbols.iter().map(|s| format!("{}@{kind}", s.to_ascii_lowercase())).collect();
        let url = format!("{}{path}{}", self.endpoints.public_ws.trim_end_matches('/'), streams.join("/"));
        let mut conn = match ws::Connection::open(&url, max_age).await {
            Ok(c) => c,
            Err(e) => return StreamEnd::Failed(e),
        };
        sink.connected();
        loop {
            let text = match conn.text().await { Ok(text) => text, Err(end) => return end };
            match parse_public_trade(&text) {
                Ok(trade) => sink.trade(trade),
                Err(ParseError::Ignored(_)) => {}
                Err(e) => sink.malformed(format!("public stream: {e}")),
            }
        }
    }
}

/// A `trade` (spot) or `aggTrade` (USD-M) event, bare or in a combined-stream wrapper.
/// Every print of the market is one: read in place where the typed reader can, since the
/// streams are read on the engine's thread.
pub fn parse_public_trade(text: &str) -> Result<TapeTrade, ParseError> {
    public_trade_in_place(text).unwrap_or_else(|| parse_public_trade_tree(text))
}

/// The fields of a public trade this adapter reads, borrowed from the frame; as
/// `websocket::Fields` for the private stream, a frame this reader cannot read whole goes
/// to the tree reader, which gives the same answer (a property test checks it).
#[derive(serde::Deserialize)]
struct TradeFields<'a> {
    #[serde(borrow, default, deserialize_with = "crate::venue::report::present")]
    data: Option<Box<TradeFields<'a>>>,
    #[serde(borrow)]
    e: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    s: Option<std::borrow::Cow<'a, str>>,
    t: Option<JsonInt>,
    a: Option<JsonInt>,
    #[serde(borrow)]
    p: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    q: Option<std::borrow::Cow<'a, str>>,
    m: Option<bool>,
    #[serde(rename = "T")]
    trade_time: Option<JsonInt>,
}

fn public_trade_in_place(text: &str) -> Option<Result<TapeTrade, ParseError>> {
    let top: TradeFields = serde_json::from_str(text).ok()?;
    let event = top.data.as_deref().unwrap_or(&top);
    let kind = event.e.as_deref().unwrap_or("unknown");
    let id = match kind {
        "trade" => event.t?,
        "aggTrade" => event.a?,
        other => return Some(Err(ParseError::Ignored(other.to_string()))),
    };
    Some(Ok(TapeTrade {
        symbol: event.s.as_deref()?.to_string(),
        trade_id: u64::try_from(id.0).ok()?,
        price: decimal_text(event.p.as_deref()?)?,
        qty: decimal_text(event.q.as_deref()?)?,
        buyer_is_maker: event.m?,
        ts_ms: event.trade_time?.0,
    }))
}

/// [`parse_public_trade`] through a JSON tree: slower, and the one that says what is wrong.
pub fn parse_public_trade_tree(text: &str) -> Result<TapeTrade, ParseError> {
    let value: Value = serde_json::from_str(text).map_err(|e| ParseError::Malformed(e.to_string()))?;
    let event = value.get("data").unwrap_or(&value);
    let kind = event.get("e").and_then(|e| e.as_str()).unwrap_or("unknown");
    let id_field_name = match kind {
        "trade" => "t",
        "aggTrade" => "a",
        other => return Err(ParseError::Ignored(other.to_string())),
    };
    let buyer_maker = event.get("m").and_then(|m| m.as_bool()).ok_or_else(|| ParseError::Malformed("m missing".into()))?;
    Ok(TapeTrade {
        symbol: str_field(event, "s")?.to_string(),
        trade_id: id_field(event, id_field_name)?,
        price: decimal_field(event, "p")?,
        qty: decimal_field(event, "q")?,
        buyer_is_maker: buyer_maker,
        ts_ms: int_field(event, "T")?,
    })
}

/// Levels a side kept for strategies.
const BOOK_LEVELS: usize = 50;

/// A `depthUpdate` event (spot or USD-M), bare or in a combined-stream wrapper.
pub fn parse_depth_update(text: &str) -> Result<(String, Diff, i64), ParseError> {
    let value: Value = serde_json::from_str(text).map_err(|e| ParseError::Malformed(e.to_string()))?;
    let event = value.get("data").unwrap_or(&value);
    let kind = event.get("e").and_then(|e| e.as_str()).unwrap_or("unknown");
    if kind != "depthUpdate" {
        return Err(ParseError::Ignored(kind.to_string()));
    }
    let previous = match event.get("pu") {
        Some(_) => Some(int_field(event, "pu")? as u64),
        None => None,
    };
    Ok((
        str_field(event, "s")?.to_string(),
        Diff { first: int_field(event, "U")? as u64, last: int_field(event, "u")? as u64, previous, bids: levels(event, "b")?, asks: levels(event, "a")? },
        int_field(event, "E")?,
    ))
}

/// `[["price", "qty"], ...]`.
pub fn levels(value: &Value, name: &str) -> Result<Vec<(Decimal, Decimal)>, ParseError> {
    let list = value.get(name).and_then(|l| l.as_array()).ok_or_else(|| ParseError::Malformed(format!("{name} missing")))?;
    list.iter()
        .map(|level| {
            let pair = level.as_array().filter(|a| a.len() >= 2).ok_or_else(|| ParseError::Malformed(format!("{name}: a level is not a pair")))?;
            let num = |v: &Value| v.as_str().and_then(|s| s.parse::<Decimal>().ok()).ok_or_else(|| ParseError::Malformed(format!("{name}: {v} is not a decimal")));
            Ok((num(&pair[0])?, num(&pair[1])?))
        })
        .collect()
}

impl Binance {
    /// Fetches a depth snapshot and sets the book to it (applying what was buffered),
    /// retrying while the snapshot is older than the diffs already read.
    async fn sync_book(&self, symbol: &str, books: &mut HashMap<String, LocalBook>, sink: &dyn StreamSink) -> Result<(), String> {
        for _ in 0..5 {
            let v = self.call(Method::GET, self.api("/depth"), Query::Plain(&format!("symbol={symbol}&limit=1000")), 50, 0, false).await.map_err(|e| format!("depth snapshot: {e}"))?;
            let id = v.get("lastUpdateId").and_then(|i| i.as_u64()).ok_or("depth snapshot: lastUpdateId missing")?;
            let bids = levels(&v, "bids").map_err(|e| e.to_string())?;
            let asks = levels(&v, "asks").map_err(|e| e.to_string())?;
            let Some(book) = books.get_mut(symbol) else { return Ok(()) };
            match book.snapshot(id, bids, asks) {
                Ok(()) => {
                    let (bids, asks) = book.levels(BOOK_LEVELS);
                    sink.book(symbol, bids, asks, self.clock.now_ms());
                    return Ok(());
                }
                Err(gap) => {
                    sink.book_gap(symbol, gap.to_string());
                    book.reset();
                }
            }
        }
        Err(format!("{symbol}: no depth snapshot lined up with the diffs"))
    }

    /// Spot: one WebSocket API connection, subscribed by signature (the HMAC of the
    /// sorted parameters `apiKey`, `recvWindow`, `timestamp`).
    async fn spot_user_stream(&self, sink: &dyn StreamSink, max_age: Duration) -> StreamEnd {
        let mut conn = match ws::Connection::open(&self.endpoints.private_ws, max_age).await {
            Ok(c) => c,
            Err(e) => return StreamEnd::Failed(e),
        };
        let timestamp = self.clock.now_ms();
        let payload = format!("apiKey={}&recvWindow={}&timestamp={timestamp}", self.api_key.expose(), self.recv_window);
        let request = serde_json::json!({
            "id": format!("subscribe-{timestamp}"),
            "method": "userDataStream.subscribe.signature",
            "params": {
                "apiKey": self.api_key.expose(),
                "recvWindow": self.recv_window,
                "timestamp": timestamp,
                "signature": sign(&self.key, &payload),
            }
        });
        if let Err(e) = conn.send_text(request.to_string()).await {
            return StreamEnd::Failed(e);
        }
        loop {
            let text = match conn.text().await { Ok(text) => text, Err(end) => return end };
            match spot_user_frame(&text) {
                SpotFrame::Report(report) => {
                    sink.report(report);
                    // The engine handles the fill before this stream's next frame (the
                    // account update that follows every fill) is read.
                    tokio::task::yield_now().await;
                }
                SpotFrame::Other => {}
                SpotFrame::Subscribed => sink.connected(),
                SpotFrame::Ended(end) => return end,
                SpotFrame::Malformed(what) => sink.malformed(format!("user stream: {what}")),
            }
        }
    }

    /// USD-M: a listen key from REST, the `/private/ws` URL, a keepalive every 30 min.
    async fn usdm_user_stream(&self, sink: &dyn StreamSink, max_age: Duration) -> StreamEnd {
        let key = match self.call(Method::POST, self.api("/listenKey"), Query::Plain(""), 1, 0, false).await {
            Ok(v) => match v.get("listenKey").and_then(|k| k.as_str()) {
                Some(k) => k.to_string(),
                None => return StreamEnd::Failed("listenKey missing in the answer".into()),
            },
            Err(e) => return StreamEnd::Failed(format!("listen key: {e}")),
        };
        let url = format!("{}/private/ws?listenKey={key}", self.endpoints.private_ws.trim_end_matches('/'));
        let mut conn = match ws::Connection::open(&url, max_age).await {
            Ok(c) => c,
            Err(e) => return StreamEnd::Failed(e),
        };
        sink.connected();
        let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + Duration::from_secs(30 * 60), Duration::from_secs(30 * 60));
        loop {
            let text = tokio::select! {
                next = conn.text() => match next {
                    Ok(t) => t,
                    Err(end) => return end,
                },
                _ = keepalive.tick() => {
                    if let Err(e) = self.call(Method::PUT, self.api("/listenKey"), Query::Plain(""), 1, 0, false).await {
                        // -1125: the key is gone; a new connection gets a new one.
                        return StreamEnd::Failed(format!("listen key keepalive: {e}"));
                    }
                    continue;
                }
            };
            if text.contains("\"listenKeyExpired\"") {
                return StreamEnd::Rollover("listenKeyExpired".into());
            }
            match parse_usdm(&text) {
                Ok(report) => sink.report(report),
                Err(ParseError::Ignored(_)) => {}
                Err(e) => sink.malformed(format!("user stream: {e}")),
            }
        }
    }
}

/// What a frame of the spot user stream (the WebSocket API connection) says.
// Handled as soon as it is read, never stored: boxing the report would cost an
// allocation per fill for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum SpotFrame {
    Report(OrderReport),
    /// Another event (an account update, a balance update...): nothing for the runtime.
    Other,
    /// The answer to the subscription, accepted.
    Subscribed,
    /// The connection is to be left: the subscription refused, or the venue's notice.
    Ended(StreamEnd),
    Malformed(String),
}

/// Reads a spot user-stream frame. Nearly every frame is an order's event or an account
/// update, read in place with no JSON tree; the stream's own messages (the subscription's
/// answer, `serverShutdown`, `eventStreamTerminated`) and whatever the typed reader leaves
/// go through the tree.
fn spot_user_frame(text: &str) -> SpotFrame {
    const NOTICES: [&str; 2] = ["serverShutdown", "eventStreamTerminated"];
    match spot_in_place(text) {
        Some(Ok(report)) => return SpotFrame::Report(report),
        Some(Err(ParseError::Ignored(kind))) if !NOTICES.contains(&kind.as_str()) => return SpotFrame::Other,
        _ => {}
    }
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => return SpotFrame::Malformed(e.to_string()),
    };
    if value.get("id").is_some() && value.get("status").is_some() {
        if value.get("status").and_then(|s| s.as_i64()) == Some(200) {
            return SpotFrame::Subscribed;
        }
        let error = value.get("error").cloned().unwrap_or_default();
        return SpotFrame::Ended(StreamEnd::Failed(format!("subscription refused: {error}")));
    }
    match value.get("event").and_then(|e| e.get("e")).and_then(|e| e.as_str()) {
        Some("serverShutdown") => return SpotFrame::Ended(StreamEnd::Rollover("serverShutdown".into())),
        Some("eventStreamTerminated") => return SpotFrame::Ended(StreamEnd::Failed("eventStreamTerminated".into())),
        _ => {}
    }
    // The typed reader has had its go above: the tree already parsed says the rest.
    match spot_from_tree(&value) {
        Ok(report) => SpotFrame::Report(report),
        Err(ParseError::Ignored(_)) => SpotFrame::Other,
        Err(e) => SpotFrame::Malformed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client ids kept are the latest [`CLIENT_IDS`]: the oldest goes first, an order
    /// seen again keeps its place and takes the newer id.
    #[test]
    fn client_ids_keep_the_latest_orders() {
        let mut ids = ClientIds::default();
        for n in 0..CLIENT_IDS as i64 + 10 {
            ids.insert(("BTCUSDT".to_string(), n), &format!("c{n}"));
        }
        assert_eq!(ids.ids.len(), CLIENT_IDS);
        assert_eq!(ids.get(&("BTCUSDT".to_string(), 9)), None, "the oldest are forgotten");
        assert_eq!(ids.get(&("BTCUSDT".to_string(), 10)).map(String::as_str), Some("c10"));
        ids.insert(("BTCUSDT".to_string(), 10), "again");
        assert_eq!((ids.ids.len(), ids.get(&("BTCUSDT".to_string(), 10)).map(String::as_str)), (CLIENT_IDS, Some("again")));
    }

    /// binance-spot/rest-api.md, `GET /api/v3/myTrades`: each trade becomes a report, with
    /// the client id where the adapter knows the order and the order id to look up where
    /// it does not; an error answer (the refused timestamp, which is signed again) or a
    /// page that is not a trade list is an error, not an empty page.
    #[test]
    fn a_trade_page_is_read_with_the_client_ids_known() {
        let page = r#"[{"symbol":"BNBBTC","id":28457,"orderId":100234,"orderListId":-1,"price":"4.00000100","qty":"12.00000000","quoteQty":"48.000012","commission":"10.10000000","commissionAsset":"BNB","time":1499865549590,"isBuyer":true,"isMaker":false,"isBestMatch":true},
            {"symbol":"BNBBTC","id":28458,"orderId":100235,"orderListId":-1,"price":"4.00000200","qty":"1.00000000","quoteQty":"4.000002","commission":"0","commissionAsset":"BTC","time":1499865549591,"isBuyer":false,"isMaker":true,"isBestMatch":true}]"#;
        let known = Mutex::new(ClientIds::default());
        known.lock().unwrap_or_else(|p| p.into_inner()).insert(("BNBBTC".to_string(), 100234), "mine-1");
        let read = read_trades(StatusCode::OK, page, "BNBBTC", &known).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((read.len, read.newest), (2, Some(28458)));
        let (lookup, first) = &read.trades[0];
        assert_eq!((lookup, first.client_order_id.as_str(), first.side), (&None, "mine-1", Side::Buy));
        assert_eq!(first.execution.as_ref().map(|e| (e.trade_id.as_str(), e.qty, e.liquidity)), Some(("28457", Decimal::new(12, 0), Liquidity::Taker)));
        let (lookup, second) = &read.trades[1];
        assert_eq!((lookup, second.client_order_id.as_str(), second.side), (&Some(100235), "", Side::Sell));
        let refused = r#"{"code":-1021,"msg":"Timestamp for this request is outside of the recvWindow."}"#;
        assert!(matches!(read_trades(StatusCode::BAD_REQUEST, refused, "BNBBTC", &known), Err(RestError::Auth { code: -1021, .. })));
        assert!(matches!(read_trades(StatusCode::OK, "<html>", "BNBBTC", &known), Err(RestError::Unknown(_))));
        let no_price = r#"[{"symbol":"BNBBTC","id":1,"orderId":100234,"qty":"1","commission":"0","commissionAsset":"BNB","time":1,"isBuyer":true,"isMaker":false}]"#;
        assert!(matches!(read_trades(StatusCode::OK, no_price, "BNBBTC", &known), Err(RestError::Unknown(e)) if e.contains("price")));
    }

    /// binance-spot/web-socket-api.md and user-data-stream.md: the stream's own messages
    /// end or confirm the connection; order events are reports; the rest is skipped.
    #[test]
    fn spot_user_frames_are_told_apart() {
        let report = r#"{"subscriptionId":0,"event":{"e":"executionReport","E":1499405658658,"s":"ETHBTC","c":"mUvoqJxFIILMdfAW5iGSOW","S":"BUY","o":"LIMIT","f":"GTC","q":"1.00000000","p":"0.10264410","P":"0.00000000","F":"0.00000000","g":-1,"C":"","x":"TRADE","X":"FILLED","r":"NONE","i":4293153,"l":"1.00000000","z":"1.00000000","L":"0.10264410","n":"0","N":null,"T":1499405658657,"t":7,"I":8641984,"w":false,"m":true,"M":false,"O":1499405658657,"Z":"0.10264410","Y":"0.10264410","Q":"0.00000000","W":1499405658657,"V":"NONE"}}"#;
        assert!(matches!(spot_user_frame(report), SpotFrame::Report(r) if r.client_order_id == "mUvoqJxFIILMdfAW5iGSOW"));
        let account = r#"{"subscriptionId":0,"event":{"e":"outboundAccountPosition","E":1564034571105,"u":1564034571073,"B":[{"a":"ETH","f":"10000.000000","l":"0.000000"}]}}"#;
        assert!(matches!(spot_user_frame(account), SpotFrame::Other));
        assert!(matches!(spot_user_frame(r#"{"id":"subscribe-1","status":200,"result":{"subscriptionId":0}}"#), SpotFrame::Subscribed));
        let refused = spot_user_frame(r#"{"id":"subscribe-1","status":400,"error":{"code":-1022,"msg":"Signature for this request is not valid."}}"#);
        assert!(matches!(refused, SpotFrame::Ended(StreamEnd::Failed(why)) if why.contains("-1022")));
        let shutdown = spot_user_frame(r#"{"event":{"e":"serverShutdown","E":1770123456789}}"#);
        assert!(matches!(shutdown, SpotFrame::Ended(StreamEnd::Rollover(why)) if why == "serverShutdown"));
        let terminated = spot_user_frame(r#"{"subscriptionId":0,"event":{"e":"eventStreamTerminated","E":1728973001334}}"#);
        assert!(matches!(terminated, SpotFrame::Ended(StreamEnd::Failed(why)) if why == "eventStreamTerminated"));
        assert!(matches!(spot_user_frame("{not json"), SpotFrame::Malformed(_)));
        // An executionReport the typed reader cannot take whole goes to the tree, which
        // names what is wrong.
        assert!(matches!(spot_user_frame(&report.replace(r#""s":"ETHBTC""#, r#""s":7"#)), SpotFrame::Malformed(_)));
    }

    #[test]
    fn errors_are_classified_by_what_they_mean() {
        assert!(matches!(error_of(-1021, "Timestamp for this request is outside of the recvWindow."), RestError::Auth { code: -1021, .. }));
        assert!(matches!(error_of(-1022, "Signature for this request is not valid."), RestError::Auth { .. }));
        assert!(matches!(error_of(-2013, "Order does not exist."), RestError::NotFound { .. }));
        assert!(matches!(error_of(-2011, "Unknown order sent."), RestError::NotFound { .. }));
        assert!(matches!(error_of(-1007, "Timeout waiting for response from backend server. Send status unknown; execution status unknown."), RestError::Unknown(_)));
        assert!(matches!(error_of(-2010, "Account has insufficient balance for requested action."), RestError::Rejected { code: -2010, .. }));
    }

    /// binance-spot/web-socket-streams.md and binance-usdm/public_ws.md, "Diff. Book Depth".
    #[test]
    fn documented_depth_updates() {
        let spot = r#"{"e":"depthUpdate","E":1672515782136,"s":"BNBBTC","U":157,"u":160,"b":[["0.0024","10"]],"a":[["0.0026","100"]]}"#;
        let (s, diff, ts) = parse_depth_update(spot).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((s.as_str(), diff.first, diff.last, diff.previous, ts), ("BNBBTC", 157, 160, None, 1672515782136));
        assert_eq!(diff.bids, vec![("0.0024".parse().unwrap_or_default(), "10".parse().unwrap_or_default())]);
        let usdm = r#"{"e":"depthUpdate","E":123456789,"T":123456788,"s":"BTCUSDT","U":157,"u":160,"pu":149,"b":[["0.0024","10"]],"a":[["0.0026","100"]]}"#;
        let (_, diff, _) = parse_depth_update(usdm).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(diff.previous, Some(149));
        assert!(matches!(parse_depth_update(r#"{"e":"depthUpdate","s":"X","U":1,"u":2,"E":1,"b":[["x","1"]],"a":[]}"#), Err(ParseError::Malformed(_))));
    }

    #[test]
    fn header_intervals() {
        assert_eq!(interval_span("1M"), Some(Duration::from_secs(60)));
        assert_eq!(interval_span("10S"), Some(Duration::from_secs(10)));
        assert_eq!(interval_span("1D"), Some(Duration::from_secs(86400)));
        assert_eq!(interval_span("x"), None);
    }

    /// binance-spot/web-socket-streams.md, "Trade Streams".
    #[test]
    fn documented_trade_event() {
        let text = r#"{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}"#;
        let t = parse_public_trade(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((t.symbol.as_str(), t.trade_id, t.price.to_string(), t.qty.to_string(), t.buyer_is_maker, t.ts_ms), ("BNBBTC", 12345, "0.001".to_string(), "100".to_string(), true, 1672515782136));
        assert!(matches!(parse_public_trade(r#"{"e":"depthUpdate"}"#), Err(ParseError::Ignored(_))));
        assert!(matches!(parse_public_trade(r#"{"e":"trade","s":"X"}"#), Err(ParseError::Malformed(_))));
    }

    /// The documented trade events (spot bare and combined, USD-M aggTrade) are read in
    /// place, and whatever a frame holds, the in-place reader agrees with the tree reader.
    mod public_trade_in_place {
        use super::*;
        use crate::venue::report::mutations::mutate;
        use proptest::prelude::*;

        const SPOT: &str = r#"{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}"#;
        /// binance-usdm/public_ws.md, "Aggregate Trade Streams".
        const USDM: &str = r#"{"e":"aggTrade","E":123456789,"s":"BTCUSDT","a":5933014,"p":"0.001","q":"100","f":100,"l":105,"T":123456785,"m":true}"#;

        fn samples() -> Vec<String> {
            vec![SPOT.to_string(), format!(r#"{{"stream":"bnbbtc@trade","data":{SPOT}}}"#), USDM.to_string(), format!(r#"{{"stream":"btcusdt@aggTrade","data":{USDM}}}"#)]
        }

        #[test]
        fn the_documented_events_are_read_in_place() {
            for text in samples() {
                let tree = parse_public_trade_tree(&text);
                assert!(tree.is_ok(), "{text}");
                assert_eq!(public_trade_in_place(&text), Some(tree), "{text}");
            }
            assert_eq!(public_trade_in_place(r#"{"data":null,"e":"trade"}"#), None);
            // A negative trade id would wrap into a huge one: refused, by name.
            let negative = SPOT.replace("\"t\":12345", "\"t\":-5");
            assert_eq!(public_trade_in_place(&negative), None);
            assert_eq!(parse_public_trade(&negative), Err(ParseError::Malformed("t -5 is negative".into())));
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
            #[test]
            fn the_in_place_reader_agrees_with_the_tree_reader(sample in 0usize..4, edits in proptest::collection::vec((0u8..3, 0usize..64, 0usize..64), 0..4)) {
                let mut text = samples()[sample].clone();
                for (op, key, value) in edits {
                    text = mutate(&text, op, key, value);
                }
                prop_assert_eq!(parse_public_trade(&text), parse_public_trade_tree(&text), "{}", text);
            }
        }
    }
}
