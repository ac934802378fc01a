//! A local exchange for tests and for users: Binance spot, Binance USD-M and OKX, each on
//! its own port of 127.0.0.1, speaking the subset of their REST and WebSocket protocols
//! that the runtime's adapters use, as the copied docs describe them. Orders match with
//! the paper venue's engine; keys, signatures, timestamps and rate limits are checked
//! with each venue's error codes; faults are injected on command under `/_local/`.
//!
//! One account per venue (the configured key). The rest of the market is the background
//! liquidity and the trades sent to `/_local/print`, which go through resting orders.

pub mod auth;
pub mod binance;
pub mod depth;
pub mod market;
pub mod okx;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use trading_model::{Decimal, Side};
use runtime::venue::paper::LiquidityProfile;
use serde::Deserialize;
use tokio::sync::broadcast;

use market::{Happening, Listing, Market};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    BinanceSpot,
    BinanceUsdm,
    Okx,
}

/// Misbehaviour on command. Counters count down as they fire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// The next N placements answer 5xx without executing.
    pub fail_orders: u32,
    /// The next N placements execute, then answer 5xx / -1007: the answer is lost.
    pub unknown_orders: u32,
    /// The next N requests answer 429 with Retry-After: 1.
    pub rate_limit: u32,
    /// Answer 418 to everything for this many seconds.
    pub ban_secs: u64,
    /// Every private push is sent twice.
    pub duplicate_pushes: bool,
    /// The next N private pushes are lost.
    pub drop_pushes: u32,
    /// Every answer waits this long.
    pub stall_ms: u64,
    /// The next N book diffs are numbered but never sent: a gap.
    pub book_gaps: u32,
    /// The next N private pushes are each preceded by a message that is not JSON.
    pub garbage: u32,
    /// The next book diff is held back and sent after the one that follows it.
    pub book_reorder: bool,
    /// The venue's clock runs this many ms ahead of the machine's (what a client sees
    /// when its own clock jumps back): timestamps are checked, and `/time` answers, on it.
    #[serde(default)]
    pub clock_ms: i64,
    /// The next immediate-or-cancel or market order fills only this much, and the rest
    /// expires: a thin book, for partly filled hedges.
    pub partial_fill: Option<Decimal>,
    /// The next placement is held this long before it is processed, then processed as
    /// if it had just arrived: the late execution of a request its client gave up on.
    pub late_order_ms: u64,
    /// USD-M listen keys live this long without a keepalive instead of the documented
    /// 60 minutes: for `listenKeyExpired` in a test's time.
    pub listen_key_ttl_ms: u64,
    /// The account's trade list shows a trade only this long after it happened: a venue's
    /// history lags its matching engine, and a reconciliation must look back far enough.
    pub trade_list_lag_ms: u64,
}

/// Limits enforced per venue (the documented ones by default; tests lower them).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub weight_per_minute: u32,
    pub orders_per_10s: u32,
    /// 429s in a row after which the client is banned (418).
    pub ban_after: u32,
}

/// A REST request being served (see [`VenueState::serving`]).
pub struct Serving<'a>(&'a std::sync::atomic::AtomicU64);

impl Drop for Serving<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

pub struct Credentials {
    pub api_key: String,
    pub api_secret: String,
    pub passphrase: String,
}

/// The sliding windows, each with its running total: an account whose limits were raised
/// (the tick-to-trade bench's) holds tens of thousands of requests in them, and a scan of
/// each on every request would make this exchange, not the runtime, what is measured.
struct LimitState {
    weights: VecDeque<(Instant, u32)>,
    /// The sum of `weights`.
    weight_used: u32,
    orders: VecDeque<Instant>,
    /// Orders of the last minute.
    orders_minute: VecDeque<Instant>,
    /// Orders of the last day, for the longer order-count headers (1M, 1D).
    orders_day: VecDeque<Instant>,
    violations: u32,
    banned_until: Option<Instant>,
}

pub struct VenueState {
    pub kind: Kind,
    pub market: Mutex<Market>,
    pub credentials: Credentials,
    pub faults: Mutex<Faults>,
    pub limits: Limits,
    limit_state: Mutex<LimitState>,
    /// Private pushes, already in the venue's format.
    pub private_tx: broadcast::Sender<String>,
    pub public_tx: broadcast::Sender<(String, String)>,
    /// Fired to drop every WebSocket connection.
    pub disconnect_tx: broadcast::Sender<()>,
    pub listen_keys: Mutex<HashMap<String, Instant>>,
    /// Books as last published, with their update ids.
    pub books: Mutex<depth::Books>,
    /// Requests by path, for tests that check what was called.
    pub calls: Mutex<Vec<String>>,
    /// Placements held by the late-execution fault that have since been processed.
    pub late_served: std::sync::atomic::AtomicU64,
    /// REST requests being served now, and the most ever at once: whether a client
    /// waits for one answer before it sends the next.
    pub concurrent: std::sync::atomic::AtomicU64,
    pub max_concurrent: std::sync::atomic::AtomicU64,
}

