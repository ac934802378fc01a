//! The runtime's configuration file: strict TOML, validated whole before anything runs.
//!
//! Unknown keys are errors (a typo must not silently fall back to a default), names are
//! validated newtypes, prices and quantities are decimal strings (a TOML float is
//! refused: it is not exact), and defaults live here and nowhere else. Secrets never
//! appear in this file: live venues name environment variables instead.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::model::{bounds, shown, Decimal};

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

/// A name of a venue or strategy instance: 1 to 32 of `[a-z0-9_-]`, starting with a
/// letter or digit, so it is safe in logs, metrics and file names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(String);

impl Name {
    pub fn parse(s: &str) -> Result<Name, String> {
        let ok = !s.is_empty()
            && s.len() <= 32
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
            && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        if ok {
            Ok(Name(s.to_string()))
        } else {
            Err(format!("invalid name {s:?}: use 1 to 32 of a-z, 0-9, '-' and '_', starting with a letter or digit"))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Name::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every venue is simulated; the default, so a newcomer needs no keys.
    #[default]
    Paper,
    /// Orders go to the configured venues.
    Live,
    /// Strategies run and decide; their actions are logged and never sent.
    Recommend,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Paper => "paper",
            Mode::Live => "live",
            Mode::Recommend => "recommend",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// Longest a single guest call may run before it is interrupted and the strategy
    /// stopped.
    pub call_timeout_ms: u64,
    /// Linear memory a strategy instance may grow to.
    pub memory_limit_mb: u64,
    /// How long after a hot swap the previous version is kept ready: a new version that
    /// traps within it is rolled back. 0: no probation.
    pub swap_probation_ms: u64,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig { call_timeout_ms: 200, memory_limit_mb: 64, swap_probation_ms: 60_000 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ReplayConfig {
    /// Replay pace as a multiple of recorded time; 0 (the default) replays as fast as
    /// possible.
    pub speed: u32,
}

/// The risk engine's limits for every strategy (`[risk]`); a strategy's own entry
/// (`[strategy.risk]`) overrides any of the per-strategy ones. Money figures are in the
/// quote asset of the instrument concerned; none means no limit.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskConfig {
    /// Open orders one strategy may have across all venues.
    pub max_open_orders: u32,
    /// Largest notional (price x qty) of a single order.
    pub max_order_notional: Option<Decimal>,
    /// Largest position on one instrument, as notional at the order's price, counting the
    /// strategy's open orders on that side as if they filled.
    pub max_position_notional: Option<Decimal>,
    /// Orders a strategy may place in any one second of event time.
    pub max_orders_per_s: Option<u32>,
    /// Cancels a strategy may ask for in any one second of event time (the host's own
    /// cancels, at a halt or a shutdown, are never limited).
    pub max_cancels_per_s: Option<u32>,
    /// Fat-finger check: a limit price at most this many percent away from the last trade.
    pub price_band_pct: Option<Decimal>,
    /// Halts a strategy whose PnL, marked to the last trades, falls to minus this.
    pub max_loss: Option<Decimal>,
    /// Halts a strategy whose PnL falls this far below its peak.
    pub max_drawdown: Option<Decimal>,
    /// Whether a halted strategy may still place orders that only reduce a position.
    pub halt_allows_reducing: bool,
    /// All strategies together: the sum over instruments of position notional at the last
    /// trade, open orders counted as if they filled (global only).
    pub max_gross_exposure: Option<Decimal>,
    /// How long (event time, seconds) a client order id is remembered after it was sent,
    /// so a second order with it is refused: a day by default. Ids of open orders are
    /// always remembered; at most 500,000 ids are kept whatever the window (global only).
    pub client_id_window_s: u64,
    /// The kill switch also cancels every open order of the account on each live venue's
    /// configured instruments through the venue's own cancel-all, orders placed by hand or
    /// by another program included (global only; `POST /api/kill` may ask either way).
    pub kill_cancels_account: bool,
}

impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig {
            max_open_orders: 200,
            max_order_notional: None,
            max_position_notional: None,
            max_orders_per_s: None,
            max_cancels_per_s: None,
            price_band_pct: None,
            max_loss: None,
            max_drawdown: None,
            halt_allows_reducing: true,
            max_gross_exposure: None,
            client_id_window_s: 86_400,
            kill_cancels_account: false,
        }
    }
}

/// The control API (`[control]`): off unless `listen` is set (or `--control` given).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// `127.0.0.1:PORT`. Another address needs a token.
    pub listen: Option<std::net::SocketAddr>,
    /// A file holding the bearer token, readable by its owner only; `RUNTIME_CONTROL_TOKEN`
    /// in the environment comes first. With neither, a loopback listener makes a token and
    /// writes it to `state/control.token` beside the config.
    pub token_file: Option<PathBuf>,
    /// `GET /metrics` needs the token too. On a non-loopback address it always does.
    #[serde(default)]
    pub metrics_need_token: bool,
}

/// How the live venues' connections are served (`[live]`), all venues together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveConfig {
    /// The engine's thread checks the sockets over and over while it waits, instead of
    /// sleeping until one has something: no wake-up is paid and its caches stay warm, at
    /// the price of a core kept busy. For a machine with a core to give it (BENCHMARKS.md,
    /// tick-to-trade). No effect without a live venue.
    #[serde(default)]
    pub busy_poll: bool,
    /// A core for the engine's thread alone: it is pinned there, and the process's other
    /// threads kept on the other cores, so none takes its core (preempting a busy-polling
    /// engine costs the tick-to-trade tail a scheduler slice; BENCHMARKS.md). In any mode.
    /// The machine's own processes are the operator's to keep away (`isolcpus`).
    #[serde(default)]
    pub engine_core: Option<usize>,
}

