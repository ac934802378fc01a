//! The OKX v5 adapter: signed REST (Base64 HMAC-SHA256 of timestamp + method + path +
//! body, with key, passphrase and ISO timestamp headers), the private `orders` channel
//! after a WebSocket login, and the public `trades` channel. OKX swaps count in
//! contracts; here everything is converted to base units by the instrument's `ctVal`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::model::{Decimal, Liquidity, OrderStatus, Side};
use crate::venue::live::clock::{system_ms, VenueClock};
use crate::venue::live::book::{okx_checksum, Applied, Diff, LocalBook, Sequencing};
use crate::venue::live::http::{credential_header, ParsedUrls};
use crate::venue::live::limits::{Counted, RateLimiter, Window};
use crate::venue::AccountView;
use crate::venue::live::protocol::{json_push, Exchange, NewOrder, RestError, Rules, StreamEnd, StreamSink, TapeTrade};
use crate::venue::live::ws;
use crate::venue::okx::common::{login_sign, new_order_body, sign};
use crate::venue::okx::websocket::{parse_orders, side, status};
use crate::venue::report::{decimal_field, id_field, int_field, str_field, Execution, OrderReport, ParseError};
use crate::secrets::{HmacKey, Secret};

#[derive(Debug, Clone)]
pub struct Endpoints {
    pub rest: String,
    /// The private service (`.../ws/v5/private`).
    pub private_ws: String,
    /// The public service (`.../ws/v5/public`).
    pub public_ws: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            rest: "https://www.okx.com".into(),
            private_ws: "wss://ws.okx.com:8443/ws/v5/private".into(),
            public_ws: "wss://ws.okx.com:8443/ws/v5/public".into(),
        }
    }
}

const ACCESS_KEY: HeaderName = HeaderName::from_static("ok-access-key");
const ACCESS_SIGN: HeaderName = HeaderName::from_static("ok-access-sign");
const ACCESS_TIMESTAMP: HeaderName = HeaderName::from_static("ok-access-timestamp");
const ACCESS_PASSPHRASE: HeaderName = HeaderName::from_static("ok-access-passphrase");

pub struct Credentials {
    pub api_key: Secret,
    pub secret: Secret,
    pub passphrase: Secret,
}

pub struct Okx {
    endpoints: Endpoints,
    http: reqwest::Client,
    credentials: Credentials,
    /// The API secret, keyed once for every signature.
    key: HmacKey,
    /// `cash` for spot, `cross` or `isolated` for swaps.
    trade_mode: String,
    clock: VenueClock,
    limiter: RateLimiter,
    contract_values: Mutex<HashMap<String, Decimal>>,
    requests: crate::venue::live::http::RequestCounts,
    urls: ParsedUrls,
    /// `OK-ACCESS-KEY` and `OK-ACCESS-PASSPHRASE`'s values, built once.
    key_header: HeaderValue,
    passphrase_header: HeaderValue,
}

/// How long after sending a placement OKX may still process it (`expTime`): well inside
/// [`crate::config::HTTP_TIMEOUT`].
const ORDER_DEADLINE_MS: i64 = 5_000;

/// Fills per page of `/api/v5/trade/fills`: the documented maximum.
const FILLS_PAGE: usize = 100;

/// Seconds of silence after which the client sends `ping` (OKX drops a connection
/// silent for 30 s).
const PING_AFTER: Duration = Duration::from_secs(20);

impl Okx {
    pub fn new(endpoints: Endpoints, credentials: Credentials, trade_mode: &str) -> Result<Self, String> {
        let http = crate::venue::live::http::client()?;
        // Place/cancel/query: 60 requests per 2 s each; batches: 300 orders per 2 s.
        let windows = [
            Window { counted: Counted::Weight, span: Duration::from_secs(2), max: 60 },
            Window { counted: Counted::Orders, span: Duration::from_secs(2), max: 300 },
        ];
        Ok(Okx {
            endpoints,
            http,
            key: HmacKey::new(&credentials.secret),
            key_header: credential_header("API key", credentials.api_key.expose())?,
            passphrase_header: credential_header("passphrase", credentials.passphrase.expose())?,
            credentials,
            trade_mode: trade_mode.to_string(),
            clock: VenueClock::default(),
            limiter: RateLimiter::new(&windows),
            contract_values: Mutex::new(HashMap::new()),
            requests: Default::default(),
            urls: ParsedUrls::default(),
        })
    }

