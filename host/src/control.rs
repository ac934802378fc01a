//! The control API: an HTTP listener, on 127.0.0.1 unless configured otherwise, through
//! which an operator sees a running runtime and steers it: strategies, positions, open
//! orders, recent fills and risk-limit use; halt, resume or stop a strategy, swap it to a
//! given file, reload the config, and the kill switch.
//!
//! Every request needs `Authorization: Bearer <token>`; a missing or wrong one is a 401,
//! logged without the token. The listener runs on its own thread and talks to the engine
//! through the same control channel as the file watcher, so everything it changes is
//! applied between two batches, like a hot swap.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::engine::{Control, Controller, Query};
use crate::plugin::PluginHost;
use crate::secrets::Secret;

/// How long a request waits for the engine to answer between two batches.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);
/// The largest request body read: the only bodies are a reason, a file path.
const MAX_BODY: usize = 16 * 1024;

/// What the listener needs from the process: where the engine listens, how to load a
/// component and where the config file is.
pub struct Wiring {
    pub controller: Controller,
    pub plugin: PluginHost,
    pub config_path: Option<PathBuf>,
    /// `GET /metrics` behind the token even on loopback.
    pub metrics_need_token: bool,
}

struct Shared {
    /// Dashboard event streams open now (each asks the engine twice a second).
    streams: std::sync::atomic::AtomicUsize,
    controller: Controller,
    /// SHA-256 of the token: requests are compared digest to digest, in constant time.
    token_digest: [u8; 32],
    plugin: PluginHost,
    config_path: Option<PathBuf>,
}

/// The running listener; dropping it stops it at once, [`ControlServer::shutdown`] lets
/// the answers in flight (the kill switch's report) go out first.
pub struct ControlServer {
    pub addr: SocketAddr,
    runtime: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<()>>,
}

/// How long a shutdown waits for the answers in flight.
const DRAIN_WITHIN: Duration = Duration::from_secs(5);

impl ControlServer {
    /// Stops taking requests and waits (a few seconds at most) for those being answered.
    pub fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            // The timer is made inside the runtime: it needs its clock.
            let _ = self.runtime.block_on(async move { tokio::time::timeout(DRAIN_WITHIN, served).await });
        }
    }
}

/// Why the listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control API on {0}: a non-loopback address needs a token (RUNTIME_CONTROL_TOKEN or control.token_file); refusing to listen without one")]
    OpenWithoutToken(SocketAddr),
    #[error("control API on {addr}: {reason}")]
    Listen { addr: SocketAddr, reason: String },
}

/// Binds `listen` (port 0: a free one) and serves the API on a thread of its own. `token`
/// none is allowed on a loopback address only; the caller then makes one (see
/// [`new_token`]).
pub fn start(listen: SocketAddr, token: Option<Secret>, wiring: Wiring) -> Result<ControlServer, ControlError> {
    let Some(token) = token else { return Err(ControlError::OpenWithoutToken(listen)) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("control")
        .on_thread_start(crate::affinity::keep_off_engine_core)
        .enable_all()
        .build()
        .map_err(|e| ControlError::Listen { addr: listen, reason: e.to_string() })?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind(listen)).map_err(|e| ControlError::Listen { addr: listen, reason: e.to_string() })?;
    let addr = listener.local_addr().map_err(|e| ControlError::Listen { addr: listen, reason: e.to_string() })?;
    let shared = Arc::new(Shared {
        streams: std::sync::atomic::AtomicUsize::new(0),
        controller: wiring.controller,
        token_digest: Sha256::digest(token.expose().as_bytes()).into(),
        plugin: wiring.plugin,
        config_path: wiring.config_path,
    });
    // Prometheus scrapes without a token on loopback unless told otherwise; anywhere else
    // the token is needed like for everything.
    let metrics_open = listen.ip().is_loopback() && !wiring.metrics_need_token;
    // The dashboard's page and its event stream are read-only, like the metrics, and
    // follow the same rule; its actions go to the guarded endpoints with the token.
    let metrics_route = || Router::new().route("/metrics", get(metrics)).route("/", get(dashboard)).route("/api/events", get(events));
    let guarded = if metrics_open { Router::new() } else { metrics_route() };
    let open = if metrics_open { metrics_route() } else { Router::new() };
    let app = guarded
        .route("/api/strategies", get(strategies))
        .route("/api/positions", get(|s: State<Arc<Shared>>| ask(s, Query::Positions)))
        .route("/api/orders", get(|s: State<Arc<Shared>>| ask(s, Query::Orders)))
        .route("/api/fills", get(|s: State<Arc<Shared>>| ask(s, Query::Fills)))
        .route("/api/risk", get(|s: State<Arc<Shared>>| ask(s, Query::Risk)))
        .route("/api/strategies/{name}/halt", post(halt))
        .route("/api/strategies/{name}/resume", post(resume))
        .route("/api/strategies/{name}/stop", post(stop))
        .route("/api/strategies/{name}/swap", post(swap))
        .route("/api/config/reload", post(reload))
        .route("/api/kill", post(kill))
        .layer(middleware::from_fn_with_state(shared.clone(), authorize))
        .merge(open)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(shared);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = runtime.spawn(async move {
        let serving = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        if let Err(error) = serving.await {
            tracing::error!("control API stopped: {error}");
        }
    });
    tracing::info!(%addr, "control API listening");
    Ok(ControlServer { addr, runtime, stop: Some(stop), served: Some(served) })
}