/// A strategy's own limits (`[strategy.risk]`), each overriding `[risk]`'s.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyRiskConfig {
    pub max_open_orders: Option<u32>,
    pub max_order_notional: Option<Decimal>,
    pub max_position_notional: Option<Decimal>,
    pub max_orders_per_s: Option<u32>,
    pub max_cancels_per_s: Option<u32>,
    pub price_band_pct: Option<Decimal>,
    pub max_loss: Option<Decimal>,
    pub max_drawdown: Option<Decimal>,
    pub halt_allows_reducing: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// A file beside the config: durability with no server.
    #[default]
    Embedded,
    Redis,
    /// Nothing survives the process.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub backend: StoreBackend,
    /// The embedded store's file; relative to the config file's folder.
    pub path: PathBuf,
    /// A Redis URL without a password (`redis://host:port/db`).
    pub url: Option<String>,
    /// The environment variable holding the Redis URL when it carries a password.
    pub url_env: String,
    /// Separates runtimes sharing one Redis.
    pub namespace: String,
    /// Batches between checkpoints.
    pub checkpoint_every: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            backend: StoreBackend::Embedded,
            path: PathBuf::from("state/runtime.redb"),
            url: None,
            url_env: "RUNTIME_REDIS_URL".into(),
            namespace: "default".into(),
            checkpoint_every: 500,
        }
    }
}

impl StoreConfig {
    /// The Redis URL: from the environment variable when set, else `url`.
    pub fn redis_url(&self) -> Result<String, String> {
        redis_url(&self.url, &self.url_env).ok_or_else(|| format!("store backend is redis but neither {} nor store.url is set", self.url_env))
    }
}

/// A Redis URL from the environment variable when it is set, else from the config.
fn redis_url(url: &Option<String>, url_env: &str) -> Option<String> {
    std::env::var(url_env).ok().or_else(|| url.clone())
}

/// A URL in the config file must not carry a password: secrets come from the environment.
fn no_password_inline(section: &str, url: &Option<String>, url_env: &str) -> Result<(), String> {
    if url.as_deref().is_some_and(|u| u.contains('@') || u.contains('?')) {
        return Err(format!("{section}.url must not carry a password: put the URL in the environment variable {url_env} instead"));
    }
    Ok(())
}

/// The market data bus (Redis Streams) that published instruments go to and `bus` feeds
/// read from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusConfig {
    /// A Redis URL without a password.
    pub url: Option<String>,
    /// The environment variable holding the URL when it carries a password.
    pub url_env: String,
    pub prefix: String,
    /// About how many entries each stream keeps.
    pub maxlen: usize,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig { url: None, url_env: "RUNTIME_BUS_URL".into(), prefix: "md".into(), maxlen: 100_000 }
    }
}

impl BusConfig {
    pub fn redis_url(&self) -> Result<String, String> {
        redis_url(&self.url, &self.url_env).ok_or_else(|| format!("the market data bus is used but neither {} nor bus.url is set", self.url_env))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VenueKind {
    Paper,
    BinanceSpot,
    BinanceUsdm,
    Okx,
}

/// How to reach a live venue and with which credentials. Credentials are references
/// (`env:NAME` or `file:PATH`, the file readable by its owner only), never values.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    /// Base URLs; the venue's production URLs when absent (set them for a testnet or the
    /// local exchange).
    pub rest_url: Option<String>,
    pub private_ws_url: Option<String>,
    pub public_ws_url: Option<String>,
    pub api_key: Option<String>,
    pub api_secret: Option<String>,
    /// OKX only.
    pub passphrase: Option<String>,
    #[serde(default = "default_recv_window")]
    pub recv_window_ms: u64,
    /// OKX `tdMode`: `cash` (spot), `cross` or `isolated` (swaps).
    pub trade_mode: Option<String>,
    /// Reconnect on our schedule before the venue's 24 h limit.
    pub max_connection_age_s: Option<u64>,
    /// How often fills and open orders are reconciled over REST besides after every
    /// reconnect: the longest a push the venue never delivered goes unnoticed.
    #[serde(default = "default_reconcile_interval")]
    pub reconcile_interval_ms: u64,
    /// For an account whose limits the venue raised (a VIP or market-maker tier): the
    /// windows requests are paced by, in place of the documented ones. Set too high, the
    /// venue's 429s, its usage headers and `Retry-After` still pace the runtime.
    pub rate_limits: Option<Vec<RateLimitWindow>>,
}

/// One rate-limit window: at most `max` of what it counts in any `seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitWindow {
    pub counts: RateLimitCounts,
    pub seconds: u64,
    pub max: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateLimitCounts {
    /// Request weight.
    Weight,
    /// Orders placed.
    Orders,
}

/// Bounds of `rate_limits`: a few windows, a second to a day, and a maximum no venue
/// grants anyone (it only bounds a typo).
pub const RATE_LIMIT_WINDOWS: std::ops::RangeInclusive<usize> = 1..=8;
pub const RATE_LIMIT_SECONDS: std::ops::RangeInclusive<u64> = 1..=86_400;
pub const RATE_LIMIT_MAX: std::ops::RangeInclusive<u32> = 1..=100_000_000;

fn default_reconcile_interval() -> u64 {
    DEFAULT_RECONCILE_INTERVAL_MS
}

/// The default of `reconcile_interval_ms`: a few requests of weight every ten seconds is
/// a small share of any venue's limit.
pub const DEFAULT_RECONCILE_INTERVAL_MS: u64 = 10_000;

/// How long a REST request may take before its outcome is unknown. A signed request can
/// be accepted until its receive window has passed, so the window must be shorter than
/// this: then, once a request times out, the original can no longer execute, and a query
/// that finds no order means it never will (config refuses a longer window).
///
/// Here, with the connection settings, because the receive window is checked against it;
/// the venue adapters build their HTTP clients with it.
pub const HTTP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Bounds of `reconcile_interval_ms`: more often than twice a second spends weight for
/// nothing; less often than hourly leaves a lost fill unhedged too long.
pub const RECONCILE_INTERVAL_MS: std::ops::RangeInclusive<u64> = 500..=3_600_000;

fn default_recv_window() -> u64 {
    5000
}

/// Where a secret is, as config names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    Env(String),
    File(PathBuf),
}