    /// Paces requests by these windows instead of the documented ones (an account whose
    /// limits the venue raised).
    pub fn with_rate_limits(mut self, windows: &[Window]) -> Self {
        self.limiter = RateLimiter::new(windows);
        self
    }

    fn contract_value(&self, inst_id: &str) -> Decimal {
        self.contract_values.lock().unwrap_or_else(|p| p.into_inner()).get(inst_id).copied().unwrap_or(Decimal::ONE)
    }

    /// ISO 8601 UTC with milliseconds, as `OK-ACCESS-TIMESTAMP` wants it.
    fn timestamp(&self) -> String {
        iso_ms(self.clock.now_ms())
    }

    /// One request. `path` includes the query string; `body` is JSON text or empty.
    async fn call(&self, method: Method, path: &str, body: Option<Value>, signed: bool, orders: u32, mutating: bool) -> Result<Value, RestError> {
        self.limiter.acquire(1, orders).await?;
        let body_text = body.map(|b| b.to_string()).unwrap_or_default();
        let url = format!("{}{path}", self.endpoints.rest.trim_end_matches('/'));
        let mut request = self.urls.request(&self.http, method.clone(), &url).header(reqwest::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if signed {
            let ts = self.timestamp();
            request = request
                .header(ACCESS_KEY, self.key_header.clone())
                .header(ACCESS_SIGN, sign(&self.key, &ts, method.as_str(), path, &body_text))
                .header(ACCESS_TIMESTAMP, ts)
                .header(ACCESS_PASSPHRASE, self.passphrase_header.clone());
        }
        if mutating && orders > 0 {
            // A placement the venue processes after this is not processed at all: once
            // our timeout has passed (it is longer), a query that finds no order means the
            // original can no longer execute, and sending it again cannot make two.
            request = request.header("expTime", (self.clock.now_ms() + ORDER_DEADLINE_MS).to_string());
        }
        if !body_text.is_empty() {
            request = request.body(body_text);
        }
        crate::venue::live::latency::request_written();
        let response = request.send().await;
        self.requests.count(&method, &url, response.as_ref().map(|r| r.status().as_u16()).unwrap_or(0));
        let response = match response {
            Ok(r) => r,
            Err(e) if e.is_connect() && mutating => return Err(RestError::NotSent(format!("cannot connect: {}", without_url(&e)))),
            Err(e) => return Err(RestError::Unknown(without_url(&e))),
        };
        let status = response.status();
        let text = crate::venue::live::http::read_body(response).await.map_err(RestError::Unknown)?;
        if status == StatusCode::TOO_MANY_REQUESTS {
            let after = Duration::from_secs(2);
            self.limiter.pause(after);
            return Err(RestError::RateLimited(after));
        }
        if status.is_server_error() {
            return Err(RestError::Unknown(format!("HTTP {status}: {}", text.chars().take(200).collect::<String>())));
        }
        let value: Value = serde_json::from_str(&text).map_err(|_| RestError::Unknown(format!("HTTP {status}: unreadable body")))?;
        let code = value.get("code").and_then(|c| c.as_str()).unwrap_or("0");
        let msg = value.get("msg").and_then(|m| m.as_str()).unwrap_or_default();
        match code {
            // 1: all failed, 2: some failed; the per-order sCode says which.
            "0" | "1" | "2" if value.get("data").is_some_and(|d| d.as_array().is_some_and(|a| !a.is_empty() && a[0].get("sCode").is_some())) => Ok(value),
            "0" => Ok(value),
            other => Err(error_of(other.parse().unwrap_or(-1), msg)),
        }
    }

    fn scale_report(&self, mut report: OrderReport) -> OrderReport {
        let ct = self.contract_value(&report.symbol);
        // Saturating: a venue's figures are checked where they are used, never trusted
        // not to overflow here.
        if ct != Decimal::ONE {
            report.order_qty = report.order_qty.saturating_mul(ct);
            report.filled_qty = report.filled_qty.saturating_mul(ct);
            if let Some(e) = report.execution.as_mut() {
                e.qty = e.qty.saturating_mul(ct);
            }
        }
        report
    }

    fn order_body(&self, order: &NewOrder) -> Value {
        let mut request = order.request.clone();
        request.qty = request.qty.checked_div(self.contract_value(&order.symbol)).unwrap_or(request.qty);
        new_order_body(&order.symbol, &self.trade_mode, &request, order.stp)
    }
}

fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "<url>");
    }
    text
}

