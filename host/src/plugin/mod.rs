//! Strategy plugins: the only module that names wasmtime, so an upgrade touches one place.
//!
//! Loading turns a file into a ready-to-instantiate component: a core module with the
//! contract embedded by wit-bindgen is componentized in-process, the component's imports
//! and exports are checked against the contract version this host speaks, and it is
//! compiled and linked once. Each strategy instance then gets its own `Store` with a
//! memory limit, and every call into it runs under an epoch deadline, so a runaway guest
//! traps instead of stalling the market-data loop.

mod capabilities;
pub mod convert;
pub mod limits;
pub mod wasi;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, ComponentExportIndex, ComponentNamedList, Func, HasSelf, Linker, Lower, TypedFunc};
use wasmtime::{Config as WasmConfig, Engine, Store, Trap, WasmBacktrace};

use limits::{LimitBreach, SandboxLimiter};

use crate::market::{EventClock, SharedMarket};
use crate::model::{Action, Event, StrategyId, Subscriptions};

mod bindings {
    wasmtime::component::bindgen!({
        world: "plugin",
        path: "../wit",
        imports: {
            // Exceeding the state quota is a limit breach: it traps.
            "trading:strategy/state.set": trappable,
            // So is a band on too many instruments, or a bound that is not a decimal.
            "trading:strategy/quiet.set": trappable,
        },
    });
}

/// The package and version of the WIT contract in `wit/`.
pub const CONTRACT_PACKAGE: &str = "trading:strategy";
pub const CONTRACT_VERSION: &str = "0.1.4";

/// The largest snapshot a strategy may hand over: it is written at every checkpoint and
/// given to the next version on a hot swap.
pub const MAX_SNAPSHOT_BYTES: usize = 4 << 20;

/// How often the epoch advances; the unit of the call deadline.
const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Why a file could not become a strategy component.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum LoadError {
    #[error("{path}: cannot read: {reason}")]
    Read { path: String, reason: String },
    #[error("{path}: not a WebAssembly file (it does not start with the \\0asm magic)")]
    NotWasm { path: String },
    #[error("{path}: a core module that cannot be made a component (was it built with the strategy SDK?): {reason}")]
    Componentize { path: String, reason: String },
    #[error("{path}: invalid component: {reason}")]
    Invalid { path: String, reason: String },
    #[error("{path}: built against contract {found}; this runtime speaks {CONTRACT_PACKAGE}@{CONTRACT_VERSION}")]
    Version { path: String, found: String },
    #[error("{path}: not a strategy: it exports no {CONTRACT_PACKAGE}/strategy interface")]
    NotStrategy { path: String },
    #[error("{path}: imports {import}, which the sandbox does not provide (strategies get the {CONTRACT_PACKAGE} imports and a WASI without capabilities: no files, network or environment)")]
    ForbiddenImport { path: String, import: String },
}

/// Why a call into a strategy ended it. The instance cannot be used again.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("{kind}: {detail}")]
pub struct GuestTrap {
    pub kind: TrapKind,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapKind {
    /// It ran past its call deadline (an endless loop, or far too much work).
    Timeout,
    /// It tried to grow its memory past the limit.
    OutOfMemory,
    /// It panicked or aborted.
    Panic,
    /// Any other trap, or a limit of a host import.
    Other,
    /// Nothing ran: its exports are not the contract's (a function missing or of another
    /// signature).
    Mismatch,
}

impl std::fmt::Display for TrapKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TrapKind::Timeout => "exceeded its call deadline",
            TrapKind::OutOfMemory => "exhausted its memory limit",
            TrapKind::Panic => "panicked",
            TrapKind::Other => "trapped",
            TrapKind::Mismatch => "does not match the contract",
        })
    }
}

/// Per-instance limits of the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxLimits {
    pub call_timeout: Duration,
    pub memory_bytes: usize,
}