impl SecretRef {
    pub fn parse(field: &str, text: &str) -> Result<SecretRef, String> {
        if let Some(name) = text.strip_prefix("env:").filter(|n| !n.is_empty()) {
            Ok(SecretRef::Env(name.to_string()))
        } else if let Some(path) = text.strip_prefix("file:").filter(|p| !p.is_empty()) {
            Ok(SecretRef::File(PathBuf::from(path)))
        } else {
            // Never echo the value: it may be the secret itself.
            Err(format!("{field} must be a reference, env:NAME or file:PATH; secrets are never written in config"))
        }
    }

    pub fn load(&self) -> Result<crate::secrets::Secret, crate::secrets::SecretError> {
        match self {
            SecretRef::Env(name) => crate::secrets::from_env(name),
            SecretRef::File(path) => crate::secrets::from_file(path),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SettlementConfig {
    #[default]
    Spot,
    Perpetual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FeesIn {
    #[default]
    Quote,
    Received,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VenueConfig {
    pub name: Name,
    pub kind: VenueKind,
    #[serde(default)]
    pub settlement: SettlementConfig,
    #[serde(default)]
    pub maker_fee: Decimal,
    #[serde(default)]
    pub taker_fee: Decimal,
    /// Paper spot venues: `"received"` charges each side its fee in the asset it receives
    /// (a buyer in the base asset), as Binance and OKX spot do; `"quote"` (the default)
    /// charges every fee in the quote asset.
    #[serde(default)]
    pub fees_in: FeesIn,
    #[serde(default)]
    pub balances: BTreeMap<String, Decimal>,
    #[serde(rename = "instrument", default)]
    pub instruments: Vec<InstrumentConfig>,
    /// Misbehaviour to inject (paper venues), for testing.
    #[serde(default)]
    pub faults: FaultsConfig,
    /// Live venues: URLs and credential references.
    #[serde(default)]
    pub connection: ConnectionConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FaultsConfig {
    /// Report every fill twice with the same trade id.
    #[serde(default)]
    pub duplicate_fills: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentConfig {
    pub symbol: String,
    pub base: String,
    pub quote: String,
    /// Paper venues: required. Live venues: taken from the venue at start (a value
    /// given here must agree with it).
    #[serde(default)]
    pub tick_size: Decimal,
    #[serde(default)]
    pub lot_size: Decimal,
    #[serde(default)]
    pub min_qty: Decimal,
    #[serde(default)]
    pub min_notional: Decimal,
    #[serde(default)]
    pub feed: FeedConfig,
    pub liquidity: Option<LiquidityConfig>,
    /// Publish this instrument's public trades on the market data bus.
    #[serde(default)]
    pub publish: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum FeedConfig {
    /// No market data: only strategies' own orders trade.
    #[default]
    None,
    /// Recorded trades in a Binance public-data CSV layout; a relative path is taken from
    /// the config file's folder.
    Replay { file: PathBuf },
    /// Another instrument's recorded trades scaled by `ratio` (price x ratio, size /
    /// ratio) with a seeded walk of up to `noise_ticks`: a correlated series.
    Derived {
        file: PathBuf,
        ratio: Decimal,
        #[serde(default)]
        noise_ticks: u32,
        #[serde(default)]
        seed: u64,
    },
    /// Another runtime's published trades of `venue`/`symbol`, from the market data bus.
    Bus {
        venue: String,
        symbol: String,
        #[serde(default = "default_idle_timeout")]
        idle_timeout_ms: u64,
    },
    Synthetic {
        seed: u64,
        start_price: Decimal,
        #[serde(default = "default_max_step_ticks")]
        max_step_ticks: u32,
        #[serde(default = "default_max_lots")]
        max_lots: u32,
        start_ms: i64,
        interval_ms: i64,
        count: u64,
    },
}

fn default_idle_timeout() -> u64 {
    30_000
}

fn default_max_step_ticks() -> u32 {
    5
}
fn default_max_lots() -> u32 {
    10
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiquidityConfig {
    pub levels: u32,
    pub step: Decimal,
    pub qty: Decimal,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyConfig {
    pub name: Name,
    /// The component's file stem among `--strategies` (`grid` for `strategies/grid.wasm`).
    pub component: String,
    #[serde(default)]
    pub params: toml::Table,
    /// The operator's grant: the only instruments (`"venue:SYMBOL"`) this instance may
    /// place orders on, whatever it declares in `orders-on`. Empty: no bound beyond its own.
    #[serde(default)]
    pub trade_on: Vec<String>,
    /// Its own risk limits, over `[risk]`'s.
    #[serde(default)]
    pub risk: StrategyRiskConfig,
}

impl StrategyConfig {
    /// The params as the JSON text handed to the strategy's `init`.
    pub fn params_json(&self) -> String {
        serde_json::to_string(&self.params).unwrap_or_else(|_| "{}".to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub sandbox: SandboxConfig,
    #[serde(default)]
    pub replay: ReplayConfig,
    #[serde(default)]
    pub risk: RiskConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub bus: BusConfig,
    #[serde(default)]
    pub control: ControlConfig,
    #[serde(default)]
    pub live: LiveConfig,
    #[serde(rename = "venue", default)]
    pub venues: Vec<VenueConfig>,
    #[serde(rename = "strategy", default)]
    pub strategies: Vec<StrategyConfig>,
    /// The folder relative paths are taken from.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

impl Config {
    /// Reads and validates a config file. Fails with the file's path and the first
    /// problem found, with its line and column where TOML knows them.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read_text(path).map_err(|message| ConfigError { path: path.display().to_string(), message })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Config::parse(&text, &base).map_err(|message| ConfigError { path: path.display().to_string(), message })
    }

    /// Parses and validates config text; relative paths are resolved against `base_dir`.
    pub fn parse(text: &str, base_dir: &Path) -> Result<Config, String> {
        let flatten = |e: toml::de::Error| e.to_string().trim_end().replace('\n', " ");
        let raw: toml::Table = toml::from_str(text).map_err(flatten)?;
        refuse_floats(&toml::Value::Table(raw), "")?;
        let mut config: Config = toml::from_str(text).map_err(flatten)?;
        config.base_dir = base_dir.to_path_buf();
        if config.store.path.is_relative() {
            config.store.path = base_dir.join(&config.store.path);
        }
        if let Some(file) = config.control.token_file.as_mut().filter(|f| f.is_relative()) {
            *file = base_dir.join(&*file);
        }
        for venue in &mut config.venues {
            for inst in &mut venue.instruments {
                if let FeedConfig::Replay { file } | FeedConfig::Derived { file, .. } = &mut inst.feed {
                    if file.is_relative() {
                        *file = base_dir.join(&*file);
                    }
                }
            }
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if self.venues.is_empty() {
            return Err("no [[venue]]: there is nothing to run (is the file empty or cut short?)".into());
        }
        let mut venue_names = HashSet::new();
        for venue in &self.venues {
            if !venue_names.insert(&venue.name) {
                return Err(format!("venue {} is defined twice", venue.name));
            }
            if self.mode == Mode::Paper && venue.kind != VenueKind::Paper {
                return Err(format!("venue {} is not a paper venue, and mode is paper", venue.name));
            }
            if venue.kind != VenueKind::Paper {
                let c = &venue.connection;
                let needed: &[(&str, &Option<String>)] = match venue.kind {
                    VenueKind::Okx => &[("api_key", &c.api_key), ("api_secret", &c.api_secret), ("passphrase", &c.passphrase)],
                    _ => &[("api_key", &c.api_key), ("api_secret", &c.api_secret)],
                };
                for (field, value) in needed {
                    let Some(value) = value else {
                        return Err(format!("venue {}: connection.{field} is missing (env:NAME or file:PATH)", venue.name));
                    };
                    SecretRef::parse(&format!("venue {}: connection.{field}", venue.name), value)?;
                }
                // A window longer than the request timeout would let a request we gave up
                // on execute after a resend with the same id: two orders for one intent.
                let timeout_ms = HTTP_TIMEOUT.as_millis() as u64;
                if c.recv_window_ms == 0 || c.recv_window_ms >= timeout_ms {
                    return Err(format!("venue {}: connection.recv_window_ms must be 1 to {} (shorter than the {timeout_ms} ms request timeout, so a request given up on can no longer execute)", venue.name, timeout_ms - 1));
                }
                if !RECONCILE_INTERVAL_MS.contains(&c.reconcile_interval_ms) {
                    return Err(format!(
                        "venue {}: connection.reconcile_interval_ms must be {} to {}, not {}",
                        venue.name,
                        RECONCILE_INTERVAL_MS.start(),
                        RECONCILE_INTERVAL_MS.end(),
                        c.reconcile_interval_ms
                    ));
                }
                if let Some(windows) = &c.rate_limits {
                    if !RATE_LIMIT_WINDOWS.contains(&windows.len()) {
                        return Err(format!("venue {}: connection.rate_limits must list {} to {} windows, not {}", venue.name, RATE_LIMIT_WINDOWS.start(), RATE_LIMIT_WINDOWS.end(), windows.len()));
                    }
                    for (n, w) in windows.iter().enumerate() {
                        if !RATE_LIMIT_SECONDS.contains(&w.seconds) || !RATE_LIMIT_MAX.contains(&w.max) {
                            return Err(format!(
                                "venue {}: connection.rate_limits[{n}]: seconds must be {} to {} and max {} to {}, not {} and {}",
                                venue.name,
                                RATE_LIMIT_SECONDS.start(),
                                RATE_LIMIT_SECONDS.end(),
                                RATE_LIMIT_MAX.start(),
                                RATE_LIMIT_MAX.end(),
                                w.seconds,
                                w.max
                            ));
                        }
                    }
                }
                for inst in &venue.instruments {
                    if inst.feed != FeedConfig::None || inst.liquidity.is_some() {
                        return Err(format!("venue {} instrument {}: a live venue's market data comes from the venue; feed and liquidity are for paper venues", venue.name, inst.symbol));
                    }
                }
            }
            if venue.fees_in == FeesIn::Received && (venue.kind != VenueKind::Paper || venue.settlement != SettlementConfig::Spot) {
                return Err(format!("venue {}: fees_in = \"received\" is for paper spot venues (a live venue says in what it charged; a contract's fees are in its margin asset)", venue.name));
            }
            for (what, fee) in [("maker_fee", venue.maker_fee), ("taker_fee", venue.taker_fee)] {
                if fee < Decimal::ZERO || fee > Decimal::new(1, 1) {
                    return Err(format!("venue {}: {what} {fee} is outside 0 to 0.1", venue.name));
                }
            }
            for (asset, amount) in &venue.balances {
                if !is_code(asset) {
                    return Err(format!("venue {}: balance asset {:?} must be 1 to 32 letters or digits", venue.name, shown(asset, 40)));
                }
                if *amount < Decimal::ZERO || *amount > bounds::MAX_NOTIONAL {
                    return Err(format!("venue {}: balance {asset} = {amount} is outside 0 to {}", venue.name, bounds::MAX_NOTIONAL));
                }
            }
            let mut symbols = HashSet::new();
            for inst in &venue.instruments {
                for (what, code) in [("symbol", &inst.symbol), ("base", &inst.base), ("quote", &inst.quote)] {
                    if !is_code(code) {
                        return Err(format!("venue {}: instrument {what} {:?} must be 1 to 32 letters, digits, '-' or '_'", venue.name, shown(code, 40)));
                    }
                }
                let at = format!("venue {} instrument {}", venue.name, inst.symbol);
                for (what, value, max) in [
                    ("tick_size", inst.tick_size, bounds::MAX_PRICE),
                    ("lot_size", inst.lot_size, bounds::MAX_QTY),
                    ("min_qty", inst.min_qty, bounds::MAX_QTY),
                    ("min_notional", inst.min_notional, bounds::MAX_NOTIONAL),
                ] {
                    if value > max {
                        return Err(format!("{at}: {what} {value} is beyond the host's bound of {max}"));
                    }
                }
                if !symbols.insert(&inst.symbol) {
                    return Err(format!("{at} is defined twice"));
                }
                let live = venue.kind != VenueKind::Paper;
                if !live && (inst.tick_size <= Decimal::ZERO || inst.lot_size <= Decimal::ZERO) || inst.tick_size < Decimal::ZERO || inst.lot_size < Decimal::ZERO {
                    return Err(format!("{at}: tick_size and lot_size must be positive"));
                }
                if inst.min_qty < Decimal::ZERO || inst.min_notional < Decimal::ZERO {
                    return Err(format!("{at}: min_qty and min_notional must not be negative"));
                }
                if let FeedConfig::Replay { file } | FeedConfig::Derived { file, .. } = &inst.feed {
                    match std::fs::metadata(file) {
                        Err(_) => return Err(format!("{at}: feed file {} does not exist", file.display())),
                        Ok(meta) if !meta.is_file() => return Err(format!("{at}: feed file {} is not a regular file", file.display())),
                        Ok(_) => {}
                    }
                }
                match &inst.feed {
                    FeedConfig::Derived { ratio, .. } if *ratio < Decimal::new(1, 6) || *ratio > Decimal::from(1_000_000) => {
                        return Err(format!("{at}: derived feed ratio {ratio} must be between 0.000001 and 1000000"));
                    }
                    FeedConfig::Synthetic { start_price, interval_ms, .. } if *start_price <= Decimal::ZERO || *interval_ms <= 0 => {
                        return Err(format!("{at}: synthetic feed needs a positive start_price and interval_ms"));
                    }
                    FeedConfig::Synthetic { start_price, .. } if *start_price > bounds::MAX_PRICE => {
                        return Err(format!("{at}: synthetic start_price {start_price} is beyond the host's bound of {}", bounds::MAX_PRICE));
                    }
                    FeedConfig::Synthetic { start_ms, interval_ms, .. } if !(bounds::EARLIEST_MS..=bounds::LATEST_MS).contains(start_ms) || *interval_ms > 86_400_000 => {
                        return Err(format!("{at}: synthetic start_ms must be a time between 1970 and 2100 (ms) and interval_ms at most a day"));
                    }
                    _ => {}
                }
                if let Some(l) = &inst.liquidity {
                    if l.step <= Decimal::ZERO || l.qty <= Decimal::ZERO {
                        return Err(format!("{at}: liquidity step and qty must be positive"));
                    }
                    if l.levels == 0 || l.levels > MAX_LIQUIDITY_LEVELS {
                        return Err(format!("{at}: liquidity levels {} must be 1 to {MAX_LIQUIDITY_LEVELS}", l.levels));
                    }
                    if l.step > bounds::MAX_PRICE || l.qty > bounds::MAX_QTY {
                        return Err(format!("{at}: liquidity step or qty is beyond the host's bounds ({} and {})", bounds::MAX_PRICE, bounds::MAX_QTY));
                    }
                }
            }
        }
        let mut strategy_names = HashSet::new();
        for s in &self.strategies {
            if !strategy_names.insert(&s.name) {
                return Err(format!("strategy {} is defined twice", s.name));
            }
        }
        no_password_inline("bus", &self.bus.url, &self.bus.url_env)?;
        no_password_inline("store", &self.store.url, &self.store.url_env)?;
        if self.store.checkpoint_every == 0 {
            return Err("store.checkpoint_every must be positive".into());
        }
        if self.sandbox.call_timeout_ms == 0 || self.sandbox.call_timeout_ms > 60_000 {
            return Err(format!("sandbox.call_timeout_ms {} must be 1 to 60000", self.sandbox.call_timeout_ms));
        }
        // A wasm32 memory cannot exceed 4 GiB; a larger figure would overflow into nonsense.
        if self.sandbox.swap_probation_ms > 86_400_000 {
            return Err(format!("sandbox.swap_probation_ms {} must be 0 to 86400000 (a day)", self.sandbox.swap_probation_ms));
        }
        if self.sandbox.memory_limit_mb == 0 || self.sandbox.memory_limit_mb > 4096 {
            return Err(format!("sandbox.memory_limit_mb {} must be 1 to 4096", self.sandbox.memory_limit_mb));
        }
        check_risk("risk", &self.risk.as_strategy())?;
        if let Some(bad) = self.risk.max_gross_exposure.filter(|n| *n <= Decimal::ZERO || *n > bounds::MAX_NOTIONAL) {
            return Err(format!("risk.max_gross_exposure {bad} must be positive and at most {}", bounds::MAX_NOTIONAL));
        }
        for s in &self.strategies {
            check_risk(&format!("strategy {}: risk", s.name), &s.risk)?;
            for grant in &s.trade_on {
                let ok = grant.split_once(':').is_some_and(|(venue, symbol)| self.venues.iter().any(|v| v.name.as_str() == venue) && is_code(symbol));
                if !ok {
                    return Err(format!("strategy {}: trade_on entry {:?} must be \"venue:SYMBOL\" with a configured venue", s.name, shown(grant, 60)));
                }
            }
        }
        Ok(())
    }
}

impl RiskConfig {
    /// These limits with a strategy's own entry over them (the global-only ones kept).
    pub fn overridden_by(&self, own: &StrategyRiskConfig) -> RiskConfig {
        RiskConfig {
            max_open_orders: own.max_open_orders.unwrap_or(self.max_open_orders),
            max_order_notional: own.max_order_notional.or(self.max_order_notional),
            max_position_notional: own.max_position_notional.or(self.max_position_notional),
            max_orders_per_s: own.max_orders_per_s.or(self.max_orders_per_s),
            max_cancels_per_s: own.max_cancels_per_s.or(self.max_cancels_per_s),
            price_band_pct: own.price_band_pct.or(self.price_band_pct),
            max_loss: own.max_loss.or(self.max_loss),
            max_drawdown: own.max_drawdown.or(self.max_drawdown),
            halt_allows_reducing: own.halt_allows_reducing.unwrap_or(self.halt_allows_reducing),
            ..self.clone()
        }
    }

    /// The per-strategy limits of `[risk]`, in the shape of a strategy's own entry.
    pub fn as_strategy(&self) -> StrategyRiskConfig {
        StrategyRiskConfig {
            max_open_orders: Some(self.max_open_orders),
            max_order_notional: self.max_order_notional,
            max_position_notional: self.max_position_notional,
            max_orders_per_s: self.max_orders_per_s,
            max_cancels_per_s: self.max_cancels_per_s,
            price_band_pct: self.price_band_pct,
            max_loss: self.max_loss,
            max_drawdown: self.max_drawdown,
            halt_allows_reducing: Some(self.halt_allows_reducing),
        }
    }
}

/// Money limits must be positive and within the host's bounds; a band within (0, 100].
fn check_risk(at: &str, r: &StrategyRiskConfig) -> Result<(), String> {
    for (field, value) in [
        ("max_order_notional", r.max_order_notional),
        ("max_position_notional", r.max_position_notional),
        ("max_loss", r.max_loss),
        ("max_drawdown", r.max_drawdown),
    ] {
        if let Some(v) = value.filter(|v| *v <= Decimal::ZERO || *v > bounds::MAX_NOTIONAL) {
            return Err(format!("{at}.{field} {v} must be positive and at most {}", bounds::MAX_NOTIONAL));
        }
    }
    if let Some(band) = r.price_band_pct.filter(|b| *b <= Decimal::ZERO || *b > Decimal::ONE_HUNDRED) {
        return Err(format!("{at}.price_band_pct {band} must be above 0 and at most 100"));
    }
    for (field, value) in [("max_orders_per_s", r.max_orders_per_s), ("max_cancels_per_s", r.max_cancels_per_s)] {
        if value == Some(0) {
            return Err(format!("{at}.{field} must be positive (leave it out for no limit)"));
        }
    }
    Ok(())
}

/// The largest config file read: a hand-written config is a few KiB.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// Background liquidity levels a side: each is re-quoted on every print.
pub const MAX_LIQUIDITY_LEVELS: u32 = 1000;

/// The text of a config file: a regular file of at most [`MAX_CONFIG_BYTES`], in UTF-8.
pub fn read_text(path: &Path) -> Result<String, String> {
    let bytes = crate::files::read_regular(path, MAX_CONFIG_BYTES).map_err(|e| format!("cannot read: {e}"))?;
    String::from_utf8(bytes).map_err(|_| "cannot read: not UTF-8 text".to_string())
}

/// An asset or symbol code: what venues use, and safe to print.
fn is_code(s: &str) -> bool {
    !s.is_empty() && s.len() <= 32 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A TOML float is binary floating point: `0.1` is not exactly a tenth. Prices and
/// quantities must be written as strings, so any float outside a strategy's own params
/// (which the strategy interprets itself) is refused, naming where it is.
fn refuse_floats(value: &toml::Value, at: &str) -> Result<(), String> {
    match value {
        toml::Value::Float(f) => Err(format!("{at} = {f} is a TOML float; write prices and quantities as strings (\"{f}\") so they are exact")),
        // A number with more digits than a decimal holds would be rounded (to 0, even).
        toml::Value::String(text) if text.parse::<Decimal>().is_ok() && Decimal::from_str_exact(text.trim()).is_err() => {
            Err(format!("{at} = \"{}\" has more digits than an exact decimal holds (28 after the point, 29 in all)", shown(text, 40)))
        }
        toml::Value::Table(table) => {
            for (key, v) in table {
                let path = if at.is_empty() { key.clone() } else { format!("{at}.{key}") };
                if key == "params" && at.starts_with("strategy") {
                    continue;
                }
                refuse_floats(v, &path)?;
            }
            Ok(())
        }
        toml::Value::Array(items) => items.iter().enumerate().try_for_each(|(i, v)| refuse_floats(v, &format!("{at}[{i}]"))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [[venue]]
        name = "paper-a"
        kind = "paper"
        [[venue.instrument]]
        symbol = "BTCUSDT"
        base = "BTC"
        quote = "USDT"
        tick_size = "0.01"
        lot_size = "0.001"
        [[strategy]]
        name = "s1"
        component = "hello"
        params = { threshold = "1.5", levels = 3 }
    "#;

    #[test]
    fn minimal_config_with_defaults() {
        let c = Config::parse(MINIMAL, Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.mode, Mode::Paper);
        assert_eq!(c.sandbox, SandboxConfig::default());
        assert_eq!(c.strategies[0].params_json(), r#"{"levels":3,"threshold":"1.5"}"#);
    }

    #[test]
    fn sandbox_bounds_are_refused_past_their_limits() {
        let with = |line: &str| Config::parse(&format!("{MINIMAL}\n[sandbox]\n{line}\n"), Path::new("."));
        assert!(with("swap_probation_ms = 86400000").is_ok());
        assert_eq!(with("swap_probation_ms = 86400001").err().unwrap_or_default(), "sandbox.swap_probation_ms 86400001 must be 0 to 86400000 (a day)");
        assert!(with("call_timeout_ms = 60001").err().unwrap_or_default().contains("sandbox.call_timeout_ms 60001 must be 1 to 60000"));
    }

    #[test]
    fn live_options_are_off_unless_asked_for() {
        assert!(!Config::parse(MINIMAL, Path::new(".")).unwrap_or_else(|e| panic!("{e}")).live.busy_poll);
        let on = Config::parse(&format!("{MINIMAL}\n[live]\nbusy_poll = true\n"), Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
        assert!(on.live.busy_poll);
        let err = Config::parse(&format!("{MINIMAL}\n[live]\nbusy_pol = true\n"), Path::new(".")).err().unwrap_or_default();
        assert!(err.contains("unknown field `busy_pol`"), "{err}");
        assert_eq!(on.live.engine_core, None);
        let pinned = Config::parse(&format!("{MINIMAL}\n[live]\nengine_core = 1\n"), Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pinned.live.engine_core, Some(1));
        let err = Config::parse(&format!("{MINIMAL}\n[live]\nengine_core = -1\n"), Path::new(".")).err().unwrap_or_default();
        assert!(err.contains("engine_core"), "{err}");
    }

    #[test]
    fn unknown_key_is_an_error_with_its_place() {
        let err = Config::parse(&format!("{MINIMAL}\n[sandbox]\ncall_timeout = 5\n"), Path::new(".")).err().unwrap_or_default();
        assert!(err.contains("unknown field `call_timeout`"), "{err}");
        assert!(err.contains("line"), "{err}");
    }

    #[test]
    fn float_prices_are_refused() {
        let err = Config::parse(&MINIMAL.replace("\"0.01\"", "0.01"), Path::new(".")).err().unwrap_or_default();
        assert_eq!(err, "venue[0].instrument[0].tick_size = 0.01 is a TOML float; write prices and quantities as strings (\"0.01\") so they are exact");
        let in_params = MINIMAL.replace("levels = 3", "levels = 3.5");
        assert!(Config::parse(&in_params, Path::new(".")).is_ok(), "a strategy's params are its own business");
    }

    #[test]
    fn bad_names_and_duplicates() {
        assert!(Config::parse(&MINIMAL.replace("paper-a", "Paper A"), Path::new(".")).err().unwrap_or_default().contains("invalid name"));
        let twice = format!("{MINIMAL}\n[[strategy]]\nname = \"s1\"\ncomponent = \"x\"\n");
        assert!(Config::parse(&twice, Path::new(".")).err().unwrap_or_default().contains("defined twice"));
    }

    #[test]
    fn redis_passwords_are_refused_in_the_file() {
        for section in ["store", "bus"] {
            let text = format!("{MINIMAL}\n[{section}]\nurl = \"redis://user:pw@127.0.0.1:6379\"\n");
            let err = Config::parse(&text, Path::new(".")).err().unwrap_or_default();
            assert!(err.starts_with(&format!("{section}.url must not carry a password")), "{err}");
            assert!(!err.contains("pw@"), "{err}");
        }
    }

    #[test]
    fn fees_in_the_received_asset_are_for_paper_spot_venues_only() {
        let received = MINIMAL.replace("kind = \"paper\"", "kind = \"paper\"\nfees_in = \"received\"");
        let c = Config::parse(&received, Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.venues[0].fees_in, FeesIn::Received);
        let perpetual = received.replace("fees_in", "settlement = \"perpetual\"\nfees_in");
        let err = Config::parse(&perpetual, Path::new(".")).err().unwrap_or_default();
        assert!(err.starts_with("venue paper-a: fees_in = \"received\" is for paper spot venues"), "{err}");
        let other = MINIMAL.replace("kind = \"paper\"", "kind = \"paper\"\nfees_in = \"base\"");
        assert!(Config::parse(&other, Path::new(".")).err().unwrap_or_default().contains("unknown variant `base`"));
    }

    #[test]
    fn missing_feed_file_is_named() {
        let text = MINIMAL.replace("lot_size = \"0.001\"", "lot_size = \"0.001\"\nfeed = { kind = \"replay\", file = \"nope.csv\" }");
        let err = Config::parse(&text, Path::new("/tmp")).err().unwrap_or_default();
        assert!(err.contains("/tmp/nope.csv"), "{err}");
    }

    /// Every risk limit is checked where it enters, named as written; a strategy's entry
    /// is as strict as the global one, and a grant must name a configured venue.
    #[test]
    fn risk_limits_and_grants_are_checked_with_their_names() {
        let with = |extra: &str| Config::parse(&format!("{MINIMAL}{extra}"), Path::new(".")).err().unwrap_or_default();
        let global = |section: &str| Config::parse(&format!("{section}\n{MINIMAL}"), Path::new(".")).err().unwrap_or_default();
        assert_eq!(global("[risk]\nmax_loss = \"-5\""), "risk.max_loss -5 must be positive and at most 1000000000000000");
        assert!(global("[risk]\nprice_band_pct = \"0\"").contains("risk.price_band_pct 0 must be above 0 and at most 100"));
        assert!(global("[risk]\nmax_orders_per_s = 0").contains("risk.max_orders_per_s must be positive"));
        assert!(global("[risk]\nmax_gross_exposure = \"2000000000000000\"").contains("risk.max_gross_exposure"));
        assert!(with("[strategy.risk]\nmax_drawdown = \"0\"\n").contains("strategy s1: risk.max_drawdown 0 must be positive"));
        assert!(with("[strategy.risk]\nmax_los = \"5\"\n").contains("unknown field `max_los`"));
        assert!(with("trade_on = [\"paper-b:BTCUSDT\"]\n").contains("trade_on entry \"paper-b:BTCUSDT\" must be"));
        assert!(with("trade_on = [\"paper-a\"]\n").contains("must be \"venue:SYMBOL\""));
        let ok = Config::parse(&format!("[risk]\nmax_loss = \"100\"\n{MINIMAL}trade_on = [\"paper-a:BTCUSDT\"]\n[strategy.risk]\nmax_loss = \"50\"\n"), Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((ok.risk.max_loss, ok.strategies[0].risk.max_loss), (Some(Decimal::ONE_HUNDRED), Some(Decimal::from(50))));
        assert_eq!(ok.strategies[0].trade_on, vec!["paper-a:BTCUSDT".to_string()]);
    }

    /// A live venue's connection settings are bounded where they enter, named as written.
    #[test]
    fn connection_settings_out_of_range_are_refused_by_name() {
        let live = |extra: &str| {
            let text = format!(
                "mode = \"live\"\n[[venue]]\nname = \"bn\"\nkind = \"binance-spot\"\n[venue.connection]\napi_key = \"env:K\"\napi_secret = \"env:S\"\n{extra}\n[[venue.instrument]]\nsymbol = \"BTCUSDT\"\nbase = \"BTC\"\nquote = \"USDT\"\n"
            );
            Config::parse(&text, Path::new(".")).err().unwrap_or_default()
        };
        assert_eq!(live(""), "", "the defaults are in range");
        assert!(live("reconcile_interval_ms = 100").contains("venue bn: connection.reconcile_interval_ms must be 500 to 3600000, not 100"));
        assert!(live("reconcile_interval_ms = 3600001").contains("connection.reconcile_interval_ms must be 500 to 3600000, not 3600001"));
        assert_eq!(live("reconcile_interval_ms = 500"), "");
        assert!(live("recv_window_ms = 10000").contains("venue bn: connection.recv_window_ms must be 1 to 9999"));
        assert!(live("recv_window_ms = 0").contains("connection.recv_window_ms must be 1 to 9999"));
        assert_eq!(live("rate_limits = [{ counts = \"orders\", seconds = 10, max = 3000 }, { counts = \"weight\", seconds = 60, max = 24000 }]"), "");
        assert!(live("rate_limits = []").contains("venue bn: connection.rate_limits must list 1 to 8 windows, not 0"));
        let nine = ["{ counts = \"orders\", seconds = 1, max = 1 }"; 9].join(", ");
        assert!(live(&format!("rate_limits = [{nine}]")).contains("must list 1 to 8 windows, not 9"));
        assert!(live("rate_limits = [{ counts = \"orders\", seconds = 0, max = 10 }]").contains("connection.rate_limits[0]: seconds must be 1 to 86400 and max 1 to 100000000, not 0 and 10"));
        assert!(live("rate_limits = [{ counts = \"orders\", seconds = 10, max = 100000001 }]").contains("not 10 and 100000001"));
        assert!(live("rate_limits = [{ counts = \"weight\", seconds = 10, max = 0 }]").contains("not 10 and 0"));
        assert!(live("rate_limits = [{ counts = \"requests\", seconds = 10, max = 5 }]").contains("unknown variant `requests`"));
        assert!(live("rate_limits = [{ counts = \"orders\", seconds = 10, max = -5 }]").contains("invalid value"));
    }
}