pub use crate::venue::live::clock::iso_ms;

/// An OKX error code, classified by what it means for the caller.
pub fn error_of(code: i64, message: &str) -> RestError {
    let message = message.to_string();
    match code {
        50011 | 50061 => RestError::RateLimited(Duration::from_secs(2)),
        50001 | 50004 | 50013 | 50026 => RestError::Unknown(format!("{code}: {message}")),
        50100..=50119 => RestError::Auth { code, message },
        51603 => RestError::NotFound { code, message },
        51400..=51402 => RestError::NotFound { code, message },
        _ => RestError::Rejected { code, message },
    }
}

/// An order of `GET /api/v5/trade/order` or `orders-pending`.
fn parse_order(o: &Value) -> Result<OrderReport, ParseError> {
    let status = status(str_field(o, "state")?)?;
    Ok(OrderReport {
        symbol: str_field(o, "instId")?.to_string(),
        client_order_id: str_field(o, "clOrdId")?.to_string(),
        venue_order_id: str_field(o, "ordId")?.to_string(),
        side: side(str_field(o, "side")?)?,
        status,
        order_qty: decimal_field(o, "sz")?,
        filled_qty: decimal_field(o, "accFillSz")?,
        execution: None,
        reason: None,
        ts_ms: int_field(o, "uTime")?,
    })
}

/// A fill of `GET /api/v5/trade/fills`; `fee` is negative when charged.
fn parse_fill(f: &Value) -> Result<OrderReport, ParseError> {
    let execution = Execution {
        trade_id: str_field(f, "tradeId")?.to_string(),
        price: decimal_field(f, "fillPx")?,
        qty: decimal_field(f, "fillSz")?,
        fee: -decimal_field(f, "fee")?,
        fee_asset: str_field(f, "feeCcy")?.to_string(),
        liquidity: if f.get("execType").and_then(|v| v.as_str()) == Some("M") { Liquidity::Maker } else { Liquidity::Taker },
    };
    let (instrument, client_order_id, order_id) = (str_field(f, "instId")?, str_field(f, "clOrdId")?, str_field(f, "ordId")?);
    Ok(OrderReport::trade_only(instrument.to_string(), client_order_id.to_string(), order_id.to_string(), side(str_field(f, "side")?)?, execution, int_field(f, "ts")?))
}

fn malformed(e: ParseError) -> RestError {
    RestError::Unknown(format!("unreadable answer: {e}"))
}

fn first(value: &Value) -> Option<&Value> {
    value.get("data").and_then(|d| d.as_array()).and_then(|a| a.first())
}