/// What a rate-limit check says.
pub enum Admission {
    /// Counts after this request: weight this minute, orders in the last 10 s, minute and
    /// day, and whether it placed orders (only those answers carry order counts).
    Ok { weight: u32, orders: u32, orders_minute: u32, orders_day: u32, placed: bool },
    /// `orders`: the order count was the limit hit (not the request weight).
    TooMany { retry_after: u64, orders: bool },
    Banned { retry_after: u64 },
}

impl VenueState {
    pub fn now_ms() -> i64 {
        runtime::venue::live::clock::system_ms()
    }

    /// The venue's own clock, which a fault may set apart from the machine's.
    pub fn venue_now_ms(&self) -> i64 {
        Self::now_ms() + self.faults.lock().unwrap_or_else(|p| p.into_inner()).clock_ms
    }

    /// The latest trade time the account's trade list shows now (see
    /// `Faults::trade_list_lag_ms`).
    pub fn trade_list_until_ms(&self) -> i64 {
        let lag = self.faults.lock().unwrap_or_else(|p| p.into_inner()).trade_list_lag_ms;
        self.venue_now_ms().saturating_sub(i64::try_from(lag).unwrap_or(i64::MAX))
    }

    /// Counts a request of `weight` (and `orders` new orders) against the limits.
    pub fn admit(&self, weight: u32, orders: u32) -> Admission {
        let now = Instant::now();
        let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        let mut s = self.limit_state.lock().unwrap_or_else(|p| p.into_inner());
        if faults.ban_secs > 0 {
            s.banned_until = Some(now + Duration::from_secs(faults.ban_secs));
            faults.ban_secs = 0;
        }
        if let Some(until) = s.banned_until.filter(|u| *u > now) {
            return Admission::Banned { retry_after: (until - now).as_secs().max(1) };
        }
        while let Some(&(_, w)) = s.weights.front().filter(|(t, _)| now.duration_since(*t) >= Duration::from_secs(60)) {
            s.weights.pop_front();
            s.weight_used = s.weight_used.saturating_sub(w);
        }
        while s.orders.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(10)) {
            s.orders.pop_front();
        }
        let used = s.weight_used;
        let forced = faults.rate_limit > 0;
        if forced {
            faults.rate_limit -= 1;
        }
        if forced || used + weight > self.limits.weight_per_minute || s.orders.len() as u32 + orders > self.limits.orders_per_10s {
            s.violations += 1;
            if s.violations > self.limits.ban_after {
                s.banned_until = Some(now + Duration::from_secs(120));
                return Admission::Banned { retry_after: 120 };
            }
            let retry_after = if forced {
                1
            } else {
                let oldest = if orders > 0 { s.orders.front().map(|t| Duration::from_secs(10).saturating_sub(now.duration_since(*t))) } else { None };
                let w = s.weights.front().map(|(t, _)| Duration::from_secs(60).saturating_sub(now.duration_since(*t)));
                oldest.or(w).unwrap_or(Duration::from_secs(1)).as_secs().max(1)
            };
            let orders_hit = !forced && used + weight <= self.limits.weight_per_minute;
            return Admission::TooMany { retry_after, orders: orders_hit };
        }
        s.violations = 0;
        s.weights.push_back((now, weight));
        s.weight_used = s.weight_used.saturating_add(weight);
        for _ in 0..orders {
            s.orders.push_back(now);
            s.orders_minute.push_back(now);
            s.orders_day.push_back(now);
        }
        while s.orders_minute.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60)) {
            s.orders_minute.pop_front();
        }
        while s.orders_day.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(86_400)) {
            s.orders_day.pop_front();
        }
        let minute = s.orders_minute.len() as u32;
        Admission::Ok { weight: used + weight, orders: s.orders.len() as u32, orders_minute: minute, orders_day: s.orders_day.len() as u32, placed: orders > 0 }
    }

    /// Sends private pushes, applying the push faults.
    pub fn push_private(&self, messages: Vec<String>) {
        let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        for m in messages {
            if faults.drop_pushes > 0 {
                faults.drop_pushes -= 1;
                continue;
            }
            if faults.garbage > 0 {
                faults.garbage -= 1;
                let _ = self.private_tx.send("{\"e\":\"executionReport\",\"s\":".to_string());
                let _ = self.private_tx.send("\u{1}not json at all".to_string());
            }
            let _ = self.private_tx.send(m.clone());
            if faults.duplicate_pushes {
                let _ = self.private_tx.send(m);
            }
        }
    }

    /// Holds a placement back if the late-execution fault is armed (once).
    pub async fn late_placement(&self) {
        let ms = std::mem::take(&mut self.faults.lock().unwrap_or_else(|p| p.into_inner()).late_order_ms);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            self.late_served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Counts a REST request as being served until the guard is dropped.
    pub fn serving(&self) -> Serving<'_> {
        use std::sync::atomic::Ordering;
        let now = self.concurrent.fetch_add(1, Ordering::Relaxed) + 1;
        self.max_concurrent.fetch_max(now, Ordering::Relaxed);
        Serving(&self.concurrent)
    }

    pub async fn stall(&self) {
        let ms = self.faults.lock().unwrap_or_else(|p| p.into_inner()).stall_ms;
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            self.late_served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// How long a USD-M listen key lives without a keepalive (60 minutes per the docs).
    pub fn listen_key_ttl(&self) -> Duration {
        match self.faults.lock().unwrap_or_else(|p| p.into_inner()).listen_key_ttl_ms {
            0 => Duration::from_secs(3600),
            ms => Duration::from_millis(ms),
        }
    }

    /// Takes one placement fault, if any is armed: `Some(true)` fail without executing,
    /// `Some(false)` execute and lose the answer.
    pub fn placement_fault(&self) -> Option<bool> {
        let mut f = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        if f.fail_orders > 0 {
            f.fail_orders -= 1;
            return Some(true);
        }
        if f.unknown_orders > 0 {
            f.unknown_orders -= 1;
            return Some(false);
        }
        None
    }

    fn publish(&self, happenings: &[Happening]) {
        let (private, public) = match self.kind {
            Kind::BinanceSpot | Kind::BinanceUsdm => binance::pushes(self, happenings),
            Kind::Okx => okx::pushes(self, happenings),
        };
        self.push_private(private);
        for p in public {
            let _ = self.public_tx.send(p);
        }
    }

    /// Runs `f` on the market and publishes what happened, book diffs included.
    pub fn with_market<T>(&self, f: impl FnOnce(&mut Market) -> (T, Vec<Happening>)) -> T {
        let (value, happenings, diffs) = {
            let mut market = self.market.lock().unwrap_or_else(|p| p.into_inner());
            let (value, happenings) = f(&mut market);
            let (mut skip, reorder) = {
                let f = self.faults.lock().unwrap_or_else(|p| p.into_inner());
                (f.book_gaps, f.book_reorder)
            };
            let before = skip;
            let mut books = self.books.lock().unwrap_or_else(|p| p.into_inner());
            let mut diffs = books.update(self.kind, &market, Self::now_ms(), &mut skip);
            if reorder && !diffs.is_empty() {
                books.held.append(&mut diffs);
                self.faults.lock().unwrap_or_else(|p| p.into_inner()).book_reorder = false;
            } else if !books.held.is_empty() && !diffs.is_empty() {
                diffs.append(&mut books.held);
            }
            drop(books);
            if skip != before {
                self.faults.lock().unwrap_or_else(|p| p.into_inner()).book_gaps = skip;
            }
            (value, happenings, diffs)
        };
        self.publish(&happenings);
        for d in diffs {
            let _ = self.public_tx.send(d);
        }
        value
    }
}