/// A fresh random token (256 bits, hex) for a loopback listener started without one.
pub fn new_token() -> Secret {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    Secret::new(hex::encode(bytes))
}

/// Writes a generated token where only its owner can read it.
pub fn write_token(path: &std::path::Path, token: &Secret) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path)?;
    writeln!(file, "{}", token.expose())
}

async fn authorize(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let given = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    let ok = given.is_some_and(|token| {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        digest.iter().zip(shared.token_digest.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    });
    if !ok {
        let peer = request.extensions().get::<axum::extract::ConnectInfo<SocketAddr>>().map(|c| c.0.to_string()).unwrap_or_default();
        tracing::warn!(method = %request.method(), path = %request.uri().path(), peer, "control API: refused, {} bearer token", if given.is_some() { "wrong" } else { "no" });
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "a valid bearer token is required"}))).into_response();
    }
    next.run(request).await
}

/// An answer other than 200: its status and a JSON body saying why.
type Refused = (StatusCode, Json<Value>);

fn refused(status: StatusCode, error: impl Into<String>) -> Refused {
    (status, Json(json!({"error": error.into()})))
}

fn send(shared: &Shared, control: Control) -> Result<(), Refused> {
    let sent = shared.controller.send(control);
    sent.map_err(|_| refused(StatusCode::SERVICE_UNAVAILABLE, "the engine has stopped"))
}

/// Asks the engine and waits for its answer between two batches.
async fn query(shared: &Shared, what: Query) -> Result<Value, Refused> {
    let (reply, answer) = std::sync::mpsc::channel();
    send(shared, Control::Query { what, reply })?;
    let waited = tokio::task::spawn_blocking(move || answer.recv_timeout(ANSWER_WITHIN)).await;
    match waited {
        Ok(Ok(value)) => Ok(value),
        _ => Err(refused(StatusCode::SERVICE_UNAVAILABLE, "the engine did not answer")),
    }
}

async fn ask(State(shared): State<Arc<Shared>>, what: Query) -> Response {
    match query(&shared, what).await {
        Ok(value) => Json(value).into_response(),
        Err(refused) => refused.into_response(),
    }
}

/// The dashboard page, with plotly.js embedded (no network needed to draw its chart).
async fn dashboard() -> Response {
    static PAGE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| include_str!("dashboard.html").replace("<!--PLOTLY-->", &plotly::Plot::offline_js_sources()));
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE.as_str()).into_response()
}

/// Dashboard streams served at once; past it a new one is refused (503).
const MAX_STREAMS: usize = 16;
/// How often a stream sends the engine's snapshot.
const STREAM_EVERY: Duration = Duration::from_millis(500);