/// Instruments of `GET /api/v5/public/instruments`.
pub fn parse_instruments(value: &Value) -> Result<Vec<Rules>, ParseError> {
    let mut out = Vec::new();
    for i in value.get("data").and_then(|d| d.as_array()).into_iter().flatten() {
        let swap = str_field(i, "instType")? != "SPOT";
        let ct = if swap { decimal_field(i, "ctVal")? } else { Decimal::ONE };
        if ct <= Decimal::ZERO || ct > Decimal::from(1_000_000) {
            return Err(ParseError::Malformed(format!("ctVal {ct} is not a contract value (0 to 1000000)")));
        }
        let (base, quote) = if swap {
            (str_field(i, "ctValCcy")?.to_string(), str_field(i, "settleCcy")?.to_string())
        } else {
            (str_field(i, "baseCcy")?.to_string(), str_field(i, "quoteCcy")?.to_string())
        };
        out.push(Rules {
            symbol: str_field(i, "instId")?.to_string(),
            base,
            quote,
            tick_size: decimal_field(i, "tickSz")?.normalize(),
            lot_size: decimal_field(i, "lotSz")?.saturating_mul(ct).normalize(),
            min_qty: decimal_field(i, "minSz")?.saturating_mul(ct).normalize(),
            min_notional: Decimal::ZERO,
            contract_value: ct,
        });
    }
    Ok(out)
}

impl Exchange for Okx {
    fn close_placing(&self) {
        self.limiter.close_placing();
    }

    fn requests(&self) -> &crate::venue::live::http::RequestCounts {
        &self.requests
    }

    fn rate_limits(&self) -> Vec<(crate::venue::live::limits::Window, u32)> {
        self.limiter.usage()
    }

    fn venue_now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn max_batch(&self) -> usize {
        20
    }

    async fn server_time(&self) -> Result<i64, RestError> {
        let sent = system_ms();
        let v = self.call(Method::GET, "/api/v5/public/time", None, false, 0, false).await?;
        let ts = first(&v).ok_or_else(|| RestError::Unknown("time missing".into())).and_then(|d| int_field(d, "ts").map_err(malformed))?;
        self.clock.observe(sent, ts, system_ms());
        Ok(ts)
    }

    async fn rules(&self) -> Result<Vec<Rules>, RestError> {
        let mut all = Vec::new();
        for kind in ["SPOT", "SWAP"] {
            let v = self.call(Method::GET, &format!("/api/v5/public/instruments?instType={kind}"), None, false, 0, false).await?;
            all.extend(parse_instruments(&v).map_err(malformed)?);
        }
        let mut cts = self.contract_values.lock().unwrap_or_else(|p| p.into_inner());
        for r in &all {
            cts.insert(r.symbol.clone(), r.contract_value);
        }
        Ok(all)
    }