/// A venue's configuration.
#[derive(Clone)]
pub struct VenueSetup {
    pub listings: Vec<Listing>,
    pub balances: BTreeMap<String, Decimal>,
    pub maker_fee: Decimal,
    pub taker_fee: Decimal,
    pub limits: Limits,
    /// A first trade per symbol, so books have liquidity from the start.
    pub opening_prices: Vec<(String, Decimal)>,
}

pub struct Setup {
    pub api_key: String,
    pub api_secret: String,
    pub passphrase: String,
    pub spot: VenueSetup,
    pub usdm: VenueSetup,
    pub okx: VenueSetup,
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap_or_default()
}

impl Setup {
    /// BTCUSDT on the Binance venues, BTC-USDT and BTC-USDT-SWAP on OKX, with a little
    /// liquidity around 30000 and the documented rate limits.
    pub fn demo(api_key: &str, api_secret: &str, passphrase: &str) -> Setup {
        let liquidity = Some(LiquidityProfile { levels: 5, step: d("0.5"), qty: d("2") });
        let btc = |symbol: &str, lot: &str, ct: &str| Listing {
            symbol: symbol.into(),
            base: "BTC".into(),
            quote: "USDT".into(),
            tick_size: d("0.1"),
            lot_size: d(lot),
            min_qty: d(lot),
            min_notional: d("5"),
            liquidity: liquidity.clone(),
            contract_value: d(ct),
        };
        let balances: BTreeMap<String, Decimal> = [("BTC".to_string(), d("100")), ("USDT".to_string(), d("10000000"))].into();
        let venue = |listings: Vec<Listing>, weight: u32, orders: u32| VenueSetup {
            opening_prices: listings.iter().map(|l| (l.symbol.clone(), d("30000"))).collect(),
            listings,
            balances: balances.clone(),
            maker_fee: d("0.0002"),
            taker_fee: d("0.0004"),
            limits: Limits { weight_per_minute: weight, orders_per_10s: orders, ban_after: 5 },
        };
        Setup {
            api_key: api_key.into(),
            api_secret: api_secret.into(),
            passphrase: passphrase.into(),
            spot: venue(vec![btc("BTCUSDT", "0.00001", "1")], 6000, 100),
            usdm: venue(vec![btc("BTCUSDT", "0.001", "1")], 2400, 300),
            okx: venue(vec![btc("BTC-USDT", "0.00000001", "1"), btc("BTC-USDT-SWAP", "0.0001", "0.01")], 6000, 300),
        }
    }
}

