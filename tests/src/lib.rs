//! Helpers for the end-to-end tests: where the built components are, and a runtime set
//! up the way the binary sets it up.
//!
//! The components are built by `strategies/build.sh` (the test command runs it first).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use runtime::config::Config;
use runtime::engine::Engine;
use runtime::plugin::{LoadedComponent, PluginHost, SandboxLimits};

pub mod control;
pub mod soak;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn built(path: PathBuf) -> PathBuf {
    assert!(path.is_file(), "{} is missing: run strategies/build.sh first (the README's test command does)", path.display());
    path
}

/// A test guest as a component.
pub fn guest(name: &str) -> PathBuf {
    built(root().join("target/guests").join(format!("{name}.wasm")))
}

/// A test guest as a core module with the contract embedded.
pub fn guest_core(name: &str) -> PathBuf {
    built(root().join("target/guests/core").join(format!("{name}.wasm")))
}

/// A shipped strategy or the example, as built into strategies/.
pub fn strategy(name: &str) -> PathBuf {
    built(root().join("strategies").join(format!("{name}.wasm")))
}

/// The runtime's log, at debug, into the test's captured output: printed only for a test
/// that fails, so a failure that happens once in many runs can be read afterwards.
/// `RUNTIME_TEST_LOG` (an env filter) overrides the level.
pub fn capture_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_env("RUNTIME_TEST_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("runtime=debug,warn"));
        // Another subscriber set first (a test's own) is left in place.
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    });
}

pub fn plugin_host() -> PluginHost {
    plugin_host_with(Duration::from_millis(200), 64 << 20)
}

pub fn plugin_host_with(call_timeout: Duration, memory_bytes: usize) -> PluginHost {
    PluginHost::new(SandboxLimits { call_timeout, memory_bytes }).unwrap_or_else(|e| panic!("wasm engine: {e:#}"))
}

/// Loads components by name from paths, as `--strategies` does.
pub fn load_all(plugin: &PluginHost, files: &[(&str, &Path)]) -> HashMap<String, Arc<LoadedComponent>> {
    files
        .iter()
        .map(|(name, path)| (name.to_string(), Arc::new(plugin.load(path).unwrap_or_else(|e| panic!("{e}")))))
        .collect()
}

/// One paper venue `paper` with BTCUSDT on a seeded synthetic feed of `prints` trades,
/// one per millisecond, with background liquidity.
pub fn synthetic_venue(prints: u64) -> String {
    format!(
        r#"
[[venue]]
name = "paper"
kind = "paper"
settlement = "spot"
maker_fee = "0.0002"
taker_fee = "0.0004"
balances = {{ USDT = "1000000", BTC = "10" }}
[[venue.instrument]]
symbol = "BTCUSDT"
base = "BTC"
quote = "USDT"
tick_size = "0.1"
lot_size = "0.001"
min_qty = "0.001"
min_notional = "5"
feed = {{ kind = "synthetic", seed = 42, start_price = "10000", start_ms = 1600000000000, interval_ms = 1, count = {prints} }}
liquidity = {{ levels = 5, step = "0.5", qty = "1" }}
"#
    )
}