    async fn place(&self, orders: &[NewOrder]) -> Vec<Result<OrderReport, RestError>> {
        let (path, body) = if orders.len() == 1 {
            ("/api/v5/trade/order", self.order_body(&orders[0]))
        } else {
            ("/api/v5/trade/batch-orders", Value::Array(orders.iter().map(|o| self.order_body(o)).collect()))
        };
        let answer = self.call(Method::POST, path, Some(body), true, orders.len() as u32, true).await;
        let data = match answer {
            Ok(v) => v.get("data").and_then(|d| d.as_array()).cloned().unwrap_or_default(),
            Err(e) => return orders.iter().map(|_| Err(e.clone())).collect(),
        };
        orders
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let ours = crate::venue::okx::common::client_order_id(&o.request.client_order_id);
                let item = data.iter().find(|d| d.get("clOrdId").and_then(|c| c.as_str()) == Some(ours.as_str())).or(data.get(i));
                let Some(item) = item else { return Err(RestError::Unknown("no answer for this order in the batch".into())) };
                let code = item.get("sCode").and_then(|c| c.as_str()).unwrap_or("0");
                if code != "0" {
                    return Err(error_of(code.parse().unwrap_or(-1), item.get("sMsg").and_then(|m| m.as_str()).unwrap_or_default()));
                }
                Ok(OrderReport {
                    symbol: o.symbol.clone(),
                    client_order_id: ours,
                    venue_order_id: item.get("ordId").and_then(|c| c.as_str()).unwrap_or_default().to_string(),
                    side: o.request.side,
                    status: OrderStatus::Accepted,
                    order_qty: o.request.qty,
                    filled_qty: Decimal::ZERO,
                    execution: None,
                    reason: None,
                    ts_ms: item.get("ts").and_then(|t| t.as_str()).and_then(|t| t.parse().ok()).unwrap_or_else(system_ms),
                })
            })
            .collect()
    }

    async fn cancel(&self, symbol: &str, client_order_id: &str) -> Result<(), RestError> {
        let v = self.call(Method::POST, "/api/v5/trade/cancel-order", Some(json!({"instId": symbol, "clOrdId": client_order_id})), true, 0, true).await?;
        match first(&v).and_then(|d| d.get("sCode")).and_then(|c| c.as_str()) {
            Some("0") | None => Ok(()),
            Some(code) => Err(error_of(code.parse().unwrap_or(-1), first(&v).and_then(|d| d.get("sMsg")).and_then(|m| m.as_str()).unwrap_or_default())),
        }
    }

    async fn cancel_all(&self, symbol: &str) -> Result<(), RestError> {
        let open = self.open_orders(symbol).await?;
        for chunk in open.chunks(20) {
            let body: Vec<Value> = chunk.iter().map(|o| json!({"instId": symbol, "ordId": o.venue_order_id})).collect();
            self.call(Method::POST, "/api/v5/trade/cancel-batch-orders", Some(Value::Array(body)), true, 0, true).await?;
        }
        Ok(())
    }

    async fn query(&self, symbol: &str, client_order_id: &str) -> Result<OrderReport, RestError> {
        let v = self.call(Method::GET, &format!("/api/v5/trade/order?instId={symbol}&clOrdId={client_order_id}"), None, true, 0, false).await?;
        let order = first(&v).ok_or_else(|| RestError::NotFound { code: 51603, message: "Order does not exist.".into() })?;
        Ok(self.scale_report(parse_order(order).map_err(malformed)?))
    }

    async fn open_orders(&self, symbol: &str) -> Result<Vec<OrderReport>, RestError> {
        let v = self.call(Method::GET, &format!("/api/v5/trade/orders-pending?instId={symbol}"), None, true, 0, false).await?;
        v.get("data").and_then(|d| d.as_array()).into_iter().flatten().map(|o| parse_order(o).map(|r| self.scale_report(r)).map_err(malformed)).collect()
    }

    /// Every page: OKX answers newest first, 100 at most, so a gap with more fills than
    /// that is read back page by page (`after` the oldest bill seen) until a short page.
    async fn fills_since(&self, symbol: &str, since_ms: i64) -> Result<Vec<OrderReport>, RestError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..crate::venue::live::MAX_FILL_PAGES {
            let page_from = after.as_deref().map(|a| format!("&after={a}")).unwrap_or_default();
            let v = self.call(Method::GET, &format!("/api/v5/trade/fills?instId={symbol}&begin={since_ms}{page_from}&limit={FILLS_PAGE}"), None, true, 0, false).await?;
            let page: Vec<&Value> = v.get("data").and_then(|d| d.as_array()).into_iter().flatten().collect();
            for f in &page {
                out.push(parse_fill(f).map(|r| self.scale_report(r)).map_err(malformed)?);
            }
            if page.len() < FILLS_PAGE {
                return Ok(out);
            }
            let oldest = page.iter().filter_map(|f| f.get("billId").and_then(|b| b.as_str()).and_then(|b| b.parse::<u64>().ok())).min();
            let previous = after.as_deref().and_then(|a| a.parse::<u64>().ok());
            match oldest {
                // A page that does not go further back would be asked for forever.
                Some(oldest) if previous.is_none_or(|p| oldest < p) => after = Some(oldest.to_string()),
                _ => return Err(RestError::Unknown("fills: a full page that does not page back (billId missing or not decreasing)".into())),
            }
        }
        Err(RestError::Unknown(format!("fills: more than {} pages since {since_ms}", crate::venue::live::MAX_FILL_PAGES)))
    }

    async fn account(&self) -> Result<AccountView, RestError> {
        let as_of_ms = system_ms();
        let v = self.call(Method::GET, "/api/v5/account/balance", None, true, 0, false).await?;
        let mut balances = Vec::new();
        for d in first(&v).and_then(|a| a.get("details")).and_then(|d| d.as_array()).into_iter().flatten() {
            balances.push((str_field(d, "ccy").map_err(malformed)?.to_string(), decimal_field(d, "cashBal").map_err(malformed)?));
        }
        let mut positions = Vec::new();
        let v = self.call(Method::GET, "/api/v5/account/positions?instType=SWAP", None, true, 0, false).await?;
        for p in v.get("data").and_then(|d| d.as_array()).into_iter().flatten() {
            // `pos` counts contracts; the runtime counts the base asset.
            let symbol = str_field(p, "instId").map_err(malformed)?.to_string();
            let qty = decimal_field(p, "pos").map_err(malformed)?.saturating_mul(self.contract_value(&symbol));
            positions.push((symbol, qty));
        }
        Ok(AccountView { balances, positions, as_of_ms })
    }

    async fn private_stream(&self, sink: &dyn StreamSink, max_age: Duration) -> StreamEnd {
        let mut conn = match ws::Connection::open(&self.endpoints.private_ws, max_age).await {
            Ok(c) => c.pinging(PING_AFTER),
            Err(e) => return StreamEnd::Failed(e),
        };
        let ts = (self.clock.now_ms() / 1000).to_string();
        let login = json!({"op": "login", "args": [{
            "apiKey": self.credentials.api_key.expose(),
            "passphrase": self.credentials.passphrase.expose(),
            "timestamp": ts,
            "sign": login_sign(&self.key, &ts),
        }]});
        if let Err(e) = conn.send_text(login.to_string()).await {
            return StreamEnd::Failed(e);
        }
        self.read_loop(conn, sink, true).await
    }

    async fn book_stream(&self, symbols: &[String], sink: &dyn StreamSink, max_age: Duration) -> StreamEnd {
        let mut conn = match self.subscribe_public("books", symbols, max_age).await {
            Ok(c) => c,
            Err(end) => return end,
        };
        let mut books: HashMap<String, LocalBook> = symbols.iter().map(|s| (s.clone(), LocalBook::new(Sequencing::Okx))).collect();
        loop {
            let text = match conn.text().await { Ok(text) => text, Err(end) => return end };
            let push = match parse_books(&text) {
                Ok(p) => p,
                Err(ParseError::Ignored(_)) => continue,
                Err(e) => {
                    sink.malformed(format!("books channel: {e}"));
                    continue;
                }
            };
            let Some(book) = books.get_mut(&push.symbol) else { continue };
            let result = if push.snapshot {
                book.reset();
                book.snapshot(push.diff.last, push.diff.bids, push.diff.asks).map(|_| Applied::Changed)
            } else {
                book.apply(push.diff)
            };
            let problem = match result {
                Ok(Applied::Changed) if okx_checksum(book, &|d: Decimal| d.to_string()) != push.checksum => Some("checksum mismatch".to_string()),
                Ok(Applied::Changed) => {
                    let ct = self.contract_value(&push.symbol);
                    let (mut bids, mut asks) = book.levels(50);
                    for level in bids.iter_mut().chain(asks.iter_mut()) {
                        level.qty = level.qty.saturating_mul(ct);
                    }
                    sink.book(&push.symbol, bids, asks, push.ts);
                    None
                }
                Ok(_) => None,
                Err(gap) => Some(gap.to_string()),
            };
            if let Some(why) = problem {
                // Rebuilt from the snapshot that a new subscription starts with.
                sink.book_gap(&push.symbol, why);
                book.reset();
                let arg = json!([{"channel": "books", "instId": push.symbol}]);
                for op in ["unsubscribe", "subscribe"] {
                    if let Err(e) = conn.send_text(json!({"op": op, "args": arg}).to_string()).await {
                        return StreamEnd::Failed(e);
                    }
                }
            }
        }
    }

    async fn public_stream(&self, symbols: &[String], sink: &dyn StreamSink, max_age: Duration) -> StreamEnd {
        let conn = match self.subscribe_public("trades", symbols, max_age).await {
            Ok(c) => c,
            Err(end) => return end,
        };
        self.read_loop(conn, sink, false).await
    }
}