/// A running local exchange.
pub struct Running {
    pub spot: SocketAddr,
    pub usdm: SocketAddr,
    pub okx: SocketAddr,
    pub states: HashMap<&'static str, Arc<VenueState>>,
}

fn venue_state(kind: Kind, name: &str, setup: &VenueSetup, setup_all: &Setup) -> Arc<VenueState> {
    let perpetual = kind == Kind::BinanceUsdm;
    let mut market = Market::new(name, perpetual, setup.listings.clone(), setup.balances.clone(), setup.maker_fee, setup.taker_fee);
    market.reuse_only_after_fill = kind == Kind::BinanceSpot;
    for (symbol, price) in &setup.opening_prices {
        let _ = market.print(symbol, *price, d("0.001"), Side::Buy, VenueState::now_ms());
    }
    let mut books = depth::Books::default();
    books.update(kind, &market, VenueState::now_ms(), &mut 0);
    Arc::new(VenueState {
        kind,
        market: Mutex::new(market),
        credentials: Credentials { api_key: setup_all.api_key.clone(), api_secret: setup_all.api_secret.clone(), passphrase: setup_all.passphrase.clone() },
        faults: Mutex::new(Faults::default()),
        limits: setup.limits,
        limit_state: Mutex::new(LimitState { weights: VecDeque::new(), weight_used: 0, orders: VecDeque::new(), orders_minute: VecDeque::new(), orders_day: VecDeque::new(), violations: 0, banned_until: None }),
        private_tx: broadcast::channel(65_536).0,
        public_tx: broadcast::channel(65_536).0,
        disconnect_tx: broadcast::channel(16).0,
        listen_keys: Mutex::new(HashMap::new()),
        books: Mutex::new(books),
        calls: Mutex::new(Vec::new()),
        late_served: std::sync::atomic::AtomicU64::new(0),
        concurrent: std::sync::atomic::AtomicU64::new(0),
        max_concurrent: std::sync::atomic::AtomicU64::new(0),
    })
}

#[derive(Deserialize)]
struct PrintRequest {
    symbol: String,
    price: Decimal,
    qty: Decimal,
    /// The aggressor: `BUY` lifts asks (our sells fill), `SELL` hits bids.
    side: String,
}

async fn control_print(State(state): State<Arc<VenueState>>, Json(p): Json<PrintRequest>) -> impl IntoResponse {
    let side = if p.side.eq_ignore_ascii_case("buy") { Side::Buy } else { Side::Sell };
    let result = state.with_market(|m| match m.print(&p.symbol, p.price, p.qty, side, VenueState::now_ms()) {
        Ok(h) => (Ok(()), h),
        Err(e) => (Err(e.0), Vec::new()),
    });
    match result {
        Ok(()) => (axum::http::StatusCode::OK, "ok".to_string()),
        Err(e) => (axum::http::StatusCode::BAD_REQUEST, e),
    }
}