/// A paper venue `name` with BTCUSDT replaying the demo's recorded trades file (by its
/// absolute path, so the config works from any folder), with background liquidity.
/// `balances` is the inside of the TOML table, e.g. `USDT = "1000000"`.
pub fn recorded_venue(name: &str, settlement: &str, balances: &str) -> String {
    let file = root().join("config/market-data/BTCUSDT-trades-2020-02-22.csv");
    replay_venue(name, settlement, balances, &file, Some(r#"{ levels = 5, step = "0.5", qty = "2" }"#))
}

/// A paper venue `name` with BTCUSDT replaying the trades file `file`; `liquidity` is the
/// background ladder's TOML table, none for a venue with only the recorded prints.
pub fn replay_venue(name: &str, settlement: &str, balances: &str, file: &Path, liquidity: Option<&str>) -> String {
    let liquidity = liquidity.map(|table| format!("liquidity = {table}\n")).unwrap_or_default();
    format!(
        r#"
[[venue]]
name = "{name}"
kind = "paper"
settlement = "{settlement}"
maker_fee = "0.0002"
taker_fee = "0.0004"
balances = {{ {balances} }}
[[venue.instrument]]
symbol = "BTCUSDT"
base = "BTC"
quote = "USDT"
tick_size = "0.01"
lot_size = "0.001"
min_qty = "0.001"
min_notional = "5"
feed = {{ kind = "replay", file = "{}" }}
{liquidity}"#,
        file.display()
    )
}

pub fn parse_config(text: &str) -> Config {
    Config::parse(text, &root()).unwrap_or_else(|e| panic!("config: {e}"))
}

/// The engine for a test, set up as the binary sets it up, its log captured (see
/// [`capture_logs`]).
pub fn engine(config: &str, plugin: &PluginHost, files: &[(&str, &Path)]) -> Engine {
    capture_logs();
    engine_unlogged(config, plugin, files)
}

/// As [`engine`], with no log subscriber: for the benchmarks, whose figures are the
/// runtime's own work, not a log's formatting and writes on the engine's thread.
pub fn engine_unlogged(config: &str, plugin: &PluginHost, files: &[(&str, &Path)]) -> Engine {
    let components = load_all(plugin, files);
    Engine::new(parse_config(config), &components, plugin.clone()).unwrap_or_else(|e| panic!("{e}"))
}

/// What a strategy sent, in order: (client order id, side, limit price, qty).
pub fn journal(engine: &Engine, strategy: &str) -> Vec<(String, runtime::model::Side, Option<runtime::model::Decimal>, runtime::model::Decimal)> {
    let index = engine.slots().iter().position(|s| s.name == strategy).unwrap_or(usize::MAX);
    engine
        .journal()
        .iter()
        .filter(|e| e.strategy.0 as usize == index)
        .map(|e| {
            let price = match e.request.order_type {
                runtime::model::OrderType::Limit { price, .. } => Some(price),
                runtime::model::OrderType::Market => None,
            };
            (e.request.client_order_id.clone(), e.request.side, price, e.request.qty)
        })
        .collect()
}

/// Reads a counter guest's JSON snapshot.
pub fn counter_state(engine: &mut Engine, name: &str) -> serde_json::Value {
    let bytes = engine.snapshot_strategy(name).unwrap_or_else(|| panic!("no running strategy {name}")).unwrap_or_else(|t| panic!("{t}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("counter state: {e}"))
}

/// A real redis-server on a free loopback port, in a folder of its own, stopped on drop.
/// Append-only with fsync on every write, so a restart keeps what was acknowledged.
pub struct RedisServer {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: std::process::Child,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or_else(|e| panic!("{e}"));
        let child = Self::spawn(port, dir.path());
        RedisServer { port, dir, child }
    }

    fn spawn(port: u16, dir: &Path) -> std::process::Child {
        use std::io::BufRead;
        let mut child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--appendonly", "yes", "--appendfsync", "always", "--save", ""])
            .arg("--dir")
            .arg(dir)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("redis-server (the test command installs it): {e}"));
        // Ready when it says so on its own log, not after some sleep.
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("redis-server stdout"));
        let mut lines = std::io::BufReader::new(stdout).lines();
        loop {
            match lines.next() {
                Some(Ok(line)) if line.contains("Ready to accept connections") => break,
                Some(Ok(_)) => continue,
                _ => panic!("redis-server exited before it was ready"),
            }
        }
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        child
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL) without a chance to save more than its AOF has.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port and folder.
    pub fn restart(&mut self) {
        self.kill();
        self.child = Self::spawn(self.port, self.dir.path());
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The runtime binary, as `tests/run.sh` builds it before the tests.
pub fn runtime_binary() -> PathBuf {
    built(root().join("target/release/runtime"))
}

/// The local exchange on free ports, with a client for its `/_local/` controls.
pub struct Exchange {
    pub background: local_exchange::Background,
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
}

pub const KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
pub const SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
pub const PASSPHRASE: &str = "local-passphrase";

impl Exchange {
    pub fn start() -> Exchange {
        Exchange::start_with(local_exchange::Setup::demo(KEY, SECRET, PASSPHRASE))
    }

    /// With the demo setup changed (limits, balances): its key, secret and passphrase must
    /// stay [`KEY`], [`SECRET`] and [`PASSPHRASE`].
    pub fn start_with(setup: local_exchange::Setup) -> Exchange {
        let background = local_exchange::Background::start(setup).unwrap_or_else(|e| panic!("local exchange: {e}"));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
        runtime::venue::live::ws::install_tls_provider();
        Exchange { background, runtime, http: reqwest::Client::new() }
    }

    pub fn addr(&self, venue: &str) -> std::net::SocketAddr {
        let r = &self.background.running;
        match venue {
            "binance-spot" => r.spot,
            "binance-usdm" => r.usdm,
            _ => r.okx,
        }
    }

    fn post(&self, venue: &str, path: &str, body: serde_json::Value) {
        let url = format!("http://{}{path}", self.addr(venue));
        let status = self.runtime.block_on(async { self.http.post(&url).json(&body).send().await.map(|r| r.status()) });
        assert!(status.as_ref().is_ok_and(|s| s.is_success()), "{url}: {status:?}");
    }

    /// A trade by the rest of the market on `venue`.
    pub fn print(&self, venue: &str, symbol: &str, price: &str, qty: &str, aggressor: &str) {
        self.post(venue, "/_local/print", serde_json::json!({"symbol": symbol, "price": price, "qty": qty, "side": aggressor}));
    }

    /// A client for the rest of the market's trades on `venue` that can run on a thread of
    /// its own (this one's runtime serves one thread).
    pub fn printer(&self, venue: &str) -> Printer {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
        Printer { url: format!("http://{}/_local/print", self.addr(venue)), runtime, http: reqwest::Client::new() }
    }

    pub fn faults(&self, venue: &str, faults: serde_json::Value) {
        self.post(venue, "/_local/faults", faults);
    }

    pub fn disconnect(&self, venue: &str) {
        self.post(venue, "/_local/disconnect", serde_json::json!({}));
    }

    /// An order placed on a Binance venue's account by another program than the runtime
    /// (a person at the venue's website, another bot): signed as the docs say, by hand.
    pub fn place_by_hand(&self, venue: &str, symbol: &str, side: &str, price: &str, qty: &str, client_order_id: &str) {
        use hmac::Mac;
        let path = if venue == "binance-usdm" { "/fapi/v1/order" } else { "/api/v3/order" };
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default();
        let query = format!("symbol={symbol}&side={side}&type=LIMIT&timeInForce=GTC&price={price}&quantity={qty}&newClientOrderId={client_order_id}&timestamp={now}");
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        mac.update(query.as_bytes());
        let url = format!("http://{}{path}?{query}&signature={}", self.addr(venue), hex::encode(mac.finalize().into_bytes()));
        let answer = self.runtime.block_on(async { self.http.post(&url).header("X-MBX-APIKEY", KEY).send().await?.text().await });
        assert!(answer.as_ref().is_ok_and(|a| a.contains(client_order_id)), "{url}: {answer:?}");
    }

    /// The account as the exchange sees it: trades, open orders, positions.
    pub fn account(&self, venue: &str) -> serde_json::Value {
        let url = format!("http://{}/_local/account", self.addr(venue));
        self.runtime
            .block_on(async { self.http.get(&url).send().await?.json::<serde_json::Value>().await })
            .unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    /// Puts the exchange's credentials where [`Exchange::venue_section`] refers to them.
    /// The same values for every test in a process, so parallel tests agree.
    pub fn set_credentials() {
        std::env::set_var("E2E_LIVE_KEY", KEY);
        std::env::set_var("E2E_LIVE_SECRET", SECRET);
        std::env::set_var("E2E_LIVE_PASSPHRASE", PASSPHRASE);
    }

    /// The `[[venue]]` section for one of its venues, with credentials referenced from
    /// the environment (see [`Exchange::set_credentials`]).
    pub fn venue_section(&self, name: &str, kind: &str, symbol: &str, base: &str) -> String {
        let (key_env, secret_env, pass_env) = ("E2E_LIVE_KEY", "E2E_LIVE_SECRET", "E2E_LIVE_PASSPHRASE");
        let a = self.addr(kind);
        let (private, public) = match kind {
            "binance-spot" => (format!("ws://{a}/ws-api/v3"), format!("ws://{a}")),
            "binance-usdm" => (format!("ws://{a}"), format!("ws://{a}")),
            _ => (format!("ws://{a}/ws/v5/private"), format!("ws://{a}/ws/v5/public")),
        };
        let passphrase = if kind == "okx" { format!("passphrase = \"env:{pass_env}\"\ntrade_mode = \"cross\"\n") } else { String::new() };
        format!(
            r#"
[[venue]]
name = "{name}"
kind = "{kind}"
[venue.connection]
rest_url = "http://{a}"
private_ws_url = "{private}"
public_ws_url = "{public}"
api_key = "env:{key_env}"
api_secret = "env:{secret_env}"
{passphrase}
[[venue.instrument]]
symbol = "{symbol}"
base = "{base}"
quote = "USDT"
"#
        )
    }
}

/// Prints the rest of the market's trades on one venue of the local exchange.
pub struct Printer {
    url: String,
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
}

impl Printer {
    pub fn print(&self, symbol: &str, price: &str, qty: &str, aggressor: &str) {
        let body = serde_json::json!({"symbol": symbol, "price": price, "qty": qty, "side": aggressor});
        let status = self.runtime.block_on(async { self.http.post(&self.url).json(&body).send().await.map(|r| r.status()) });
        assert!(status.as_ref().is_ok_and(|s| s.is_success()), "{}: {status:?}", self.url);
    }
}

/// Bids (best first) and asks (best first) as (price, qty).
pub type BookSides = (Vec<(runtime::model::Decimal, runtime::model::Decimal)>, Vec<(runtime::model::Decimal, runtime::model::Decimal)>);

impl Exchange {
    /// The exchange's own book of `symbol`, as last published: best `depth` levels a side,
    /// in base units.
    pub fn book(&self, venue: &str, symbol: &str, depth: usize) -> BookSides {
        let state = &self.background.running.states[venue];
        let books = state.books.lock().unwrap_or_else(|p| p.into_inner());
        let track = books.by_symbol.get(symbol).cloned().unwrap_or_default();
        (track.bids.iter().rev().take(depth).map(|(p, q)| (*p, *q)).collect(), track.asks.iter().take(depth).map(|(p, q)| (*p, *q)).collect())
    }
}