impl Okx {
    /// A connection to the public service subscribed to `channel` for `symbols`.
    async fn subscribe_public(&self, channel: &str, symbols: &[String], max_age: Duration) -> Result<ws::Connection, StreamEnd> {
        let mut conn = ws::Connection::open(&self.endpoints.public_ws, max_age).await.map_err(StreamEnd::Failed)?.pinging(PING_AFTER);
        let args: Vec<Value> = symbols.iter().map(|s| json!({"channel": channel, "instId": s})).collect();
        conn.send_text(json!({"op": "subscribe", "args": args}).to_string()).await.map_err(StreamEnd::Failed)?;
        Ok(conn)
    }

    /// Reads pushes, pinging after [`PING_AFTER`] of silence; `private` logs in first and
    /// subscribes to `orders` once the login is confirmed.
    async fn read_loop(&self, mut conn: ws::Connection, sink: &dyn StreamSink, private: bool) -> StreamEnd {
        loop {
            let text = match conn.text().await { Ok(text) => text, Err(end) => return end };
            let Some(value) = json_push(sink, if private { "private stream" } else { "public stream" }, &text) else { continue };
            match value.get("event").and_then(|e| e.as_str()) {
                Some("login") if value.get("code").and_then(|c| c.as_str()) == Some("0") => {
                    let subscribe = json!({"op": "subscribe", "args": [{"channel": "orders", "instType": "ANY"}]});
                    if let Err(e) = conn.send_text(subscribe.to_string()).await {
                        return StreamEnd::Failed(e);
                    }
                    continue;
                }
                Some("subscribe") => {
                    sink.connected();
                    continue;
                }
                Some("error") | Some("login") => {
                    let code = value.get("code").and_then(|c| c.as_str()).unwrap_or_default();
                    let msg = value.get("msg").and_then(|c| c.as_str()).unwrap_or_default();
                    return StreamEnd::Failed(format!("refused ({code}): {msg}"));
                }
                Some("notice") => return StreamEnd::Rollover(format!("notice: {}", value.get("msg").and_then(|m| m.as_str()).unwrap_or_default())),
                Some(_) => continue,
                None => {}
            }
            if private {
                match parse_orders(&text) {
                    Ok(reports) => {
                        for r in reports {
                            sink.report(self.scale_report(r));
                        }
                    }
                    Err(ParseError::Ignored(_)) => {}
                    Err(e) => sink.malformed(format!("orders channel: {e}")),
                }
            } else {
                match parse_trades(&value) {
                    Ok(trades) => {
                        for mut trade in trades {
                            trade.qty = trade.qty.saturating_mul(self.contract_value(&trade.symbol));
                            sink.trade(trade);
                        }
                    }
                    Err(ParseError::Ignored(_)) => {}
                    Err(e) => sink.malformed(format!("trades channel: {e}")),
                }
            }
        }
    }
}