/// What every store carries: the instance's view of the host.
pub struct HostState {
    pub strategy: String,
    pub id: StrategyId,
    /// Every strategy's open orders, as the router keeps them; this one reads its own.
    pub open_orders: crate::router::SharedOpenOrders,
    pub market: SharedMarket,
    pub clock: EventClock,
    pub rng: ChaCha8Rng,
    pub kv: GuestState,
    pub log_budget: capabilities::SharedLogBudget,
    /// Where the strategy promised that trades change nothing it decides (`quiet`).
    pub quiet: capabilities::quiet::QuietBands,
    wasi: wasi::Wasi,
    limits: SandboxLimiter,
}

/// A strategy instance's key/value state. It belongs to the slot, not the instance, so
/// a hot swap hands it to the next version untouched.
#[derive(Clone, Default)]
pub struct GuestState(Arc<Mutex<KeyValues>>);

/// The entries and their size in bytes (keys and values), kept as the entries change so
/// that checking the quota costs nothing per write.
#[derive(Default)]
pub struct KeyValues {
    map: std::collections::BTreeMap<String, Vec<u8>>,
    bytes: usize,
}

impl KeyValues {
    pub fn get(&self, key: &str) -> Option<&Vec<u8>> {
        self.map.get(key)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Bytes held if `key` were set to a value of `value_len` bytes.
    pub fn bytes_with(&self, key: &str, value_len: usize) -> usize {
        let old = self.map.get(key).map(|v| key.len() + v.len()).unwrap_or(0);
        self.bytes - old + key.len() + value_len
    }

    pub fn insert(&mut self, key: String, value: Vec<u8>) {
        self.bytes = self.bytes_with(&key, value.len());
        self.map.insert(key, value);
    }

    pub fn remove(&mut self, key: &str) {
        if let Some(old) = self.map.remove(key) {
            self.bytes -= key.len() + old.len();
        }
    }

    pub fn entries(&self) -> &std::collections::BTreeMap<String, Vec<u8>> {
        &self.map
    }

    pub fn replace(&mut self, map: std::collections::BTreeMap<String, Vec<u8>>) {
        self.bytes = map.iter().map(|(k, v)| k.len() + v.len()).sum();
        self.map = map;
    }
}

impl GuestState {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, KeyValues> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A compiled, linked and contract-checked component.
pub struct LoadedComponent {
    pub path: PathBuf,
    /// Short SHA-256 of the file, to tell versions apart in logs.
    pub hash: String,
    pub compile_time: Duration,
    pre: bindings::PluginPre<HostState>,
    /// `standing.halted` and `standing.resumed`, when the component exports them.
    standing: Option<(ComponentExportIndex, ComponentExportIndex)>,
    /// `tape.on-trades`, when the component exports it.
    tape: Option<ComponentExportIndex>,
    /// `packed.on-packed`, when the component exports it.
    packed: Option<ComponentExportIndex>,
}

impl LoadedComponent {
    /// Whether it exports `tape` (contract 0.1.2), so batches of trades reach it packed.
    pub fn takes_packed_trades(&self) -> bool {
        self.tape.is_some()
    }