async fn control_faults(State(state): State<Arc<VenueState>>, Json(faults): Json<Faults>) -> impl IntoResponse {
    state.market.lock().unwrap_or_else(|p| p.into_inner()).fill_cap = faults.partial_fill;
    *state.faults.lock().unwrap_or_else(|p| p.into_inner()) = faults;
    "ok"
}

async fn control_disconnect(State(state): State<Arc<VenueState>>) -> impl IntoResponse {
    let _ = state.disconnect_tx.send(());
    "ok"
}

/// Our account as the exchange sees it: orders and trades, for tests to check against.
async fn control_account(State(state): State<Arc<VenueState>>) -> impl IntoResponse {
    let market = state.market.lock().unwrap_or_else(|p| p.into_inner());
    let mut trades = Vec::new();
    let mut orders = Vec::new();
    for l in market.listings() {
        for t in market.trades_since(&l.symbol, 0) {
            trades.push(serde_json::json!({"symbol": t.symbol, "tradeId": t.trade_id, "clientOrderId": t.client_order_id, "side": format!("{:?}", t.side).to_uppercase(), "price": t.price.to_string(), "qty": t.qty.to_string(), "maker": t.maker}));
        }
        for o in market.open_orders(Some(&l.symbol)) {
            orders.push(serde_json::json!({"symbol": o.symbol, "clientOrderId": o.client_order_id, "side": format!("{:?}", o.side).to_uppercase(), "qty": o.qty.to_string(), "price": o.price().to_string()}));
        }
    }
    let positions: Vec<serde_json::Value> = market.positions().into_iter().map(|(s, q)| serde_json::json!({"symbol": s, "net": q.to_string()})).collect();
    let mut calls: BTreeMap<String, u64> = BTreeMap::new();
    for c in state.calls.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        *calls.entry(c.clone()).or_default() += 1;
    }
    let late = state.late_served.load(std::sync::atomic::Ordering::Relaxed);
    let max_concurrent = state.max_concurrent.load(std::sync::atomic::Ordering::Relaxed);
    Json(serde_json::json!({"trades": trades, "openOrders": orders, "positions": positions, "calls": calls, "lateServed": late, "maxConcurrentRequests": max_concurrent}))
}

fn control_routes() -> Router<Arc<VenueState>> {
    Router::new()
        .route("/_local/print", post(control_print))
        .route("/_local/faults", post(control_faults))
        .route("/_local/disconnect", post(control_disconnect))
        .route("/_local/account", get(control_account))
}

/// Binds the three venues on `host` (port 0: free ports) and serves them on the current
/// tokio runtime.
pub async fn serve(setup: Setup, host: &str, ports: [u16; 3]) -> std::io::Result<Running> {
    let spot = venue_state(Kind::BinanceSpot, "binance-spot", &setup.spot, &setup);
    let usdm = venue_state(Kind::BinanceUsdm, "binance-usdm", &setup.usdm, &setup);
    let okx_state = venue_state(Kind::Okx, "okx", &setup.okx, &setup);
    let mut addrs = Vec::new();
    for (state, port) in [(spot.clone(), ports[0]), (usdm.clone(), ports[1]), (okx_state.clone(), ports[2])] {
        let routes = match state.kind {
            Kind::BinanceSpot | Kind::BinanceUsdm => binance::routes(),
            Kind::Okx => okx::routes(),
        };
        let app = routes.merge(control_routes()).with_state(state);
        let listener = tokio::net::TcpListener::bind((host, port)).await?;
        addrs.push(listener.local_addr()?);
        // As a venue's servers do: each frame and answer leaves when written, not held
        // back by Nagle's algorithm for the client's delayed acknowledgement (which
        // bunched the pushes of a busy private stream by milliseconds).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
    }
    let states = HashMap::from([("binance-spot", spot), ("binance-usdm", usdm), ("okx", okx_state)]);
    Ok(Running { spot: addrs[0], usdm: addrs[1], okx: addrs[2], states })
}

/// A local exchange on its own threads, for synchronous tests.
pub struct Background {
    pub running: Running,
    _runtime: tokio::runtime::Runtime,
}

impl Background {
    pub fn start(setup: Setup) -> std::io::Result<Background> {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("local-exchange").enable_all().build()?;
        let running = runtime.block_on(serve(setup, "127.0.0.1", [0, 0, 0]))?;
        Ok(Background { running, _runtime: runtime })
    }
}