/// One push of the `books` channel.
pub struct BooksPush {
    pub symbol: String,
    pub snapshot: bool,
    /// `last` is `seqId`, `previous` is `prevSeqId`; sizes as sent.
    pub diff: Diff,
    pub checksum: i32,
    pub ts: i64,
}

/// Levels `[px, sz, "0", orders]` of a books push; only price and size are used.
fn book_levels(value: &Value, name: &str) -> Result<Vec<(Decimal, Decimal)>, ParseError> {
    crate::venue::binance::rest::levels(value, name)
}

pub fn parse_books(text: &str) -> Result<BooksPush, ParseError> {
    let value: Value = serde_json::from_str(text).map_err(|e| ParseError::Malformed(e.to_string()))?;
    let arg = value.get("arg");
    if arg.and_then(|a| a.get("channel")).and_then(|c| c.as_str()) != Some("books") || value.get("data").is_none() {
        let kind = value.get("event").and_then(|e| e.as_str()).unwrap_or("other");
        return Err(ParseError::Ignored(kind.to_string()));
    }
    let symbol = arg.and_then(|a| a.get("instId")).and_then(|i| i.as_str()).ok_or_else(|| ParseError::Malformed("instId missing".into()))?.to_string();
    let snapshot = match value.get("action").and_then(|a| a.as_str()) {
        Some("snapshot") => true,
        Some("update") => false,
        other => return Err(ParseError::Malformed(format!("action {other:?}"))),
    };
    let d = value.get("data").and_then(|d| d.as_array()).and_then(|a| a.first()).ok_or_else(|| ParseError::Malformed("data is empty".into()))?;
    let seq = int_field(d, "seqId")?;
    let prev = int_field(d, "prevSeqId")?;
    let checksum = d.get("checksum").and_then(|c| c.as_i64()).ok_or_else(|| ParseError::Malformed("checksum missing".into()))? as i32;
    Ok(BooksPush {
        symbol,
        snapshot,
        diff: Diff { first: seq as u64, last: seq as u64, previous: (prev >= 0).then_some(prev as u64), bids: book_levels(d, "bids")?, asks: book_levels(d, "asks")? },
        checksum,
        ts: int_field(d, "ts")?,
    })
}