/// Counts an open stream; the count goes down when the stream is dropped (the client left).
struct StreamSlot(Arc<Shared>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Server-sent events: the dashboard snapshot (`Query::Dashboard`) twice a second.
async fn events(State(shared): State<Arc<Shared>>) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    if shared.streams.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= MAX_STREAMS {
        shared.streams.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        return refused(StatusCode::SERVICE_UNAVAILABLE, format!("{MAX_STREAMS} dashboard streams are open already")).into_response();
    }
    let slot = StreamSlot(shared);
    let stream = futures_util::stream::unfold((slot, true), |(slot, first)| async move {
        if !first {
            tokio::time::sleep(STREAM_EVERY).await;
        }
        let data = match query(&slot.0, Query::Dashboard).await {
            Ok(value) => value.to_string(),
            Err(_) => json!({"error": "the engine did not answer"}).to_string(),
        };
        Some((Ok::<_, std::convert::Infallible>(Event::default().data(data)), (slot, false)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

/// Prometheus text format, version 0.0.4.
async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    match query(&shared, Query::Metrics).await {
        Ok(Value::String(text)) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response(),
        Ok(_) => refused(StatusCode::INTERNAL_SERVER_ERROR, "the engine did not answer with metrics").into_response(),
        Err(refused) => refused.into_response(),
    }
}

async fn strategies(state: State<Arc<Shared>>) -> Response {
    ask(state, Query::Strategies).await
}

/// The strategy's entry in the engine's list, or a 404 naming it.
async fn strategy(shared: &Shared, name: &str) -> Result<Value, Refused> {
    let all = query(shared, Query::Strategies).await?;
    all["strategies"]
        .as_array()
        .and_then(|list| list.iter().find(|s| s["name"] == name).cloned())
        .ok_or_else(|| refused(StatusCode::NOT_FOUND, format!("no strategy named {}", crate::model::shown(name, 40))))
}

fn reason_of(body: &Option<Json<Value>>) -> String {
    body.as_ref().and_then(|b| b.get("reason")).and_then(|r| r.as_str()).map(|r| crate::model::shown(r, 200)).unwrap_or_else(|| "no reason given".into())
}

fn done(did: String) -> Response {
    tracing::info!("control API: {did}");
    Json(json!({"ok": true, "did": did})).into_response()
}

async fn halt(State(shared): State<Arc<Shared>>, Path(name): Path<String>, body: Option<Json<Value>>) -> Response {
    if let Err(refused) = strategy(&shared, &name).await {
        return refused.into_response();
    }
    let reason = reason_of(&body);
    match send(&shared, Control::Halt { strategy: name.clone(), reason: reason.clone() }) {
        Ok(()) => done(format!("halted {name} ({reason})")),
        Err(refused) => refused.into_response(),
    }
}

async fn resume(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    if let Err(refused) = strategy(&shared, &name).await {
        return refused.into_response();
    }
    match send(&shared, Control::Resume { strategy: name.clone() }) {
        Ok(()) => done(format!("resumed {name}")),
        Err(refused) => refused.into_response(),
    }
}

async fn stop(State(shared): State<Arc<Shared>>, Path(name): Path<String>, body: Option<Json<Value>>) -> Response {
    if let Err(refused) = strategy(&shared, &name).await {
        return refused.into_response();
    }
    let reason = reason_of(&body);
    match send(&shared, Control::Stop { strategy: name.clone(), reason: reason.clone() }) {
        Ok(()) => done(format!("stopped {name} ({reason})")),
        Err(refused) => refused.into_response(),
    }
}

/// Loads the file (compiled off the engine's thread) and swaps it into every instance of
/// the strategy's component, as a changed file would.
async fn swap(State(shared): State<Arc<Shared>>, Path(name): Path<String>, Json(body): Json<Value>) -> Response {
    let entry = match strategy(&shared, &name).await {
        Ok(entry) => entry,
        Err(refused) => return refused.into_response(),
    };
    let Some(file) = body.get("file").and_then(|f| f.as_str()).map(PathBuf::from) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "the body needs \"file\": the path of the new version"}))).into_response();
    };
    let component = entry["component"].as_str().unwrap_or_default().to_string();
    let plugin = shared.plugin.clone();
    let path = file.clone();
    let loaded = tokio::task::spawn_blocking(move || plugin.load(&path)).await;
    match loaded {
        Ok(Ok(loaded)) => {
            let version = loaded.hash.clone();
            match send(&shared, Control::Swap { component: component.clone(), loaded: Arc::new(loaded), prepared: Vec::new() }) {
                Ok(()) => done(format!("swap of {component} (strategy {name}) to {} version {version} handed to the engine", file.display())),
                Err(refused) => refused.into_response(),
            }
        }
        Ok(Err(error)) => (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({"error": error.to_string()}))).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": error.to_string()}))).into_response(),
    }
}

async fn reload(State(shared): State<Arc<Shared>>) -> Response {
    let Some(path) = shared.config_path.clone() else {
        return (StatusCode::CONFLICT, Json(json!({"error": "this runtime was not started from a config file"}))).into_response();
    };
    match Config::load(&path) {
        Ok(config) => match send(&shared, Control::Config(Box::new(config))) {
            Ok(()) => done(format!("config {} reloaded and handed to the engine", path.display())),
            Err(refused) => refused.into_response(),
        },
        Err(error) => (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({"error": error.to_string()}))).into_response(),
    }
}

/// The kill switch; answers with its report once every cancel is confirmed or given up on.
/// `{"account": true}` also has each live venue cancel every open order of the account
/// (`false`: only the runtime's own; no body: `[risk] kill_cancels_account`).
async fn kill(State(shared): State<Arc<Shared>>, body: Option<Json<Value>>) -> Response {
    let account = match body.as_ref().and_then(|Json(b)| b.get("account")) {
        None => None,
        Some(Value::Bool(account)) => Some(*account),
        Some(other) => return (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({"error": format!("account must be true or false, not {}", crate::model::shown(&other.to_string(), 40))}))).into_response(),
    };
    let (reply, answer) = std::sync::mpsc::channel();
    if let Err(refused) = send(&shared, Control::Kill { why: "control API".into(), account, reply: Some(reply) }) {
        return refused.into_response();
    }
    tracing::warn!(account = ?account, "control API: kill switch");
    let waited = tokio::task::spawn_blocking(move || answer.recv_timeout(ANSWER_WITHIN + Duration::from_secs(20))).await;
    match waited {
        Ok(Ok(report)) => Json(report).into_response(),
        _ => (StatusCode::ACCEPTED, Json(json!({"error": "the kill switch is running; its report is in the runtime's log"}))).into_response(),
    }
}