    /// Whether it exports `packed` (contract 0.1.3), so every batch reaches it packed.
    pub fn takes_packed_batches(&self) -> bool {
        self.packed.is_some()
    }
}

/// The wasmtime engine and linker shared by every strategy. Cheap to clone.
#[derive(Clone)]
pub struct PluginHost {
    engine: Engine,
    linker: Arc<Linker<HostState>>,
    limits: SandboxLimits,
}

impl PluginHost {
    /// Sets up the engine (epoch interruption on) and the linker with the host's imports,
    /// and starts the epoch ticker, which stops by itself when the engine is dropped.
    pub fn new(limits: SandboxLimits) -> anyhow::Result<Self> {
        let mut config = WasmConfig::new();
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        config.cache(compile_cache());
        // `perf` sees the guests' compiled code by name with this (written to
        // /tmp/perf-<pid>.map): profiles of a strategy, not guesses (BENCHMARKS.md).
        if std::env::var_os("RUNTIME_GUEST_PERFMAP").is_some_and(|v| v == "1") {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        bindings::Plugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
        wasi::add_to_linker(&mut linker)?;
        let weak = engine.weak();
        std::thread::Builder::new().name("epoch-ticker".into()).spawn(move || {
            crate::affinity::keep_off_engine_core();
            loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })?;
        Ok(PluginHost { engine, linker: Arc::new(linker), limits })
    }

    pub fn limits(&self) -> SandboxLimits {
        self.limits
    }

    /// Reads, componentizes if needed, checks and compiles a strategy file.
    pub fn load(&self, path: &Path) -> Result<LoadedComponent, LoadError> {
        let bytes = read_strategy_file(path)?;
        self.load_bytes(path, &bytes)
    }

    /// As [`PluginHost::load`], for bytes already read from `path`.
    pub fn load_bytes(&self, path: &Path, bytes: &[u8]) -> Result<LoadedComponent, LoadError> {
        let shown = path.display().to_string();
        let started = Instant::now();
        if bytes.len() < 8 || &bytes[0..4] != b"\0asm" {
            return Err(LoadError::NotWasm { path: shown });
        }
        // Bytes 6..8 are the layer: 0 for a core module, 1 for a component.
        let component_bytes = if bytes[6] == 0 && bytes[7] == 0 {
            componentize(bytes).map_err(|reason| LoadError::Componentize { path: shown.clone(), reason })?
        } else {
            bytes.to_vec()
        };
        let component = Component::new(&self.engine, &component_bytes).map_err(|e| LoadError::Invalid { path: shown.clone(), reason: format!("{e:#}") })?;
        self.check_contract(&component, &shown)?;
        let instance_pre = self.linker.instantiate_pre(&component).map_err(|e| LoadError::Invalid { path: shown.clone(), reason: format!("{e:#}") })?;
        let pre = bindings::PluginPre::new(instance_pre).map_err(|e| LoadError::Invalid { path: shown.clone(), reason: format!("{e:#}") })?;
        let standing = component.get_export_index(None, format!("{CONTRACT_PACKAGE}/standing@{CONTRACT_VERSION}")).and_then(|interface| {
            Some((component.get_export_index(Some(&interface), "halted")?, component.get_export_index(Some(&interface), "resumed")?))
        });
        let tape = component.get_export_index(None, format!("{CONTRACT_PACKAGE}/tape@{CONTRACT_VERSION}")).and_then(|interface| component.get_export_index(Some(&interface), "on-trades"));
        let packed = component.get_export_index(None, format!("{CONTRACT_PACKAGE}/packed@{CONTRACT_VERSION}")).and_then(|interface| component.get_export_index(Some(&interface), "on-packed"));
        let hash = hex::encode(&Sha256::digest(bytes)[..6]);
        Ok(LoadedComponent { path: path.to_path_buf(), hash, compile_time: started.elapsed(), pre, standing, tape, packed })
    }

    /// Every import must be ours and every version one we speak, so a component built
    /// against another contract is refused with its version named, before linking would
    /// fail with something obscure.
    fn check_contract(&self, component: &Component, path: &str) -> Result<(), LoadError> {
        let ty = component.component_type();
        let mut strategy_export = None;
        for (name, _) in ty.exports(&self.engine) {
            if let Some((package, interface, version)) = split_name(name) {
                if package == CONTRACT_PACKAGE && interface == "strategy" {
                    strategy_export = Some(version.to_string());
                }
            }
        }
        let Some(version) = strategy_export else { return Err(LoadError::NotStrategy { path: path.to_string() }) };
        if !compatible(&version) {
            return Err(LoadError::Version { path: path.to_string(), found: format!("{CONTRACT_PACKAGE}@{version}") });
        }
        for (name, _) in ty.imports(&self.engine) {
            match split_name(name) {
                Some((package, _, version)) if package == CONTRACT_PACKAGE => {
                    if !compatible(version) {
                        return Err(LoadError::Version { path: path.to_string(), found: format!("{CONTRACT_PACKAGE}@{version}") });
                    }
                }
                _ if wasi::provided(name) => {}
                _ => return Err(LoadError::ForbiddenImport { path: path.to_string(), import: name.to_string() }),
            }
        }
        Ok(())
    }

    /// Starts an instance of a loaded component in a store of its own.
    pub fn instantiate(&self, loaded: &LoadedComponent, ctx: InstanceContext) -> Result<StrategyInstance, GuestTrap> {
        let log_budget: capabilities::SharedLogBudget = Arc::new(Mutex::new(capabilities::LogBudget::new(&ctx.name)));
        let state = HostState {
            wasi: wasi::Wasi::new(&ctx.name, ctx.seed, ctx.clock.clone(), log_budget.clone()),
            log_budget,
            quiet: Default::default(),
            strategy: ctx.name,
            id: ctx.id,
            open_orders: ctx.open_orders,
            market: ctx.market,
            clock: ctx.clock,
            rng: ChaCha8Rng::seed_from_u64(ctx.seed),
            kv: ctx.kv,
            limits: SandboxLimiter::new(self.limits.memory_bytes),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        let ticks = (self.limits.call_timeout.as_millis() as u64).max(1);
        store.set_epoch_deadline(ticks);
        let instance = match loaded.pre.instance_pre().instantiate(&mut store) {
            Ok(instance) => instance,
            Err(e) => return Err(with_stderr(classify(e, self.limits), &store.data().wasi)),
        };
        store.data().wasi.flush();
        let mismatch = |what: &str, e: wasmtime::Error| GuestTrap {
            kind: TrapKind::Mismatch,
            detail: format!("its {CONTRACT_PACKAGE}/{what} export is not {CONTRACT_PACKAGE}@{CONTRACT_VERSION}'s (a function missing or of another signature): {e:#}"),
        };
        let plugin = bindings::Plugin::new(&mut store, &instance).map_err(|e| mismatch("strategy", e))?;
        let standing = match &loaded.standing {
            Some((halted, resumed)) => {
                let mismatch = |e| mismatch("standing", e);
                Some(Standing {
                    halted: instance.get_typed_func(&mut store, halted).map_err(mismatch)?,
                    resumed: instance.get_typed_func(&mut store, resumed).map_err(mismatch)?,
                })
            }
            None => None,
        };
        let tape = match &loaded.tape {
            Some(on_trades) => Some(*instance.get_typed_func::<(&[u8],), WitActions>(&mut store, on_trades).map_err(|e| mismatch("tape", e))?.func()),
            None => None,
        };
        let on_packed = match &loaded.packed {
            Some(on_packed) => Some(*instance.get_typed_func::<(&[u8],), WitActions>(&mut store, on_packed).map_err(|e| mismatch("packed", e))?.func()),
            None => None,
        };
        let log_dropped = store.data().log_budget.lock().unwrap_or_else(|p| p.into_inner()).dropped_since_taken.clone();
        Ok(StrategyInstance { store, plugin, standing, tape, on_packed, limits: self.limits, id: ctx.id, batch: Vec::new(), packed: Vec::new(), log_dropped })
    }
}

/// Compiled components are kept on disk by the hash of their bytes and of the engine's
/// settings (wasmtime's cache), so a strategy compiled once loads in milliseconds after:
/// a Python or JavaScript one, which carries its interpreter, compiles for seconds. The
/// folder is `RUNTIME_COMPILE_CACHE`, else `$XDG_CACHE_HOME/runtime/compiled` or
/// `~/.cache/runtime/compiled`; `RUNTIME_COMPILE_CACHE=off` compiles every time. Like any
/// compiled code the runtime runs, the folder must be writable only by its user.
fn compile_cache() -> Option<wasmtime::Cache> {
    let dir = match std::env::var_os("RUNTIME_COMPILE_CACHE") {
        Some(v) if v == "off" => return None,
        Some(v) => PathBuf::from(v),
        None => std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?.join("runtime/compiled"),
    };
    let mut config = wasmtime::CacheConfig::new();
    config.with_directory(&dir);
    match wasmtime::Cache::new(config) {
        Ok(cache) => Some(cache),
        Err(error) => {
            tracing::warn!("no compile cache at {}: {error:#}; components are compiled at every load", dir.display());
            None
        }
    }
}

/// The largest strategy file read: Python and JavaScript components, which carry their
/// interpreter, are tens of MiB.
pub const MAX_COMPONENT_BYTES: u64 = 128 << 20;

/// Reads a strategy file: a regular file (a FIFO would block the reader forever, a link to
/// /dev/zero never end) of at most [`MAX_COMPONENT_BYTES`].
pub fn read_strategy_file(path: &Path) -> Result<Vec<u8>, LoadError> {
    crate::files::read_regular(path, MAX_COMPONENT_BYTES).map_err(|reason| LoadError::Read { path: path.display().to_string(), reason })
}

/// What an instance is given at its start.
pub struct InstanceContext {
    pub id: StrategyId,
    pub name: String,
    pub market: SharedMarket,
    pub clock: EventClock,
    pub seed: u64,
    pub kv: GuestState,
    pub open_orders: crate::router::SharedOpenOrders,
}

/// Core modules become components in-process, with the same encoder as strategies/build.sh.
pub use componentize::componentize;

/// `trading:strategy/strategy@0.1.0` -> (`trading:strategy`, `strategy`, `0.1.0`).
fn split_name(name: &str) -> Option<(&str, &str, &str)> {
    let (path, version) = name.split_once('@')?;
    let (package, interface) = path.split_once('/')?;
    Some((package, interface, version))
}

/// Semver compatibility as the component model applies it: same major, or for 0.x the
/// same minor.
fn compatible(version: &str) -> bool {
    let parse = |v: &str| -> Option<(u64, u64)> {
        let mut parts = v.split('.');
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    };
    match (parse(version), parse(CONTRACT_VERSION)) {
        (Some((0, minor)), Some((0, ours))) => minor == ours,
        (Some((major, _)), Some((ours, _))) => major == ours,
        _ => false,
    }
}

/// What ended a call, in words: the trap's own cause (not the "error while executing"
/// header wasmtime puts first), and the guest function it happened in when known.
fn classify(error: wasmtime::Error, limits: SandboxLimits) -> GuestTrap {
    let breach = error.chain().find_map(|e| e.downcast_ref::<LimitBreach>()).map(|b| b.0.clone());
    let trap = error.downcast_ref::<Trap>().copied();
    let kind = match (trap, &breach) {
        (Some(Trap::Interrupt), _) => TrapKind::Timeout,
        (Some(Trap::UnreachableCodeReached), _) => TrapKind::Panic,
        (_, Some(text)) if text.starts_with("memory") => TrapKind::OutOfMemory,
        _ => TrapKind::Other,
    };
    let cause = match (&breach, trap) {
        (Some(text), _) => text.clone(),
        (None, Some(trap)) => trap.to_string(),
        (None, None) => first_line(&error.root_cause().to_string()),
    };
    let place = error
        .downcast_ref::<WasmBacktrace>()
        .and_then(|bt| bt.frames().iter().find_map(|f| f.func_name().map(str::to_string)))
        .map(|name| format!(" (in {})", crate::model::shown(&name, 80)))
        .unwrap_or_default();
    let detail = match kind {
        TrapKind::Timeout => format!("a call ran longer than {} ms{place}", limits.call_timeout.as_millis()),
        TrapKind::Panic => format!("{cause}{place}"),
        _ => format!("{}{place}", crate::model::shown(&cause, 300)),
    };
    GuestTrap { kind, detail }
}

fn with_stderr(mut trap: GuestTrap, wasi: &wasi::Wasi) -> GuestTrap {
    if let Some(tail) = wasi.stderr_tail() {
        trap.detail = format!("{}; its stderr ended: {}", trap.detail, crate::model::shown(&tail, 1000));
    }
    trap
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").to_string()
}

/// An action a guest returned that the model cannot hold: its client order id and why.
pub type UnusableAction = (String, String);

/// One running instance of a strategy: a store and its bindings.
pub struct StrategyInstance {
    store: Store<HostState>,
    plugin: bindings::Plugin,
    standing: Option<Standing>,
    /// `tape.on-trades` (contract 0.1.2), its signature checked at instantiation.
    tape: Option<Func>,
    /// `packed.on-packed` (contract 0.1.3), likewise; every batch but one of trades alone
    /// goes to it when it is there.
    on_packed: Option<Func>,
    limits: SandboxLimits,
    id: StrategyId,
    /// The events of a call in the contract's types, reused from call to call.
    batch: Vec<bindings::trading::strategy::types::Event>,
    /// The bytes of a `tape.on-trades` or `packed.on-packed` call; reused likewise.
    packed: Vec<u8>,
    /// The log budget's count of lines dropped since last taken.
    log_dropped: Arc<std::sync::atomic::AtomicU64>,
}

type WitActions = (Vec<bindings::trading::strategy::types::Action>,);

/// The optional `standing` export (contract 0.1.1), typed once at instantiation.
struct Standing {
    halted: TypedFunc<(String, bool), WitActions>,
    resumed: TypedFunc<(), WitActions>,
}

impl StrategyInstance {
    fn arm(&mut self) {
        let ticks = (self.limits.call_timeout.as_millis() as u64).max(1);
        self.store.set_epoch_deadline(ticks);
        self.store.data().wasi.clear_tail();
    }

    /// After a call: logs what the guest printed without a newline, and tells a trap
    /// with the guest's last words on stderr (an interpreter's traceback).
    fn settle<T>(&mut self, result: wasmtime::Result<T>, limits: SandboxLimits) -> Result<T, GuestTrap> {
        let wasi = &self.store.data().wasi;
        wasi.flush();
        result.map_err(|e| with_stderr(classify(e, limits), wasi))
    }

    /// Calls `init`. The outer error is a trap; the inner one the strategy's refusal.
    pub fn init(&mut self, params: &str) -> Result<Result<Subscriptions, String>, GuestTrap> {
        self.arm();
        let limits = self.limits;
        let result = self.plugin.trading_strategy_strategy().call_init(&mut self.store, params);
        let result = self.settle(result, limits)?;
        Ok(result.map(convert::subscriptions_from_wit))
    }

    /// Delivers a batch; each returned action is either usable or carries its client
    /// order id and why it is not.
    ///
    /// A halt or a resume in the batch goes to the `standing` export between the events
    /// before and after it, so the strategy hears of it in order; a component without that
    /// export is not told (its cancels and refusals say it).
    ///
    /// `held_ends` are the lengths at which batches the engine held (`quiet`) ended, each
    /// after a trade; packed, that trade carries the mark, so the strategy sees each held
    /// batch as its own. An `on-events` list has no mark and gets them merged.
    pub fn on_events(&mut self, events: &[Event], held_ends: &[usize]) -> Result<Vec<Result<Action, UnusableAction>>, GuestTrap> {
        let mut actions = Vec::new();
        // Trades alone go by the tape when there is one: fixed-size records read in one
        // pass, which measured faster than the same trades as packed events (the grid at
        // batch 1,000: 98 against 108 ns an event, `guest_vs_native`).
        if let Some(on_trades) = self.tape {
            if !events.is_empty() && events.iter().all(|e| matches!(e, Event::Trade(_))) {
                self.deliver_packed(on_trades, events, held_ends, &mut actions)?;
                return Ok(actions);
            }
        }
        if let Some(on_packed) = self.on_packed {
            self.deliver_all_packed(on_packed, events, held_ends, &mut actions)?;
            return Ok(actions);
        }
        let mut batch = std::mem::take(&mut self.batch);
        batch.clear();
        for event in events {
            match event {
                Event::Halted(_) | Event::Resumed => {
                    self.deliver_batch(&mut batch, &mut actions)?;
                    self.tell_standing(event, &mut actions)?;
                }
                other => batch.extend(convert::event_to_wit(other, self.id)),
            }
        }
        self.deliver_batch(&mut batch, &mut actions)?;
        self.batch = batch;
        Ok(actions)
    }

    fn call_standing<P: ComponentNamedList + Lower + Send + Sync>(&mut self, func: TypedFunc<P, WitActions>, args: P, actions: &mut Vec<Result<Action, UnusableAction>>) -> Result<(), GuestTrap> {
        self.arm();
        let result = func.call(&mut self.store, args);
        let (returned,) = self.settle(result, self.limits)?;
        actions.extend(returned.into_iter().map(convert::action_from_wit));
        Ok(())
    }

    /// `packed.on-packed` calls for a batch, the halts and resumes in it going to
    /// `standing` between the events before and after them, as [`Self::on_events`] says.
    fn deliver_all_packed(&mut self, on_packed: Func, events: &[Event], held_ends: &[usize], actions: &mut Vec<Result<Action, UnusableAction>>) -> Result<(), GuestTrap> {
        self.packed.clear();
        let receiver = self.id;
        let mut ends = held_ends.iter().peekable();
        for (index, event) in events.iter().enumerate() {
            // `pack_event` packs every kind but halts and resumes.
            if !crate::model::packed::pack_event(event, |owner| *owner == Some(receiver), &mut self.packed) {
                self.call_packed(on_packed, actions)?;
                self.tell_standing(event, actions)?;
            } else if matches!(event, Event::Trade(_)) {
                mark_held_end(&mut ends, index, &mut self.packed);
            }
        }
        self.call_packed(on_packed, actions)
    }

    /// A halt or a resume to the `standing` export, if the component has it; any other
    /// event is not standing's and goes nowhere here.
    fn tell_standing(&mut self, event: &Event, actions: &mut Vec<Result<Action, UnusableAction>>) -> Result<(), GuestTrap> {
        let Some(standing) = self.standing.as_ref() else { return Ok(()) };
        match event {
            Event::Halted(halt) => {
                let halted = standing.halted;
                self.call_standing(halted, (halt.reason.clone(), halt.reducing_allowed), actions)
            }
            Event::Resumed => {
                let resumed = standing.resumed;
                self.call_standing(resumed, (), actions)
            }
            _ => Ok(()),
        }
    }

    /// One call of `func` (`packed.on-packed` or `tape.on-trades`, both taking bytes) with
    /// the bytes packed so far, if any.
    fn call_packed(&mut self, func: Func, actions: &mut Vec<Result<Action, UnusableAction>>) -> Result<(), GuestTrap> {
        if self.packed.is_empty() {
            return Ok(());
        }
        self.arm();
        // SAFETY: both exports were type-checked as exactly this signature by
        // `get_typed_func` when the instance started (see `PluginHost::instantiate`); only
        // the slice's lifetime is chosen here, as wasmtime's generated bindings do.
        let typed = unsafe { TypedFunc::<(&[u8],), WitActions>::new_unchecked(func) };
        let result = typed.call(&mut self.store, (&self.packed,));
        self.packed.clear();
        let (returned,) = self.settle(result, self.limits)?;
        actions.extend(returned.into_iter().map(convert::action_from_wit));
        Ok(())
    }

    /// One `tape.on-trades` call with a batch of trades alone: the same trades `on-events`
    /// would get, as one copy of bytes instead of a conversion per field.
    fn deliver_packed(&mut self, on_trades: Func, trades: &[Event], held_ends: &[usize], actions: &mut Vec<Result<Action, UnusableAction>>) -> Result<(), GuestTrap> {
        self.packed.clear();
        let mut ends = held_ends.iter().peekable();
        for (index, event) in trades.iter().enumerate() {
            if let Event::Trade(trade) = event {
                crate::model::tape::pack_trade(trade, &mut self.packed);
                mark_held_end(&mut ends, index, &mut self.packed);
            }
        }
        self.call_packed(on_trades, actions)
    }

    /// One `on-events` call with the events gathered so far, if any.
    fn deliver_batch(&mut self, batch: &mut Vec<bindings::trading::strategy::types::Event>, actions: &mut Vec<Result<Action, UnusableAction>>) -> Result<(), GuestTrap> {
        if batch.is_empty() {
            return Ok(());
        }
        self.arm();
        let limits = self.limits;
        let result = self.plugin.trading_strategy_strategy().call_on_events(&mut self.store, batch);
        let returned = self.settle(result, limits)?;
        batch.clear();
        actions.extend(returned.into_iter().map(convert::action_from_wit));
        Ok(())
    }

    /// Whether the strategy promised that `trade` changes nothing it decides (`quiet`), so
    /// the engine may hold it.
    pub fn holds(&self, trade: &crate::model::PublicTrade) -> bool {
        let bands = &self.store.data().quiet;
        !bands.is_empty() && bands.holds(trade)
    }

    /// Gives the instance another key/value state: a version instantiated ahead of its swap
    /// with a copy is handed the strategy's own when it takes over.
    pub fn set_kv(&mut self, kv: GuestState) {
        self.store.data_mut().kv = kv;
    }

    /// Log lines dropped over the budget since the last call: the slot adds them to its
    /// stats, so the count survives a hot swap to a new instance.
    pub fn take_log_dropped(&mut self) -> u64 {
        let dropped = &self.log_dropped;
        // Read first: after nearly every call there is nothing to take, and a read is
        // cheaper than the exchange.
        if dropped.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            return 0;
        }
        dropped.swap(0, std::sync::atomic::Ordering::Relaxed)
    }

    /// Where the instance's random stream is, so a resumed instance continues it rather
    /// than starting over (a replay must make the same decisions after a restart).
    pub fn random_position(&self) -> u128 {
        self.store.data().rng.get_word_pos()
    }

    pub fn set_random_position(&mut self, position: u128) {
        self.store.data_mut().rng.set_word_pos(position);
    }

    /// The strategy's snapshot; one over [`MAX_SNAPSHOT_BYTES`] ends the instance like a
    /// trap, since it would be written to the store at every checkpoint.
    pub fn snapshot(&mut self) -> Result<Vec<u8>, GuestTrap> {
        self.arm();
        let limits = self.limits;
        let result = self.plugin.trading_strategy_strategy().call_snapshot(&mut self.store);
        let bytes = self.settle(result, limits)?;
        if bytes.len() > MAX_SNAPSHOT_BYTES {
            return Err(GuestTrap { kind: TrapKind::Other, detail: format!("its snapshot is {} bytes; the limit is {MAX_SNAPSHOT_BYTES}", bytes.len()) });
        }
        Ok(bytes)
    }

    pub fn restore(&mut self, state: &[u8]) -> Result<Result<(), String>, GuestTrap> {
        self.arm();
        let limits = self.limits;
        let result = self.plugin.trading_strategy_strategy().call_restore(&mut self.store, state);
        self.settle(result, limits)
    }
}

/// Marks the trade just packed, the `index`th event of a delivery, as the last of a held
/// batch if one ended there (`held_ends` are batch lengths, in order; the engine ends a held
/// batch only after a trade).
fn mark_held_end(ends: &mut std::iter::Peekable<std::slice::Iter<'_, usize>>, index: usize, packed: &mut [u8]) {
    if ends.next_if(|end| **end == index + 1).is_some() {
        crate::model::tape::mark_held_end(packed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(compatible("0.1.0"));
        assert!(compatible("0.1.7"));
        assert!(!compatible("0.2.0"));
        assert!(!compatible("1.1.0"));
        assert!(!compatible("garbage"));
        assert_eq!(split_name("trading:strategy/market@0.1.0"), Some(("trading:strategy", "market", "0.1.0")));
        assert_eq!(split_name("wasi:cli/environment"), None);
    }

    /// A component that exports a (hollow) strategy interface and imports `import`.
    fn importing(import: &str) -> Vec<u8> {
        let text = format!(r#"(component (import "{import}" (instance)) (instance $s) (export "trading:strategy/strategy@0.1.3" (instance $s)))"#);
        wat::parse_str(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn wasi_is_accepted_at_the_contract_check_but_not_wasi_http() {
        let plugin = PluginHost::new(SandboxLimits { call_timeout: Duration::from_millis(100), memory_bytes: 1 << 20 }).unwrap_or_else(|e| panic!("{e}"));
        let check = |import: &str| {
            let component = Component::new(&plugin.engine, importing(import)).unwrap_or_else(|e| panic!("{e}"));
            plugin.check_contract(&component, "x.wasm")
        };
        assert_eq!(check("wasi:cli/stdout@0.2.9"), Ok(()));
        assert_eq!(check("wasi:sockets/tcp@0.2.12"), Ok(()));
        let refused = check("wasi:http/outgoing-handler@0.2.9");
        assert_eq!(refused, Err(LoadError::ForbiddenImport { path: "x.wasm".into(), import: "wasi:http/outgoing-handler@0.2.9".into() }));
        let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("imports wasi:http/outgoing-handler@0.2.9, which the sandbox does not provide"), "{message}");
        assert!(check("wasi:cli/stdout@0.3.0").is_err(), "only the 0.2 interfaces are provided");
        assert!(check("acme:evil/backdoor@1.0.0").is_err());
    }
}