/// A `trades` push (`side` is the taker's); sizes as sent, in contracts for a swap.
pub fn parse_trades(value: &Value) -> Result<Vec<TapeTrade>, ParseError> {
    if value.get("arg").and_then(|a| a.get("channel")).and_then(|c| c.as_str()) != Some("trades") {
        return Err(ParseError::Ignored("not trades".into()));
    }
    let data = value.get("data").and_then(|d| d.as_array()).ok_or_else(|| ParseError::Malformed("data is not a list".into()))?;
    data.iter()
        .map(|t| {
            Ok(TapeTrade {
                symbol: str_field(t, "instId")?.to_string(),
                trade_id: id_field(t, "tradeId")?,
                price: decimal_field(t, "px")?,
                qty: decimal_field(t, "sz")?,
                buyer_is_maker: side(str_field(t, "side")?)? == Side::Sell,
                ts_ms: int_field(t, "ts")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_timestamps_as_okx_documents_them() {
        // okx/authentication.md: "2020-12-08T09:08:57.715Z".
        assert_eq!(iso_ms(1_607_418_537_715), "2020-12-08T09:08:57.715Z");
        assert_eq!(iso_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn errors_are_classified_by_what_they_mean() {
        assert!(matches!(error_of(50113, "Invalid signature."), RestError::Auth { .. }));
        assert!(matches!(error_of(50011, "Too Many Requests"), RestError::RateLimited(_)));
        assert!(matches!(error_of(51603, "Order does not exist."), RestError::NotFound { .. }));
        assert!(matches!(error_of(50001, "Service temporarily unavailable."), RestError::Unknown(_)));
        assert!(matches!(error_of(51008, "Insufficient balance"), RestError::Rejected { .. }));
    }

    #[test]
    fn swap_sizes_are_converted_to_base_units() {
        let v = json!({"code":"0","data":[{"instType":"SWAP","instId":"BTC-USDT-SWAP","ctVal":"0.01","ctValCcy":"BTC","settleCcy":"USDT","tickSz":"0.1","lotSz":"0.01","minSz":"0.01"}]});
        let rules = parse_instruments(&v).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((rules[0].lot_size.to_string(), rules[0].min_qty.to_string(), rules[0].contract_value.to_string()), ("0.0001".into(), "0.0001".into(), "0.01".into()));
    }
}
